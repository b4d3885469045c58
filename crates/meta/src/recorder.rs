//! Recording identity links from events as they arrive, for every path that
//! writes events (the server's ingestion, `hearth import`, `hearth gen`): see
//! [`crate::identity`] for the rules. Most events carry a device already
//! linked, so a bounded in-memory set of links already made spares SQLite the
//! lookups.

use crate::identity::LinkSource;
use crate::{Error, Meta};
use events::{Event, ProjectId};
use std::collections::HashSet;
use std::sync::Mutex;

const CACHE_ENTRIES_MAX: usize = 200_000;

#[derive(Debug, Default)]
pub struct LinkCache {
    linked: Mutex<HashSet<(ProjectId, String)>>,
}

/// The (distinct id, canonical id, source) links an event asks for.
fn links_of(event: &Event) -> Vec<(String, String, LinkSource)> {
    let text = |key: &str| -> Option<String> {
        match event.properties.get(key)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut links = Vec::new();
    if let (Some(device), Some(user)) = (text("$device_id"), text("$user_id")) {
        links.push((format!("$device:{device}"), user, LinkSource::DeviceUser));
    }
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
    pub fn record(&self, meta: &Meta, project: ProjectId, events: &[Event]) -> Result<(), Error> {
        let mut new_links = Vec::new();
        {
            let linked = self.linked.lock().unwrap_or_else(|p| p.into_inner());
            for event in events {
                for (distinct_id, canonical_id, source) in links_of(event) {
                    if !linked.contains(&(project, distinct_id.clone())) {
                        new_links.push((distinct_id, canonical_id, source, event.time_ms));
                    }
                }
            }
        }
        if new_links.is_empty() {
            return Ok(());
        }
        meta.link_identities(project, &new_links)?;
        let mut linked = self.linked.lock().unwrap_or_else(|p| p.into_inner());
        if linked.len() + new_links.len() > CACHE_ENTRIES_MAX {
            linked.clear();
        }
        linked.extend(new_links.into_iter().map(|(distinct_id, ..)| (project, distinct_id)));
        Ok(())
    }
}
