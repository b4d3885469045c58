//! One SQL connection over SQLite or PostgreSQL, for the metadata, the key
//! store and the audit log.
//!
//! Why: a single node keeps its metadata in SQLite files; nodes that scale out
//! share one PostgreSQL database instead (`[metadata] backend = "postgres"`),
//! so that a project, a session revoked or a key written on one node is seen
//! by every other at once. The crates above write their SQL once, in the
//! subset both engines understand, against the API of this crate, which
//! mirrors rusqlite's (`execute`, `query_row`, `prepare`/`query_map`,
//! `transaction`, `params!`, `optional()`), so the SQLite path stays what it
//! was.
//!
//! The subset: `?N` placeholders (turned into `$N` for PostgreSQL), integers
//! as `BIGINT`-compatible values, `INSERT ... ON CONFLICT DO NOTHING` rather
//! than `INSERT OR IGNORE`, `RETURNING id` rather than `last_insert_rowid()`,
//! no SQLite-only functions. Schema text goes through [`Dialect::schema`],
//! which maps SQLite's DDL types to PostgreSQL's.
//!
//! Architecture invariants: rows come back materialised as [`Value`]s, so a
//! statement never holds the connection after it returns; on PostgreSQL every
//! call runs on one worker thread that owns the client (the `postgres` crate
//! drives its own runtime and must not block inside tokio's), and every
//! transaction takes one advisory lock, so writers are serialised across
//! nodes exactly as SQLite serialises them within a file.

mod connection;
mod copy;
mod dialect;
mod error;
pub mod local_server;
mod migrate;
mod postgres_worker;
mod value;

pub use copy::{copy_sqlite_to_postgres, CopyReport};
pub use connection::{Connection, Row, RowIndex, Statement, Transaction};
pub use dialect::Dialect;
pub use error::{Error, OptionalExtension, Result};
pub use migrate::migrate_postgres;
pub use postgres_worker::PostgresTarget;
pub use value::{FromSql, Params, ToSql, Value};
