//! The report results: the JSON documents the API returns.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReportResult {
    Insights(InsightsResult),
    Funnel(FunnelResult),
    Retention(RetentionResult),
    Flows(FlowsResult),
    Members(MembersResult),
    Profiles(ProfilesResult),
    Activity(ActivityResult),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InsightsResult {
    pub series: Vec<Series>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formulas: Vec<FormulaSeries>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Box<InsightsResult>>,
}

/// One line of an insights chart. `points` holds a number, or null where a
/// property aggregate had no values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub event: String,
    pub measure: String,
    /// Present with a breakdown: the segment value, JSON null for "not set".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Value>,
    pub points: BTreeMap<String, Option<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormulaSeries {
    pub name: String,
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Value>,
    pub points: BTreeMap<String, Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FunnelResult {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<FunnelStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<FunnelSegment>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelSegment {
    pub segment: Value,
    pub steps: Vec<FunnelStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelStep {
    pub event: String,
    pub count: u64,
    pub conversion_from_previous: f64,
    pub conversion_from_start: f64,
    pub avg_time_from_previous_ms: Option<f64>,
    pub median_time_from_previous_ms: Option<f64>,
    pub avg_time_from_start_ms: Option<f64>,
    pub median_time_from_start_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RetentionResult {
    pub cohorts: Vec<RetentionCohort>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionCohort {
    pub start: String,
    pub size: u64,
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FlowsResult {
    pub paths: Vec<FlowPath>,
    pub steps: Vec<FlowStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowPath {
    pub events: Vec<String>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowStep {
    pub step: usize,
    pub nodes: Vec<FlowNode>,
    pub dropoff: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowNode {
    pub event: String,
    pub count: u64,
}

impl ReportResult {
    /// The distinct ids of the people a result lists (none for aggregates):
    /// whose data left the server, for the audit.
    pub fn returned_people(&self) -> Vec<String> {
        match self {
            ReportResult::Profiles(profiles) => profiles.profiles.iter().map(|p| p.distinct_id.clone()).collect(),
            ReportResult::Members(members) => members.members.clone(),
            ReportResult::Activity(activity) => activity.distinct_ids.clone(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MembersResult {
    pub count: u64,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProfilesResult {
    pub profiles: Vec<Profile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub distinct_id: String,
    pub properties: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityResult {
    pub distinct_id: String,
    pub distinct_ids: Vec<String>,
    pub profile: Option<serde_json::Map<String, Value>>,
    pub events: Vec<Value>,
}
