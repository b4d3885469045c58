//! Server settings, built by the `cli` crate from flags, file and environment.

use ipnet::IpNet;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Proxies whose X-Forwarded-For / Forwarded headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    pub limits: mixpanel::Limits,
    /// Rows one profile query returns at most.
    pub profile_page_max: usize,
    /// Addresses refused on every route, ingestion included.
    pub blocked: Vec<IpNet>,
    /// When not empty, the only addresses the API (reports, exports,
    /// settings) answers; ingestion is not affected.
    pub api_allowed: Vec<IpNet>,
    pub rate_limits: RateLimits,
    /// Served over TLS: responses carry Strict-Transport-Security.
    pub tls: bool,
    /// Rows one credential may export per UTC day (raw export); past it the
    /// export stops, and further ones are refused until midnight.
    pub export_rows_per_day: u64,
    /// Where alerts are delivered (webhook, mail).
    pub alert_delivery: alerting::Delivery,
    /// Where events live.
    pub events_backend: EventsBackend,
}

/// Where the node's flush thread puts events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventsBackend {
    /// This node's Parquet parts: everything works.
    #[default]
    Embedded,
    /// ClickHouse: reports and the raw export go through the events backend
    /// (`Services::reports`); what is not translated yet answers 501.
    ClickHouse,
}

impl EventsBackend {
    /// Refuses a read of events that only the embedded store can answer yet.
    pub(crate) fn require_embedded(self, what: &str) -> Result<(), crate::error::ApiError> {
        match self {
            EventsBackend::Embedded => Ok(()),
            EventsBackend::ClickHouse => Err(crate::error::ApiError::NotImplemented(format!(
                "{what} is not available yet when events are stored in ClickHouse (storage.backend = \"clickhouse\"); ingestion is"
            ))),
        }
    }
}

/// GCRA rate limits (requests per second, and the burst allowed above it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Ingestion requests per client address.
    pub ingest_per_second: u32,
    pub ingest_burst: u32,
    /// API requests per credential (key, secret, session).
    pub api_per_second: u32,
    pub api_burst: u32,
    /// Exports and retrievals per credential, per minute.
    pub exports_per_minute: u32,
    /// Requests per address that carry a credential, before it is checked
    /// (guesses at secrets and keys).
    pub auth_per_second_per_address: u32,
    pub auth_burst: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits { ingest_per_second: 2000, ingest_burst: 4000, api_per_second: 50, api_burst: 200, exports_per_minute: 120, auth_per_second_per_address: 100, auth_burst: 500 }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            trusted_proxies: Vec::new(),
            limits: mixpanel::Limits::default(),
            profile_page_max: 1000,
            blocked: Vec::new(),
            api_allowed: Vec::new(),
            rate_limits: RateLimits::default(),
            tls: false,
            export_rows_per_day: 10_000_000,
            alert_delivery: alerting::Delivery::default(),
            events_backend: EventsBackend::Embedded,
        }
    }
}
