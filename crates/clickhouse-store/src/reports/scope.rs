//! What every report statement reads: a project's events in a UTC range,
//! deduplicated (`FINAL`), each with its `unit`, the person it belongs to
//! after identity resolution, erased and canary ids left out.
//!
//! The links, erasures and canaries live in the metadata, not in ClickHouse,
//! so a report uploads them into a `Memory` table of its own (dropped when
//! the report is done) that the events join by distinct_id. A project
//! without any needs no table and no join.

use super::backend;
use crate::client::Client;
use crate::row_binary::{put_str, put_u8};
use events::ProjectId;
use query::spec::Unit;
use query::QueryError;

const MS_PER_DAY: i64 = 86_400_000;

pub(crate) struct Scope<'a> {
    client: &'a Client,
    project: ProjectId,
    start: i64,
    end: i64,
    /// The uploaded identity table, when the project has links or hidden ids.
    identities: Option<String>,
}

impl<'a> Scope<'a> {
    /// The events of `project` with `start <= time_ms < end`.
    pub(crate) fn open(client: &'a Client, meta: &meta::Meta, project: ProjectId, start: i64, end: i64) -> Result<Scope<'a>, QueryError> {
        let links = query::resolve_identity_links(meta.identity_links(project)?);
        let mut hidden: Vec<String> = meta.erased_ids(project)?;
        hidden.extend(meta.canaries(project)?);
        hidden.sort();
        hidden.dedup();
        let mut scope = Scope { client, project, start, end, identities: None };
        if links.is_empty() && hidden.is_empty() {
            return Ok(scope);
        }
        let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let table = format!("report_ids_{}_{nonce}_{}", project.0, std::process::id());
        client
            .execute(&format!("CREATE TABLE {}.{table} (distinct_id String, person String, hidden UInt8) ENGINE = Memory", client.database()))
            .map_err(backend)?;
        scope.identities = Some(table.clone());
        let mut body = Vec::with_capacity(64 * (links.len() + hidden.len()));
        let hidden_set: std::collections::HashSet<&str> = hidden.iter().map(String::as_str).collect();
        for (distinct_id, person) in &links {
            put_str(&mut body, distinct_id);
            put_str(&mut body, person);
            put_u8(&mut body, u8::from(hidden_set.contains(distinct_id.as_str())));
        }
        let linked: std::collections::HashSet<&str> = links.iter().map(|(id, _)| id.as_str()).collect();
        for id in hidden.iter().filter(|id| !linked.contains(id.as_str())) {
            put_str(&mut body, id);
            put_str(&mut body, id);
            put_u8(&mut body, 1);
        }
        client.insert_row_binary(&table, &["distinct_id", "person", "hidden"], body).map_err(backend)?;
        Ok(scope)
    }

    /// A subquery of the events in range that pass `predicate` (over the
    /// `events` columns), with columns `time_ms`, `event`, `property_keys`,
    /// `property_values`, the property columns, and `unit`: the person.
    pub(crate) fn events(&self, predicate: &str) -> String {
        self.events_of(&Unit::Users, predicate)
    }

    /// [`Scope::events`] counting `unit`: people, or the values of a group
    /// key (events without it left out; a string and a number with the same
    /// text are one group, as in the engine).
    pub(crate) fn events_of(&self, unit: &Unit, predicate: &str) -> String {
        self.events_from(unit, predicate, self.start)
    }

    /// [`Scope::events_of`] from an earlier `start` (a rolling window's).
    pub(crate) fn events_from(&self, unit: &Unit, predicate: &str, start: i64) -> String {
        let db = self.client.database();
        // ClickHouse reads only the columns a statement uses, however many a
        // subquery lists.
        let columns: String = std::iter::once("time_ms, event, property_keys, property_values".to_owned())
            .chain(crate::schema::PROPERTY_COLUMNS.iter().map(|(_, column)| (*column).to_owned()))
            .collect::<Vec<_>>()
            .join(", ");
        // Dates are 16-bit day numbers in ClickHouse (up to 2149).
        let day_of = |ms: i64| ms.div_euclid(MS_PER_DAY).clamp(0, i64::from(u16::MAX));
        let (first_day, last_day) = (day_of(start), day_of(self.end - 1));
        let (unit_sql, unit_test) = match unit {
            Unit::Users => (None, "1".to_owned()),
            Unit::Group { group } => {
                let raw = super::sql::property(group);
                (Some(format!("if(startsWith({raw}, '\"'), substring({raw}, 2, length({raw}) - 2), {raw})")), format!("{raw} != '' AND {raw} != 'null'"))
            }
        };
        let source = format!(
            "SELECT distinct_id, {columns} FROM {db}.events FINAL \
             WHERE project = {} AND day BETWEEN toDate(toUInt16({first_day})) AND toDate(toUInt16({last_day})) \
             AND time_ms >= {} AND time_ms < {} AND {unit_test} AND {predicate}",
            self.project.0, start, self.end
        );
        match (&self.identities, unit_sql) {
            (None, None) => format!("SELECT {columns}, distinct_id AS unit FROM ({source})"),
            (None, Some(group)) => format!("SELECT {columns}, {group} AS unit FROM ({source})"),
            (Some(table), None) => format!(
                "SELECT {columns}, if(person = '', distinct_id, person) AS unit \
                 FROM ({source}) ANY LEFT JOIN {db}.{table} USING distinct_id WHERE hidden = 0"
            ),
            (Some(table), Some(group)) => format!("SELECT {columns}, {group} AS unit FROM ({source}) ANY LEFT JOIN {db}.{table} USING distinct_id WHERE hidden = 0"),
        }
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        if let Some(table) = &self.identities
            && let Err(error) = self.client.execute(&format!("DROP TABLE IF EXISTS {}.{table}", self.client.database()))
        {
            tracing::warn!(%error, %table, "a report's identity table was left behind");
        }
    }
}
