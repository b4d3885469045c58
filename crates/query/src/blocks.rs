//! The blocks the engine reads a store day from, by how the day is held:
//! - one settled part: [`PartBlock`], column by column;
//! - several parts not yet merged: [`SplitDayBlock`], still column by
//!   column, deduplicated across the parts on (user, time, event, insert id)
//!   with the later part's copy winning, as the store's own merge does;
//! - a day with buffered (not yet flushed) events: [`BufferedDayBlock`], from
//!   the store's deduplicated rows, properties parsed from their JSON text
//!   only when a report asks for one.

use crate::error::QueryError;
use crate::table::{Block, BlockColumns};
use crate::value::MISSING;
use std::collections::HashMap;
use std::path::PathBuf;
use store::part::{visit_json, CoreColumns, PropertyValue, PropertyVisitor};
use store::StoredEvent;

pub(crate) struct PartBlock {
    pub(crate) core: CoreColumns,
    pub(crate) path: PathBuf,
    pub(crate) columns: BlockColumns,
}

impl Block for PartBlock {
    fn core(&self) -> &CoreColumns {
        &self.core
    }

    fn columns(&self) -> &BlockColumns {
        &self.columns
    }

    fn read_property(&self, key: &str, visitor: &mut dyn PropertyVisitor) -> Result<(), QueryError> {
        Ok(store::part::read_property(&self.path, key, visitor)?)
    }

    fn events(&self, rows: &[usize]) -> Result<Vec<serde_json::Value>, QueryError> {
        let all = store::part::read_rows(&self.path)?;
        Ok(rows.iter().filter_map(|row| all.get(*row)).map(|event| event.to_event().to_export_json(true)).collect())
    }
}

pub(crate) struct SplitDayBlock {
    core: CoreColumns,
    columns: BlockColumns,
    parts: Vec<PathBuf>,
    /// Per part: each part row's block row, or `MISSING` for a replaced copy.
    block_row: Vec<Vec<u32>>,
}

impl SplitDayBlock {
    /// Reads and deduplicates the parts, given oldest data first.
    pub(crate) fn load(parts: &[PathBuf]) -> Result<SplitDayBlock, QueryError> {
        let mut read = Vec::with_capacity(parts.len());
        for path in parts {
            read.push(store::part::read_core_with_insert_ids(path)?);
        }
        // The last copy of each dedup key wins: later parts, then later rows.
        let mut winner: HashMap<(u32, i64, &str, &str), (usize, usize)> = HashMap::new();
        for (p, (core, insert_ids)) in read.iter().enumerate() {
            for (row, insert_id) in insert_ids.iter().enumerate() {
                let name = core.event_names[core.events[row] as usize].as_str();
                winner.insert((core.user_keys[row], core.times[row], name, insert_id.as_str()), (p, row));
            }
        }
        let mut kept: Vec<(usize, usize)> = winner.into_values().collect();
        kept.sort_unstable();
        let mut core = CoreColumns::default();
        let mut names: HashMap<&str, u32> = HashMap::new();
        let mut block_row: Vec<Vec<u32>> = read.iter().map(|(c, _)| vec![MISSING; c.times.len()]).collect();
        for (p, row) in kept {
            let part = &read[p].0;
            block_row[p][row] = core.times.len() as u32;
            let name = part.event_names[part.events[row] as usize].as_str();
            let next = names.len() as u32;
            core.events.push(*names.entry(name).or_insert(next));
            core.user_keys.push(part.user_keys[row]);
            core.times.push(part.times[row]);
        }
        core.event_names = vec![String::new(); names.len()];
        for (name, code) in names {
            core.event_names[code as usize] = name.to_owned();
        }
        for (part, _) in &read {
            core.distinct_ids.extend(part.distinct_ids.iter().cloned());
        }
        core.distinct_ids.sort_unstable_by_key(|(key, _)| *key);
        core.distinct_ids.dedup_by_key(|(key, _)| *key);
        Ok(SplitDayBlock { core, columns: BlockColumns::default(), parts: parts.to_vec(), block_row })
    }

    pub(crate) fn core_mut(&mut self) -> &mut CoreColumns {
        &mut self.core
    }
}

/// Passes on the values of kept rows, renumbered to block rows.
struct Renumber<'a> {
    block_row: &'a [u32],
    inner: &'a mut dyn PropertyVisitor,
}

impl PropertyVisitor for Renumber<'_> {
    fn value(&mut self, row: usize, value: PropertyValue<'_>) {
        let to = self.block_row[row];
        if to != MISSING {
            self.inner.value(to as usize, value);
        }
    }

    fn dictionary(&mut self, first: usize, values: &[&str], keys: &[Option<u32>]) {
        for (i, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                self.value(first + i, PropertyValue::Str(values[*key as usize]));
            }
        }
    }
}

impl Block for SplitDayBlock {
    fn core(&self) -> &CoreColumns {
        &self.core
    }

    fn columns(&self) -> &BlockColumns {
        &self.columns
    }

    fn read_property(&self, key: &str, visitor: &mut dyn PropertyVisitor) -> Result<(), QueryError> {
        for (path, block_row) in self.parts.iter().zip(&self.block_row) {
            store::part::read_property(path, key, &mut Renumber { block_row, inner: visitor })?;
        }
        Ok(())
    }

    fn events(&self, rows: &[usize]) -> Result<Vec<serde_json::Value>, QueryError> {
        let mut out = vec![serde_json::Value::Null; rows.len()];
        let index: HashMap<u32, usize> = rows.iter().enumerate().map(|(i, row)| (*row as u32, i)).collect();
        for (path, block_row) in self.parts.iter().zip(&self.block_row) {
            let wanted: Vec<(usize, usize)> =
                block_row.iter().enumerate().filter(|(_, to)| **to != MISSING).filter_map(|(part_row, to)| index.get(to).map(|i| (part_row, *i))).collect();
            if wanted.is_empty() {
                continue;
            }
            let all = store::part::read_rows(path)?;
            for (part_row, i) in wanted {
                if let Some(event) = all.get(part_row) {
                    out[i] = event.to_event().to_export_json(true);
                }
            }
        }
        Ok(out)
    }
}

/// The core columns of rows held in memory: (user key, time, event name,
/// distinct id) each.
pub(crate) fn core_of_rows<'a>(rows: impl Iterator<Item = (u32, i64, &'a str, &'a str)>) -> CoreColumns {
    let mut core = CoreColumns::default();
    let mut names: HashMap<&str, u32> = HashMap::new();
    let mut ids: HashMap<u32, &str> = HashMap::new();
    for (key, time, name, distinct_id) in rows {
        let next = names.len() as u32;
        core.events.push(*names.entry(name).or_insert(next));
        core.user_keys.push(key);
        core.times.push(time);
        ids.entry(key).or_insert(distinct_id);
    }
    core.event_names = vec![String::new(); names.len()];
    for (name, code) in names {
        core.event_names[code as usize] = name.to_owned();
    }
    core.distinct_ids = ids.into_iter().map(|(key, id)| (key, id.to_owned())).collect();
    core.distinct_ids.sort_unstable();
    core
}

pub(crate) struct BufferedDayBlock {
    core: CoreColumns,
    columns: BlockColumns,
    rows: Vec<StoredEvent>,
}

impl BufferedDayBlock {
    pub(crate) fn new(rows: Vec<StoredEvent>) -> BufferedDayBlock {
        let core = core_of_rows(rows.iter().map(|row| (row.user_key(), row.time_ms(), row.name(), row.distinct_id())));
        BufferedDayBlock { core, columns: BlockColumns::default(), rows }
    }

    pub(crate) fn core_mut(&mut self) -> &mut CoreColumns {
        &mut self.core
    }
}

impl Block for BufferedDayBlock {
    fn core(&self) -> &CoreColumns {
        &self.core
    }

    fn columns(&self) -> &BlockColumns {
        &self.columns
    }

    fn read_property(&self, key: &str, visitor: &mut dyn PropertyVisitor) -> Result<(), QueryError> {
        for (i, row) in self.rows.iter().enumerate() {
            if let Some(value) = row.property(key) {
                visit_json(i, &value, visitor);
            }
        }
        Ok(())
    }

    fn events(&self, rows: &[usize]) -> Result<Vec<serde_json::Value>, QueryError> {
        Ok(rows.iter().filter_map(|row| self.rows.get(*row)).map(|event| event.to_event().to_export_json(true)).collect())
    }
}
