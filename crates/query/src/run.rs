//! From a spec to a result: picks the table the report counts over, builds
//! its context and calls the report's module.

use crate::calendar::{parse_date, Calendar};
use crate::cohorts;
use crate::context::{Context, Profiles};
use crate::error::QueryError;
use crate::result::{MembersResult, ReportResult};
use crate::spec::{CohortRule, Spec, Unit};
use crate::table::{Identities, Table, UnitKind};
use crate::{flows, funnel, insights, people, retention};
use std::collections::HashMap;
use std::sync::Arc;

const DEFAULT_MEMBERS_LIMIT: usize = 1000;

/// What a report reads besides the table.
pub(crate) struct Inputs<'a> {
    pub(crate) identities: &'a Identities,
    pub(crate) profiles: &'a Profiles,
    pub(crate) cohorts: &'a HashMap<i64, CohortRule>,
    pub(crate) timezone: &'a str,
    pub(crate) now_ms: i64,
}

/// The table a report counts over.
pub(crate) fn unit_kind(spec: &Spec) -> UnitKind {
    let unit = match spec {
        Spec::Insights(s) => &s.unit,
        Spec::Funnel(s) => &s.unit,
        Spec::Retention(s) => &s.counted,
        Spec::Flows(s) => &s.unit,
        _ => &Unit::Users,
    };
    match unit {
        Unit::Users => UnitKind::People,
        Unit::Group { group } => UnitKind::Group(group.clone()),
    }
}

/// Whether the report reads events at all.
pub(crate) fn needs_table(spec: &Spec) -> bool {
    !matches!(spec, Spec::Profiles(_))
}

pub(crate) fn run(table: Option<Arc<Table>>, inputs: &Inputs<'_>, spec: &Spec) -> Result<ReportResult, QueryError> {
    let calendar = Calendar::new(inputs.timezone)?;
    let kind = unit_kind(spec);
    let table = match (table, spec) {
        (_, Spec::Profiles(spec)) => return Ok(ReportResult::Profiles(people::search(inputs.profiles, spec)?)),
        (Some(table), _) => table,
        (None, _) => return Err(QueryError::bad("no table for this report")),
    };
    let today = calendar.date_of(inputs.now_ms);
    let cohort_day = match spec {
        Spec::Insights(s) => parse_date(&s.to, "to")?,
        Spec::Funnel(s) => parse_date(&s.to, "to")?,
        Spec::Retention(s) => parse_date(&s.to, "to")?,
        Spec::Flows(s) => parse_date(&s.to, "to")?,
        Spec::CohortMembers(s) => s.as_of.as_deref().map(|d| parse_date(d, "as_of")).transpose()?.unwrap_or(today),
        _ => today,
    };
    let context = Context::new(&table, &kind, calendar, inputs.profiles, inputs.identities, inputs.cohorts, cohort_day);
    Ok(match spec {
        Spec::Insights(spec) => ReportResult::Insights(insights::run(&context, spec)?),
        Spec::Funnel(spec) => ReportResult::Funnel(funnel::run(&context, spec)?),
        Spec::Retention(spec) => ReportResult::Retention(retention::run(&context, spec)?),
        Spec::Flows(spec) => ReportResult::Flows(flows::run(&context, spec)?),
        Spec::Activity(spec) => ReportResult::Activity(people::activity(&table, inputs.identities, inputs.profiles, spec)?),
        Spec::CohortMembers(spec) => {
            let rule = match (&spec.cohort, &spec.definition) {
                (Some(id), None) => context.cohort_definition(*id)?.clone(),
                (None, Some(definition)) => definition.clone(),
                _ => return Err(QueryError::bad("give either cohort (an id) or definition")),
            };
            let members = cohorts::members(&context, &rule, cohort_day)?;
            let mut ids: Vec<String> = members.iter().enumerate().filter(|(_, m)| **m).map(|(u, _)| table.units[u].to_string()).collect();
            ids.sort();
            let count = ids.len() as u64;
            ids.truncate(spec.limit.unwrap_or(DEFAULT_MEMBERS_LIMIT));
            ReportResult::Members(MembersResult { count, members: ids })
        }
        Spec::Profiles(_) => unreachable!("answered above"),
    })
}
