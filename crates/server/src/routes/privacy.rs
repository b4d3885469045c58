//! The privacy API: the project's policy (read, set, history), the findings
//! report, and Mixpanel's GDPR v3 endpoints for deletions and retrievals.
//! Authorised by the project secret (Basic user name, or Bearer as
//! Mixpanel's GDPR API sends its token) until scoped keys land.

use super::respond::{blocking, json_response};
use super::request::read_body;
use crate::audit_trail::record;
use crate::auth::authorised;
use meta::Scope;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meta::Project;
use privacy::policy::PolicyDocument;
use serde_json::{json, Value};

const BODY_BYTES_MAX: usize = 1024 * 1024;
/// Mixpanel's limit of ids per GDPR request.
const IDS_PER_REQUEST_MAX: usize = 2000;



fn policy_json(version: i64, document: &PolicyDocument) -> Value {
    json!({"version": version, "policy": document})
}

pub(crate) async fn get_policy(State(state): State<AppState>, request: Request) -> Response {
    async {
        let project = authorised(&state, &request.into_parts().0, Scope::Read).await?.project;
        let inner = state.inner.clone();
        let loaded = blocking(move || Ok(inner.protector.policy(project.id)?)).await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &policy_json(loaded.version, loaded.policy.document())))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn put_policy(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let project = principal.project.clone();
        let body = read_body(body, BODY_BYTES_MAX).await?;
        let value: Value = serde_json::from_slice(&body).map_err(|error| ApiError::BadRequest(format!("the policy must be a JSON object: {error}")))?;
        let document = PolicyDocument::from_json(value).map_err(|error| ApiError::BadRequest(error.to_string()))?;
        let inner = state.inner.clone();
        let (version, document) = blocking(move || {
            let version = inner.protector.set_policy(project.id, document)?;
            record(&inner, &principal, "policy.set", json!({"version": version}), None)?;
            Ok((version, inner.protector.policy(project.id)?.policy.document().clone()))
        })
        .await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &policy_json(version, &document)))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn policy_history(State(state): State<AppState>, request: Request) -> Response {
    async {
        let project = authorised(&state, &request.into_parts().0, Scope::Read).await?.project;
        let inner = state.inner.clone();
        let versions = blocking(move || Ok(inner.meta.privacy_policy_history(project.id)?)).await?;
        let versions: Vec<Value> = versions
            .into_iter()
            .map(|v| json!({"version": v.version, "created_ms": v.created_ms, "policy": serde_json::from_str::<Value>(&v.document).unwrap_or(Value::Null)}))
            .collect();
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"versions": versions})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn findings(State(state): State<AppState>, request: Request) -> Response {
    async {
        let parts = request.into_parts().0;
        let principal = authorised(&state, &parts, Scope::Read).await?;
        let project = principal.project.clone();
        let inner = state.inner.clone();
        let counts = blocking(move || {
            record(&inner, &principal, "privacy.findings.read", Value::Null, None)?;
            Ok(inner.meta.privacy_counts(project.id)?)
        })
        .await?;
        let results: Vec<Value> = counts
            .into_iter()
            .map(|c| json!({"event": c.event, "property": c.property, "kind": c.kind, "count": c.count, "first_ms": c.first_ms, "last_ms": c.last_ms}))
            .collect();
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"results": results})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// The `token` query parameter, which must name the authorised project.
fn check_token(query: Option<&str>, project: &Project) -> Result<(), ApiError> {
    let token = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).find(|(key, _)| key == "token").map(|(_, value)| value.into_owned());
    match token {
        Some(token) if token == project.token => Ok(()),
        Some(_) => Err(ApiError::BadRequest("token does not belong to the authorised project".to_owned())),
        None => Err(ApiError::BadRequest("missing token query parameter (the project token)".to_owned())),
    }
}

#[derive(serde::Deserialize)]
struct GdprRequest {
    distinct_ids: Vec<String>,
    #[serde(default)]
    compliance_type: Option<String>,
}

fn gdpr_request(body: &[u8]) -> Result<GdprRequest, ApiError> {
    let request: GdprRequest = serde_json::from_slice(body).map_err(|error| ApiError::BadRequest(format!("expected {{\"distinct_ids\": [...], \"compliance_type\": \"GDPR\"}}: {error}")))?;
    if request.distinct_ids.is_empty() || request.distinct_ids.len() > IDS_PER_REQUEST_MAX {
        return Err(ApiError::BadRequest(format!("distinct_ids must hold 1 to {IDS_PER_REQUEST_MAX} ids")));
    }
    if request.distinct_ids.iter().any(|id| id.is_empty()) {
        return Err(ApiError::BadRequest("a distinct id is empty".to_owned()));
    }
    if let Some(kind) = &request.compliance_type
        && !matches!(kind.as_str(), "GDPR" | "CCPA")
    {
        return Err(ApiError::BadRequest(format!("compliance_type must be GDPR or CCPA, got {kind:?}")));
    }
    Ok(request)
}

/// A GDPR request's common start: the caller authorised for `scope`, the
/// `token` parameter checked, the body read.
async fn gdpr_start(state: &AppState, request: Request, scope: Scope) -> Result<(crate::auth::Principal, GdprRequest), ApiError> {
    let (parts, body) = request.into_parts();
    let principal = authorised(state, &parts, scope).await?;
    check_token(parts.uri.query(), &principal.project)?;
    let request = gdpr_request(&read_body(body, BODY_BYTES_MAX).await?)?;
    Ok((principal, request))
}

fn new_task_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn ok(results: Value) -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok", "results": results}))
}

pub(crate) async fn create_deletion(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (principal, request) = gdpr_start(&state, request, Scope::Admin).await?;
        let project = principal.project.clone();
        let inner = state.inner.clone();
        let task_id = new_task_id();
        let task = task_id.clone();
        // Keys, profiles and vault go now; the background job removes the
        // events from the parts within seconds.
        blocking(move || {
            let users = crate::audit_trail::people_keys(&inner, project.id, &request.distinct_ids)?;
            let erased = inner.protector.erase(project.id, &task, &request.distinct_ids)?;
            let detail = json!({"task_id": task, "requested": request.distinct_ids.len(), "distinct_ids_erased": erased.distinct_ids.len(), "keys_destroyed": erased.keys_destroyed, "compliance_type": request.compliance_type});
            record(&inner, &principal, "gdpr.deletion", detail, Some(users))
        })
        .await?;
        Ok::<_, ApiError>(ok(json!({"task_id": task_id})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

async fn task_of(state: &AppState, parts: &axum::http::request::Parts, task_id: String, kind: &'static str, scope: Scope) -> Result<(crate::auth::Principal, meta::Erasure), ApiError> {
    let principal = authorised(state, parts, scope).await?;
    let project = principal.project.clone();
    check_token(parts.uri.query(), &project)?;
    let inner = state.inner.clone();
    let erasure = blocking(move || Ok(inner.meta.erasure(&task_id)?)).await?;
    match erasure {
        Some(erasure) if erasure.project == project.id && erasure.kind == kind => Ok((principal, erasure)),
        _ => Err(ApiError::NotFound("no such task".to_owned())),
    }
}

pub(crate) async fn deletion_status(State(state): State<AppState>, Path(task_id): Path<String>, request: Request) -> Response {
    async {
        let (parts, _) = request.into_parts();
        let (_, erasure) = task_of(&state, &parts, task_id, "deletion", Scope::Admin).await?;
        Ok::<_, ApiError>(ok(json!({"status": erasure.status, "distinct_ids_count": erasure.subjects, "requested_ms": erasure.requested_ms, "finished_ms": erasure.finished_ms})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn cancel_deletion(State(state): State<AppState>, Path(task_id): Path<String>, request: Request) -> Response {
    async {
        let (parts, _) = request.into_parts();
        task_of(&state, &parts, task_id, "deletion", Scope::Admin).await?;
        // Crypto-shredding is immediate: there is no pending window to cancel.
        Err::<Response, _>(ApiError::Conflict("a deletion takes effect when it is requested: the person's key is already destroyed and cannot be restored".to_owned()))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn create_retrieval(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (principal, request) = gdpr_start(&state, request, Scope::Export).await?;
        let project = principal.project.clone();
        let inner = state.inner.clone();
        let task_id = new_task_id();
        let task = task_id.clone();
        blocking(move || {
            inner.meta.record_retrieval(project.id, &task, &request.distinct_ids)?;
            record(&inner, &principal, "gdpr.retrieval.request", json!({"task_id": task, "requested": request.distinct_ids.len()}), None)
        })
        .await?;
        Ok::<_, ApiError>(ok(json!({"task_id": task_id})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// The retrieval's answer, built now from what is held (never stored).
pub(crate) async fn retrieval_status(State(state): State<AppState>, Path(task_id): Path<String>, request: Request) -> Response {
    async {
        let (parts, _) = request.into_parts();
        let (principal, erasure) = task_of(&state, &parts, task_id, "retrieval", Scope::Export).await?;
        let project = principal.project.clone();
        let inner = state.inner.clone();
        let people = blocking(move || {
            let ids = inner.meta.retrieval_ids(&erasure.task_id)?;
            let mut people = Vec::with_capacity(ids.len());
            let mut returned = Vec::new();
            for id in ids {
                let person = inner.protector.retrieve(&super::export::EventDays::of(&inner), project.id, &id)?;
                returned.extend(person["distinct_ids"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)));
                people.push(person);
            }
            // The answer holds decrypted personal fields: a reveal.
            let users = crate::audit_trail::people_keys(&inner, project.id, &returned)?;
            record(&inner, &principal, "pii.reveal", json!({"via": "gdpr.retrieval", "task_id": erasure.task_id, "people": people.len()}), Some(users))?;
            metrics::counter!("hearth_gdpr_retrievals_served_total").increment(1);
            Ok(people)
        })
        .await?;
        Ok::<_, ApiError>(ok(json!({"status": "SUCCESS", "result": people})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/people/{distinct_id}`: one profile, personal fields as
/// tokens; with `?reveal=true`, decrypted (an audited reveal).
pub(crate) async fn person(State(state): State<AppState>, Path(distinct_id): Path<String>, request: Request) -> Response {
    async {
        let (parts, _) = request.into_parts();
        let reveal = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).any(|(key, value)| key == "reveal" && matches!(value.as_ref(), "true" | "1"));
        // Revealing personal fields takes the admin scope (the view_pii
        // permission of members, once accounts exist).
        let principal = if reveal { authorised(&state, &parts, crate::auth::Need::RevealPii).await? } else { authorised(&state, &parts, Scope::Read).await? };
        let project = principal.project.clone();
        let inner = state.inner.clone();
        let found = blocking(move || {
            let Some((id, mut properties)) = inner.meta.profiles(project.id, std::slice::from_ref(&distinct_id), 1)?.into_iter().next() else {
                return Err(ApiError::NotFound(format!("no profile for distinct id {distinct_id:?}")));
            };
            let users = crate::audit_trail::people_keys(&inner, project.id, std::slice::from_ref(&id))?;
            let fields: Vec<String> = properties.iter().filter(|(_, v)| v.as_str().is_some_and(privacy::crypto::is_value_token)).map(|(k, _)| k.clone()).collect();
            if reveal {
                let n = inner.protector.reveal(project.id, &id, &mut properties)?;
                record(&inner, &principal, "pii.reveal", json!({"via": "profile", "fields": fields, "revealed": n}), Some(users))?;
            } else {
                let mut all_fields: Vec<String> = properties.keys().cloned().collect();
                all_fields.push("distinct_id".to_owned());
                all_fields.sort();
                record(&inner, &principal, "profile.read", json!({"returned_profiles": 1, "fields": all_fields}), Some(users))?;
            }
            if inner.meta.canaries(project.id)?.contains(&id) {
                crate::alerts::canary_touched(&inner, &principal, "profile.view", 1)?;
            }
            Ok(json!({"distinct_id": id, "properties": properties, "revealed": reveal}))
        })
        .await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &found))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/audit`: the project's audit entries (`since`, `until` as
/// milliseconds or dates, `actor`, `action`, `limit`). Reading the audit is
/// itself audited.
pub(crate) async fn audit_entries(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, _) = request.into_parts();
        let query: std::collections::HashMap<String, String> = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
        let time = |name: &str| -> Result<Option<i64>, ApiError> {
            query.get(name).map(|text| parse_time(text).ok_or_else(|| ApiError::BadRequest(format!("{name} must be milliseconds since 1970 or a date YYYY-MM-DD")))).transpose()
        };
        let limit = query.get("limit").map(|text| text.parse::<usize>().map_err(|_| ApiError::BadRequest("limit must be a number".to_owned()))).transpose()?;
        let mut filter = audit::Filter { since_ms: time("since")?, until_ms: time("until")?, actor: query.get("actor").cloned(), action: query.get("action").cloned(), project: None, limit: Some(limit.unwrap_or(1000).min(10_000)) };
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        filter.project = Some(principal.project.id.0);
        let inner = state.inner.clone();
        let entries = blocking(move || {
            record(&inner, &principal, "audit.read", json!({"actor": filter.actor, "action": filter.action}), None)?;
            inner.audit.list(&filter).map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"entries": entries})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// Milliseconds since 1970, or a UTC date.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc().timestamp_millis())
}

/// `GET /api/v1/incident/exposure?from=&to=&key=&session=&member=&country=`:
/// the exposure report of the project's audit (admin scope), as JSON,
/// without contact fields (the CLI's `--contacts` reveals those).
/// What the audit's numbers of people are on this node's events backend.
fn person_keys(inner: &crate::state::Inner) -> incident::PersonKeys<'_> {
    match inner.config.events_backend {
        crate::config::EventsBackend::Embedded => incident::PersonKeys::Store(&inner.engine),
        crate::config::EventsBackend::ClickHouse => incident::PersonKeys::Shared,
    }
}

pub(crate) async fn exposure(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, _) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let query: std::collections::HashMap<String, String> = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
        let time = |name: &str| -> Result<i64, ApiError> {
            query.get(name).and_then(|text| parse_time(text)).ok_or_else(|| ApiError::BadRequest(format!("{name} is required: milliseconds since 1970 or a date YYYY-MM-DD")))
        };
        let (from_ms, to_ms) = (time("from")?, time("to")?);
        let number = |name: &str| -> Result<Option<i64>, ApiError> { query.get(name).map(|t| t.parse::<i64>().map_err(|_| ApiError::BadRequest(format!("{name} must be a number")))).transpose() };
        let (key, member) = (number("key")?, number("member")?);
        let selector = incident::Selector { key, session: query.get("session").cloned(), member, country: query.get("country").cloned(), project: Some(principal.project.id.0) };
        let inner = state.inner.clone();
        let report = blocking(move || {
            let report = incident::exposure(&inner.audit, &inner.meta, person_keys(&inner), from_ms, to_ms, selector).map_err(|e| ApiError::Internal(e.to_string()))?;
            record(&inner, &principal, "incident.report", json!({"people": report.people.len()}), None)?;
            Ok(report)
        })
        .await?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &serde_json::to_value(&report).unwrap_or(Value::Null)))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /api/v1/canaries {"count": N}`: adds canary profiles (admin).
pub(crate) async fn create_canaries(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Admin).await?;
        let bytes = read_body(body, BODY_BYTES_MAX).await?;
        let count = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v.get("count").and_then(Value::as_u64)).unwrap_or(3);
        if !(1..=100).contains(&count) {
            return Err(ApiError::BadRequest("count must be 1 to 100".to_owned()));
        }
        let inner = state.inner.clone();
        let project = principal.project.id;
        let canaries = blocking(move || Ok(inner.protector.make_canaries(project, count as usize, events::now_ms())?)).await?;
        let n = canaries.ids.len();
        let events = canaries.events;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let done: store::Done = Box::new(move |result| {
            let _ = sender.send(result);
        });
        state.inner.store.append(store::PreparedBatch::new(project, events), done).map_err(|_| ApiError::Busy)?;
        receiver.await.map_err(|_| ApiError::Unavailable)??;
        let inner = state.inner.clone();
        blocking(move || {
            inner.meta.apply_profile_updates(project, &canaries.profiles)?;
            inner.meta.add_canaries(project, &canaries.ids)?;
            // The ids stay out of the audit: whoever reads it should not learn which profiles to avoid.
            record(&inner, &principal, "canary.create", json!({"count": n}), None)
        })
        .await?;
        Ok::<_, ApiError>(json_response(StatusCode::CREATED, &json!({"created": n})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/alerts`: the project's alerts and the instance's (sign-ins) (admin).
pub(crate) async fn list_alerts(State(state): State<AppState>, request: Request) -> Response {
    async {
        let principal = authorised(&state, &request.into_parts().0, Scope::Admin).await?;
        let inner = state.inner.clone();
        let alerts = blocking(move || Ok(inner.meta.alerts(Some(principal.project.id))?)).await?;
        let list: Vec<Value> = alerts
            .into_iter()
            .map(|a| json!({"id": a.id, "rule": a.rule, "severity": a.severity, "credential": a.actor, "detail": serde_json::from_str::<Value>(&a.detail).unwrap_or(Value::Null), "action_taken": a.action_taken, "created_ms": a.created_ms}))
            .collect();
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"alerts": list})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}
