//! Recording reads and changes in the audit log, from any handler.
//!
//! Fail closed: a read whose audit entry cannot be written is refused, so
//! that nothing is read unrecorded.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Inner;
use audit::{NewEntry, Outcome, UserSet};
use serde_json::Value;

/// Appends an entry for what `principal` did; blocking (SQLite, fsync).
pub(crate) fn record(inner: &Inner, principal: &Principal, action: &str, detail: Value, users: Option<Vec<u32>>) -> Result<(), ApiError> {
    let mut entry = NewEntry::new(principal.actor.clone(), action, Outcome::Ok).project(principal.project.id.0).country(principal.country.clone()).detail(detail);
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
