//! Recording identity links from events as they arrive, for every path that
//! writes events (the server's ingestion, `hearth import`, `hearth gen`): see
//! [`crate::identity`] for the rules. Most events carry a device already
//! linked, so a bounded in-memory set of links already made spares SQLite the
//! lookups.

use crate::identity::LinkSource;
use crate::{Error, Meta};
use events::{Event, ProjectId};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Mutex;

/// Fingerprints a generation holds before it becomes the previous one:
/// two generations of 200,000 take under 10 MB and remember the links of
/// the devices seen lately, which are the ones the next events carry.
const GENERATION_ENTRIES_MAX: usize = 200_000;

#[derive(Debug, Default)]
pub struct LinkCache {
    known: Mutex<Generations>,
    fingerprints: Fingerprints,
}

/// Fingerprints of the (project, distinct id) pairs whose link is known to
/// be recorded. A full current generation replaces the previous one, and a
/// hit in the previous one moves back into the current one, so the cache
/// forgets the least recently seen ids, never all at once.
#[derive(Debug, Default)]
struct Generations {
    current: HashSet<u128>,
    previous: HashSet<u128>,
    /// The metadata's erasure generation these fingerprints were taken at:
    /// an erasure deletes links, so the cache starts over after one.
    erasure_generation: u64,
}

impl Generations {
    fn forget_if_erased_since(&mut self, erasure_generation: u64) {
        if self.erasure_generation != erasure_generation {
            self.current.clear();
            self.previous.clear();
            self.erasure_generation = erasure_generation;
        }
    }

    fn contains(&mut self, fingerprint: u128) -> bool {
        if self.current.contains(&fingerprint) {
            return true;
        }
        if self.previous.remove(&fingerprint) {
            self.insert(fingerprint);
            return true;
        }
        false
    }

    fn insert(&mut self, fingerprint: u128) {
        if self.current.len() >= GENERATION_ENTRIES_MAX {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(fingerprint);
    }
}

/// 128 bits of two keyed hashes (random keys per process): a chance
/// collision, which would skip recording a link, is out of reach (about
/// 2^-109 per check with the cache full), and nobody outside can aim one.
#[derive(Debug, Default)]
struct Fingerprints(std::hash::RandomState, std::hash::RandomState);

impl Fingerprints {
    fn of(&self, project: ProjectId, id: &str) -> u128 {
        use std::hash::BuildHasher;
        (u128::from(self.0.hash_one((project.0, id))) << 64) | u128::from(self.1.hash_one((project.0, id)))
    }
}

/// A property as an id: a non-empty string, or a number's digits.
fn id_property<'a>(event: &'a Event, key: &str) -> Option<Cow<'a, str>> {
    match event.properties.get(key)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
        serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// The event's `$device_id` and `$user_id`, when it has both.
fn device_and_user(event: &Event) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    Some((id_property(event, "$device_id")?, id_property(event, "$user_id")?))
}

/// The links of the Original ID Merge events (`$identify`, `$create_alias`,
/// `$merge`) as (distinct id, canonical id, source).
fn explicit_links_of(event: &Event) -> Vec<(String, String, LinkSource)> {
    let text = |key: &str| id_property(event, key).map(Cow::into_owned);
    let mut links = Vec::new();
    match event.name.as_str() {
        "$identify" => {
            if let (Some(anon), Some(identified)) = (text("$anon_id").or_else(|| text("$anon_distinct_id")), text("$identified_id").or_else(|| Some(event.distinct_id.clone()))) {
                links.push((anon, identified, LinkSource::Identify));
            }
        }
        "$create_alias" => {
            if let Some(alias) = text("alias") {
                links.push((alias, event.distinct_id.clone(), LinkSource::CreateAlias));
            }
        }
        "$merge" => {
            if let Some(serde_json::Value::Array(ids)) = event.properties.get("$distinct_ids") {
                let ids: Vec<String> = ids.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
                if let Some((first, rest)) = ids.split_first() {
                    for other in rest {
                        links.push((other.clone(), first.clone(), LinkSource::Merge));
                    }
                }
            }
        }
        _ => {}
    }
    links
}

impl LinkCache {
    /// Records the links of these events: queued in the metadata, and
    /// committed with many others (see [`crate::identity`] for when, and why
    /// that is as durable as the events). Blocking (SQLite) when the queue
    /// is full.
    ///
    /// Most events carry a device already linked: checking one allocates
    /// nothing.
    pub fn record(&self, meta: &Meta, project: ProjectId, events: &[Event]) -> Result<(), Error> {
        let mut new_links = Vec::new();
        {
            let erasure_generation = meta.erasure_generation();
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            known.forget_if_erased_since(erasure_generation);
            let mut device_distinct_id = String::new();
            for event in events {
                if let Some((device, user)) = device_and_user(event) {
                    // The distinct id the device is known by, built in a reused buffer.
                    device_distinct_id.clear();
                    device_distinct_id.push_str("$device:");
                    device_distinct_id.push_str(&device);
                    if !known.contains(self.fingerprints.of(project, &device_distinct_id)) {
                        new_links.push((device_distinct_id.clone(), user.into_owned(), LinkSource::DeviceUser, event.time_ms));
                    }
                }
                if event.name.starts_with('$') {
                    for (distinct_id, canonical_id, source) in explicit_links_of(event) {
                        if !known.contains(self.fingerprints.of(project, &distinct_id)) {
                            new_links.push((distinct_id, canonical_id, source, event.time_ms));
                        }
                    }
                }
            }
        }
        if new_links.is_empty() {
            return Ok(());
        }
        let fingerprints: Vec<u128> = new_links.iter().map(|(distinct_id, ..)| self.fingerprints.of(project, distinct_id)).collect();
        // A full queue is committed before more joins it: while the database
        // refuses, requests fail here instead of growing the queue.
        if meta.queue_is_full() {
            meta.persist_queued_links()?;
        }
        meta.queue_links(project, new_links);
        let erasure_generation_after = meta.erasure_generation();
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.erasure_generation != erasure_generation_after {
            // An erasure ran meanwhile and may have taken these links too.
            return Ok(());
        }
        for fingerprint in fingerprints {
            known.insert(fingerprint);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, properties: serde_json::Value) -> Event {
        let serde_json::Value::Object(properties) = properties else { unreachable!() };
        Event { name: name.to_owned(), distinct_id: "u1".to_owned(), time_ms: 1_000, insert_id: "i".to_owned(), properties }
    }

    #[test]
    fn links_are_recorded_once_and_again_after_an_erasure_took_them() {
        crate::testing::on_each_backend(|meta| {
            let project = meta.create_project("demo").unwrap().project.id;
            let cache = LinkCache::default();
            let seen = event("Page View", json!({"$device_id": "d1", "$user_id": "u1"}));
            let numeric = event("Page View", json!({"$device_id": 7, "$user_id": 8}));
            let alias = event("$create_alias", json!({"alias": "a1"}));
            cache.record(meta, project, &[seen.clone(), numeric, alias]).unwrap();
            assert_eq!(meta.resolve_identity(project, "$device:d1").unwrap(), "u1");
            assert_eq!(meta.resolve_identity(project, "$device:7").unwrap(), "8");
            assert_eq!(meta.resolve_identity(project, "a1").unwrap(), "u1");

            // The cache answers for a link it has recorded: a link deleted
            // behind its back (not by an erasure) is not made again...
            meta.connection().execute("DELETE FROM identity_links WHERE distinct_id = '$device:d1'", Vec::new()).unwrap();
            cache.record(meta, project, std::slice::from_ref(&seen)).unwrap();
            assert_eq!(meta.resolve_identity(project, "$device:d1").unwrap(), "$device:d1");

            // ...but after an erasure, which deletes links, the cache starts over.
            let erasure = meta.record_erasure(project, "task-1", &["u-gone".to_owned()], &[]).unwrap();
            meta.finish_erasure(&erasure.task_id).unwrap();
            cache.record(meta, project, &[seen]).unwrap();
            assert_eq!(meta.resolve_identity(project, "$device:d1").unwrap(), "u1");
        });
    }

    #[test]
    fn a_full_generation_keeps_what_was_seen_lately() {
        let mut generations = Generations::default();
        for fingerprint in 0..GENERATION_ENTRIES_MAX as u128 {
            generations.insert(fingerprint);
        }
        generations.insert(u128::MAX);
        assert_eq!(generations.current.len(), 1, "the full generation became the previous one");
        assert!(generations.contains(5), "the previous generation still answers");
        assert!(generations.current.contains(&5), "and a hit moves back into the current one");
        assert!(!generations.contains(GENERATION_ENTRIES_MAX as u128 + 1));
    }
}
