//! Parts: immutable Parquet files holding the events of one project and one
//! UTC day, sorted by (user key, time) so that per-user work reads each user's
//! events as one run.
//!
//! Columns (the format is specified in docs/formats.md):
//! - `user_key` u32: the project-local dense user key ([`crate::users`]);
//! - `time` timestamp(ms, UTC); `event` string (dictionary-encoded);
//! - `distinct_id` string, null where the event's `$user_id` or `$device_id`
//!   gives it back (format 3, see [`derived_id`]);
//! - `insert_id` binary: 16 bytes for a hex or UUID id, else the text
//!   (see [`insert_id`]); format 1 parts hold it as a string;
//! - one typed column `properties.<key>` for each frequent property key
//!   (string, int64, float64 or boolean: the key's most common JSON type);
//! - `properties` (string): a JSON object with everything else: rare keys,
//!   and values whose type does not match their key's column. The part's
//!   metadata `hearth.spilled` lists the keys with a column that also occur
//!   there.
//!
//! Pages are zstd-compressed, except in flushed parts (level 0), which live
//! only until their first merge and use LZ4.
//!
//! Parts are an open format: `SELECT * FROM read_parquet('parts/p1/*/*.parquet',
//! union_by_name = true)` in DuckDB reads them.

mod columns;
mod derived_id;
mod encoding;
mod insert_id;
mod merge;
mod raw_properties;
mod read;
mod schema;
mod write;

pub use columns::{read_core, read_core_with_insert_ids, read_property, visit_json, CoreColumns, PropertyValue, PropertyVisitor};
pub(crate) use merge::merge_parts;
pub(crate) use read::read_part;

/// Every event of a part, as rows (for activity feeds).
pub fn read_rows(path: &std::path::Path) -> Result<Vec<crate::StoredEvent>, crate::Error> {
    read_part(path)
}
pub(crate) use write::{write_part, PartCompression};

pub const USER_KEY: &str = "user_key";
pub const TIME: &str = "time";
pub const EVENT: &str = "event";
pub const DISTINCT_ID: &str = "distinct_id";
pub const INSERT_ID: &str = "insert_id";
/// The overflow column: a JSON object of the properties without a column.
pub const OVERFLOW: &str = "properties";
/// Prefix of the typed property columns.
pub const PROPERTY_PREFIX: &str = "properties.";
pub const META_FORMAT: &str = "hearth.format";
pub const META_SPILLED: &str = "hearth.spilled";
/// 2: `insert_id` in its binary form; 3: `distinct_id` left out where
/// derivable. Readers and merges take every earlier format too.
pub const FORMAT_VERSION: &str = "3";
