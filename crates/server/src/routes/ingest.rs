//! `/track`, `/import`, `/engage`, `/groups`: decode, validate per record,
//! enrich, make durable, answer as the SDK expects.
//!
//! The answer is sent only after the store reports the events durable in the
//! WAL (or SQLite, for profiles): an acknowledged event survives a crash.

use super::profiles;
use super::request::{geo_ip, precision, random_insert_id, read_body, RequestFacts};
use crate::auth::authorise;
use crate::error::{reply_response, ApiError};
use crate::state::{AppState, Inner, TokenLookup};
use axum::extract::{Request, State};
use axum::response::Response;
use events::{Event, ProjectId};
use mixpanel::{Decoded, Endpoint, Mode, RecordError, RecordOutcome};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) async fn handle(State(state): State<AppState>, endpoint: Endpoint, request: Request) -> Response {
    match handle_inner(state, endpoint, request).await {
        Ok(response) => response,
        Err(error) => {
            metrics::counter!("hearth_requests_rejected_total", "endpoint" => endpoint.path(), "reason" => reason_of(&error)).increment(1);
            axum::response::IntoResponse::into_response(error)
        }
    }
}

fn reason_of(error: &ApiError) -> &'static str {
    match error {
        ApiError::BadRequest(_) => "bad_request",
        ApiError::Unauthorized => "unauthorized",
        ApiError::Forbidden(_) | ApiError::ApprovalRequired { .. } => "forbidden",
        ApiError::PayloadTooLarge(_) => "too_large",
        ApiError::NotFound(_) => "not_found",
        ApiError::Conflict(_) => "conflict",
        ApiError::Busy => "busy",
        ApiError::RateLimited { .. } => "rate_limited",
        ApiError::QuotaExceeded { .. } => "quota",
        ApiError::Unavailable => "unavailable",
        ApiError::NotImplemented(_) => "not_implemented",
        ApiError::Internal(_) => "internal",
    }
}

async fn handle_inner(state: AppState, endpoint: Endpoint, request: Request) -> Result<Response, ApiError> {
    let inner = state.inner.clone();
    let (parts, body) = request.into_parts();
    let facts = RequestFacts::from_parts(&parts, &inner);
    inner.limiters.ingest(facts.client_ip)?;
    let body = read_body(body, inner.config.limits.body_bytes_max).await?;
    let work_inner = inner.clone();
    // Decoding and validating a 10 MB batch is CPU work: off the async threads.
    let prepared = tokio::task::spawn_blocking(move || -> Result<Prepared, ApiError> {
        let decoded = mixpanel::decode_request(&facts.raw(&body), &work_inner.config.limits).map_err(|error| match error.http_status() {
            413 => ApiError::PayloadTooLarge(error.to_string()),
            _ => ApiError::BadRequest(error.to_string()),
        })?;
        match endpoint {
            Endpoint::Track => prepare_events(&work_inner, decoded, &facts, None),
            Endpoint::Import => {
                let project = authorise(&work_inner, &parts, meta::Scope::Ingest)?.project;
                prepare_events(&work_inner, decoded, &facts, Some(project))
            }
            Endpoint::Engage => profiles::prepare_profiles(&work_inner, decoded, &facts),
            Endpoint::Groups => profiles::prepare_groups(&work_inner, decoded),
        }
    })
    .await??;
    let n_rejected = prepared.failed.len();
    let n_accepted = match prepared.work {
        Work::Events(batches) => append_events(&inner, batches).await?,
        Work::Profiles(work) => profiles::apply(&inner, work).await?,
    };
    let label = endpoint.path();
    metrics::counter!("hearth_events_accepted_total", "endpoint" => label).increment(n_accepted as u64);
    for failure in &prepared.failed {
        metrics::counter!("hearth_events_rejected_total", "endpoint" => label, "reason" => failure.field.clone()).increment(1);
    }
    metrics::counter!("hearth_events_ignored_total", "endpoint" => label).increment(prepared.n_ignored as u64);
    let params = prepared.params;
    let reply = if endpoint == Endpoint::Import && prepared.strict {
        mixpanel::import_reply_strict(n_accepted, &prepared.failed)
    } else {
        let error = prepared.failed.first().map(|f| format!("{}: {}", f.field, f.message));
        let reply = mixpanel::track_reply(n_accepted, params.verbose, error.as_deref());
        if params.img { mixpanel::image_reply() } else { reply }
    };
    let reply = match &params.callback {
        Some(callback) => mixpanel::with_callback(reply, callback),
        None => reply,
    };
    tracing::debug!(endpoint = label, n_accepted, n_rejected, "ingested");
    Ok(reply_response(reply))
}

pub(crate) enum Work {
    /// Per project, ready for the store's ingest thread.
    Events(Vec<store::PreparedBatch>),
    Profiles(profiles::ProfileWork),
}

pub(crate) struct Prepared {
    pub(crate) params: mixpanel::Params,
    pub(crate) strict: bool,
    pub(crate) work: Work,
    pub(crate) failed: Vec<RecordError>,
    pub(crate) n_ignored: usize,
}

/// Validates, authorises (by token, or the import's secret), enriches and
/// strips every record; groups the accepted events by project.
fn prepare_events(inner: &Inner, decoded: Decoded, facts: &RequestFacts, import_project: Option<meta::Project>) -> Result<Prepared, ApiError> {
    let mode = if import_project.is_some() { Mode::Import } else { Mode::Track };
    let strict = decoded.params.strict.unwrap_or(!decoded.from_data_param);
    let request_ip_allowed = match mode {
        Mode::Track => decoded.params.ip == Some(true),
        Mode::Import => decoded.params.ip != Some(false),
    };
    let now_ms = events::now_ms();
    let mut batches: BTreeMap<ProjectId, Vec<Event>> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut n_ignored = 0;
    let mut new_insert_id = random_insert_id;
    let mut projects = TokenLookup::new(inner);
    let mut protection: BTreeMap<ProjectId, protect::ProtectBatch> = BTreeMap::new();
    for (index, record) in decoded.records.into_iter().enumerate() {
        let input = match mixpanel::validate_event(index, record, mode, now_ms, &inner.config.limits, &mut new_insert_id) {
            RecordOutcome::Accepted(input) => input,
            RecordOutcome::Ignored => {
                n_ignored += 1;
                continue;
            }
            RecordOutcome::Rejected(error) => {
                failed.push(error);
                continue;
            }
        };
        let found = match &import_project {
            Some(project) => Some(project),
            None => projects.get(input.token.as_deref())?,
        };
        let project_id = match found {
            Some(project) => project.id,
            None => {
                failed.push(RecordError {
                    index,
                    insert_id: Some(input.event.insert_id.clone()),
                    field: "properties.token".to_owned(),
                    message: "missing or unknown project token".to_owned(),
                });
                continue;
            }
        };
        let mut event = input.event;
        let batch = match protection.entry(project_id) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => entry.insert(inner.protector.batch(project_id)?),
        };
        let geo = precision(batch.geo());
        let enrich_request = enrich::EnrichRequest {
            ip: geo.and_then(|_| geo_ip(&input.ip, request_ip_allowed, facts)),
            user_agent: facts.user_agent.as_deref(),
            precision: geo.unwrap_or(enrich::GeoPrecision::Country),
        };
        inner.enricher.enrich_event(&mut event.properties, &enrich_request);
        if batch.event(&mut event)? == privacy::apply::Verdict::Drop {
            n_ignored += 1;
            continue;
        }
        batches.entry(project_id).or_default().push(event);
    }
    // Sealed values and counts are durable before the events that point at them.
    for batch in protection.into_values() {
        batch.commit()?;
    }
    for (project, events) in &batches {
        inner.identity.record(&inner.meta, *project, events)?;
    }
    let prepared = batches.into_iter().map(|(project, events)| store::PreparedBatch::new(project, events)).collect();
    Ok(Prepared { params: decoded.params, strict, work: Work::Events(prepared), failed, n_ignored })
}

/// Appends each project's batch and waits until all are durable.
async fn append_events(inner: &Arc<Inner>, batches: Vec<store::PreparedBatch>) -> Result<usize, ApiError> {
    let mut waiting = Vec::with_capacity(batches.len());
    let mut n_events = 0;
    for batch in batches {
        n_events += batch.len();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let done: store::Done = Box::new(move |result| {
            let _ = sender.send(result);
        });
        inner.store.append(batch, done).map_err(|error| match error {
            store::AppendError::Busy => ApiError::Busy,
            store::AppendError::Stopped => ApiError::Unavailable,
        })?;
        waiting.push(receiver);
    }
    for receiver in waiting {
        receiver.await.map_err(|_| ApiError::Unavailable)??;
    }
    Ok(n_events)
}
