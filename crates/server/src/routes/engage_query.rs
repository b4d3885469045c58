//! `POST /api/2.0/engage`: read profiles, in the shape of Mixpanel's Query
//! API. Form or query fields: `distinct_id`, `distinct_ids` (a JSON array),
//! `data_group_id` (a group key, to read group profiles instead).
//!
//! Listings are user-level rows: they take the export permission (and a
//! fresh step-up for members), and leave personal fields out.

use super::export::query_map;
use super::request::read_body;
use crate::audit_trail::record;
use crate::auth::authorise;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub(crate) async fn handle(State(state): State<AppState>, request: Request) -> Response {
    match query(state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn query(state: AppState, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = read_body(body, 1024 * 1024).await?;
    let fields = query_map(parts.uri.query(), &body);
    let mut ids: Vec<String> = Vec::new();
    if let Some(id) = fields.get("distinct_id") {
        ids.push(id.clone());
    }
    if let Some(list) = fields.get("distinct_ids") {
        let parsed: Vec<Value> = serde_json::from_str(list)
            .map_err(|_| ApiError::BadRequest("distinct_ids must be a JSON array".to_owned()))?;
        ids.extend(parsed.into_iter().filter_map(|v| events::group_id_text(&v)));
    }
    let group_key = fields.get("data_group_id").cloned();
    let inner = state.inner.clone();
    let results = tokio::task::spawn_blocking(move || -> Result<Vec<(String, events::Properties)>, ApiError> {
        let principal = authorise(&inner, &parts, meta::Scope::Export)?;
        let project = principal.project.clone();
        let limit = inner.config.profile_page_max;
        let mut found = match &group_key {
            Some(key) => inner.meta.group_profiles(project.id, key, &ids, limit)?,
            None => inner.meta.profiles(project.id, &ids, limit)?,
        };
        // Listings carry no personal fields (their tokens included): one
        // person's, decrypted, is GET /api/v1/people/{id}?reveal=true.
        for (_, properties) in &mut found {
            properties.retain(|_, value| !value.as_str().is_some_and(privacy::crypto::is_value_token));
        }
        let returned: Vec<String> = found.iter().map(|(id, _)| id.clone()).collect();
        let mut fields: std::collections::BTreeSet<&str> = found.iter().flat_map(|(_, p)| p.keys().map(String::as_str)).collect();
        if !found.is_empty() {
            fields.insert("distinct_id");
        }
        let detail = json!({"group_key": group_key, "returned_profiles": returned.len(), "fields": fields});
        let users = if group_key.is_none() { Some(crate::audit_trail::people_keys(&inner, project.id, &returned)?) } else { None };
        record(&inner, &principal, "profile.read", detail, users)?;
        let canaries: std::collections::HashSet<String> = inner.meta.canaries(project.id)?.into_iter().collect();
        let touched = crate::alerts::canaries_touched(&canaries, returned.iter().map(String::as_str));
        if !touched.is_empty() {
            crate::alerts::canary_touched(&inner, &principal, "profile.read", touched.len())?;
        }
        Ok(found)
    })
    .await??;
    let total = results.len();
    let results: Vec<Value> = results.into_iter().map(|(id, properties)| json!({"$distinct_id": id, "$properties": properties})).collect();
    Ok(Json(json!({"page": 0, "page_size": state.inner.config.profile_page_max, "session_id": null, "status": "ok", "total": total, "results": results})).into_response())
}
