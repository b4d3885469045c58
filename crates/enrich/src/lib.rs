//! Server-side enrichment at ingest: the place of the sender's IP address,
//! the browser and OS of its User-Agent header, and the referrer host and
//! campaign parameters of the URLs the client sent.
//!
//! The flow: at start-up the server opens a [`GeoDb`] (`.mmdb` files, see
//! `docs/geo-data.md`) and a [`UaParser`] (uap-core's `regexes.yaml`) and
//! puts them in one shared [`Enricher`]. For each event it calls
//! [`Enricher::enrich_event`], for each `$set`/`$set_once` profile update
//! [`Enricher::enrich_profile`], with an [`EnrichRequest`] holding the
//! address, the header and the project's [`GeoPrecision`]. Enrichment adds
//! properties the client left out and never overwrites one it set.
//!
//! Privacy invariants (Hearth is a privacy product; these are the contract):
//! - The IP address is used for one lookup and dropped: never logged, stored
//!   or returned, and no error or `Debug` output of this crate contains one.
//!   Only what [`GeoPrecision`] allows leaves the lookup: by default, the
//!   country.
//! - The raw User-Agent header is not kept: only the parsed browser, version
//!   and OS go into the event. The parse cache holds recent headers in
//!   memory, bounded, and is never logged, printed or written.
//! - URLs are only parsed: the referrer's host and the `utm_*` values are
//!   kept, nothing else of the URL (no path, no query string, no
//!   credentials).
//! - Errors name files, never addresses or header values.
//!
//! Architecture invariant: the only IO is reading the data files in
//! [`GeoDb::open`] and [`UaParser::load`], once, at start-up. Enrichment
//! itself cannot fail: an unknown address or header adds nothing.

#![warn(missing_docs)]

mod enricher;
mod geo;
mod url;
mod user_agent;

pub use enricher::{EnrichRequest, Enricher};
pub use geo::{Geo, GeoDb, GeoPrecision};
pub use user_agent::{UaParser, UserAgent};

use std::path::PathBuf;

/// Why a data file could not be loaded. Messages are lowercase, name the
/// file, and never contain an IP address or a user agent.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// [`GeoDb::open`] was given no file.
    #[error("no geo database files given")]
    NoGeoFiles,
    /// A geo database is missing, unreadable or not in MaxMind DB format.
    #[error("cannot open geo database {path}: {source}")]
    GeoOpen {
        /// The file.
        path: PathBuf,
        /// What `maxminddb` reported.
        source: maxminddb::MaxMindDbError,
    },
    /// A geo database declares an IP version other than 4 or 6.
    #[error("geo database {path} has unsupported ip version {ip_version}")]
    GeoIpVersion {
        /// The file.
        path: PathBuf,
        /// From the file's metadata.
        ip_version: u16,
    },
    /// The user-agent regexes file is missing or unreadable.
    #[error("cannot read user-agent regexes {path}: {source}")]
    UaRead {
        /// The file.
        path: PathBuf,
        /// The io error.
        source: std::io::Error,
    },
    /// The user-agent regexes file is not uap-core's YAML.
    #[error("cannot parse user-agent regexes {path}: {source}")]
    UaParse {
        /// The file.
        path: PathBuf,
        /// What the YAML parser reported.
        source: serde_yaml::Error,
    },
    /// A regex in the file does not compile.
    #[error("cannot compile user-agent regexes {path}: {source}")]
    UaCompile {
        /// The file.
        path: PathBuf,
        /// What `ua-parser` reported.
        source: ua_parser::Error,
    },
}
