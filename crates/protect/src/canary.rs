//! Canary profiles (honeytokens): people who do not exist, with profiles
//! and events that look like everyone else's and contact values that are
//! unique to them. Reports never count them; raw rows carry them, so a bulk
//! export or a profile listing always touches one, and touching one raises
//! a critical alert.

use crate::{ProtectError, Protector};
use events::{Event, ProfileOp, ProfileUpdate, ProjectId, Properties};
use serde_json::Value;

const FIRST: &[&str] = &["Jordan", "Avery", "Morgan", "Riley", "Casey", "Quinn", "Rowan", "Skyler"];
const LAST: &[&str] = &["Wells", "Hart", "Lowe", "Perry", "Shaw", "Blake", "Reid", "Hayes"];
const EVENTS: &[&str] = &["Page View", "Login", "Page View", "API Request"];

/// Canaries made for a project: their events and profile updates, already
/// protected by the project's policy, ready to be written.
pub struct Canaries {
    pub ids: Vec<String>,
    pub events: Vec<Event>,
    pub profiles: Vec<ProfileUpdate>,
}

impl Protector {
    /// Makes `count` canaries with a few recent events each; the caller
    /// writes the events, applies the profiles and records the ids
    /// (`Meta::add_canaries`).
    pub fn make_canaries(&self, project: ProjectId, count: usize, now_ms: i64) -> Result<Canaries, ProtectError> {
        let mut batch = self.batch(project)?;
        let mut canaries = Canaries { ids: Vec::new(), events: Vec::new(), profiles: Vec::new() };
        for _ in 0..count {
            let tag: [u8; 4] = rand::random();
            let first = FIRST[tag[0] as usize % FIRST.len()];
            let last = LAST[tag[1] as usize % LAST.len()];
            let id = format!("u9{:07}", u32::from_le_bytes(tag) % 10_000_000);
            let email = format!("{}.{}.{}@mailbox.example.net", first.to_lowercase(), last.to_lowercase(), hex::encode(&tag[2..]));
            let mut set = Properties::new();
            set.insert("$email".into(), Value::from(email));
            set.insert("$name".into(), Value::from(format!("{first} {last}")));
            set.insert("plan".into(), Value::from("pro"));
            let mut update = ProfileUpdate { distinct_id: id.clone(), time_ms: now_ms, ignore_time: false, ignore_alias: false, op: ProfileOp::Set(set) };
            batch.profile(&mut update)?;
            canaries.profiles.push(update);
            for (n, name) in EVENTS.iter().enumerate() {
                let mut properties = Properties::new();
                properties.insert("mp_lib".into(), Value::from("web"));
                let mut event = Event { name: (*name).to_owned(), distinct_id: id.clone(), time_ms: now_ms - (n as i64 + 1) * 3_600_000, insert_id: hex::encode(rand::random::<[u8; 12]>()), properties };
                if batch.event(&mut event)? == privacy::apply::Verdict::Keep {
                    canaries.events.push(event);
                }
            }
            canaries.ids.push(id);
        }
        batch.commit()?;
        Ok(canaries)
    }
}
