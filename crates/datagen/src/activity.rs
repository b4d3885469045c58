//! When a user does what: a user's life story ([`User`]) planned as
//! time-stamped slots, one day at a time. What each event carries is decided
//! later, in `emit`.

use crate::config::World;
use crate::random;
use crate::tables::{self, Table};
use crate::user::{self, User};
use events::MS_PER_DAY;
use rand::Rng;

const MS_PER_MINUTE: i64 = 60_000;

/// Activity on Saturday and Sunday relative to a weekday: a work tool.
const WEEKEND_ACTIVITY_FACTOR: f64 = 0.4;
/// Anonymous visits: a landing session right before signing up, and for
/// some an earlier visit two to seven days before.
const LANDING_SESSION_PROBABILITY: f64 = 0.45;
const EARLIER_VISIT_PROBABILITY: f64 = 0.15;
const VIEW_USAGE_PROBABILITY: f64 = 0.15;
const INVITE_PROBABILITY: f64 = 0.025;
/// Bounds one user-day, whatever the draws.
const REQUESTS_PER_DAY_MAX: u32 = 400;
/// Console pages per session on a regular active day.
static PAGES_PER_SESSION: Table<u32> = Table::new(&[(0, 55), (1, 28), (2, 12), (3, 5)]);

pub(crate) struct Slot {
    pub(crate) time_ms: i64,
    pub(crate) action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// A page view from the browser's device id, before the account exists.
    AnonymousPageView(&'static str),
    PageView(&'static str),
    SignUp,
    CreateApiKey,
    ApiRequest,
    UpgradePlan,
    InviteMember,
    ViewUsage,
}

pub(crate) struct Planner<'a> {
    pub(crate) world: &'a World,
    pub(crate) user: &'a User,
}

impl Planner<'_> {
    /// The page views before sign-up, in time order.
    pub(crate) fn plan_anonymous_visits(&self, rng: &mut impl Rng, slots: &mut Vec<Slot>) {
        let user = self.user;
        if random::chance(rng, EARLIER_VISIT_PROBABILITY) {
            // Two days or more before, so it ends before the landing session starts.
            let days_before = rng.random_range(2..=7);
            if let Some(day) = user.signup_day.checked_sub(days_before) {
                let day_end_ms = self.world.day_start_ms(day + 1);
                let mut clock_ms =
                    self.world.day_start_ms(day) + random::time_of_day_ms(rng, user.country);
                for _ in 0..rng.random_range(1..=3) {
                    clock_ms += random::click_gap_ms(rng);
                    if clock_ms >= day_end_ms {
                        break;
                    }
                    let url = *tables::LANDING_PAGES.pick(rng);
                    slots.push(Slot {
                        time_ms: clock_ms,
                        action: Action::AnonymousPageView(url),
                    });
                }
            }
        }
        if random::chance(rng, LANDING_SESSION_PROBABILITY) {
            let window_ms = rng.random_range(2 * MS_PER_MINUTE..30 * MS_PER_MINUTE);
            let n_pages = rng.random_range(1..=4);
            let step_ms = window_ms / (n_pages + 1);
            for page_idx in 1..=n_pages {
                let time_ms = user.signup_ms - window_ms + page_idx * step_ms;
                let url = *tables::LANDING_PAGES.pick(rng);
                if time_ms >= self.world.start_ms {
                    slots.push(Slot {
                        time_ms,
                        action: Action::AnonymousPageView(url),
                    });
                }
            }
        }
    }

    /// Sign-up and milestone days are always active; other days by chance.
    pub(crate) fn is_active(&self, rng: &mut impl Rng, day: u32) -> bool {
        let user = self.user;
        let is_key_day = user
            .api_key_ms
            .is_some_and(|key_ms| user::day_of(self.world, key_ms) == day);
        let is_upgrade_day = user.upgrade.is_some_and(|upgrade| upgrade.day == day);
        if day == user.signup_day || is_key_day || is_upgrade_day {
            return true;
        }
        let weekday_factor = if self.world.is_weekend(day) {
            WEEKEND_ACTIVITY_FACTOR
        } else {
            1.0
        };
        random::chance(rng, user.active_probability * weekday_factor)
    }

    /// One browser session (the sign-up session on the first day), the
    /// milestones of the day, and the day's API traffic; unsorted.
    pub(crate) fn plan_day(&self, rng: &mut impl Rng, day: u32, slots: &mut Vec<Slot>) {
        let user = self.user;
        let day_start_ms = self.world.day_start_ms(day);
        let day_end_ms = day_start_ms + MS_PER_DAY;
        let is_signup_day = day == user.signup_day;
        let (mut clock_ms, pages, n_pages) = if is_signup_day {
            slots.push(Slot {
                time_ms: user.signup_ms,
                action: Action::SignUp,
            });
            (
                user.signup_ms,
                &tables::ONBOARDING_PAGES,
                rng.random_range(1..=2),
            )
        } else {
            let session_start_ms = day_start_ms + random::time_of_day_ms(rng, user.country);
            (
                session_start_ms,
                &tables::CONSOLE_PAGES,
                *PAGES_PER_SESSION.pick(rng),
            )
        };
        for _ in 0..n_pages {
            clock_ms += random::click_gap_ms(rng);
            if clock_ms >= day_end_ms {
                break;
            }
            slots.push(Slot {
                time_ms: clock_ms,
                action: Action::PageView(pages.pick(rng)),
            });
        }
        let has_key = user.api_key_ms.is_some_and(|key_ms| key_ms < clock_ms);
        if has_key && random::chance(rng, VIEW_USAGE_PROBABILITY) {
            clock_ms += random::click_gap_ms(rng);
            if clock_ms < day_end_ms {
                slots.push(Slot {
                    time_ms: clock_ms,
                    action: Action::ViewUsage,
                });
            }
        }
        if user.org.is_shared() && random::chance(rng, INVITE_PROBABILITY) {
            clock_ms += random::click_gap_ms(rng);
            if clock_ms < day_end_ms {
                slots.push(Slot {
                    time_ms: clock_ms,
                    action: Action::InviteMember,
                });
            }
        }
        if let Some(upgrade) = user.upgrade.filter(|upgrade| upgrade.day == day) {
            slots.push(Slot {
                time_ms: upgrade.time_ms,
                action: Action::UpgradePlan,
            });
        }
        self.plan_api_traffic(rng, day, slots);
    }

    /// The key's creation and first test calls on its day, then requests
    /// spread over the day by the local daily cycle, twice as many after an
    /// upgrade.
    fn plan_api_traffic(&self, rng: &mut impl Rng, day: u32, slots: &mut Vec<Slot>) {
        let user = self.user;
        let Some(key_ms) = user.api_key_ms else {
            return;
        };
        let day_start_ms = self.world.day_start_ms(day);
        let day_end_ms = day_start_ms + MS_PER_DAY;
        if key_ms >= day_end_ms {
            return;
        }
        if key_ms >= day_start_ms {
            slots.push(Slot {
                time_ms: key_ms,
                action: Action::CreateApiKey,
            });
            // At most 80 s after the key, which is at least 2 min before midnight.
            let mut clock_ms = key_ms;
            for _ in 0..rng.random_range(1..=4) {
                clock_ms += rng.random_range(3_000..20_000);
                slots.push(Slot {
                    time_ms: clock_ms,
                    action: Action::ApiRequest,
                });
            }
        }
        let is_upgraded = user.upgrade.is_some_and(|upgrade| upgrade.day < day);
        let mean = if is_upgraded {
            2.0 * user.requests_per_day_mean
        } else {
            user.requests_per_day_mean
        };
        for _ in 0..random::geometric(rng, mean, REQUESTS_PER_DAY_MAX) {
            let mut time_ms = day_start_ms + random::time_of_day_ms(rng, user.country);
            if time_ms <= key_ms {
                time_ms = rng.random_range(key_ms + 1_000..day_end_ms);
            }
            slots.push(Slot {
                time_ms,
                action: Action::ApiRequest,
            });
        }
    }
}
