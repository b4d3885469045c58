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
    meta: &'a meta::Meta,
    project: ProjectId,
    start: i64,
    end: i64,
    /// The uploaded identity table, when the project has links or hidden ids.
    identities: Option<String>,
    /// The uploaded table of each unit's profile properties the report reads.
    profiles: Option<String>,
    /// Resolved identity links (distinct id, person), for matching profiles.
    links: Vec<(String, String)>,
    /// Predicates read `unit` (cohort membership): apply them after the join.
    late_predicate: bool,
    /// Extra (alias, expression) columns of every event, over its `unit`.
    extra_columns: Vec<(String, String)>,
    /// Rows carry `distinct_id` and `insert_id` too (whole events, for an
    /// activity feed).
    full_rows: bool,
}

impl<'a> Scope<'a> {
    /// The events of `project` with `start <= time_ms < end`.
    pub(crate) fn open(client: &'a Client, meta: &'a meta::Meta, project: ProjectId, start: i64, end: i64) -> Result<Scope<'a>, QueryError> {
        let links = query::resolve_identity_links(meta.identity_links(project)?);
        let mut hidden: Vec<String> = meta.erased_ids(project)?;
        hidden.extend(meta.canaries(project)?);
        hidden.sort();
        hidden.dedup();
        let mut scope = Scope { client, meta, project, start, end, identities: None, profiles: None, links: Vec::new(), late_predicate: false, extra_columns: Vec::new(), full_rows: false };
        if links.is_empty() && hidden.is_empty() {
            return Ok(scope);
        }
        let table = table_name("report_ids", project);
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
        scope.links = links;
        Ok(scope)
    }

    /// Uploads the profile properties `keys` of every unit (people, or the
    /// groups of a group key) that the report's profile filters and
    /// breakdowns read, into columns named by `sql::profile_property`. A
    /// unit's profile is chosen as the engine chooses it: the profile of its
    /// own id, else the first (by id) of those whose ids resolve to it.
    pub(crate) fn with_profiles(&mut self, unit: &Unit, keys: &[String]) -> Result<(), QueryError> {
        if keys.is_empty() {
            return Ok(());
        }
        let profiles: Vec<(String, events::Properties)> = match unit {
            Unit::Users => {
                let canaries: std::collections::HashSet<String> = self.meta.canaries(self.project)?.into_iter().collect();
                self.meta.profiles(self.project, &[], usize::MAX)?.into_iter().filter(|(id, _)| !canaries.contains(id)).collect()
            }
            Unit::Group { group } => self.meta.group_profiles(self.project, group, &[], usize::MAX)?,
        };
        let person_of: std::collections::HashMap<&str, &str> = self.links.iter().map(|(id, person)| (id.as_str(), person.as_str())).collect();
        let mut sorted: Vec<&(String, events::Properties)> = profiles.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        // unit -> (profile, whether it is the unit's own)
        let mut chosen: std::collections::BTreeMap<&str, (&events::Properties, bool)> = std::collections::BTreeMap::new();
        for (id, properties) in sorted {
            let unit_id = match unit {
                Unit::Users => person_of.get(id.as_str()).copied().unwrap_or(id.as_str()),
                Unit::Group { .. } => id.as_str(),
            };
            let exact = unit_id == id;
            match chosen.get(unit_id) {
                Some((_, true)) => {}
                Some((_, false)) if !exact => {}
                _ => {
                    chosen.insert(unit_id, (properties, exact));
                }
            }
        }
        let table = table_name("report_profiles", self.project);
        let columns: Vec<String> = keys.iter().map(|key| super::sql::profile_property(key)).collect();
        let definition: Vec<String> = columns.iter().map(|column| format!("{column} String")).collect();
        self.client
            .execute(&format!("CREATE TABLE {}.{table} (unit String, {}) ENGINE = Memory", self.client.database(), definition.join(", ")))
            .map_err(backend)?;
        self.profiles = Some(table.clone());
        let mut body = Vec::new();
        for (unit_id, (properties, _)) in &chosen {
            put_str(&mut body, unit_id);
            for key in keys {
                let text = match properties.get(key) {
                    None | Some(serde_json::Value::Null) => String::new(),
                    Some(value) => value.to_string(),
                };
                put_str(&mut body, &text);
            }
        }
        let mut names: Vec<&str> = vec!["unit"];
        names.extend(columns.iter().map(String::as_str));
        self.client.insert_row_binary(&table, &names, body).map_err(backend)?;
        Ok(())
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

    /// Columns computed per event after its unit is known (cohort
    /// membership for a cohort breakdown).
    pub(crate) fn add_columns(&mut self, columns: Vec<(String, String)>) {
        self.late_predicate = true;
        self.extra_columns.extend(columns);
    }

    /// Rows from now on carry `distinct_id` and `insert_id`: whole events.
    pub(crate) fn with_full_rows(&mut self) {
        self.full_rows = true;
    }

    /// Predicates from now on may test `unit` (cohort membership).
    pub(crate) fn test_units(&mut self) {
        self.late_predicate = true;
    }

    /// [`Scope::events_of`] from an earlier `start` (a rolling window's).
    pub(crate) fn events_from(&self, unit: &Unit, predicate: &str, start: i64) -> String {
        self.events_between(unit, predicate, start, self.end)
    }

    /// [`Scope::events_of`] over `[start, end)`.
    pub(crate) fn events_between(&self, unit: &Unit, predicate: &str, start: i64, end: i64) -> String {
        let db = self.client.database();
        // ClickHouse reads only the columns a statement uses, however many a
        // subquery lists.
        let mut columns: String = std::iter::once("time_ms, event, property_keys, property_values".to_owned())
            .chain(crate::schema::PROPERTY_COLUMNS.iter().map(|(_, column)| (*column).to_owned()))
            .collect::<Vec<_>>()
            .join(", ");
        if self.full_rows {
            columns.push_str(", insert_id");
        }
        // The outer selects keep the distinct_id too for whole rows (the
        // innermost one always reads it, to join and to resolve the unit).
        let kept = if self.full_rows { format!("{columns}, distinct_id") } else { columns.clone() };
        // Dates are 16-bit day numbers in ClickHouse (up to 2149).
        let day_of = |ms: i64| ms.div_euclid(MS_PER_DAY).clamp(0, i64::from(u16::MAX));
        let (first_day, last_day) = (day_of(start), day_of(end - 1));
        let (unit_sql, unit_test) = match unit {
            Unit::Users => (None, "1".to_owned()),
            Unit::Group { group } => {
                let raw = super::sql::property(group);
                (Some(format!("if(startsWith({raw}, '\"'), substring({raw}, 2, length({raw}) - 2), {raw})")), format!("{raw} != '' AND {raw} != 'null'"))
            }
        };
        // With profile properties, the predicate may read them: it is
        // applied once they are joined; without, as early as possible.
        let late = self.profiles.is_some() || self.late_predicate;
        let (inner_test, outer_test) = if late { ("1", predicate) } else { (predicate, "1") };
        let source = format!(
            "SELECT distinct_id, {columns} FROM {db}.events FINAL \
             WHERE project = {} AND day BETWEEN toDate(toUInt16({first_day})) AND toDate(toUInt16({last_day})) \
             AND time_ms >= {start} AND time_ms < {end} AND {unit_test} AND {inner_test}",
            self.project.0
        );
        let with_unit = match (&self.identities, unit_sql) {
            (None, None) => format!("SELECT {kept}, distinct_id AS unit FROM ({source})"),
            (None, Some(group)) => format!("SELECT {kept}, {group} AS unit FROM ({source})"),
            (Some(table), None) => format!(
                "SELECT {kept}, if(person = '', distinct_id, person) AS unit \
                 FROM ({source}) AS scoped_events ANY LEFT JOIN {db}.{table} USING distinct_id WHERE hidden = 0"
            ),
            (Some(table), Some(group)) => {
                format!("SELECT {kept}, {group} AS unit FROM ({source}) AS scoped_events ANY LEFT JOIN {db}.{table} USING distinct_id WHERE hidden = 0")
            }
        };
        let extra: String = self.extra_columns.iter().map(|(alias, expression)| format!(", {expression} AS {alias}")).collect();
        match &self.profiles {
            None if late => format!("SELECT *{extra} FROM ({with_unit}) WHERE {outer_test}"),
            None => with_unit,
            Some(table) => format!("SELECT *{extra} FROM ({with_unit}) AS scoped_units ANY LEFT JOIN {db}.{table} USING unit WHERE {outer_test}"),
        }
    }
}

/// A name for a report's own table, unique across nodes and reports.
fn table_name(kind: &str, project: ProjectId) -> String {
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{kind}_{}_{nonce}_{}", project.0, std::process::id())
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        for table in self.identities.iter().chain(self.profiles.iter()) {
            if let Err(error) = self.client.execute(&format!("DROP TABLE IF EXISTS {}.{table}", self.client.database())) {
                tracing::warn!(%error, %table, "a report's table was left behind");
            }
        }
    }
}
