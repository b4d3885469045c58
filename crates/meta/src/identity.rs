//! Identity links: which distinct ids belong to the same person.
//!
//! Simplified ID Merge (the default): the first event carrying both
//! `$device_id` and `$user_id` links `$device:<device_id>` to the user id,
//! retroactively, because reports resolve links when they run, not when events
//! are written. A device already linked keeps its first user (one user per
//! cluster, as Mixpanel). Original ID Merge's `$identify`, `$create_alias` and
//! `$merge` are recorded the same way, so reports count a person once.

use crate::db::Meta;
use crate::error::Error;
use events::ProjectId;
use sqldb::params;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkSource {
    /// `$device_id` and `$user_id` on one event.
    DeviceUser,
    Identify,
    CreateAlias,
    Merge,
}

impl LinkSource {
    fn as_str(self) -> &'static str {
        match self {
            LinkSource::DeviceUser => "device_user",
            LinkSource::Identify => "identify",
            LinkSource::CreateAlias => "create_alias",
            LinkSource::Merge => "merge",
        }
    }
}

/// Links per insert statement.
const LINKS_PER_STATEMENT: usize = 400;

impl Meta {
    /// Links `distinct_id` to `canonical_id` unless it is already linked.
    /// Returns whether a new link was made.
    pub fn link_identity(&self, project: ProjectId, distinct_id: &str, canonical_id: &str, source: LinkSource, time_ms: i64) -> Result<bool, Error> {
        if distinct_id == canonical_id || distinct_id.is_empty() || canonical_id.is_empty() {
            return Ok(false);
        }
        let n_inserted = self.connection().execute(
            "INSERT INTO identity_links (project, distinct_id, canonical_id, source, time_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![project.0, distinct_id, canonical_id, source.as_str(), time_ms],
        )?;
        if n_inserted == 1 {
            self.bump_identity_generation();
        }
        Ok(n_inserted == 1)
    }

    /// Links many ids at once, in one durable transaction; ids already linked
    /// keep their link. Returns how many links were made.
    pub fn link_identities(&self, project: ProjectId, links: &[(String, String, LinkSource, i64)]) -> Result<usize, Error> {
        let wanted: Vec<&(String, String, LinkSource, i64)> =
            links.iter().filter(|(distinct_id, canonical_id, ..)| distinct_id != canonical_id && !distinct_id.is_empty() && !canonical_id.is_empty()).collect();
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let n_linked = match transaction.dialect() {
            sqldb::Dialect::Sqlite => insert_links_one_by_one(&transaction, project, &wanted)?,
            sqldb::Dialect::Postgres => insert_links_in_chunks(&transaction, project, &wanted)?,
        };
        transaction.commit()?;
        if n_linked > 0 {
            self.bump_identity_generation();
        }
        Ok(n_linked)
    }

    /// Every link of a project as (distinct id, canonical id).
    pub fn identity_links(&self, project: ProjectId) -> Result<Vec<(String, String)>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT distinct_id, canonical_id FROM identity_links WHERE project = ?1 ORDER BY distinct_id")?;
        let links = statement.query_map([project.0], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        Ok(links)
    }

    /// The person a distinct id belongs to, following chains of links.
    pub fn resolve_identity(&self, project: ProjectId, distinct_id: &str) -> Result<String, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT canonical_id FROM identity_links WHERE project = ?1 AND distinct_id = ?2")?;
        let mut current = distinct_id.to_owned();
        // Chains are short; the bound guards against a cycle.
        for _ in 0..16 {
            let next: Option<String> = statement.query_row(params![project.0, current], |row| row.get(0)).ok();
            match next {
                Some(next) if next != current => current = next,
                _ => break,
            }
        }
        Ok(current)
    }
}

/// SQLite: one cached single-row statement a link. A many-row statement is
/// parsed anew for each length, and inside a transaction SQLite keeps a
/// statement journal of every page it touches (spilling to a temporary file)
/// in case it must undo that statement alone.
fn insert_links_one_by_one(transaction: &sqldb::Transaction<'_>, project: ProjectId, links: &[&(String, String, LinkSource, i64)]) -> Result<usize, Error> {
    let mut n_linked = 0;
    for (distinct_id, canonical_id, source, time_ms) in links.iter().copied() {
        n_linked += transaction.execute(
            "INSERT INTO identity_links (project, distinct_id, canonical_id, source, time_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![project.0, distinct_id.as_str(), canonical_id.as_str(), source.as_str(), *time_ms],
        )?;
    }
    Ok(n_linked)
}

/// PostgreSQL: many rows a statement, one round trip each. Within a statement
/// an id's first link wins, as it would row by row.
fn insert_links_in_chunks(transaction: &sqldb::Transaction<'_>, project: ProjectId, links: &[&(String, String, LinkSource, i64)]) -> Result<usize, Error> {
    let mut n_linked = 0;
    for chunk in links.chunks(LINKS_PER_STATEMENT) {
        let mut seen = std::collections::HashSet::new();
        let mut values = Vec::with_capacity(chunk.len() * 5);
        let mut rows = Vec::with_capacity(chunk.len());
        for (distinct_id, canonical_id, source, time_ms) in chunk.iter().copied() {
            if !seen.insert(distinct_id.as_str()) {
                continue;
            }
            let at = values.len();
            rows.push(format!("(?{}, ?{}, ?{}, ?{}, ?{})", at + 1, at + 2, at + 3, at + 4, at + 5));
            values.extend([
                sqldb::Value::Integer(i64::from(project.0)),
                sqldb::Value::Text(distinct_id.clone()),
                sqldb::Value::Text(canonical_id.clone()),
                sqldb::Value::Text(source.as_str().to_owned()),
                sqldb::Value::Integer(*time_ms),
            ]);
        }
        let sql = format!("INSERT INTO identity_links (project, distinct_id, canonical_id, source, time_ms) VALUES {} ON CONFLICT DO NOTHING", rows.join(", "));
        n_linked += transaction.execute(&sql, values)?;
    }
    Ok(n_linked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_keeps_its_first_user_and_chains_resolve() {
        crate::testing::on_each_backend(|meta| {
        let project = meta.create_project("demo").unwrap().project.id;
        assert!(meta.link_identity(project, "$device:d1", "u1", LinkSource::DeviceUser, 1).unwrap());
        assert!(!meta.link_identity(project, "$device:d1", "u2", LinkSource::DeviceUser, 2).unwrap());
        assert!(meta.link_identity(project, "u1", "u1-canonical", LinkSource::CreateAlias, 3).unwrap());
        let batch = vec![
            ("$device:d2".to_owned(), "u2".to_owned(), LinkSource::DeviceUser, 4),
            ("$device:d1".to_owned(), "u9".to_owned(), LinkSource::DeviceUser, 5),
            ("$device:d3".to_owned(), "u3".to_owned(), LinkSource::DeviceUser, 6),
            ("$device:d3".to_owned(), "u4".to_owned(), LinkSource::DeviceUser, 7),
        ];
        assert_eq!(meta.link_identities(project, &batch).unwrap(), 2, "within a batch too, an id's first link wins");
        assert_eq!(meta.resolve_identity(project, "$device:d3").unwrap(), "u3");
        assert_eq!(meta.resolve_identity(project, "$device:d2").unwrap(), "u2");
        assert_eq!(meta.resolve_identity(project, "$device:d1").unwrap(), "u1-canonical");
        assert_eq!(meta.resolve_identity(project, "stranger").unwrap(), "stranger");
        assert_eq!(meta.identity_links(project).unwrap().len(), 4);
        });
    }

    #[test]
    fn projects_are_found_by_token_and_secret_hash_only() {
        let check = |meta: &Meta| -> String {
            let created = meta.create_project("shop").unwrap();
            assert!(meta.create_project("shop").is_err());
            assert!(meta.create_project("bad name!").is_err());
            assert_eq!(meta.project_by_token(&created.project.token).unwrap().unwrap().name, "shop");
            assert_eq!(meta.project_by_secret(&created.secret).unwrap().unwrap().name, "shop");
            assert!(meta.project_by_secret("wrong").unwrap().is_none());
            let rows = meta.connection().rows("SELECT * FROM projects", []).unwrap();
            let stored = format!("{rows:?}");
            assert!(stored.contains(&created.project.token) && !stored.contains(&created.secret), "the secret is stored only as a hash: {stored}");
            created.secret
        };
        // On SQLite, not in the file or its WAL either.
        let dir = tempfile::tempdir().unwrap();
        let secret = check(&Meta::open(dir.path()).unwrap());
        let bytes = std::fs::read(dir.path().join("meta.sqlite")).unwrap();
        let wal = std::fs::read(dir.path().join("meta.sqlite-wal")).unwrap_or_default();
        let needle = secret.as_bytes();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "secret stored in plaintext");
        assert!(!wal.windows(needle.len()).any(|w| w == needle), "secret in the sqlite wal");
        let server = sqldb::local_server::LocalPostgres::start().unwrap();
        check(&Meta::connect(&server.target()).unwrap());
    }
}
