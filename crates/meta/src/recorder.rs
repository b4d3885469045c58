//! Recording identity links from events as they arrive, for every path that
//! writes events (the server's ingestion, `hearth import`, `hearth gen`): see
//! [`crate::identity`] for the rules. Most events carry a device already
//! linked, so a bounded in-memory set of links already made spares SQLite the
//! lookups.

use crate::identity::LinkSource;
use crate::{Error, Meta};
use events::{Event, ProjectId};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// About 20 bytes an entry: 1M entries hold every link of tens of millions
/// of events in some 20 MB, so the cache rarely has to start over.
const CACHE_ENTRIES_MAX: usize = 1_000_000;

#[derive(Debug, Default)]
pub struct LinkCache {
    /// Per project, fingerprints of the distinct ids whose link is known to
    /// be recorded.
    linked: Mutex<HashMap<ProjectId, HashSet<u128>>>,
    fingerprints: Fingerprints,
}

/// 128 bits of two keyed hashes (random keys per process): a chance
/// collision, which would skip recording a link, is out of reach (about
/// 2^-108 per check with the cache full), and nobody outside can aim one.
#[derive(Debug, Default)]
struct Fingerprints(std::hash::RandomState, std::hash::RandomState);

impl Fingerprints {
    fn of(&self, id: &str) -> u128 {
        use std::hash::BuildHasher;
        (u128::from(self.0.hash_one(id)) << 64) | u128::from(self.1.hash_one(id))
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

/// The distinct id a device is known by.
fn write_device_distinct_id(device: &str, out: &mut String) {
    out.clear();
    out.push_str("$device:");
    out.push_str(device);
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
    /// Records the links of these events, all in one transaction. Blocking (SQLite).
    ///
    /// Most events carry a device already linked: checking one allocates
    /// nothing.
    pub fn record(&self, meta: &Meta, project: ProjectId, events: &[Event]) -> Result<(), Error> {
        let mut new_links = Vec::new();
        {
            let mut linked = self.linked.lock().unwrap_or_else(|p| p.into_inner());
            let known = linked.entry(project).or_default();
            let mut device_distinct_id = String::new();
            for event in events {
                if let Some((device, user)) = device_and_user(event) {
                    write_device_distinct_id(&device, &mut device_distinct_id);
                    if !known.contains(&self.fingerprints.of(&device_distinct_id)) {
                        new_links.push((device_distinct_id.clone(), user.into_owned(), LinkSource::DeviceUser, event.time_ms));
                    }
                }
                if event.name.starts_with('$') {
                    for (distinct_id, canonical_id, source) in explicit_links_of(event) {
                        if !known.contains(&self.fingerprints.of(&distinct_id)) {
                            new_links.push((distinct_id, canonical_id, source, event.time_ms));
                        }
                    }
                }
            }
        }
        if new_links.is_empty() {
            return Ok(());
        }
        meta.link_identities(project, &new_links)?;
        let mut linked = self.linked.lock().unwrap_or_else(|p| p.into_inner());
        let n_cached: usize = linked.values().map(HashSet::len).sum();
        if n_cached + new_links.len() > CACHE_ENTRIES_MAX {
            linked.clear();
        }
        linked.entry(project).or_default().extend(new_links.iter().map(|(distinct_id, ..)| self.fingerprints.of(distinct_id)));
        Ok(())
    }
}
