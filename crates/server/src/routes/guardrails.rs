//! The organisation's guardrails over the API: export thresholds and the
//! second owner's approval of exports above them, and the alert rules.

use super::respond::{blocking, json_response};
use super::request::read_body;
use crate::audit_trail::record;
use crate::auth::{authorised, require_stepped_up, session_of, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use alerting::{Action, Rule};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meta::Scope;
use serde_json::{json, Value};



async fn body_json(body: axum::body::Body) -> Result<Value, ApiError> {
    let bytes = read_body(body, 64 * 1024).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("expected a JSON object: {e}")))
}

/// `GET /api/v1/exports/requests[?status=pending]`: exports waiting for, or
/// given, a second owner's decision (admin).
pub(crate) async fn list_export_requests(State(state): State<AppState>, request: Request) -> Response {
    async {
        let parts = request.into_parts().0;
        authorised(&state, &parts, Scope::Admin).await?;
        let status = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).find(|(k, _)| k == "status").map(|(_, v)| v.into_owned());
        let inner = state.inner.clone();
        let requests = blocking(move || Ok(inner.meta.export_requests(status.as_deref())?)).await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"requests": requests})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /api/v1/exports/requests/{id}/approve` and `/refuse`: an owner
/// other than the one who asked, freshly confirmed with their passkey.
pub(crate) async fn approve_export(state: State<AppState>, id: Path<String>, request: Request) -> Response {
    decide(state, id, request, true).await
}

pub(crate) async fn refuse_export(state: State<AppState>, id: Path<String>, request: Request) -> Response {
    decide(state, id, request, false).await
}

async fn decide(State(state): State<AppState>, Path(id): Path<String>, request: Request, approve: bool) -> Response {
    // Parsed here, so that a bad id gets the JSON error every route gives.
    let Ok(id) = id.parse::<i64>() else {
        return ApiError::BadRequest(format!("{id:?} is not an export request number")).into_response();
    };
    let parts = request.into_parts().0;
    let inner = state.inner.clone();
    blocking(move || {
        let view = session_of(&inner, &parts)?;
        let member = &view.member;
        if member.role != meta::Role::Owner {
            return Err(ApiError::Forbidden("only an owner approves or refuses exports".to_owned()));
        }
        require_stepped_up(&view)?;
        let found = inner.meta.export_request(id)?.ok_or_else(|| ApiError::NotFound(format!("no export request {id}")))?;
        if found.requester_member == Some(member.id) {
            return Err(ApiError::Forbidden("a second owner must decide: you asked for this export".to_owned()));
        }
        if !inner.meta.decide_export_request(id, member.id, approve)? {
            return Err(ApiError::Conflict(format!("export request {id} is {}, not pending", found.status)));
        }
        let project = inner.meta.project_by_id(events::ProjectId(found.project))?.ok_or_else(|| ApiError::NotFound(format!("no project {}", found.project)))?;
        let actor = audit::Actor { kind: "session".to_owned(), id: view.session.short_id.clone(), user: Some(format!("member:{}", member.id)) };
        let principal = Principal { project, actor, source: crate::audit_trail::Source::default() };
        let action = if approve { "export.approval.grant" } else { "export.approval.refuse" };
        record(&inner, &principal, action, json!({"request": id, "requester": found.requester, "rows": found.rows, "users": found.users}), None)?;
        let decided = inner.meta.export_request(id)?;
        Ok(json_response(StatusCode::OK, &json!({"request": decided})))
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

fn threshold_of(inner: &crate::state::Inner, name: &str) -> Result<Option<u64>, ApiError> {
    Ok(inner.meta.setting(name)?.and_then(|v| v.parse().ok()))
}

fn export_settings(inner: &crate::state::Inner) -> Result<Value, ApiError> {
    Ok(json!({
        "approval_rows": threshold_of(inner, super::APPROVAL_ROWS_SETTING)?,
        "approval_users": threshold_of(inner, super::APPROVAL_USERS_SETTING)?,
        "rows_per_day_per_credential": inner.config.export_rows_per_day,
    }))
}

/// `GET /api/v1/exports/settings` (admin).
pub(crate) async fn get_export_settings(State(state): State<AppState>, request: Request) -> Response {
    async {
        authorised(&state, &request.into_parts().0, Scope::Admin).await?;
        let inner = state.inner.clone();
        let settings = blocking(move || export_settings(&inner)).await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &settings))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `PUT /api/v1/exports/settings` with `approval_rows` and `approval_users`
/// (a number, or null for no threshold) (admin).
pub(crate) async fn put_export_settings(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let value = body_json(body).await?;
        let inner = state.inner.clone();
        let settings = blocking(move || {
            for (field, name) in [("approval_rows", super::APPROVAL_ROWS_SETTING), ("approval_users", super::APPROVAL_USERS_SETTING)] {
                match value.get(field) {
                    None => {}
                    Some(Value::Null) => inner.meta.set_setting(name, None)?,
                    Some(v) => {
                        let n = v.as_u64().ok_or_else(|| ApiError::BadRequest(format!("{field} must be a whole number of at least 0, or null")))?;
                        inner.meta.set_setting(name, Some(&n.to_string()))?;
                    }
                }
            }
            let settings = export_settings(&inner)?;
            record(&inner, &principal, "exports.settings.set", settings.clone(), None)?;
            Ok(settings)
        })
        .await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &settings))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

fn rules_json(settings: &[alerting::RuleSettings]) -> Value {
    Value::Array(
        settings
            .iter()
            .map(|s| json!({"rule": s.rule, "enabled": s.enabled, "action": s.action, "threshold": s.threshold, "threshold_means": s.rule.threshold_meaning(), "severity": s.rule.severity(), "describes": s.rule.describe()}))
            .collect(),
    )
}

/// `GET /api/v1/alerts/rules` (admin).
pub(crate) async fn get_alert_rules(State(state): State<AppState>, request: Request) -> Response {
    async {
        authorised(&state, &request.into_parts().0, Scope::Admin).await?;
        let inner = state.inner.clone();
        let rules = blocking(move || crate::alerts::rule_settings(&inner)).await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"rules": rules_json(&rules)})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `PUT /api/v1/alerts/rules/{rule}` with any of `enabled`, `action`
/// (`none` or `revoke`), `threshold` (admin).
pub(crate) async fn put_alert_rule(State(state): State<AppState>, Path(name): Path<String>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let value = body_json(body).await?;
        let rule = Rule::parse(&name).map_err(|e| ApiError::NotFound(e.to_string()))?;
        let inner = state.inner.clone();
        let rules = blocking(move || {
            let mut settings = crate::alerts::rule_settings(&inner)?.into_iter().find(|s| s.rule == rule).unwrap_or_else(|| rule.default_settings());
            if let Some(v) = value.get("enabled") {
                settings.enabled = v.as_bool().ok_or_else(|| ApiError::BadRequest("enabled must be true or false".to_owned()))?;
            }
            if let Some(v) = value.get("action") {
                settings.action = Action::parse(v.as_str().unwrap_or_default()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            }
            if let Some(v) = value.get("threshold") {
                settings.threshold = v.as_f64().filter(|t| t.is_finite() && *t >= 0.0).ok_or_else(|| ApiError::BadRequest("threshold must be a number of at least 0".to_owned()))?;
            }
            inner.meta.set_alert_rule(&meta::StoredRule { rule: rule.as_str().to_owned(), enabled: settings.enabled, action: settings.action.as_str().to_owned(), threshold: settings.threshold })?;
            record(&inner, &principal, "alerts.rule.set", json!({"rule": rule, "enabled": settings.enabled, "action": settings.action, "threshold": settings.threshold}), None)?;
            crate::alerts::rule_settings(&inner)
        })
        .await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"rules": rules_json(&rules)})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}
