//! Members and their login: passkeys (WebAuthn, webauthn-rs) as the only
//! factor, one-time enrolment links, server-side sessions with idle and
//! absolute timeouts, CSRF tokens, and step-up (a fresh passkey assertion)
//! for the operations an attacker with a stolen session wants most.
//!
//! Why passkeys only: a passkey is bound to this origin, so a phishing page
//! on another origin gets nothing it can replay (NIST SP 800-63B-4: manually
//! entered codes are not phishing-resistant). Owners and admins have no
//! other way in: no password, no SMS, no owner bypass. Losing every passkey
//! is recovered by an owner's new enrolment link, which itself only lets the
//! member register a new passkey.
//!
//! Secrets are never stored: enrolment links and session ids are 256 random
//! bits kept as SHA-256; CSRF tokens likewise; a member's email is a keyed
//! hash (for lookup) and a ciphertext under its own key (for display).

mod ceremonies;
mod error;
mod members;
mod password;
mod sessions;

pub use error::AccessError;
pub use members::Invitation;
pub use sessions::{NewSession, SessionView, STEP_UP_MS};

use ceremonies::Ceremonies;
use keys::KeyStore;
use meta::Meta;
use std::sync::Arc;
use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

/// How members reach the server.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// The origin browsers use (`https://analytics.example.com`, or
    /// `http://localhost:8080` locally): WebAuthn binds passkeys to its host.
    pub origin: Url,
    /// How long an enrolment link works.
    pub enrolment_ms: i64,
}

impl AccessConfig {
    pub fn new(origin: &str) -> Result<AccessConfig, AccessError> {
        let origin = Url::parse(origin).map_err(|e| AccessError::Config(format!("origin {origin:?}: {e}")))?;
        if origin.host_str().is_none_or(|h| h.parse::<std::net::IpAddr>().is_ok()) {
            return Err(AccessError::Config(format!("origin {origin} must name a host (passkeys cannot be bound to an IP address): use http://localhost:PORT locally")));
        }
        Ok(AccessConfig { origin, enrolment_ms: 3_600_000 })
    }

    /// Cookies are marked Secure whenever the origin is HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.origin.scheme() == "https"
    }
}

/// The access service: one per server.
pub struct Access {
    meta: Arc<Meta>,
    keys: Arc<KeyStore>,
    webauthn: Webauthn,
    ceremonies: Ceremonies,
    config: AccessConfig,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("origin", &self.config.origin.as_str()).finish_non_exhaustive()
    }
}

impl Access {
    pub fn new(meta: Arc<Meta>, keys: Arc<KeyStore>, config: AccessConfig) -> Result<Access, AccessError> {
        let rp_id = config.origin.host_str().unwrap_or("localhost").to_owned();
        let webauthn = WebauthnBuilder::new(&rp_id, &config.origin)
            .map_err(|e| AccessError::Config(format!("WebAuthn relying party {rp_id}: {e}")))?
            .rp_name("Hearth")
            .allow_any_port(config.origin.host_str() == Some("localhost"))
            .build()
            .map_err(|e| AccessError::Config(e.to_string()))?;
        let ceremonies = Ceremonies::new(&meta);
        Ok(Access { meta, keys, webauthn, ceremonies, config })
    }

    pub fn config(&self) -> &AccessConfig {
        &self.config
    }

    pub fn meta(&self) -> &Arc<Meta> {
        &self.meta
    }
}
