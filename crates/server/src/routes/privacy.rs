//! The privacy API: the project's policy (read, set, history), the findings
//! report, and Mixpanel's GDPR v3 endpoints for deletions and retrievals.
//! Authorised by the project secret (Basic user name, or Bearer as
//! Mixpanel's GDPR API sends its token) until scoped keys land.

use super::request::read_body;
use crate::auth::project_from_secret;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use meta::Project;
use privacy::policy::PolicyDocument;
use serde_json::{json, Value};

const BODY_BYTES_MAX: usize = 1024 * 1024;
/// Mixpanel's limit of ids per GDPR request.
const IDS_PER_REQUEST_MAX: usize = 2000;

fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut response = (status, serde_json::to_vec(value).unwrap_or_default()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn authorised(state: &AppState, headers: axum::http::HeaderMap) -> Result<Project, ApiError> {
    let inner = state.inner.clone();
    tokio::task::spawn_blocking(move || project_from_secret(&inner, &headers)).await?
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await?
}

fn policy_json(version: i64, document: &PolicyDocument) -> Value {
    json!({"version": version, "policy": document})
}

pub(crate) async fn get_policy(State(state): State<AppState>, request: Request) -> Response {
    async {
        let project = authorised(&state, request.into_parts().0.headers).await?;
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
        let project = authorised(&state, parts.headers).await?;
        let body = read_body(body, BODY_BYTES_MAX).await?;
        let value: Value = serde_json::from_slice(&body).map_err(|error| ApiError::BadRequest(format!("the policy must be a JSON object: {error}")))?;
        let document = PolicyDocument::from_json(value).map_err(|error| ApiError::BadRequest(error.to_string()))?;
        let inner = state.inner.clone();
        let (version, document) = blocking(move || {
            let version = inner.protector.set_policy(project.id, document)?;
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
        let project = authorised(&state, request.into_parts().0.headers).await?;
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
        let project = authorised(&state, request.into_parts().0.headers).await?;
        let inner = state.inner.clone();
        let counts = blocking(move || Ok(inner.meta.privacy_counts(project.id)?)).await?;
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

fn new_task_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn ok(results: Value) -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok", "results": results}))
}

pub(crate) async fn create_deletion(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let project = authorised(&state, parts.headers).await?;
        check_token(parts.uri.query(), &project)?;
        let request = gdpr_request(&read_body(body, BODY_BYTES_MAX).await?)?;
        let inner = state.inner.clone();
        let task_id = new_task_id();
        let task = task_id.clone();
        // Keys, profiles and vault go now; the background job removes the
        // events from the parts within seconds.
        blocking(move || Ok(inner.protector.erase(project.id, &task, &request.distinct_ids)?)).await?;
        Ok::<_, ApiError>(ok(json!({"task_id": task_id})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

async fn task_of(state: &AppState, parts: &axum::http::request::Parts, task_id: String, kind: &'static str) -> Result<(Project, meta::Erasure), ApiError> {
    let project = authorised(state, parts.headers.clone()).await?;
    check_token(parts.uri.query(), &project)?;
    let inner = state.inner.clone();
    let erasure = blocking(move || Ok(inner.meta.erasure(&task_id)?)).await?;
    match erasure {
        Some(erasure) if erasure.project == project.id && erasure.kind == kind => Ok((project, erasure)),
        _ => Err(ApiError::NotFound("no such task".to_owned())),
    }
}

pub(crate) async fn deletion_status(State(state): State<AppState>, Path(task_id): Path<String>, request: Request) -> Response {
    async {
        let (parts, _) = request.into_parts();
        let (_, erasure) = task_of(&state, &parts, task_id, "deletion").await?;
        Ok::<_, ApiError>(ok(json!({"status": erasure.status, "distinct_ids_count": erasure.subjects, "requested_ms": erasure.requested_ms, "finished_ms": erasure.finished_ms})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn cancel_deletion(State(state): State<AppState>, Path(task_id): Path<String>, request: Request) -> Response {
    async {
        let (parts, _) = request.into_parts();
        task_of(&state, &parts, task_id, "deletion").await?;
        // Crypto-shredding is immediate: there is no pending window to cancel.
        Err::<Response, _>(ApiError::Conflict("a deletion takes effect when it is requested: the person's key is already destroyed and cannot be restored".to_owned()))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn create_retrieval(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let project = authorised(&state, parts.headers).await?;
        check_token(parts.uri.query(), &project)?;
        let request = gdpr_request(&read_body(body, BODY_BYTES_MAX).await?)?;
        let inner = state.inner.clone();
        let task_id = new_task_id();
        let task = task_id.clone();
        blocking(move || Ok(inner.meta.record_retrieval(project.id, &task, &request.distinct_ids)?)).await?;
        Ok::<_, ApiError>(ok(json!({"task_id": task_id})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// The retrieval's answer, built now from what is held (never stored).
pub(crate) async fn retrieval_status(State(state): State<AppState>, Path(task_id): Path<String>, request: Request) -> Response {
    async {
        let (parts, _) = request.into_parts();
        let (project, erasure) = task_of(&state, &parts, task_id, "retrieval").await?;
        let inner = state.inner.clone();
        let people = blocking(move || {
            let ids = inner.meta.retrieval_ids(&erasure.task_id)?;
            let mut people = Vec::with_capacity(ids.len());
            for id in ids {
                people.push(inner.protector.retrieve(&inner.store, project.id, &id)?);
            }
            metrics::counter!("hearth_gdpr_retrievals_served_total").increment(1);
            Ok(people)
        })
        .await?;
        Ok::<_, ApiError>(ok(json!({"status": "SUCCESS", "result": people})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}
