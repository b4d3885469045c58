//! Everything a report reads besides its spec: the table, the calendar of the
//! project's time zone, profiles and saved cohorts. Per-unit profile columns
//! and cohort memberships are derived here once per report.

use crate::calendar::Calendar;
use crate::cohorts;
use crate::error::QueryError;
use crate::spec::CohortRule;
use crate::table::{Table, UnitKind};
use crate::value::{Column, Dictionary, MISSING};
use events::Properties;
use jiff::civil::Date;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Profiles of a project: people by distinct id, groups by (key, id).
#[derive(Debug, Default)]
pub(crate) struct Profiles {
    pub(crate) people: Vec<(String, Properties)>,
    pub(crate) groups: HashMap<String, Vec<(String, Properties)>>,
}

pub(crate) struct Context<'a> {
    pub(crate) table: &'a Table,
    pub(crate) kind: &'a UnitKind,
    pub(crate) calendar: Calendar,
    profiles: &'a Profiles,
    identities: &'a crate::table::Identities,
    cohort_definitions: &'a HashMap<i64, CohortRule>,
    /// The day "within the last K days" of cohort rules ends on.
    pub(crate) cohort_day: Date,
    unit_profiles: OnceLock<Vec<Option<&'a Properties>>>,
    profile_columns: Mutex<HashMap<String, Arc<Column>>>,
    cohort_members: Mutex<HashMap<i64, Arc<Vec<bool>>>>,
}

impl<'a> Context<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        table: &'a Table,
        kind: &'a UnitKind,
        calendar: Calendar,
        profiles: &'a Profiles,
        identities: &'a crate::table::Identities,
        cohort_definitions: &'a HashMap<i64, CohortRule>,
        cohort_day: Date,
    ) -> Context<'a> {
        Context {
            table,
            kind,
            calendar,
            profiles,
            identities,
            cohort_definitions,
            cohort_day,
            unit_profiles: OnceLock::new(),
            profile_columns: Mutex::new(HashMap::new()),
            cohort_members: Mutex::new(HashMap::new()),
        }
    }

    /// The profile of each unit. A person's profile is the one stored under
    /// their canonical id, else under the smallest of their other ids.
    fn unit_profiles(&self) -> &Vec<Option<&'a Properties>> {
        self.unit_profiles.get_or_init(|| {
            let index: HashMap<&str, usize> = self.table.units.iter().enumerate().map(|(i, id)| (id.as_ref(), i)).collect();
            let mut out: Vec<Option<&'a Properties>> = vec![None; self.table.n_units()];
            let mut exact = vec![false; self.table.n_units()];
            let profiles: &'a Profiles = self.profiles;
            let list: &'a [(String, Properties)] = match self.kind {
                UnitKind::People => &profiles.people,
                UnitKind::Group(key) => profiles.groups.get(key).map(Vec::as_slice).unwrap_or(&[]),
            };
            let mut sorted: Vec<&'a (String, Properties)> = list.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (id, properties) in sorted {
                let unit_id = match self.kind {
                    UnitKind::People => self.identities.resolve(id),
                    UnitKind::Group(_) => id.as_str(),
                };
                if let Some(unit) = index.get(unit_id) {
                    let is_exact = unit_id == id;
                    if out[*unit].is_none() || (is_exact && !exact[*unit]) {
                        out[*unit] = Some(properties);
                        exact[*unit] = is_exact;
                    }
                }
            }
            out
        })
    }

    /// A profile property as a column indexed by unit.
    pub(crate) fn profile_column(&self, key: &str) -> Result<Arc<Column>, QueryError> {
        if let Some(column) = self.profile_columns.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return Ok(column.clone());
        }
        let mut dictionary = Dictionary::default();
        let codes = self
            .unit_profiles()
            .iter()
            .map(|profile| match profile.and_then(|p| p.get(key)) {
                None | Some(serde_json::Value::Null) => MISSING,
                Some(value) => intern_json(&mut dictionary, value),
            })
            .collect();
        let column = Arc::new(Column::new(codes, dictionary));
        self.profile_columns.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), column.clone());
        Ok(column)
    }

    pub(crate) fn cohort_definition(&self, id: i64) -> Result<&'a CohortRule, QueryError> {
        self.cohort_definitions.get(&id).ok_or(QueryError::UnknownCohort(id))
    }

    /// Which units belong to saved cohort `id`.
    pub(crate) fn cohort_members(&self, id: i64) -> Result<Arc<Vec<bool>>, QueryError> {
        if matches!(self.kind, UnitKind::Group(_)) {
            return Err(QueryError::bad("cohorts are sets of people; they cannot filter a report counted by group"));
        }
        if let Some(members) = self.cohort_members.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(members.clone());
        }
        let rule = self.cohort_definition(id)?;
        let members = Arc::new(cohorts::members(self, rule, self.cohort_day)?);
        self.cohort_members.lock().unwrap_or_else(|p| p.into_inner()).insert(id, members.clone());
        Ok(members)
    }
}

pub(crate) fn intern_json(dictionary: &mut Dictionary, value: &serde_json::Value) -> u32 {
    match value {
        serde_json::Value::String(text) => dictionary.string(text),
        serde_json::Value::Number(number) => dictionary.number(number.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::Bool(flag) => dictionary.boolean(*flag),
        other => dictionary.json(other),
    }
}
