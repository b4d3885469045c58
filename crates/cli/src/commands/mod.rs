//! One module per subcommand; `run` dispatches.

mod accounts;
mod api_keys;
mod audit_log;
mod export;
mod gdpr;
mod generate;
mod import;
mod remote;
mod guardrails;
mod incident;
mod keys;
mod migrate;
mod migrate_metadata;
mod privacy;
mod project;
mod query;
mod serve;

use crate::args::{Cli, Command, DataArg};
use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;

pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config);
    match cli.command {
        Command::Serve(args) => serve::run(config, args),
        Command::Project(command) => project::run(&config, command),
        Command::Import(args) => import::run(&config, args),
        Command::Export(args) => export::run(&config, args),
        Command::Gen(args) => generate::run(&config, args),
        Command::Query(args) => query::run(&config, args),
        Command::Privacy(command) => privacy::run(&config, command),
        Command::Keys(command) => keys::run(&config, command),
        Command::Gdpr(command) => gdpr::run(&config, command),
        Command::Audit(command) => audit_log::run(&config, command),
        Command::ServiceAccount(command) => api_keys::run_accounts(&config, command),
        Command::ApiKey(command) => api_keys::run_keys(&config, command),
        Command::Admin(command) => accounts::run_admin(&config, command),
        Command::Members(command) => accounts::run_members(&config, command),
        Command::Sessions(command) => accounts::run_sessions(&config, command),
        Command::Incident(command) => incident::run(&config, command),
        Command::Alerts(command) => guardrails::run_alerts(&config, command),
        Command::Exports(command) => guardrails::run_exports(&config, command),
        Command::Migrate(args) => migrate::run(&config, args),
    }
}

pub(crate) fn data_dir(config: &Config, arg: &DataArg) -> PathBuf {
    arg.data.clone().unwrap_or_else(|| config.data.clone())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The key directory: configured, or beside the data directory.
pub(crate) fn keys_dir(config: &Config, data: &std::path::Path) -> PathBuf {
    if !config.keys.dir.is_empty() {
        return PathBuf::from(&config.keys.dir);
    }
    let name = data.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "hearth-data".to_owned());
    let sibling = match name.strip_suffix("-data") {
        Some(stem) => format!("{stem}-keys"),
        None => format!("{name}-keys"),
    };
    data.parent().map_or_else(|| PathBuf::from(&sibling), |parent| parent.join(&sibling))
}

/// Opens the key store (creating the master key on a fresh instance) and
/// the protector every writing path goes through.
pub(crate) fn open_protector(config: &Config, data: &std::path::Path, meta: std::sync::Arc<meta::Meta>) -> anyhow::Result<std::sync::Arc<protect::Protector>> {
    let dir = keys_dir(config, data);
    let source = master_source(config, &dir);
    let store = match config.metadata.postgres()? {
        Some(target) => ::keys::KeyStore::connect(&target, &dir, data, &source).with_context(|| format!("opening the key store in the PostgreSQL database at {}", target.describe()))?,
        None => ::keys::KeyStore::open(&dir, data, &source).with_context(|| format!("opening the key store in {}", dir.display()))?,
    };
    if store.master_created() {
        tracing::warn!(keys = %dir.display(), fingerprint = %store.master_fingerprint(), "created a new master key: back up the key directory separately from the data directory");
    }
    let protector = std::sync::Arc::new(protect::Protector::new(meta, std::sync::Arc::new(store)));
    if config.storage.clickhouse()?.is_some() {
        // Other nodes may still hold an erased person's events.
        protector.keep_erasure_tombstones();
    }
    Ok(protector)
}

/// Where the master key comes from: `HEARTH_MASTER_KEY`, else the
/// configured file, else `master.key` in the key directory (created when
/// absent).
pub(crate) fn master_source(config: &Config, keys_dir: &std::path::Path) -> ::keys::MasterSource {
    match std::env::var("HEARTH_MASTER_KEY") {
        Ok(text) if !text.trim().is_empty() => ::keys::MasterSource::Text(text),
        _ => {
            let path = if config.keys.master_key_file.is_empty() { keys_dir.join("master.key") } else { PathBuf::from(&config.keys.master_key_file) };
            ::keys::MasterSource::File { path, create: true }
        }
    }
}

/// Opens the audit log of a data directory, with the configured sink
/// (refused inside the data directory: it must survive the data's loss).
pub(crate) fn open_audit(config: &Config, data: &std::path::Path) -> anyhow::Result<std::sync::Arc<audit::AuditLog>> {
    let sink = (!config.audit.sink.is_empty()).then(|| PathBuf::from(&config.audit.sink));
    if let Some(sink) = &sink {
        let resolved = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| std::env::current_dir().unwrap_or_default().join(p));
        let parent = sink.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        if resolved(parent).starts_with(resolved(data)) {
            anyhow::bail!("the audit sink {} is inside the data directory {}: put it on another disk or where a log shipper reads it", sink.display(), data.display());
        }
    }
    let syslog = (!config.audit.syslog.is_empty()).then(|| audit::SyslogTarget::parse(&config.audit.syslog)).transpose().map_err(|why| anyhow::anyhow!("[audit] syslog: {why}"))?;
    let log = match config.metadata.postgres()? {
        Some(target) => audit::AuditLog::connect(&target, sink).with_context(|| format!("opening the audit log in the PostgreSQL database at {}", target.describe()))?,
        None => audit::AuditLog::open(data, sink).context("opening the audit log")?,
    };
    Ok(std::sync::Arc::new(log.with_syslog(syslog)))
}

/// Opens the metadata: this node's SQLite file in the data directory, or
/// the PostgreSQL database the nodes share.
/// Opens the event store in `data` tied to the metadata's queue of identity
/// links: each flush commits the queue before it deletes WAL segments, and
/// the links of the events the WAL replays are recorded again, since a crash
/// may have taken them from the queue (see `protect::links`). Every command
/// that opens the store goes through here: any of them may flush.
pub(crate) fn open_store(data: &std::path::Path, mut config: store::StoreConfig, meta: &std::sync::Arc<meta::Meta>) -> anyhow::Result<store::Store> {
    config.wal_dependent = Some(std::sync::Arc::new(protect::links::QueuedLinks(meta.clone())));
    let store = store::Store::open(data, config).with_context(|| format!("opening the event store in {}", data.display()))?;
    let n_replayed = protect::links::relink_replayed(&store, meta).context("recording the identity links of the events replayed from the WAL")?;
    if n_replayed > 0 {
        tracing::info!(events = n_replayed, "identity links of the events replayed from the WAL recorded");
    }
    Ok(store)
}

pub(crate) fn open_meta(config: &Config, data: &std::path::Path) -> anyhow::Result<meta::Meta> {
    match config.metadata.postgres()? {
        Some(target) => {
            if target.plain_over_network()? {
                tracing::warn!(url = %target.describe(), "the metadata database is reached over the network without TLS: add ?sslmode=require to metadata.postgres_url");
            }
            meta::Meta::connect(&target).with_context(|| format!("opening the metadata in the PostgreSQL database at {} (check metadata.postgres_url and HEARTH_METADATA__POSTGRES_PASSWORD)", target.describe()))
        }
        None => Ok(meta::Meta::open(data)?),
    }
}

/// The actor of a command run from this machine's shell.
pub(crate) fn cli_actor() -> audit::Actor {
    audit::Actor::new("cli", std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".to_owned()))
}

/// Records what a command did; a command whose entry cannot be written fails.
pub(crate) fn audit_cli(config: &Config, data: &std::path::Path, project: Option<&meta::Project>, action: &str, detail: serde_json::Value) -> anyhow::Result<()> {
    let log = open_audit(config, data)?;
    let mut entry = audit::NewEntry::new(cli_actor(), action, audit::Outcome::Ok).detail(detail);
    if let Some(project) = project {
        entry = entry.project(project.id.0);
    }
    log.append(entry).context("writing the audit entry")?;
    Ok(())
}

/// The members' sign-in service over the same metadata and key store.
pub(crate) fn open_access(config: &Config, protector: &protect::Protector) -> anyhow::Result<std::sync::Arc<access::Access>> {
    let access_config = access::AccessConfig::new(&config.auth.origin).context("[auth] origin")?;
    Ok(std::sync::Arc::new(access::Access::new(protector.meta().clone(), protector.keys().clone(), access_config)?))
}

/// Opens the metadata database and finds a project by name.
pub(crate) fn open_project(config: &Config, data: &std::path::Path, name: &str) -> anyhow::Result<(meta::Meta, meta::Project)> {
    let meta = crate::commands::open_meta(config, data)?;
    let project = meta.project_by_name(name)?;
    Ok((meta, project))
}
