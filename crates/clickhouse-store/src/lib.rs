//! Events in ClickHouse: the storage backend for deployments that outgrew
//! one machine.
//!
//! A node still acknowledges an event once it is fsynced in its own WAL (the
//! `store` crate); its flush thread then hands each sealed buffer to
//! [`ClickHouseSink`], which inserts it over ClickHouse's HTTP interface.
//! After a crash the node replays its WAL and inserts those rows again; the
//! `events` table is a `ReplacingMergeTree` keyed by the deduplication key,
//! and every read asks for `FINAL`, so a repeat, or the same event sent to two
//! nodes, counts once ([`schema`] has the table and why).
//!
//! The SQL is written for the oldest ClickHouse a user is likely to run,
//! Debian's 18.16 (no `DateTime64`, `Map`, `JSON` or `JSONExtract`): times
//! are `Int64` milliseconds, properties are JSON text.
//!
//! Architecture invariant: only this crate knows ClickHouse's SQL and wire
//! formats; the rest of Hearth sees [`store::EventSink`] and [`EventReader`].

mod client;
pub mod local_server;
mod error;
mod properties;
mod reader;
pub mod reports;
mod row_binary;
pub mod schema;
mod sink;

pub use client::{Client, ClickHouseConfig};
pub use error::ClickHouseError;
pub use reader::{EventReader, StoredRow};
pub use sink::{ClickHouseSink, RowRef};
