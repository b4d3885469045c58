//! What the caller chooses ([`GenConfig`]) and the facts derived from it once
//! ([`World`]) that every user and organisation is drawn against.

use chrono::{Datelike, NaiveDate};
use events::MS_PER_DAY;

/// Size, span and seed of a synthetic data set. The same config always yields
/// the same data set, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    pub seed: u64,
    pub users: u64,
    /// Length of the time range; events fall in `[start_day, start_day + days)`, UTC.
    pub days: u32,
    pub start_day: NaiveDate,
    /// Organisations (`company_id` groups) per 100 users; 20 gives five users
    /// per organisation on average.
    pub orgs_per_100_users: u32,
}

/// Mean events per user over 90 days, duplicates included: 500,000 users
/// give 10,020,647 events (`examples/summary.rs`); samples of 20,000 users
/// vary by a few percent because API usage is heavy-tailed. Shorter spans
/// give fewer.
pub const EVENTS_PER_USER_90_DAYS: u64 = 20;

impl GenConfig {
    /// The seed of every data set built by [`GenConfig::for_events`].
    pub const DEFAULT_SEED: u64 = 0x4845_4152_5448_0001;

    /// A 90-day data set of about `target_events` events (within a few
    /// percent from a million events up), starting Monday 2025-01-06.
    pub fn for_events(target_events: u64) -> GenConfig {
        let users = (target_events + EVENTS_PER_USER_90_DAYS / 2) / EVENTS_PER_USER_90_DAYS;
        GenConfig {
            seed: GenConfig::DEFAULT_SEED,
            users: users.max(1),
            days: 90,
            start_day: NaiveDate::from_ymd_opt(2025, 1, 6).expect("a valid date"),
            orgs_per_100_users: 20,
        }
    }
}

/// Derived once from a [`GenConfig`]; cheap to copy into every draw.
#[derive(Debug, Clone, Copy)]
pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) users: u64,
    pub(crate) n_orgs: u64,
    pub(crate) days: u32,
    pub(crate) start_ms: i64,
    /// Day of week of day 0, Monday = 0.
    first_weekday: u32,
}

impl World {
    pub(crate) fn new(config: &GenConfig) -> World {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
        let start_ms = config.start_day.signed_duration_since(epoch).num_days() * MS_PER_DAY;
        let wanted_orgs = u128::from(config.users) * u128::from(config.orgs_per_100_users) / 100;
        World {
            seed: config.seed,
            users: config.users,
            n_orgs: u64::try_from(wanted_orgs).unwrap_or(u64::MAX).max(1),
            days: config.days,
            start_ms,
            first_weekday: config.start_day.weekday().num_days_from_monday(),
        }
    }

    pub(crate) fn end_ms(&self) -> i64 {
        self.day_start_ms(self.days)
    }

    pub(crate) fn day_start_ms(&self, day: u32) -> i64 {
        self.start_ms + i64::from(day) * MS_PER_DAY
    }

    pub(crate) fn is_weekend(&self, day: u32) -> bool {
        (u64::from(self.first_weekday) + u64::from(day)) % 7 >= 5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_million_events_is_half_a_million_users() {
        let config = GenConfig::for_events(10_000_000);
        assert_eq!(config.users, 500_000);
        assert_eq!(config.days, 90);
        assert_eq!(GenConfig::for_events(0).users, 1);
    }

    #[test]
    fn world_knows_weekends_and_org_count() {
        let world = World::new(&GenConfig::for_events(2_000));
        assert_eq!(world.n_orgs, 20);
        assert_eq!(world.start_ms, 1_736_121_600_000);
        assert_eq!(world.end_ms() - world.start_ms, 90 * MS_PER_DAY);
        // 2025-01-06 is a Monday.
        let weekend_days: Vec<u32> = (0..7).filter(|day| world.is_weekend(*day)).collect();
        assert_eq!(weekend_days, [5, 6]);
    }
}
