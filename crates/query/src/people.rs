//! The profile reports: searching profiles by their properties, and one
//! person's profile with their activity feed across all their merged ids.

use crate::context::Profiles;
use crate::error::QueryError;
use crate::filter::ValueTest;
use crate::result::{ActivityResult, Profile, ProfilesResult};
use crate::spec::{ActivitySpec, Filter, ProfilesSpec};
use crate::table::{Identities, Table};
use crate::value::Value;
use events::Properties;

const DEFAULT_LIMIT: usize = 100;

pub(crate) fn search(profiles: &Profiles, spec: &ProfilesSpec) -> Result<ProfilesResult, QueryError> {
    let tests = compile(&spec.filters)?;
    let list: &[(String, Properties)] = match &spec.group {
        None => &profiles.people,
        Some(key) => profiles.groups.get(key).map(Vec::as_slice).unwrap_or(&[]),
    };
    let mut found: Vec<Profile> = list
        .iter()
        .filter(|(_, properties)| tests.iter().all(|test| test.holds(properties)))
        .map(|(id, properties)| Profile { distinct_id: id.clone(), properties: properties.clone() })
        .collect();
    found.sort_by(|a, b| a.distinct_id.cmp(&b.distinct_id));
    found.truncate(spec.limit.unwrap_or(DEFAULT_LIMIT));
    Ok(ProfilesResult { profiles: found })
}

/// A filter tree evaluated on one profile's properties.
enum ProfileTest {
    Property(String, ValueTest),
    All(Vec<ProfileTest>),
    Any(Vec<ProfileTest>),
}

impl ProfileTest {
    fn holds(&self, properties: &Properties) -> bool {
        match self {
            ProfileTest::Property(key, test) => test.holds(properties.get(key).and_then(Value::from_json).as_ref()),
            ProfileTest::All(list) => list.iter().all(|t| t.holds(properties)),
            ProfileTest::Any(list) => list.iter().any(|t| t.holds(properties)),
        }
    }
}

fn compile(filters: &[Filter]) -> Result<Vec<ProfileTest>, QueryError> {
    filters
        .iter()
        .map(|filter| match filter {
            Filter::Property { property, op, value, .. } => Ok(ProfileTest::Property(property.clone(), ValueTest::new(*op, value, property)?)),
            Filter::All { all } => Ok(ProfileTest::All(compile(all)?)),
            Filter::Any { any } => Ok(ProfileTest::Any(compile(any)?)),
            Filter::Cohort { .. } | Filter::NotCohort { .. } => Err(QueryError::bad("profile search filters on profile properties only")),
        })
        .collect()
}

pub(crate) fn activity(table: &Table, identities: &Identities, profiles: &Profiles, spec: &ActivitySpec) -> Result<ActivityResult, QueryError> {
    let canonical = identities.resolve(&spec.distinct_id).to_owned();
    let distinct_ids = identities.ids_of(&canonical);
    let profile = profiles
        .people
        .iter()
        .filter(|(id, _)| distinct_ids.contains(id))
        .min_by_key(|(id, _)| (id != &canonical, id.clone()))
        .map(|(_, properties)| properties.clone());
    let unit = table.units.iter().position(|id| id.as_ref() == canonical);
    let events = match unit {
        None => Vec::new(),
        Some(unit) => {
            let rows: Vec<usize> = table.rows_of(unit).rev().take(spec.limit.unwrap_or(DEFAULT_LIMIT)).collect();
            table.full_events(&rows)?
        }
    };
    Ok(ActivityResult { distinct_id: canonical, distinct_ids, profile, events })
}
