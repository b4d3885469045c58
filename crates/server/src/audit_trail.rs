//! Recording reads and changes in the audit log, from any handler.
//!
//! Fail closed: a read whose audit entry cannot be written is refused, so
//! that nothing is read unrecorded.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Inner;
use audit::{NewEntry, Outcome, UserSet};
use serde_json::Value;
use std::net::IpAddr;

/// Where a request came from, as far as the audit may say: the country of
/// its address, and the address itself only when the organisation opted in
/// (`hearth admin audit-addresses --on`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Source {
    pub(crate) country: Option<String>,
    pub(crate) address: Option<String>,
}

impl Source {
    /// Blocking (reads the organisation's opt-in from SQLite).
    pub(crate) fn of(inner: &Inner, ip: Option<IpAddr>) -> Source {
        let country = ip.and_then(|ip| inner.enricher.geo.as_ref().and_then(|geo| geo.lookup(ip).country_code));
        let opted_in = ip.is_some() && inner.meta.audit_addresses().unwrap_or_else(|error| {
            tracing::error!(%error, "could not read the audit address setting; addresses are left out");
            false
        });
        let address = ip.filter(|_| opted_in).map(|ip| ip.to_canonical().to_string());
        Source { country, address }
    }

    /// An entry carrying this source.
    pub(crate) fn stamp(&self, entry: NewEntry) -> NewEntry {
        entry.country(self.country.clone()).address(self.address.clone())
    }
}

/// Appends an entry for what `principal` did; blocking (SQLite, fsync).
/// The numbers the audit records for these people: the embedded store's user
/// keys, or, where events live in ClickHouse, the person keys every node
/// shares (the exposure report reads them back the same way).
pub(crate) fn people_keys(inner: &Inner, project: events::ProjectId, distinct_ids: &[String]) -> Result<Vec<u32>, ApiError> {
    match inner.config.events_backend {
        crate::config::EventsBackend::Embedded => Ok(inner.engine.user_keys_of(project, distinct_ids)?),
        crate::config::EventsBackend::ClickHouse => Ok(inner.meta.person_keys_of(project, distinct_ids)?),
    }
}

pub(crate) fn record(inner: &Inner, principal: &Principal, action: &str, detail: Value, users: Option<Vec<u32>>) -> Result<(), ApiError> {
    let mut entry = principal.source.stamp(NewEntry::new(principal.actor.clone(), action, Outcome::Ok).project(principal.project.id.0).detail(detail));
    if let Some(keys) = users {
        entry = entry.users(UserSet::from_keys(keys));
    }
    inner.audit.append(entry).map_err(|error| ApiError::Internal(format!("could not write the audit entry, so the request is refused: {error}")))?;
    // The read is recorded; an alert that cannot be raised must not fail it.
    if let Err(error) = crate::alerts::check_read(inner, principal, action) {
        tracing::error!(%error, "the alert rules could not be checked");
    }
    Ok(())
}
