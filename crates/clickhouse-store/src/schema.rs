//! The tables Hearth keeps in ClickHouse, as numbered migrations that
//! `hearth` applies itself at start-up ([`migrate`]).
//!
//! Each migration is applied once per database and recorded in
//! `hearth_schema_migrations`. Statements are idempotent (`IF NOT EXISTS`),
//! so two nodes starting at the same moment may both run one harmlessly.
//! A migration, once released, never changes: a new need is a new number.
//!
//! ## `events`
//! One row per event. The sorting key is the project, the UTC day and then
//! the deduplication key (distinct_id, time, event, $insert_id), so a
//! `ReplacingMergeTree` folds copies of an event into one when it merges,
//! and a person's events of a day lie together for funnels and retention.
//! Merges happen at ClickHouse's pace, so every read uses `FINAL`, which
//! folds the copies not yet merged. Partitions are (project, month): a
//! project's retention or erasure drops or rewrites whole partitions.
//!
//! Properties are two parallel arrays: the top-level keys, and each value as
//! compact JSON text. `property_values[indexOf(property_keys, 'plan')]` reads
//! exactly the top-level `plan` (ClickHouse 18.16's `visitParamExtract*`
//! would find a nested `plan` first), and is `''` when it is absent. The
//! object's JSON text is rebuilt from the arrays on reading.

use crate::client::Client;
use crate::error::ClickHouseError;

/// One schema step: its number, a name for the log, and its statements
/// (`{db}` stands for the database).
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub statements: Vec<String>,
}

/// Properties every report may read that also get a column of their own,
/// filled by ClickHouse at insert (`MATERIALIZED`) from the arrays: reading
/// one column is far cheaper than the arrays of every property. Each maps the
/// property key to its column; the column holds the value's JSON text, `''`
/// when absent, exactly as the array expression gives it.
pub const PROPERTY_COLUMNS: &[(&str, &str)] = &[
    ("mp_country_code", "p_country_code"),
    ("$region", "p_region"),
    ("$city", "p_city"),
    ("$browser", "p_browser"),
    ("$os", "p_os"),
    ("$device", "p_device"),
    ("$referring_domain", "p_referring_domain"),
    ("$current_url", "p_current_url"),
    ("mp_lib", "p_lib"),
    ("utm_source", "p_utm_source"),
    ("utm_medium", "p_utm_medium"),
    ("utm_campaign", "p_utm_campaign"),
    ("$device_id", "p_device_id"),
    ("$user_id", "p_user_id"),
];

/// Every migration, in order.
pub fn migrations() -> Vec<Migration> {
    let property_columns: String = PROPERTY_COLUMNS
        .iter()
        .map(|(key, column)| format!(",\n            {column} String MATERIALIZED property_values[indexOf(property_keys, '{key}')]"))
        .collect();
    vec![Migration {
        version: 1,
        name: "events",
        statements: vec![format!(
            "CREATE TABLE IF NOT EXISTS {{db}}.events (
            project UInt32,
            time_ms Int64,
            event String,
            distinct_id String,
            insert_id String,
            property_keys Array(String),
            property_values Array(String),
            day Date MATERIALIZED toDate(intDiv(time_ms, 86400000)){property_columns}
        ) ENGINE = ReplacingMergeTree()
        PARTITION BY (project, toYYYYMM(day))
        ORDER BY (project, day, distinct_id, time_ms, event, insert_id)"
        )],
    }]
}

const LEDGER: &str = "hearth_schema_migrations";

/// Creates the database if need be and applies the migrations it lacks;
/// answers the numbers applied now (none when it was up to date).
pub fn migrate(client: &Client) -> Result<Vec<u32>, ClickHouseError> {
    let db = client.database();
    client.execute(&format!("CREATE DATABASE IF NOT EXISTS {db}"))?;
    client.execute(&format!("CREATE TABLE IF NOT EXISTS {db}.{LEDGER} (version UInt32, name String, applied_at DateTime) ENGINE = TinyLog"))?;
    let done = applied(client)?;
    let mut applied_now = Vec::new();
    for migration in migrations().into_iter().filter(|m| !done.contains(&m.version)) {
        for statement in &migration.statements {
            client.execute(&statement.replace("{db}", db))?;
        }
        client.execute(&format!("INSERT INTO {db}.{LEDGER} (version, name, applied_at) VALUES ({}, '{}', now())", migration.version, migration.name))?;
        tracing::info!(version = migration.version, name = migration.name, "applied a ClickHouse schema migration");
        applied_now.push(migration.version);
    }
    Ok(applied_now)
}

/// The migration numbers recorded as applied.
pub fn applied(client: &Client) -> Result<Vec<u32>, ClickHouseError> {
    #[derive(serde::Deserialize)]
    struct Applied {
        version: u32,
    }
    let rows: Vec<Applied> = client.query(&format!("SELECT DISTINCT version FROM {}.{LEDGER} ORDER BY version", client.database()))?;
    Ok(rows.into_iter().map(|row| row.version).collect())
}
