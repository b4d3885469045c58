//! The payload of one WAL record: a project's batch of events.
//!
//! JSON, because it is what the events arrived as and it keeps the log
//! readable with ordinary tools; the framing (length and CRC) is the WAL's.

use events::{Event, ProjectId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WalBatch {
    pub(crate) project: ProjectId,
    pub(crate) events: Vec<Event>,
}

pub(crate) fn encode(project: ProjectId, events: &[Event]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Borrowed<'a> {
        project: ProjectId,
        events: &'a [Event],
    }
    serde_json::to_vec(&Borrowed { project, events }).unwrap_or_else(|error| {
        // Serialising a Value-based struct to memory cannot fail.
        unreachable!("encoding a wal batch failed: {error}")
    })
}

pub(crate) fn decode(payload: &[u8]) -> Result<WalBatch, serde_json::Error> {
    serde_json::from_slice(payload)
}
