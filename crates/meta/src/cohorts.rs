//! Saved cohorts: a name and a JSON definition per project. The definition's
//! meaning belongs to the query engine; here it is only stored.

use crate::db::Meta;
use crate::error::Error;
use events::ProjectId;
use sqldb::{params, OptionalExtension};

#[derive(Debug, Clone, PartialEq)]
pub struct SavedCohort {
    pub id: i64,
    pub name: String,
    /// JSON text.
    pub definition: String,
    pub created_ms: i64,
}

impl Meta {
    pub fn create_cohort(&self, project: ProjectId, name: &str, definition: &str, created_ms: i64) -> Result<SavedCohort, Error> {
        let connection = self.connection();
        let id = connection.insert_returning_id(
            "INSERT INTO cohorts (project, name, definition, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![project.0, name, definition, created_ms],
        )?;
        drop(connection);
        self.bump_profile_generation();
        Ok(SavedCohort { id, name: name.to_owned(), definition: definition.to_owned(), created_ms })
    }

    pub fn cohorts(&self, project: ProjectId) -> Result<Vec<SavedCohort>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT id, name, definition, created_ms FROM cohorts WHERE project = ?1 ORDER BY id")?;
        let rows = statement.query_map([project.0], |row| {
            Ok(SavedCohort { id: row.get(0)?, name: row.get(1)?, definition: row.get(2)?, created_ms: row.get(3)? })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn cohort(&self, project: ProjectId, id: i64) -> Result<Option<SavedCohort>, Error> {
        let connection = self.connection();
        let found = connection
            .query_row("SELECT id, name, definition, created_ms FROM cohorts WHERE project = ?1 AND id = ?2", params![project.0, id], |row| {
                Ok(SavedCohort { id: row.get(0)?, name: row.get(1)?, definition: row.get(2)?, created_ms: row.get(3)? })
            })
            .optional()?;
        Ok(found)
    }

    /// Removes a cohort; false when it did not exist.
    pub fn delete_cohort(&self, project: ProjectId, id: i64) -> Result<bool, Error> {
        let removed = self.connection().execute("DELETE FROM cohorts WHERE project = ?1 AND id = ?2", params![project.0, id])?;
        self.bump_profile_generation();
        Ok(removed > 0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cohorts_are_saved_per_project_and_removed() {
        crate::testing::on_each_backend(|meta| {
        let a = meta.create_project("a").unwrap().project.id;
        let b = meta.create_project("b").unwrap().project.id;
        let before = meta.profile_generation();
        let saved = meta.create_cohort(a, "pros", r#"{"all":[]}"#, 5).unwrap();
        assert!(meta.profile_generation() > before);
        assert_eq!(meta.cohorts(a).unwrap(), vec![saved.clone()]);
        assert!(meta.cohorts(b).unwrap().is_empty());
        assert_eq!(meta.cohort(b, saved.id).unwrap(), None);
        assert!(meta.delete_cohort(a, saved.id).unwrap());
        assert!(!meta.delete_cohort(a, saved.id).unwrap());
        assert!(meta.cohorts(a).unwrap().is_empty());
        });
    }
}
