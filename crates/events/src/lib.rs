//! The vocabulary every other crate speaks: events, profile and group updates,
//! and the time helpers that turn client timestamps into one unit.
//!
//! Architecture invariant: this crate does no IO and knows no wire format. The
//! `mixpanel` crate turns SDK payloads into these types; `store` persists them;
//! `server` and `cli` move them around.

mod profile;
mod time;

pub use profile::{group_id_text, GroupUpdate, ProfileOp, ProfileUpdate};
pub use time::{day_of_ms, millis_from_client_time, now_ms, TimeError, MS_PER_DAY};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Properties of an event or a profile, as the client sent them (after the
/// reserved keys were taken out).
pub type Properties = Map<String, Value>;

/// Identifies one project inside an instance. Dense and small so that parts and
/// caches can key on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProjectId(pub u32);

impl std::fmt::Display for ProjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One event, validated and normalised, ready to be written.
///
/// The four fields of Mixpanel's deduplication key live outside `properties`:
/// `(name, distinct_id, time_ms, insert_id)`. `properties` never holds `token`,
/// `time`, `distinct_id`, `$insert_id` or an IP address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub name: String,
    pub distinct_id: String,
    /// Milliseconds since the Unix epoch, UTC.
    pub time_ms: i64,
    pub insert_id: String,
    pub properties: Properties,
}

impl Event {
    /// The Mixpanel raw-export shape: `{"event", "properties": {time, distinct_id, $insert_id, ...}}`.
    /// `time` is in seconds unless `time_in_ms`; fractional seconds are kept.
    pub fn to_export_json(&self, time_in_ms: bool) -> Value {
        let mut properties = Map::with_capacity(self.properties.len() + 3);
        let time = if time_in_ms || self.time_ms % 1000 == 0 {
            let value = if time_in_ms { self.time_ms } else { self.time_ms / 1000 };
            Value::from(value)
        } else {
            Value::from(self.time_ms as f64 / 1000.0)
        };
        properties.insert("time".to_owned(), time);
        properties.insert("distinct_id".to_owned(), Value::from(self.distinct_id.clone()));
        properties.insert("$insert_id".to_owned(), Value::from(self.insert_id.clone()));
        for (key, value) in &self.properties {
            properties.insert(key.clone(), value.clone());
        }
        let mut event = Map::with_capacity(2);
        event.insert("event".to_owned(), Value::from(self.name.clone()));
        event.insert("properties".to_owned(), Value::Object(properties));
        Value::Object(event)
    }

    /// True when both events are copies under Mixpanel's deduplication rule.
    pub fn same_dedup_key(&self, other: &Event) -> bool {
        self.time_ms == other.time_ms
            && self.insert_id == other.insert_id
            && self.distinct_id == other.distinct_id
            && self.name == other.name
    }
}
