//! The people reports in ClickHouse SQL: a cohort's members, and one
//! person's activity feed, equal to the engine's (`query::people`,
//! `query::cohorts`). Profile searches read only the metadata: the engine
//! answers them on every backend.

use super::scope::Scope;
use super::{backend, cohorts, sql};
use crate::client::Client;
use query::result::{ActivityResult, MembersResult};
use query::spec::{ActivitySpec, CohortMembersSpec, CohortRule, Unit};
use query::{parse_date, Calendar, QueryError};

/// As the engine: members listed by default, events in a feed.
const MEMBERS_LIMIT: usize = 1000;
const ACTIVITY_LIMIT: usize = 100;
/// The whole history: membership and feeds read every event of a person.
const EVER: (i64, i64) = (0, i64::MAX / 2);

/// The people of a cohort (saved, or defined in the spec) as of a day:
/// their number, and the first `limit` of them by id.
pub(crate) fn cohort_members(client: &Client, meta: &meta::Meta, project: &meta::Project, spec: &CohortMembersSpec, now_ms: i64) -> Result<MembersResult, QueryError> {
    let rule: CohortRule = match (&spec.cohort, &spec.definition) {
        (Some(id), None) => cohorts::definitions(meta, project.id, &[*id])?.remove(0).1,
        (None, Some(definition)) => definition.clone(),
        _ => return Err(QueryError::BadSpec("give either cohort (an id) or definition".to_owned())),
    };
    let calendar = Calendar::new(&project.timezone)?;
    let day = match &spec.as_of {
        Some(day) => parse_date(day, "as_of")?,
        None => calendar.date_of(now_ms),
    };
    let mut scope = Scope::open(client, meta, project.id, EVER.0, EVER.1)?;
    scope.with_profiles(&Unit::Users, &super::profile_keys(cohorts::rule_filters(&rule).iter(), None))?;
    let statement = cohorts::members(&scope, &calendar, &[(0, rule)], day)?.remove(&0).unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Member {
        unit: String,
    }
    let rows: Vec<Member> = client.query(&format!("SELECT unit FROM ({statement})")).map_err(backend)?;
    let mut members: Vec<String> = rows.into_iter().map(|row| row.unit).collect();
    members.sort();
    let count = members.len() as u64;
    members.truncate(spec.limit.unwrap_or(MEMBERS_LIMIT));
    Ok(MembersResult { count, members })
}

/// One person's ids, profile and newest events (across every id that
/// resolves to them), newest first.
pub(crate) fn activity(client: &Client, meta: &meta::Meta, project: &meta::Project, spec: &ActivitySpec) -> Result<ActivityResult, QueryError> {
    let links = query::resolve_identity_links(meta.identity_links(project.id)?);
    let canonical = links.iter().find(|(id, _)| *id == spec.distinct_id).map_or_else(|| spec.distinct_id.clone(), |(_, person)| person.clone());
    let mut distinct_ids: Vec<String> = links.iter().filter(|(_, person)| *person == canonical).map(|(id, _)| id.clone()).collect();
    distinct_ids.push(canonical.clone());
    distinct_ids.sort();
    distinct_ids.dedup();
    // The person's own profile, else the first (by id) of their other ids'.
    let profile = meta
        .profiles(project.id, &distinct_ids, distinct_ids.len())?
        .into_iter()
        .min_by_key(|(id, _)| (*id != canonical, id.clone()))
        .map(|(_, properties)| properties.into_iter().collect());
    let mut scope = Scope::open(client, meta, project.id, EVER.0, EVER.1)?;
    scope.with_full_rows();
    scope.test_units();
    let events = scope.events_between(&Unit::Users, &format!("unit = {}", sql::string(&canonical)), EVER.0, EVER.1);
    let limit = spec.limit.unwrap_or(ACTIVITY_LIMIT);
    let statement = format!(
        "SELECT time_ms, event, distinct_id, insert_id, property_keys, property_values FROM ({events}) \
         ORDER BY time_ms DESC, event DESC, insert_id DESC LIMIT {limit}"
    );
    let rows: Vec<crate::reader::RawRow> = client.query(&statement).map_err(backend)?;
    let events = rows.into_iter().map(|row| crate::reader::StoredRow::from(row).into_event().to_export_json(true)).collect();
    Ok(ActivityResult { distinct_id: canonical, distinct_ids, profile, events })
}
