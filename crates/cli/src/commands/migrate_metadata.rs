//! `hearth migrate --to postgres`: copies this node's metadata (projects,
//! members, sessions, keys, profiles, identity links, cohorts, dashboards,
//! policies), its audit log and its key store from the SQLite files into
//! the PostgreSQL database that scaled-out nodes share.
//!
//! Into an empty database only: ids are copied as they are, so merging two
//! nodes' metadata would mix their projects. A copy cut short is finished
//! by running it again (rows already there are skipped); the marker file
//! `migrate-to-postgres.json` in the data directory records that this data
//! directory started the copy. The SQLite files are left as they were.

use crate::commands::keys_dir;
use crate::config::{Config, MetadataSection};
use anyhow::{bail, Context};
use sqldb::Connection;
use std::path::Path;

pub(crate) fn to_postgres(config: &Config, data: &Path) -> anyhow::Result<()> {
    let target = MetadataSection { backend: "postgres".into(), ..config.metadata.clone() }.postgres()?.context("PostgreSQL settings")?;
    let meta_file = data.join("meta.sqlite");
    if !meta_file.exists() {
        bail!("no metadata in {} (meta.sqlite is missing): nothing to migrate", data.display());
    }
    let marker = data.join("migrate-to-postgres.json");
    let destination = target.describe();
    let connect = || Connection::connect_postgres(&target).with_context(|| format!("connecting to {destination} (check metadata.postgres_url and HEARTH_METADATA__POSTGRES_PASSWORD)"));
    let probe = connect()?;
    let has_projects: bool = probe.query_row("SELECT to_regclass('projects') IS NOT NULL", [], |row| row.get(0))?;
    let n_projects: i64 = if has_projects { probe.query_row("SELECT COUNT(*) FROM projects", [], |row| row.get(0))? } else { 0 };
    let resuming = std::fs::read_to_string(&marker).ok().and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok()).is_some_and(|v| v["destination"] == destination.as_str());
    if n_projects > 0 && !resuming {
        bail!("{destination} already holds metadata ({n_projects} projects): migrate into an empty database (ids are copied as they are)");
    }
    std::fs::write(&marker, serde_json::json!({ "destination": destination }).to_string()).with_context(|| format!("writing {}", marker.display()))?;
    drop(probe);

    // Both sides at the current schema: the files migrated by opening them,
    // the database by connecting the three stores.
    drop(meta::Meta::open(data)?);
    drop(meta::Meta::connect(&target)?);
    drop(audit::AuditLog::connect(&target, None)?);
    let keys_dir = keys_dir(config, data);
    let sources = [("metadata", meta_file), ("audit log", data.join("audit.sqlite")), ("key store", keys_dir.join("keys.sqlite"))];
    if sources[2].1.exists() {
        let master = crate::commands::master_source(config, &keys_dir);
        drop(keys::KeyStore::connect(&target, &keys_dir, data, &master).context("preparing the key store in PostgreSQL with this node's master key")?);
    }

    let mut copied_rows = 0u64;
    let mut copied_tables = 0usize;
    for (label, path) in sources.iter().filter(|(_, path)| path.exists()) {
        let source = Connection::open_sqlite(path)?;
        let mut destination_connection = connect()?;
        let bar = crate::progress::count_bar(0, label);
        let report = sqldb::copy_sqlite_to_postgres(&source, &mut destination_connection, &mut |table, rows| {
            bar.set_message(format!("{label}: {table}"));
            bar.set_position(rows);
        })
        .with_context(|| format!("copying the {label} from {}", path.display()))?;
        bar.finish_and_clear();
        let rows: u64 = report.tables.iter().map(|(_, n)| n).sum();
        eprintln!("{label}: {rows} rows in {} tables", report.tables.len());
        copied_rows += rows;
        copied_tables += report.tables.len();
    }
    eprintln!(
        "copied {copied_rows} rows ({copied_tables} tables) to {destination}. Now set metadata.backend = \"postgres\" on every node, and give every node this node's master key (HEARTH_MASTER_KEY or keys.master_key_file)."
    );
    Ok(())
}
