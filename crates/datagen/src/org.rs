//! Organisations: the `company_id` groups users belong to, and the plans
//! they start on.
//!
//! Membership must be decidable from the user alone (O(1) memory), so a user
//! picks organisation `floor(n_orgs * u²)` for a uniform `u`. That makes low
//! indexes big (organisation 0 holds about `users / sqrt(n_orgs)` members)
//! and the tail small (two or three members), like real customer bases, and
//! gives each organisation an expected size computable without scanning users.

use crate::config::World;
use crate::random::{self, Domain};
use crate::tables::{self, INDUSTRIES, Table};
use events::{GroupUpdate, ProfileOp, Properties};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

pub(crate) const GROUP_KEY: &str = "company_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    Free,
    Pro,
    Team,
    Enterprise,
}

impl Plan {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Team => "team",
            Plan::Enterprise => "enterprise",
        }
    }

    /// Seats every organisation on this plan pays for at least.
    fn min_seats(self) -> u32 {
        match self {
            Plan::Free | Plan::Pro => 1,
            Plan::Team => 3,
            Plan::Enterprise => 10,
        }
    }
}

/// Larger organisations buy larger plans.
static PLANS_LARGE: Table<Plan> =
    Table::new(&[(Plan::Enterprise, 55), (Plan::Team, 35), (Plan::Pro, 10)]);
static PLANS_MEDIUM: Table<Plan> = Table::new(&[
    (Plan::Enterprise, 5),
    (Plan::Team, 35),
    (Plan::Pro, 30),
    (Plan::Free, 30),
]);
static PLANS_SMALL: Table<Plan> = Table::new(&[(Plan::Team, 8), (Plan::Pro, 22), (Plan::Free, 70)]);

#[derive(Debug, Clone)]
pub(crate) struct Org {
    pub(crate) company_id: String,
    pub(crate) plan: Plan,
    pub(crate) seats: u32,
    expected_members: f64,
}

impl Org {
    /// The organisation's own attributes, and its stream for further draws.
    pub(crate) fn generate(world: &World, org_idx: u64) -> (Org, ChaCha8Rng) {
        debug_assert!(org_idx < world.n_orgs);
        let mut rng = random::rng_for(world.seed, Domain::Org, org_idx);
        let expected_members = expected_members(world, org_idx);
        let plans = if expected_members >= 20.0 {
            &PLANS_LARGE
        } else if expected_members >= 6.0 {
            &PLANS_MEDIUM
        } else {
            &PLANS_SMALL
        };
        let plan = *plans.pick(&mut rng);
        let headroom = 1.0 + 0.8 * rng.random::<f64>();
        let seats_wanted = (expected_members * headroom).ceil() as u32;
        let org = Org {
            company_id: format!("org_{org_idx}"),
            plan,
            seats: seats_wanted.max(plan.min_seats()),
            expected_members,
        };
        (org, rng)
    }

    /// True when more than one user is expected, so inviting makes sense.
    pub(crate) fn is_shared(&self) -> bool {
        self.expected_members >= 1.5
    }

    /// The one `$set` describing this organisation, at the start of the range.
    pub(crate) fn group_update(&self, world: &World, rng: &mut impl Rng) -> GroupUpdate {
        let first_word = tables::pick_uniform(rng, tables::ORG_WORDS);
        let second_word = tables::pick_uniform(rng, tables::ORG_WORDS);
        let suffix = tables::pick_uniform(rng, tables::ORG_SUFFIXES);
        let name = if first_word == second_word {
            format!("{first_word} {suffix}")
        } else {
            format!("{first_word} {second_word} {suffix}")
        };
        let mut properties = Properties::new();
        properties.insert("name".to_owned(), Value::from(name));
        properties.insert("plan".to_owned(), Value::from(self.plan.as_str()));
        properties.insert("seats".to_owned(), Value::from(self.seats));
        properties.insert("industry".to_owned(), Value::from(*INDUSTRIES.pick(rng)));
        GroupUpdate {
            group_key: GROUP_KEY.to_owned(),
            group_id: self.company_id.clone(),
            time_ms: world.start_ms,
            op: ProfileOp::Set(properties),
        }
    }
}

/// The organisation a user belongs to; see the module docs.
pub(crate) fn org_of_user(rng: &mut impl Rng, n_orgs: u64) -> u64 {
    let uniform = rng.random::<f64>();
    let org_idx = (n_orgs as f64 * uniform * uniform) as u64;
    org_idx.min(n_orgs - 1)
}

/// `users * P(org_idx <= n * u² < org_idx + 1)`.
fn expected_members(world: &World, org_idx: u64) -> f64 {
    let n_orgs = world.n_orgs as f64;
    let low = (org_idx as f64 / n_orgs).sqrt();
    let high = ((org_idx + 1) as f64 / n_orgs).sqrt();
    world.users as f64 * (high - low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GenConfig;

    #[test]
    fn expected_members_sum_to_users() {
        let world = World::new(&GenConfig::for_events(200_000));
        let total: f64 = (0..world.n_orgs)
            .map(|org_idx| expected_members(&world, org_idx))
            .sum();
        assert!((total - world.users as f64).abs() < 1e-6 * world.users as f64);
        assert!(expected_members(&world, 0) > 100.0);
        assert!(expected_members(&world, world.n_orgs - 1) < 3.0);
    }

    #[test]
    fn big_orgs_buy_big_plans_and_enough_seats() {
        let world = World::new(&GenConfig::for_events(200_000));
        let (big, _) = Org::generate(&world, 0);
        assert!(matches!(
            big.plan,
            Plan::Enterprise | Plan::Team | Plan::Pro
        ));
        assert!(f64::from(big.seats) >= big.expected_members);
        for org_idx in 0..world.n_orgs {
            let (org, _) = Org::generate(&world, org_idx);
            assert!(org.seats >= org.plan.min_seats());
        }
    }
}
