//! What the privacy layer keeps in the metadata database: the versioned
//! policy documents, the vault of sealed personal values (ciphertexts only;
//! their keys live in the key store, outside the data directory), the
//! counts of findings and blocked data (never a value), and erasure
//! requests with the distinct ids they erased.

use crate::db::Meta;
use crate::error::Error;
use events::ProjectId;
use sqldb::{params, OptionalExtension};

/// One stored policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub version: i64,
    /// The document as JSON.
    pub document: String,
    pub created_ms: i64,
}

/// One row of the findings report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyCount {
    pub event: String,
    pub property: String,
    pub kind: String,
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// A sealed personal value as the vault holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultEntry {
    pub subject: String,
    pub token: String,
    pub ciphertext: Vec<u8>,
}

/// An erasure (or retrieval) request and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub id: i64,
    pub project: ProjectId,
    pub task_id: String,
    pub kind: String,
    pub status: String,
    pub subjects: i64,
    pub requested_ms: i64,
    pub finished_ms: Option<i64>,
}

impl Meta {
    /// Stores a new policy version and returns its number (1, 2, ...).
    pub fn put_privacy_policy(&self, project: ProjectId, document_json: &str) -> Result<i64, Error> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let version: i64 = transaction.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM privacy_policies WHERE project = ?1", [project.0], |row| row.get(0))?;
        transaction.execute("INSERT INTO privacy_policies (project, version, document, created_ms) VALUES (?1, ?2, ?3, ?4)", params![project.0, version, document_json, events::now_ms()])?;
        transaction.commit()?;
        self.bump_policy_generation();
        Ok(version)
    }

    /// The latest policy version, if one was ever set.
    pub fn privacy_policy(&self, project: ProjectId) -> Result<Option<PolicyVersion>, Error> {
        let connection = self.connection();
        Ok(connection
            .query_row(
                "SELECT version, document, created_ms FROM privacy_policies WHERE project = ?1 ORDER BY version DESC LIMIT 1",
                [project.0],
                |row| Ok(PolicyVersion { version: row.get(0)?, document: row.get(1)?, created_ms: row.get(2)? }),
            )
            .optional()?)
    }

    pub fn privacy_policy_history(&self, project: ProjectId) -> Result<Vec<PolicyVersion>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT version, document, created_ms FROM privacy_policies WHERE project = ?1 ORDER BY version")?;
        let rows = statement.query_map([project.0], |row| Ok(PolicyVersion { version: row.get(0)?, document: row.get(1)?, created_ms: row.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes sealed values (one transaction, durable before it returns).
    pub fn put_personal_values(&self, project: ProjectId, values: &[VaultEntry]) -> Result<(), Error> {
        if values.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        {
            let mut statement = transaction.prepare_cached(
                "INSERT INTO personal_values (project, subject, token, ciphertext, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (project, subject, token) DO UPDATE SET ciphertext = excluded.ciphertext, updated_ms = excluded.updated_ms",
            )?;
            let now = events::now_ms();
            for value in values {
                statement.execute(params![project.0, value.subject, value.token, value.ciphertext, now])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// The sealed values of a subject, or of a subject and one token.
    pub fn personal_values(&self, project: ProjectId, subject: &str, token: Option<&str>) -> Result<Vec<VaultEntry>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT subject, token, ciphertext FROM personal_values WHERE project = ?1 AND subject = ?2 AND (CAST(?3 AS TEXT) IS NULL OR token = ?3) ORDER BY token",
        )?;
        let rows = statement.query_map(params![project.0, subject, token], |row| Ok(VaultEntry { subject: row.get(0)?, token: row.get(1)?, ciphertext: row.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds to the findings and blocked-data counts.
    pub fn add_privacy_counts(&self, project: ProjectId, counts: &[(String, String, String, u64)]) -> Result<(), Error> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        {
            let mut statement = transaction.prepare_cached(
                "INSERT INTO privacy_counts (project, event, property, kind, count, first_ms, last_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (project, event, property, kind) DO UPDATE SET count = count + excluded.count, last_ms = excluded.last_ms",
            )?;
            let now = events::now_ms();
            for (event, property, kind, count) in counts {
                statement.execute(params![project.0, event, property, kind, *count as i64, now])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    pub fn privacy_counts(&self, project: ProjectId) -> Result<Vec<PrivacyCount>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT event, property, kind, count, first_ms, last_ms FROM privacy_counts WHERE project = ?1 ORDER BY count DESC, event, property, kind")?;
        let rows = statement.query_map([project.0], |row| {
            Ok(PrivacyCount { event: row.get(0)?, property: row.get(1)?, kind: row.get(2)?, count: row.get::<_, i64>(3)? as u64, first_ms: row.get(4)?, last_ms: row.get(5)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every distinct id linked with `distinct_id` (itself included): the
    /// identity cluster an erasure covers.
    pub fn identity_cluster(&self, project: ProjectId, distinct_id: &str) -> Result<Vec<String>, Error> {
        let canonical = self.resolve_identity(project, distinct_id)?;
        let connection = self.connection();
        let mut ids: Vec<String> = vec![distinct_id.to_owned(), canonical.clone()];
        // Links form chains (a -> b -> c); walk them to the fixed point.
        let mut statement = connection.prepare_cached("SELECT distinct_id, canonical_id FROM identity_links WHERE project = ?1")?;
        let links: Vec<(String, String)> = statement.query_map([project.0], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?;
        loop {
            let before = ids.len();
            for (from, to) in &links {
                let from_in = ids.contains(from);
                let to_in = ids.contains(to);
                if from_in && !to_in {
                    ids.push(to.clone());
                } else if to_in && !from_in {
                    ids.push(from.clone());
                }
            }
            if ids.len() == before {
                break;
            }
        }
        // "$device:ID" links stand for the device id itself.
        let devices: Vec<String> = ids.iter().filter_map(|id| id.strip_prefix("$device:").map(str::to_owned)).collect();
        ids.extend(devices);
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Records an erasure: the distinct ids leave every report at once, and
    /// their profiles and vault entries are deleted, in one transaction.
    ///
    /// `tombstones` (keyed hashes of the ids, for a store whose events live
    /// in an external database) are kept after the erasure finishes: see
    /// [`Meta::erasure_tombstones`].
    pub fn record_erasure(&self, project: ProjectId, task_id: &str, distinct_ids: &[String], tombstones: &[String]) -> Result<Erasure, Error> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let now = events::now_ms();
        let id = transaction.insert_returning_id(
            "INSERT INTO erasures (project, task_id, kind, status, subjects, requested_ms) VALUES (?1, ?2, 'deletion', 'PENDING', ?3, ?4)",
            params![project.0, task_id, distinct_ids.len() as i64, now],
        )?;
        {
            let mut erase = transaction.prepare_cached("INSERT INTO erased_ids (project, distinct_id, erasure) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?;
            let mut profile = transaction.prepare_cached("DELETE FROM profiles WHERE project = ?1 AND distinct_id = ?2")?;
            let mut vault = transaction.prepare_cached("DELETE FROM personal_values WHERE project = ?1 AND subject = ?2")?;
            for distinct_id in distinct_ids {
                erase.execute(params![project.0, distinct_id, id])?;
                profile.execute(params![project.0, distinct_id])?;
                vault.execute(params![project.0, distinct_id])?;
            }
            let mut tombstone = transaction.prepare_cached(
                "INSERT INTO erasure_tombstones (project, tombstone, erased_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (project, tombstone) DO UPDATE SET erased_ms = excluded.erased_ms",
            )?;
            for hashed in tombstones {
                tombstone.execute(params![project.0, hashed, now])?;
            }
        }
        transaction.commit()?;
        self.bump_profile_generation();
        self.bump_erasure_generation();
        Ok(Erasure { id, project, task_id: task_id.to_owned(), kind: "deletion".to_owned(), status: "PENDING".to_owned(), subjects: distinct_ids.len() as i64, requested_ms: now, finished_ms: None })
    }

    /// Records a retrieval request (its answer is built when asked for).
    pub fn record_retrieval(&self, project: ProjectId, task_id: &str, distinct_ids: &[String]) -> Result<Erasure, Error> {
        let now = events::now_ms();
        let detail = serde_json::to_string(distinct_ids).unwrap_or_default();
        let connection = self.connection();
        let id = connection.insert_returning_id(
            "INSERT INTO erasures (project, task_id, kind, status, subjects, requested_ms, finished_ms, detail) VALUES (?1, ?2, 'retrieval', 'SUCCESS', ?3, ?4, ?4, ?5)",
            params![project.0, task_id, distinct_ids.len() as i64, now, detail],
        )?;
        Ok(Erasure { id, project, task_id: task_id.to_owned(), kind: "retrieval".to_owned(), status: "SUCCESS".to_owned(), subjects: distinct_ids.len() as i64, requested_ms: now, finished_ms: Some(now) })
    }

    /// The distinct ids a retrieval asked for.
    pub fn retrieval_ids(&self, task_id: &str) -> Result<Vec<String>, Error> {
        let detail: Option<Option<String>> = self.connection().query_row("SELECT detail FROM erasures WHERE task_id = ?1 AND kind = 'retrieval'", [task_id], |row| row.get(0)).optional()?;
        Ok(detail.flatten().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default())
    }

    pub fn set_erasure_status(&self, task_id: &str, status: &str) -> Result<bool, Error> {
        let finished = matches!(status, "SUCCESS" | "FAILURE" | "REVOKED").then(events::now_ms);
        let n = self.connection().execute("UPDATE erasures SET status = ?2, finished_ms = COALESCE(CAST(?3 AS BIGINT), finished_ms) WHERE task_id = ?1", params![task_id, status, finished])?;
        Ok(n > 0)
    }

    pub fn erasure(&self, task_id: &str) -> Result<Option<Erasure>, Error> {
        let connection = self.connection();
        Ok(connection
            .query_row("SELECT id, project, task_id, kind, status, subjects, requested_ms, finished_ms FROM erasures WHERE task_id = ?1", [task_id], |row| {
                Ok(Erasure {
                    id: row.get(0)?,
                    project: ProjectId(row.get(1)?),
                    task_id: row.get(2)?,
                    kind: row.get(3)?,
                    status: row.get(4)?,
                    subjects: row.get(5)?,
                    requested_ms: row.get(6)?,
                    finished_ms: row.get(7)?,
                })
            })
            .optional()?)
    }

    /// Erasures whose events are still in the parts, with their ids.
    pub fn pending_erasures(&self) -> Result<Vec<(Erasure, Vec<String>)>, Error> {
        let tasks: Vec<String> = {
            let connection = self.connection();
            let mut statement = connection.prepare("SELECT task_id FROM erasures WHERE kind = 'deletion' AND status IN ('PENDING', 'STARTED') ORDER BY id")?;
            statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?
        };
        let mut pending = Vec::with_capacity(tasks.len());
        for task in tasks {
            let Some(erasure) = self.erasure(&task)? else { continue };
            let ids: Vec<String> = {
                let connection = self.connection();
                let mut statement = connection.prepare("SELECT distinct_id FROM erased_ids WHERE erasure = ?1 ORDER BY distinct_id")?;
                statement.query_map([erasure.id], |row| row.get(0))?.collect::<Result<_, _>>()?
            };
            pending.push((erasure, ids));
        }
        Ok(pending)
    }

    /// Marks an erasure done once its events are gone from the parts: its
    /// ids and their identity links are forgotten too.
    pub fn finish_erasure(&self, task_id: &str) -> Result<(), Error> {
        // Queued links of the erased ids must be there to be deleted.
        self.commit_queued_links()?;
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let erasure: Option<(i64, u32)> = transaction.query_row("SELECT id, project FROM erasures WHERE task_id = ?1", [task_id], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
        if let Some((id, project)) = erasure {
            transaction.execute(
                "DELETE FROM identity_links WHERE project = ?1 AND (distinct_id IN (SELECT distinct_id FROM erased_ids WHERE erasure = ?2) OR canonical_id IN (SELECT distinct_id FROM erased_ids WHERE erasure = ?2))",
                params![project, id],
            )?;
            transaction.execute("DELETE FROM erased_ids WHERE erasure = ?1", [id])?;
            transaction.execute("UPDATE erasures SET status = 'SUCCESS', finished_ms = ?2 WHERE id = ?1", params![id, events::now_ms()])?;
        }
        transaction.commit()?;
        self.bump_identity_generation();
        self.bump_erasure_generation();
        Ok(())
    }

    /// Deletes user profiles not updated since `before_ms`; returns how many.
    pub fn delete_profiles_before(&self, project: ProjectId, before_ms: i64) -> Result<usize, Error> {
        let n = self.connection().execute("DELETE FROM profiles WHERE project = ?1 AND updated_ms < ?2", params![project.0, before_ms])?;
        if n > 0 {
            self.bump_profile_generation();
        }
        Ok(n)
    }

    /// The tombstones of a project's erasures with when each was recorded:
    /// an event of an erased id from before then must not reach the
    /// external event database, however late it arrives.
    pub fn erasure_tombstones(&self, project: ProjectId) -> Result<Vec<(String, i64)>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached("SELECT tombstone, erased_ms FROM erasure_tombstones WHERE project = ?1")?;
        let rows = statement.query_map([project.0], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets tombstones recorded before `before_ms`; returns how many.
    pub fn forget_erasure_tombstones(&self, before_ms: i64) -> Result<usize, Error> {
        let n = self.connection().execute("DELETE FROM erasure_tombstones WHERE erased_ms < ?1", [before_ms])?;
        if n > 0 {
            self.bump_erasure_generation();
        }
        Ok(n)
    }

    /// Every distinct id erased in a project: reports and exports skip them
    /// until compaction has removed their events from the parts.
    pub fn erased_ids(&self, project: ProjectId) -> Result<Vec<String>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached("SELECT distinct_id FROM erased_ids WHERE project = ?1 ORDER BY distinct_id")?;
        let rows = statement.query_map([project.0], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
