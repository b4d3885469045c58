//! Identity links: which distinct ids belong to the same person.
//!
//! Simplified ID Merge (the default): the first event carrying both
//! `$device_id` and `$user_id` links `$device:<device_id>` to the user id,
//! retroactively, because reports resolve links when they run, not when events
//! are written. A device already linked keeps its first user (one user per
//! cluster, as Mixpanel). Original ID Merge's `$identify`, `$create_alias` and
//! `$merge` are recorded the same way, so reports count a person once.
//!
//! Ingestion queues the links it finds ([`Meta::queue_links`]) and they are
//! committed many thousands at a time: a transaction per request wrote a
//! 4 KB WAL page for nearly every new link, since links land at random
//! places in their b-tree. Queued links are as durable as the events they
//! come from: the store's flush makes them durable before it deletes the WAL
//! segments holding those events (`store::WalDependent`), and after a crash
//! they are derived again from the events the WAL replays.
//!
//! On SQLite, making them durable appends them to `identity_links_recent`,
//! whose row ids only grow, and they are merged into `identity_links` in key
//! order [`RECENT_LINKS_MERGE_MIN`] at a time, or sooner by a reader. A
//! commit of a flush's few thousand links straight into the links table
//! wrote most of the leaves it touched, and at 10M events (615,000 links,
//! 53 MB) that was about a sixth of the flush thread's time. Every read of
//! the links commits the queue and merges the recent table first, so readers
//! see one table.

use crate::db::{lock, Meta};
use crate::error::Error;
use events::ProjectId;
use sqldb::params;
use std::sync::atomic::Ordering;

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

/// Links per insert statement on PostgreSQL.
const LINKS_PER_STATEMENT: usize = 400;

/// Queued links beyond which queueing commits them at once; a flush or a
/// read commits them sooner.
const QUEUED_LINKS_MAX: usize = 16_384;

/// Links waiting in the recent table beyond which persisting the queue
/// merges them into the links table. A merge in key order writes each leaf
/// of the links table it touches once, so its cost grows with the table, not
/// with the links merged: the more at once, the fewer pages a link costs.
/// 65,536 links are about 5 MB in the recent table.
const RECENT_LINKS_MERGE_MIN: usize = 65_536;

/// A link waiting in memory for its commit.
#[derive(Debug)]
pub(crate) struct QueuedLink {
    project: ProjectId,
    distinct_id: String,
    canonical_id: String,
    source: LinkSource,
    time_ms: i64,
}

/// Whether linking `distinct_id` to `canonical_id` says anything: two
/// different, non-empty ids.
fn is_link(distinct_id: &str, canonical_id: &str) -> bool {
    distinct_id != canonical_id && !distinct_id.is_empty() && !canonical_id.is_empty()
}

impl Meta {
    /// Links `distinct_id` to `canonical_id` unless it is already linked.
    /// Returns whether a new link was made.
    pub fn link_identity(&self, project: ProjectId, distinct_id: &str, canonical_id: &str, source: LinkSource, time_ms: i64) -> Result<bool, Error> {
        if !is_link(distinct_id, canonical_id) {
            return Ok(false);
        }
        // Links queued earlier come first: a device keeps its first user.
        self.commit_queued_links()?;
        let n_inserted = self.connection().execute(
            "INSERT INTO identity_links (project, distinct_id, canonical_id, source, time_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![project.0, distinct_id, canonical_id, source.as_str(), time_ms],
        )?;
        if n_inserted == 1 {
            self.bump_identity_generation();
        }
        Ok(n_inserted == 1)
    }

    /// Queues links for a later commit, in order (a device keeps its first
    /// user). They are durable once [`Meta::commit_queued_links`] returned,
    /// which a read of the links, a store flush (see the module doc) or a
    /// full queue calls; until then the caller's events must be able to
    /// give them back after a crash.
    pub fn queue_links(&self, project: ProjectId, links: impl IntoIterator<Item = (String, String, LinkSource, i64)>) {
        let mut queue = lock(&self.queued_links);
        let links = links.into_iter().map(|(distinct_id, canonical_id, source, time_ms)| QueuedLink { project, distinct_id, canonical_id, source, time_ms });
        queue.extend(links.filter(|link| is_link(&link.distinct_id, &link.canonical_id)));
    }

    /// Whether the queue is full enough to be committed now.
    pub fn queue_is_full(&self) -> bool {
        lock(&self.queued_links).len() >= QUEUED_LINKS_MAX
    }

    /// Commits every queued link, and every link waiting in the recent
    /// table, to the links table: what a reader of the links needs. Returns
    /// how many links were made; on an error the links stay queued, ahead of
    /// newer ones.
    pub fn commit_queued_links(&self) -> Result<usize, Error> {
        let _committing = lock(&self.committing_links);
        let n_inserted = self.persist_queue()?;
        Ok(n_inserted + self.merge_recent_links()?)
    }

    /// Makes every queued link durable, which is all the store's flush needs
    /// before it deletes WAL segments: on SQLite by appending them to the
    /// recent table (merged into the links table once
    /// [`RECENT_LINKS_MERGE_MIN`] wait, or by the next reader); on
    /// PostgreSQL by inserting them.
    pub fn persist_queued_links(&self) -> Result<(), Error> {
        let _committing = lock(&self.committing_links);
        self.persist_queue()?;
        if self.recent_links.load(Ordering::Acquire) >= RECENT_LINKS_MERGE_MIN {
            self.merge_recent_links()?;
        }
        Ok(())
    }

    /// With `committing_links` held: the queue made durable. Returns how many
    /// links it made (on SQLite none yet: the merge makes them).
    fn persist_queue(&self) -> Result<usize, Error> {
        let queued = std::mem::take(&mut *lock(&self.queued_links));
        if queued.is_empty() {
            return Ok(0);
        }
        let persisted = match self.dialect() {
            sqldb::Dialect::Sqlite => self.append_recent_links(&queued).map(|()| 0),
            sqldb::Dialect::Postgres => self.insert_links_postgres(&queued),
        };
        match persisted {
            Ok(n_linked) => {
                if n_linked > 0 {
                    self.bump_identity_generation();
                }
                Ok(n_linked)
            }
            Err(error) => {
                let mut queue = lock(&self.queued_links);
                let newer = std::mem::replace(&mut *queue, queued);
                queue.extend(newer);
                Err(error)
            }
        }
    }

    /// SQLite: appends links, in queue order, to the recent table, whose row
    /// ids only grow: a commit writes a few pages at the b-tree's end.
    fn append_recent_links(&self, links: &[QueuedLink]) -> Result<(), Error> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for link in links {
            transaction.execute(
                "INSERT INTO identity_links_recent (project, distinct_id, canonical_id, source, time_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![link.project.0, link.distinct_id.as_str(), link.canonical_id.as_str(), link.source.as_str(), link.time_ms],
            )?;
        }
        transaction.commit()?;
        self.recent_links.fetch_add(links.len(), Ordering::AcqRel);
        Ok(())
    }

    /// With `committing_links` held: moves the recent table's links into the
    /// links table in key order, an id's earliest link first (a linked id
    /// keeps its link). Returns how many links were made.
    fn merge_recent_links(&self) -> Result<usize, Error> {
        if self.recent_links.load(Ordering::Acquire) == 0 {
            return Ok(0);
        }
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        // `WHERE true`: without a WHERE, SQLite would read ON CONFLICT as a join's.
        let n_linked = transaction.execute(
            "INSERT INTO identity_links (project, distinct_id, canonical_id, source, time_ms)
             SELECT project, distinct_id, canonical_id, source, time_ms FROM identity_links_recent WHERE true
             ORDER BY project, distinct_id, seq ON CONFLICT DO NOTHING",
            [],
        )?;
        transaction.execute("DELETE FROM identity_links_recent", [])?;
        transaction.commit()?;
        drop(connection);
        self.recent_links.store(0, Ordering::Release);
        if n_linked > 0 {
            self.bump_identity_generation();
        }
        Ok(n_linked)
    }

    fn insert_links_postgres(&self, links: &[QueuedLink]) -> Result<usize, Error> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let n_linked = insert_links_in_chunks(&transaction, links)?;
        transaction.commit()?;
        Ok(n_linked)
    }

    /// Every link of a project as (distinct id, canonical id).
    pub fn identity_links(&self, project: ProjectId) -> Result<Vec<(String, String)>, Error> {
        self.commit_queued_links()?;
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT distinct_id, canonical_id FROM identity_links WHERE project = ?1 ORDER BY distinct_id")?;
        let links = statement.query_map([project.0], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        Ok(links)
    }

    /// The person a distinct id belongs to, following chains of links.
    pub fn resolve_identity(&self, project: ProjectId, distinct_id: &str) -> Result<String, Error> {
        self.commit_queued_links()?;
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

/// PostgreSQL: many rows a statement, one round trip each. Within a statement
/// an id's first link wins, as it would row by row.
fn insert_links_in_chunks(transaction: &sqldb::Transaction<'_>, links: &[QueuedLink]) -> Result<usize, Error> {
    let mut n_linked = 0;
    for chunk in links.chunks(LINKS_PER_STATEMENT) {
        let mut seen = std::collections::HashSet::new();
        let mut values = Vec::with_capacity(chunk.len() * 5);
        let mut rows = Vec::with_capacity(chunk.len());
        for link in chunk {
            if !seen.insert((link.project, link.distinct_id.as_str())) {
                continue;
            }
            let at = values.len();
            rows.push(format!("(?{}, ?{}, ?{}, ?{}, ?{})", at + 1, at + 2, at + 3, at + 4, at + 5));
            values.extend([
                sqldb::Value::Integer(i64::from(link.project.0)),
                sqldb::Value::Text(link.distinct_id.clone()),
                sqldb::Value::Text(link.canonical_id.clone()),
                sqldb::Value::Text(link.source.as_str().to_owned()),
                sqldb::Value::Integer(link.time_ms),
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
        meta.queue_links(project, batch);
        assert_eq!(meta.commit_queued_links().unwrap(), 2, "within a batch too, an id's first link wins");
        assert_eq!(meta.resolve_identity(project, "$device:d3").unwrap(), "u3");
        assert_eq!(meta.resolve_identity(project, "$device:d2").unwrap(), "u2");
        assert_eq!(meta.resolve_identity(project, "$device:d1").unwrap(), "u1-canonical");
        assert_eq!(meta.resolve_identity(project, "stranger").unwrap(), "stranger");
        assert_eq!(meta.identity_links(project).unwrap().len(), 4);
        });
    }

    #[test]
    fn queued_links_wait_for_a_commit_that_every_read_makes_first() {
        crate::testing::on_each_backend_reopening(|open| {
            let meta = open();
            let project = meta.create_project("queue").unwrap().project.id;
            let count = |meta: &Meta| meta.connection().query_row("SELECT count(*) FROM identity_links", [], |row| row.get::<_, i64>(0)).unwrap();
            meta.queue_links(project, [("$device:d1".to_owned(), "u1".to_owned(), LinkSource::DeviceUser, 1)]);
            meta.queue_links(project, [("$device:d1".to_owned(), "u2".to_owned(), LinkSource::DeviceUser, 2), ("u3".to_owned(), "u3".to_owned(), LinkSource::Identify, 3)]);
            assert_eq!(count(&meta), 0, "queued links are not written one request at a time");
            let generation = meta.identity_generation();
            assert_eq!(count(&meta), 1, "a reader checking the generation gets the queue committed");
            assert_eq!(meta.resolve_identity(project, "$device:d1").unwrap(), "u1", "the first queued link wins");
            meta.queue_links(project, [("$device:d4".to_owned(), "u4".to_owned(), LinkSource::DeviceUser, 4)]);
            assert_eq!(meta.identity_links(project).unwrap().len(), 2, "a read commits the queue first");
            assert_ne!(meta.identity_generation(), generation);
            assert_eq!(meta.commit_queued_links().unwrap(), 0);
            // A link made directly comes after the ones queued before it.
            meta.queue_links(project, [("$device:d5".to_owned(), "u5".to_owned(), LinkSource::DeviceUser, 5)]);
            assert!(!meta.link_identity(project, "$device:d5", "u6", LinkSource::DeviceUser, 6).unwrap());
            assert_eq!(meta.resolve_identity(project, "$device:d5").unwrap(), "u5");
            // Committed links are durable: a reopened database has them all.
            drop(meta);
            let meta = open();
            assert_eq!(meta.resolve_identity(project, "$device:d4").unwrap(), "u4");
            assert_eq!(meta.identity_links(project).unwrap().len(), 3);
        });
    }

    #[test]
    fn persisted_links_wait_in_the_recent_table_until_a_read_merges_them() {
        crate::testing::on_each_backend_reopening(|open| {
            let meta = open();
            let project = meta.create_project("recent").unwrap().project.id;
            let count = |meta: &Meta, table: &str| meta.connection().query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get::<_, i64>(0)).unwrap();
            let link = |device: &str, user: &str| (device.to_owned(), user.to_owned(), LinkSource::DeviceUser, 1);
            let is_sqlite = meta.dialect() == sqldb::Dialect::Sqlite;
            meta.queue_links(project, [link("$device:d1", "u1")]);
            meta.persist_queued_links().unwrap();
            if is_sqlite {
                assert_eq!((count(&meta, "identity_links"), count(&meta, "identity_links_recent")), (0, 1), "persisted, not yet merged");
            } else {
                assert_eq!((count(&meta, "identity_links"), count(&meta, "identity_links_recent")), (1, 0), "PostgreSQL inserts directly");
            }
            assert_eq!(meta.resolve_identity(project, "$device:d1").unwrap(), "u1", "a read merges first");
            assert_eq!(count(&meta, "identity_links_recent"), 0);
            meta.queue_links(project, [link("$device:d1", "u2"), link("$device:d2", "u3")]);
            meta.persist_queued_links().unwrap();
            meta.queue_links(project, [link("$device:d2", "u4"), link("$device:d0", "u0")]);
            meta.persist_queued_links().unwrap();
            // A crash before the merge (no close, which would merge) loses nothing.
            std::mem::forget(meta);
            let meta = open();
            let generation = meta.identity_generation();
            assert_eq!(count(&meta, "identity_links_recent"), 0, "checking the generation merged");
            assert_eq!(meta.resolve_identity(project, "$device:d1").unwrap(), "u1", "a merged link keeps its place");
            assert_eq!(meta.resolve_identity(project, "$device:d2").unwrap(), "u3", "among waiting links the earliest wins");
            assert_eq!(meta.resolve_identity(project, "$device:d0").unwrap(), "u0");
            assert_eq!(meta.identity_links(project).unwrap().len(), 3);
            assert_eq!(meta.identity_generation(), generation);
        });
    }

    #[test]
    fn links_found_waiting_at_open_are_merged_by_the_first_read() {
        // On PostgreSQL only a migration from SQLite puts them there.
        crate::testing::on_each_backend_reopening(|open| {
            let meta = open();
            let project = meta.create_project("copied").unwrap().project.id;
            for (distinct_id, canonical_id) in [("$device:c1", "u1"), ("$device:c1", "u2")] {
                meta.connection()
                    .execute(
                        "INSERT INTO identity_links_recent (project, distinct_id, canonical_id, source, time_ms) VALUES (?1, ?2, ?3, 'device_user', 1)",
                        params![project.0, distinct_id, canonical_id],
                    )
                    .unwrap();
            }
            std::mem::forget(meta);
            let meta = open();
            assert_eq!(meta.resolve_identity(project, "$device:c1").unwrap(), "u1");
            assert_eq!(meta.connection().query_row("SELECT count(*) FROM identity_links_recent", [], |row| row.get::<_, i64>(0)).unwrap(), 0);
        });
    }

    #[test]
    fn enough_waiting_links_are_merged_when_the_queue_is_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Meta::open(dir.path()).unwrap();
        let project = meta.create_project("many").unwrap().project.id;
        let count = |table: &str| meta.connection().query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get::<_, i64>(0)).unwrap();
        let links = |range: std::ops::Range<usize>| range.map(|i| (format!("$device:{i:08x}"), format!("u{i}"), LinkSource::DeviceUser, 1)).collect::<Vec<_>>();
        let half = RECENT_LINKS_MERGE_MIN / 2;
        meta.queue_links(project, links(0..half));
        meta.persist_queued_links().unwrap();
        assert_eq!((count("identity_links"), count("identity_links_recent")), (0, half as i64));
        meta.queue_links(project, links(half..RECENT_LINKS_MERGE_MIN));
        meta.persist_queued_links().unwrap();
        assert_eq!((count("identity_links"), count("identity_links_recent")), (RECENT_LINKS_MERGE_MIN as i64, 0));
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
