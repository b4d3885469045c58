//! `GET /api/2.0/export`: Mixpanel's raw export, as JSONL, streamed.
//!
//! Parameters: `from_date`, `to_date` (YYYY-MM-DD, inclusive, UTC), `event`
//! (a JSON array of names), `limit`, `time_in_ms`. Unlike Mixpanel, the
//! output is deduplicated, so export followed by import round-trips exactly.
//!
//! Guardrails: personal fields (the values stored as `pii:` tokens) are left
//! out unless `include_personal=true` is asked by a member holding
//! `view_pii` (then they are decrypted, an audited reveal); an export above
//! the organisation's threshold (rows or people) waits for a second owner's
//! approval (`approval_id`); a credential's daily row quota stops it.

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

/// Where an export reads events: this node's store, or the events backend
/// that the nodes share (ClickHouse).
#[derive(Clone)]
pub(crate) enum EventDays {
    Store(store::Snapshot),
    Backend(std::sync::Arc<dyn query::ReportBackend>),
}

impl EventDays {
    pub(crate) fn of(inner: &crate::state::Inner) -> EventDays {
        match (&inner.reports, inner.config.events_backend) {
            (Some(backend), crate::config::EventsBackend::ClickHouse) => EventDays::Backend(backend.clone()),
            _ => EventDays::Store(inner.store.snapshot()),
        }
    }

    /// Each day's events in `[from_day, to_day]`, oldest first, while `visit` says go on.
    fn scan(&self, project: events::ProjectId, from_day: i32, to_day: i32, mut visit: impl FnMut(store::DayRows) -> bool) -> Result<(), String> {
        match self {
            EventDays::Store(snapshot) => snapshot.scan_days(project, from_day, to_day, visit).map_err(|e| e.to_string()),
            EventDays::Backend(backend) => backend.scan_days(project, from_day, to_day, &mut visit).map_err(|e| e.to_string()),
        }
    }
}

impl protect::EventDays for EventDays {
    fn scan_days(&self, project: events::ProjectId, from_day: i32, to_day: i32, visit: &mut dyn FnMut(store::DayRows) -> bool) -> Result<(), String> {
        self.scan(project, from_day, to_day, visit)
    }
}

/// Whose rows an export returns, for the audit: the store's user keys, or
/// (events in ClickHouse) distinct ids, numbered at the end by the person
/// keys that every node shares.
enum People {
    Keys(HashSet<u32>),
    Ids(HashSet<Box<str>>),
}

impl People {
    fn for_days(days: &EventDays) -> People {
        match days {
            EventDays::Store(_) => People::Keys(HashSet::new()),
            EventDays::Backend(_) => People::Ids(HashSet::new()),
        }
    }

    fn add(&mut self, event: &store::StoredEvent) {
        match self {
            People::Keys(keys) => {
                keys.insert(event.user_key());
            }
            People::Ids(ids) => {
                if !ids.contains(event.distinct_id()) {
                    ids.insert(event.distinct_id().into());
                }
            }
        }
    }

    fn count(&self) -> usize {
        match self {
            People::Keys(keys) => keys.len(),
            People::Ids(ids) => ids.len(),
        }
    }

    fn into_keys(self, meta: &meta::Meta, project: events::ProjectId) -> Result<Vec<u32>, meta::Error> {
        match self {
            People::Keys(keys) => Ok(keys.into_iter().collect()),
            People::Ids(ids) => meta.person_keys_of(project, &ids.into_iter().map(String::from).collect::<Vec<_>>()),
        }
    }
}

struct ExportParams {
    from_day: i32,
    to_day: i32,
    events: Option<HashSet<String>>,
    limit: Option<usize>,
    time_in_ms: bool,
    include_personal: bool,
    approval_id: Option<i64>,
    /// Mixpanel's `where` expression, as sent and parsed.
    filter: Option<(String, mixpanel::Filter)>,
}

impl ExportParams {
    /// The export's identity, for approvals: the same export, whatever the
    /// order of its parameters.
    fn canonical(&self, project: events::ProjectId) -> String {
        let events: Option<std::collections::BTreeSet<&String>> = self.events.as_ref().map(|names| names.iter().collect());
        let filter = self.filter.as_ref().map(|(text, _)| text);
        serde_json::json!({"project": project.0, "from_day": self.from_day, "to_day": self.to_day, "events": events, "where": filter, "limit": self.limit, "include_personal": self.include_personal}).to_string()
    }

    /// Whether the export returns this event: its name is asked for and the
    /// `where` expression holds over its properties (with `time` in seconds,
    /// `distinct_id` and `$insert_id`, as the exported line has them).
    fn selects(&self, event: &store::StoredEvent) -> bool {
        if self.events.as_ref().is_some_and(|names| !names.contains(event.name())) {
            return false;
        }
        self.filter.as_ref().is_none_or(|(_, filter)| filter.matches(&event.export_properties()))
    }
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
    let filter = match query.get("where").filter(|text| !text.trim().is_empty()) {
        None => None,
        Some(text) => Some((text.clone(), mixpanel::Filter::parse(text).map_err(|error| ApiError::BadRequest(format!("where: {error}")))?)),
    };
    let flag = |name: &str| matches!(query.get(name).map(String::as_str), Some("true" | "1"));
    let approval_id = match query.get("approval_id") {
        None => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| ApiError::BadRequest("approval_id must be the number of an approved export request".to_owned()))?),
    };
    Ok(ExportParams { from_day, to_day, events, limit, time_in_ms: flag("time_in_ms"), include_personal: flag("include_personal"), approval_id, filter })
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
    // A member's quota spans all their sessions (signing in again resets
    // nothing); a key's or the secret's is its own.
    let member = principal.actor.user.clone().filter(|_| principal.actor.kind == "session");
    let actor_prefix = if member.is_some() { "session:".to_owned() } else { principal.actor.label() };
    let filter = audit::Filter { since_ms: Some(midnight), actor: Some(actor_prefix), action: Some("export".to_owned()), ..audit::Filter::default() };
    let entries = inner.audit.list(&filter).map_err(|e| ApiError::Internal(e.to_string()))?;
    let same = |actor: &audit::Actor| match &member {
        Some(member) => actor.kind == "session" && actor.user.as_ref() == Some(member),
        None => *actor == principal.actor,
    };
    let used: u64 = entries.iter().filter(|e| same(&e.body.actor)).filter_map(|e| e.body.detail.get("rows").and_then(|v| v.as_u64())).sum();
    let quota = inner.config.export_rows_per_day;
    if used >= quota {
        return Err(ApiError::QuotaExceeded {
            message: format!("this {}'s daily export quota of {quota} rows is used up; it resets at 00:00 UTC ([exports] rows_per_day_per_credential)", if member.is_some() { "member" } else { "credential" }),
            retry_after_seconds: ((midnight + events::MS_PER_DAY - events::now_ms()) / 1000).max(1) as u64,
        });
    }
    Ok(quota - used)
}

/// Names of the organisation's export thresholds (settings).
pub const APPROVAL_ROWS_SETTING: &str = "export_approval_rows";
pub const APPROVAL_USERS_SETTING: &str = "export_approval_users";

/// Refuses an export above the organisation's threshold unless it carries
/// a second owner's approval for exactly this export, which it spends.
fn require_approval(inner: &crate::state::Inner, principal: &crate::auth::Principal, params: &ExportParams, days: &EventDays, erased: &HashSet<String>, remaining: u64) -> Result<(), ApiError> {
    let threshold = |name: &str| -> Result<Option<u64>, ApiError> { Ok(inner.meta.setting(name)?.and_then(|v| v.parse::<u64>().ok())) };
    let (max_rows, max_users) = (threshold(APPROVAL_ROWS_SETTING)?, threshold(APPROVAL_USERS_SETTING)?);
    if max_rows.is_none() && max_users.is_none() {
        return Ok(());
    }
    // Count what the export would return, without returning it.
    let cap = params.limit.unwrap_or(usize::MAX).min(usize::try_from(remaining).unwrap_or(usize::MAX));
    let (mut rows, mut users) = (0usize, People::for_days(days));
    days.scan(principal.project.id, params.from_day, params.to_day, |day| {
        for event in &day.events {
            if rows >= cap {
                return false;
            }
            if !params.selects(event) || (!erased.is_empty() && erased.contains(event.distinct_id())) {
                continue;
            }
            rows += 1;
            users.add(event);
        }
        true
    })
    .map_err(ApiError::Internal)?;
    let (rows, users) = (rows as u64, users.count() as u64);
    let reason = match (max_rows, max_users) {
        (Some(max), _) if rows > max => format!("{rows} rows exceed the threshold of {max}"),
        (_, Some(max)) if users > max => format!("{users} people exceed the threshold of {max}"),
        _ => return Ok(()),
    };
    let canonical = params.canonical(principal.project.id);
    let requester = principal.actor.label();
    if let Some(id) = params.approval_id {
        if inner.meta.use_export_approval(id, &requester, &canonical, events::now_ms())? {
            return Ok(());
        }
        return Err(ApiError::Forbidden(format!("export request {id} is not approved for this credential and these parameters (or was used or expired)")));
    }
    let member = principal.actor.user.as_deref().and_then(|u| u.strip_prefix("member:")).and_then(|n| n.parse::<i64>().ok());
    let request = inner.meta.request_export(&meta::NewExportRequest { project: principal.project.id, requester: &requester, requester_member: member, params: &canonical, rows, users, reason: &reason })?;
    crate::audit_trail::record(inner, principal, "export.approval.request", serde_json::json!({"request": request.id, "rows": rows, "users": users, "reason": reason}), None)?;
    Err(ApiError::ApprovalRequired { request: Box::new(request) })
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
    let days = EventDays::of(&state.inner);
    let (params, principal, (erased, canaries), remaining) = {
        let days = days.clone();
        tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
            let principal = authorise(&inner, &parts, meta::Scope::Export)?;
            if params.include_personal {
                // Decrypted personal fields: a member with view_pii, freshly stepped up.
                authorise(&inner, &parts, crate::auth::Need::RevealPii)?;
            }
            let remaining = export_rows_remaining(&inner, &principal)?;
            // Erased people leave exports at once, before compaction.
            let erased: HashSet<String> = inner.meta.erased_ids(principal.project.id)?.into_iter().collect();
            let canaries: HashSet<String> = inner.meta.canaries(principal.project.id)?.into_iter().collect();
            require_approval(&inner, &principal, &params, &days, &erased, remaining)?;
            Ok((params, principal, (erased, canaries), remaining))
        })
        .await??
    };
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
        let mut people = People::for_days(&days);
        let mut canary_rows = 0usize;
        // Rows whose personal fields were left out; fields revealed.
        let mut withheld = 0u64;
        let mut revealed = 0u64;
        let mut personal: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        // What every exported line carries besides its properties.
        let mut fields: std::collections::BTreeSet<String> = ["event", "time", "distinct_id", "$insert_id"].into_iter().map(str::to_owned).collect();
        let scanned = days.scan(project_id, params.from_day, params.to_day, |day| {
            for event in &day.events {
                if n_left == 0 {
                    return false;
                }
                if !params.selects(event) {
                    continue;
                }
                if !erased.is_empty() && erased.contains(event.distinct_id()) {
                    continue;
                }
                n_left -= 1;
                n_rows += 1;
                people.add(event);
                if !canaries.is_empty() && canaries.contains(event.distinct_id()) {
                    canary_rows += 1;
                }
                let properties = event.properties_json();
                if properties.contains("\"pii:") {
                    // Personal fields: left out, or revealed to a view_pii holder.
                    let mut map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(properties).unwrap_or_default();
                    if params.include_personal {
                        let mut props: events::Properties = map.into_iter().collect();
                        match inner.protector.reveal(project_id, event.distinct_id(), &mut props) {
                            Ok(n) => revealed += n as u64,
                            Err(error) => tracing::error!(%error, "personal fields could not be revealed in an export"),
                        }
                        map = props.into_iter().collect();
                    }
                    map.retain(|_, value| !value.as_str().is_some_and(privacy::crypto::is_value_token));
                    if params.include_personal {
                        personal.extend(map.keys().filter(|k| privacy::policy::PERSONAL_KEYS.contains(&k.as_str())).cloned());
                    } else {
                        withheld += 1;
                    }
                    fields.extend(map.keys().cloned());
                    let rewritten = serde_json::Value::Object(map).to_string();
                    event.write_export_json_with(&mut buffer, params.time_in_ms, &rewritten);
                } else {
                    if let Ok(keys) = serde_json::from_str::<HashMap<std::borrow::Cow<'_, str>, serde::de::IgnoredAny>>(properties) {
                        for key in keys.into_keys() {
                            if !fields.contains(key.as_ref()) {
                                fields.insert(key.into_owned());
                            }
                        }
                    }
                    event.write_export_json(&mut buffer, params.time_in_ms);
                }
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
            "from_day": params.from_day, "to_day": params.to_day, "events": params.events, "where": params.filter.as_ref().map(|(text, _)| text), "rows": n_rows, "fields": fields, "stopped_at_quota": stopped_at_quota,
            "personal_fields_withheld_rows": withheld, "include_personal": params.include_personal, "revealed_values": revealed, "approval_id": params.approval_id,
        });
        // The rows have left by now: a failure here can only be logged loudly.
        let user_keys = people.into_keys(&inner.meta, project_id).unwrap_or_else(|error| {
            tracing::error!(%error, "an export's people could not be numbered for the audit");
            Vec::new()
        });
        if let Err(error) = crate::audit_trail::record(&inner, &principal, "export", detail, Some(user_keys)) {
            tracing::error!(%error, "an export was not audited");
        }
        if revealed > 0 {
            let detail = serde_json::json!({"via": "export", "fields": personal, "revealed": revealed});
            if let Err(error) = crate::audit_trail::record(&inner, &principal, "pii.reveal", detail, None) {
                tracing::error!(%error, "an export's reveal was not audited");
            }
        }
        if canary_rows > 0
            && let Err(error) = crate::alerts::canary_touched(&inner, &principal, "export", canary_rows)
        {
            tracing::error!(%error, "a canary alert could not be raised");
        }
        if let Err(error) = crate::alerts::check_export_volume(&inner, &principal) {
            tracing::error!(%error, "the export volume rule could not be checked");
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
