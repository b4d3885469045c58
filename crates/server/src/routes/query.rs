//! The report API: `POST /api/v1/query` with a JSON spec (docs/reports.md),
//! saved cohorts, and the OpenAPI document. Authorised by the project secret
//! (HTTP Basic user name) until scoped keys land.

use super::respond::json_response;
use super::request::read_body;
use crate::auth::authorised;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use crate::audit_trail::record;
use meta::Scope;
use serde_json::{json, Value};

const SPEC_BYTES_MAX: usize = 1024 * 1024;
const OPENAPI: &str = include_str!("openapi.json");

impl From<query::QueryError> for ApiError {
    fn from(error: query::QueryError) -> Self {
        match error {
            query::QueryError::Unsupported(reason) => ApiError::NotImplemented(reason),
            query::QueryError::Backend(detail) => {
                tracing::error!(%detail, "a report failed in the event database");
                ApiError::Unavailable
            }
            error if error.is_client_error() => ApiError::BadRequest(error.to_string()),
            error => ApiError::Internal(error.to_string()),
        }
    }
}


pub(crate) async fn run(State(state): State<AppState>, request: Request) -> Response {
    report(state, request).await.unwrap_or_else(IntoResponse::into_response)
}

async fn report(state: AppState, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = read_body(body, SPEC_BYTES_MAX).await?;
    let spec: Result<query::Spec, _> = serde_json::from_slice(&body);
    // Listings of people are user-level rows: the export permission (and a
    // step-up for members), as raw export and /api/2.0/engage.
    let listing = matches!(spec, Ok(query::Spec::Profiles(_) | query::Spec::CohortMembers(_)));
    let principal = authorised(&state, &parts, if listing { Scope::Export } else { Scope::Read }).await?;
    let project = principal.project.clone();
    let spec = spec.map_err(|error| ApiError::BadRequest(format!("invalid report spec: {error}")))?;
    // Profile searches read only the metadata: the engine answers them on any backend.
    let external = state.inner.reports.clone().filter(|_| !matches!(spec, query::Spec::Profiles(_)));
    if external.is_none() && !matches!(spec, query::Spec::Profiles(_)) {
        state.inner.config.events_backend.require_embedded("reports")?;
    }
    let inner = state.inner.clone();
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || -> Result<query::ReportResult, ApiError> {
        let (mut result, mut facts) = match &external {
            Some(backend) => (backend.run(&project, &spec)?, query::ReadFacts::default()),
            None => inner.engine.run_audited(&project, &spec)?,
        };
        if inner.config.events_backend == crate::config::EventsBackend::ClickHouse {
            // No store user keys here: the people listed, as the person keys
            // every node shares.
            let returned = result.returned_people();
            facts.returned_people = returned.len() as u64;
            facts.returned_user_keys = crate::audit_trail::people_keys(&inner, project.id, &returned)?;
        }
        if let query::ReportResult::Profiles(profiles) = &mut result {
            // Listings leave personal fields (their tokens too) out.
            for profile in &mut profiles.profiles {
                profile.properties.retain(|_, value| !value.as_str().is_some_and(privacy::crypto::is_value_token));
            }
        }
        let fields = returned_fields(&result);
        let detail = json!({"spec": spec, "events_read": facts.events_read, "people_read": facts.people_read, "returned_people": facts.returned_people, "fields": fields});
        let users = (facts.returned_people > 0).then_some(facts.returned_user_keys);
        record(&inner, &principal, "query", detail, users)?;
        Ok(result)
    })
    .await??;
    metrics::histogram!("hearth_query_seconds").record(started.elapsed().as_secs_f64());
    Ok(json_response(StatusCode::OK, &result))
}

/// The fields of people's data a result carries (for the audit; empty for
/// aggregates).
fn returned_fields(result: &query::ReportResult) -> Vec<String> {
    let mut fields = std::collections::BTreeSet::new();
    match result {
        query::ReportResult::Profiles(profiles) => {
            fields.insert("distinct_id".to_owned());
            for profile in &profiles.profiles {
                fields.extend(profile.properties.keys().cloned());
            }
        }
        query::ReportResult::Members(_) => {
            fields.insert("distinct_id".to_owned());
        }
        query::ReportResult::Activity(activity) => {
            fields.insert("distinct_id".to_owned());
            fields.extend(activity.profile.iter().flat_map(|p| p.keys().cloned()));
            for event in &activity.events {
                if let Some(properties) = event.get("properties").and_then(|p| p.as_object()) {
                    fields.extend(properties.keys().cloned());
                }
            }
        }
        _ => {}
    }
    fields.into_iter().collect()
}

pub(crate) async fn openapi() -> Response {
    let mut response = OPENAPI.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn cohort_json(cohort: &meta::SavedCohort) -> Value {
    let definition: Value = serde_json::from_str(&cohort.definition).unwrap_or(Value::Null);
    json!({"id": cohort.id, "name": cohort.name, "definition": definition, "created_ms": cohort.created_ms})
}

pub(crate) async fn list_cohorts(State(state): State<AppState>, request: Request) -> Response {
    async {
        let project = authorised(&state, &request.into_parts().0, Scope::Read).await?.project;
        let inner = state.inner.clone();
        let cohorts = tokio::task::spawn_blocking(move || inner.meta.cohorts(project.id)).await??;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"cohorts": cohorts.iter().map(cohort_json).collect::<Vec<_>>()})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/events/names`: the project's event names, most frequent
/// first (for pickers). Names only: no one's rows.
pub(crate) async fn event_names(State(state): State<AppState>, request: Request) -> Response {
    async {
        let project = authorised(&state, &request.into_parts().0, Scope::Read).await?.project;
        let external = state.inner.reports.clone();
        if external.is_none() {
            state.inner.config.events_backend.require_embedded("the list of event names")?;
        }
        let inner = state.inner.clone();
        let names = tokio::task::spawn_blocking(move || match &external {
            Some(backend) => backend.event_names(&project),
            None => inner.engine.event_names(&project),
        })
        .await??;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"events": names})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// The properties the live view shows: what and where, never who.
const LIVE_FIELDS: [&str; 6] = ["$browser", "$os", "mp_country_code", "$current_url", "mp_lib", "$referring_domain"];
const LIVE_ROWS: usize = 50;

/// `GET /api/v1/events/live[?after_ms=T]`: the project's latest events of
/// today and yesterday (UTC), newest first, newer than `after_ms`: name,
/// time and a few coarse properties, no ids; canaries and erased people
/// left out. Audited like every read.
pub(crate) async fn live_events(State(state): State<AppState>, request: Request) -> Response {
    async {
        let parts = request.into_parts().0;
        let principal = authorised(&state, &parts, Scope::Read).await?;
        let external = state.inner.reports.clone();
        if external.is_none() {
            state.inner.config.events_backend.require_embedded("the live view")?;
        }
        let after_ms = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .find(|(k, _)| k == "after_ms")
            .map(|(_, v)| v.parse::<i64>().map_err(|_| ApiError::BadRequest("after_ms must be milliseconds since 1970".to_owned())))
            .transpose()?
            .unwrap_or(i64::MIN);
        let inner = state.inner.clone();
        let rows = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, ApiError> {
            let project = principal.project.id;
            let hidden: std::collections::HashSet<String> = inner.meta.canaries(project)?.into_iter().chain(inner.meta.erased_ids(project)?).collect();
            let today = events::now_ms().div_euclid(events::MS_PER_DAY) as i32;
            if let Some(backend) = &external {
                let from_ms = i64::from(today - 1) * events::MS_PER_DAY;
                let latest = backend.latest_events(&principal.project, from_ms, after_ms, LIVE_ROWS, &LIVE_FIELDS)?;
                let rows: Vec<Value> = latest.into_iter().map(|e| json!({"event": e.event, "time_ms": e.time_ms, "properties": e.properties})).collect();
                record(&inner, &principal, "events.live", json!({"rows": rows.len(), "fields": LIVE_FIELDS}), None)?;
                return Ok(rows);
            }
            let mut latest: Vec<store::StoredEvent> = Vec::new();
            inner.store.snapshot().scan_days(project, today - 1, today, |day| {
                // Only rows that can still make the newest LIVE_ROWS are copied.
                let mut floor = if latest.len() < LIVE_ROWS { after_ms } else { latest.last().map_or(after_ms, |e| e.time_ms()).max(after_ms) };
                for event in &day.events {
                    if event.time_ms() > floor && !hidden.contains(event.distinct_id()) {
                        latest.push(event.clone());
                        if latest.len() >= 2 * LIVE_ROWS {
                            latest.sort_by_key(|e| std::cmp::Reverse(e.time_ms()));
                            latest.truncate(LIVE_ROWS);
                            floor = latest.last().map_or(floor, |e| e.time_ms());
                        }
                    }
                }
                latest.sort_by_key(|e| std::cmp::Reverse(e.time_ms()));
                latest.truncate(LIVE_ROWS);
                true
            })?;
            let rows: Vec<Value> = latest
                .iter()
                .map(|event| {
                    let properties: serde_json::Map<String, Value> = LIVE_FIELDS.iter().filter_map(|key| event.property(key).map(|v| ((*key).to_owned(), v))).collect();
                    json!({"event": event.name(), "time_ms": event.time_ms(), "properties": properties})
                })
                .collect();
            record(&inner, &principal, "events.live", json!({"rows": rows.len(), "fields": LIVE_FIELDS}), None)?;
            Ok(rows)
        })
        .await??;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &json!({"events": rows})))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCohort {
    name: String,
    definition: query::spec::CohortRule,
}

pub(crate) async fn create_cohort(State(state): State<AppState>, request: Request) -> Response {
    async {
        let (parts, body) = request.into_parts();
        let principal = authorised(&state, &parts, Scope::Read).await?;
        let project = principal.project.clone();
        let body = read_body(body, SPEC_BYTES_MAX).await?;
        let cohort: NewCohort = serde_json::from_slice(&body).map_err(|error| ApiError::BadRequest(format!("invalid cohort: {error}")))?;
        if cohort.name.trim().is_empty() {
            return Err(ApiError::BadRequest("a cohort needs a name".to_owned()));
        }
        let definition = serde_json::to_string(&cohort.definition).unwrap_or_default();
        let inner = state.inner.clone();
        let saved = tokio::task::spawn_blocking(move || -> Result<meta::SavedCohort, ApiError> {
            let saved = inner.meta.create_cohort(project.id, cohort.name.trim(), &definition, events::now_ms())?;
            record(&inner, &principal, "cohort.create", json!({"cohort": saved.id, "name": saved.name}), None)?;
            Ok(saved)
        })
        .await??;
        Ok::<_, ApiError>(json_response(StatusCode::CREATED, &cohort_json(&saved)))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn delete_cohort(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Response {
    async {
        let parts = request.into_parts().0;
        let principal = authorised(&state, &parts, Scope::Read).await?;
        let project = principal.project.clone();
        let id: i64 = id.parse().map_err(|_| ApiError::BadRequest(format!("cohort id must be an integer, got {id:?}")))?;
        let inner = state.inner.clone();
        let removed = tokio::task::spawn_blocking(move || -> Result<bool, ApiError> {
            let removed = inner.meta.delete_cohort(project.id, id)?;
            if removed {
                record(&inner, &principal, "cohort.delete", json!({"cohort": id}), None)?;
            }
            Ok(removed)
        })
        .await??;
        if removed {
            Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
        } else {
            Ok(crate::error::reply_response(mixpanel::error_reply(404, &format!("cohort {id} does not exist"))))
        }
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}
