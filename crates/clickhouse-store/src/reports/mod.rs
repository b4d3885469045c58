//! Reports in ClickHouse SQL: the report specs of the `query` crate
//! translated into statements that ClickHouse runs where the events are, with
//! results shaped exactly as the embedded engine shapes them (the tests
//! compare the two on the same events).
//!
//! Every event report is translated: insights (every measure, breakdown,
//! `other`, formula and comparison), funnels (uniques or totals, any order,
//! exclusions, held properties, cohort breakdowns), retention, flows, cohort
//! members and activity feeds. Profile searches read only the metadata: they
//! answer [`QueryError::Unsupported`] (HTTP 501) here, and the server asks
//! the engine for them. A cohort filter where no member statement was
//! prepared answers the same, rather than a different number.
//!
//! People are resolved as the engine resolves them: the identity links in
//! the metadata (chains followed) and the erased and canary ids are uploaded
//! for the report into a small `Memory` table, which each event joins by its
//! distinct_id ([`scope`]).

mod cohorts;
mod flows;
mod funnel;
mod insights;
mod people;
mod retention;
mod scope;
mod sql;

use crate::client::Client;
use query::result::ReportResult;
use query::{QueryError, Spec};
use std::sync::Arc;

/// The reports of events in ClickHouse, for the server's report API.
pub struct ClickHouseReports {
    client: Client,
    meta: Arc<meta::Meta>,
}

impl ClickHouseReports {
    pub fn new(client: Client, meta: Arc<meta::Meta>) -> ClickHouseReports {
        ClickHouseReports { client, meta }
    }
}

impl query::ReportBackend for ClickHouseReports {
    fn run(&self, project: &meta::Project, spec: &Spec) -> Result<ReportResult, QueryError> {
        match spec {
            Spec::Insights(insights) => insights::run(&self.client, &self.meta, project, insights).map(ReportResult::Insights),
            Spec::Funnel(funnel) => funnel::run(&self.client, &self.meta, project, funnel).map(ReportResult::Funnel),
            Spec::Retention(retention) => retention::run(&self.client, &self.meta, project, retention).map(ReportResult::Retention),
            Spec::Flows(flows) => flows::run(&self.client, &self.meta, project, flows).map(ReportResult::Flows),
            Spec::CohortMembers(members) => people::cohort_members(&self.client, &self.meta, project, members, events::now_ms()).map(ReportResult::Members),
            Spec::Activity(activity) => people::activity(&self.client, &self.meta, project, activity).map(ReportResult::Activity),
            other => Err(QueryError::Unsupported(format!(
                "{} reports read only the metadata: the engine answers them on every backend (storage.backend = \"clickhouse\")",
                report_name(other)
            ))),
        }
    }

    fn scan_days(&self, project: events::ProjectId, from_day: i32, to_day: i32, visit: &mut dyn FnMut(store::DayRows) -> bool) -> Result<(), QueryError> {
        crate::EventReader::new(self.client.clone()).scan_days(project, from_day, to_day, visit).map_err(backend)
    }

    fn event_names(&self, project: &meta::Project) -> Result<Vec<String>, QueryError> {
        #[derive(serde::Deserialize)]
        struct Named {
            event: String,
            n: u64,
        }
        let scope = scope::Scope::open(&self.client, &self.meta, project.id, 0, i64::MAX / 2)?;
        let sql = format!("SELECT event, count() AS n FROM ({}) WHERE event != '' GROUP BY event", scope.events("1"));
        let mut named: Vec<Named> = self.client.query(&sql).map_err(backend)?;
        named.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.event.cmp(&b.event)));
        Ok(named.into_iter().map(|n| n.event).collect())
    }

    fn latest_events(&self, project: &meta::Project, from_ms: i64, after_ms: i64, limit: usize, fields: &[&str]) -> Result<Vec<query::LiveEvent>, QueryError> {
        #[derive(serde::Deserialize)]
        struct Latest {
            event: String,
            time_ms: i64,
            values: Vec<String>,
        }
        let scope = scope::Scope::open(&self.client, &self.meta, project.id, from_ms.max(after_ms.saturating_add(1)), i64::MAX / 2)?;
        let values: Vec<String> = fields.iter().map(|key| sql::property(key)).collect();
        let statement = format!(
            "SELECT event, time_ms, [{}] AS values FROM ({}) ORDER BY time_ms DESC LIMIT {limit}",
            values.join(", "),
            scope.events("1")
        );
        let rows: Vec<Latest> = self.client.query(&statement).map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let properties = fields
                    .iter()
                    .zip(&row.values)
                    .filter(|(_, raw)| !raw.is_empty())
                    .filter_map(|(key, raw)| serde_json::from_str(raw).ok().map(|value| ((*key).to_owned(), value)))
                    .collect();
                query::LiveEvent { event: row.event, time_ms: row.time_ms, properties }
            })
            .collect())
    }
}

fn report_name(spec: &Spec) -> &'static str {
    match spec {
        Spec::Insights(_) => "insights",
        Spec::Funnel(_) => "funnel",
        Spec::Retention(_) => "retention",
        Spec::Flows(_) => "flows",
        Spec::CohortMembers(_) => "cohort_members",
        Spec::Profiles(_) => "profiles",
        Spec::Activity(_) => "activity",
    }
}

/// A ClickHouse string literal of `text`.
pub(crate) fn string_literal(text: &str) -> String {
    sql::string(text)
}

/// A number of ClickHouse's JSON output parsed exactly (serde_json's own
/// float parsing may land a unit in the last place off without its
/// `float_roundtrip` feature, and a percentile must equal the engine's);
/// `null` (an aggregate of no values) is `None`.
pub(crate) fn exact_f64_or_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    use serde::Deserialize;
    let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
    match raw.get() {
        "null" => Ok(None),
        text => text.trim_matches('"').parse::<f64>().map(Some).map_err(serde::de::Error::custom),
    }
}

/// Opens a report's scope over `[start, end)`: identity, the profile
/// properties its filters, breakdown and cohorts read, and the member
/// statement of each cohort its filters name (for `sql::filters_with`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare<'a>(
    client: &'a Client,
    meta: &'a meta::Meta,
    project: &meta::Project,
    unit: &query::spec::Unit,
    (start, end): (i64, i64),
    filters: &[&query::spec::Filter],
    breakdown: Option<&query::spec::Breakdown>,
    calendar: &query::Calendar,
    cohort_day: jiff::civil::Date,
) -> Result<(scope::Scope<'a>, sql::Cohorts), QueryError> {
    let mut ids = cohorts::named(filters.iter().copied());
    if let Some(query::spec::Breakdown::Cohorts { cohort }) = breakdown {
        ids.extend(cohort.iter().copied());
        ids.sort_unstable();
        ids.dedup();
    }
    cohorts::check_unit(unit, &ids)?;
    let rules = cohorts::definitions(meta, project.id, &ids)?;
    let rule_filters: Vec<query::spec::Filter> = rules.iter().flat_map(|(_, rule)| cohorts::rule_filters(rule)).collect();
    let mut scope = scope::Scope::open(client, meta, project.id, start, end)?;
    scope.with_profiles(unit, &profile_keys(filters.iter().copied().chain(rule_filters.iter()), breakdown))?;
    let members = cohorts::members(&scope, calendar, &rules, cohort_day)?;
    if !members.is_empty() {
        scope.test_units();
    }
    Ok((scope, members))
}

/// The profile property keys that filters (nested ones too) and a breakdown
/// read, each once.
pub(crate) fn profile_keys<'a>(filters: impl IntoIterator<Item = &'a query::spec::Filter>, breakdown: Option<&query::spec::Breakdown>) -> Vec<String> {
    use query::spec::{Breakdown, Filter, Source};
    fn walk(filter: &Filter, keys: &mut Vec<String>) {
        match filter {
            Filter::Property { property, source: Source::Profile, .. } => keys.push(property.clone()),
            Filter::Any { any: list } | Filter::All { all: list } => list.iter().for_each(|f| walk(f, keys)),
            _ => {}
        }
    }
    let mut keys = Vec::new();
    filters.into_iter().for_each(|f| walk(f, &mut keys));
    if let Some(Breakdown::Property { property, source: Source::Profile, .. }) = breakdown {
        keys.push(property.clone());
    }
    keys.sort();
    keys.dedup();
    keys
}

pub(crate) fn unsupported(what: impl std::fmt::Display) -> QueryError {
    QueryError::Unsupported(format!("{what} is not yet translated to ClickHouse SQL"))
}

pub(crate) fn backend(error: crate::ClickHouseError) -> QueryError {
    QueryError::Backend(error.to_string())
}
