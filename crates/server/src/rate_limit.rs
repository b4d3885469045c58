//! Rate limits (GCRA, the `governor` crate): per client address for
//! ingestion and for requests carrying credentials, per credential for the
//! API and, tighter, for exports. A refused request gets 429 with
//! Retry-After, in Mixpanel's error shape.
//!
//! Where nodes share their metadata in PostgreSQL, the limits that guard
//! against guessing and bulk reading (sign-ins per account, exports per
//! credential) are counted there, by every node together
//! (`meta::Meta::take_shared_quota`); the others stay per node.

use crate::config::RateLimits;
use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

pub(crate) struct Limiters {
    ingest: DefaultKeyedRateLimiter<IpAddr>,
    auth: DefaultKeyedRateLimiter<IpAddr>,
    api: DefaultKeyedRateLimiter<String>,
    exports: DefaultKeyedRateLimiter<String>,
    login_account: DefaultKeyedRateLimiter<String>,
    /// The shared metadata, when nodes share it.
    shared: Option<std::sync::Arc<meta::Meta>>,
    exports_per_minute: u32,
}

/// Sign-in attempts per account: 10 a minute, 20 at once.
const LOGINS_PER_MINUTE: u32 = 10;
const LOGIN_BURST: u32 = 20;

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("at least 1")
}

impl Limiters {
    pub(crate) fn new(limits: &RateLimits, shared: Option<std::sync::Arc<meta::Meta>>) -> Limiters {
        Limiters {
            ingest: RateLimiter::keyed(Quota::per_second(non_zero(limits.ingest_per_second)).allow_burst(non_zero(limits.ingest_burst))),
            auth: RateLimiter::keyed(Quota::per_second(non_zero(limits.auth_per_second_per_address)).allow_burst(non_zero(limits.auth_burst))),
            api: RateLimiter::keyed(Quota::per_second(non_zero(limits.api_per_second)).allow_burst(non_zero(limits.api_burst))),
            exports: RateLimiter::keyed(Quota::per_minute(non_zero(limits.exports_per_minute)).allow_burst(non_zero(limits.exports_per_minute))),
            login_account: RateLimiter::keyed(Quota::per_minute(non_zero(LOGINS_PER_MINUTE)).allow_burst(non_zero(LOGIN_BURST))),
            shared,
            exports_per_minute: limits.exports_per_minute.max(1),
        }
    }

    fn check<K: std::hash::Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K, what: &str) -> Result<(), ApiError> {
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("hearth_rate_limited_total", "limit" => what.to_owned()).increment(1);
            ApiError::RateLimited { retry_after_seconds: wait.as_secs().max(1) }
        })?;
        // Keys of long-gone clients are dropped now and then.
        if limiter.len() > 100_000 {
            limiter.retain_recent();
        }
        Ok(())
    }

    pub(crate) fn ingest(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        address.map_or(Ok(()), |ip| Self::check(&self.ingest, &ip, "ingest"))
    }

    pub(crate) fn auth_attempt(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        address.map_or(Ok(()), |ip| Self::check(&self.auth, &ip, "auth"))
    }

    pub(crate) fn api(&self, credential: &str) -> Result<(), ApiError> {
        Self::check(&self.api, &credential.to_owned(), "api")
    }

    /// `account`: the email's keyed token.
    pub(crate) fn login_account(&self, account: &str) -> Result<(), ApiError> {
        match &self.shared {
            Some(meta) => Self::check_shared(meta, &format!("login:{account}"), 60_000 / i64::from(LOGINS_PER_MINUTE), LOGIN_BURST, "login_account"),
            None => Self::check(&self.login_account, &account.to_owned(), "login_account"),
        }
    }

    pub(crate) fn export(&self, credential: &str) -> Result<(), ApiError> {
        match &self.shared {
            Some(meta) => Self::check_shared(meta, &format!("export:{credential}"), 60_000 / i64::from(self.exports_per_minute), self.exports_per_minute, "export"),
            None => Self::check(&self.exports, &credential.to_owned(), "export"),
        }
    }

    fn check_shared(meta: &meta::Meta, key: &str, interval_ms: i64, burst: u32, what: &str) -> Result<(), ApiError> {
        match meta.take_shared_quota(key, interval_ms.max(1), burst, events::now_ms()).map_err(|e| ApiError::Internal(format!("a shared rate limit: {e}")))? {
            None => Ok(()),
            Some(retry_after_seconds) => {
                metrics::counter!("hearth_rate_limited_total", "limit" => what.to_owned()).increment(1);
                Err(ApiError::RateLimited { retry_after_seconds })
            }
        }
    }
}
