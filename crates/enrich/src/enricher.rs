//! [`Enricher`]: what the server adds to events and profile updates at
//! ingest, always where the client left a property out, never over it.

use std::net::IpAddr;

use events::Properties;
use serde_json::Value;

use crate::geo::{Geo, GeoDb, GeoPrecision};
use crate::url::{UTM_KEYS, referring_domain, utm_parameters};
use crate::user_agent::{UaParser, UserAgent};

/// The enrichment sources, each optional: without a geo database no geo
/// properties are added, without the regexes no user-agent ones. Built once
/// at start-up and shared between requests (`Sync`).
#[derive(Debug, Default)]
pub struct Enricher {
    /// IP → place. `None`: no geo properties.
    pub geo: Option<GeoDb>,
    /// User-Agent header → browser and OS. `None`: none of those.
    pub ua: Option<UaParser>,
}

/// What the request tells about its sender, plus the project's geo setting.
pub struct EnrichRequest<'a> {
    /// The address to place: the event's `ip` property or the request's
    /// address, as the server decided (`None` for `ip=0`). Used for one
    /// lookup and dropped.
    pub ip: Option<IpAddr>,
    /// The User-Agent header.
    pub user_agent: Option<&'a str>,
    /// How precisely to place `ip`.
    pub precision: GeoPrecision,
}

impl std::fmt::Debug for EnrichRequest<'_> {
    /// Says whether an address and a user agent are present, never what they are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrichRequest")
            .field("ip", &self.ip.map(|_| "<redacted>"))
            .field("user_agent", &self.user_agent.map(|_| "<redacted>"))
            .field("precision", &self.precision)
            .finish()
    }
}

/// The property names geo answers go to: events and profiles differ in the
/// country key, as in Mixpanel.
struct GeoKeys {
    country_code: &'static str,
    region: &'static str,
    city: &'static str,
}

const EVENT_GEO_KEYS: GeoKeys = GeoKeys {
    country_code: "mp_country_code",
    region: "$region",
    city: "$city",
};
const PROFILE_GEO_KEYS: GeoKeys = GeoKeys {
    country_code: "$country_code",
    region: "$region",
    city: "$city",
};

impl GeoKeys {
    /// The keys `precision` allows, coarsest first.
    fn allowed(&self, precision: GeoPrecision) -> impl Iterator<Item = &'static str> {
        let n_allowed = match precision {
            GeoPrecision::Country => 1,
            GeoPrecision::Region => 2,
            GeoPrecision::City => 3,
        };
        [self.country_code, self.region, self.city]
            .into_iter()
            .take(n_allowed)
    }
}

impl Enricher {
    /// Adds to an event, each only where the client did not set it:
    /// - `mp_country_code`, then `$region` and `$city` as `precision` allows,
    ///   from `request.ip`;
    /// - `$browser`, `$browser_version`, `$os` from `request.user_agent`,
    ///   for server-side SDK traffic only: skipped when the event has
    ///   `$browser` or `$os` or comes from mixpanel-browser (`mp_lib: "web"`),
    ///   whose User-Agent header describes the browser the SDK already
    ///   reported, perhaps better;
    /// - `$referring_domain`: the host of `$referrer` (`$direct` has none);
    /// - `utm_source`, `utm_medium`, `utm_campaign`, `utm_term`,
    ///   `utm_content` from the query of `$current_url`.
    pub fn enrich_event(&self, properties: &mut Properties, request: &EnrichRequest<'_>) {
        self.add_geo(properties, request, &EVENT_GEO_KEYS);
        self.add_user_agent(properties, request.user_agent);
        add_referring_domain(properties);
        add_utm_parameters(properties);
    }

    /// Adds `$country_code` (not `mp_country_code`), then `$region` and
    /// `$city` as `precision` allows, to the properties of a `$set` or
    /// `$set_once` update, where absent. Mixpanel moves profile geo only on
    /// those operations: do not call it for the others.
    pub fn enrich_profile(&self, set: &mut Properties, request: &EnrichRequest<'_>) {
        self.add_geo(set, request, &PROFILE_GEO_KEYS);
    }

    fn add_geo(&self, properties: &mut Properties, request: &EnrichRequest<'_>, keys: &GeoKeys) {
        let (Some(geo_db), Some(ip)) = (&self.geo, request.ip) else {
            return;
        };
        if keys
            .allowed(request.precision)
            .all(|key| properties.contains_key(key))
        {
            return;
        }
        let geo = geo_db.lookup(ip);
        insert_geo(properties, geo, keys, request.precision);
    }

    fn add_user_agent(&self, properties: &mut Properties, user_agent: Option<&str>) {
        let (Some(parser), Some(user_agent)) = (&self.ua, user_agent) else {
            return;
        };
        if user_agent.trim().is_empty() || is_described_by_client(properties) {
            return;
        }
        let parsed = parser.parse(user_agent);
        insert_user_agent(properties, parsed);
    }
}

/// Writes the parts of `geo` that `precision` allows where absent.
fn insert_geo(properties: &mut Properties, geo: Geo, keys: &GeoKeys, precision: GeoPrecision) {
    insert_absent(
        properties,
        keys.country_code,
        geo.country_code.map(Value::from),
    );
    if precision >= GeoPrecision::Region {
        insert_absent(properties, keys.region, geo.region.map(Value::from));
    }
    if precision >= GeoPrecision::City {
        insert_absent(properties, keys.city, geo.city.map(Value::from));
    }
}

/// True when the client described its own browser or OS, or is the browser SDK.
fn is_described_by_client(properties: &Properties) -> bool {
    properties.contains_key("$browser")
        || properties.contains_key("$os")
        || properties.get("mp_lib").and_then(Value::as_str) == Some("web")
}

fn insert_user_agent(properties: &mut Properties, user_agent: UserAgent) {
    insert_absent(properties, "$browser", user_agent.browser.map(Value::from));
    insert_absent(
        properties,
        "$browser_version",
        user_agent.browser_version.map(version_value),
    );
    insert_absent(properties, "$os", user_agent.os.map(Value::from));
}

/// mixpanel-browser sends `$browser_version` as a number (`120`, `17.1`);
/// a version that is not one stays text.
fn version_value(version: String) -> Value {
    if let Ok(integer) = version.parse::<u64>() {
        return Value::from(integer);
    }
    let number = version
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64);
    number.map_or(Value::from(version), Value::Number)
}

fn add_referring_domain(properties: &mut Properties) {
    if properties.contains_key("$referring_domain") {
        return;
    }
    let domain = properties
        .get("$referrer")
        .and_then(Value::as_str)
        .and_then(referring_domain);
    insert_absent(properties, "$referring_domain", domain.map(Value::from));
}

fn add_utm_parameters(properties: &mut Properties) {
    if UTM_KEYS.iter().all(|key| properties.contains_key(*key)) {
        return;
    }
    let Some(current_url) = properties.get("$current_url").and_then(Value::as_str) else {
        return;
    };
    for (key, value) in utm_parameters(current_url) {
        insert_absent(properties, key, Some(Value::from(value)));
    }
}

/// The one rule of this module: a property the client set, even to `null`,
/// is the client's.
fn insert_absent(properties: &mut Properties, key: &str, value: Option<Value>) {
    if let Some(value) = value
        && !properties.contains_key(key)
    {
        properties.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::tests::default_geo_db;
    use serde_json::json;
    use std::sync::OnceLock;

    const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                                  (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

    /// Real files, loaded once: the country pair when installed, else the city pair.
    fn enricher() -> &'static Enricher {
        static ENRICHER: OnceLock<Enricher> = OnceLock::new();
        ENRICHER.get_or_init(|| {
            let path =
                UaParser::find_regexes(&crate::geo::tests::workspace_root()).expect("regexes");
            Enricher {
                geo: Some(default_geo_db()),
                ua: Some(UaParser::load(&path).expect("regexes load")),
            }
        })
    }

    fn request(ip: &str, precision: GeoPrecision) -> EnrichRequest<'static> {
        EnrichRequest {
            ip: Some(ip.parse().unwrap()),
            user_agent: None,
            precision,
        }
    }

    fn properties(value: Value) -> Properties {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn mountain_view() -> Geo {
        Geo {
            country_code: Some("US".to_owned()),
            region: Some("California".to_owned()),
            city: Some("Mountain View".to_owned()),
        }
    }

    #[test]
    fn event_geo_is_limited_by_precision() {
        let cases = [
            (GeoPrecision::Country, json!({"mp_country_code": "US"})),
            (
                GeoPrecision::Region,
                json!({"mp_country_code": "US", "$region": "California"}),
            ),
            (
                GeoPrecision::City,
                json!({"mp_country_code": "US", "$region": "California", "$city": "Mountain View"}),
            ),
        ];
        for (precision, expected) in cases {
            let mut event = Properties::new();
            insert_geo(&mut event, mountain_view(), &EVENT_GEO_KEYS, precision);
            assert_eq!(Value::Object(event), expected, "{precision:?}");
        }
    }

    #[test]
    fn profile_geo_uses_country_code_not_mp_country_code() {
        let mut set = Properties::new();
        insert_geo(
            &mut set,
            mountain_view(),
            &PROFILE_GEO_KEYS,
            GeoPrecision::City,
        );
        assert_eq!(
            Value::Object(set),
            json!({"$country_code": "US", "$region": "California", "$city": "Mountain View"})
        );
        let mut set = Properties::new();
        insert_geo(
            &mut set,
            mountain_view(),
            &PROFILE_GEO_KEYS,
            GeoPrecision::Country,
        );
        assert_eq!(Value::Object(set), json!({"$country_code": "US"}));
    }

    #[test]
    fn real_lookup_at_country_precision_sets_only_the_country() {
        let mut event = Properties::new();
        enricher().enrich_event(&mut event, &request("8.8.8.8", GeoPrecision::Country));
        assert_eq!(Value::Object(event), json!({"mp_country_code": "US"}));

        let mut set = Properties::new();
        enricher().enrich_profile(&mut set, &request("2620:fe::fe", GeoPrecision::Country));
        assert_eq!(Value::Object(set), json!({"$country_code": "US"}));
    }

    #[test]
    fn real_lookup_at_city_precision_follows_the_installed_database() {
        let mut event = Properties::new();
        enricher().enrich_event(&mut event, &request("8.8.8.8", GeoPrecision::City));
        let expected = match enricher().geo.as_ref().unwrap().precision_max() {
            GeoPrecision::City => {
                json!({"mp_country_code": "US", "$region": "California", "$city": "Mountain View"})
            }
            GeoPrecision::Country | GeoPrecision::Region => json!({"mp_country_code": "US"}),
        };
        assert_eq!(Value::Object(event), expected);
    }

    #[test]
    fn private_and_missing_addresses_add_nothing() {
        for ip in ["127.0.0.1", "10.0.0.1", "::1"] {
            let mut event = Properties::new();
            enricher().enrich_event(&mut event, &request(ip, GeoPrecision::City));
            assert!(event.is_empty(), "{ip}: {event:?}");
        }
        let mut event = Properties::new();
        let no_ip = EnrichRequest {
            ip: None,
            user_agent: None,
            precision: GeoPrecision::City,
        };
        enricher().enrich_event(&mut event, &no_ip);
        assert!(event.is_empty());
    }

    #[test]
    fn client_values_are_never_overwritten() {
        let client = json!({
            "mp_country_code": "FR", "$region": null, "$city": "Lyon",
            "$browser_version": "custom", "$referring_domain": "mine.example",
            "$referrer": "https://www.google.com/", "utm_source": "client",
            "$current_url": "https://x.example/?utm_source=url&utm_medium=url",
        });
        let mut event = properties(client.clone());
        let request = EnrichRequest {
            ip: Some("8.8.8.8".parse().unwrap()),
            user_agent: Some("python-requests/2.31.0"),
            precision: GeoPrecision::City,
        };
        enricher().enrich_event(&mut event, &request);
        let mut expected = properties(client);
        expected.insert("$browser".to_owned(), json!("Python Requests"));
        expected.insert("utm_medium".to_owned(), json!("url"));
        assert_eq!(event, expected);

        let mut set =
            properties(json!({"$country_code": "DE", "$city": "Berlin", "$region": "Berlin"}));
        enricher().enrich_profile(&mut set, &request);
        assert_eq!(
            Value::Object(set),
            json!({"$country_code": "DE", "$city": "Berlin", "$region": "Berlin"})
        );
    }

    #[test]
    fn user_agent_fills_server_side_events() {
        let mut event = properties(json!({"mp_lib": "python"}));
        let request = EnrichRequest {
            ip: None,
            user_agent: Some(CHROME_WINDOWS),
            precision: GeoPrecision::Country,
        };
        enricher().enrich_event(&mut event, &request);
        assert_eq!(
            Value::Object(event),
            json!({"mp_lib": "python", "$browser": "Chrome", "$browser_version": 120, "$os": "Windows"})
        );

        let mut event = Properties::new();
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1";
        let request = EnrichRequest {
            ip: None,
            user_agent: Some(safari),
            precision: GeoPrecision::Country,
        };
        enricher().enrich_event(&mut event, &request);
        assert_eq!(
            Value::Object(event),
            json!({"$browser": "Mobile Safari", "$browser_version": 17.1, "$os": "iOS"})
        );
    }

    #[test]
    fn user_agent_is_skipped_when_the_client_described_itself() {
        let request = EnrichRequest {
            ip: None,
            user_agent: Some(CHROME_WINDOWS),
            precision: GeoPrecision::Country,
        };
        for client in [
            json!({"mp_lib": "web"}),
            json!({"$os": "Android"}),
            json!({"$browser": "Opera"}),
        ] {
            let mut event = properties(client.clone());
            enricher().enrich_event(&mut event, &request);
            assert_eq!(Value::Object(event), client);
        }
    }

    #[test]
    fn referrer_and_utm_are_read_from_urls() {
        let mut event = properties(json!({
            "$referrer": "https://www.google.com/search?q=secret",
            "$current_url": "https://shop.example/?utm_source=google&utm_campaign=spring%20sale&email=a@b.c",
        }));
        Enricher::default().enrich_event(&mut event, &request("8.8.8.8", GeoPrecision::City));
        assert_eq!(event["$referring_domain"], json!("www.google.com"));
        assert_eq!(event["utm_source"], json!("google"));
        assert_eq!(event["utm_campaign"], json!("spring sale"));
        assert_eq!(event.len(), 5, "{event:?}");
    }

    #[test]
    fn direct_and_malformed_urls_add_nothing() {
        let odd_values = [
            json!({"$referrer": "$direct", "$current_url": "https://x.example/"}),
            json!({"$referrer": "not a url", "$current_url": "::::??&&==%%"}),
            json!({"$referrer": 42, "$current_url": null}),
            json!({"$referrer": "https://", "$current_url": "https://x.example/?utm_source="}),
        ];
        for client in odd_values {
            let mut event = properties(client.clone());
            Enricher::default().enrich_event(&mut event, &request("8.8.8.8", GeoPrecision::City));
            assert_eq!(Value::Object(event), client);
        }
    }

    #[test]
    fn versions_become_numbers_when_they_are() {
        assert_eq!(version_value("120".to_owned()), json!(120));
        assert_eq!(version_value("17.1".to_owned()), json!(17.1));
        assert_eq!(version_value("beta".to_owned()), json!("beta"));
    }

    #[test]
    fn request_debug_hides_the_address_and_user_agent() {
        let request = EnrichRequest {
            ip: Some("203.0.113.9".parse().unwrap()),
            user_agent: Some("curl/8.5.0"),
            precision: GeoPrecision::Region,
        };
        let debug = format!("{request:?}");
        assert!(
            !debug.contains("203.0.113.9") && !debug.contains("curl"),
            "{debug}"
        );
        assert!(debug.contains("Region"), "{debug}");
    }

    #[test]
    fn enricher_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Enricher>();
    }
}
