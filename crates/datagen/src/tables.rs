//! The static distributions every draw comes from: countries, browsers,
//! referrers, pages, API endpoints, names.
//!
//! Declarative on purpose: changing a share here changes the data set, and the
//! determinism snapshot in the tests says so. Weights are integers so that a
//! pick costs one integer draw and is identical on every platform.

use rand::Rng;

/// A weighted choice over a fixed list; the total is computed at compile time.
pub(crate) struct Table<T: 'static> {
    entries: &'static [(T, u32)],
    total_weight: u32,
}

impl<T> Table<T> {
    pub(crate) const fn new(entries: &'static [(T, u32)]) -> Table<T> {
        let mut total_weight = 0;
        let mut idx = 0;
        while idx < entries.len() {
            total_weight += entries[idx].1;
            idx += 1;
        }
        assert!(total_weight > 0, "a table needs a positive total weight");
        Table {
            entries,
            total_weight,
        }
    }

    pub(crate) fn pick(&self, rng: &mut impl Rng) -> &'static T {
        let mut ticket = rng.random_range(0..self.total_weight);
        for (item, weight) in self.entries {
            if ticket < *weight {
                return item;
            }
            ticket -= weight;
        }
        unreachable!("the ticket is below the total weight")
    }

    /// The share of `item`'s weight in the total, for tests.
    #[cfg(test)]
    pub(crate) fn share(&self, is_item: impl Fn(&T) -> bool) -> f64 {
        let weight: u32 = self
            .entries
            .iter()
            .filter(|(item, _)| is_item(item))
            .map(|(_, w)| w)
            .sum();
        f64::from(weight) / f64::from(self.total_weight)
    }
}

/// Picks uniformly from a plain list.
pub(crate) fn pick_uniform<T>(rng: &mut impl Rng, items: &'static [T]) -> &'static T {
    let len = u32::try_from(items.len()).expect("tables are small");
    &items[rng.random_range(0..len) as usize]
}

pub(crate) struct Country {
    /// ISO 3166-1 alpha-2, as Mixpanel's `mp_country_code`.
    pub(crate) code: &'static str,
    /// A representative offset, to place the daily activity peak.
    pub(crate) utc_offset_hours: i32,
}

const fn country(code: &'static str, utc_offset_hours: i32) -> Country {
    Country {
        code,
        utc_offset_hours,
    }
}

/// Weights in per mille; they sum to 1000, so US is exactly 35%.
pub(crate) static COUNTRIES: Table<Country> = Table::new(&[
    (country("US", -6), 350),
    (country("IN", 5), 90),
    (country("GB", 0), 60),
    (country("DE", 1), 50),
    (country("BR", -3), 40),
    (country("FR", 1), 35),
    (country("CA", -5), 35),
    (country("JP", 9), 30),
    (country("AU", 10), 25),
    (country("NL", 1), 16),
    (country("ES", 1), 16),
    (country("KR", 9), 16),
    (country("SG", 8), 12),
    (country("PL", 1), 12),
    (country("IT", 1), 11),
    (country("MX", -6), 11),
    (country("ID", 7), 11),
    (country("SE", 1), 9),
    (country("NG", 1), 9),
    (country("IL", 2), 9),
    (country("CH", 1), 7),
    (country("IE", 0), 7),
    (country("AR", -3), 7),
    (country("TR", 3), 7),
    (country("VN", 7), 7),
    (country("PH", 8), 7),
    (country("TW", 8), 6),
    (country("PT", 0), 6),
    (country("CO", -5), 6),
    (country("PK", 5), 6),
    (country("UA", 2), 6),
    (country("ZA", 2), 6),
    (country("EG", 2), 5),
    (country("AT", 1), 4),
    (country("BE", 1), 4),
    (country("CZ", 1), 4),
    (country("RO", 2), 4),
    (country("HK", 8), 4),
    (country("AE", 4), 4),
    (country("CL", -4), 4),
    (country("TH", 7), 4),
    (country("MY", 8), 4),
    (country("NZ", 12), 4),
    (country("NO", 1), 4),
    (country("DK", 1), 4),
    (country("FI", 2), 4),
    (country("KE", 3), 4),
    (country("GR", 2), 3),
    (country("HU", 1), 3),
    (country("BD", 6), 3),
    (country("PE", -5), 3),
    (country("EE", 2), 2),
]);

/// Relative activity by local hour: quiet at night, a working-day plateau
/// and a developers' evening shoulder.
pub(crate) static LOCAL_HOURS: Table<u32> = Table::new(&[
    (0, 6),
    (1, 4),
    (2, 3),
    (3, 2),
    (4, 2),
    (5, 3),
    (6, 6),
    (7, 14),
    (8, 30),
    (9, 48),
    (10, 56),
    (11, 58),
    (12, 50),
    (13, 55),
    (14, 58),
    (15, 56),
    (16, 50),
    (17, 40),
    (18, 28),
    (19, 22),
    (20, 20),
    (21, 17),
    (22, 13),
    (23, 9),
]);

pub(crate) struct Browser {
    /// As mixpanel-browser reports it (`$browser`).
    pub(crate) name: &'static str,
    pub(crate) os: &'static str,
    /// Inclusive major-version range for `$browser_version`.
    pub(crate) versions: (u32, u32),
}

const fn browser(name: &'static str, os: &'static str, versions: (u32, u32)) -> Browser {
    Browser { name, os, versions }
}

/// A developer console skews to desktop: Chrome 62%, Safari 14%, Firefox 10%,
/// Edge 10%, others 4%.
pub(crate) static BROWSERS: Table<Browser> = Table::new(&[
    (browser("Chrome", "Windows", (120, 131)), 290),
    (browser("Chrome", "Mac OS X", (120, 131)), 230),
    (browser("Chrome", "Linux", (118, 131)), 60),
    (browser("Chrome", "Android", (120, 131)), 25),
    (browser("Chrome", "Chrome OS", (120, 131)), 15),
    (browser("Safari", "Mac OS X", (16, 18)), 110),
    (browser("Mobile Safari", "iOS", (16, 18)), 30),
    (browser("Firefox", "Windows", (118, 133)), 40),
    (browser("Firefox", "Mac OS X", (118, 133)), 25),
    (browser("Firefox", "Linux", (115, 133)), 35),
    (browser("Microsoft Edge", "Windows", (120, 131)), 100),
    (browser("Opera", "Windows", (100, 115)), 20),
    (browser("Brave", "Mac OS X", (120, 131)), 20),
]);

pub(crate) struct Referrer {
    /// `$referring_domain`; `$direct` when the browser sent no referrer.
    pub(crate) domain: &'static str,
    /// `$initial_referrer` on the profile.
    pub(crate) url: &'static str,
    /// The campaign some of these visitors arrive with, or "".
    pub(crate) utm_source: &'static str,
    /// How many in 100 of these visitors carry `utm_source`.
    pub(crate) utm_percent: u32,
}

const fn referrer(
    domain: &'static str,
    url: &'static str,
    utm_source: &'static str,
    utm_percent: u32,
) -> Referrer {
    Referrer {
        domain,
        url,
        utm_source,
        utm_percent,
    }
}

pub(crate) static REFERRERS: Table<Referrer> = Table::new(&[
    (referrer("$direct", "$direct", "newsletter", 20), 300),
    (
        referrer("google.com", "https://google.com/", "google_ads", 30),
        260,
    ),
    (referrer("github.com", "https://github.com/", "", 0), 120),
    (
        referrer(
            "news.ycombinator.com",
            "https://news.ycombinator.com/",
            "hn",
            25,
        ),
        70,
    ),
    (
        referrer("twitter.com", "https://twitter.com/", "twitter", 50),
        60,
    ),
    (
        referrer("reddit.com", "https://reddit.com/r/MachineLearning/", "", 0),
        50,
    ),
    (
        referrer(
            "stackoverflow.com",
            "https://stackoverflow.com/questions",
            "",
            0,
        ),
        40,
    ),
    (
        referrer("linkedin.com", "https://linkedin.com/feed/", "linkedin", 40),
        30,
    ),
    (
        referrer("youtube.com", "https://youtube.com/", "youtube", 40),
        30,
    ),
    (referrer("bing.com", "https://bing.com/", "", 0), 20),
    (
        referrer("duckduckgo.com", "https://duckduckgo.com/", "", 0),
        10,
    ),
    (referrer("dev.to", "https://dev.to/", "partner", 30), 10),
]);

pub(crate) static SIGNUP_METHODS: Table<&str> =
    Table::new(&[("email", 50), ("google", 30), ("github", 20)]);

macro_rules! url {
    ($path:literal) => {
        concat!("https://platform.example.com", $path)
    };
}

/// Pages an anonymous visitor reads before signing up.
pub(crate) static LANDING_PAGES: Table<&str> = Table::new(&[
    (url!("/"), 35),
    (url!("/pricing"), 20),
    (url!("/docs"), 15),
    (url!("/docs/quickstart"), 15),
    (url!("/docs/models"), 10),
    (url!("/blog/introducing-nova-2"), 5),
]);

/// What a new user reads right after signing up.
pub(crate) static ONBOARDING_PAGES: Table<&str> = Table::new(&[
    (url!("/onboarding"), 35),
    (url!("/docs/quickstart"), 30),
    (url!("/playground"), 20),
    (url!("/api-keys"), 15),
]);

/// The signed-in console and docs.
pub(crate) static CONSOLE_PAGES: Table<&str> = Table::new(&[
    (url!("/dashboard"), 20),
    (url!("/playground"), 15),
    (url!("/docs/api-reference/chat"), 12),
    (url!("/docs/api-reference/embeddings"), 6),
    (url!("/docs/guides/rate-limits"), 6),
    (url!("/docs/guides/streaming"), 5),
    (url!("/docs/guides/function-calling"), 5),
    (url!("/docs/models"), 8),
    (url!("/docs/quickstart"), 5),
    (url!("/pricing"), 5),
    (url!("/settings"), 5),
    (url!("/api-keys"), 5),
    (url!("/status"), 3),
]);

pub(crate) const SIGNUP_URL: &str = url!("/signup");
pub(crate) const API_KEYS_URL: &str = url!("/api-keys");
pub(crate) const BILLING_URL: &str = url!("/settings/billing");
pub(crate) const MEMBERS_URL: &str = url!("/settings/members");
pub(crate) const USAGE_URL: &str = url!("/usage");

pub(crate) struct Endpoint {
    pub(crate) path: &'static str,
    pub(crate) models: Table<&'static str>,
    /// Inclusive range of a successful call's latency.
    pub(crate) latency_ms: (u32, u32),
    /// Inclusive range of billed tokens; (0, 0) for endpoints billed otherwise.
    pub(crate) tokens: (u32, u32),
}

pub(crate) static ENDPOINTS: Table<Endpoint> = Table::new(&[
    (
        Endpoint {
            path: "/v1/chat/completions",
            models: Table::new(&[
                ("nova-large-2", 35),
                ("nova-mini-2", 55),
                ("nova-reason-1", 10),
            ]),
            latency_ms: (300, 6000),
            tokens: (40, 8000),
        },
        60,
    ),
    (
        Endpoint {
            path: "/v1/embeddings",
            models: Table::new(&[("nova-embed-3", 80), ("nova-embed-3-small", 20)]),
            latency_ms: (30, 400),
            tokens: (5, 3000),
        },
        20,
    ),
    (
        Endpoint {
            path: "/v1/completions",
            models: Table::new(&[("nova-mini-1", 100)]),
            latency_ms: (200, 3000),
            tokens: (20, 2000),
        },
        4,
    ),
    (
        Endpoint {
            path: "/v1/images/generations",
            models: Table::new(&[("nova-image-1", 100)]),
            latency_ms: (3000, 15000),
            tokens: (0, 0),
        },
        5,
    ),
    (
        Endpoint {
            path: "/v1/audio/transcriptions",
            models: Table::new(&[("nova-speech-1", 100)]),
            latency_ms: (500, 8000),
            tokens: (0, 0),
        },
        5,
    ),
    (
        Endpoint {
            path: "/v1/moderations",
            models: Table::new(&[("nova-moderate-1", 100)]),
            latency_ms: (20, 200),
            tokens: (5, 1500),
        },
        6,
    ),
]);

/// HTTP status of an API call: mostly fine, some bad requests and rate limits.
pub(crate) static STATUSES: Table<u16> = Table::new(&[(200, 935), (400, 30), (429, 25), (500, 10)]);

pub(crate) static API_KEY_PERMISSIONS: Table<&str> =
    Table::new(&[("all", 80), ("restricted", 15), ("read_only", 5)]);
pub(crate) static MEMBER_ROLES: Table<&str> =
    Table::new(&[("member", 70), ("admin", 20), ("reader", 10)]);
pub(crate) static USAGE_PERIODS: Table<&str> =
    Table::new(&[("7d", 30), ("30d", 50), ("month_to_date", 20)]);

pub(crate) static INDUSTRIES: Table<&str> = Table::new(&[
    ("software", 30),
    ("fintech", 10),
    ("ecommerce", 10),
    ("healthcare", 8),
    ("education", 8),
    ("media", 7),
    ("consulting", 7),
    ("research", 6),
    ("gaming", 5),
    ("manufacturing", 5),
    ("legal", 4),
]);

pub(crate) static FIRST_NAMES: &[&str] = &[
    "Ada", "Alan", "Amara", "Ana", "Arjun", "Ben", "Carlos", "Chen", "Chloe", "Daniel", "Elena",
    "Emma", "Fatima", "Felix", "Grace", "Hana", "Ivan", "Jonas", "Julia", "Kenji", "Laura", "Leo",
    "Lucas", "Maya", "Mei", "Noah", "Olivia", "Omar", "Priya", "Rahul", "Sara", "Sofia", "Tom",
    "Wei", "Yuki", "Zoe",
];

pub(crate) static LAST_NAMES: &[&str] = &[
    "Adeyemi", "Bauer", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Gupta", "Hansen", "Ito",
    "Jensen", "Kim", "Kowalski", "Lopez", "Martin", "Meyer", "Nakamura", "Novak", "Okafor",
    "Patel", "Rossi", "Schmidt", "Silva", "Singh", "Smith", "Tanaka", "Nguyen", "Wang", "Williams",
    "Yilmaz",
];

pub(crate) static ORG_WORDS: &[&str] = &[
    "Amber", "Atlas", "Birch", "Blue", "Cedar", "Cobalt", "Copper", "Delta", "Ember", "Falcon",
    "Harbor", "Iris", "Juniper", "Kite", "Lumen", "Maple", "Nimbus", "Orbit", "Pine", "Quartz",
    "River", "Signal", "Summit", "Tidal", "Vector", "Willow",
];

pub(crate) static ORG_SUFFIXES: &[&str] = &[
    "Labs",
    "AI",
    "Analytics",
    "Systems",
    "Health",
    "Software",
    "Studio",
    "Works",
    "Inc",
    "Data",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_match_the_documented_ones() {
        assert_eq!(COUNTRIES.total_weight, 1000);
        assert_eq!(COUNTRIES.share(|c| c.code == "US"), 0.35);
        let chrome = BROWSERS.share(|b| b.name == "Chrome");
        assert!((0.55..0.65).contains(&chrome), "{chrome}");
        assert!(
            LANDING_PAGES
                .entries
                .iter()
                .all(|(url, _)| url.starts_with("https://platform.example.com/"))
        );
        assert!(
            CONSOLE_PAGES
                .entries
                .iter()
                .all(|(url, _)| url.starts_with("https://platform.example.com/"))
        );
    }

    #[test]
    fn ranges_are_ordered() {
        for (browser, _) in BROWSERS.entries {
            assert!(browser.versions.0 <= browser.versions.1);
        }
        for (endpoint, _) in ENDPOINTS.entries {
            assert!(endpoint.latency_ms.0 <= endpoint.latency_ms.1);
            assert!(endpoint.tokens.0 <= endpoint.tokens.1);
        }
    }
}
