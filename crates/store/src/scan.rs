//! Reading events back day by day, deduplicated: the basis of raw export.

use crate::buffer::Row;
use crate::error::Error;
use crate::flush::sort_and_dedup;
use crate::part;
use crate::snapshot::Snapshot;
use events::{day_of_ms, Event, ProjectId};

/// The events of one project and UTC day, deduplicated, in time order.
#[derive(Debug)]
pub struct DayRows {
    pub day: i32,
    pub events: Vec<Event>,
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
            .chain(self.chunks.iter().filter(|c| c.project == project).flat_map(|c| c.rows.iter().map(|r| day_of_ms(r.event.time_ms))).filter(|d| (from_day..=to_day).contains(d)))
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

    fn day_events(&self, project: ProjectId, day: i32) -> Result<Vec<Event>, Error> {
        let mut parts: Vec<_> = self.parts.iter().filter(|p| p.meta.project == project && p.meta.day == day).collect();
        parts.sort_by_key(|p| p.meta.id);
        let mut rows: Vec<Row> = Vec::new();
        for part in parts {
            rows.extend(part::read_part(&part.path)?);
        }
        for chunk in self.chunks.iter().filter(|c| c.project == project) {
            rows.extend(chunk.rows.iter().filter(|r| day_of_ms(r.event.time_ms) == day).cloned());
        }
        sort_and_dedup(&mut rows);
        let mut events: Vec<Event> = rows.into_iter().map(|r| r.event).collect();
        events.sort_by_key(|e| e.time_ms);
        Ok(events)
    }
}
