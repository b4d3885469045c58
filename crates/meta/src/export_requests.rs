//! Exports above the organisation's threshold wait for a second owner:
//! the request, its decision, and its single use.

use crate::db::Meta;
use crate::error::Error;
use events::ProjectId;
use sqldb::{params, OptionalExtension, Row};

/// How long an approval stays usable.
pub const APPROVAL_VALID_MS: i64 = 24 * 3_600_000;

/// An export waiting for, or given, a second owner's decision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportRequest {
    pub id: i64,
    pub project: u32,
    /// The credential that asked (`api_key:…`, `session:…`).
    pub requester: String,
    pub requester_member: Option<i64>,
    /// The export's parameters, canonical JSON.
    pub params: String,
    pub rows: u64,
    pub users: u64,
    /// Which threshold it crossed.
    pub reason: String,
    /// `pending`, `approved`, `refused`, `used`.
    pub status: String,
    pub decided_by: Option<i64>,
    pub decided_ms: Option<i64>,
    pub created_ms: i64,
}

const COLUMNS: &str = "id, project, requester, requester_member, params, rows, users, reason, status, decided_by, decided_ms, created_ms";

fn from_row(row: &Row) -> sqldb::Result<ExportRequest> {
    Ok(ExportRequest {
        id: row.get(0)?,
        project: row.get(1)?,
        requester: row.get(2)?,
        requester_member: row.get(3)?,
        params: row.get(4)?,
        rows: row.get::<_, i64>(5)? as u64,
        users: row.get::<_, i64>(6)? as u64,
        reason: row.get(7)?,
        status: row.get(8)?,
        decided_by: row.get(9)?,
        decided_ms: row.get(10)?,
        created_ms: row.get(11)?,
    })
}

/// What a new request carries.
#[derive(Debug, Clone)]
pub struct NewExportRequest<'a> {
    pub project: ProjectId,
    pub requester: &'a str,
    pub requester_member: Option<i64>,
    pub params: &'a str,
    pub rows: u64,
    pub users: u64,
    pub reason: &'a str,
}

impl Meta {
    /// Files a request, or returns the same credential's pending one for the
    /// same export.
    pub fn request_export(&self, request: &NewExportRequest<'_>) -> Result<ExportRequest, Error> {
        let connection = self.connection();
        let pending: Option<i64> = connection
            .query_row(
                "SELECT id FROM export_requests WHERE project = ?1 AND requester = ?2 AND params = ?3 AND status = 'pending'",
                params![request.project.0, request.requester, request.params],
                |row| row.get(0),
            )
            .optional()?;
        let id = match pending {
            Some(id) => id,
            None => {
                connection.insert_returning_id(
                    "INSERT INTO export_requests (project, requester, requester_member, params, rows, users, reason, status, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8)",
                    params![request.project.0, request.requester, request.requester_member, request.params, request.rows as i64, request.users as i64, request.reason, events::now_ms()],
                )?
            }
        };
        Ok(connection.query_row(&format!("SELECT {COLUMNS} FROM export_requests WHERE id = ?1"), [id], from_row)?)
    }

    pub fn export_request(&self, id: i64) -> Result<Option<ExportRequest>, Error> {
        Ok(self.connection().query_row(&format!("SELECT {COLUMNS} FROM export_requests WHERE id = ?1"), [id], from_row).optional()?)
    }

    /// Requests, newest first; only those in `status` when given.
    pub fn export_requests(&self, status: Option<&str>) -> Result<Vec<ExportRequest>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare(&format!("SELECT {COLUMNS} FROM export_requests WHERE (CAST(?1 AS TEXT) IS NULL OR status = ?1) ORDER BY id DESC"))?;
        let rows = statement.query_map([status], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Approves or refuses a pending request; false when it was not pending.
    pub fn decide_export_request(&self, id: i64, owner: i64, approve: bool) -> Result<bool, Error> {
        let status = if approve { "approved" } else { "refused" };
        let changed = self.connection().execute(
            "UPDATE export_requests SET status = ?2, decided_by = ?3, decided_ms = ?4 WHERE id = ?1 AND status = 'pending'",
            params![id, status, owner, events::now_ms()],
        )?;
        Ok(changed > 0)
    }

    /// Spends an approval: true once, for the credential that asked, for
    /// the same export, within [`APPROVAL_VALID_MS`] of the decision.
    pub fn use_export_approval(&self, id: i64, requester: &str, params_json: &str, now_ms: i64) -> Result<bool, Error> {
        let changed = self.connection().execute(
            "UPDATE export_requests SET status = 'used', used_ms = ?4 WHERE id = ?1 AND requester = ?2 AND params = ?3 AND status = 'approved' AND decided_ms >= ?5",
            params![id, requester, params_json, now_ms, now_ms - APPROVAL_VALID_MS],
        )?;
        Ok(changed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_is_spent_once_by_its_requester_for_its_export() {
        crate::testing::on_each_backend(|meta| {
        let project = meta.create_project("p").unwrap().project.id;
        let new = NewExportRequest { project, requester: "api_key:k#1", requester_member: None, params: "{\"from\":1}", rows: 5000, users: 40, reason: "rows" };
        let request = meta.request_export(&new).unwrap();
        assert_eq!(request.status, "pending");
        assert_eq!(meta.request_export(&new).unwrap().id, request.id, "the same pending export is one request");
        assert!(!meta.use_export_approval(request.id, "api_key:k#1", "{\"from\":1}", events::now_ms()).unwrap(), "pending is not approved");
        assert!(meta.decide_export_request(request.id, 9, true).unwrap());
        assert!(!meta.decide_export_request(request.id, 9, false).unwrap(), "decided once");
        assert!(!meta.use_export_approval(request.id, "api_key:other#2", "{\"from\":1}", events::now_ms()).unwrap());
        assert!(!meta.use_export_approval(request.id, "api_key:k#1", "{\"from\":2}", events::now_ms()).unwrap());
        assert!(!meta.use_export_approval(request.id, "api_key:k#1", "{\"from\":1}", events::now_ms() + APPROVAL_VALID_MS + 1000).unwrap(), "expired");
        assert!(meta.use_export_approval(request.id, "api_key:k#1", "{\"from\":1}", events::now_ms()).unwrap());
        assert!(!meta.use_export_approval(request.id, "api_key:k#1", "{\"from\":1}", events::now_ms()).unwrap(), "used once");
        assert_eq!(meta.export_requests(Some("used")).unwrap().len(), 1);
        });
    }
}
