//! WebAuthn ceremonies in flight, for nodes that share the metadata: the
//! state between a ceremony's start and its finish, which may reach another
//! node behind the load balancer. Stored under the SHA-256 of the ceremony
//! id, as secrets are; each is taken (deleted) at most once.

use crate::db::Meta;
use crate::error::Error;
use sha2::{Digest, Sha256};
use sqldb::{params, OptionalExtension};

fn id_hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

impl Meta {
    /// Stores a ceremony's state, dropping the ones started before `expired_before_ms`.
    pub fn store_ceremony(&self, id: &str, state_json: &str, now_ms: i64, expired_before_ms: i64) -> Result<(), Error> {
        let connection = self.connection();
        connection.execute("DELETE FROM ceremonies WHERE created_ms < ?1", [expired_before_ms])?;
        connection.execute("INSERT INTO ceremonies (id_sha256, state, created_ms) VALUES (?1, ?2, ?3)", params![id_hash(id), state_json, now_ms])?;
        Ok(())
    }

    /// Takes a ceremony's state (it is gone afterwards) unless it started
    /// before `expired_before_ms`.
    pub fn take_ceremony(&self, id: &str, expired_before_ms: i64) -> Result<Option<String>, Error> {
        let taken: Option<(String, i64)> = self
            .connection()
            .query_row("DELETE FROM ceremonies WHERE id_sha256 = ?1 RETURNING state, created_ms", [id_hash(id)], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        Ok(taken.filter(|(_, created_ms)| *created_ms >= expired_before_ms).map(|(state, _)| state))
    }
}
