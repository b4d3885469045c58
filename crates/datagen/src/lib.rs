//! A deterministic synthetic analytics data set: the web console and API of
//! a fictional AI API provider, as the official Mixpanel SDKs would report it.
//!
//! Every later feature (ingest benchmarks; insights, funnel and retention
//! reports compared against DuckDB) tests against this one data set, so it
//! has to be realistic enough that reports mean something (funnels with
//! drop-off, retention that decays, daily and weekly cycles, heavy-tailed
//! usage), reproducible to the byte, and cheap enough to make by the hundred
//! million.
//!
//! Architecture invariants:
//! - No IO except [`write_jsonl`] into the writer it is given.
//! - Memory is O(1) in the number of users: each user and each organisation
//!   is drawn from its own ChaCha8 stream keyed by `(seed, index)`, so any
//!   one can be regenerated alone ([`Generator::for_each_event_ref_in`])
//!   and the output never depends on iteration order, threads or platform.
//! - No `exp`, `ln` or `powf` (see `random.rs`).
//!
//! Modules: `config` (what the caller picks and what follows from it),
//! `tables` (every distribution), `org` and `user` (traits and life story
//! drawn up front), `activity` (the story as time-stamped slots, day by
//! day), `emit` (slots into events, without allocating), `jsonl` (the import
//! line format), `random` (streams and draws).
//!
//! # The data set
//!
//! Times are UTC milliseconds in `[start_day, start_day + days)`. Events come
//! user by user (user 0 first, anonymous page views before the user's
//! `Sign Up`); one user's events are in time order, an injected duplicate
//! directly before its original. Over 90 days a user produces about
//! [`EVENTS_PER_USER_90_DAYS`] events: `GenConfig::for_events(10_000_000)`
//! gives 500,000 users and 10,020,647 events, of which API Request 52%,
//! Page View 35%, Sign Up 5%, View Usage 3.4%, Create API Key 3.1%,
//! Invite Member 0.9%, Upgrade Plan 0.4%.
//!
//! **Users** `u0 .. u{users-1}` sign up uniformly over the range, 40% more on
//! the last day than the first, 45% fewer on weekends. Each has a country
//! (`US` 35%, `IN` 9%, `GB` 6%, `DE` 5%, `BR` 4%, `FR`, `CA`, `JP`, ... 52
//! countries), a browser (Chrome 62%, Safari 14%, Firefox 10%, Microsoft Edge
//! 10%, Opera, Brave) with its OS, a referring domain (`$direct` 30%,
//! `google.com` 26%, `github.com` 12%, `news.ycombinator.com` 7%,
//! `twitter.com` 6%, `reddit.com`, `stackoverflow.com`, `linkedin.com`,
//! `youtube.com`, `bing.com`, `duckduckgo.com`, `dev.to`), sometimes a
//! `utm_source`, and an organisation `org_<n>` whose plan they start on.
//! Activity follows the country's local working day.
//!
//! **Events** (names are the constants below) and their properties:
//!
//! | Event | Who, when | Properties besides the common ones |
//! |---|---|---|
//! | `Page View` | anonymous before sign-up (45% of users, 1-4 pages minutes before; 15% also 2-7 days earlier); then in each active day's session | `$current_url` (`https://platform.example.com/...`), `$referring_domain` |
//! | `Sign Up` | every user exactly once | `$current_url`, `$device_id`, `$referring_domain`, `signup_method` (email, google, github), `utm_source` (some) |
//! | `Create API Key` | 61.6% of users, once, 1 min to 14 days after sign-up | `$current_url`, `permissions` (all, restricted, read_only) |
//! | `API Request` | only after the key: a first burst of 1-4 calls, then a heavy-tailed number per active day; the bulk of all events | `endpoint` (`/v1/chat/completions`, `/v1/embeddings`, ...), `model`, `status` (200, 400, 429, 500; number), `latency_ms` (number), `tokens` (number, 0 on errors and non-text endpoints) |
//! | `Upgrade Plan` | 8.3% of users (free to pro or team, pro to team), once, 1-40 days after the key | `$current_url`, `from_plan`, `to_plan`, `amount` (number: 20/100 monthly, 200/1000 annual), `billing_period` |
//! | `Invite Member` | 2.5% of active days of users in shared organisations | `$current_url`, `role` |
//! | `View Usage` | 15% of active days after the key | `$current_url`, `period` |
//!
//! Common properties: `mp_country_code`, `$browser`, `$os`, and
//! - on browser events (all but `API Request`): `mp_lib` = `"web"`,
//!   `$browser_version` (number);
//! - on `API Request`: `mp_lib` = `"python"` (the account's `$browser` and
//!   `$os` are still copied, so every event breaks down the same way);
//! - on identified events: `distinct_id` = `$user_id` = `u<n>`, `plan` (at
//!   that time: `from_plan` on the upgrade itself, `to_plan` after),
//!   `company_id`;
//! - on anonymous events: `distinct_id` = `$device:<uuid>`, `$device_id` =
//!   `<uuid>`, `$referring_domain`, `utm_source` (some), no `plan` or
//!   `company_id`. `Sign Up` carries both `$device_id` and `$user_id`, which
//!   merges the device into the user under Simplified ID Merge.
//!
//! Retention: everyone is active on the sign-up day. 42% of users with a key
//! and 10% without are loyal: active on 20-70% of weekdays, churning 0.5% a
//! day; the others are active on 40-80% of weekdays and churn after a week
//! on average. A cohort's weekly activity is about 100%, 43%, 29%, 24%, 22%,
//! 21%, 20%, 19%, 18% in weeks 0 to 8. Weekends see 40% of weekday activity.
//! Times follow each country's working day, so UTC 13:00-18:00 is busiest.
//!
//! `$insert_id` is 32 lowercase hex digits. Each event is duplicated,
//! identical, with probability [`DUPLICATE_PER_MILLE`]/1000 (0.5% of
//! originals, 0.4975% of the output), to exercise deduplication.
//!
//! **Profiles**: per user a `$set` of `$name`, `$email`
//! (`user<n>@example.com`), `plan` (final), `company_id`, `$created`
//! (`YYYY-MM-DDTHH:MM:SS`, the sign-up time), `$country_code`, timed at the
//! last plan change; and a `$set_once` of `$initial_referrer`,
//! `$initial_referring_domain` and `initial_utm_source` (some), timed at
//! sign-up. **Groups**: per organisation, group key `company_id`, a `$set` of
//! `name`, `plan` (its contract plan, which members start on), `seats`
//! (number), `industry`, timed at the start of the range.

mod activity;
mod config;
mod emit;
mod jsonl;
mod org;
mod random;
mod tables;
mod user;

pub use config::{EVENTS_PER_USER_90_DAYS, GenConfig};
pub use jsonl::write_jsonl;

use config::World;
use events::{Event, GroupUpdate, ProfileUpdate};
use std::ops::Range;

pub const PAGE_VIEW: &str = "Page View";
pub const SIGN_UP: &str = "Sign Up";
pub const CREATE_API_KEY: &str = "Create API Key";
pub const API_REQUEST: &str = "API Request";
pub const UPGRADE_PLAN: &str = "Upgrade Plan";
pub const INVITE_MEMBER: &str = "Invite Member";
pub const VIEW_USAGE: &str = "View Usage";
/// Every event name the generator emits.
pub const EVENT_NAMES: [&str; 7] = [
    PAGE_VIEW,
    SIGN_UP,
    CREATE_API_KEY,
    API_REQUEST,
    UPGRADE_PLAN,
    INVITE_MEMBER,
    VIEW_USAGE,
];
/// The group key of organisations, and the event property naming them.
pub const GROUP_KEY: &str = org::GROUP_KEY;
/// Each event is emitted twice, identically and back to back, with
/// probability `DUPLICATE_PER_MILLE / 1000`.
pub const DUPLICATE_PER_MILLE: u32 = 5;

/// Streams the data set described in the crate docs.
///
/// ```
/// use datagen::{GenConfig, Generator};
///
/// let generator = Generator::new(GenConfig::for_events(2_000));
/// assert_eq!(generator.config().users, 100);
/// let mut jsonl = Vec::new();
/// generator.for_each_event_ref(|event| datagen::write_jsonl(event, &mut jsonl).unwrap());
/// let n_sign_ups = jsonl
///     .split(|byte| *byte == b'\n')
///     .filter(|line| line.starts_with(br#"{"event":"Sign Up","#))
///     .count();
/// assert!(n_sign_ups >= 100, "one each, and the odd duplicate");
/// ```
#[derive(Debug, Clone)]
pub struct Generator {
    config: GenConfig,
    world: World,
}

impl Generator {
    pub fn new(config: GenConfig) -> Generator {
        let world = World::new(&config);
        Generator { config, world }
    }

    pub fn config(&self) -> &GenConfig {
        &self.config
    }

    /// How many organisations (`company_id` groups) there are: `org_0` to
    /// `org_{n-1}`.
    pub fn n_orgs(&self) -> u64 {
        if self.config.users == 0 {
            0
        } else {
            self.world.n_orgs
        }
    }

    /// `[start, end)` of every event time, in UTC milliseconds.
    pub fn time_range_ms(&self) -> Range<i64> {
        self.world.start_ms..self.world.end_ms()
    }

    /// Streams every event, user by user. Each event is a fresh copy; when
    /// the consumer only reads, [`Generator::for_each_event_ref`] is several
    /// times faster.
    pub fn for_each_event(&self, mut f: impl FnMut(Event)) {
        self.for_each_event_ref(|event| f(event.clone()));
    }

    /// Streams every event without allocating: the event is a buffer reused
    /// for the next one, so clone what you keep.
    pub fn for_each_event_ref(&self, f: impl FnMut(&Event)) {
        self.for_each_event_ref_in(0..self.config.users, f);
    }

    /// Streams the events of some users only, exactly as they appear in
    /// [`Generator::for_each_event_ref`]: shards of the user range can be
    /// generated on separate threads, and one user can be regenerated alone.
    pub fn for_each_event_ref_in(&self, users: Range<u64>, mut f: impl FnMut(&Event)) {
        if self.world.days == 0 {
            return;
        }
        let mut scratch = emit::Scratch::new();
        for user_idx in users.start..users.end.min(self.config.users) {
            emit::emit_user_events(&self.world, user_idx, &mut scratch, &mut f);
        }
    }

    /// Per user, a `$set` then a `$set_once`.
    pub fn for_each_profile(&self, mut f: impl FnMut(ProfileUpdate)) {
        if self.world.days == 0 {
            return;
        }
        for user_idx in 0..self.config.users {
            let (user, _) = user::User::generate(&self.world, user_idx);
            for update in user.profile_updates() {
                f(update);
            }
        }
    }

    /// One `$set` per organisation, `org_0` first.
    pub fn for_each_group(&self, mut f: impl FnMut(GroupUpdate)) {
        if self.config.users == 0 {
            return;
        }
        for org_idx in 0..self.world.n_orgs {
            let (org, mut rng) = org::Org::generate(&self.world, org_idx);
            f(org.group_update(&self.world, &mut rng));
        }
    }
}
