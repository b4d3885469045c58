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

    fn delete_people(&self, project: ProjectId, distinct_ids: &[String]) -> Result<(), SinkError> {
        for chunk in distinct_ids.chunks(DELETE_IDS_PER_STATEMENT) {
            let ids: Vec<String> = chunk.iter().map(|id| crate::reports::string_literal(id)).collect();
            self.delete_where(&format!("project = {} AND distinct_id IN ({})", project.0, ids.join(", ")))?;
        }
        Ok(())
    }

    fn delete_before(&self, project: ProjectId, cutoff_ms: i64) -> Result<(), SinkError> {
        self.delete_where(&format!("project = {} AND time_ms < {cutoff_ms}", project.0))
    }

    fn delete_events(&self, project: ProjectId, rows: &[&StoredEvent]) -> Result<(), SinkError> {
        use crate::reports::string_literal;
        for chunk in rows.chunks(DELETE_IDS_PER_STATEMENT) {
            let keys: Vec<String> = chunk
                .iter()
                .map(|row| format!("({}, {}, {}, {})", string_literal(row.distinct_id()), row.time_ms(), string_literal(row.name()), string_literal(row.insert_id())))
                .collect();
            self.delete_where(&format!("project = {} AND (distinct_id, time_ms, event, insert_id) IN ({})", project.0, keys.join(", ")))?;
        }
        Ok(())
    }

    /// Merges each touched partition (project, month) into one part with
    /// `OPTIMIZE ... FINAL`: the `ReplacingMergeTree` keeps the last row
    /// written per key, and the replaced ones are gone from the files.
    fn purge_replaced(&self, project: ProjectId, days: &[i32]) -> Result<(), SinkError> {
        let mut months: Vec<i64> = days.iter().map(|day| year_month(*day)).collect();
        months.sort_unstable();
        months.dedup();
        let database = self.client.database().to_owned();
        for month in months {
            self.client.execute(&format!("OPTIMIZE TABLE {database}.events PARTITION ({}, {month}) FINAL", project.0))?;
        }
        Ok(())
    }
}

/// `toYYYYMM` of a UTC day number (days since 1970-01-01).
fn year_month(day: i32) -> i64 {
    let date = jiff::civil::date(1970, 1, 1).checked_add(jiff::Span::new().days(i64::from(day))).unwrap_or(jiff::civil::date(1970, 1, 1));
    i64::from(date.year()) * 100 + i64::from(date.month())
}

/// Distinct ids (or events) per `ALTER TABLE ... DELETE`.
const DELETE_IDS_PER_STATEMENT: usize = 1000;
/// How long a deletion may take before it is reported as failed (it goes on
/// in ClickHouse, and the job tries again).
const MUTATION_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

impl ClickHouseSink {
    /// Deletes the rows matching `condition` with a mutation, and waits
    /// until ClickHouse finished it: 18.16 runs `ALTER TABLE ... DELETE` in
    /// the background and has no `mutations_sync`, so `system.mutations` is
    /// polled.
    fn delete_where(&self, condition: &str) -> Result<(), SinkError> {
        let database = self.client.database().to_owned();
        self.client.execute(&format!("ALTER TABLE {database}.events DELETE WHERE {condition}"))?;
        #[derive(serde::Deserialize)]
        struct Pending {
            n: u64,
        }
        let deadline = std::time::Instant::now() + MUTATION_WAIT;
        loop {
            let pending: Vec<Pending> = self.client.query(&format!(
                "SELECT count() AS n FROM system.mutations WHERE database = {} AND table = 'events' AND is_done = 0",
                crate::reports::string_literal(&database)
            ))?;
            if pending.first().is_none_or(|p| p.n == 0) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("ClickHouse has not finished deleting events after {} s", MUTATION_WAIT.as_secs()).into());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
