//! Reading events back day by day, deduplicated: the basis of raw export.

use crate::buffer::{Row, StoredEvent};
use crate::error::Error;
use crate::flush::sort_and_dedup;
use crate::part;
use crate::snapshot::Snapshot;
use events::{day_of_ms, ProjectId};

/// Where the events of one project and UTC day live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySource {
    pub day: i32,
    /// (part id, file), oldest data first: where two parts hold copies of
    /// one event, the later part's copy wins.
    pub parts: Vec<(u64, std::path::PathBuf)>,
    /// Sequence numbers of buffered chunks with rows of this day.
    pub chunks: Vec<u64>,
}

impl DaySource {
    fn empty(day: i32) -> DaySource {
        DaySource { day, parts: Vec::new(), chunks: Vec::new() }
    }

    /// True when one part holds the whole day, deduplicated: it can be read
    /// column by column.
    pub fn is_single_part(&self) -> bool {
        self.parts.len() == 1 && self.chunks.is_empty()
    }
}

/// The events of one project and UTC day, deduplicated, in time order.
#[derive(Debug)]
pub struct DayRows {
    pub day: i32,
    pub events: Vec<StoredEvent>,
}

impl Snapshot {
    /// Calls `visit` with each day in `[from_day, to_day]` that has events,
    /// in order; stops early when `visit` returns false.
    pub fn scan_days(
        &self,
        project: ProjectId,
        from_day: i32,
        to_day: i32,
        mut visit: impl FnMut(DayRows) -> bool,
    ) -> Result<(), Error> {
        let mut days: Vec<i32> = self
            .parts
            .iter()
            .filter(|p| p.meta.project == project && (from_day..=to_day).contains(&p.meta.day))
            .map(|p| p.meta.day)
            .chain(self.chunks.iter().filter(|c| c.project == project).flat_map(|c| c.rows.iter().map(|r| day_of_ms(r.time_ms))).filter(|d| (from_day..=to_day).contains(d)))
            .collect();
        days.sort_unstable();
        days.dedup();
        for day in days {
            let events = self.day_events(project, day)?;
            if !visit(DayRows { day, events }) {
                break;
            }
        }
        Ok(())
    }

    /// What holds each day of a project: its parts and the buffered chunks
    /// with rows of that day, in day order. A reader that caches per day keys
    /// its cache on this (part ids and chunk sequence numbers never repeat).
    pub fn day_sources(&self, project: ProjectId) -> Vec<DaySource> {
        let mut days: std::collections::BTreeMap<i32, DaySource> = std::collections::BTreeMap::new();
        let mut parts: Vec<_> = self.parts.iter().filter(|p| p.meta.project == project).collect();
        // Oldest data first (see `day_events`): a later copy of an event wins.
        parts.sort_by_key(|p| (std::cmp::Reverse(p.meta.level), p.meta.id));
        for part in parts {
            let source = days.entry(part.meta.day).or_insert_with(|| DaySource::empty(part.meta.day));
            source.parts.push((part.meta.id, part.path.clone()));
        }
        for chunk in self.chunks.iter().filter(|c| c.project == project) {
            let mut chunk_days: Vec<i32> = chunk.rows.iter().map(|r| day_of_ms(r.time_ms)).collect();
            chunk_days.sort_unstable();
            chunk_days.dedup();
            for day in chunk_days {
                days.entry(day).or_insert_with(|| DaySource::empty(day)).chunks.push(chunk.seq);
            }
        }
        days.into_values().collect()
    }

    /// The events of one project and UTC day, deduplicated, in time order.
    pub fn day_rows(&self, project: ProjectId, day: i32) -> Result<Vec<StoredEvent>, Error> {
        self.day_events(project, day)
    }

    fn day_events(&self, project: ProjectId, day: i32) -> Result<Vec<StoredEvent>, Error> {
        let mut parts: Vec<_> = self.parts.iter().filter(|p| p.meta.project == project && p.meta.day == day).collect();
        // Oldest data first, so that deduplication keeps the latest copy: a
        // higher level holds only data older than any lower level's (each
        // merge takes every part of its level), and within a level ids grow.
        parts.sort_by_key(|p| (std::cmp::Reverse(p.meta.level), p.meta.id));
        let mut rows: Vec<Row> = Vec::new();
        for part in parts {
            rows.extend(part::read_part(&part.path)?);
        }
        for chunk in self.chunks.iter().filter(|c| c.project == project) {
            rows.extend(chunk.rows.iter().filter(|r| day_of_ms(r.time_ms) == day).cloned());
        }
        sort_and_dedup(&mut rows);
        rows.sort_by_key(|r| r.time_ms);
        Ok(rows)
    }
}
