//! What incident containment changes: blocked addresses, the export freeze,
//! and project secrets rotated in a hurry.

use crate::db::Meta;
use crate::error::Error;
use crate::projects::secret_hash;
use events::ProjectId;
use rand::Rng;
use sqldb::params;

impl Meta {
    pub fn block_address(&self, cidr: &str, reason: &str) -> Result<bool, Error> {
        let n = self.connection().execute("INSERT INTO blocked_addresses (cidr, reason, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", params![cidr, reason, events::now_ms()])?;
        self.bump_policy_generation();
        Ok(n == 1)
    }

    pub fn unblock_address(&self, cidr: &str) -> Result<bool, Error> {
        let n = self.connection().execute("DELETE FROM blocked_addresses WHERE cidr = ?1", [cidr])?;
        self.bump_policy_generation();
        Ok(n == 1)
    }

    pub fn blocked_addresses(&self) -> Result<Vec<String>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT cidr FROM blocked_addresses ORDER BY cidr")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Freezes (or lifts the freeze on) exports for every organisation.
    pub fn set_exports_frozen(&self, frozen: bool) -> Result<(), Error> {
        let value = frozen.then(events::now_ms);
        let connection = self.connection();
        connection.execute("INSERT INTO organisations (name, created_ms) VALUES ('default', ?1) ON CONFLICT DO NOTHING", [events::now_ms()])?;
        connection.execute("UPDATE organisations SET exports_frozen_ms = ?1", [value])?;
        Ok(())
    }

    pub fn exports_frozen(&self) -> Result<bool, Error> {
        let connection = self.connection();
        Ok(connection.query_row("SELECT COUNT(*) FROM organisations WHERE exports_frozen_ms IS NOT NULL", [], |row| row.get::<_, i64>(0))? > 0)
    }

    /// A new project secret (the old one stops working at once); returned
    /// once.
    pub fn rotate_project_secret(&self, project: ProjectId) -> Result<String, Error> {
        const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut rng = rand::rng();
        let secret: String = (0..32).map(|_| BASE62[rng.random_range(0..BASE62.len())] as char).collect();
        self.connection().execute("UPDATE projects SET secret_sha256 = ?2 WHERE id = ?1", params![project.0, secret_hash(&secret)])?;
        Ok(secret)
    }

    /// Disables every API key (containment `--all`).
    pub fn disable_all_api_keys(&self) -> Result<usize, Error> {
        Ok(self.connection().execute("UPDATE api_keys SET disabled_ms = ?1 WHERE disabled_ms IS NULL", [events::now_ms()])?)
    }
}
