//! The arithmetic behind the rules that compare with the past: a
//! credential's export baseline, the organisation's hours of reading, and
//! a sliding window of failed sign-ins.

use std::collections::{HashMap, VecDeque};

/// Rows below which an export never counts as a volume anomaly, however
/// small the baseline: a new key's first modest export is not an attack.
pub const VOLUME_FLOOR_ROWS: f64 = 1000.0;

/// The mean of the daily export rows over the days before today (days
/// without exports count as zero), floored at [`VOLUME_FLOOR_ROWS`].
pub fn daily_baseline(previous_days: &[u64]) -> f64 {
    let mean = if previous_days.is_empty() { 0.0 } else { previous_days.iter().sum::<u64>() as f64 / previous_days.len() as f64 };
    mean.max(VOLUME_FLOOR_ROWS)
}

/// Reads per hour of day (UTC) over the organisation's recent past.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourHistogram {
    pub reads: [u64; 24],
}

impl HourHistogram {
    pub fn add(&mut self, time_ms: i64) {
        let hour = time_ms.rem_euclid(86_400_000) / 3_600_000;
        self.reads[hour as usize] += 1;
    }

    pub fn total(&self) -> u64 {
        self.reads.iter().sum()
    }
}

/// Reads of history needed before any hour is called unusual: a new
/// organisation has no habits yet.
pub const MIN_HISTORY_READS: u64 = 200;

/// Whether `hour` (0–23, UTC) held less than `percent` of the reads.
pub fn is_unusual_hour(histogram: &HourHistogram, hour: u32, percent: f64) -> bool {
    let total = histogram.total();
    if total < MIN_HISTORY_READS {
        return false;
    }
    let share = histogram.reads[(hour % 24) as usize] as f64 * 100.0 / total as f64;
    share < percent
}

/// Failed sign-ins per key (an account or an address) within a window,
/// kept in memory only: addresses are never written down.
#[derive(Debug)]
pub struct FailureWindow {
    window_ms: i64,
    failures: HashMap<String, VecDeque<i64>>,
}

impl FailureWindow {
    pub fn new(window_ms: i64) -> FailureWindow {
        FailureWindow { window_ms, failures: HashMap::new() }
    }

    /// Records a failure and returns how many fall within the window.
    pub fn record(&mut self, key: &str, now_ms: i64) -> usize {
        let cutoff = now_ms - self.window_ms;
        if self.failures.len() > 10_000 {
            self.failures.retain(|_, times| times.back().is_some_and(|t| *t > cutoff));
        }
        let times = self.failures.entry(key.to_owned()).or_default();
        while times.front().is_some_and(|t| *t <= cutoff) {
            times.pop_front();
        }
        times.push_back(now_ms);
        times.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_is_the_mean_of_past_days_with_a_floor() {
        assert_eq!(daily_baseline(&[]), VOLUME_FLOOR_ROWS);
        assert_eq!(daily_baseline(&[0, 0, 10]), VOLUME_FLOOR_ROWS);
        assert_eq!(daily_baseline(&[4000, 0, 2000, 0]), 1500.0);
    }

    #[test]
    fn an_hour_is_unusual_only_against_enough_history() {
        let mut histogram = HourHistogram::default();
        for hour in 9..17 {
            for _ in 0..30 {
                histogram.add(hour * 3_600_000 + 5);
            }
        }
        histogram.add(3 * 3_600_000);
        assert!(is_unusual_hour(&histogram, 3, 1.0));
        assert!(is_unusual_hour(&histogram, 22, 1.0));
        assert!(!is_unusual_hour(&histogram, 10, 1.0));
        let thin = HourHistogram { reads: [1; 24] };
        assert!(!is_unusual_hour(&thin, 3, 50.0), "24 reads are too few to know the organisation's habits");
    }

    #[test]
    fn failures_leave_the_window() {
        let mut window = FailureWindow::new(1000);
        assert_eq!(window.record("a", 0), 1);
        assert_eq!(window.record("a", 500), 2);
        assert_eq!(window.record("b", 600), 1);
        assert_eq!(window.record("a", 1200), 2, "the failure at 0 has left the window");
    }
}
