//! Versioned schema migrations on PostgreSQL, applied once however many
//! nodes start together.
//!
//! SQLite files keep their own ledgers (`PRAGMA user_version`); a PostgreSQL
//! database shared by every node records each store's applied migrations in
//! `hearth_schema_migrations`, and a node applies the missing ones under an
//! advisory lock, so that two nodes starting at once do not both apply one.

use crate::connection::Connection;
use crate::dialect::Dialect;
use crate::error::Result;

/// Applies the migrations of `store` (SQLite-dialect schema text, in order)
/// that the database has not recorded yet; returns how many it applied.
pub fn migrate_postgres(connection: &mut Connection, store: &str, migrations: &[&str]) -> Result<usize> {
    let transaction = connection.transaction_immediate()?;
    transaction.execute_batch(
        "CREATE TABLE IF NOT EXISTS hearth_schema_migrations (
            store TEXT NOT NULL,
            version BIGINT NOT NULL,
            applied_ms BIGINT NOT NULL,
            PRIMARY KEY (store, version)
        )",
    )?;
    let applied: i64 = transaction.query_row("SELECT COALESCE(MAX(version), 0) FROM hearth_schema_migrations WHERE store = ?1", [store], |row| row.get(0))?;
    let mut count = 0;
    for (index, migration) in migrations.iter().enumerate().skip(applied.max(0) as usize) {
        transaction.execute_batch(&Dialect::Postgres.schema(migration))?;
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        transaction.execute("INSERT INTO hearth_schema_migrations (store, version, applied_ms) VALUES (?1, ?2, ?3)", crate::params![store, index as i64 + 1, now_ms])?;
        count += 1;
    }
    transaction.commit()?;
    Ok(count)
}
