//! The audit log: who read or changed what, when, from which country, and,
//! for every read or export, exactly whose data it returned.
//!
//! Why hash-chained: the log is evidence after an incident, so it must show
//! tampering. Each entry holds the hash of the one before it and its own
//! hash over that and its body; `hearth audit verify` walks the chain, and
//! an edited, deleted or reordered entry breaks it. Truncating the tail
//! leaves a valid chain, so the head (sequence number and hash) is also
//! appended to a sink outside the data directory when one is configured,
//! and `verify --head` checks the log against it.
//!
//! Why a bitmap of user keys: the store gives every distinct id a dense
//! per-project number; a read that returned rows of 50,000 people is
//! recorded as a compressed (roaring) bitmap of their numbers, a few
//! kilobytes, from which an exposure report can later name every person a
//! credential saw.
//!
//! Entries can also be shipped as they are written: to a JSONL file outside
//! the data directory, and to syslog (RFC 5424, local socket or UDP).
//!
//! The log never holds an IP address (only the country of one, unless the
//! organisation opts in to addresses), a secret, a token or a personal value.

mod entry;
mod error;
mod log;
mod syslog;

pub use entry::{Actor, Entry, NewEntry, Outcome, UserSet};
pub use error::AuditError;
pub use log::{AuditLog, Filter, Verification};
pub use syslog::SyslogTarget;
