//! What every handler can reach.

use crate::config::ServerConfig;
use enrich::Enricher;
use meta::{Meta, Project};
use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use store::Store;

#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

/// The long-lived parts a server runs on.
pub struct Services {
    pub store: Arc<Store>,
    pub meta: Arc<Meta>,
    pub protector: Arc<protect::Protector>,
    pub audit: Arc<audit::AuditLog>,
    pub access: Arc<access::Access>,
    pub enricher: Arc<Enricher>,
    /// Reports computed by an external event database (ClickHouse) instead
    /// of the engine; profile searches still use the engine.
    pub reports: Option<Arc<dyn query::ReportBackend>>,
}

pub(crate) struct Inner {
    pub(crate) access: Arc<access::Access>,
    pub(crate) audit: Arc<audit::AuditLog>,
    pub(crate) store: Arc<Store>,
    pub(crate) meta: Arc<Meta>,
    pub(crate) enricher: Arc<Enricher>,
    pub(crate) config: ServerConfig,
    pub(crate) metrics: Option<PrometheusHandle>,
    /// Projects by public token; tokens are looked up on every event. An
    /// entry is believed for [`TOKEN_CACHE_TTL`]: a rotated token's overlap
    /// ends within that of its expiry.
    projects_by_token: RwLock<HashMap<String, (Project, std::time::Instant)>>,
    pub(crate) identity: meta::LinkCache,
    pub(crate) engine: query::Engine,
    pub(crate) reports: Option<Arc<dyn query::ReportBackend>>,
    pub(crate) protector: Arc<protect::Protector>,
    pub(crate) limiters: crate::rate_limit::Limiters,
    /// Addresses blocked by containment, with the meta generation they were read at.
    blocked: RwLock<(u64, Vec<ipnet::IpNet>)>,
    pub(crate) alerts: crate::alerts::AlertState,
}

impl AppState {
    pub fn new(services: Services, config: ServerConfig, metrics: Option<PrometheusHandle>) -> AppState {
        let Services { store, meta, protector, audit, access, enricher, reports } = services;
        AppState {
            inner: Arc::new(Inner {
                limiters: crate::rate_limit::Limiters::new(&config.rate_limits, meta.is_shared().then(|| meta.clone())),
                blocked: RwLock::new((u64::MAX, Vec::new())),
                alerts: crate::alerts::AlertState::new(config.alert_delivery.clone()),
                access,
                audit,
                protector,
                engine: query::Engine::new(store.clone(), meta.clone()),
                reports,
                store,
                meta,
                enricher,
                config,
                metrics,
                projects_by_token: RwLock::new(HashMap::new()),
                identity: meta::LinkCache::default(),
            }),
        }
    }
}

impl Inner {
    /// True when `ip` is blocked by the configuration or by containment
    /// (read again whenever the metadata changed, so a block holds on the
    /// next request).
    pub(crate) fn is_blocked(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.config.blocked.iter().any(|net| net.contains(&ip)) {
            return true;
        }
        // Includes commits by other processes (the CLI blocking an address).
        let generation = self.meta.policy_generation();
        {
            let cached = self.blocked.read().unwrap_or_else(|p| p.into_inner());
            if cached.0 == generation {
                return cached.1.iter().any(|net| net.contains(&ip));
            }
        }
        let nets: Vec<ipnet::IpNet> = self.meta.blocked_addresses().unwrap_or_default().iter().filter_map(|text| text.parse().ok()).collect();
        let blocked = nets.iter().any(|net| net.contains(&ip));
        *self.blocked.write().unwrap_or_else(|p| p.into_inner()) = (generation, nets);
        blocked
    }

    /// The project of a public token; blocking (SQLite) on a cache miss.
    pub(crate) fn project_by_token(&self, token: &str) -> Result<Option<Project>, meta::Error> {
        if let Some((project, at)) = self.projects_by_token.read().unwrap_or_else(|p| p.into_inner()).get(token)
            && at.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(Some(project.clone()));
        }
        let found = self.meta.project_by_token(token)?;
        if let Some(project) = &found {
            let mut cache = self.projects_by_token.write().unwrap_or_else(|p| p.into_inner());
            // Tokens are few; the bound only guards against a pathological instance.
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(token.to_owned(), (project.clone(), std::time::Instant::now()));
        }
        Ok(found)
    }
}

const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Token lookups for one request: its events almost always share a token, so
/// the last project found is reused instead of locking and cloning per event.
pub(crate) struct TokenLookup<'a> {
    inner: &'a Inner,
    last: Option<Project>,
}

impl<'a> TokenLookup<'a> {
    pub(crate) fn new(inner: &'a Inner) -> TokenLookup<'a> {
        TokenLookup { inner, last: None }
    }

    /// The project of `token`, if any; blocking (SQLite) on a cache miss.
    pub(crate) fn get(&mut self, token: Option<&str>) -> Result<Option<&Project>, meta::Error> {
        let Some(token) = token else { return Ok(None) };
        if self.last.as_ref().is_none_or(|project| project.token != token) {
            self.last = self.inner.project_by_token(token)?;
        }
        Ok(self.last.as_ref())
    }
}
