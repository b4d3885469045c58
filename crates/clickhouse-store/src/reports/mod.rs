//! Reports in ClickHouse SQL: the report specs of the `query` crate
//! translated into statements that ClickHouse runs where the events are, with
//! results shaped exactly as the embedded engine shapes them (the tests
//! compare the two on the same events).
//!
//! So far: insights with `total` and `uniques`, event-property filters and
//! breakdowns, every interval and time zone; funnels of people in strict
//! order, entry `first` or `any`; first-time retention, `on` or
//! `on_or_after`. Everything else answers
//! [`QueryError::Unsupported`] (HTTP 501) rather than a different number.
//!
//! People are resolved as the engine resolves them: the identity links in
//! the metadata (chains followed) and the erased and canary ids are uploaded
//! for the report into a small `Memory` table, which each event joins by its
//! distinct_id ([`scope`]).

mod funnel;
mod insights;
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
            other => Err(QueryError::Unsupported(format!(
                "{} reports are not yet translated to ClickHouse SQL (insights are); storage.backend = \"clickhouse\"",
                report_name(other)
            ))),
        }
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

pub(crate) fn unsupported(what: impl std::fmt::Display) -> QueryError {
    QueryError::Unsupported(format!("{what} is not yet translated to ClickHouse SQL"))
}

pub(crate) fn backend(error: crate::ClickHouseError) -> QueryError {
    QueryError::Backend(error.to_string())
}
