//! Dates and time zones: turning a report's `from`/`to` dates and interval
//! into UTC instants, and an event's time into the bucket it is counted in.
//! Buckets are computed once per report as a sorted list of UTC boundaries;
//! rows of a person are time-ordered, so finding each row's bucket is a cursor
//! that only moves forward.

use crate::error::QueryError;
use crate::spec::Interval;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::ToSpan;

pub(crate) const MS_PER_HOUR: i64 = 3_600_000;
pub(crate) const MS_PER_DAY: i64 = 86_400_000;

#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    zone: TimeZone,
}

pub(crate) fn parse_date(text: &str, field: &str) -> Result<Date, QueryError> {
    text.parse::<Date>().map_err(|_| QueryError::bad(format!("{field} must be a date YYYY-MM-DD, got {text:?}")))
}

impl Calendar {
    pub(crate) fn new(zone_name: &str) -> Result<Calendar, QueryError> {
        let zone = TimeZone::get(zone_name).map_err(|_| QueryError::bad(format!("unknown time zone {zone_name:?}")))?;
        Ok(Calendar { zone })
    }

    /// The UTC instant (ms) at which local day `date` starts.
    pub(crate) fn day_start(&self, date: Date) -> i64 {
        date.to_datetime(Time::midnight())
            .to_zoned(self.zone.clone())
            .map(|zoned| zoned.timestamp().as_millisecond())
            .unwrap_or_else(|_| date.to_datetime(Time::midnight()).to_zoned(TimeZone::UTC).map(|z| z.timestamp().as_millisecond()).unwrap_or(0))
    }

    /// The local date of a UTC instant.
    pub(crate) fn date_of(&self, time_ms: i64) -> Date {
        jiff::Timestamp::from_millisecond(time_ms)
            .map(|ts| ts.to_zoned(self.zone.clone()).date())
            .unwrap_or_default()
    }

    /// `[start, end)` of the days `from..=to`.
    pub(crate) fn range(&self, from: Date, to: Date) -> Result<(i64, i64), QueryError> {
        if to < from {
            return Err(QueryError::bad("to is before from"));
        }
        Ok((self.day_start(from), self.day_start(next_day(to))))
    }

    /// The buckets of an interval over the days `from..=to`.
    pub(crate) fn buckets(&self, from: Date, to: Date, interval: Interval) -> Buckets {
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
                        if let Ok(zoned) = local.to_zoned(self.zone.clone()) {
                            if zoned.datetime() == local {
                                hours.push((zoned.timestamp().as_millisecond(), format!("{day}T{hour:02}:00")));
                            }
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
        buckets
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
pub(crate) struct Buckets {
    pub(crate) starts: Vec<i64>,
    pub(crate) label_of: Vec<u32>,
    pub(crate) labels: Vec<String>,
}

impl Buckets {
    pub(crate) fn range(&self) -> (i64, i64) {
        (self.starts[0], *self.starts.last().unwrap_or(&self.starts[0]))
    }

    pub(crate) fn n_slots(&self) -> usize {
        self.label_of.len()
    }

    /// The slot of `time` (which must be in range), moving `cursor` forward.
    #[inline]
    pub(crate) fn slot(&self, time: i64, cursor: &mut usize) -> usize {
        let c = *cursor;
        if self.starts[c] <= time && time < self.starts[c + 1] {
            return c;
        }
        if c + 2 < self.starts.len() && self.starts[c + 1] <= time && time < self.starts[c + 2] {
            *cursor = c + 1;
        } else {
            let last = self.starts.len() - 2;
            *cursor = self.starts.partition_point(|s| *s <= time).saturating_sub(1).min(last);
        }
        *cursor
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
        let mut cursor = 0;
        assert_eq!(days.slot(days.starts[1] + 5, &mut cursor), 1);
        assert_eq!(days.slot(days.starts[2], &mut cursor), 2);
        assert_eq!(days.slot(days.starts[0], &mut cursor), 0);
    }
}
