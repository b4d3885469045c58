//! Person keys: small, stable numbers for the distinct ids of a project,
//! the same on every node.
//!
//! Why: the audit records whose rows a read returned as a bitmap of
//! numbers, and the exposure report turns them back into people. On the
//! embedded store those are the store's own user keys; where events live in
//! ClickHouse a node has none that other nodes share, so the numbers come
//! from here, assigned on first use (in the order ids are first returned).

use crate::db::Meta;
use crate::error::Error;
use events::ProjectId;
use sqldb::Value;
use std::collections::HashMap;

/// Ids per statement.
const CHUNK: usize = 500;

impl Meta {
    /// The person key of each of `distinct_ids` (assigned now to those
    /// without one), in the order given, duplicates once.
    pub fn person_keys_of(&self, project: ProjectId, distinct_ids: &[String]) -> Result<Vec<u32>, Error> {
        let mut ids: Vec<&str> = Vec::with_capacity(distinct_ids.len());
        let mut seen = std::collections::HashSet::new();
        for id in distinct_ids {
            if seen.insert(id.as_str()) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.connection();
        let transaction = connection.transaction_immediate()?;
        let mut known: HashMap<String, u32> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
            let mut values = vec![Value::Integer(i64::from(project.0))];
            values.extend(chunk.iter().map(|id| Value::Text((*id).to_owned())));
            let sql = format!("SELECT distinct_id, person_key FROM person_keys WHERE project = ?1 AND distinct_id IN ({})", placeholders.join(", "));
            for row in transaction.rows(&sql, values)? {
                known.insert(row.get(0)?, row.get(1)?);
            }
        }
        let missing: Vec<&str> = ids.iter().copied().filter(|id| !known.contains_key(*id)).collect();
        if !missing.is_empty() {
            let next: i64 = transaction.query_row("SELECT COALESCE(MAX(person_key), -1) + 1 FROM person_keys WHERE project = ?1", [project.0], |row| row.get(0))?;
            for (offset, chunk) in missing.chunks(CHUNK).enumerate() {
                let mut values = Vec::with_capacity(chunk.len() * 3);
                let mut rows = Vec::with_capacity(chunk.len());
                for (i, id) in chunk.iter().enumerate() {
                    let key = next + (offset * CHUNK + i) as i64;
                    let at = values.len();
                    rows.push(format!("(?{}, ?{}, ?{})", at + 1, at + 2, at + 3));
                    values.extend([Value::Integer(i64::from(project.0)), Value::Text((*id).to_owned()), Value::Integer(key)]);
                    known.insert((*id).to_owned(), u32::try_from(key).unwrap_or(u32::MAX));
                }
                transaction.execute(&format!("INSERT INTO person_keys (project, distinct_id, person_key) VALUES {}", rows.join(", ")), values)?;
            }
        }
        transaction.commit()?;
        Ok(ids.iter().filter_map(|id| known.get(*id).copied()).collect())
    }

    /// The distinct ids of person keys (those known), for the exposure report.
    pub fn distinct_ids_of_person_keys(&self, project: ProjectId, keys: &[u32]) -> Result<Vec<(u32, String)>, Error> {
        let connection = self.connection();
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(CHUNK) {
            let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
            let mut values = vec![Value::Integer(i64::from(project.0))];
            values.extend(chunk.iter().map(|key| Value::Integer(i64::from(*key))));
            let sql = format!("SELECT person_key, distinct_id FROM person_keys WHERE project = ?1 AND person_key IN ({})", placeholders.join(", "));
            for row in connection.rows(&sql, values)? {
                found.push((row.get(0)?, row.get(1)?));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_stable_dense_and_resolve_back() {
        crate::testing::on_each_backend(|meta| {
            let a = meta.create_project("a").unwrap().project.id;
            let b = meta.create_project("b").unwrap().project.id;
            let ids = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
            assert_eq!(meta.person_keys_of(a, &ids(&["u1", "u2", "u1"])).unwrap(), [0, 1]);
            assert_eq!(meta.person_keys_of(a, &ids(&["u3", "u2"])).unwrap(), [2, 1], "known ids keep their keys");
            assert_eq!(meta.person_keys_of(b, &ids(&["u3"])).unwrap(), [0], "per project");
            let many: Vec<String> = (0..1200).map(|i| format!("m{i}")).collect();
            let keys = meta.person_keys_of(a, &many).unwrap();
            assert_eq!(keys.len(), 1200);
            assert_eq!((keys[0], keys[1199]), (3, 1202));
            let mut back = meta.distinct_ids_of_person_keys(a, &[1, 2, 1202, 5000]).unwrap();
            back.sort();
            assert_eq!(back, [(1, "u2".to_owned()), (2, "u3".to_owned()), (1202, "m1199".to_owned())]);
        });
    }
}
