//! Webhook signatures, as Stripe and GitHub sign theirs: an HMAC-SHA256 of
//! the timestamp and the exact body under a shared secret, so a receiver
//! can check the alert came from this server and is not a replay.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying `v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub const SIGNATURE_HEADER: &str = "x-hearth-signature";
/// The header carrying the signing time, seconds since 1970.
pub const TIMESTAMP_HEADER: &str = "x-hearth-timestamp";

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("v1={}", hex::encode(mac(secret, timestamp, body).finalize().into_bytes()))
}

/// Checks a signature header in constant time.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(hex_part) = header.strip_prefix("v1=") else { return false };
    let Ok(expected) = hex::decode(hex_part) else { return false };
    mac(secret, timestamp, body).verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_time_and_secret() {
        let header = sign(b"secret", 1_700_000_000, b"{\"rule\":\"canary\"}");
        assert!(header.starts_with("v1=") && header.len() == 3 + 64);
        assert!(verify(b"secret", 1_700_000_000, b"{\"rule\":\"canary\"}", &header));
        assert!(!verify(b"secret", 1_700_000_001, b"{\"rule\":\"canary\"}", &header));
        assert!(!verify(b"secret", 1_700_000_000, b"{\"rule\":\"canarY\"}", &header));
        assert!(!verify(b"other", 1_700_000_000, b"{\"rule\":\"canary\"}", &header));
        assert!(!verify(b"secret", 1_700_000_000, b"{}", "v2=00"));
    }
}
