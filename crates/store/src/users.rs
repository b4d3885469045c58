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
    keys: HashMap<String, u32>,
    /// Ids given keys since the last [`UserKeys::take_pending`], in key order.
    pending: Vec<String>,
    first_pending_key: u32,
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
            return *key;
        }
        let key = u32::try_from(users.keys.len()).unwrap_or_else(|_| {
            // 4 billion distinct ids in one project is beyond this engine's design.
            panic!("project {project} exceeded 2^32 distinct ids")
        });
        if users.pending.is_empty() {
            users.first_pending_key = key;
        }
        users.keys.insert(distinct_id.to_owned(), key);
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
        for (offset, id) in record.ids.into_iter().enumerate() {
            users.keys.insert(id, record.first_key + offset as u32);
        }
        Ok(())
    }
}

/// The durable side, owned by the flush thread.
#[derive(Debug)]
pub(crate) struct UserLog {
    writer: wal::SegmentWriter,
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
        Ok((UserLog { writer }, keys))
    }

    pub(crate) fn persist(&mut self, pending: &PendingUsers) -> Result<(), Error> {
        if pending.records.is_empty() {
            return Ok(());
        }
        for record in &pending.records {
            let payload = serde_json::to_vec(record).unwrap_or_default();
            self.writer.append(&payload)?;
        }
        self.writer.sync()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
