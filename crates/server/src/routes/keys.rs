//! API keys from the dashboard or a script: list, create (the secret shown
//! once), rotate with an overlap, disable; and the addresses blocked by
//! containment. Admin scope; a member's session must be freshly stepped up
//! for anything that issues or cuts off a key. Every change is audited.

use super::respond::json_response;
use super::request::read_body;
use crate::audit_trail::record;
use crate::auth::{authorised, require_fresh, Principal};
use crate::error::ApiError;
use crate::state::{AppState, Inner};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meta::Scope;
use serde::Deserialize;
use serde_json::{json, Value};


fn parse_id(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::BadRequest(format!("{text:?} is not a key id")))
}

/// `GET /api/v1/keys`: the keys that may act on this project.
pub(crate) async fn list(State(state): State<AppState>, request: Request) -> Response {
    async {
        let principal = authorised(&state, &request.into_parts().0, Scope::Admin).await?;
        let inner = state.inner.clone();
        let keys = tokio::task::spawn_blocking(move || inner.meta.api_keys()).await??;
        let now = events::now_ms();
        let list: Vec<Value> = keys.iter().filter(|k| k.projects.contains(&principal.project.id)).map(|k| k.summary_json(now)).collect();
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"keys": list})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// A service account's name; made when it does not exist.
    account: String,
    scopes: Vec<String>,
    #[serde(default)]
    allow_cidrs: Vec<String>,
    expires_days: Option<u32>,
}

/// `POST /api/v1/keys`: a key for this project; its secret is in the answer
/// and nowhere else.
pub(crate) async fn create(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let bytes = read_body(body, 64 * 1024).await?;
        let new: NewKey = serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("expected {{\"account\", \"scopes\", \"allow_cidrs\", \"expires_days\"}}: {e}")))?;
        let scopes = new.scopes.iter().map(|s| Scope::parse(s).ok_or_else(|| ApiError::BadRequest(format!("unknown scope {s:?}: ingest, read, export or admin")))).collect::<Result<Vec<_>, _>>()?;
        if scopes.is_empty() {
            return Err(ApiError::BadRequest("a key needs at least one scope".to_owned()));
        }
        for cidr in &new.allow_cidrs {
            cidr.parse::<ipnet::IpNet>().or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map_err(|_| ApiError::BadRequest(format!("{cidr:?} is not an address or CIDR")))?;
        }
        let name = new.account.trim().to_owned();
        if name.is_empty() || name.len() > 64 {
            return Err(ApiError::BadRequest("account must be 1 to 64 characters".to_owned()));
        }
        let inner = state.inner.clone();
        let made = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
            require_fresh(&inner, &parts, &principal)?;
            let account = match inner.meta.service_accounts()?.into_iter().find(|a| a.name == name) {
                Some(account) => account,
                None => inner.meta.create_service_account(&name)?,
            };
            let spec = meta::KeySpec { scopes, projects: vec![principal.project.id], allow_cidrs: new.allow_cidrs, expires_ms: new.expires_days.map(|d| events::now_ms() + i64::from(d) * events::MS_PER_DAY) };
            let (secret, key) = inner.meta.create_api_key(account.id, &spec, None)?;
            record(&inner, &principal, "api_key.create", json!({"key": key.id, "account": name, "scopes": new.scopes}), None)?;
            let mut value = key.summary_json(events::now_ms());
            value["key"] = Value::from(secret);
            Ok(value)
        })
        .await??;
        Ok::<_, ApiError>(json_response(StatusCode::CREATED, &made))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// The key `id`, if it acts on this project.
fn key_of_project(inner: &Inner, principal: &Principal, id: i64) -> Result<meta::ApiKey, ApiError> {
    inner.meta.api_key(id)?.filter(|k| k.projects.contains(&principal.project.id)).ok_or_else(|| ApiError::NotFound(format!("no key {id} on this project")))
}

/// `POST /api/v1/keys/{id}/disable`.
pub(crate) async fn disable(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Response {
    async {
        let parts = request.into_parts().0;
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let id = parse_id(&id)?;
        let inner = state.inner.clone();
        let value = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
            require_fresh(&inner, &parts, &principal)?;
            key_of_project(&inner, &principal, id)?;
            let disabled = inner.meta.disable_api_key(id)?;
            record(&inner, &principal, "api_key.disable", json!({"key": id, "disabled": disabled}), None)?;
            Ok(json!({"key": id, "disabled": disabled}))
        })
        .await??;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &value))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotation {
    /// Hours the old secret keeps working (default 24; 0 stops it at once).
    overlap_hours: Option<u32>,
}

/// `POST /api/v1/keys/{id}/rotate`: a new secret for the same key rules.
pub(crate) async fn rotate(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let id = parse_id(&id)?;
        let bytes = read_body(body, 64 * 1024).await?;
        let rotation: Rotation = serde_json::from_slice(if bytes.is_empty() { b"{}" } else { &bytes }).map_err(|e| ApiError::BadRequest(format!("expected {{\"overlap_hours\"}}: {e}")))?;
        let inner = state.inner.clone();
        let value = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
            require_fresh(&inner, &parts, &principal)?;
            key_of_project(&inner, &principal, id)?;
            let until = events::now_ms() + i64::from(rotation.overlap_hours.unwrap_or(24).min(24 * 30)) * 3_600_000;
            let (secret, key) = inner.meta.rotate_api_key(id, until)?;
            record(&inner, &principal, "api_key.rotate", json!({"key": id, "new_key": key.id, "old_valid_until_ms": until}), None)?;
            let mut value = key.summary_json(events::now_ms());
            value["key"] = Value::from(secret);
            value["old_valid_until_ms"] = Value::from(until);
            Ok(value)
        })
        .await??;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &value))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/network/blocked`: addresses blocked by containment (and by
/// the configuration).
pub(crate) async fn blocked(State(state): State<AppState>, request: Request) -> Response {
    async {
        authorised(&state, &request.into_parts().0, Scope::Admin).await?;
        let inner = state.inner.clone();
        let contained = tokio::task::spawn_blocking(move || inner.meta.blocked_addresses()).await??;
        let configured: Vec<String> = state.inner.config.blocked.iter().map(|n| n.to_string()).collect();
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"blocked": contained, "configured": configured})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}
