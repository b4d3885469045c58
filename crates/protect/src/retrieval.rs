//! Everything held on one person, decrypted: the answer to a data
//! subject's access request (GDPR Art. 15) and to portability (Art. 20).
//! Built on demand and never written to disk.

use crate::{ProtectError, Protector};
use events::ProjectId;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use store::{DayRows, Store};

/// Where a project's events are read a day at a time: this node's store, or
/// an external event database (the server's ClickHouse backend).
pub trait EventDays {
    /// Calls `visit` with each day in `[from_day, to_day]` that has events,
    /// oldest first, while it answers true.
    fn scan_days(&self, project: ProjectId, from_day: i32, to_day: i32, visit: &mut dyn FnMut(DayRows) -> bool) -> Result<(), String>;
}

impl EventDays for Store {
    fn scan_days(&self, project: ProjectId, from_day: i32, to_day: i32, visit: &mut dyn FnMut(DayRows) -> bool) -> Result<(), String> {
        self.snapshot().scan_days(project, from_day, to_day, visit).map_err(|e| e.to_string())
    }
}

impl Protector {
    /// The person's identity cluster, profile and events, with their
    /// personal fields decrypted as far as their keys still exist. The
    /// caller audits the retrieval.
    pub fn retrieve(&self, events_of: &dyn EventDays, project: ProjectId, distinct_id: &str) -> Result<Value, ProtectError> {
        let stored = self.stored_id(project, distinct_id)?;
        let cluster = self.meta().identity_cluster(project, &stored)?;
        let ids: HashSet<&str> = cluster.iter().map(String::as_str).collect();
        let mut profiles = Vec::new();
        for (id, mut properties) in self.meta().profiles(project, &cluster, usize::MAX)? {
            self.reveal(project, &id, &mut properties)?;
            profiles.push(json!({"$distinct_id": id, "$properties": Value::Object(properties)}));
        }
        let mut events = Vec::new();
        let mut failure = None;
        events_of.scan_days(project, i32::MIN, i32::MAX, &mut |day| {
            for row in day.events.iter().filter(|row| ids.contains(row.distinct_id())) {
                let mut event = row.to_event();
                if let Err(error) = self.reveal(project, &event.distinct_id, &mut event.properties) {
                    failure = Some(error);
                    return false;
                }
                events.push(event.to_export_json(false));
            }
            true
        })
        .map_err(ProtectError::External)?;
        if let Some(error) = failure {
            return Err(error);
        }
        let mut answer = Map::new();
        answer.insert("distinct_id".into(), Value::from(distinct_id));
        answer.insert("distinct_ids".into(), Value::from(cluster.clone()));
        answer.insert("profiles".into(), Value::from(profiles));
        answer.insert("events".into(), Value::from(events));
        Ok(Value::Object(answer))
    }
}
