//! Rate limits (GCRA, the `governor` crate): per client address for
//! ingestion and for requests carrying credentials, per credential for the
//! API and, tighter, for exports. A refused request gets 429 with
//! Retry-After, in Mixpanel's error shape.

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
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("at least 1")
}

impl Limiters {
    pub(crate) fn new(limits: &RateLimits) -> Limiters {
        Limiters {
            ingest: RateLimiter::keyed(Quota::per_second(non_zero(limits.ingest_per_second)).allow_burst(non_zero(limits.ingest_burst))),
            auth: RateLimiter::keyed(Quota::per_second(non_zero(limits.auth_per_second_per_address)).allow_burst(non_zero(limits.auth_burst))),
            api: RateLimiter::keyed(Quota::per_second(non_zero(limits.api_per_second)).allow_burst(non_zero(limits.api_burst))),
            exports: RateLimiter::keyed(Quota::per_minute(non_zero(limits.exports_per_minute)).allow_burst(non_zero(limits.exports_per_minute))),
            // Sign-in attempts per account: 10 a minute, 20 at once.
            login_account: RateLimiter::keyed(Quota::per_minute(non_zero(10)).allow_burst(non_zero(20))),
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

    pub(crate) fn login_account(&self, account: &str) -> Result<(), ApiError> {
        Self::check(&self.login_account, &account.to_owned(), "login_account")
    }

    pub(crate) fn export(&self, credential: &str) -> Result<(), ApiError> {
        Self::check(&self.exports, &credential.to_owned(), "export")
    }
}
