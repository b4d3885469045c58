//! The erasure gate: an erased person's events must not reach the external
//! event database after their erasure, from whichever node they come.
//!
//! Where nodes share ClickHouse, an erasure runs on one node: it deletes the
//! person's rows there and finishes. Another node may still hold events of
//! theirs, buffered or in its WAL while it was down, and its next flush
//! would bring them back. Every node's flush passes this gate first. It
//! holds back the events of ids whose erasure is pending (those reads hide),
//! and of ids erased earlier when the event's time is not after the erasure:
//! their tombstones, keyed hashes of the ids kept for [`TOMBSTONE_DAYS`]. A
//! later event of the same id is new data, and passes.

use crate::Protector;
use events::ProjectId;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use store::{SinkError, SinkGate, StoredEvent};

/// How long a tombstone is kept: the longest a node may stay down with
/// unflushed events and still have them held back when it returns.
pub const TOMBSTONE_DAYS: i64 = 90;

/// The tombstone of an erased id: 128 bits of its keyed hash, in hex.
pub(crate) fn tombstone(key: &privacy::crypto::Key, stored_id: &str) -> String {
    hex::encode(&privacy::crypto::keyed_hash(key, stored_id.as_bytes())[..16])
}

/// The gate of one node ([`Protector::sink_gate`]).
#[derive(Debug)]
pub struct ErasureGate {
    protector: Arc<Protector>,
    /// Per project, at an erasure generation: what is held back.
    cache: Mutex<HashMap<ProjectId, (u64, Arc<Erased>)>>,
}

/// A project's erased ids as the gate tests them.
#[derive(Debug, Default)]
struct Erased {
    pending: HashSet<String>,
    /// Tombstone, and when its erasure was recorded.
    tombstones: HashMap<String, i64>,
}

impl ErasureGate {
    pub(crate) fn new(protector: Arc<Protector>) -> ErasureGate {
        ErasureGate { protector, cache: Mutex::new(HashMap::new()) }
    }

    fn erased(&self, project: ProjectId) -> Result<Arc<Erased>, SinkError> {
        let meta = self.protector.meta();
        let generation = meta.erasure_generation();
        if let Some((_, erased)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&project).filter(|(seen, _)| *seen == generation) {
            return Ok(erased.clone());
        }
        let erased = Arc::new(Erased { pending: meta.erased_ids(project)?.into_iter().collect(), tombstones: meta.erasure_tombstones(project)?.into_iter().collect() });
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(project, (generation, erased.clone()));
        Ok(erased)
    }
}

impl SinkGate for ErasureGate {
    fn hold_back(&self, project: ProjectId, rows: &mut Vec<&StoredEvent>) -> Result<usize, SinkError> {
        let erased = self.erased(project)?;
        if erased.pending.is_empty() && erased.tombstones.is_empty() {
            return Ok(0);
        }
        let key = self.protector.keys().project_keys(project)?;
        // When each id was erased (None: never), hashed once per id.
        let mut erased_at: HashMap<&str, Option<i64>> = HashMap::new();
        let before = rows.len();
        rows.retain(|row| {
            let id = row.distinct_id();
            let at = *erased_at.entry(id).or_insert_with(|| {
                if erased.pending.contains(id) {
                    Some(i64::MAX)
                } else if erased.tombstones.is_empty() {
                    None
                } else {
                    erased.tombstones.get(&tombstone(&key.tombstone_key, id)).copied()
                }
            });
            at.is_none_or(|erased_ms| row.time_ms() > erased_ms)
        });
        Ok(before - rows.len())
    }
}
