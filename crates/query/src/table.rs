//! The engine's in-memory table: one project's events ordered by counting
//! unit (a person, or an organisation for group analytics) and time.
//!
//! Why this shape: every report Hearth answers is per person: uniques,
//! funnels, retention, flows, cohorts. With each person's events in one
//! contiguous, time-ordered run, they all become one linear pass with no
//! hashing and no sorting at query time, and the pass splits over threads by
//! ranges of people. Units are dense `u32`s; event names are dense codes in
//! name order, so (time, code) is (time, name) order.
//!
//! The table is built from [`Block`]s (a Parquet part, or rows held in
//! memory) and keeps, for each block row, its position in the table, so that
//! a property column is read from the blocks only when a report first needs
//! it, and then kept.

use crate::error::QueryError;
use crate::value::{Column, Dictionary, MISSING};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use store::part::{CoreColumns, PropertyValue, PropertyVisitor};

/// The distinct id of each user key of a project, gathered from the blocks
/// as they are loaded (a block's own copy is then dropped: per-day copies of
/// half a million ids would cost more than the events).
#[derive(Debug, Default)]
pub(crate) struct KeyNames {
    names: Vec<Option<Arc<str>>>,
}

impl KeyNames {
    pub(crate) fn take_from(&mut self, core: &mut CoreColumns) {
        for (key, id) in std::mem::take(&mut core.distinct_ids) {
            let key = key as usize;
            if key >= self.names.len() {
                self.names.resize(key + 1, None);
            }
            if self.names[key].is_none() {
                self.names[key] = Some(id.into());
            }
        }
        core.distinct_ids.shrink_to_fit();
    }

    /// The distinct ids of these user keys (those seen in any block).
    pub(crate) fn ids_of(&self, keys: &[u32]) -> Vec<(u32, String)> {
        keys.iter().filter_map(|key| self.get_shared(*key).map(|id| (*key, id.to_string()))).collect()
    }

    /// The user keys of these distinct ids (those seen in any block).
    pub(crate) fn keys_of(&self, distinct_ids: &[String]) -> Vec<u32> {
        let wanted: std::collections::HashSet<&str> = distinct_ids.iter().map(String::as_str).collect();
        self.names.iter().enumerate().filter(|(_, name)| name.as_deref().is_some_and(|n| wanted.contains(n))).map(|(key, _)| key as u32).collect()
    }

    fn get_shared(&self, key: u32) -> Option<&Arc<str>> {
        self.names.get(key as usize).and_then(|n| n.as_ref())
    }
}

/// A block's decoded property columns, in block row order with the block's
/// own dictionaries: kept with the block, so that a table rebuilt after new
/// events arrive reads from disk only the columns of the days that changed.
#[derive(Debug, Default)]
pub(crate) struct BlockColumns(Mutex<HashMap<String, Arc<Column>>>);

impl BlockColumns {
    fn get_or_load(&self, block: &dyn Block, key: &str) -> Result<Arc<Column>, QueryError> {
        if let Some(column) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return Ok(column.clone());
        }
        let n_rows = block.core().times.len();
        let positions: Vec<u32> = (0..n_rows as u32).collect();
        let mut codes = vec![MISSING; n_rows];
        let mut dictionary = Dictionary::default();
        block.read_property(key, &mut ColumnVisitor { positions: &positions, codes: &mut codes, dictionary: &mut dictionary })?;
        let column = Arc::new(Column::new(codes, dictionary));
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), column.clone());
        Ok(column)
    }
}

/// A source of rows: the core columns up front, properties on demand.
pub(crate) trait Block: Send + Sync {
    fn core(&self) -> &CoreColumns;
    fn columns(&self) -> &BlockColumns;
    fn read_property(&self, key: &str, visitor: &mut dyn PropertyVisitor) -> Result<(), QueryError>;
    /// Full events of some rows (for activity feeds), as export JSON.
    fn events(&self, rows: &[usize]) -> Result<Vec<serde_json::Value>, QueryError>;
}

/// What a unit of the table is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum UnitKind {
    /// People: distinct ids resolved through identity links.
    People,
    /// Organisations: the values of a group key property.
    Group(String),
}

pub(crate) struct Table {
    /// `offsets[u]..offsets[u + 1]` are unit `u`'s rows.
    pub(crate) offsets: Vec<u32>,
    pub(crate) times: Vec<i64>,
    pub(crate) events: Vec<u32>,
    pub(crate) event_names: Vec<Arc<str>>,
    /// The id of each unit: canonical distinct id, or group key value.
    pub(crate) units: Vec<Arc<str>>,
    blocks: Vec<Arc<dyn Block>>,
    block_starts: Vec<usize>,
    /// Block row (blocks concatenated) to table row; `MISSING` if left out.
    position: Vec<u32>,
    columns: Mutex<HashMap<String, Arc<Column>>>,
    /// Keeps the part files the blocks read from on disk while the table lives.
    _snapshot: Option<store::Snapshot>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("rows", &self.times.len()).field("units", &self.units.len()).finish()
    }
}

/// Identity resolution: distinct id to canonical id, following chains.
#[derive(Debug, Default)]
pub(crate) struct Identities {
    links: HashMap<String, String>,
    /// Erased distinct ids: their events leave every report at once, before
    /// compaction removes them from the parts.
    erased: std::collections::HashSet<String>,
}

impl Identities {
    /// The first link of a distinct id wins (a device keeps its first user).
    pub(crate) fn new(links: impl IntoIterator<Item = (String, String)>) -> Identities {
        let mut map = HashMap::new();
        for (distinct_id, canonical) in links {
            map.entry(distinct_id).or_insert(canonical);
        }
        Identities { links: map, erased: Default::default() }
    }

    pub(crate) fn with_erased(mut self, erased: impl IntoIterator<Item = String>) -> Identities {
        self.erased = erased.into_iter().collect();
        self
    }

    pub(crate) fn is_erased(&self, distinct_id: &str) -> bool {
        !self.erased.is_empty() && self.erased.contains(distinct_id)
    }

    pub(crate) fn resolve<'a>(&'a self, distinct_id: &'a str) -> &'a str {
        let mut current = distinct_id;
        // Chains are short; the bound guards against a cycle.
        for _ in 0..16 {
            match self.links.get(current) {
                Some(next) if next != current => current = next,
                _ => break,
            }
        }
        current
    }

    /// Every distinct id that resolves to `canonical` (itself included).
    pub(crate) fn ids_of(&self, canonical: &str) -> Vec<String> {
        let mut ids: Vec<String> = self.links.keys().filter(|id| self.resolve(id) == canonical).cloned().collect();
        ids.push(canonical.to_owned());
        ids.sort();
        ids.dedup();
        ids
    }
}

impl Table {
    pub(crate) fn build(
        blocks: Vec<Arc<dyn Block>>,
        kind: &UnitKind,
        identities: &Identities,
        key_names: &KeyNames,
        snapshot: Option<store::Snapshot>,
        recycle: Option<Table>,
    ) -> Result<Table, QueryError> {
        // A table being replaced lends its large buffers: memory already
        // mapped is refilled instead of fresh pages being faulted in.
        let mut spare = recycle.map(Spare::from).unwrap_or_default();
        // Event names in name order, and each block's local-to-global codes.
        let mut names: Vec<&str> = blocks.iter().flat_map(|b| b.core().event_names.iter().map(String::as_str)).collect();
        names.sort_unstable();
        names.dedup();
        let event_names: Vec<Arc<str>> = names.iter().map(|n| Arc::from(*n)).collect();
        let code_of: HashMap<&str, u32> = names.iter().enumerate().map(|(i, n)| (*n, i as u32)).collect();

        let mut block_starts = Vec::with_capacity(blocks.len());
        let mut n_rows = 0usize;
        for block in &blocks {
            block_starts.push(n_rows);
            n_rows += block.core().times.len();
        }

        // The unit of every block row.
        let mut unit_ids: HashMap<Arc<str>, u32> = HashMap::new();
        let mut units: Vec<Arc<str>> = Vec::new();
        // `shared`: an `Arc` already holding the id (a distinct id that is its
        // own canonical id, the common case), so that units share it.
        let mut intern_shared = |id: &str, shared: Option<&Arc<str>>| -> u32 {
            if let Some(unit) = unit_ids.get(id) {
                return *unit;
            }
            let unit = units.len() as u32;
            let id: Arc<str> = shared.cloned().unwrap_or_else(|| id.into());
            units.push(id.clone());
            unit_ids.insert(id, unit);
            unit
        };
        // The unit of a row: by user key for people (no per-row array), by
        // the group key's value for groups.
        let row_units = match kind {
            UnitKind::People => {
                let mut unit_of_key: Vec<u32> = Vec::new();
                for block in &blocks {
                    for key in &block.core().user_keys {
                        let index = *key as usize;
                        if index >= unit_of_key.len() {
                            unit_of_key.resize(index + 1, MISSING);
                        }
                        if unit_of_key[index] == MISSING
                            && let Some(distinct_id) = key_names.get_shared(*key)
                            && !identities.is_erased(distinct_id)
                        {
                            let canonical = identities.resolve(distinct_id);
                            let shared = std::ptr::eq(canonical, distinct_id.as_ref()).then_some(distinct_id);
                            unit_of_key[index] = intern_shared(canonical, shared);
                        }
                    }
                }
                RowUnits::ByKey(unit_of_key)
            }
            UnitKind::Group(key) => {
                let mut per_row = vec![MISSING; n_rows];
                for (b, block) in blocks.iter().enumerate() {
                    let first = block_starts[b];
                    let rows = &mut per_row[first..first + block.core().times.len()];
                    block.read_property(key, &mut GroupVisitor { rows, intern: &mut |id: &str| intern_shared(id, None) })?;
                    if !identities.erased.is_empty() {
                        for (row, user_key) in block.core().user_keys.iter().enumerate() {
                            if key_names.get_shared(*user_key).is_some_and(|id| identities.is_erased(id)) {
                                per_row[first + row] = MISSING;
                            }
                        }
                    }
                }
                RowUnits::PerRow(per_row)
            }
        };
        let unit_at = |b: usize, row: usize| -> u32 {
            match &row_units {
                RowUnits::ByKey(unit_of_key) => unit_of_key.get(blocks[b].core().user_keys[row] as usize).copied().unwrap_or(MISSING),
                RowUnits::PerRow(per_row) => per_row[block_starts[b] + row],
            }
        };

        // Counting sort by unit; blocks come in time order, so most units'
        // rows arrive sorted and only merged people need a sort.
        let n_units = units.len();
        let mut offsets = refill(std::mem::take(&mut spare.offsets), n_units + 1, 0u32);
        for (b, block) in blocks.iter().enumerate() {
            for row in 0..block.core().times.len() {
                let unit = unit_at(b, row);
                if unit != MISSING {
                    offsets[unit as usize + 1] += 1;
                }
            }
        }
        for u in 0..n_units {
            offsets[u + 1] += offsets[u];
        }
        let n_kept = offsets[n_units] as usize;
        let mut cursor: Vec<u32> = offsets[..n_units].to_vec();
        let mut times = refill(std::mem::take(&mut spare.times), n_kept, 0i64);
        let mut events = refill(std::mem::take(&mut spare.events), n_kept, 0u32);
        let mut source = refill(std::mem::take(&mut spare.position), n_kept, 0u32);
        for (b, block) in blocks.iter().enumerate() {
            let core = block.core();
            let local: Vec<u32> = core.event_names.iter().map(|n| code_of[n.as_str()]).collect();
            let start = block_starts[b];
            for row in 0..core.times.len() {
                let unit = unit_at(b, row);
                if unit == MISSING {
                    continue;
                }
                let at = cursor[unit as usize] as usize;
                cursor[unit as usize] += 1;
                times[at] = core.times[row];
                events[at] = local[core.events[row] as usize];
                source[at] = (start + row) as u32;
            }
        }
        drop(row_units);
        for u in 0..n_units {
            let range = offsets[u] as usize..offsets[u + 1] as usize;
            let sorted = range.clone().skip(1).all(|i| (times[i - 1], events[i - 1]) <= (times[i], events[i]));
            if !sorted {
                let mut order: Vec<usize> = range.clone().collect();
                order.sort_by_key(|i| (times[*i], events[*i], source[*i]));
                let moved: Vec<(i64, u32, u32)> = order.iter().map(|i| (times[*i], events[*i], source[*i])).collect();
                for (i, (time, event, from)) in range.zip(moved) {
                    times[i] = time;
                    events[i] = event;
                    source[i] = from;
                }
            }
        }
        let mut position = refill(std::mem::take(&mut spare.source), n_rows, MISSING);
        for (at, from) in source.iter().enumerate() {
            position[*from as usize] = at as u32;
        }
        Ok(Table { offsets, times, events, event_names, units, blocks, block_starts, position, columns: Mutex::new(HashMap::new()), _snapshot: snapshot })
    }

    pub(crate) fn n_units(&self) -> usize {
        self.units.len()
    }

    pub(crate) fn n_rows(&self) -> usize {
        self.times.len()
    }

    #[inline]
    pub(crate) fn rows_of(&self, unit: usize) -> Range<usize> {
        self.offsets[unit] as usize..self.offsets[unit + 1] as usize
    }

    /// The first of `rows` (one unit's, time-ordered) at or after `start`.
    #[inline]
    pub(crate) fn first_at_or_after(&self, rows: Range<usize>, start: i64) -> usize {
        if rows.is_empty() || self.times[rows.start] >= start {
            return rows.start;
        }
        rows.start + self.times[rows].partition_point(|t| *t < start)
    }

    pub(crate) fn event_code(&self, name: &str) -> Option<u32> {
        self.event_names.binary_search_by(|n| n.as_ref().cmp(name)).ok().map(|i| i as u32)
    }

    /// A property in table order, read from the blocks the first time.
    pub(crate) fn column(&self, key: &str) -> Result<Arc<Column>, QueryError> {
        if let Some(column) = self.columns.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return Ok(column.clone());
        }
        let mut codes = vec![MISSING; self.n_rows()];
        let mut dictionary = Dictionary::default();
        for (b, block) in self.blocks.iter().enumerate() {
            let start = self.block_starts[b];
            let positions = &self.position[start..start + block.core().times.len()];
            let local = block.columns().get_or_load(block.as_ref(), key)?;
            let global: Vec<u32> = local.dictionary.values.iter().map(|value| dictionary.intern(value)).collect();
            for (row, at) in positions.iter().enumerate() {
                let code = local.codes.get(row);
                if *at != MISSING && code != MISSING {
                    codes[*at as usize] = global[code as usize];
                }
            }
        }
        let column = Arc::new(Column::new(codes, dictionary));
        self.columns.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), column.clone());
        Ok(column)
    }

    /// Full events of some table rows, as Mixpanel export JSON, in the given order.
    pub(crate) fn full_events(&self, rows: &[usize]) -> Result<Vec<serde_json::Value>, QueryError> {
        let mut wanted: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        let sources: HashMap<u32, usize> = rows.iter().enumerate().map(|(i, row)| (*row as u32, i)).collect();
        for (from, at) in self.position.iter().enumerate() {
            if let Some(i) = sources.get(at) {
                let b = self.block_starts.partition_point(|s| *s <= from) - 1;
                wanted.entry(b).or_default().push((from - self.block_starts[b], *i));
            }
        }
        let mut out = vec![serde_json::Value::Null; rows.len()];
        for (b, list) in wanted {
            let block_rows: Vec<usize> = list.iter().map(|(row, _)| *row).collect();
            for (event, (_, i)) in self.blocks[b].events(&block_rows)?.into_iter().zip(list) {
                out[i] = event;
            }
        }
        Ok(out)
    }
}

/// The buffers of a table being replaced.
#[derive(Default)]
struct Spare {
    offsets: Vec<u32>,
    times: Vec<i64>,
    events: Vec<u32>,
    position: Vec<u32>,
    source: Vec<u32>,
}

impl From<Table> for Spare {
    fn from(table: Table) -> Spare {
        Spare { offsets: table.offsets, times: table.times, events: table.events, position: table.position, source: Vec::new() }
    }
}

/// `buffer` holding `len` copies of `value`, reusing its memory.
fn refill<T: Clone>(mut buffer: Vec<T>, len: usize, value: T) -> Vec<T> {
    buffer.clear();
    buffer.resize(len, value);
    buffer
}

/// Each block row's unit, found without a per-row array where possible.
enum RowUnits {
    ByKey(Vec<u32>),
    PerRow(Vec<u32>),
}

/// Interns each value of a property column into table order.
struct ColumnVisitor<'a> {
    positions: &'a [u32],
    codes: &'a mut Vec<u32>,
    dictionary: &'a mut Dictionary,
}

pub(crate) fn intern_value(dictionary: &mut Dictionary, value: PropertyValue<'_>) -> u32 {
    match value {
        PropertyValue::Str(text) => dictionary.string(text),
        PropertyValue::Int(int) => dictionary.number(int as f64),
        PropertyValue::Float(float) => dictionary.number(float),
        PropertyValue::Bool(flag) => dictionary.boolean(flag),
        PropertyValue::Json(json) => dictionary.json(json),
    }
}

impl PropertyVisitor for ColumnVisitor<'_> {
    fn value(&mut self, row: usize, value: PropertyValue<'_>) {
        let at = self.positions[row];
        if at != MISSING {
            self.codes[at as usize] = intern_value(self.dictionary, value);
        }
    }

    fn dictionary(&mut self, first: usize, values: &[&str], keys: &[Option<u32>]) {
        let dictionary = &mut *self.dictionary;
        let mapped: Vec<u32> = values.iter().map(|text| dictionary.string(text)).collect();
        for (i, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                let at = self.positions[first + i];
                if at != MISSING {
                    self.codes[at as usize] = mapped[*key as usize];
                }
            }
        }
    }
}

/// Gives each block row the unit of its group key value.
struct GroupVisitor<'a, F: FnMut(&str) -> u32> {
    rows: &'a mut [u32],
    intern: &'a mut F,
}

fn group_id_text(value: PropertyValue<'_>) -> String {
    match value {
        PropertyValue::Str(text) => text.to_owned(),
        PropertyValue::Int(int) => int.to_string(),
        PropertyValue::Float(float) => crate::value::number_json(float).to_string(),
        PropertyValue::Bool(flag) => flag.to_string(),
        PropertyValue::Json(json) => json.to_string(),
    }
}

impl<F: FnMut(&str) -> u32> PropertyVisitor for GroupVisitor<'_, F> {
    fn value(&mut self, row: usize, value: PropertyValue<'_>) {
        self.rows[row] = (self.intern)(&group_id_text(value));
    }

    fn dictionary(&mut self, first: usize, values: &[&str], keys: &[Option<u32>]) {
        let intern = &mut *self.intern;
        let mapped: Vec<u32> = values.iter().map(|text| intern(text)).collect();
        for (i, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                self.rows[first + i] = mapped[*key as usize];
            }
        }
    }
}
