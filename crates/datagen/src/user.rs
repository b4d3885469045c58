//! One user's fixed traits and life story, drawn up front from the user's
//! own stream: who they are, when they sign up, whether and when they create
//! an API key or upgrade, and how long they stay.
//!
//! The milestones are decided here rather than while emitting events so that
//! the profile (final plan, `$created`) agrees with the events without
//! replaying them. Event emission continues on the same stream afterwards.

use crate::config::World;
use crate::org::{self, Org, Plan};
use crate::random::{self, Domain};
use crate::tables::{self, Browser, Country, Referrer};
use events::{MS_PER_DAY, ProfileOp, ProfileUpdate, Properties};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;

/// Sign-ups grow by this fraction from the first to the last day.
const SIGNUP_GROWTH: f64 = 0.4;
/// Weekend sign-ups relative to a weekday.
const SIGNUP_WEEKEND_FACTOR: f64 = 0.55;
const API_KEY_PER_MILLE: u32 = 620;
/// Users who keep coming back for weeks, by whether they have a key.
const LOYAL_WITH_KEY: f64 = 0.42;
const LOYAL_WITHOUT_KEY: f64 = 0.10;
/// Daily churn probability of loyal users, and of everyone else (a week).
const LOYAL_CHURN_PER_DAY: f64 = 0.005;
const CHURN_PER_DAY: f64 = 1.0 / 7.0;
/// Chance that an eligible user (key, free or pro plan) plans to upgrade.
const UPGRADE_PER_MILLE: u32 = 360;
/// Mean API requests per active day, before clamping to the range below.
const REQUESTS_PER_DAY_MEAN: f64 = 1.52;
const REQUESTS_PER_DAY_RANGE: (f64, f64) = (0.3, 40.0);
/// The key is created at least this long before its day ends, so that the
/// first test requests that follow it fall on the same day.
const KEY_DAY_MARGIN_MS: i64 = 2 * MS_PER_MINUTE;

pub(crate) struct User {
    pub(crate) distinct_id: String,
    /// The browser's device id (a UUID), also `$device:<id>` before sign-up.
    pub(crate) device_id: String,
    pub(crate) country: &'static Country,
    pub(crate) browser: &'static Browser,
    pub(crate) browser_version: u32,
    pub(crate) referrer: &'static Referrer,
    pub(crate) utm_source: Option<&'static str>,
    pub(crate) signup_method: &'static str,
    pub(crate) org: Org,
    pub(crate) initial_plan: Plan,
    pub(crate) signup_day: u32,
    pub(crate) signup_ms: i64,
    /// The last day the user may be active, inclusive.
    pub(crate) last_day: u32,
    /// Chance of activity on a weekday after sign-up while not churned.
    pub(crate) active_probability: f64,
    pub(crate) requests_per_day_mean: f64,
    pub(crate) api_key_ms: Option<i64>,
    pub(crate) upgrade: Option<Upgrade>,
    first_name: &'static str,
    last_name: &'static str,
    user_idx: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Upgrade {
    pub(crate) time_ms: i64,
    pub(crate) day: u32,
    pub(crate) to_plan: Plan,
    pub(crate) amount: u32,
    pub(crate) billing_period: &'static str,
}

impl User {
    /// Draws user `user_idx`; returns the stream positioned after the traits.
    pub(crate) fn generate(world: &World, user_idx: u64) -> (User, ChaCha8Rng) {
        debug_assert!(world.days > 0 && user_idx < world.users);
        let mut rng = random::rng_for(world.seed, Domain::User, user_idx);
        let device_id = random::uuid_v4(&mut rng);
        let country = tables::COUNTRIES.pick(&mut rng);
        let browser = tables::BROWSERS.pick(&mut rng);
        let browser_version = random::between(&mut rng, browser.versions);
        let referrer = tables::REFERRERS.pick(&mut rng);
        let utm_source =
            (rng.random_range(0..100) < referrer.utm_percent).then_some(referrer.utm_source);
        let signup_method = *tables::SIGNUP_METHODS.pick(&mut rng);
        let first_name = *tables::pick_uniform(&mut rng, tables::FIRST_NAMES);
        let last_name = *tables::pick_uniform(&mut rng, tables::LAST_NAMES);
        let (org, _) = Org::generate(world, org::org_of_user(&mut rng, world.n_orgs));
        // Members start on their organisation's plan; free and pro members
        // may later upgrade on their own (`draw_upgrade`).
        let initial_plan = org.plan;
        let signup_day = draw_signup_day(&mut rng, world);
        let signup_ms = world.day_start_ms(signup_day) + random::time_of_day_ms(&mut rng, country);
        let api_key_ms = draw_api_key_time(&mut rng, world, signup_ms);
        let (last_day, is_loyal) = draw_last_day(&mut rng, world, signup_day, api_key_ms);
        let active_probability = if is_loyal {
            0.2 + 0.5 * rng.random::<f64>()
        } else {
            0.4 + 0.4 * rng.random::<f64>()
        };
        let (low, high) = REQUESTS_PER_DAY_RANGE;
        let requests_per_day_mean =
            random::heavy_tailed(&mut rng, REQUESTS_PER_DAY_MEAN, low, high);
        let upgrade = api_key_ms
            .and_then(|key_ms| draw_upgrade(&mut rng, world, initial_plan, key_ms, last_day));
        let user = User {
            distinct_id: format!("u{user_idx}"),
            device_id,
            country,
            browser,
            browser_version,
            referrer,
            utm_source,
            signup_method,
            org,
            initial_plan,
            signup_day,
            signup_ms,
            last_day,
            active_probability,
            requests_per_day_mean,
            api_key_ms,
            upgrade,
            first_name,
            last_name,
            user_idx,
        };
        (user, rng)
    }

    pub(crate) fn final_plan(&self) -> Plan {
        self.upgrade
            .map_or(self.initial_plan, |upgrade| upgrade.to_plan)
    }

    /// A `$set` of who the user is now, timed at the last plan change, and
    /// a `$set_once` of where they came from, timed at sign-up.
    pub(crate) fn profile_updates(&self) -> [ProfileUpdate; 2] {
        let mut set = Properties::new();
        set.insert(
            "$name".to_owned(),
            Value::from(format!("{} {}", self.first_name, self.last_name)),
        );
        set.insert(
            "$email".to_owned(),
            Value::from(format!("user{}@example.com", self.user_idx)),
        );
        set.insert("plan".to_owned(), Value::from(self.final_plan().as_str()));
        set.insert(
            "company_id".to_owned(),
            Value::from(self.org.company_id.clone()),
        );
        set.insert(
            "$created".to_owned(),
            Value::from(iso_datetime(self.signup_ms)),
        );
        set.insert("$country_code".to_owned(), Value::from(self.country.code));
        let mut set_once = Properties::new();
        set_once.insert(
            "$initial_referrer".to_owned(),
            Value::from(self.referrer.url),
        );
        set_once.insert(
            "$initial_referring_domain".to_owned(),
            Value::from(self.referrer.domain),
        );
        if let Some(utm_source) = self.utm_source {
            set_once.insert("initial_utm_source".to_owned(), Value::from(utm_source));
        }
        let set_time_ms = self
            .upgrade
            .map_or(self.signup_ms, |upgrade| upgrade.time_ms);
        [
            self.profile_update(set_time_ms, ProfileOp::Set(set)),
            self.profile_update(self.signup_ms, ProfileOp::SetOnce(set_once)),
        ]
    }

    fn profile_update(&self, time_ms: i64, op: ProfileOp) -> ProfileUpdate {
        ProfileUpdate {
            distinct_id: self.distinct_id.clone(),
            time_ms,
            ignore_time: false,
            ignore_alias: false,
            op,
        }
    }
}

/// Uniform over the range, with mild growth and quieter weekends (rejection
/// sampling; about 1.6 tries on average).
fn draw_signup_day(rng: &mut impl Rng, world: &World) -> u32 {
    let max_weight = 1.0 + SIGNUP_GROWTH;
    loop {
        let day = rng.random_range(0..world.days);
        let growth = 1.0 + SIGNUP_GROWTH * f64::from(day) / f64::from(world.days);
        let weekday = if world.is_weekend(day) {
            SIGNUP_WEEKEND_FACTOR
        } else {
            1.0
        };
        if rng.random::<f64>() * max_weight < growth * weekday {
            return day;
        }
    }
}

/// Minutes for most, hours or days for some; `None` for those who never
/// create one, or not within the range.
fn draw_api_key_time(rng: &mut impl Rng, world: &World, signup_ms: i64) -> Option<i64> {
    if !random::per_mille(rng, API_KEY_PER_MILLE) {
        return None;
    }
    let delay_ms = match rng.random_range(0..100) {
        0..55 => rng.random_range(MS_PER_MINUTE..30 * MS_PER_MINUTE),
        55..80 => rng.random_range(30 * MS_PER_MINUTE..6 * MS_PER_HOUR),
        80..92 => rng.random_range(6 * MS_PER_HOUR..2 * MS_PER_DAY),
        _ => rng.random_range(2 * MS_PER_DAY..14 * MS_PER_DAY),
    };
    let mut key_ms = signup_ms + delay_ms;
    // Range days start at UTC midnight, so epoch days are range days.
    let day_end_ms = (key_ms.div_euclid(MS_PER_DAY) + 1) * MS_PER_DAY;
    if key_ms > day_end_ms - KEY_DAY_MARGIN_MS {
        key_ms = day_end_ms + MS_PER_MINUTE;
    }
    (key_ms < world.end_ms()).then_some(key_ms)
}

/// Loyal users churn slowly (a few percent a week), the others after about
/// a week, but nobody before the day they create their key. Returns the
/// last day and whether the user is loyal.
fn draw_last_day(
    rng: &mut impl Rng,
    world: &World,
    signup_day: u32,
    api_key_ms: Option<i64>,
) -> (u32, bool) {
    let loyal_probability = if api_key_ms.is_some() {
        LOYAL_WITH_KEY
    } else {
        LOYAL_WITHOUT_KEY
    };
    let is_loyal = random::chance(rng, loyal_probability);
    let churn_per_day = if is_loyal {
        LOYAL_CHURN_PER_DAY
    } else {
        CHURN_PER_DAY
    };
    let final_day = world.days - 1;
    let mut last_day = signup_day;
    while last_day < final_day && !random::chance(rng, churn_per_day) {
        last_day += 1;
    }
    let key_day = api_key_ms.map_or(signup_day, |key_ms| day_of(world, key_ms));
    (last_day.max(key_day), is_loyal)
}

/// Upgrades come one to forty days after the key (and its first requests),
/// while the user is still around.
fn draw_upgrade(
    rng: &mut impl Rng,
    world: &World,
    from_plan: Plan,
    key_ms: i64,
    last_day: u32,
) -> Option<Upgrade> {
    if !random::per_mille(rng, UPGRADE_PER_MILLE) {
        return None;
    }
    let to_plan = match from_plan {
        Plan::Free if random::per_mille(rng, 850) => Plan::Pro,
        Plan::Free | Plan::Pro => Plan::Team,
        Plan::Team | Plan::Enterprise => return None,
    };
    let is_annual = random::per_mille(rng, 200);
    let monthly_amount = if to_plan == Plan::Pro { 20 } else { 100 };
    let spread_ms = rng.random::<f64>() * rng.random::<f64>() * (39 * MS_PER_DAY) as f64;
    let time_ms = key_ms + MS_PER_DAY + spread_ms as i64;
    let day = day_of(world, time_ms);
    if time_ms >= world.end_ms() || day > last_day {
        return None;
    }
    Some(Upgrade {
        time_ms,
        day,
        to_plan,
        amount: if is_annual {
            monthly_amount * 10
        } else {
            monthly_amount
        },
        billing_period: if is_annual { "annual" } else { "monthly" },
    })
}

/// The day index of a time inside the range.
pub(crate) fn day_of(world: &World, time_ms: i64) -> u32 {
    debug_assert!(time_ms >= world.start_ms);
    u32::try_from((time_ms - world.start_ms) / MS_PER_DAY).expect("times stay within the range")
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC, Mixpanel's profile date format.
fn iso_datetime(time_ms: i64) -> String {
    let time =
        chrono::DateTime::from_timestamp_millis(time_ms).expect("times stay within the range");
    time.format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GenConfig;

    #[test]
    fn milestones_are_ordered_and_in_range() {
        let world = World::new(&GenConfig::for_events(100_000));
        for user_idx in 0..world.users {
            let (user, _) = User::generate(&world, user_idx);
            assert!(user.signup_ms >= world.start_ms && user.signup_ms < world.end_ms());
            assert!(user.signup_day <= user.last_day && user.last_day < world.days);
            if let Some(key_ms) = user.api_key_ms {
                assert!(key_ms > user.signup_ms && key_ms < world.end_ms());
                assert!(day_of(&world, key_ms) <= user.last_day);
                let key_day_end = world.day_start_ms(day_of(&world, key_ms) + 1);
                assert!(key_ms + KEY_DAY_MARGIN_MS <= key_day_end);
            }
            if let Some(upgrade) = user.upgrade {
                let key_ms = user.api_key_ms.expect("upgrades need a key");
                assert!(upgrade.time_ms >= key_ms + MS_PER_DAY && upgrade.day <= user.last_day);
                assert_ne!(upgrade.to_plan, user.initial_plan);
            }
        }
    }

    #[test]
    fn profile_dates_use_mixpanel_format() {
        assert_eq!(
            iso_datetime(1_736_121_600_000 + 3_723_000),
            "2025-01-06T01:02:03"
        );
    }
}
