//! State that another component derives from acknowledged events and keeps
//! in memory for a while: the metadata's queue of identity links, which it
//! commits to SQLite in large transactions instead of one per request.
//!
//! Such state is as durable as the events themselves as long as the WAL
//! segments holding those events stay: a crash loses the memory, and the
//! owner derives the state again from the events that recovery replays into
//! the buffer ([`crate::Snapshot::buffered_events`]). So before a flush moves
//! the replay point and deletes segments, it asks the dependent to make
//! everything it derived durable.

use crate::SinkError;

/// A component whose in-memory state must be durable before the WAL
/// segments it was derived from are deleted.
pub trait WalDependent: Send + Sync + std::fmt::Debug {
    /// Makes durable everything derived so far. An error keeps the segments,
    /// and the flush is tried again later.
    fn make_durable(&self) -> Result<(), SinkError>;
}
