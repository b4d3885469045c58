//! Configuration: defaults, then a TOML file, then `HEARTH_*` environment
//! variables, then flags, each overriding the one before.
//!
//! Every key of the file has an environment twin: `listen` is
//! `HEARTH_LISTEN`, `store.flush_rows` is `HEARTH_STORE__FLUSH_ROWS` (a double
//! underscore between section and key). Lists take commas. Unknown keys in
//! the file are an error that names them; unknown variables are ignored.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) data: PathBuf,
    pub(crate) listen: String,
    pub(crate) trusted_proxies: Vec<String>,
    /// A tracing filter, e.g. "info" or "hearth=debug".
    pub(crate) log: String,
    /// "text" or "json".
    pub(crate) log_format: String,
    pub(crate) store: StoreSection,
    pub(crate) storage: StorageSection,
    pub(crate) metadata: MetadataSection,
    pub(crate) geo: GeoSection,
    pub(crate) limits: LimitsSection,
    pub(crate) keys: KeysSection,
    pub(crate) audit: AuditSection,
    pub(crate) network: NetworkSection,
    pub(crate) auth: AuthSection,
    pub(crate) tls: TlsSection,
    pub(crate) exports: ExportsSection,
    pub(crate) rate_limits: RateLimitsSection,
    pub(crate) alerts: AlertsSection,
}

/// Where alerts are delivered. Secrets (the webhook's signing secret, the
/// SMTP password) are best given by environment
/// (`HEARTH_ALERTS__WEBHOOK_SECRET`, `HEARTH_ALERTS__SMTP_PASSWORD`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AlertsSection {
    /// An https:// (or http:// on a private network) URL that receives
    /// each alert as signed JSON; empty: no webhook.
    pub(crate) webhook_url: String,
    pub(crate) webhook_secret: String,
    /// SMTP relay; empty: no mail.
    pub(crate) smtp_host: String,
    pub(crate) smtp_port: u16,
    /// "starttls" (default), "tls", or "none" (a relay on localhost only).
    pub(crate) smtp_security: String,
    pub(crate) smtp_username: String,
    pub(crate) smtp_password: String,
    pub(crate) email_from: String,
    pub(crate) email_to: Vec<String>,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            webhook_url: String::new(),
            webhook_secret: String::new(),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_security: "starttls".to_owned(),
            smtp_username: String::new(),
            smtp_password: String::new(),
            email_from: String::new(),
            email_to: Vec::new(),
        }
    }
}

impl AlertsSection {
    /// The delivery settings, checked.
    pub(crate) fn delivery(&self) -> anyhow::Result<alerting::Delivery> {
        let webhook = if self.webhook_url.is_empty() {
            None
        } else {
            if !(self.webhook_url.starts_with("https://") || self.webhook_url.starts_with("http://")) {
                bail!("alerts.webhook_url must be an http(s) URL, got {:?}", self.webhook_url);
            }
            if self.webhook_secret.len() < 16 {
                bail!("alerts.webhook_secret must be at least 16 characters (receivers check the signature with it)");
            }
            Some(alerting::WebhookSettings { url: self.webhook_url.clone(), secret: self.webhook_secret.clone() })
        };
        let smtp = if self.smtp_host.is_empty() {
            None
        } else {
            let security = match self.smtp_security.as_str() {
                "starttls" => alerting::SmtpSecurity::StartTls,
                "tls" => alerting::SmtpSecurity::Tls,
                "none" => alerting::SmtpSecurity::None,
                other => bail!("alerts.smtp_security must be starttls, tls or none, got {other:?}"),
            };
            if self.email_from.is_empty() || self.email_to.is_empty() {
                bail!("alerts.email_from and alerts.email_to are needed to mail alerts");
            }
            let optional = |text: &str| (!text.is_empty()).then(|| text.to_owned());
            Some(alerting::SmtpSettings {
                host: self.smtp_host.clone(),
                port: self.smtp_port,
                security,
                username: optional(&self.smtp_username),
                password: optional(&self.smtp_password),
                from: self.email_from.clone(),
                to: self.email_to.clone(),
            })
        };
        Ok(alerting::Delivery { webhook, smtp })
    }
}

/// Export guardrails.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ExportsSection {
    /// Rows one credential may export through the API per UTC day.
    pub(crate) rows_per_day_per_credential: u64,
}

impl Default for ExportsSection {
    fn default() -> Self {
        ExportsSection { rows_per_day_per_credential: server::ServerConfig::default().export_rows_per_day }
    }
}

/// HTTPS with rustls: both files set, or neither (plain HTTP, e.g. behind a
/// proxy that terminates TLS).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TlsSection {
    /// PEM certificate chain.
    pub(crate) certificate: String,
    /// PEM private key.
    pub(crate) key: String,
}

/// Members' sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AuthSection {
    /// The origin browsers use; passkeys are bound to its host, and
    /// cookies are Secure when it is https.
    pub(crate) origin: String,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection { origin: "http://localhost:8080".to_owned() }
    }
}

/// Address rules (CIDRs or single addresses).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct NetworkSection {
    /// Refused everywhere, ingestion included.
    pub(crate) blocked: Vec<String>,
    /// When not empty, the only addresses the API answers (ingestion is open).
    pub(crate) api_allowed: Vec<String>,
}

/// GCRA rate limits; 429 with Retry-After beyond them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RateLimitsSection {
    pub(crate) ingest_per_second: u32,
    pub(crate) ingest_burst: u32,
    pub(crate) api_per_second: u32,
    pub(crate) api_burst: u32,
    pub(crate) exports_per_minute: u32,
    pub(crate) auth_per_second_per_address: u32,
    pub(crate) auth_burst: u32,
}

impl Default for RateLimitsSection {
    fn default() -> Self {
        let d = server::RateLimits::default();
        RateLimitsSection {
            ingest_per_second: d.ingest_per_second,
            ingest_burst: d.ingest_burst,
            api_per_second: d.api_per_second,
            api_burst: d.api_burst,
            exports_per_minute: d.exports_per_minute,
            auth_per_second_per_address: d.auth_per_second_per_address,
            auth_burst: d.auth_burst,
        }
    }
}

impl RateLimitsSection {
    pub(crate) fn to_server(&self) -> server::RateLimits {
        server::RateLimits {
            ingest_per_second: self.ingest_per_second,
            ingest_burst: self.ingest_burst,
            api_per_second: self.api_per_second,
            api_burst: self.api_burst,
            exports_per_minute: self.exports_per_minute,
            auth_per_second_per_address: self.auth_per_second_per_address,
            auth_burst: self.auth_burst,
        }
    }
}

/// Where audit entries go besides `audit.sqlite` in the data directory.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AuditSection {
    /// A JSONL file every entry is also appended to (outside the data
    /// directory: on another disk, or a file a log shipper or syslog reads).
    pub(crate) sink: String,
    /// Every entry also goes to syslog (RFC 5424, facility authpriv):
    /// `unix:/dev/log` or `udp:HOST:PORT`. Empty: off.
    pub(crate) syslog: String,
}

/// Where the key store and the master key live: outside the data directory
/// (the server refuses otherwise). `HEARTH_MASTER_KEY` (the key itself, base64
/// or hex) overrides the file.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct KeysSection {
    /// Empty: beside the data directory (`hearth-data` -> `hearth-keys`).
    pub(crate) dir: String,
    /// Empty: `master.key` in the key directory.
    pub(crate) master_key_file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StoreSection {
    pub(crate) flush_rows: usize,
    pub(crate) flush_interval_ms: u64,
    pub(crate) compact_min_parts: usize,
    pub(crate) property_columns_max: usize,
    pub(crate) queue_batches_max: usize,
    pub(crate) settle_after_ms: u64,
}

/// Where events live: `embedded` (the default: this node's WAL and Parquet
/// parts) or `clickhouse` (this node's WAL, then ClickHouse; see the
/// `clickhouse-store` crate). The password is best given by environment:
/// `HEARTH_STORAGE__CLICKHOUSE_PASSWORD`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StorageSection {
    pub(crate) backend: String,
    pub(crate) clickhouse_url: String,
    pub(crate) clickhouse_database: String,
    pub(crate) clickhouse_user: String,
    pub(crate) clickhouse_password: String,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            backend: "embedded".to_owned(),
            clickhouse_url: "http://127.0.0.1:8123".to_owned(),
            clickhouse_database: "hearth".to_owned(),
            clickhouse_user: "default".to_owned(),
            clickhouse_password: String::new(),
        }
    }
}

impl StorageSection {
    /// The ClickHouse settings when events live there; None for the embedded store.
    pub(crate) fn clickhouse(&self) -> anyhow::Result<Option<clickhouse_store::ClickHouseConfig>> {
        match self.backend.as_str() {
            "embedded" => Ok(None),
            "clickhouse" => {
                let database = &self.clickhouse_database;
                if database.is_empty() || !database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    bail!("storage.clickhouse_database must be letters, digits and underscores, got {database:?}");
                }
                Ok(Some(clickhouse_store::ClickHouseConfig {
                    url: self.clickhouse_url.clone(),
                    database: database.clone(),
                    user: self.clickhouse_user.clone(),
                    password: self.clickhouse_password.clone(),
                }))
            }
            other => bail!("storage.backend must be \"embedded\" or \"clickhouse\", got {other:?}"),
        }
    }
}

/// Where metadata lives (projects, accounts, sessions, keys, profiles,
/// identity links, cohorts, dashboards, the audit log and the key store):
/// `"sqlite"` files in the data and key directories (the default), or a
/// `"postgres"` database that every node shares. The password is best given
/// by environment: `HEARTH_METADATA__POSTGRES_PASSWORD`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct MetadataSection {
    pub(crate) backend: String,
    /// `postgresql://user@host:port/database`.
    pub(crate) postgres_url: String,
    pub(crate) postgres_password: String,
    /// PEM file of the CA that signed the server's certificate, for a URL
    /// with `sslmode=require` (empty: the public web roots).
    pub(crate) postgres_ca_file: String,
}

impl Default for MetadataSection {
    fn default() -> Self {
        MetadataSection {
            backend: "sqlite".to_owned(),
            postgres_url: "postgresql://hearth@127.0.0.1:5432/hearth".to_owned(),
            postgres_password: String::new(),
            postgres_ca_file: String::new(),
        }
    }
}

impl MetadataSection {
    /// The shared database when metadata lives in PostgreSQL; None for SQLite.
    pub(crate) fn postgres(&self) -> anyhow::Result<Option<meta::PostgresTarget>> {
        match self.backend.as_str() {
            "sqlite" => Ok(None),
            "postgres" => {
                if !self.postgres_url.starts_with("postgresql://") && !self.postgres_url.starts_with("postgres://") {
                    bail!("metadata.postgres_url must be a postgresql:// URL, got {:?}", self.postgres_url);
                }
                let password = (!self.postgres_password.is_empty()).then(|| self.postgres_password.clone());
                let target = meta::PostgresTarget {
                    url: self.postgres_url.clone(),
                    password,
                    ca_file: (!self.postgres_ca_file.is_empty()).then(|| PathBuf::from(&self.postgres_ca_file)),
                };
                if target.ca_file.is_some() && !target.encrypted()? {
                    bail!("metadata.postgres_ca_file is set but metadata.postgres_url does not ask for TLS: add ?sslmode=require (or verify-full)");
                }
                Ok(Some(target))
            }
            other => bail!("metadata.backend must be \"sqlite\" or \"postgres\", got {other:?}"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
pub(crate) struct GeoSection {
    /// MaxMind-format files; empty: the ones scripts/install-geo.sh put in ./geo.
    pub(crate) files: Vec<PathBuf>,
    /// uap-core's regexes.yaml; empty: Debian's package, or ./geo.
    pub(crate) ua_regexes: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LimitsSection {
    pub(crate) body_bytes_max: usize,
    pub(crate) records_max: usize,
    pub(crate) record_bytes_max: usize,
    pub(crate) properties_max: usize,
    pub(crate) string_chars_max: usize,
    pub(crate) nesting_depth_max: usize,
    pub(crate) collection_len_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("hearth-data"),
            listen: "127.0.0.1:8080".to_owned(),
            trusted_proxies: Vec::new(),
            log: "info".to_owned(),
            log_format: "text".to_owned(),
            store: StoreSection::default(),
            storage: StorageSection::default(),
            metadata: MetadataSection::default(),
            geo: GeoSection::default(),
            limits: LimitsSection::default(),
            keys: KeysSection::default(),
            audit: AuditSection::default(),
            network: NetworkSection::default(),
            auth: AuthSection::default(),
            tls: TlsSection::default(),
            exports: ExportsSection::default(),
            rate_limits: RateLimitsSection::default(),
            alerts: AlertsSection::default(),
        }
    }
}

impl Default for StoreSection {
    fn default() -> Self {
        let defaults = store::StoreConfig::default();
        StoreSection {
            flush_rows: defaults.flush_rows,
            flush_interval_ms: defaults.flush_interval_ms,
            compact_min_parts: defaults.compact_min_parts,
            property_columns_max: defaults.property_columns_max,
            queue_batches_max: defaults.queue_batches_max,
            settle_after_ms: defaults.settle_after_ms,
        }
    }
}


impl Default for LimitsSection {
    fn default() -> Self {
        let limits = mixpanel::Limits::default();
        LimitsSection {
            body_bytes_max: limits.body_bytes_max,
            records_max: limits.records_max,
            record_bytes_max: limits.record_bytes_max,
            properties_max: limits.properties_max,
            string_chars_max: limits.string_chars_max,
            nesting_depth_max: limits.nesting_depth_max,
            collection_len_max: limits.collection_len_max,
        }
    }
}

impl Config {
    /// Defaults, the file (explicit, or ./hearth.toml if present), then the environment.
    pub(crate) fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut merged = Value::try_from(Config::default()).context("serialising the default configuration")?;
        let file = file.map(Path::to_path_buf).or_else(|| Some(PathBuf::from("hearth.toml")).filter(|p| p.exists()));
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading the configuration file {}", path.display()))?;
            let table: Value = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            merge(&mut merged, table);
        }
        let defaults = merged.clone();
        for (name, value) in std::env::vars() {
            if let Some(rest) = name.strip_prefix("HEARTH_") {
                apply_env(&mut merged, &defaults, rest, &value).with_context(|| format!("environment variable {name}"))?;
            }
        }
        let config: Config = merged.try_into().context("invalid configuration")?;
        Ok(config)
    }

    pub(crate) fn store_config(&self) -> store::StoreConfig {
        store::StoreConfig {
            flush_rows: self.store.flush_rows,
            flush_interval_ms: self.store.flush_interval_ms,
            compact_min_parts: self.store.compact_min_parts,
            property_columns_max: self.store.property_columns_max,
            queue_batches_max: self.store.queue_batches_max,
            settle_after_ms: self.store.settle_after_ms,
            sink: None,
            sink_gate: None,
            wal_dependent: None,
        }
    }

    /// The store's settings for a command that ingests: with the ClickHouse
    /// backend, sealed buffers go there, its schema migrated first. A wrong
    /// password or database stops the command at once. ClickHouse not
    /// answering stops a CLI command too; a server (`Unreachable::Tolerate`)
    /// starts anyway, acknowledging from its WAL, and keeps trying to migrate
    /// in the background, its inserts retried until ClickHouse is back.
    ///
    /// Rows bound for ClickHouse pass the protector's erasure gate first
    /// ([`protect::Protector::sink_gate`]).
    pub(crate) fn ingest_store_config(&self, unreachable: Unreachable, protector: &std::sync::Arc<protect::Protector>) -> anyhow::Result<store::StoreConfig> {
        let mut config = self.store_config();
        if let Some(clickhouse) = self.storage.clickhouse()? {
            let client = clickhouse_store::Client::new(&clickhouse)?;
            match clickhouse_store::schema::migrate(&client) {
                Ok(applied) => log_applied(&applied, &clickhouse),
                Err(clickhouse_store::ClickHouseError::Unreachable { url, detail }) if unreachable == Unreachable::Tolerate => {
                    tracing::error!(%url, %detail, "ClickHouse does not answer; serving from the WAL and retrying every 5 s");
                    migrate_in_background(client.clone(), clickhouse.clone());
                }
                Err(error) => return Err(anyhow::Error::new(error).context(migrate_context(&clickhouse))),
            }
            config.sink = Some(std::sync::Arc::new(clickhouse_store::ClickHouseSink::new(client)));
            config.sink_gate = Some(protector.sink_gate());
        }
        Ok(config)
    }

    pub(crate) fn limits(&self) -> mixpanel::Limits {
        let l = &self.limits;
        mixpanel::Limits {
            body_bytes_max: l.body_bytes_max,
            records_max: l.records_max,
            record_bytes_max: l.record_bytes_max,
            properties_max: l.properties_max,
            string_chars_max: l.string_chars_max,
            nesting_depth_max: l.nesting_depth_max,
            collection_len_max: l.collection_len_max,
        }
    }
}

fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Table(base), Value::Table(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_table() && value.is_table() => merge(existing, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Sets `SECTION__KEY` (lowercased) when such a key exists, parsed as the
/// type the key has.
fn apply_env(merged: &mut Value, defaults: &Value, name: &str, text: &str) -> anyhow::Result<()> {
    let path: Vec<String> = name.split("__").map(str::to_ascii_lowercase).collect();
    let Some(template) = lookup(defaults, &path) else { return Ok(()) };
    let value = match template {
        Value::String(_) => Value::String(text.to_owned()),
        Value::Integer(_) => Value::Integer(text.trim().parse().with_context(|| format!("{text:?} is not an integer"))?),
        Value::Boolean(_) => Value::Boolean(matches!(text.trim(), "1" | "true" | "yes")),
        Value::Array(_) => Value::Array(text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_owned())).collect()),
        other => bail!("cannot be set from the environment (a {})", other.type_str()),
    };
    let mut target = merged;
    for (depth, key) in path.iter().enumerate() {
        let Value::Table(table) = target else { bail!("not a section") };
        if depth + 1 == path.len() {
            table.insert(key.clone(), value);
            return Ok(());
        }
        target = table.get_mut(key).ok_or_else(|| anyhow::anyhow!("no section {key}"))?;
    }
    Ok(())
}

/// Whether ClickHouse not answering at start-up stops the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreachable {
    Fail,
    Tolerate,
}

/// A client for ClickHouse with the schema migrated; the error says what to check.
pub(crate) fn connect_clickhouse(config: &clickhouse_store::ClickHouseConfig) -> anyhow::Result<clickhouse_store::Client> {
    let client = clickhouse_store::Client::new(config)?;
    let applied = clickhouse_store::schema::migrate(&client).with_context(|| migrate_context(config))?;
    log_applied(&applied, config);
    Ok(client)
}

fn migrate_context(config: &clickhouse_store::ClickHouseConfig) -> String {
    format!("preparing the ClickHouse database {} at {} (check storage.clickhouse_url, _user and _password)", config.database, config.url)
}

fn log_applied(applied: &[u32], config: &clickhouse_store::ClickHouseConfig) {
    if !applied.is_empty() {
        tracing::info!(?applied, database = %config.database, "ClickHouse schema migrated");
    }
}

/// Retries the schema migration until ClickHouse answers (and says yes).
fn migrate_in_background(client: clickhouse_store::Client, config: clickhouse_store::ClickHouseConfig) {
    let spawned = std::thread::Builder::new().name("hearth-ch-migrate".into()).spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(5));
            match clickhouse_store::schema::migrate(&client) {
                Ok(applied) => {
                    log_applied(&applied, &config);
                    tracing::info!(url = %config.url, "ClickHouse answers again; buffered events follow");
                    return;
                }
                Err(clickhouse_store::ClickHouseError::Unreachable { .. }) => {}
                Err(error) => tracing::error!(%error, "{}", migrate_context(&config)),
            }
        }
    });
    if let Err(error) = spawned {
        tracing::error!(%error, "could not start the ClickHouse migration thread");
    }
}

fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |current, key| current.as_table()?.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_known_keys_and_ignores_unknown_ones() {
        let mut merged = Value::try_from(Config::default()).unwrap();
        let defaults = merged.clone();
        apply_env(&mut merged, &defaults, "LISTEN", "0.0.0.0:9000").unwrap();
        apply_env(&mut merged, &defaults, "STORE__FLUSH_ROWS", "42").unwrap();
        apply_env(&mut merged, &defaults, "TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1/32").unwrap();
        apply_env(&mut merged, &defaults, "SOMETHING_ELSE", "x").unwrap();
        assert!(apply_env(&mut merged, &defaults, "STORE__FLUSH_ROWS", "many").is_err());
        let config: Config = merged.try_into().unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.store.flush_rows, 42);
        assert_eq!(config.trusted_proxies, vec!["10.0.0.0/8", "127.0.0.1/32"]);
    }

    #[test]
    fn the_storage_backend_is_checked_and_read_from_the_environment() {
        let mut merged = Value::try_from(Config::default()).unwrap();
        let defaults = merged.clone();
        let config: Config = merged.clone().try_into().unwrap();
        assert!(config.storage.clickhouse().unwrap().is_none(), "embedded by default");
        apply_env(&mut merged, &defaults, "STORAGE__BACKEND", "clickhouse").unwrap();
        apply_env(&mut merged, &defaults, "STORAGE__CLICKHOUSE_PASSWORD", "s3cret").unwrap();
        let config: Config = merged.try_into().unwrap();
        let clickhouse = config.storage.clickhouse().unwrap().unwrap();
        assert_eq!((clickhouse.password.as_str(), clickhouse.database.as_str()), ("s3cret", "hearth"));
        let error = |storage: StorageSection| storage.clickhouse().unwrap_err().to_string();
        assert!(error(StorageSection { backend: "postgres".into(), ..StorageSection::default() }).contains("\"postgres\""));
        let bad_database = error(StorageSection { backend: "clickhouse".into(), clickhouse_database: "a; DROP".into(), ..StorageSection::default() });
        assert!(bad_database.contains("clickhouse_database"), "{bad_database}");
    }

    #[test]
    fn the_metadata_database_takes_tls_settings_from_the_url_and_a_ca_file() {
        let mut merged = Value::try_from(Config::default()).unwrap();
        let defaults = merged.clone();
        apply_env(&mut merged, &defaults, "METADATA__BACKEND", "postgres").unwrap();
        apply_env(&mut merged, &defaults, "METADATA__POSTGRES_URL", "postgresql://hearth@db.internal:5432/hearth?sslmode=verify-full").unwrap();
        apply_env(&mut merged, &defaults, "METADATA__POSTGRES_CA_FILE", "/etc/hearth/db-ca.pem").unwrap();
        let config: Config = merged.try_into().unwrap();
        let target = config.metadata.postgres().unwrap().unwrap();
        assert!(target.encrypted().unwrap() && !target.plain_over_network().unwrap());
        assert_eq!(target.ca_file.as_deref(), Some(Path::new("/etc/hearth/db-ca.pem")));
        let plain = MetadataSection { backend: "postgres".into(), postgres_url: "postgresql://hearth@db.internal/hearth".into(), ..MetadataSection::default() };
        assert!(plain.postgres().unwrap().unwrap().plain_over_network().unwrap());
        let local = MetadataSection { backend: "postgres".into(), ..MetadataSection::default() };
        assert!(!local.postgres().unwrap().unwrap().plain_over_network().unwrap(), "loopback is not the network");
        let refused = MetadataSection { postgres_ca_file: "/etc/hearth/db-ca.pem".into(), ..plain }.postgres().unwrap_err().to_string();
        assert!(refused.contains("sslmode=require"), "{refused}");
    }

    #[test]
    fn unknown_file_keys_are_named_in_the_error() {
        let mut merged = Value::try_from(Config::default()).unwrap();
        merge(&mut merged, toml::from_str("[store]\nflush_rowz = 3").unwrap());
        let error = merged.try_into::<Config>().unwrap_err().to_string();
        assert!(error.contains("flush_rowz"), "{error}");
    }
}
