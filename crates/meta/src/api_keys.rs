//! Service accounts and their API keys; the rotation of the public project
//! token; switching the project secret off.
//!
//! Key format (after GitHub's and Stripe's): `hth_sk_`, 30 base62
//! characters of randomness (about 178 bits), and 6 base62 characters of
//! the CRC32 of those 30, so a secret scanner can recognise a Hearth key
//! offline without false positives. A key is shown once; stored are its
//! SHA-256 (a plain hash suffices for 128+ random bits: OWASP ASVS 5.0
//! 6.5.2) and, for display, its prefix and last four characters.

use crate::db::Meta;
use crate::error::Error;
use crate::projects::secret_hash;
use events::ProjectId;
use rand::Rng;
use sqldb::{params, OptionalExtension, Row};

pub const KEY_PREFIX: &str = "hth_sk_";
const BODY_CHARS: usize = 30;
const CHECKSUM_CHARS: usize = 6;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Send events and profiles (`/import`).
    Ingest,
    /// Run reports, read profiles and cohorts.
    Read,
    /// Raw rows: exports and GDPR retrievals.
    Export,
    /// Change settings and policies, erase people, read the audit.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Ingest, Scope::Read, Scope::Export, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Export => "export",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

fn base62(mut n: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).expect("base62 is ASCII")
}

/// A new key: prefix, random body, checksum.
fn new_key() -> String {
    let mut rng = rand::rng();
    let body: String = (0..BODY_CHARS).map(|_| BASE62[rng.random_range(0..BASE62.len())] as char).collect();
    let checksum = base62(u64::from(crc32fast::hash(body.as_bytes())), CHECKSUM_CHARS);
    format!("{KEY_PREFIX}{body}{checksum}")
}

/// True when `text` has the shape and checksum of a Hearth key (what a
/// secret scanner checks offline).
pub fn is_well_formed_key(text: &str) -> bool {
    let Some(rest) = text.strip_prefix(KEY_PREFIX) else { return false };
    if rest.len() != BODY_CHARS + CHECKSUM_CHARS || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, checksum) = rest.split_at(BODY_CHARS);
    base62(u64::from(crc32fast::hash(body.as_bytes())), CHECKSUM_CHARS) == checksum
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub id: i64,
    pub name: String,
    pub disabled_ms: Option<i64>,
    pub created_ms: i64,
}

/// A stored key (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub account: i64,
    pub account_name: String,
    /// `hth_sk_…abcd`: the prefix and the last four characters.
    pub display: String,
    pub scopes: Vec<Scope>,
    /// Empty: none (a key must name its projects).
    pub projects: Vec<ProjectId>,
    pub allow_cidrs: Vec<String>,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    pub disabled_ms: Option<i64>,
    /// The key this one rotated.
    pub replaces: Option<i64>,
    /// The account is disabled (which disables every key of it).
    pub account_disabled: bool,
}

impl ApiKey {
    /// Usable at `now_ms`: neither it nor its account disabled, not expired.
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.disabled_ms.is_none() && !self.account_disabled && self.expires_ms.is_none_or(|t| now_ms < t)
    }

    /// What the CLI and the API show of a key (never its secret).
    pub fn summary_json(&self, now_ms: i64) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "account": self.account_name, "display": self.display,
            "scopes": self.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "projects": self.projects.iter().map(|p| p.0).collect::<Vec<_>>(),
            "allow_cidrs": self.allow_cidrs, "created_ms": self.created_ms, "expires_ms": self.expires_ms,
            "last_used_ms": self.last_used_ms, "disabled_ms": self.disabled_ms, "replaces": self.replaces,
            "live": self.is_live(now_ms),
        })
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub scopes: Vec<Scope>,
    pub projects: Vec<ProjectId>,
    pub allow_cidrs: Vec<String>,
    pub expires_ms: Option<i64>,
}

const KEY_COLUMNS: &str = "k.id, k.account, a.name, k.display, k.scopes, k.projects, k.allow_cidrs, k.created_ms, k.expires_ms, k.last_used_ms, k.disabled_ms, k.replaces, a.disabled_ms";

fn key_from_row(row: &Row) -> sqldb::Result<ApiKey> {
    let scopes: String = row.get(4)?;
    let projects: String = row.get(5)?;
    let cidrs: String = row.get(6)?;
    Ok(ApiKey {
        id: row.get(0)?,
        account: row.get(1)?,
        account_name: row.get(2)?,
        display: row.get(3)?,
        scopes: scopes.split(',').filter_map(Scope::parse).collect(),
        projects: serde_json::from_str::<Vec<u32>>(&projects).unwrap_or_default().into_iter().map(ProjectId).collect(),
        allow_cidrs: serde_json::from_str(&cidrs).unwrap_or_default(),
        created_ms: row.get(7)?,
        expires_ms: row.get(8)?,
        last_used_ms: row.get(9)?,
        disabled_ms: row.get(10)?,
        replaces: row.get(11)?,
        account_disabled: row.get::<_, Option<i64>>(12)?.is_some(),
    })
}

impl Meta {
    pub fn create_service_account(&self, name: &str) -> Result<ServiceAccount, Error> {
        if !(1..=64).contains(&name.len()) || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(Error::InvalidName { what: "service account", name: name.to_owned() });
        }
        let connection = self.connection();
        let now = events::now_ms();
        let id = connection
            .insert_returning_id("INSERT INTO service_accounts (name, created_ms) VALUES (?1, ?2)", params![name, now])
            .map_err(|e| if e.is_constraint_violation() { Error::Exists(format!("service account {name:?}")) } else { Error::Database(e) })?;
        Ok(ServiceAccount { id, name: name.to_owned(), disabled_ms: None, created_ms: now })
    }

    pub fn service_accounts(&self) -> Result<Vec<ServiceAccount>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT id, name, disabled_ms, created_ms FROM service_accounts ORDER BY id")?;
        let rows = statement.query_map([], |row| Ok(ServiceAccount { id: row.get(0)?, name: row.get(1)?, disabled_ms: row.get(2)?, created_ms: row.get(3)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn service_account(&self, name: &str) -> Result<ServiceAccount, Error> {
        let connection = self.connection();
        connection
            .query_row("SELECT id, name, disabled_ms, created_ms FROM service_accounts WHERE name = ?1", [name], |row| {
                Ok(ServiceAccount { id: row.get(0)?, name: row.get(1)?, disabled_ms: row.get(2)?, created_ms: row.get(3)? })
            })
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("service account {name:?}")))
    }

    /// Disables an account: every key of it stops working on the next request.
    pub fn disable_service_account(&self, id: i64) -> Result<(), Error> {
        self.connection().execute("UPDATE service_accounts SET disabled_ms = ?2 WHERE id = ?1 AND disabled_ms IS NULL", params![id, events::now_ms()])?;
        Ok(())
    }

    /// Creates a key; returns it (the only time its secret exists outside
    /// the caller) and its record.
    pub fn create_api_key(&self, account: i64, spec: &KeySpec, replaces: Option<i64>) -> Result<(String, ApiKey), Error> {
        let key = new_key();
        let display = format!("{KEY_PREFIX}…{}", &key[key.len() - 4..]);
        let scopes: Vec<&str> = spec.scopes.iter().map(|s| s.as_str()).collect();
        let projects: Vec<u32> = spec.projects.iter().map(|p| p.0).collect();
        let id = {
            let connection = self.connection();
            connection.insert_returning_id(
                "INSERT INTO api_keys (account, display, secret_sha256, scopes, projects, allow_cidrs, created_ms, expires_ms, replaces) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![account, display, secret_hash(&key), scopes.join(","), serde_json::to_string(&projects).unwrap_or_default(), serde_json::to_string(&spec.allow_cidrs).unwrap_or_default(), events::now_ms(), spec.expires_ms, replaces],
            )?
        };
        let record = self.api_key(id)?.ok_or_else(|| Error::NotFound(format!("key {id}")))?;
        Ok((key, record))
    }

    pub fn api_key(&self, id: i64) -> Result<Option<ApiKey>, Error> {
        let connection = self.connection();
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k JOIN service_accounts a ON a.id = k.account WHERE k.id = ?1");
        Ok(connection.query_row(&sql, [id], key_from_row).optional()?)
    }

    pub fn api_keys(&self) -> Result<Vec<ApiKey>, Error> {
        let connection = self.connection();
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k JOIN service_accounts a ON a.id = k.account ORDER BY k.id");
        let mut statement = connection.prepare(&sql)?;
        let rows = statement.query_map([], key_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The key with this secret, live or not (the caller decides), and
    /// records its use.
    pub fn api_key_by_secret(&self, secret: &str) -> Result<Option<ApiKey>, Error> {
        if !is_well_formed_key(secret) {
            return Ok(None);
        }
        let found = {
            let connection = self.connection();
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k JOIN service_accounts a ON a.id = k.account WHERE k.secret_sha256 = ?1");
            connection.query_row(&sql, [secret_hash(secret)], key_from_row).optional()?
        };
        if let Some(key) = &found {
            self.connection().execute("UPDATE api_keys SET last_used_ms = ?2 WHERE id = ?1", params![key.id, events::now_ms()])?;
        }
        Ok(found)
    }

    pub fn disable_api_key(&self, id: i64) -> Result<bool, Error> {
        Ok(self.connection().execute("UPDATE api_keys SET disabled_ms = ?2 WHERE id = ?1 AND disabled_ms IS NULL", params![id, events::now_ms()])? > 0)
    }

    /// Rotation with overlap: a new key with the old one's rights; the old
    /// one keeps working until `old_expires_ms`.
    pub fn rotate_api_key(&self, id: i64, old_expires_ms: i64) -> Result<(String, ApiKey), Error> {
        let old = self.api_key(id)?.ok_or_else(|| Error::NotFound(format!("key {id}")))?;
        let spec = KeySpec { scopes: old.scopes.clone(), projects: old.projects.clone(), allow_cidrs: old.allow_cidrs.clone(), expires_ms: old.expires_ms.map(|t| t.max(old_expires_ms)) };
        let created = self.create_api_key(old.account, &spec, Some(old.id))?;
        let expires = old.expires_ms.map_or(old_expires_ms, |t| t.min(old_expires_ms));
        self.connection().execute("UPDATE api_keys SET expires_ms = ?2 WHERE id = ?1", params![id, expires])?;
        Ok(created)
    }

    /// A new public token for a project; the old one keeps being accepted
    /// until `old_expires_ms`, so data collection never stops.
    pub fn rotate_project_token(&self, project: ProjectId, old_expires_ms: i64) -> Result<String, Error> {
        let token = hex::encode(rand::random::<[u8; 16]>());
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let old: String = transaction.query_row("SELECT token FROM projects WHERE id = ?1", [project.0], |row| row.get(0))?;
        transaction.execute("INSERT INTO project_tokens (project, token, expires_ms) VALUES (?1, ?2, ?3)", params![project.0, old, old_expires_ms])?;
        transaction.execute("UPDATE projects SET token = ?2 WHERE id = ?1", params![project.0, token])?;
        transaction.commit()?;
        Ok(token)
    }

    /// The project of a token retired by a rotation and still in its overlap.
    pub fn project_id_by_old_token(&self, token: &str, now_ms: i64) -> Result<Option<ProjectId>, Error> {
        let connection = self.connection();
        Ok(connection.query_row("SELECT project FROM project_tokens WHERE token = ?1 AND expires_ms > ?2", params![token, now_ms], |row| row.get(0)).optional()?.map(ProjectId))
    }

    /// Switches the Mixpanel-compatible project secret off (or on again).
    pub fn set_secret_disabled(&self, project: ProjectId, disabled: bool) -> Result<(), Error> {
        self.connection().execute("UPDATE projects SET secret_disabled = ?2 WHERE id = ?1", params![project.0, disabled])?;
        Ok(())
    }

    pub fn secret_disabled(&self, project: ProjectId) -> Result<bool, Error> {
        Ok(self.connection().query_row("SELECT secret_disabled FROM projects WHERE id = ?1", [project.0], |row| row.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_a_checksum_scanners_can_check() {
        let key = new_key();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 36);
        assert!(is_well_formed_key(&key));
        let mut flipped = key.clone().into_bytes();
        let at = KEY_PREFIX.len() + 3;
        flipped[at] = if flipped[at] == b'a' { b'b' } else { b'a' };
        assert!(!is_well_formed_key(&String::from_utf8(flipped).unwrap()));
        assert!(!is_well_formed_key("hth_sk_short"));
        assert_ne!(new_key(), key);
    }
}
