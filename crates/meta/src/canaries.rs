//! Canary profiles (honeytokens) and the alerts that fire when one is
//! touched.

use crate::db::Meta;
use crate::error::Error;
use events::ProjectId;
use sqldb::params;

/// A raised alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: i64,
    pub project: Option<u32>,
    pub rule: String,
    pub severity: String,
    pub actor: String,
    pub detail: String,
    pub action_taken: Option<String>,
    pub created_ms: i64,
}

impl Meta {
    pub fn add_canaries(&self, project: ProjectId, ids: &[String]) -> Result<(), Error> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for id in ids {
            transaction.execute("INSERT INTO canaries (project, distinct_id, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", params![project.0, id, events::now_ms()])?;
        }
        transaction.commit()?;
        self.bump_erasure_generation();
        self.bump_profile_generation();
        Ok(())
    }

    pub fn canaries(&self, project: ProjectId) -> Result<Vec<String>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached("SELECT distinct_id FROM canaries WHERE project = ?1 ORDER BY distinct_id")?;
        let rows = statement.query_map([project.0], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn raise_alert(&self, project: Option<ProjectId>, rule: &str, severity: &str, actor: &str, detail: &str, action_taken: Option<&str>) -> Result<i64, Error> {
        let connection = self.connection();
        Ok(connection.insert_returning_id(
            "INSERT INTO alerts (project, rule, severity, actor, detail, action_taken, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![project.map(|p| p.0), rule, severity, actor, detail, action_taken, events::now_ms()],
        )?)
    }

    pub fn alerts(&self, project: Option<ProjectId>) -> Result<Vec<Alert>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT id, project, rule, severity, actor, detail, action_taken, created_ms FROM alerts WHERE (CAST(?1 AS BIGINT) IS NULL OR project = ?1 OR project IS NULL) ORDER BY id")?;
        let rows = statement.query_map([project.map(|p| p.0)], |row| {
            Ok(Alert { id: row.get(0)?, project: row.get(1)?, rule: row.get(2)?, severity: row.get(3)?, actor: row.get(4)?, detail: row.get(5)?, action_taken: row.get(6)?, created_ms: row.get(7)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
