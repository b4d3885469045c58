//! The client's address, for geolocation only: it is never stored or logged.
//!
//! Forwarding headers are believed only when the direct peer is a configured
//! trusted proxy; then the address is the right-most entry of
//! X-Forwarded-For (or `Forwarded: for=`) that is not itself a trusted proxy,
//! since anything left of that could have been written by the client.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("forwarded") {
        let Ok(text) = value.to_str() else { continue };
        for element in text.split(',') {
            for pair in element.split(';') {
                let Some((key, value)) = pair.trim().split_once('=') else { continue };
                if key.trim().eq_ignore_ascii_case("for") {
                    chain.extend(parse_node(value));
                }
            }
        }
    }
    if chain.is_empty() {
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else { continue };
            chain.extend(text.split(',').filter_map(parse_node));
        }
    }
    chain.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer)
}

/// An address from a header entry: `1.2.3.4`, `1.2.3.4:80`, `"[::1]:80"`, `::1`.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let text = raw.trim().trim_matches('"');
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    text.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_static(value));
        map
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let trusted = vec!["127.0.0.0/8".parse().unwrap()];
        let xff = headers("x-forwarded-for", "6.6.6.6, 8.8.8.8");
        assert_eq!(client_ip(proxy, &xff, &trusted), "8.8.8.8".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(proxy, &xff, &[]), proxy);
        let stranger: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(client_ip(stranger, &xff, &trusted), stranger);
        let forwarded = headers("forwarded", "for=\"[2001:db8::1]:4711\";proto=https");
        assert_eq!(client_ip(proxy, &forwarded, &trusted), "2001:db8::1".parse::<IpAddr>().unwrap());
        let only_proxies = headers("x-forwarded-for", "127.0.0.2, garbage");
        assert_eq!(client_ip(proxy, &only_proxies, &trusted), proxy);
    }
}
