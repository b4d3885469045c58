//! Cohort filters in ClickHouse SQL: each saved cohort the report names
//! becomes a statement of its member units (people), which the report's
//! predicate tests with `unit IN (...)`.
//!
//! Membership follows the engine (`query::cohorts`): over the project's
//! whole history, per person, `did` counts the matching events in the
//! rule's period (the last K days ending on the report's `to`, or dates),
//! `did_not` wants none, a profile rule tests the person's profile, and
//! `all`/`any` combine; only people with events at all can be members.

use super::scope::Scope;
use super::sql;

use query::spec::{CohortPeriod, CohortRule, Filter, Source, Unit};
use query::{Calendar, QueryError};
use std::collections::HashMap;

/// The saved cohorts `filters` name (nested ones too), each once.
pub(crate) fn named<'a>(filters: impl IntoIterator<Item = &'a Filter>) -> Vec<i64> {
    fn walk(filter: &Filter, ids: &mut Vec<i64>) {
        match filter {
            Filter::Cohort { cohort: id } | Filter::NotCohort { not_cohort: id } => ids.push(*id),
            Filter::Any { any: list } | Filter::All { all: list } => list.iter().for_each(|f| walk(f, ids)),
            Filter::Property { .. } => {}
        }
    }
    let mut ids = Vec::new();
    filters.into_iter().for_each(|f| walk(f, &mut ids));
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The definitions of `ids`; an unknown id is the client's error.
pub(crate) fn definitions(meta: &meta::Meta, project: events::ProjectId, ids: &[i64]) -> Result<Vec<(i64, CohortRule)>, QueryError> {
    let saved = meta.cohorts(project)?;
    ids.iter()
        .map(|id| {
            let cohort = saved.iter().find(|c| c.id == *id).ok_or(QueryError::UnknownCohort(*id))?;
            let rule: CohortRule = serde_json::from_str(&cohort.definition).map_err(|_| QueryError::UnknownCohort(*id))?;
            Ok((*id, rule))
        })
        .collect()
}

/// The filters a rule reads, profile rules as profile filters: what the
/// scope must upload.
pub(crate) fn rule_filters(rule: &CohortRule) -> Vec<Filter> {
    match rule {
        CohortRule::All { all: rules } | CohortRule::Any { any: rules } => rules.iter().flat_map(rule_filters).collect(),
        CohortRule::Profile(filter) => vec![as_profile_filter(filter)],
        CohortRule::Did { filters, .. } | CohortRule::DidNot { filters, .. } => filters.clone(),
    }
}

/// Each cohort's members as a statement of units, for `sql::filters_with`.
pub(crate) fn members(scope: &Scope<'_>, calendar: &Calendar, rules: &[(i64, CohortRule)], day: jiff::civil::Date) -> Result<sql::Cohorts, QueryError> {
    let mut out = HashMap::new();
    for (id, rule) in rules {
        let condition = render(calendar, rule, day)?;
        let events = scope.events_between(&Unit::Users, "1", 0, i64::MAX / 2);
        out.insert(*id, format!("SELECT unit FROM ({events}) GROUP BY unit HAVING {condition}"));
    }
    Ok(out)
}

/// The per-person aggregate condition of a rule.
fn render(calendar: &Calendar, rule: &CohortRule, day: jiff::civil::Date) -> Result<String, QueryError> {
    Ok(match rule {
        CohortRule::All { all } => {
            let parts = all.iter().map(|r| render(calendar, r, day)).collect::<Result<Vec<_>, _>>()?;
            if parts.is_empty() { "1".to_owned() } else { format!("({})", parts.join(" AND ")) }
        }
        CohortRule::Any { any } => {
            let parts = any.iter().map(|r| render(calendar, r, day)).collect::<Result<Vec<_>, _>>()?;
            if parts.is_empty() { "0".to_owned() } else { format!("({})", parts.join(" OR ")) }
        }
        CohortRule::Profile(filter) => format!("max(toUInt8({})) = 1", sql::filters(&[as_profile_filter(filter)])?),
        CohortRule::Did { did, at_least, period, filters } => format!("countIf({}) >= {at_least}", did_test(calendar, did, period, filters, day)?),
        CohortRule::DidNot { did_not, period, filters } => format!("countIf({}) = 0", did_test(calendar, did_not, period, filters, day)?),
    })
}

fn did_test(calendar: &Calendar, event: &str, period: &CohortPeriod, filters: &[Filter], day: jiff::civil::Date) -> Result<String, QueryError> {
    let (start, end) = period_range(calendar, period, day)?;
    Ok(format!("{} AND time_ms >= {start} AND time_ms < {end}", sql::selector(event, filters, &sql::Cohorts::new())?))
}

/// As the engine: the last K days ending on `day`, or explicit dates.
fn period_range(calendar: &Calendar, period: &CohortPeriod, day: jiff::civil::Date) -> Result<(i64, i64), QueryError> {
    let bad = |message: &str| QueryError::BadSpec(message.to_owned());
    let days = |n: i64| jiff::Span::new().days(n);
    let from = match (&period.from, period.within_days) {
        (Some(from), _) => query::parse_date(from, "from")?,
        (None, Some(k)) if k > 0 => day.checked_sub(days(i64::from(k) - 1)).map_err(|_| bad("within_days reaches too far back"))?,
        (None, Some(_)) => return Err(bad("within_days must be at least 1")),
        (None, None) => jiff::civil::date(1970, 1, 1),
    };
    let to = match &period.to {
        Some(to) => query::parse_date(to, "to")?,
        None => day,
    };
    if to < from {
        return Err(bad("a cohort period ends before it starts"));
    }
    let after = to.checked_add(days(1)).map_err(|_| bad("a cohort period ends too late"))?;
    Ok((calendar.day_start(from), calendar.day_start(after)))
}

/// Profile rules test profile properties unless they say otherwise.
fn as_profile_filter(filter: &Filter) -> Filter {
    match filter {
        Filter::Property { property, op, value, .. } => Filter::Property { property: property.clone(), op: *op, value: value.clone(), source: Source::Profile },
        Filter::Any { any } => Filter::Any { any: any.iter().map(as_profile_filter).collect() },
        Filter::All { all } => Filter::All { all: all.iter().map(as_profile_filter).collect() },
        other => other.clone(),
    }
}

/// Refuses cohorts in a report counted by group, as the engine does.
pub(crate) fn check_unit(unit: &Unit, ids: &[i64]) -> Result<(), QueryError> {
    if !ids.is_empty() && *unit != Unit::Users {
        return Err(QueryError::BadSpec("cohorts are sets of people; they cannot filter a report counted by group".into()));
    }
    Ok(())
}
