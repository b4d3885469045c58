//! Pieces of a request every ingestion handler needs.

use crate::client_ip::client_ip;
use crate::error::ApiError;
use crate::state::Inner;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::header;
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};

/// The raw body, refused above the limit before it is all read. Compressed
/// bodies get a little headroom: their decompressed size is capped later.
pub(crate) async fn read_body(body: Body, body_bytes_max: usize) -> Result<Bytes, ApiError> {
    let transport_max = body_bytes_max + body_bytes_max / 16;
    axum::body::to_bytes(body, transport_max)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(format!("request exceeds max limit of {body_bytes_max} bytes")))
}

/// The request facts that decoding and enrichment need, owned so they can
/// move into a blocking task.
pub(crate) struct RequestFacts {
    pub(crate) query: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) content_encoding: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) client_ip: Option<IpAddr>,
}

impl RequestFacts {
    pub(crate) fn from_parts(parts: &Parts, inner: &Inner) -> RequestFacts {
        let header_text = |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        RequestFacts {
            query: parts.uri.query().map(str::to_owned),
            content_type: header_text(header::CONTENT_TYPE),
            content_encoding: header_text(header::CONTENT_ENCODING),
            user_agent: header_text(header::USER_AGENT),
            client_ip: peer.map(|peer| client_ip(peer, &parts.headers, &inner.config.trusted_proxies)),
        }
    }

    pub(crate) fn raw<'a>(&'a self, body: &'a [u8]) -> mixpanel::RawRequest<'a> {
        mixpanel::RawRequest {
            query: self.query.as_deref(),
            content_type: self.content_type.as_deref(),
            content_encoding: self.content_encoding.as_deref(),
            body,
        }
    }
}

/// The geolocation precision a policy allows; `None` when it allows none.
pub(crate) fn precision(level: privacy::policy::GeoLevel) -> Option<enrich::GeoPrecision> {
    match level {
        privacy::policy::GeoLevel::None => None,
        privacy::policy::GeoLevel::Country => Some(enrich::GeoPrecision::Country),
        privacy::policy::GeoLevel::Region => Some(enrich::GeoPrecision::Region),
        privacy::policy::GeoLevel::City => Some(enrich::GeoPrecision::City),
    }
}

/// The address to geolocate a record by: its own `ip`/`$ip` if given, else
/// the request's when the request allows it.
pub(crate) fn geo_ip(record_ip: &mixpanel::IpProperty, request_ip_allowed: bool, facts: &RequestFacts) -> Option<IpAddr> {
    match record_ip {
        mixpanel::IpProperty::Address(text) => text.trim().parse().ok(),
        mixpanel::IpProperty::Disabled => None,
        mixpanel::IpProperty::Absent => request_ip_allowed.then_some(facts.client_ip).flatten(),
    }
}

pub(crate) fn random_insert_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}
