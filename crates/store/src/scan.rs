//! Reading events back day by day, deduplicated: the basis of raw export.

use crate::buffer::{Row, StoredEvent};
use crate::error::Error;
use crate::flush::sort_and_dedup;
use crate::part;
use crate::snapshot::Snapshot;
use events::{day_of_ms, ProjectId};

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
