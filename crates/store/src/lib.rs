//! The embedded event store: a write-ahead log in front of immutable Parquet
//! parts.
//!
//! How an event travels (the long version is in ARCHITECTURE.md):
//! 1. [`Store::append`] hands a project's batch to the ingest thread
//!    ([`ingest`]), which frames it into the WAL together with every other
//!    batch that arrived meanwhile, calls `fdatasync` once for the group, puts
//!    the rows into the in-memory buffer ([`buffer`]) and only then reports
//!    success, which the server turns into the HTTP acknowledgement.
//! 2. When the buffer is large or old enough, the ingest thread seals it and
//!    starts a new WAL segment. The flush thread ([`flush`]) writes the sealed
//!    rows as one Parquet part per project and day ([`part`]), records them in
//!    the manifest ([`manifest`]) with an atomic rename, and deletes the WAL
//!    segments the parts now cover.
//! 3. Compaction ([`compaction`]) merges the small parts of a day into one,
//!    dropping duplicate events.
//! 4. Rewrites ([`rewrite`]) replace parts whose events retention, erasure
//!    or a new privacy policy changed.
//! 5. On open, the manifest says which WAL segments still hold unflushed
//!    events; they are replayed into the buffer ([`recovery`]).
//!
//! Readers take a [`Snapshot`]: the parts and buffer chunks visible at one
//! moment. Nothing a snapshot refers to changes or disappears while it lives.
//!
//! Architecture invariant: only this crate (and `wal`) knows the file formats.
//! It knows nothing of HTTP or of Mixpanel's wire format.

mod buffer;
mod codec;
mod compaction;
mod dependent;
mod error;
mod flush;
mod ingest;
mod manifest;
pub mod part;
mod recovery;
mod rewrite;
mod scan;
mod sink;
mod snapshot;
mod store;
mod users;

pub use dependent::WalDependent;
pub use error::Error;
pub use rewrite::{PartFate, Rewrite, RewriteReport, RowFate};
pub use manifest::PartMeta;
pub use scan::{DayRows, DaySource};
pub use snapshot::Snapshot;
pub use sink::{EventSink, SinkError, SinkGate};
pub use buffer::StoredEvent;
pub use ingest::{Done, PreparedBatch};
pub use store::{AppendError, Store, StoreConfig, StoreStats};
