//! Dates and time zones: turning a report's `from`/`to` dates and interval
//! into UTC instants, and an event's time into the bucket it is counted in.
//! Buckets are computed once per report as a sorted list of UTC boundaries
//! with an index that finds a time's bucket in constant time.

use crate::error::QueryError;
use crate::spec::Interval;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::ToSpan;

pub(crate) const MS_PER_HOUR: i64 = 3_600_000;
pub(crate) const MS_PER_DAY: i64 = 86_400_000;

#[derive(Debug, Clone)]
pub struct Calendar {
    zone: TimeZone,
}

pub fn parse_date(text: &str, field: &str) -> Result<Date, QueryError> {
    text.parse::<Date>().map_err(|_| QueryError::bad(format!("{field} must be a date YYYY-MM-DD, got {text:?}")))
}

impl Calendar {
    pub fn new(zone_name: &str) -> Result<Calendar, QueryError> {
        let zone = TimeZone::get(zone_name).map_err(|_| QueryError::bad(format!("unknown time zone {zone_name:?}")))?;
        Ok(Calendar { zone })
    }

    /// The UTC instant (ms) at which local day `date` starts.
    pub fn day_start(&self, date: Date) -> i64 {
        date.to_datetime(Time::midnight())
            .to_zoned(self.zone.clone())
            .map(|zoned| zoned.timestamp().as_millisecond())
            .unwrap_or_else(|_| date.to_datetime(Time::midnight()).to_zoned(TimeZone::UTC).map(|z| z.timestamp().as_millisecond()).unwrap_or(0))
    }

    /// The local date of a UTC instant.
    pub fn date_of(&self, time_ms: i64) -> Date {
        jiff::Timestamp::from_millisecond(time_ms)
            .map(|ts| ts.to_zoned(self.zone.clone()).date())
            .unwrap_or_default()
    }

    /// `[start, end)` of the days `from..=to`.
    pub fn range(&self, from: Date, to: Date) -> Result<(i64, i64), QueryError> {
        if to < from {
            return Err(QueryError::bad("to is before from"));
        }
        Ok((self.day_start(from), self.day_start(next_day(to))))
    }

    /// The buckets of an interval over the days `from..=to`.
    pub fn buckets(&self, from: Date, to: Date, interval: Interval) -> Buckets {
        let mut buckets = Buckets::default();
        let mut label_index = std::collections::HashMap::new();
        let mut add = |buckets: &mut Buckets, start: i64, label: String| {
            let next = buckets.labels.len() as u32;
            let index = *label_index.entry(label.clone()).or_insert_with(|| {
                buckets.labels.push(label);
                next
            });
            buckets.starts.push(start);
            buckets.label_of.push(index);
        };
        let mut day = from;
        while day <= to {
            let start = self.day_start(day);
            match interval {
                Interval::Hour => {
                    // Local hours: a repeated hour (DST ends) is one bucket of
                    // two hours; a skipped hour (DST starts) has none.
                    let mut hours: Vec<(i64, String)> = Vec::with_capacity(24);
                    for hour in 0..24i8 {
                        let local = day.to_datetime(Time::constant(hour, 0, 0, 0));
                        if let Ok(zoned) = local.to_zoned(self.zone.clone())
                            && zoned.datetime() == local {
                                hours.push((zoned.timestamp().as_millisecond(), format!("{day}T{hour:02}:00")));
                            }
                    }
                    if hours.first().is_none_or(|(first, _)| *first != start) {
                        hours.insert(0, (start, format!("{day}T00:00")));
                    }
                    for (hour_start, label) in hours {
                        add(&mut buckets, hour_start, label);
                    }
                }
                Interval::Day => add(&mut buckets, start, day.to_string()),
                Interval::Week => add(&mut buckets, start, week_start(day).to_string()),
                Interval::Month => add(&mut buckets, start, day.first_of_month().to_string()),
            }
            day = next_day(day);
        }
        buckets.starts.push(self.day_start(next_day(to)));
        buckets.build_index();
        buckets
    }
}

impl Calendar {
    /// The zone's offsets from UTC over `[start, end)`: `(from, offset)` in
    /// ms, the first `from` being `start`, for an engine that buckets by
    /// local time with integer arithmetic. Offsets change on whole quarter
    /// hours in every zone, so sampling each quarter hour finds each change.
    pub fn utc_offsets(&self, start: i64, end: i64) -> Vec<(i64, i64)> {
        const QUARTER_HOUR: i64 = 900_000;
        let offset_at = |time: i64| -> i64 {
            jiff::Timestamp::from_millisecond(time).map(|ts| i64::from(self.zone.to_offset(ts).seconds()) * 1000).unwrap_or(0)
        };
        let mut offsets = vec![(start, offset_at(start))];
        let mut time = start - start.rem_euclid(QUARTER_HOUR) + QUARTER_HOUR;
        while time < end {
            let offset = offset_at(time);
            if offsets.last().is_some_and(|(_, last)| *last != offset) {
                offsets.push((time, offset));
            }
            time += QUARTER_HOUR;
        }
        offsets
    }
}

pub(crate) fn next_day(date: Date) -> Date {
    date.checked_add(1.day()).unwrap_or(date)
}

pub(crate) fn add_days(date: Date, days: i64) -> Date {
    date.checked_add(days.days()).unwrap_or(date)
}

/// The Monday that starts the ISO week of `date`.
pub(crate) fn week_start(date: Date) -> Date {
    let back = date.weekday().to_monday_zero_offset() as i64;
    add_days(date, -back)
}

/// Slots (hours or days) with their UTC starts, and the label each slot counts
/// under. `starts` has one more entry than `label_of`: the end of the range.
#[derive(Debug, Default, Clone)]
pub struct Buckets {
    pub starts: Vec<i64>,
    pub label_of: Vec<u32>,
    pub labels: Vec<String>,
    index: SlotIndex,
}

/// [`Buckets::label`] with everything it reads held by value.
#[derive(Clone, Copy)]
pub(crate) struct Labeller<'a> {
    start: i64,
    shift: u32,
    steps: &'a [SlotStep],
    last: u32,
}

impl Labeller<'_> {
    #[inline(always)]
    pub(crate) fn label(&self, time: i64) -> usize {
        match self.steps.get(((time - self.start) >> self.shift) as usize) {
            Some(entry) => (if time >= entry.boundary { entry.next_label } else { entry.label }) as usize,
            None => self.last as usize,
        }
    }
}

/// Finds a time's slot without searching: the range is cut into steps of a
/// power-of-two width no wider than the narrowest slot, and each step records
/// its slot at its start and the one boundary it may contain.
#[derive(Debug, Default, Clone)]
struct SlotIndex {
    shift: u32,
    steps: Vec<SlotStep>,
}

#[derive(Debug, Default, Clone, Copy)]
struct SlotStep {
    slot: u32,
    /// The labels of `slot` and of the slot after `boundary`.
    label: u32,
    next_label: u32,
    boundary: i64,
}

impl Buckets {
    pub(crate) fn range(&self) -> (i64, i64) {
        (self.starts[0], *self.starts.last().unwrap_or(&self.starts[0]))
    }

    pub(crate) fn n_slots(&self) -> usize {
        self.label_of.len()
    }

    /// The slot of `time`, which must be in range: one shift, one lookup and
    /// one comparison (see [`SlotIndex`]).
    #[inline]
    pub(crate) fn slot(&self, time: i64) -> usize {
        let step = ((time - self.starts[0]) >> self.index.shift) as usize;
        match self.index.steps.get(step) {
            Some(entry) => entry.slot as usize + usize::from(time >= entry.boundary),
            None => self.n_slots() - 1,
        }
    }

    /// The label index of `time`, which must be in range (as [`Buckets::slot`]).
    #[inline]
    pub(crate) fn label(&self, time: i64) -> usize {
        let step = ((time - self.starts[0]) >> self.index.shift) as usize;
        match self.index.steps.get(step) {
            Some(entry) => (if time >= entry.boundary { entry.next_label } else { entry.label }) as usize,
            None => self.label_of.last().copied().unwrap_or(0) as usize,
        }
    }

    /// The label finder as plain values, for tight loops.
    pub(crate) fn labeller(&self) -> Labeller<'_> {
        Labeller { start: self.starts[0], shift: self.index.shift, steps: &self.index.steps, last: self.label_of.last().copied().unwrap_or(0) }
    }

    fn build_index(&mut self) {
        let min_width = self.starts.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(1).max(1);
        // The widest power of two not wider than any slot: each step then
        // holds at most one slot boundary.
        let shift = 63 - (min_width as u64).leading_zeros();
        let (start, end) = self.range();
        let n_steps = (((end - start).max(0)) >> shift) as usize + 1;
        let mut steps = Vec::with_capacity(n_steps);
        for i in 0..n_steps {
            let step_start = start + ((i as i64) << shift);
            let slot = self.starts.partition_point(|s| *s <= step_start).saturating_sub(1).min(self.n_slots().saturating_sub(1));
            let boundary = self.starts.get(slot + 1).copied().filter(|b| *b < end && *b < step_start + (1i64 << shift)).unwrap_or(i64::MAX);
            let label = self.label_of.get(slot).copied().unwrap_or(0);
            let next_label = self.label_of.get(slot + 1).copied().unwrap_or(label);
            steps.push(SlotStep { slot: slot as u32, label, next_label, boundary });
        }
        self.index = SlotIndex { shift, steps };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_zone_and_weeks_start_on_monday() {
        let calendar = Calendar::new("Europe/Berlin").unwrap();
        let from = parse_date("2026-03-28", "from").unwrap();
        let to = parse_date("2026-03-30", "to").unwrap();
        let days = calendar.buckets(from, to, Interval::Day);
        assert_eq!(days.labels, ["2026-03-28", "2026-03-29", "2026-03-30"]);
        // 29 March 2026 has 23 hours in Berlin.
        assert_eq!(days.starts[2] - days.starts[1], 23 * MS_PER_HOUR);
        let weeks = calendar.buckets(from, to, Interval::Week);
        assert_eq!(weeks.labels, ["2026-03-23", "2026-03-30"]);
        let hours = calendar.buckets(from, from, Interval::Hour);
        assert_eq!(hours.labels.len(), 24);
        assert_eq!(hours.labels[0], "2026-03-28T00:00");
        for buckets in [&days, &hours, &weeks] {
            let (start, end) = buckets.range();
            for time in (start..end).step_by(59_999).chain([start, end - 1]).chain(buckets.starts[1..buckets.n_slots()].iter().flat_map(|b| [*b - 1, *b])) {
                let expected = buckets.starts.partition_point(|s| *s <= time) - 1;
                assert_eq!(buckets.slot(time), expected, "time {time}");
                assert_eq!(buckets.label(time), buckets.label_of[expected] as usize, "time {time}");
            }
        }
    }
}
