//! What an admin does in the middle of an incident or to a project, from the
//! dashboard or a script: containment and lifting it, the project's time
//! zone, and rotating its public token and secret. A member's session must
//! be freshly confirmed with a passkey for anything that cuts off or
//! re-keys; every step is audited.

use super::respond::json_response;
use super::request::read_body;
use crate::audit_trail::record;
use crate::auth::{authorised, require_fresh, require_stepped_up, session_of};
use crate::error::ApiError;
use crate::state::{AppState, Inner};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meta::Scope;
use serde::Deserialize;
use serde_json::{json, Value};


async fn body_of<T: serde::de::DeserializeOwned>(body: axum::body::Body, shape: &str) -> Result<T, ApiError> {
    let bytes = read_body(body, 64 * 1024).await?;
    let bytes = if bytes.is_empty() { &b"{}"[..] } else { &bytes[..] };
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("expected {shape}: {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainBody {
    key: Option<i64>,
    member: Option<i64>,
    session: Option<String>,
    address: Option<String>,
    #[serde(default)]
    all: bool,
    /// Hours the rotated-away public token keeps collecting (with `all`).
    token_overlap_hours: Option<u32>,
}

/// `POST /api/v1/incident/contain` (admin; sessions stepped up).
pub(crate) async fn contain(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let plan: ContainBody = body_of(body, r#"{"key", "member", "session", "address", "all", "token_overlap_hours"}"#).await?;
        let address = plan
            .address
            .map(|text| text.parse::<ipnet::IpNet>().or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map(|net| net.to_string()).map_err(|_| ApiError::BadRequest(format!("{text:?} is not an address or CIDR"))))
            .transpose()?;
        let plan = incident::containment::Plan {
            key: plan.key,
            member: plan.member,
            session: plan.session,
            address,
            all: plan.all,
            token_overlap_ms: i64::from(plan.token_overlap_hours.unwrap_or(24)) * 3_600_000,
        };
        if plan.is_empty() {
            return Err(ApiError::BadRequest("nothing to contain: give key, member, session, address or all".to_owned()));
        }
        let inner = state.inner.clone();
        let steps = tokio::task::spawn_blocking(move || -> Result<Vec<incident::containment::Step>, ApiError> {
            require_fresh(&inner, &parts, &principal)?;
            let mut unaudited = None;
            let steps = incident::containment::contain(&inner.meta, &plan, |step| {
                if let Err(error) = record(&inner, &principal, &format!("incident.contain.{}", step.action), step.detail.clone(), None) {
                    unaudited.get_or_insert(error);
                }
                Ok(())
            })?;
            if let Some(error) = unaudited {
                return Err(error);
            }
            Ok(steps)
        })
        .await??;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"steps": steps})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiftBody {
    address: String,
}

/// `POST /api/v1/incident/lift` with `address`: unblocks it (admin).
pub(crate) async fn lift(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let lift: LiftBody = body_of(body, r#"{"address"} (the export freeze is lifted by an owner: POST /api/v1/incident/unfreeze)"#).await?;
        let net = lift.address.parse::<ipnet::IpNet>().or_else(|_| lift.address.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map_err(|_| ApiError::BadRequest(format!("{:?} is not an address or CIDR", lift.address)))?;
        let inner = state.inner.clone();
        let said = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
            require_fresh(&inner, &parts, &principal)?;
            let removed = inner.meta.unblock_address(&net.to_string())?;
            record(&inner, &principal, "incident.lift.address", json!({"unblocked": net.to_string(), "was_blocked": removed}), None)?;
            Ok(format!("{net} {}", if removed { "unblocked" } else { "was not blocked" }))
        })
        .await??;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"said": said})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /api/v1/incident/unfreeze`: lifts the export freeze of a
/// containment. An owner's session only, freshly stepped up: no key and no
/// secret can undo a freeze.
pub(crate) async fn unfreeze(State(state): State<AppState>, request: Request) -> Response {
    let parts = request.into_parts().0;
    let inner = state.inner.clone();
    tokio::task::spawn_blocking(move || -> Result<Response, ApiError> {
        let view = session_of(&inner, &parts)?;
        if view.member.role != meta::Role::Owner {
            return Err(ApiError::Forbidden("only an owner lifts the export freeze".to_owned()));
        }
        require_stepped_up(&view)?;
        inner.meta.set_exports_frozen(false)?;
        let actor = audit::Actor { kind: "session".to_owned(), id: view.session.short_id.clone(), user: Some(format!("member:{}", view.member.id)) };
        inner.audit.append(audit::NewEntry::new(actor, "incident.lift.freeze", audit::Outcome::Ok)).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(json_response(StatusCode::OK, &json!({"said": "exports are allowed again"})))
    })
    .await
    .map_err(ApiError::from)
    .and_then(|result| result)
    .unwrap_or_else(IntoResponse::into_response)
}

fn project_json(project: &meta::Project, inner: &Inner) -> Value {
    let geo = inner.protector.policy(project.id).map(|p| p.policy.document().geo.as_str().to_owned()).unwrap_or_else(|_| "country".to_owned());
    json!({"id": project.id.0, "name": project.name, "token": project.token, "timezone": project.timezone, "geo": geo,
           "secret_disabled": inner.meta.secret_disabled(project.id).unwrap_or(false)})
}

/// `GET /api/v1/project`: the project's settings.
pub(crate) async fn get_project(State(state): State<AppState>, request: Request) -> Response {
    async {
        let project = authorised(&state, &request.into_parts().0, Scope::Read).await?.project;
        let inner = state.inner.clone();
        let value = tokio::task::spawn_blocking(move || project_json(&project, &inner)).await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &value))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectBody {
    timezone: Option<String>,
}

/// `PUT /api/v1/project` with `timezone` (an IANA name) (admin).
pub(crate) async fn put_project(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let change: ProjectBody = body_of(body, r#"{"timezone"}"#).await?;
        let inner = state.inner.clone();
        let value = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
            if let Some(zone) = &change.timezone {
                if !query::is_time_zone(zone) {
                    return Err(ApiError::BadRequest(format!("unknown time zone {zone:?}: use an IANA name such as UTC or Europe/Berlin")));
                }
                inner.meta.set_timezone(principal.project.id, zone)?;
                record(&inner, &principal, "project.set", json!({"timezone": zone}), None)?;
            }
            let project = inner.meta.project_by_id(principal.project.id)?.ok_or_else(|| ApiError::NotFound("the project is gone".to_owned()))?;
            Ok(project_json(&project, &inner))
        })
        .await??;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &value))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateTokenBody {
    /// Must be true: a rotation is not undone.
    #[serde(default)]
    confirm: bool,
    overlap_hours: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    #[serde(default)]
    confirm: bool,
}

fn confirmed(confirm: bool) -> Result<(), ApiError> {
    if confirm { Ok(()) } else { Err(ApiError::BadRequest("send {\"confirm\": true}: a rotation cannot be undone".to_owned())) }
}

/// `POST /api/v1/project/rotate-token`: a new public token; the old one
/// keeps collecting for `overlap_hours` (default 24), so SDKs can be
/// redeployed without losing events. Takes `{"confirm": true}` (admin;
/// sessions stepped up).
pub(crate) async fn rotate_token(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let rotate: RotateTokenBody = body_of(body, r#"{"confirm": true, "overlap_hours"}"#).await?;
        confirmed(rotate.confirm)?;
        let inner = state.inner.clone();
        let value = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
            require_fresh(&inner, &parts, &principal)?;
            let until = events::now_ms() + i64::from(rotate.overlap_hours.unwrap_or(24).min(24 * 30)) * 3_600_000;
            let token = inner.meta.rotate_project_token(principal.project.id, until)?;
            record(&inner, &principal, "project.token.rotate", json!({"old_token_valid_until_ms": until}), None)?;
            Ok(json!({"token": token, "old_token_valid_until_ms": until}))
        })
        .await??;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &value))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /api/v1/project/rotate-secret`: a new project secret, shown once;
/// the old one stops at once. Takes `{"confirm": true}` (admin; sessions
/// stepped up).
pub(crate) async fn rotate_secret(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let confirm: ConfirmBody = body_of(body, r#"{"confirm": true}"#).await?;
        confirmed(confirm.confirm)?;
        let inner = state.inner.clone();
        let value = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
            require_fresh(&inner, &parts, &principal)?;
            let secret = inner.meta.rotate_project_secret(principal.project.id)?;
            record(&inner, &principal, "project.secret.rotate", Value::Null, None)?;
            Ok(json!({"secret": secret}))
        })
        .await??;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &value))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}
