//! The connection and the schema migrations.

use crate::error::Error;
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Versioned migrations, applied in order at open; `user_version` records the
/// last one applied.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        token TEXT NOT NULL UNIQUE,
        secret_sha256 BLOB NOT NULL UNIQUE,
        timezone TEXT NOT NULL DEFAULT 'UTC',
        geo_precision TEXT NOT NULL DEFAULT 'country',
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE profiles (
        project INTEGER NOT NULL REFERENCES projects(id),
        distinct_id TEXT NOT NULL,
        properties TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (project, distinct_id)
    ) WITHOUT ROWID;
    CREATE TABLE group_profiles (
        project INTEGER NOT NULL REFERENCES projects(id),
        group_key TEXT NOT NULL,
        group_id TEXT NOT NULL,
        properties TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (project, group_key, group_id)
    ) WITHOUT ROWID;
    CREATE TABLE identity_links (
        project INTEGER NOT NULL REFERENCES projects(id),
        distinct_id TEXT NOT NULL,
        canonical_id TEXT NOT NULL,
        source TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        PRIMARY KEY (project, distinct_id)
    ) WITHOUT ROWID;",
    "CREATE TABLE cohorts (
        id INTEGER PRIMARY KEY,
        project INTEGER NOT NULL REFERENCES projects(id),
        name TEXT NOT NULL,
        definition TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX cohorts_by_project ON cohorts (project);",
];

/// The metadata database. Calls block on SQLite; async callers wrap them in
/// `spawn_blocking`.
#[derive(Debug)]
pub struct Meta {
    connection: Mutex<Connection>,
    /// Bumped by every change to identity links, so that readers in this
    /// process (the query engine) know when to rebuild what depends on them.
    identity_generation: std::sync::atomic::AtomicU64,
    /// The same for profiles, group profiles and cohorts.
    profile_generation: std::sync::atomic::AtomicU64,
}

impl Meta {
    pub fn open(data_dir: &Path) -> Result<Meta, Error> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::Io { path: data_dir.to_path_buf(), source })?;
        let mut connection = Connection::open(data_dir.join("meta.sqlite"))?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut connection)?;
        Ok(Meta {
            connection: Mutex::new(connection),
            identity_generation: std::sync::atomic::AtomicU64::new(1),
            profile_generation: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Changes whenever an identity link is added.
    pub fn identity_generation(&self) -> u64 {
        self.identity_generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Changes whenever a profile, group profile or cohort changes.
    pub fn profile_generation(&self) -> u64 {
        self.profile_generation.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn bump_identity_generation(&self) {
        self.identity_generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub(crate) fn bump_profile_generation(&self) {
        self.profile_generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub(crate) fn connection(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn migrate(connection: &mut Connection) -> Result<(), Error> {
    let applied: usize = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", index + 1)?;
        transaction.commit()?;
    }
    Ok(())
}
