//! Reading events back out of ClickHouse, deduplicated (`FINAL`), one
//! project and UTC day at a time: for export and for migrating back to the
//! embedded store.

use crate::client::Client;
use crate::error::ClickHouseError;
use events::ProjectId;

/// One event as ClickHouse holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub time_ms: i64,
    pub event: String,
    pub distinct_id: String,
    pub insert_id: String,
    /// A JSON object, compact.
    pub properties: String,
}

/// A row as the query returns it: properties as the two arrays.
#[derive(serde::Deserialize)]
pub(crate) struct RawRow {
    time_ms: i64,
    event: String,
    distinct_id: String,
    insert_id: String,
    property_keys: Vec<String>,
    property_values: Vec<String>,
}

impl From<RawRow> for StoredRow {
    fn from(row: RawRow) -> StoredRow {
        StoredRow {
            time_ms: row.time_ms,
            event: row.event,
            distinct_id: row.distinct_id,
            insert_id: row.insert_id,
            properties: crate::properties::join(&row.property_keys, &row.property_values),
        }
    }
}

impl StoredRow {
    /// As an ingested event, properties parsed (an unreadable object is empty).
    pub fn into_event(self) -> events::Event {
        events::Event {
            name: self.event,
            distinct_id: self.distinct_id,
            time_ms: self.time_ms,
            insert_id: self.insert_id,
            properties: serde_json::from_str(&self.properties).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EventReader {
    client: Client,
}

const DAY_MS: i64 = 86_400_000;

impl EventReader {
    pub fn new(client: Client) -> EventReader {
        EventReader { client }
    }

    /// The UTC days (days since 1970-01-01) in `[from_day, to_day]` on which
    /// the project has events, in order.
    pub fn days(&self, project: ProjectId, from_day: i32, to_day: i32) -> Result<Vec<i32>, ClickHouseError> {
        #[derive(serde::Deserialize)]
        struct Day {
            utc_day: i32,
        }
        // Dates are 16-bit day numbers in ClickHouse (up to 2149).
        let (from_day, to_day) = (from_day.clamp(0, i32::from(u16::MAX)), to_day.clamp(0, i32::from(u16::MAX)));
        let sql = format!(
            "SELECT DISTINCT toInt32(intDiv(time_ms, {DAY_MS})) AS utc_day FROM {}.events WHERE project = {} AND day BETWEEN toDate(toUInt16({from_day})) AND toDate(toUInt16({to_day})) ORDER BY utc_day",
            self.client.database(),
            project.0,
        );
        Ok(self.client.query::<Day>(&sql)?.into_iter().map(|d| d.utc_day).collect())
    }

    /// A project's events of one UTC day, each once, in time order.
    pub fn day_rows(&self, project: ProjectId, day: i32) -> Result<Vec<StoredRow>, ClickHouseError> {
        let sql = format!(
            "SELECT time_ms, event, distinct_id, insert_id, property_keys, property_values FROM {}.events FINAL WHERE project = {} AND day = toDate(toUInt16({})) ORDER BY time_ms, distinct_id, event, insert_id",
            self.client.database(),
            project.0,
            day.clamp(0, i32::from(u16::MAX))
        );
        Ok(self.client.query::<RawRow>(&sql)?.into_iter().map(StoredRow::from).collect())
    }

    /// Each day in `[from_day, to_day]` that has events, oldest first, as the
    /// embedded store's day scan hands them (user keys 0), while `visit`
    /// answers true: what the raw export, GDPR retrieval and the CLI read.
    pub fn scan_days(&self, project: ProjectId, from_day: i32, to_day: i32, visit: &mut dyn FnMut(store::DayRows) -> bool) -> Result<(), ClickHouseError> {
        for day in self.days(project, from_day, to_day)? {
            let events = self.day_rows(project, day)?.into_iter().map(|row| store::StoredEvent::from_event(row.into_event())).collect();
            if !visit(store::DayRows { day, events }) {
                break;
            }
        }
        Ok(())
    }

    /// Events of a project, each counted once.
    pub fn count(&self, project: ProjectId) -> Result<u64, ClickHouseError> {
        #[derive(serde::Deserialize)]
        struct Count {
            n: u64,
        }
        let sql = format!("SELECT count() AS n FROM {}.events FINAL WHERE project = {}", self.client.database(), project.0);
        Ok(self.client.query::<Count>(&sql)?.first().map_or(0, |c| c.n))
    }
}
