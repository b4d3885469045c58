//! Everything held on one person, decrypted: the answer to a data
//! subject's access request (GDPR Art. 15) and to portability (Art. 20).
//! Built on demand and never written to disk.

use crate::{ProtectError, Protector};
use events::ProjectId;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use store::Store;

impl Protector {
    /// The person's identity cluster, profile and events, with their
    /// personal fields decrypted as far as their keys still exist. The
    /// caller audits the retrieval.
    pub fn retrieve(&self, store: &Store, project: ProjectId, distinct_id: &str) -> Result<Value, ProtectError> {
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
        store.snapshot().scan_days(project, i32::MIN, i32::MAX, |day| {
            for row in day.events.iter().filter(|row| ids.contains(row.distinct_id())) {
                let mut event = row.to_event();
                if let Err(error) = self.reveal(project, &event.distinct_id, &mut event.properties) {
                    failure = Some(error);
                    return false;
                }
                events.push(event.to_export_json(false));
            }
            true
        })?;
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
