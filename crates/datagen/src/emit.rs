//! Event emission: a user's planned slots (`activity`) become events.
//!
//! Allocation is what limits generation speed, so events are not built from
//! scratch: one template [`Event`] per kind of event keeps every property key
//! and string buffer, and each emission overwrites the values in place. The
//! sink borrows the template; nothing is allocated per event once the
//! buffers have grown. A user's slots are sorted one day at a time, so a
//! user's events come out in time order (a duplicate right after its
//! original) without holding more than one day in memory.

use crate::activity::{Action, Planner, Slot};
use crate::config::World;
use crate::org::Plan;
use crate::random;
use crate::tables;
use crate::user::User;
use crate::{
    API_REQUEST, CREATE_API_KEY, DUPLICATE_PER_MILLE, INVITE_MEMBER, PAGE_VIEW, SIGN_UP,
    UPGRADE_PLAN, VIEW_USAGE,
};
use events::{Event, Properties};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// Buffers reused from user to user: O(1) memory in the number of users.
pub(crate) struct Scratch {
    slots: Vec<Slot>,
    templates: Templates,
}

impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch {
            slots: Vec::new(),
            templates: Templates::new(),
        }
    }
}

/// Emits every event of user `user_idx`, in time order, to `sink`.
pub(crate) fn emit_user_events(
    world: &World,
    user_idx: u64,
    scratch: &mut Scratch,
    sink: &mut impl FnMut(&Event),
) {
    let (user, mut rng) = User::generate(world, user_idx);
    let planner = Planner { world, user: &user };
    let Scratch { slots, templates } = scratch;
    templates.begin_user(&user);
    slots.clear();
    planner.plan_anonymous_visits(&mut rng, slots);
    for slot in slots.drain(..) {
        templates.emit(slot, &user, &mut rng, sink);
    }
    for day in user.signup_day..=user.last_day {
        if !planner.is_active(&mut rng, day) {
            continue;
        }
        planner.plan_day(&mut rng, day, slots);
        // Stable: the Sign Up slot, pushed first, stays first at its time.
        slots.sort_by_key(|slot| slot.time_ms);
        for slot in slots.drain(..) {
            debug_assert!(slot.time_ms >= world.start_ms && slot.time_ms < world.end_ms());
            templates.emit(slot, &user, &mut rng, sink);
        }
    }
}

/// One reusable event per [`Kind`], indexed by it.
///
/// Templates take on a user's constant properties lazily, the first time
/// that user emits their kind: most users never use most kinds.
struct Templates {
    events: [Event; Kind::COUNT],
    /// Counts users; a template is current when its stamp equals it.
    user_stamp: u64,
    adopted_stamps: [u64; Kind::COUNT],
    /// The current user's plan, which changes on an upgrade.
    plan: Plan,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    AnonymousPageView,
    PageView,
    SignUp,
    CreateApiKey,
    ApiRequest,
    UpgradePlan,
    InviteMember,
    ViewUsage,
}

impl Kind {
    const COUNT: usize = 8;
    const ALL: [Kind; Kind::COUNT] = [
        Kind::AnonymousPageView,
        Kind::PageView,
        Kind::SignUp,
        Kind::CreateApiKey,
        Kind::ApiRequest,
        Kind::UpgradePlan,
        Kind::InviteMember,
        Kind::ViewUsage,
    ];

    fn of(action: Action) -> Kind {
        match action {
            Action::AnonymousPageView(_) => Kind::AnonymousPageView,
            Action::PageView(_) => Kind::PageView,
            Action::SignUp => Kind::SignUp,
            Action::CreateApiKey => Kind::CreateApiKey,
            Action::ApiRequest => Kind::ApiRequest,
            Action::UpgradePlan => Kind::UpgradePlan,
            Action::InviteMember => Kind::InviteMember,
            Action::ViewUsage => Kind::ViewUsage,
        }
    }

    /// The event name and its property keys. Keys mapped to `None` are
    /// filled per user (see [`Templates::adopted`]) or per event.
    fn shape(self) -> (&'static str, Vec<(&'static str, Option<&'static str>)>) {
        const IDENTITY: [(&str, Option<&str>); 3] =
            [("$user_id", None), ("plan", None), ("company_id", None)];
        let browser = |url: Option<&'static str>| {
            vec![
                ("mp_country_code", None),
                ("$browser", None),
                ("$browser_version", None),
                ("$os", None),
                ("mp_lib", Some("web")),
                ("$current_url", url),
            ]
        };
        let identified = |url: Option<&'static str>,
                          extra: &[(&'static str, Option<&'static str>)]| {
            let mut keys = browser(url);
            keys.extend(IDENTITY);
            keys.extend_from_slice(extra);
            keys
        };
        match self {
            Kind::AnonymousPageView => {
                let mut keys = browser(None);
                keys.extend([("$device_id", None), ("$referring_domain", None)]);
                (PAGE_VIEW, keys)
            }
            Kind::PageView => (PAGE_VIEW, identified(None, &[("$referring_domain", None)])),
            Kind::SignUp => {
                let extra = [
                    ("$device_id", None),
                    ("$referring_domain", None),
                    ("signup_method", None),
                ];
                (SIGN_UP, identified(Some(tables::SIGNUP_URL), &extra))
            }
            Kind::CreateApiKey => (
                CREATE_API_KEY,
                identified(Some(tables::API_KEYS_URL), &[("permissions", None)]),
            ),
            Kind::ApiRequest => {
                let mut keys = vec![
                    ("mp_country_code", None),
                    ("$browser", None),
                    ("$os", None),
                    ("mp_lib", Some("python")),
                ];
                keys.extend(IDENTITY);
                keys.extend(
                    ["endpoint", "model", "status", "latency_ms", "tokens"].map(|key| (key, None)),
                );
                (API_REQUEST, keys)
            }
            Kind::UpgradePlan => {
                let extra =
                    ["from_plan", "to_plan", "amount", "billing_period"].map(|key| (key, None));
                (UPGRADE_PLAN, identified(Some(tables::BILLING_URL), &extra))
            }
            Kind::InviteMember => (
                INVITE_MEMBER,
                identified(Some(tables::MEMBERS_URL), &[("role", None)]),
            ),
            Kind::ViewUsage => (
                VIEW_USAGE,
                identified(Some(tables::USAGE_URL), &[("period", None)]),
            ),
        }
    }

    fn is_identified(self) -> bool {
        !matches!(self, Kind::AnonymousPageView)
    }
}

impl Templates {
    fn new() -> Templates {
        let events = Kind::ALL.map(|kind| {
            let (name, keys) = kind.shape();
            let properties: Properties = keys
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.map_or(Value::Null, Value::from)))
                .collect();
            Event {
                name: name.to_owned(),
                distinct_id: String::new(),
                time_ms: 0,
                insert_id: String::new(),
                properties,
            }
        });
        Templates {
            events,
            user_stamp: 0,
            adopted_stamps: [0; Kind::COUNT],
            plan: Plan::Free,
        }
    }

    /// Makes every template stale until the next user adopts it.
    fn begin_user(&mut self, user: &User) {
        self.user_stamp += 1;
        self.plan = user.initial_plan;
    }

    /// The template of `kind`, with everything constant for `user` filled in.
    fn adopted(&mut self, kind: Kind, user: &User) -> &mut Event {
        let event = &mut self.events[kind as usize];
        if self.adopted_stamps[kind as usize] == self.user_stamp {
            return event;
        }
        self.adopted_stamps[kind as usize] = self.user_stamp;
        event.distinct_id.clear();
        if kind.is_identified() {
            event.distinct_id.push_str(&user.distinct_id);
        } else {
            event.distinct_id.push_str("$device:");
            event.distinct_id.push_str(&user.device_id);
        }
        let per_user_texts = [
            ("mp_country_code", user.country.code),
            ("$browser", user.browser.name),
            ("$os", user.browser.os),
            ("$user_id", user.distinct_id.as_str()),
            ("plan", self.plan.as_str()),
            ("company_id", user.org.company_id.as_str()),
            ("$device_id", user.device_id.as_str()),
            ("$referring_domain", user.referrer.domain),
            ("signup_method", user.signup_method),
        ];
        let properties = &mut event.properties;
        for (key, text) in per_user_texts {
            if let Some(value) = properties.get_mut(key) {
                overwrite_text(value, text);
            }
        }
        if let Some(value) = properties.get_mut("$browser_version") {
            *value = Value::from(user.browser_version);
        }
        if matches!(kind, Kind::AnonymousPageView | Kind::SignUp) {
            if let Some(utm_source) = user.utm_source {
                properties.insert("utm_source".to_owned(), Value::from(utm_source));
            } else {
                properties.remove("utm_source");
            }
        }
        event
    }

    /// Fills in the slot's event and hands it to the sink, with probability
    /// [`DUPLICATE_PER_MILLE`] / 1000 twice (a client retry).
    fn emit(
        &mut self,
        slot: Slot,
        user: &User,
        rng: &mut ChaCha8Rng,
        sink: &mut impl FnMut(&Event),
    ) {
        let event = self.adopted(Kind::of(slot.action), user);
        event.time_ms = slot.time_ms;
        event.insert_id.clear();
        random::push_insert_id(rng, &mut event.insert_id);
        let properties = &mut event.properties;
        match slot.action {
            Action::AnonymousPageView(url) | Action::PageView(url) => {
                set_text(properties, "$current_url", url)
            }
            Action::SignUp => {}
            Action::CreateApiKey => set_text(
                properties,
                "permissions",
                tables::API_KEY_PERMISSIONS.pick(rng),
            ),
            Action::ApiRequest => fill_api_request(properties, rng),
            Action::UpgradePlan => fill_upgrade(properties, user),
            Action::InviteMember => set_text(properties, "role", tables::MEMBER_ROLES.pick(rng)),
            Action::ViewUsage => set_text(properties, "period", tables::USAGE_PERIODS.pick(rng)),
        }
        debug_assert!(
            event.properties.values().all(|value| !value.is_null()),
            "unfilled: {event:?}"
        );
        let is_duplicated = random::per_mille(rng, DUPLICATE_PER_MILLE);
        if is_duplicated {
            sink(event);
        }
        sink(event);
        if let Action::UpgradePlan = slot.action {
            let to_plan = user
                .upgrade
                .expect("an upgrade slot has an upgrade")
                .to_plan;
            self.set_plan(to_plan);
        }
    }

    fn set_plan(&mut self, plan: Plan) {
        self.plan = plan;
        for (event, adopted_stamp) in self.events.iter_mut().zip(self.adopted_stamps) {
            if adopted_stamp != self.user_stamp {
                continue;
            }
            if let Some(value) = event.properties.get_mut("plan") {
                overwrite_text(value, plan.as_str());
            }
        }
    }
}

fn fill_api_request(properties: &mut Properties, rng: &mut impl Rng) {
    let endpoint = tables::ENDPOINTS.pick(rng);
    let model = *endpoint.models.pick(rng);
    let status = *tables::STATUSES.pick(rng);
    let (latency_low_ms, latency_high_ms) = endpoint.latency_ms;
    let (latency_ms, tokens) = match status {
        200 => {
            let (tokens_low, tokens_high) = endpoint.tokens;
            (
                skewed_low(rng, latency_low_ms, latency_high_ms),
                skewed_low(rng, tokens_low, tokens_high),
            )
        }
        400 => (random::between(rng, (5, 60)), 0),
        429 => (random::between(rng, (2, 25)), 0),
        _ => (skewed_low(rng, latency_low_ms, 2 * latency_high_ms), 0),
    };
    set_text(properties, "endpoint", endpoint.path);
    set_text(properties, "model", model);
    set_value(properties, "status", Value::from(status));
    set_value(properties, "latency_ms", Value::from(latency_ms));
    set_value(properties, "tokens", Value::from(tokens));
}

/// `plan` still holds the plan before the upgrade: it becomes `from_plan`.
fn fill_upgrade(properties: &mut Properties, user: &User) {
    let upgrade = user.upgrade.expect("an upgrade slot has an upgrade");
    let from_plan = properties["plan"]
        .as_str()
        .expect("plan is filled per user")
        .to_owned();
    set_text(properties, "from_plan", &from_plan);
    set_text(properties, "to_plan", upgrade.to_plan.as_str());
    set_value(properties, "amount", Value::from(upgrade.amount));
    set_text(properties, "billing_period", upgrade.billing_period);
}

/// Overwrites a string property, reusing its buffer.
fn set_text(properties: &mut Properties, key: &str, text: &str) {
    overwrite_text(
        properties
            .get_mut(key)
            .expect("the template has every key it sets"),
        text,
    );
}

fn overwrite_text(value: &mut Value, text: &str) {
    match value {
        Value::String(existing) => {
            existing.clear();
            existing.push_str(text);
        }
        other => *other = Value::from(text),
    }
}

fn set_value(properties: &mut Properties, key: &str, value: Value) {
    *properties
        .get_mut(key)
        .expect("the template has every key it sets") = value;
}

/// A value in `[low, high)` biased toward `low` (median at a quarter of
/// the way), like latencies and token counts; `low` when they are equal.
fn skewed_low(rng: &mut impl Rng, low: u32, high: u32) -> u32 {
    let uniform = rng.random::<f64>();
    low + (f64::from(high - low) * uniform * uniform) as u32
}
