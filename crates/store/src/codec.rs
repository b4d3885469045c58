//! The payload of one WAL record: a project's batch of events, as JSON
//! `{"project": N, "events": [{"name", "distinct_id", "time_ms", "insert_id",
//! "properties"}]}`. The properties are written from, and read back into,
//! the buffer's JSON text without being parsed.

use crate::buffer::{empty_object, Row};
use events::ProjectId;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

#[derive(Serialize)]
struct WalEventRef<'a> {
    name: &'a str,
    distinct_id: &'a str,
    time_ms: i64,
    insert_id: &'a str,
    properties: &'a RawValue,
}

#[derive(Deserialize)]
struct WalEvent {
    name: Box<str>,
    distinct_id: Box<str>,
    time_ms: i64,
    insert_id: Box<str>,
    properties: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct WalBatch {
    project: ProjectId,
    events: Vec<WalEvent>,
}

pub(crate) fn encode(project: ProjectId, rows: &[Row]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Batch<'a> {
        project: ProjectId,
        events: Vec<WalEventRef<'a>>,
    }
    let events = rows
        .iter()
        .map(|row| WalEventRef { name: &row.name, distinct_id: &row.distinct_id, time_ms: row.time_ms, insert_id: &row.insert_id, properties: &row.properties })
        .collect();
    serde_json::to_vec(&Batch { project, events }).unwrap_or_else(|error| unreachable!("encoding a wal batch failed: {error}"))
}

/// The batch's project and rows (user keys not yet assigned).
pub(crate) fn decode(payload: &[u8]) -> Result<(ProjectId, Vec<Row>), serde_json::Error> {
    let batch: WalBatch = serde_json::from_slice(payload)?;
    let rows = batch
        .events
        .into_iter()
        .map(|e| Row { user_key: 0, time_ms: e.time_ms, name: e.name, distinct_id: e.distinct_id, insert_id: e.insert_id, properties: e.properties.unwrap_or_else(empty_object) })
        .collect();
    Ok((batch.project, rows))
}
