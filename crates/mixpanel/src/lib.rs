//! Decoding and validation of Mixpanel ingestion requests, so that the
//! official SDKs can talk to Hearth unchanged.
//!
//! The SDKs disagree on almost everything (see the wire reference,
//! `mixpanel-wire.md`, section 1.1): the browser posts a form whose
//! `data` is base64 JSON, sometimes as `text/plain` from `sendBeacon`; Python
//! posts `data=<raw JSON>` with its flags in the form body; Node sends a GET
//! with everything in the query; Swift posts a raw, maybe gzipped, JSON array;
//! `/import` clients post JSON or NDJSON. This crate accepts all of them and
//! turns each record into the shared vocabulary of the `events` crate.
//!
//! The flow, one step per module:
//! 1. [`decode_request`] (`decode`, with `body`, `params` and `payload`)
//!    turns a [`RawRequest`] into [`Params`] and a list of JSON records. It
//!    fails only when the request as a whole is unusable ([`DecodeError`]).
//! 2. [`validate_event`], [`validate_profile_update`] and
//!    [`validate_group_update`] (`event`, `profile`, `group`, sharing
//!    `record`, `update` and `limits`) check one record each, so that one bad
//!    record never sinks the valid ones sent with it.
//! 3. The `reply` module renders the answers the SDKs expect ([`Reply`]).
//!
//! Beside the flow, [`Filter`] parses and evaluates the `where` expressions
//! of Mixpanel's export API.
//!
//! Architecture invariant: this crate does no IO and knows no HTTP types. It
//! takes bytes and strings and returns plain data; the `server` crate maps
//! them to axum. Nothing here panics on client input, and error messages
//! never echo payload content.

#![warn(missing_docs)]

mod body;
mod decode;
mod filter;
mod error;
mod event;
mod group;
mod limits;
mod params;
mod payload;
mod profile;
mod record;
mod reply;
mod update;

pub use decode::{Decoded, RawRequest, decode_request};
pub use error::DecodeError;
pub use filter::{Comparison, Filter, FilterError};
pub use event::{EventInput, Mode, RecordOutcome, validate_event};
pub use group::{GroupInput, validate_group_update};
pub use limits::Limits;
pub use params::Params;
pub use profile::{ProfileInput, validate_profile_update};
pub use record::{IpProperty, RecordError};
pub use reply::{Reply, error_reply, image_reply, import_reply_strict, track_reply, with_callback};

/// The ingestion endpoints the SDKs call. Decoding is the same for all of
/// them; the endpoint decides which validator the server runs on each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/track`: events, authenticated by the token inside each event.
    Track,
    /// `/engage`: user profile updates.
    Engage,
    /// `/groups`: group profile updates.
    Groups,
    /// `/import`: historical events, authenticated by HTTP Basic.
    Import,
}

impl Endpoint {
    /// The endpoint for a request path. The browser SDK appends a trailing
    /// slash (`/track/`), the server SDKs do not; both are accepted.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        let name = path.strip_suffix('/').unwrap_or(path);
        match name {
            "/track" => Some(Endpoint::Track),
            "/engage" => Some(Endpoint::Engage),
            "/groups" => Some(Endpoint::Groups),
            "/import" => Some(Endpoint::Import),
            _ => None,
        }
    }

    /// The canonical path, without the trailing slash.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Track => "/track",
            Endpoint::Engage => "/engage",
            Endpoint::Groups => "/groups",
            Endpoint::Import => "/import",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_accept_paths_with_and_without_trailing_slash() {
        for endpoint in [
            Endpoint::Track,
            Endpoint::Engage,
            Endpoint::Groups,
            Endpoint::Import,
        ] {
            let path = endpoint.path();
            assert_eq!(Endpoint::from_path(path), Some(endpoint));
            assert_eq!(Endpoint::from_path(&format!("{path}/")), Some(endpoint));
        }
        assert_eq!(Endpoint::from_path("/decide"), None);
        assert_eq!(Endpoint::from_path("/track//"), None);
        assert_eq!(Endpoint::from_path(""), None);
    }
}
