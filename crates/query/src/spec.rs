//! The report specifications: the JSON documents clients send. The rules each
//! field stands for are in docs/reports.md; this module only gives them types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One report request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Spec {
    Insights(InsightsSpec),
    Funnel(FunnelSpec),
    Retention(RetentionSpec),
    Flows(FlowsSpec),
    CohortMembers(CohortMembersSpec),
    Profiles(ProfilesSpec),
    Activity(ActivitySpec),
}

/// What "unique" means: people (after identity merge) or groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(untagged)]
pub enum Unit {
    #[default]
    #[serde(with = "users_literal")]
    Users,
    Group { group: String },
}

mod users_literal {
    use serde::{Deserialize, Deserializer, Serializer};
    pub(super) fn serialize<S: Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("users")
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == "users" { Ok(()) } else { Err(serde::de::Error::custom(format!("unit must be \"users\" or {{\"group\": KEY}}, got {text:?}"))) }
    }
}

/// Where a property is read: the event, or the person's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Event,
    Profile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Neq,
    In,
    NotIn,
    Contains,
    NotContains,
    Gt,
    Gte,
    Lt,
    Lte,
    Between,
    Set,
    NotSet,
}

/// A filter: a property test, a cohort test, or a nested and/or group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Filter {
    Property {
        property: String,
        op: Op,
        #[serde(default, skip_serializing_if = "Value::is_null")]
        value: Value,
        #[serde(default, skip_serializing_if = "is_event_source")]
        source: Source,
    },
    Cohort { cohort: i64 },
    NotCohort { not_cohort: i64 },
    Any { any: Vec<Filter> },
    All { all: Vec<Filter> },
}

fn is_event_source(source: &Source) -> bool {
    *source == Source::Event
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Hour,
    #[default]
    Day,
    Week,
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    #[default]
    Total,
    Uniques,
    Dau,
    Wau,
    Mau,
    Frequency,
    Sum,
    Avg,
    Min,
    Max,
    Median,
    P90,
}

/// How per-person or per-event numbers are folded into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    #[default]
    Avg,
    Median,
    Min,
    Max,
    P90,
}

/// An event selector with its own filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSelector {
    pub event: String,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsightsEvent {
    pub event: String,
    #[serde(default)]
    pub measure: Measure,
    /// The numeric property of `sum`, `avg`, `min`, `max`, `median`, `p90`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// For `frequency`: how per-person counts are folded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Aggregate>,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

/// A breakdown: a property (short form: its name) or cohorts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Breakdown {
    Name(String),
    Property {
        property: String,
        #[serde(default)]
        source: Source,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        buckets: Option<Vec<f64>>,
    },
    Cohorts { cohort: Vec<i64> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Formula {
    pub name: String,
    pub expression: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    PreviousPeriod,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsightsSpec {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub interval: Interval,
    pub events: Vec<InsightsEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// With `limit`: add one series, segment `"$other"`, for the segments left out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other: bool,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formulas: Vec<Formula>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<Compare>,
    #[serde(default)]
    pub unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    #[default]
    First,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Counting {
    #[default]
    Uniques,
    Totals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StepOrder {
    #[default]
    Strict,
    Any,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exclusion {
    pub event: String,
    /// 1-based; the exclusion applies between these two steps.
    pub after_step: usize,
    pub before_step: usize,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunnelSpec {
    pub from: String,
    pub to: String,
    pub steps: Vec<EventSelector>,
    /// `Nd`, `Nh` or `Nm`; 7 days when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(default)]
    pub entry: Entry,
    #[serde(default)]
    pub counting: Counting,
    #[serde(default)]
    pub order: StepOrder,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusions: Vec<Exclusion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hold_constant: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RetentionUnit {
    Day,
    #[default]
    Week,
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RetentionMode {
    #[default]
    On,
    OnOrAfter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RetentionKind {
    #[default]
    FirstTime,
    Recurring,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSpec {
    pub from: String,
    pub to: String,
    pub born: EventSelector,
    #[serde(rename = "return")]
    pub returning: EventSelector,
    #[serde(default)]
    pub unit: RetentionUnit,
    #[serde(default = "default_periods")]
    pub periods: usize,
    #[serde(default)]
    pub mode: RetentionMode,
    #[serde(default)]
    pub retention: RetentionKind,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    #[serde(default, rename = "count")]
    pub counted: Unit,
}

fn default_periods() -> usize {
    8
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    After,
    Before,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowsSpec {
    pub from: String,
    pub to: String,
    pub anchor: EventSelector,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default = "default_flow_steps")]
    pub steps: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(default)]
    pub counting: Counting,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub unit: Unit,
}

fn default_flow_steps() -> usize {
    3
}

/// A behavioural or profile condition of a cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CohortRule {
    Did {
        did: String,
        #[serde(default = "one")]
        at_least: u64,
        #[serde(flatten)]
        period: CohortPeriod,
        #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
        filters: Vec<Filter>,
    },
    DidNot {
        did_not: String,
        #[serde(flatten)]
        period: CohortPeriod,
        #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
        filters: Vec<Filter>,
    },
    Any { any: Vec<CohortRule> },
    All { all: Vec<CohortRule> },
    Profile(Filter),
}

fn one() -> u64 {
    1
}

/// When a behavioural rule looks: the last K days before the reference day, or dates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CohortPeriod {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohortMembersSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<CohortRule>,
    /// The day "the last K days" end on; today when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesSpec {
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    /// Group profiles of this group key instead of user profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivitySpec {
    pub distinct_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}
