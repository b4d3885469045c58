//! Project-local user keys: every distinct_id gets a dense `u32` the first
//! time it is seen, so that parts can be ordered by user and per-user reports
//! (funnels, retention) can index arrays instead of hashing strings.
//!
//! The mapping is itself a log (the `wal` crate's format, in `users/`): each
//! record lists, in order, the ids that got the next keys. The flush thread
//! makes new ids durable before it publishes any part that uses their keys,
//! so a part never refers to a key the log has not got. Keys handed out since
//! the last flush live only in memory; after a crash the WAL replay hands them
//! out again, in the same order or not, which is fine because nothing durable
//! used them.

use crate::error::Error;
use events::ProjectId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::path::Path;

#[derive(Debug, Serialize, Deserialize)]
struct UserRecord {
    project: ProjectId,
    first_key: u32,
    ids: Vec<String>,
}

/// The in-memory side, owned by the ingest thread.
#[derive(Debug, Default)]
pub(crate) struct UserKeys {
    projects: HashMap<ProjectId, ProjectUsers>,
}

#[derive(Debug, Default)]
struct ProjectUsers {
    keys: IdKeys,
    /// Ids given keys since the last [`UserKeys::take_pending`], in key order.
    pending: Vec<String>,
    first_pending_key: u32,
}

/// Distinct ids to their dense keys, compactly: every id's text in one
/// arena, and a hash table of keys. About 50 bytes per id of 36 characters
/// where a `HashMap<String, u32>` takes about 85: a project that has seen
/// millions of ids keeps them all in memory for as long as it runs.
#[derive(Default)]
struct IdKeys {
    /// The ids' text, in key order.
    text: Vec<u8>,
    /// Where each key's id ends in `text` (it starts where the previous ends).
    ends: Vec<u64>,
    table: hashbrown::HashTable<u32>,
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for IdKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdKeys").field("len", &self.ends.len()).finish_non_exhaustive()
    }
}

impl IdKeys {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn id(&self, key: u32) -> &[u8] {
        id_in(&self.text, &self.ends, key)
    }

    fn get(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id.as_bytes());
        self.table.find(hash, |&key| self.id(key) == id.as_bytes()).copied()
    }

    /// Gives `id` the next key; the caller knows it is new.
    fn push(&mut self, id: &str) -> u32 {
        let key = u32::try_from(self.ends.len()).unwrap_or_else(|_| panic!("more than 2^32 distinct ids in one project is beyond this engine's design"));
        self.text.extend_from_slice(id.as_bytes());
        self.ends.push(self.text.len() as u64);
        let hash = self.hasher.hash_one(id.as_bytes());
        let Self { table, text, ends, hasher } = self;
        table.insert_unique(hash, key, |&k| hasher.hash_one(id_in(text, ends, k)));
        key
    }
}

/// Key `key`'s id in the arena: it ends at `ends[key]` and starts where the
/// previous one ends.
fn id_in<'a>(text: &'a [u8], ends: &[u64], key: u32) -> &'a [u8] {
    let end = ends[key as usize] as usize;
    let start = if key == 0 { 0 } else { ends[key as usize - 1] as usize };
    &text[start..end]
}

/// New ids to make durable, per project.
#[derive(Debug, Default)]
pub(crate) struct PendingUsers {
    records: Vec<UserRecord>,
}

impl UserKeys {
    pub(crate) fn key_for(&mut self, project: ProjectId, distinct_id: &str) -> u32 {
        let users = self.projects.entry(project).or_default();
        if let Some(key) = users.keys.get(distinct_id) {
            return key;
        }
        let key = users.keys.push(distinct_id);
        if users.pending.is_empty() {
            users.first_pending_key = key;
        }
        users.pending.push(distinct_id.to_owned());
        key
    }

    pub(crate) fn take_pending(&mut self) -> PendingUsers {
        let mut records = Vec::new();
        for (project, users) in &mut self.projects {
            if users.pending.is_empty() {
                continue;
            }
            records.push(UserRecord {
                project: *project,
                first_key: users.first_pending_key,
                ids: std::mem::take(&mut users.pending),
            });
        }
        PendingUsers { records }
    }

    fn load(&mut self, record: UserRecord) -> Result<(), String> {
        let users = self.projects.entry(record.project).or_default();
        let expected = users.keys.len() as u64;
        if u64::from(record.first_key) != expected {
            return Err(format!(
                "user log of project {} continues at key {} but {} keys are known",
                record.project, record.first_key, expected
            ));
        }
        for id in &record.ids {
            // A replayed log never repeats an id; were it to, the id keeps its
            // first key and later keys stay dense.
            if users.keys.get(id).is_none() {
                users.keys.push(id);
            } else {
                return Err(format!("user log of project {} repeats an id", record.project));
            }
        }
        Ok(())
    }
}

/// The durable side, owned by the flush thread.
#[derive(Debug)]
pub(crate) struct UserLog {
    writer: wal::SegmentWriter,
    /// Per project, the key after the last one appended to the log: a flush
    /// that is retried (its sink was down, say) persists its ids again, and
    /// what the log already holds must not be appended twice.
    next_key: HashMap<ProjectId, u32>,
}

impl UserLog {
    /// Replays the log into fresh [`UserKeys`] and opens a segment for appends.
    pub(crate) fn open(dir: &Path) -> Result<(UserLog, UserKeys), Error> {
        let log = wal::Wal::open(dir)?;
        let mut keys = UserKeys::default();
        let replayed = log.replay(0, |payload| {
            let record: UserRecord = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
            keys.load(record)
        })?;
        if let Err(detail) = replayed {
            return Err(Error::DataCorruption { path: dir.to_path_buf(), detail });
        }
        let writer = log.create_segment()?;
        let next_key = keys.projects.iter().map(|(project, users)| (*project, users.keys.len() as u32)).collect();
        Ok((UserLog { writer, next_key }, keys))
    }

    pub(crate) fn persist(&mut self, pending: &PendingUsers) -> Result<(), Error> {
        if pending.records.is_empty() {
            return Ok(());
        }
        for record in &pending.records {
            let next = self.next_key.get(&record.project).copied().unwrap_or(0);
            let end = record.first_key + record.ids.len() as u32;
            if end <= next {
                continue; // appended by an earlier try of this flush
            }
            let skip = next.saturating_sub(record.first_key) as usize;
            let tail = UserRecord { project: record.project, first_key: record.first_key + skip as u32, ids: record.ids[skip..].to_vec() };
            let payload = serde_json::to_vec(&tail).unwrap_or_default();
            self.writer.append(&payload)?;
            self.next_key.insert(record.project, end);
        }
        // Always: an earlier try may have appended and then failed to sync.
        self.writer.sync()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_ids_keep_their_keys_in_the_compact_table() {
        let mut keys = IdKeys::default();
        let ids: Vec<String> = (0..20_000).map(|i| format!("$device:{i:08x}-db17-430b-983c-181d92dc4b4c")).collect();
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(keys.get(id), None);
            assert_eq!(keys.push(id), n as u32);
        }
        for (n, id) in ids.iter().enumerate().rev() {
            assert_eq!(keys.get(id), Some(n as u32));
            assert_eq!(keys.id(n as u32), id.as_bytes());
        }
        assert_eq!(keys.get(""), None);
        assert_eq!(keys.push(""), 20_000, "the empty id is an id like any other");
        assert_eq!(keys.get(""), Some(20_000));
        assert_eq!(keys.len(), 20_001);
    }

    #[test]
    fn keys_are_dense_per_project_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, mut keys) = UserLog::open(dir.path()).unwrap();
        let a = ProjectId(1);
        let b = ProjectId(2);
        assert_eq!(keys.key_for(a, "alice"), 0);
        assert_eq!(keys.key_for(a, "bob"), 1);
        assert_eq!(keys.key_for(b, "carol"), 0);
        assert_eq!(keys.key_for(a, "alice"), 0);
        log.persist(&keys.take_pending()).unwrap();
        assert_eq!(keys.key_for(a, "dave"), 2);
        log.persist(&keys.take_pending()).unwrap();
        drop(log);
        let (_log, mut reopened) = UserLog::open(dir.path()).unwrap();
        assert_eq!(reopened.key_for(a, "bob"), 1);
        assert_eq!(reopened.key_for(a, "dave"), 2);
        assert_eq!(reopened.key_for(b, "carol"), 0);
        assert_eq!(reopened.key_for(a, "erin"), 3);
    }

    #[test]
    fn persisting_the_same_ids_again_appends_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, mut keys) = UserLog::open(dir.path()).unwrap();
        let a = ProjectId(1);
        keys.key_for(a, "alice");
        keys.key_for(a, "bob");
        let pending = keys.take_pending();
        log.persist(&pending).unwrap();
        // A retried flush persists the same pending ids again.
        log.persist(&pending).unwrap();
        keys.key_for(a, "carol");
        log.persist(&keys.take_pending()).unwrap();
        drop(log);
        let (mut log, mut reopened) = UserLog::open(dir.path()).unwrap();
        assert_eq!(reopened.key_for(a, "carol"), 2);
        assert_eq!(reopened.key_for(a, "dave"), 3);
        log.persist(&reopened.take_pending()).unwrap();
        drop(log);
        let (_log, mut again) = UserLog::open(dir.path()).unwrap();
        assert_eq!(again.key_for(a, "dave"), 3, "a log reopened twice still continues densely");
    }
}
