//! Profile (`/engage`) and group (`/groups`) updates: one operation each, as
//! every official SDK sends them.

use crate::Properties;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One profile operation with Mixpanel's semantics (see the `meta` crate,
/// which applies them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileOp {
    /// `$set`: create the profile if needed and overwrite these values.
    Set(Properties),
    /// `$set_once`: set only the properties that are absent.
    SetOnce(Properties),
    /// `$add`: numeric increments; a missing property counts as 0.
    Add(Properties),
    /// `$append`: push each value onto its list.
    Append(Properties),
    /// `$union`: add each listed value not already present.
    Union(Properties),
    /// `$remove`: remove the value from the list.
    Remove(Properties),
    /// `$unset`: delete these properties.
    Unset(Vec<String>),
    /// `$delete`: delete the whole profile.
    Delete,
}

/// An update to a user profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileUpdate {
    pub distinct_id: String,
    /// `$time` in milliseconds, or the arrival time.
    pub time_ms: i64,
    /// `$ignore_time`: do not bump `$last_seen`.
    pub ignore_time: bool,
    /// `$ignore_alias` (on `$delete`).
    pub ignore_alias: bool,
    pub op: ProfileOp,
}

/// An update to a group profile, e.g. an organisation (`$group_key` = "company_id").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupUpdate {
    pub group_key: String,
    /// Group ids may be strings or numbers on the wire; kept as a string.
    pub group_id: String,
    pub time_ms: i64,
    pub op: ProfileOp,
}

impl ProfileOp {
    /// The wire name of the operation, as in `$set`.
    pub fn wire_name(&self) -> &'static str {
        match self {
            ProfileOp::Set(_) => "$set",
            ProfileOp::SetOnce(_) => "$set_once",
            ProfileOp::Add(_) => "$add",
            ProfileOp::Append(_) => "$append",
            ProfileOp::Union(_) => "$union",
            ProfileOp::Remove(_) => "$remove",
            ProfileOp::Unset(_) => "$unset",
            ProfileOp::Delete => "$delete",
        }
    }
}

/// Values a JSON group id may take, kept as text.
pub fn group_id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}
