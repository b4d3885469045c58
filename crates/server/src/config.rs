//! Server settings, built by the `cli` crate from flags, file and environment.

use ipnet::IpNet;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Proxies whose X-Forwarded-For / Forwarded headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    pub limits: mixpanel::Limits,
    /// Rows one profile query returns at most.
    pub profile_page_max: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { trusted_proxies: Vec::new(), limits: mixpanel::Limits::default(), profile_page_max: 1000 }
    }
}
