//! The flush thread's way into ClickHouse: one `RowBinary` insert per
//! project and sealed buffer (32k rows by default, well within what
//! ClickHouse wants per insert: few and large).

use crate::client::Client;
use crate::row_binary::{put_i64, put_str, put_u32};
use events::ProjectId;
use store::{EventSink, SinkError, StoredEvent};

/// The columns an insert fills; `day` is computed by ClickHouse.
pub(crate) const COLUMNS: &[&str] = &["project", "time_ms", "event", "distinct_id", "insert_id", "property_keys", "property_values"];

#[derive(Debug, Clone)]
pub struct ClickHouseSink {
    client: Client,
}

impl ClickHouseSink {
    pub fn new(client: Client) -> ClickHouseSink {
        ClickHouseSink { client }
    }

    /// Inserts rows given as their parts; what the sink and migrations share.
    pub fn insert<'a>(&self, project: ProjectId, rows: impl Iterator<Item = RowRef<'a>>) -> Result<usize, crate::ClickHouseError> {
        let mut body = Vec::with_capacity(1 << 20);
        let mut n = 0;
        for row in rows {
            put_u32(&mut body, project.0);
            put_i64(&mut body, row.time_ms);
            put_str(&mut body, row.event);
            put_str(&mut body, row.distinct_id);
            put_str(&mut body, row.insert_id);
            put_properties(&mut body, row.properties)?;
            n += 1;
        }
        if n > 0 {
            self.client.insert_row_binary("events", COLUMNS, body)?;
        }
        Ok(n)
    }
}

/// The top-level keys of a JSON object and each value's JSON text, as two
/// `Array(String)` columns, in the object's own order.
fn put_properties(body: &mut Vec<u8>, properties: &str) -> Result<(), crate::ClickHouseError> {
    let pairs = crate::properties::split(properties).map_err(|detail| crate::ClickHouseError::Decode { detail })?;
    crate::row_binary::put_len(body, pairs.len());
    for (key, _) in &pairs {
        put_str(body, key);
    }
    crate::row_binary::put_len(body, pairs.len());
    for (_, value) in &pairs {
        put_str(body, value);
    }
    Ok(())
}

/// One event's columns, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub time_ms: i64,
    pub event: &'a str,
    pub distinct_id: &'a str,
    pub insert_id: &'a str,
    /// A JSON object.
    pub properties: &'a str,
}

impl<'a> From<&'a StoredEvent> for RowRef<'a> {
    fn from(row: &'a StoredEvent) -> RowRef<'a> {
        RowRef { time_ms: row.time_ms(), event: row.name(), distinct_id: row.distinct_id(), insert_id: row.insert_id(), properties: row.properties_json() }
    }
}

impl EventSink for ClickHouseSink {
    fn write(&self, project: ProjectId, rows: &[&StoredEvent]) -> Result<(), SinkError> {
        self.insert(project, rows.iter().map(|row| RowRef::from(*row)))?;
        Ok(())
    }
}
