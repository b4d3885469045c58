//! Projects and their two credentials: the public token that SDKs put in
//! every event, and the project secret (HTTP Basic username) for /import and
//! export. The secret is shown once and stored only as a hash.

use crate::db::Meta;
use crate::error::Error;
use events::ProjectId;
use rand::Rng;
use sqldb::{params, OptionalExtension, Row};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub token: String,
    pub timezone: String,
    pub geo_precision: GeoPrecisionSetting,
}

/// How precise stored locations are: country by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoPrecisionSetting {
    Country,
    Region,
    City,
}

impl GeoPrecisionSetting {
    pub fn as_str(self) -> &'static str {
        match self {
            GeoPrecisionSetting::Country => "country",
            GeoPrecisionSetting::Region => "region",
            GeoPrecisionSetting::City => "city",
        }
    }

    pub fn parse(text: &str) -> Option<GeoPrecisionSetting> {
        match text {
            "country" => Some(GeoPrecisionSetting::Country),
            "region" => Some(GeoPrecisionSetting::Region),
            "city" => Some(GeoPrecisionSetting::City),
            _ => None,
        }
    }
}

/// A created project with its secret, which exists nowhere else afterwards.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub project: Project,
    pub secret: String,
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// 32 base62 characters: about 190 bits.
fn random_secret() -> String {
    let mut rng = rand::rng();
    (0..32).map(|_| BASE62[rng.random_range(0..BASE62.len())] as char).collect()
}

pub(crate) fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

const COLUMNS: &str = "id, name, token, timezone, geo_precision";

fn from_row(row: &Row) -> sqldb::Result<Project> {
    let precision: String = row.get(4)?;
    Ok(Project {
        id: ProjectId(row.get(0)?),
        name: row.get(1)?,
        token: row.get(2)?,
        timezone: row.get(3)?,
        geo_precision: GeoPrecisionSetting::parse(&precision).unwrap_or(GeoPrecisionSetting::Country),
    })
}

impl Meta {
    pub fn create_project(&self, name: &str) -> Result<NewProject, Error> {
        if !valid_name(name) {
            return Err(Error::InvalidProjectName(name.to_owned()));
        }
        let connection = self.connection();
        let exists: Option<i64> =
            connection.query_row("SELECT id FROM projects WHERE name = ?1", [name], |row| row.get(0)).optional()?;
        if exists.is_some() {
            return Err(Error::ProjectExists(name.to_owned()));
        }
        let token = random_token();
        let secret = random_secret();
        let id = connection.insert_returning_id(
            "INSERT INTO projects (name, token, secret_sha256, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![name, token, secret_hash(&secret), events::now_ms()],
        )?;
        let project = Project {
            id: ProjectId(u32::try_from(id).unwrap_or(u32::MAX)),
            name: name.to_owned(),
            token,
            timezone: "UTC".to_owned(),
            geo_precision: GeoPrecisionSetting::Country,
        };
        Ok(NewProject { project, secret })
    }

    pub fn projects(&self) -> Result<Vec<Project>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare(&format!("SELECT {COLUMNS} FROM projects ORDER BY id"))?;
        let projects = statement.query_map([], from_row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(projects)
    }

    pub fn project_by_name(&self, name: &str) -> Result<Project, Error> {
        let connection = self.connection();
        let sql = format!("SELECT {COLUMNS} FROM projects WHERE name = ?1");
        connection.query_row(&sql, [name], from_row).optional()?.ok_or_else(|| Error::NoSuchProject(name.to_owned()))
    }

    /// The project of a public token: its current one, or one retired by a
    /// rotation and still within its overlap.
    pub fn project_by_token(&self, token: &str) -> Result<Option<Project>, Error> {
        let connection = self.connection();
        let sql = format!(
            "SELECT {COLUMNS} FROM projects WHERE token = ?1
             UNION ALL SELECT {COLUMNS} FROM projects WHERE id = (SELECT project FROM project_tokens WHERE token = ?1 AND expires_ms > ?2)
             LIMIT 1"
        );
        Ok(connection.query_row(&sql, params![token, events::now_ms()], from_row).optional()?)
    }

    /// The project of a secret, unless the secret was switched off.
    pub fn project_by_secret(&self, secret: &str) -> Result<Option<Project>, Error> {
        let connection = self.connection();
        let sql = format!("SELECT {COLUMNS} FROM projects WHERE secret_sha256 = ?1 AND secret_disabled = 0");
        Ok(connection.query_row(&sql, [secret_hash(secret)], from_row).optional()?)
    }

    pub fn project_by_id(&self, id: ProjectId) -> Result<Option<Project>, Error> {
        let connection = self.connection();
        let sql = format!("SELECT {COLUMNS} FROM projects WHERE id = ?1");
        Ok(connection.query_row(&sql, [id.0], from_row).optional()?)
    }

    /// Sets the IANA time zone reports bucket by (validated by the caller).
    pub fn set_timezone(&self, project: ProjectId, timezone: &str) -> Result<(), Error> {
        self.connection().execute("UPDATE projects SET timezone = ?1 WHERE id = ?2", params![timezone, project.0])?;
        Ok(())
    }

    pub fn set_geo_precision(&self, project: ProjectId, precision: GeoPrecisionSetting) -> Result<(), Error> {
        self.connection().execute("UPDATE projects SET geo_precision = ?1 WHERE id = ?2", params![precision.as_str(), project.0])?;
        Ok(())
    }
}
