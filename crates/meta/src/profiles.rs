//! User and group profiles with Mixpanel's operation semantics.
//!
//! - `$set` creates the profile and overwrites; `$set_once` sets only absent
//!   keys; `$add` increments numbers (absent counts as 0; a non-number is left
//!   as it is); `$append` pushes onto a list (absent becomes `[v]`; a non-list
//!   is left as it is); `$union` adds missing values to a list; `$remove`
//!   removes every equal value from a list; `$unset` deletes keys; `$delete`
//!   deletes the profile.
//! - `$remove`, `$unset` and `$delete` do not create a profile; the others do.
//! - `$last_seen` is set to the update's time on every update that leaves a
//!   profile, unless `$ignore_time` is set.

use crate::db::Meta;
use crate::error::Error;
use events::{GroupUpdate, ProfileOp, ProfileUpdate, ProjectId, Properties};
use sqldb::{params, OptionalExtension, Transaction};
use serde_json::Value;

/// Applies one operation to a profile's properties; `None` means no profile.
pub(crate) fn apply_op(current: Option<Properties>, op: &ProfileOp) -> Option<Properties> {
    let creates = !matches!(op, ProfileOp::Remove(_) | ProfileOp::Unset(_) | ProfileOp::Delete);
    let mut properties = match current {
        Some(properties) => properties,
        None if creates => Properties::new(),
        None => return None,
    };
    match op {
        ProfileOp::Set(values) => properties.extend(values.clone()),
        ProfileOp::SetOnce(values) => {
            for (key, value) in values {
                properties.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        ProfileOp::Add(values) => {
            for (key, value) in values {
                add_number(&mut properties, key, value);
            }
        }
        ProfileOp::Append(values) => {
            for (key, value) in values {
                if let Value::Array(list) = properties.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new())) { list.push(value.clone()) }
            }
        }
        ProfileOp::Union(values) => {
            for (key, value) in values {
                let additions: Vec<Value> = match value {
                    Value::Array(items) => items.clone(),
                    other => vec![other.clone()],
                };
                if let Value::Array(list) = properties.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new())) {
                    for item in additions {
                        if !list.contains(&item) {
                            list.push(item);
                        }
                    }
                }
            }
        }
        ProfileOp::Remove(values) => {
            for (key, value) in values {
                if let Some(Value::Array(list)) = properties.get_mut(key) {
                    list.retain(|item| item != value);
                }
            }
        }
        ProfileOp::Unset(keys) => {
            for key in keys {
                properties.remove(key);
            }
        }
        ProfileOp::Delete => return None,
    }
    Some(properties)
}

fn add_number(properties: &mut Properties, key: &str, increment: &Value) {
    let Some(step) = increment.as_f64() else { return };
    let updated = match properties.get(key) {
        None => increment.clone(),
        Some(Value::Number(current)) => match (current.as_i64(), increment.as_i64()) {
            (Some(a), Some(b)) => a.checked_add(b).map_or_else(|| Value::from(a as f64 + b as f64), Value::from),
            _ => Value::from(current.as_f64().unwrap_or(0.0) + step),
        },
        Some(_) => return,
    };
    properties.insert(key.to_owned(), updated);
}

fn iso_time(time_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(time_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

fn load(transaction: &Transaction<'_>, sql: &str, key: &[&dyn sqldb::ToSql]) -> Result<Option<Properties>, Error> {
    let text: Option<String> = transaction.query_row(sql, key, |row| row.get(0)).optional()?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

impl Meta {
    /// Applies updates in order, all in one durable transaction.
    pub fn apply_profile_updates(&self, project: ProjectId, updates: &[ProfileUpdate]) -> Result<(), Error> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for update in updates {
            let key: [&dyn sqldb::ToSql; 2] = [&project.0, &update.distinct_id];
            let current = load(&transaction, "SELECT properties FROM profiles WHERE project = ?1 AND distinct_id = ?2", &key)?;
            match apply_op(current, &update.op) {
                Some(mut properties) => {
                    if !update.ignore_time {
                        properties.insert("$last_seen".to_owned(), Value::from(iso_time(update.time_ms)));
                    }
                    transaction.execute(
                        "INSERT INTO profiles (project, distinct_id, properties, updated_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (project, distinct_id) DO UPDATE SET properties = excluded.properties, updated_ms = excluded.updated_ms",
                        params![project.0, update.distinct_id, Value::Object(properties).to_string(), update.time_ms],
                    )?;
                }
                None => {
                    transaction.execute("DELETE FROM profiles WHERE project = ?1 AND distinct_id = ?2", params![project.0, update.distinct_id])?;
                }
            }
        }
        transaction.commit()?;
        self.bump_profile_generation();
        Ok(())
    }

    pub fn apply_group_updates(&self, project: ProjectId, updates: &[GroupUpdate]) -> Result<(), Error> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for update in updates {
            let key: [&dyn sqldb::ToSql; 3] = [&project.0, &update.group_key, &update.group_id];
            let current = load(
                &transaction,
                "SELECT properties FROM group_profiles WHERE project = ?1 AND group_key = ?2 AND group_id = ?3",
                &key,
            )?;
            match apply_op(current, &update.op) {
                Some(properties) => {
                    transaction.execute(
                        "INSERT INTO group_profiles (project, group_key, group_id, properties, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (project, group_key, group_id) DO UPDATE SET properties = excluded.properties, updated_ms = excluded.updated_ms",
                        params![project.0, update.group_key, update.group_id, Value::Object(properties).to_string(), update.time_ms],
                    )?;
                }
                None => {
                    transaction.execute(
                        "DELETE FROM group_profiles WHERE project = ?1 AND group_key = ?2 AND group_id = ?3",
                        params![project.0, update.group_key, update.group_id],
                    )?;
                }
            }
        }
        transaction.commit()?;
        self.bump_profile_generation();
        Ok(())
    }

    /// The group keys that have group profiles.
    pub fn group_keys(&self, project: ProjectId) -> Result<Vec<String>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT DISTINCT group_key FROM group_profiles WHERE project = ?1 ORDER BY group_key")?;
        let keys = statement.query_map([project.0], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(keys)
    }

    /// Profiles of the given ids (all profiles when `ids` is empty, up to `limit`).
    pub fn profiles(&self, project: ProjectId, ids: &[String], limit: usize) -> Result<Vec<(String, Properties)>, Error> {
        let connection = self.connection();
        let mut results = Vec::new();
        let parse = |text: String| serde_json::from_str::<Properties>(&text).unwrap_or_default();
        if ids.is_empty() {
            let mut statement = connection.prepare(
                "SELECT distinct_id, properties FROM profiles WHERE project = ?1 ORDER BY distinct_id LIMIT ?2",
            )?;
            let rows = statement.query_map(params![project.0, limit as i64], |row| Ok((row.get(0)?, row.get(1)?)))?;
            for row in rows {
                let (id, text): (String, String) = row?;
                results.push((id, parse(text)));
            }
            return Ok(results);
        }
        let mut statement = connection.prepare("SELECT properties FROM profiles WHERE project = ?1 AND distinct_id = ?2")?;
        for id in ids.iter().take(limit) {
            let text: Option<String> = statement.query_row(params![project.0, id], |row| row.get(0)).optional()?;
            if let Some(text) = text {
                results.push((id.clone(), parse(text)));
            }
        }
        Ok(results)
    }

    pub fn group_profiles(&self, project: ProjectId, group_key: &str, ids: &[String], limit: usize) -> Result<Vec<(String, Properties)>, Error> {
        let connection = self.connection();
        let mut results = Vec::new();
        let parse = |text: String| serde_json::from_str::<Properties>(&text).unwrap_or_default();
        if ids.is_empty() {
            let mut statement = connection.prepare(
                "SELECT group_id, properties FROM group_profiles WHERE project = ?1 AND group_key = ?2 ORDER BY group_id LIMIT ?3",
            )?;
            let rows = statement.query_map(params![project.0, group_key, limit as i64], |row| Ok((row.get(0)?, row.get(1)?)))?;
            for row in rows {
                let (id, text): (String, String) = row?;
                results.push((id, parse(text)));
            }
            return Ok(results);
        }
        let mut statement =
            connection.prepare("SELECT properties FROM group_profiles WHERE project = ?1 AND group_key = ?2 AND group_id = ?3")?;
        for id in ids.iter().take(limit) {
            let text: Option<String> = statement.query_row(params![project.0, group_key, id], |row| row.get(0)).optional()?;
            if let Some(text) = text {
                results.push((id.clone(), parse(text)));
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(value: Value) -> Properties {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn operations_follow_mixpanel_semantics() {
        let p = apply_op(None, &ProfileOp::Set(props(json!({"plan": "free", "n": 1})))).unwrap();
        let p = apply_op(Some(p), &ProfileOp::SetOnce(props(json!({"plan": "pro", "first": "x"})))).unwrap();
        assert_eq!(p["plan"], "free");
        assert_eq!(p["first"], "x");
        let p = apply_op(Some(p), &ProfileOp::Add(props(json!({"n": 2, "m": -1.5})))).unwrap();
        assert_eq!(p["n"], 3);
        assert_eq!(p["m"], -1.5);
        let p = apply_op(Some(p), &ProfileOp::Append(props(json!({"tags": "a"})))).unwrap();
        let p = apply_op(Some(p), &ProfileOp::Append(props(json!({"tags": "a"})))).unwrap();
        assert_eq!(p["tags"], json!(["a", "a"]));
        let p = apply_op(Some(p), &ProfileOp::Union(props(json!({"tags": ["a", "b"]})))).unwrap();
        assert_eq!(p["tags"], json!(["a", "a", "b"]));
        let p = apply_op(Some(p), &ProfileOp::Remove(props(json!({"tags": "a"})))).unwrap();
        assert_eq!(p["tags"], json!(["b"]));
        let p = apply_op(Some(p), &ProfileOp::Unset(vec!["first".into()])).unwrap();
        assert!(!p.contains_key("first"));
        assert_eq!(apply_op(Some(p), &ProfileOp::Delete), None);
        assert_eq!(apply_op(None, &ProfileOp::Unset(vec!["x".into()])), None);
        assert_eq!(apply_op(None, &ProfileOp::Remove(props(json!({"x": 1})))), None);
    }

    #[test]
    fn updates_are_durable_and_last_seen_respects_ignore_time() {
        crate::testing::on_each_backend_reopening(|open| {
        let meta = open();
        let project = meta.create_project("demo").unwrap().project.id;
        let update = |op, ignore_time| ProfileUpdate { distinct_id: "u1".into(), time_ms: 1_780_000_000_000, ignore_time, ignore_alias: false, op };
        meta.apply_profile_updates(project, &[update(ProfileOp::Set(props(json!({"plan": "pro"}))), true)]).unwrap();
        let got = meta.profiles(project, &["u1".into()], 10).unwrap();
        assert_eq!(got[0].1.get("$last_seen"), None);
        meta.apply_profile_updates(project, &[update(ProfileOp::Add(props(json!({"logins": 1}))), false)]).unwrap();
        drop(meta);
        let meta = open();
        let got = meta.profiles(project, &[], 10).unwrap();
        assert_eq!(got[0].1["plan"], "pro");
        assert_eq!(got[0].1["logins"], 1);
        assert_eq!(got[0].1["$last_seen"], "2026-05-28T20:26:40");
        });
    }
}
