//! User-Agent header → browser, version, OS, device, with the uap-core
//! regexes and a bounded cache.
//!
//! Names are uap-core's, except where Mixpanel's browser SDK reports the same
//! thing under another name (`Edge` → `Microsoft Edge`, `Chrome Mobile` →
//! `Chrome`, Linux distributions → `Linux`), so that server-side and browser
//! events segment together. uap-core's catch-all `Other` becomes `None`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::EnrichError;

/// Debian's `uap-core` package puts the regexes here.
const SYSTEM_REGEXES_PATH: &str = "/usr/share/uap-core/regexes.yaml";
/// Where `scripts/install-geo.sh` copies the ua-parser crate's regexes when
/// apt is unavailable, relative to the data root.
const FALLBACK_REGEXES_PATH: &str = "geo/uap-core-regexes.yaml";
/// Parses kept in memory; the cache is emptied when full. Real traffic has a
/// few hundred distinct user agents per day, so 10k is plenty.
const CACHE_ENTRIES_MAX: usize = 10_000;
/// Longer headers are cut before parsing: no real user agent is this long,
/// and it bounds both regex time and cache memory (10k × 512 bytes).
const USER_AGENT_BYTES_MAX: usize = 512;

/// What a User-Agent header says about its client. `None` where uap-core
/// does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAgent {
    /// `"Chrome"`, `"Mobile Safari"`, `"Firefox"`, `"Python Requests"`, `"curl"`.
    pub browser: Option<String>,
    /// Major version, or major.minor when the minor is not zero (`"120"`,
    /// `"17.1"`), like the browser SDK's `parseFloat` of the version.
    pub browser_version: Option<String>,
    /// `"Windows"`, `"Mac OS X"`, `"iOS"`, `"Android"`, `"Linux"`.
    pub os: Option<String>,
    /// Device family: `"iPhone"`, `"Mac"`, `"Samsung SM-G991B"`, `"Spider"`.
    pub device: Option<String>,
}

/// The uap-core regexes compiled once, plus a cache of recent parses keyed by
/// the header. `Sync`: share one behind an `Arc`.
pub struct UaParser {
    extractor: ua_parser::Extractor<'static>,
    /// Raw user agents live here, in memory only, until the cache is emptied;
    /// they are never logged or written anywhere.
    cache: Mutex<HashMap<String, UserAgent>>,
}

impl UaParser {
    /// Compiles the regexes of a uap-core `regexes.yaml`. Takes 0.1–0.5 s:
    /// do it once at start-up.
    pub fn load(regexes_yaml: &Path) -> Result<UaParser, EnrichError> {
        let path = regexes_yaml.to_owned();
        let text = std::fs::read_to_string(regexes_yaml).map_err(|source| EnrichError::UaRead {
            path: path.clone(),
            source,
        })?;
        let regexes: ua_parser::Regexes<'static> =
            serde_yaml::from_str(&text).map_err(|source| EnrichError::UaParse {
                path: path.clone(),
                source,
            })?;
        let extractor = ua_parser::Extractor::try_from(regexes)
            .map_err(|source| EnrichError::UaCompile { path, source })?;
        Ok(UaParser {
            extractor,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Debian's `/usr/share/uap-core/regexes.yaml`, when installed.
    pub fn find_default_regexes() -> Option<PathBuf> {
        let path = PathBuf::from(SYSTEM_REGEXES_PATH);
        path.is_file().then_some(path)
    }

    /// [`UaParser::find_default_regexes`], else the copy that
    /// `scripts/install-geo.sh` leaves in `root/geo` when apt is unavailable.
    pub fn find_regexes(root: &Path) -> Option<PathBuf> {
        let fallback = root.join(FALLBACK_REGEXES_PATH);
        Self::find_default_regexes().or_else(|| fallback.is_file().then_some(fallback))
    }

    /// Parses a User-Agent header, from the cache when it was seen recently.
    pub fn parse(&self, user_agent: &str) -> UserAgent {
        let user_agent = truncate_to_char_boundary(user_agent, USER_AGENT_BYTES_MAX);
        if let Some(cached) = self.lock_cache().get(user_agent) {
            return cached.clone();
        }
        // Parse outside the lock: concurrent misses on one header parse twice,
        // which is cheaper than making every other request wait.
        let parsed = self.parse_uncached(user_agent);
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_ENTRIES_MAX {
            cache.clear();
        }
        cache.insert(user_agent.to_owned(), parsed.clone());
        parsed
    }

    fn parse_uncached(&self, user_agent: &str) -> UserAgent {
        let (browser, os, device) = self.extractor.extract(user_agent);
        // A version without a browser name says nothing: both or neither.
        let (browser_name, browser_version) = match &browser {
            Some(browser) => match known(&browser.family) {
                Some(family) => (
                    Some(mixpanel_browser_name(family)),
                    version_text(browser.major, browser.minor),
                ),
                None => (None, None),
            },
            None => (None, None),
        };
        UserAgent {
            browser: browser_name,
            browser_version,
            os: os
                .as_ref()
                .and_then(|os| known(&os.os))
                .map(mixpanel_os_name),
            device: device
                .as_ref()
                .and_then(|device| known(&device.device))
                .map(str::to_owned),
        }
    }

    fn lock_cache(&self) -> MutexGuard<'_, HashMap<String, UserAgent>> {
        // A panic while holding the lock cannot leave a half-written entry
        // that matters: the cache only ever holds complete parses.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for UaParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the cache: its keys are raw user agents.
        f.debug_struct("UaParser").finish_non_exhaustive()
    }
}

/// uap-core answers `Other` when no regex matched.
fn known(family: &str) -> Option<&str> {
    let family = family.trim();
    (!family.is_empty() && family != "Other").then_some(family)
}

fn version_text(major: Option<&str>, minor: Option<&str>) -> Option<String> {
    let major = major.map(str::trim).filter(|major| !major.is_empty())?;
    match minor.map(str::trim) {
        Some(minor) if !minor.is_empty() && minor.bytes().any(|byte| byte != b'0') => {
            Some(format!("{major}.{minor}"))
        }
        _ => Some(major.to_owned()),
    }
}

/// uap-core family → the name mixpanel-browser reports for the same browser.
fn mixpanel_browser_name(family: &str) -> String {
    let name = match family {
        "Edge" | "Edge Mobile" => "Microsoft Edge",
        "Chrome Mobile" | "Chrome Mobile WebView" | "HeadlessChrome" => "Chrome",
        "Chrome Mobile iOS" => "Chrome iOS",
        "Firefox Mobile" => "Firefox",
        "Opera Mobile" | "Opera Mini" => "Opera Mobile",
        "IE" => "Internet Explorer",
        "IE Mobile" => "Internet Explorer Mobile",
        "Facebook" => "Facebook Mobile",
        other => other,
    };
    name.to_owned()
}

/// uap-core OS family → the name mixpanel-browser reports.
fn mixpanel_os_name(family: &str) -> String {
    let linux_distributions = [
        "Ubuntu",
        "Kubuntu",
        "Xubuntu",
        "Debian",
        "Fedora",
        "Red Hat",
        "CentOS",
        "Linux Mint",
        "Mint",
        "Arch Linux",
        "Gentoo",
        "Slackware",
        "openSUSE",
        "SUSE",
        "Mandriva",
        "Mageia",
    ];
    if linux_distributions.contains(&family) {
        return "Linux".to_owned();
    }
    family.to_owned()
}

fn truncate_to_char_boundary(text: &str, bytes_max: usize) -> &str {
    if text.len() <= bytes_max {
        return text;
    }
    let mut end = bytes_max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::geo::tests::workspace_root;
    use std::sync::OnceLock;

    /// One parser for all tests: loading takes a fraction of a second.
    pub(crate) fn shared_parser() -> &'static UaParser {
        static PARSER: OnceLock<UaParser> = OnceLock::new();
        PARSER.get_or_init(|| {
            let path = UaParser::find_regexes(&workspace_root()).unwrap_or_else(|| {
                panic!(
                    "no uap-core regexes.yaml ({SYSTEM_REGEXES_PATH} or geo/uap-core-regexes.yaml): \
                     run scripts/install-geo.sh first"
                )
            });
            UaParser::load(&path).expect("regexes load")
        })
    }

    /// `expected`: browser, browser version, OS; `-` for `None`.
    fn check(user_agent: &str, expected: [&str; 3]) {
        let parsed = shared_parser().parse(user_agent);
        let actual = [&parsed.browser, &parsed.browser_version, &parsed.os]
            .map(|value| value.as_deref().unwrap_or("-").to_owned());
        assert_eq!(actual, expected, "{user_agent}");
    }

    #[test]
    fn common_user_agents() {
        check(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36",
            ["Chrome", "120", "Windows"],
        );
        check(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
            ["Mobile Safari", "17.1", "iOS"],
        );
        check(
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            ["Firefox", "121", "Linux"],
        );
        check(
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
            ["Firefox", "115", "Linux"],
        );
        check(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) \
             Version/17.2 Safari/605.1.15",
            ["Safari", "17.2", "Mac OS X"],
        );
        check(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            ["Microsoft Edge", "120", "Windows"],
        );
        check(
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Mobile Safari/537.36",
            ["Chrome", "120", "Android"],
        );
        check("python-requests/2.31.0", ["Python Requests", "2.31", "-"]);
        check("curl/8.5.0", ["curl", "8.5", "-"]);
        check("node", ["-", "-", "-"]);
        check(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            ["Googlebot", "2.1", "-"],
        );
        check("", ["-", "-", "-"]);
    }

    #[test]
    fn devices_come_from_uap_core() {
        let parsed = shared_parser().parse(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(parsed.device.as_deref(), Some("iPhone"));
    }

    #[test]
    fn cache_is_bounded_and_answers_like_a_parse() {
        let parser = shared_parser();
        let user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
        let first = parser.parse(user_agent);
        assert_eq!(parser.parse(user_agent), first);
        assert_eq!(parser.parse_uncached(user_agent), first);
        for n in 0..CACHE_ENTRIES_MAX + 10 {
            parser.parse(&format!("curl/{n}.0"));
        }
        assert!(parser.lock_cache().len() <= CACHE_ENTRIES_MAX);
    }

    #[test]
    fn long_headers_are_cut_at_a_char_boundary() {
        let long = format!("curl/8.5.0 {}", "é".repeat(1000));
        let parsed = shared_parser().parse(&long);
        assert_eq!(parsed.browser.as_deref(), Some("curl"));
        assert_eq!(truncate_to_char_boundary("aé", 2), "a");
        assert_eq!(truncate_to_char_boundary("abc", 5), "abc");
    }

    #[test]
    fn versions_are_major_or_major_minor() {
        assert_eq!(version_text(Some("120"), Some("0")).as_deref(), Some("120"));
        assert_eq!(version_text(Some("17"), Some("1")).as_deref(), Some("17.1"));
        assert_eq!(version_text(Some("8"), None).as_deref(), Some("8"));
        assert_eq!(version_text(None, Some("1")), None);
    }

    #[test]
    fn parser_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<UaParser>();
    }

    #[test]
    fn load_errors_name_the_file() {
        let missing = workspace_root().join("geo/no-such-regexes.yaml");
        let message = UaParser::load(&missing).unwrap_err().to_string();
        assert!(message.contains("no-such-regexes.yaml"), "{message}");
        let not_regexes = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let message = UaParser::load(&not_regexes).unwrap_err().to_string();
        assert!(
            message.starts_with("cannot parse user-agent regexes "),
            "{message}"
        );
    }
}
