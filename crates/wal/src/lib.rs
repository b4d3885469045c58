//! An append-only write-ahead log of checksummed records, split into numbered
//! segment files.
//!
//! Why segments: the store flushes its in-memory buffer to Parquet parts and
//! then no longer needs the log that fed it. It rotates to a new segment before
//! a flush, and once the parts are published it deletes every older segment
//! whole. No segment is ever appended to after a restart: replay reads the old
//! segments, truncates a torn tail, and writing continues in a fresh one.
//!
//! The format is in `docs/formats.md` (section WAL). In short, a segment is an
//! 8-byte magic followed by records `[len: u32 LE][crc32: u32 LE][payload]`,
//! where the CRC covers the length bytes and the payload.
//!
//! Architecture invariant: this crate knows nothing of events. Payloads are
//! opaque bytes; the `store` crate owns their encoding and the group commit.

mod error;
mod record;
mod segment;

pub use error::Error;
pub use segment::{sync_dir, ReplayStats, SegmentWriter, Wal};

/// Largest payload one record may carry. Larger batches are split by the
/// caller; a length above this in a file is treated as corruption.
pub const RECORD_BYTES_MAX: usize = 64 * 1024 * 1024;
