//! `/engage` and `/groups`: profile updates, applied in one durable SQLite
//! transaction per project before the answer.

use super::ingest::{Prepared, Work};
use super::request::{geo_ip, precision, RequestFacts};
use crate::error::ApiError;
use crate::state::{Inner, TokenLookup};
use events::{GroupUpdate, ProfileOp, ProfileUpdate, ProjectId};
use mixpanel::{Decoded, RecordError};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) enum ProfileWork {
    Users(BTreeMap<ProjectId, Vec<ProfileUpdate>>),
    Groups(BTreeMap<ProjectId, Vec<GroupUpdate>>),
}

fn unknown_token(index: usize) -> RecordError {
    RecordError { index, insert_id: None, field: "$token".to_owned(), message: "missing or unknown project token".to_owned() }
}

/// Validates each record and finds its project by token; the records that
/// fail either step go to `failed`, so the others still go through.
fn validated_with_project<I>(
    inner: &Inner,
    records: Vec<serde_json::Value>,
    validate: impl Fn(usize, serde_json::Value) -> Result<I, RecordError>,
    token_of: impl Fn(&I) -> Option<&str>,
    failed: &mut Vec<RecordError>,
) -> Result<Vec<(meta::Project, I)>, ApiError> {
    let mut accepted = Vec::with_capacity(records.len());
    let mut projects = TokenLookup::new(inner);
    for (index, record) in records.into_iter().enumerate() {
        let input = match validate(index, record) {
            Ok(input) => input,
            Err(error) => {
                failed.push(error);
                continue;
            }
        };
        match projects.get(token_of(&input))? {
            Some(project) => accepted.push((project.clone(), input)),
            None => failed.push(unknown_token(index)),
        }
    }
    Ok(accepted)
}

pub(crate) fn prepare_profiles(inner: &Inner, decoded: Decoded, facts: &RequestFacts) -> Result<Prepared, ApiError> {
    let now_ms = events::now_ms();
    let request_ip_allowed = decoded.params.ip == Some(true);
    let mut by_project: BTreeMap<ProjectId, Vec<ProfileUpdate>> = BTreeMap::new();
    let mut failed = Vec::new();
    let validate = |index, record| mixpanel::validate_profile_update(index, record, now_ms, &inner.config.limits);
    let accepted = validated_with_project(inner, decoded.records, validate, |input| input.token.as_deref(), &mut failed)?;
    let mut protection: BTreeMap<ProjectId, protect::ProtectBatch> = BTreeMap::new();
    for (project, input) in accepted {
        let batch = match protection.entry(project.id) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => entry.insert(inner.protector.batch(project.id)?),
        };
        let geo = precision(batch.geo());
        let enrich_request = enrich::EnrichRequest {
            ip: geo.and_then(|_| geo_ip(&input.ip, request_ip_allowed, facts)),
            user_agent: None,
            precision: geo.unwrap_or(enrich::GeoPrecision::Country),
        };
        for mut update in input.updates {
            if let ProfileOp::Set(set) | ProfileOp::SetOnce(set) = &mut update.op {
                inner.enricher.enrich_profile(set, &enrich_request);
            }
            batch.profile(&mut update)?;
            by_project.entry(project.id).or_default().push(update);
        }
    }
    for batch in protection.into_values() {
        batch.commit()?;
    }
    Ok(Prepared { params: decoded.params, strict: false, work: Work::Profiles(ProfileWork::Users(by_project)), failed, n_ignored: 0 })
}

pub(crate) fn prepare_groups(inner: &Inner, decoded: Decoded) -> Result<Prepared, ApiError> {
    let now_ms = events::now_ms();
    let mut by_project: BTreeMap<ProjectId, Vec<GroupUpdate>> = BTreeMap::new();
    let mut failed = Vec::new();
    let validate = |index, record| mixpanel::validate_group_update(index, record, now_ms, &inner.config.limits);
    let accepted = validated_with_project(inner, decoded.records, validate, |input| input.token.as_deref(), &mut failed)?;
    let mut protection: BTreeMap<ProjectId, protect::ProtectBatch> = BTreeMap::new();
    for (project, input) in accepted {
        let batch = match protection.entry(project.id) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => entry.insert(inner.protector.batch(project.id)?),
        };
        for mut update in input.updates {
            batch.group(&mut update)?;
            by_project.entry(project.id).or_default().push(update);
        }
    }
    for batch in protection.into_values() {
        batch.commit()?;
    }
    Ok(Prepared { params: decoded.params, strict: false, work: Work::Profiles(ProfileWork::Groups(by_project)), failed, n_ignored: 0 })
}

/// Applies the updates durably; returns how many were applied.
pub(crate) async fn apply(inner: &Arc<Inner>, work: ProfileWork) -> Result<usize, ApiError> {
    let inner = inner.clone();
    tokio::task::spawn_blocking(move || -> Result<usize, ApiError> {
        let mut n_applied = 0;
        match work {
            ProfileWork::Users(by_project) => {
                for (project, updates) in by_project {
                    inner.meta.apply_profile_updates(project, &updates)?;
                    n_applied += updates.len();
                }
            }
            ProfileWork::Groups(by_project) => {
                for (project, updates) in by_project {
                    inner.meta.apply_group_updates(project, &updates)?;
                    n_applied += updates.len();
                }
            }
        }
        Ok(n_applied)
    })
    .await?
}
