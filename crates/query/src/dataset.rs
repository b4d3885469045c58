//! Reports over events held in memory: the seam the property tests use, and
//! the block type for store days that are not yet one part.

use crate::context::Profiles;
use crate::error::QueryError;
use crate::result::ReportResult;
use crate::run::{needs_table, run, unit_kind, Inputs};
use crate::spec::{CohortRule, Spec};
use crate::blocks::core_of_rows;
use crate::table::{Block, BlockColumns, Identities, KeyNames, Table};
use events::{Event, Properties};
use std::collections::HashMap;
use std::sync::Arc;
use store::part::{visit_json, CoreColumns, PropertyVisitor};

/// Everything a report needs, in memory.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub timezone: String,
    /// May contain duplicates (same distinct_id, time, name, insert_id): the
    /// last one wins.
    pub events: Vec<Event>,
    /// Identity links, distinct id to canonical id; chains are followed.
    pub links: Vec<(String, String)>,
    pub profiles: Vec<(String, Properties)>,
    pub cohorts: Vec<(i64, CohortRule)>,
    pub now_ms: i64,
}

/// Runs a report over a dataset.
pub fn run_dataset(dataset: &Dataset, spec: &Spec) -> Result<ReportResult, QueryError> {
    let identities = Identities::new(dataset.links.iter().cloned());
    let profiles = Profiles { people: dataset.profiles.clone(), groups: HashMap::new() };
    let cohorts: HashMap<i64, CohortRule> = dataset.cohorts.iter().cloned().collect();
    let table = if needs_table(spec) {
        let mut block = MemoryBlock::from_events(dedup(&dataset.events));
        let mut key_names = KeyNames::default();
        key_names.take_from(&mut block.core);
        let block: Arc<dyn Block> = Arc::new(block);
        Some(Arc::new(Table::build(vec![block], &unit_kind(spec), &identities, &key_names, None, None)?))
    } else {
        None
    };
    let timezone = if dataset.timezone.is_empty() { "UTC" } else { dataset.timezone.as_str() };
    run(table, &Inputs { identities: &identities, profiles: &profiles, cohorts: &cohorts, timezone, now_ms: dataset.now_ms }, spec)
}

fn dedup(events: &[Event]) -> Vec<Event> {
    let mut last: HashMap<(&str, i64, &str, &str), usize> = HashMap::new();
    for (i, event) in events.iter().enumerate() {
        last.insert((&event.distinct_id, event.time_ms, &event.name, &event.insert_id), i);
    }
    let mut kept: Vec<usize> = last.into_values().collect();
    kept.sort_unstable();
    kept.into_iter().map(|i| events[i].clone()).collect()
}

/// Rows held in memory with parsed properties.
pub(crate) struct MemoryBlock {
    pub(crate) core: CoreColumns,
    columns: BlockColumns,
    events: Vec<Event>,
}

impl MemoryBlock {

    /// Events with user keys given in order of first appearance.
    pub(crate) fn from_events(events: Vec<Event>) -> MemoryBlock {
        let mut keys: HashMap<String, u32> = HashMap::new();
        let keyed: Vec<(u32, Event)> = events
            .into_iter()
            .map(|event| {
                let next = keys.len() as u32;
                let key = *keys.entry(event.distinct_id.clone()).or_insert(next);
                (key, event)
            })
            .collect();
        MemoryBlock::from_keyed(keyed)
    }

    fn from_keyed(keyed: Vec<(u32, Event)>) -> MemoryBlock {
        let core = core_of_rows(keyed.iter().map(|(key, event)| (*key, event.time_ms, event.name.as_str(), event.distinct_id.as_str())));
        let events = keyed.into_iter().map(|(_, event)| event).collect();
        MemoryBlock { core, columns: BlockColumns::default(), events }
    }
}

impl Block for MemoryBlock {
    fn core(&self) -> &CoreColumns {
        &self.core
    }

    fn columns(&self) -> &BlockColumns {
        &self.columns
    }

    fn read_property(&self, key: &str, visitor: &mut dyn PropertyVisitor) -> Result<(), QueryError> {
        for (row, event) in self.events.iter().enumerate() {
            if let Some(value) = event.properties.get(key) {
                visit_json(row, value, visitor);
            }
        }
        Ok(())
    }

    fn events(&self, rows: &[usize]) -> Result<Vec<serde_json::Value>, QueryError> {
        Ok(rows.iter().map(|row| self.events[*row].to_export_json(true)).collect())
    }
}
