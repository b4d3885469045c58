//! Recording reads and changes in the audit log, from any handler.
//!
//! Fail closed: a read whose audit entry cannot be written is refused, so
//! that nothing is read unrecorded. The source address is turned into its
//! country here and goes no further.

use crate::error::ApiError;
use crate::state::Inner;
use audit::{Actor, NewEntry, Outcome, UserSet};
use axum::http::request::Parts;
use meta::Project;
use serde_json::Value;

/// Who is asking, and from which country: taken from the request before it
/// is consumed.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) country: Option<String>,
}

impl Caller {
    pub(crate) fn of(parts: &Parts, inner: &Inner) -> Caller {
        let facts = crate::routes::request_facts(parts, inner);
        let country = facts.client_ip.and_then(|ip| inner.enricher.geo.as_ref().and_then(|geo| geo.lookup(ip).country_code));
        Caller { country }
    }
}

/// The actor of a request authorised by a project's secret.
pub(crate) fn secret_actor(project: &Project) -> Actor {
    Actor::new("project_secret", project.id.0.to_string())
}

/// Appends an entry; blocking (SQLite, fsync).
pub(crate) fn record(inner: &Inner, caller: &Caller, project: &Project, action: &str, detail: Value, users: Option<Vec<u32>>) -> Result<(), ApiError> {
    let mut entry = NewEntry::new(secret_actor(project), action, Outcome::Ok).project(project.id.0).country(caller.country.clone()).detail(detail);
    if let Some(keys) = users {
        entry = entry.users(UserSet::from_keys(keys));
    }
    inner.audit.append(entry).map_err(|error| ApiError::Internal(format!("could not write the audit entry, so the request is refused: {error}")))?;
    Ok(())
}
