//! Identity links and the event store: the metadata queues the links that
//! ingestion finds and commits them many at a time (see `meta::identity`).
//! Queued links are only as durable as the WAL segments of the events they
//! came from, so:
//! - the store's flush makes the queue durable before it deletes segments
//!   ([`QueuedLinks`], the store's `WalDependent`);
//! - after a restart, the links of the events the WAL replayed are recorded
//!   again ([`relink_replayed`]): a crash may have taken them from the queue.
//!   Recording a link twice changes nothing, so replaying events whose links
//!   were committed is harmless.

use events::{Event, ProjectId};
use meta::{LinkCache, Meta};
use std::sync::Arc;

/// Events a link recording covers at once while relinking.
const RELINK_BATCH_EVENTS: usize = 2_000;

/// The metadata's queued links, as the store's flush sees them.
#[derive(Debug)]
pub struct QueuedLinks(pub Arc<Meta>);

impl store::WalDependent for QueuedLinks {
    fn make_durable(&self) -> Result<(), store::SinkError> {
        self.0.persist_queued_links()?;
        Ok(())
    }
}

/// Records the identity links of every buffered event (after an open: those
/// the WAL replayed) and commits them. Returns how many events were read.
pub fn relink_replayed(store: &store::Store, meta: &Meta) -> Result<usize, meta::Error> {
    let snapshot = store.snapshot();
    let cache = LinkCache::default();
    let mut batch: Vec<Event> = Vec::new();
    let mut batch_project: Option<ProjectId> = None;
    let mut n_events = 0;
    for (project, row) in snapshot.buffered_events() {
        if batch_project != Some(project) || batch.len() == RELINK_BATCH_EVENTS {
            if let Some(previous) = batch_project {
                cache.record(meta, previous, &batch)?;
            }
            batch.clear();
            batch_project = Some(project);
        }
        batch.push(row.to_event());
        n_events += 1;
    }
    if let Some(project) = batch_project {
        cache.record(meta, project, &batch)?;
    }
    meta.commit_queued_links()?;
    Ok(n_events)
}
