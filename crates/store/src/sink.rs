//! Where sealed buffers go when events live in an external database
//! (ClickHouse, for a deployment that outgrew one machine) instead of parts.
//!
//! Only the destination changes. Ingestion still goes through this store's
//! WAL and buffer, so an acknowledgement still means "fsynced on this node";
//! the flush thread hands each sealed buffer to the sink and deletes the WAL
//! segments only once the sink said the rows are safe. A crash before that
//! replays the segments and hands the same rows over again, so a sink must
//! absorb repeats: deduplication by (event, distinct_id, time, $insert_id)
//! is the external database's job, as it is compaction's here.

use crate::buffer::StoredEvent;
use events::ProjectId;

/// An external event database the flush thread writes to.
///
/// A row written again with the same deduplication key replaces the one
/// stored (the last written wins): that is how a policy rewrite changes
/// stored events there.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Writes one project's rows durably; an error makes the flush thread
    /// keep the rows (in the WAL and the buffer) and try again later.
    fn write(&self, project: ProjectId, rows: &[&StoredEvent]) -> Result<(), SinkError>;

    /// Removes every stored event of these distinct ids (an erasure reaching
    /// the events); returns once no read sees them any more.
    fn delete_people(&self, project: ProjectId, distinct_ids: &[String]) -> Result<(), SinkError>;

    /// Removes every stored event before `cutoff_ms` (retention); returns
    /// once no read sees them any more.
    fn delete_before(&self, project: ProjectId, cutoff_ms: i64) -> Result<(), SinkError>;

    /// Removes these events (by their deduplication key: distinct_id,
    /// time, event and $insert_id), as a policy rewrite drops them; returns
    /// once no read sees them any more.
    fn delete_events(&self, project: ProjectId, rows: &[&StoredEvent]) -> Result<(), SinkError>;

    /// Makes the rows replaced on these days (UTC day numbers) leave the
    /// database's files too, not only its reads: a rewritten event's old
    /// values must not stay on disk.
    fn purge_replaced(&self, project: ProjectId, days: &[i32]) -> Result<(), SinkError>;
}

/// Decides which rows must not leave for the external database: where
/// several nodes share it, a person may be erased on one node while their
/// events wait in another's buffer (or in its WAL while it is down), and
/// those events would arrive after the erasure deleted the rest.
pub trait SinkGate: Send + Sync + std::fmt::Debug {
    /// Removes from `rows` those that must be held back (they are dropped
    /// with the buffer, as an erasure drops them from parts); returns how
    /// many. An error keeps every row for the next try.
    fn hold_back(&self, project: ProjectId, rows: &mut Vec<&StoredEvent>) -> Result<usize, SinkError>;
}

/// Why a sink could not take rows; shown in the log and retried.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;
