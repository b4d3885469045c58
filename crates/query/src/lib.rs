//! The query engine: Mixpanel-style reports (insights, funnels, retention,
//! flows, cohorts, profiles) over a project's events.
//!
//! How a report runs (the long version is in ARCHITECTURE.md):
//! 1. [`Engine::run`] takes a store snapshot and looks up the project's
//!    cached [`table`]: every event ordered by person (or group) and time,
//!    built from per-day blocks ([`engine`]). Only days whose parts changed
//!    are decoded again.
//! 2. [`run`] builds the report's [`context`] (time zone, profiles, cohorts)
//!    and calls the report module ([`insights`], [`funnel`], [`retention`],
//!    [`flows`], [`cohorts`], [`people`]).
//! 3. Each report is one pass over the table's people, split over the cores
//!    ([`parallel`]); property columns are read from the parts the first time a
//!    report needs them.
//!
//! The counting rules are in docs/reports.md; [`Dataset`] runs the same code
//! over events in memory, which is how the property tests compare it with a
//! plain reference implementation.
//!
//! Architecture invariant: this crate reads the store and the metadata, never
//! writes them, and knows nothing of HTTP.

mod blocks;
mod calendar;
mod cohorts;
mod context;
mod dataset;
mod engine;
mod error;
mod filter;
mod flows;
mod formula;
mod funnel;
mod insights;
mod parallel;
mod people;
pub mod result;
mod retention;
mod run;
mod segments;
pub mod spec;
mod table;
mod value;

pub use dataset::{run_dataset, Dataset};
pub use engine::{Engine, ReadFacts};
pub use error::QueryError;
pub use result::ReportResult;
pub use spec::Spec;
pub use calendar::{parse_date, Buckets, Calendar};
pub use value::compare_segments;
pub use funnel::parse_window;
pub use formula::{parse as parse_formula, Expression as FormulaExpression};

/// Reports computed elsewhere than this engine: by an external event
/// database (ClickHouse), from the same specs and into the same results.
pub trait ReportBackend: Send + Sync {
    fn run(&self, project: &meta::Project, spec: &Spec) -> Result<ReportResult, QueryError>;

    /// The project's event names, most frequent first (ties by name), as
    /// [`Engine::event_names`].
    fn event_names(&self, project: &meta::Project) -> Result<Vec<String>, QueryError>;

    /// The newest `limit` events with `time_ms > after_ms` and not before
    /// `from_ms`, newest first, each with only the listed properties; erased
    /// and canary ids left out.
    fn latest_events(&self, project: &meta::Project, from_ms: i64, after_ms: i64, limit: usize, fields: &[&str]) -> Result<Vec<LiveEvent>, QueryError>;

    /// The project's events of each UTC day in `[from_day, to_day]` that has
    /// any, oldest day first, deduplicated, as the embedded store's day scan
    /// hands them (for the raw export); `visit` answers whether to go on.
    /// Their user keys are 0: people are named by distinct id here.
    fn scan_days(&self, project: events::ProjectId, from_day: i32, to_day: i32, visit: &mut dyn FnMut(store::DayRows) -> bool) -> Result<(), QueryError>;
}

/// One event of the live view: what and where, never who.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    pub event: String,
    pub time_ms: i64,
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// Each linked distinct id with the person it resolves to (chains followed,
/// the first link of an id winning), as the engine resolves them.
pub fn resolve_identity_links(links: Vec<(String, String)>) -> Vec<(String, String)> {
    let ids: Vec<String> = links.iter().map(|(id, _)| id.clone()).collect();
    let identities = table::Identities::new(links);
    let mut resolved: Vec<(String, String)> = ids.into_iter().map(|id| {
        let person = identities.resolve(&id).to_owned();
        (id, person)
    }).collect();
    resolved.sort();
    resolved.dedup_by(|a, b| a.0 == b.0);
    resolved
}

/// Whether `name` is a time zone the engine knows (IANA names).
pub fn is_time_zone(name: &str) -> bool {
    jiff::tz::TimeZone::get(name).is_ok()
}
