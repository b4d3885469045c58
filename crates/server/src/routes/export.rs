//! `GET /api/2.0/export`: Mixpanel's raw export, as JSONL, streamed.
//!
//! Parameters: `from_date`, `to_date` (YYYY-MM-DD, inclusive, UTC), `event`
//! (a JSON array of names), `limit`, `time_in_ms`. Unlike Mixpanel, the
//! output is deduplicated, so export followed by import round-trips exactly.

use super::request::read_body;
use crate::auth::authorise;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};

const CHUNK_BYTES: usize = 256 * 1024;

struct ExportParams {
    from_day: i32,
    to_day: i32,
    events: Option<HashSet<String>>,
    limit: Option<usize>,
    time_in_ms: bool,
}

pub(crate) fn parse_day(text: &str, name: &str) -> Result<i32, ApiError> {
    let date = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("{name} must be a date as YYYY-MM-DD")))?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Ok((date - epoch).num_days() as i32)
}

fn parse_params(query: &HashMap<String, String>) -> Result<ExportParams, ApiError> {
    let required = |name: &str| query.get(name).ok_or_else(|| ApiError::BadRequest(format!("{name} is required")));
    let from_day = parse_day(required("from_date")?, "from_date")?;
    let to_day = parse_day(required("to_date")?, "to_date")?;
    if to_day < from_day {
        return Err(ApiError::BadRequest("to_date is before from_date".to_owned()));
    }
    let events = match query.get("event") {
        None => None,
        Some(text) => Some(
            serde_json::from_str::<Vec<String>>(text)
                .map_err(|_| ApiError::BadRequest("event must be a JSON array of event names".to_owned()))?
                .into_iter()
                .collect(),
        ),
    };
    let limit = match query.get("limit") {
        None => None,
        Some(text) => Some(text.parse::<usize>().map_err(|_| ApiError::BadRequest("limit must be a positive integer".to_owned()))?),
    };
    if query.contains_key("where") {
        return Err(ApiError::BadRequest("the where parameter is not supported yet; filter with event".to_owned()));
    }
    let time_in_ms = matches!(query.get("time_in_ms").map(String::as_str), Some("true" | "1"));
    Ok(ExportParams { from_day, to_day, events, limit, time_in_ms })
}

pub(crate) fn query_map(query: Option<&str>, body: &[u8]) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = HashMap::new();
    for source in [query.unwrap_or_default().as_bytes(), body] {
        for (key, value) in form_urlencoded::parse(source) {
            map.insert(key.into_owned(), value.into_owned());
        }
    }
    map
}

/// Rows this credential may still export today: the quota less the rows of
/// today's audited exports by the same credential.
fn export_rows_remaining(inner: &crate::state::Inner, principal: &crate::auth::Principal) -> Result<u64, ApiError> {
    let midnight = events::now_ms().div_euclid(events::MS_PER_DAY) * events::MS_PER_DAY;
    let filter = audit::Filter { since_ms: Some(midnight), actor: Some(principal.actor.label()), action: Some("export".to_owned()), ..audit::Filter::default() };
    let entries = inner.audit.list(&filter).map_err(|e| ApiError::Internal(e.to_string()))?;
    let used: u64 = entries.iter().filter(|e| e.body.actor == principal.actor).filter_map(|e| e.body.detail.get("rows").and_then(|v| v.as_u64())).sum();
    let quota = inner.config.export_rows_per_day;
    if used >= quota {
        return Err(ApiError::QuotaExceeded {
            message: format!("this credential's daily export quota of {quota} rows is used up; it resets at 00:00 UTC ([exports] rows_per_day_per_credential)"),
            retry_after_seconds: ((midnight + events::MS_PER_DAY - events::now_ms()) / 1000).max(1) as u64,
        });
    }
    Ok(quota - used)
}

pub(crate) async fn handle(State(state): State<AppState>, request: Request) -> Response {
    match export(state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn export(state: AppState, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = read_body(body, 64 * 1024).await?;
    let params = parse_params(&query_map(parts.uri.query(), &body))?;
    let inner = state.inner.clone();
    let (principal, (erased, canaries), remaining) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let principal = authorise(&inner, &parts, meta::Scope::Export)?;
        let remaining = export_rows_remaining(&inner, &principal)?;
        // Erased people leave exports at once, before compaction.
        let erased: std::collections::HashSet<String> = inner.meta.erased_ids(principal.project.id)?.into_iter().collect();
        let canaries: std::collections::HashSet<String> = inner.meta.canaries(principal.project.id)?.into_iter().collect();
        Ok((principal, (erased, canaries), remaining))
    })
    .await??;
    let snapshot = state.inner.store.snapshot();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let project_id = principal.project.id;
    let inner = state.inner.clone();
    tokio::task::spawn_blocking(move || {
        let mut buffer = Vec::with_capacity(CHUNK_BYTES + 4096);
        // The request's own limit, and the credential's daily quota.
        let mut n_left = params.limit.unwrap_or(usize::MAX).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let quota_cut = (remaining as usize) < params.limit.unwrap_or(usize::MAX);
        let mut n_rows = 0u64;
        // For the audit: whose rows and which fields left the server.
        let mut user_keys: Vec<u32> = Vec::new();
        let mut canary_rows = 0usize;
        // What every exported line carries besides its properties.
        let mut fields: std::collections::BTreeSet<String> = ["event", "time", "distinct_id", "$insert_id"].into_iter().map(str::to_owned).collect();
        let scanned = snapshot.scan_days(project_id, params.from_day, params.to_day, |day| {
            for event in &day.events {
                if n_left == 0 {
                    return false;
                }
                if params.events.as_ref().is_some_and(|names| !names.contains(event.name())) {
                    continue;
                }
                if !erased.is_empty() && erased.contains(event.distinct_id()) {
                    continue;
                }
                n_left -= 1;
                n_rows += 1;
                user_keys.push(event.user_key());
                if !canaries.is_empty() && canaries.contains(event.distinct_id()) {
                    canary_rows += 1;
                }
                if let Ok(keys) = serde_json::from_str::<std::collections::HashMap<std::borrow::Cow<'_, str>, serde::de::IgnoredAny>>(event.properties_json()) {
                    for key in keys.into_keys() {
                        if !fields.contains(key.as_ref()) {
                            fields.insert(key.into_owned());
                        }
                    }
                }
                event.write_export_json(&mut buffer, params.time_in_ms);
                buffer.push(b'\n');
                if buffer.len() >= CHUNK_BYTES && sender.blocking_send(Ok(Bytes::from(std::mem::take(&mut buffer)))).is_err() {
                    return false;
                }
            }
            n_left > 0
        });
        match scanned {
            Ok(()) => {
                if !buffer.is_empty() {
                    let _ = sender.blocking_send(Ok(Bytes::from(buffer)));
                }
            }
            Err(error) => {
                tracing::error!(%error, "export scan failed");
                let _ = sender.blocking_send(Err(std::io::Error::other("export failed")));
            }
        }
        metrics::counter!("hearth_export_rows_total").increment(n_rows);
        let stopped_at_quota = quota_cut && n_left == 0;
        let detail = serde_json::json!({
            "from_day": params.from_day, "to_day": params.to_day, "events": params.events, "rows": n_rows, "fields": fields, "stopped_at_quota": stopped_at_quota,
        });
        // The rows have left by now: a failure here can only be logged loudly.
        if let Err(error) = crate::audit_trail::record(&inner, &principal, "export", detail, Some(user_keys)) {
            tracing::error!(%error, "an export was not audited");
        }
        if canary_rows > 0
            && let Err(error) = crate::alerts::canary_alert(&inner, &principal, "export", canary_rows)
        {
            tracing::error!(%error, "a canary alert could not be raised");
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    // The most rows this answer can hold under the daily quota.
    if let Ok(value) = HeaderValue::from_str(&remaining.to_string()) {
        response.headers_mut().insert("x-hearth-export-rows-remaining", value);
    }
    Ok(response)
}
