//! Saved dashboards: a name and an ordered list of tiles per project. A tile
//! is a saved report (its title and the dashboard link that names it); what
//! the link means belongs to the dashboard app, here it is only stored.

use crate::db::Meta;
use crate::error::Error;
use events::ProjectId;
use sqldb::{params, OptionalExtension, Row};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dashboard {
    pub id: i64,
    pub project: u32,
    pub name: String,
    /// JSON array text of `{title, report}` objects.
    pub tiles: String,
    /// The credential that saved it.
    pub created_by: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

const COLUMNS: &str = "id, project, name, tiles, created_by, created_ms, updated_ms";

fn from_row(row: &Row) -> sqldb::Result<Dashboard> {
    Ok(Dashboard { id: row.get(0)?, project: row.get(1)?, name: row.get(2)?, tiles: row.get(3)?, created_by: row.get(4)?, created_ms: row.get(5)?, updated_ms: row.get(6)? })
}

impl Meta {
    pub fn create_dashboard(&self, project: ProjectId, name: &str, tiles: &str, created_by: &str) -> Result<Dashboard, Error> {
        let connection = self.connection();
        let now = events::now_ms();
        let id = connection.insert_returning_id(
            "INSERT INTO dashboards (project, name, tiles, created_by, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![project.0, name, tiles, created_by, now],
        )?;
        Ok(connection.query_row(&format!("SELECT {COLUMNS} FROM dashboards WHERE id = ?1"), [id], from_row)?)
    }

    pub fn dashboards(&self, project: ProjectId) -> Result<Vec<Dashboard>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare(&format!("SELECT {COLUMNS} FROM dashboards WHERE project = ?1 ORDER BY name, id"))?;
        let rows = statement.query_map([project.0], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn dashboard(&self, project: ProjectId, id: i64) -> Result<Option<Dashboard>, Error> {
        Ok(self.connection().query_row(&format!("SELECT {COLUMNS} FROM dashboards WHERE project = ?1 AND id = ?2"), params![project.0, id], from_row).optional()?)
    }

    /// Replaces a dashboard's name and tiles; false when it does not exist.
    pub fn update_dashboard(&self, project: ProjectId, id: i64, name: &str, tiles: &str) -> Result<bool, Error> {
        let changed = self.connection().execute(
            "UPDATE dashboards SET name = ?3, tiles = ?4, updated_ms = ?5 WHERE project = ?1 AND id = ?2",
            params![project.0, id, name, tiles, events::now_ms()],
        )?;
        Ok(changed > 0)
    }

    pub fn delete_dashboard(&self, project: ProjectId, id: i64) -> Result<bool, Error> {
        Ok(self.connection().execute("DELETE FROM dashboards WHERE project = ?1 AND id = ?2", params![project.0, id])? > 0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dashboards_are_kept_per_project() {
        crate::testing::on_each_backend(|meta| {
        let a = meta.create_project("a").unwrap().project.id;
        let b = meta.create_project("b").unwrap().project.id;
        let saved = meta.create_dashboard(a, "Growth", "[]", "session:s1").unwrap();
        assert_eq!(meta.dashboards(a).unwrap(), vec![saved.clone()]);
        assert!(meta.dashboards(b).unwrap().is_empty());
        assert!(meta.dashboard(b, saved.id).unwrap().is_none(), "another project's id is not found");
        assert!(meta.update_dashboard(a, saved.id, "Growth", r#"[{"title":"t","report":"insights?event=E"}]"#).unwrap());
        assert!(!meta.update_dashboard(b, saved.id, "x", "[]").unwrap());
        assert_eq!(meta.dashboard(a, saved.id).unwrap().unwrap().tiles, r#"[{"title":"t","report":"insights?event=E"}]"#);
        assert!(meta.delete_dashboard(a, saved.id).unwrap());
        assert!(meta.dashboards(a).unwrap().is_empty());
        });
    }
}
