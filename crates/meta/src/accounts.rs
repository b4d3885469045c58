//! Organisations, members, their passkeys, enrolment links and sessions.
//!
//! Nothing secret is stored in the clear: a member's email is a keyed-hash
//! token (for lookup) and a ciphertext (for display), sealed by the caller;
//! enrolment links and session ids are stored as SHA-256 of their 256
//! random bits; passkeys hold only public keys.

use crate::db::Meta;
use crate::error::Error;
use crate::projects::secret_hash;
use events::ProjectId;
use sqldb::{params, OptionalExtension, Row};

/// A member's role in the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Viewer, Role::Analyst, Role::Admin, Role::Owner].into_iter().find(|r| r.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: i64,
    pub name: String,
    pub phishing_resistant_only: bool,
    pub idle_timeout_ms: i64,
    pub absolute_timeout_ms: i64,
    /// The audit records source addresses, not only their countries: off
    /// unless the organisation opts in.
    pub audit_addresses: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: i64,
    pub organisation: i64,
    pub email_token: String,
    pub email_sealed: Vec<u8>,
    pub role: Role,
    pub can_export: bool,
    pub can_view_pii: bool,
    /// Projects granted; empty: all of the organisation's.
    pub projects: Vec<ProjectId>,
    /// The WebAuthn user handle (a random UUID, not the email).
    pub webauthn_id: String,
    pub disabled_ms: Option<i64>,
}

impl Member {
    pub fn may_access(&self, project: ProjectId) -> bool {
        self.projects.is_empty() || self.projects.contains(&project)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub short_id: String,
    pub member: i64,
    pub csrf_sha256: Vec<u8>,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub expires_ms: i64,
    pub idle_ms: i64,
    pub stepped_up_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    pub country: Option<String>,
}

impl Session {
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.revoked_ms.is_none() && now_ms < self.expires_ms && now_ms - self.last_seen_ms < self.idle_ms
    }
}

const ORGANISATION_COLUMNS: &str = "id, name, phishing_resistant_only, idle_timeout_ms, absolute_timeout_ms, audit_addresses";

fn organisation_from_row(row: &Row) -> sqldb::Result<Organisation> {
    Ok(Organisation { id: row.get(0)?, name: row.get(1)?, phishing_resistant_only: row.get(2)?, idle_timeout_ms: row.get(3)?, absolute_timeout_ms: row.get(4)?, audit_addresses: row.get(5)? })
}

const MEMBER_COLUMNS: &str = "id, organisation, email_token, email_sealed, role, can_export, can_view_pii, projects, webauthn_id, disabled_ms";

fn member_from_row(row: &Row) -> sqldb::Result<Member> {
    let role: String = row.get(4)?;
    let projects: String = row.get(7)?;
    Ok(Member {
        id: row.get(0)?,
        organisation: row.get(1)?,
        email_token: row.get(2)?,
        email_sealed: row.get(3)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        can_export: row.get(5)?,
        can_view_pii: row.get(6)?,
        projects: serde_json::from_str::<Vec<u32>>(&projects).unwrap_or_default().into_iter().map(ProjectId).collect(),
        webauthn_id: row.get(8)?,
        disabled_ms: row.get(9)?,
    })
}

const SESSION_COLUMNS: &str = "short_id, member, csrf_sha256, created_ms, last_seen_ms, expires_ms, idle_ms, stepped_up_ms, revoked_ms, country";

fn session_from_row(row: &Row) -> sqldb::Result<Session> {
    Ok(Session {
        short_id: row.get(0)?,
        member: row.get(1)?,
        csrf_sha256: row.get(2)?,
        created_ms: row.get(3)?,
        last_seen_ms: row.get(4)?,
        expires_ms: row.get(5)?,
        idle_ms: row.get(6)?,
        stepped_up_ms: row.get(7)?,
        revoked_ms: row.get(8)?,
        country: row.get(9)?,
    })
}

/// What to create a member with.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub email_token: String,
    pub email_sealed: Vec<u8>,
    pub role: Role,
    pub can_export: bool,
    pub can_view_pii: bool,
    pub projects: Vec<ProjectId>,
    pub webauthn_id: String,
}

impl Meta {
    /// The instance's organisation, created on first use.
    pub fn organisation(&self, name: &str) -> Result<Organisation, Error> {
        let connection = self.connection();
        connection.execute("INSERT INTO organisations (name, created_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING", params![name, events::now_ms()])?;
        Ok(connection.query_row(&format!("SELECT {ORGANISATION_COLUMNS} FROM organisations WHERE name = ?1"), [name], organisation_from_row)?)
    }

    pub fn organisation_by_id(&self, id: i64) -> Result<Organisation, Error> {
        let connection = self.connection();
        Ok(connection.query_row(&format!("SELECT {ORGANISATION_COLUMNS} FROM organisations WHERE id = ?1"), [id], organisation_from_row)?)
    }

    pub fn set_session_timeouts(&self, organisation: i64, idle_ms: i64, absolute_ms: i64) -> Result<(), Error> {
        self.connection().execute("UPDATE organisations SET idle_timeout_ms = ?2, absolute_timeout_ms = ?3 WHERE id = ?1", params![organisation, idle_ms, absolute_ms])?;
        Ok(())
    }

    pub fn create_member(&self, organisation: i64, member: &NewMember) -> Result<Member, Error> {
        let id = {
            let connection = self.connection();
            let projects: Vec<u32> = member.projects.iter().map(|p| p.0).collect();
            connection
                .insert_returning_id(
                    "INSERT INTO members (organisation, email_token, email_sealed, role, can_export, can_view_pii, projects, webauthn_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![organisation, member.email_token, member.email_sealed, member.role.as_str(), member.can_export, member.can_view_pii, serde_json::to_string(&projects).unwrap_or_default(), member.webauthn_id, events::now_ms()],
                )
                .map_err(|e| if e.is_constraint_violation() { Error::Exists("a member with this email".to_owned()) } else { Error::Database(e) })?
        };
        self.member(id)?.ok_or_else(|| Error::NotFound(format!("member {id}")))
    }

    pub fn member(&self, id: i64) -> Result<Option<Member>, Error> {
        let connection = self.connection();
        Ok(connection.query_row(&format!("SELECT {MEMBER_COLUMNS} FROM members WHERE id = ?1"), [id], member_from_row).optional()?)
    }

    pub fn member_by_email_token(&self, token: &str) -> Result<Option<Member>, Error> {
        let connection = self.connection();
        Ok(connection.query_row(&format!("SELECT {MEMBER_COLUMNS} FROM members WHERE email_token = ?1"), [token], member_from_row).optional()?)
    }

    pub fn members(&self, organisation: i64) -> Result<Vec<Member>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare(&format!("SELECT {MEMBER_COLUMNS} FROM members WHERE organisation = ?1 ORDER BY id"))?;
        let rows = statement.query_map([organisation], member_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_member_access(&self, id: i64, role: Role, can_export: bool, can_view_pii: bool, projects: &[ProjectId]) -> Result<(), Error> {
        let projects: Vec<u32> = projects.iter().map(|p| p.0).collect();
        self.connection().execute(
            "UPDATE members SET role = ?2, can_export = ?3, can_view_pii = ?4, projects = ?5 WHERE id = ?1",
            params![id, role.as_str(), can_export, can_view_pii, serde_json::to_string(&projects).unwrap_or_default()],
        )?;
        Ok(())
    }

    /// Disables a member and revokes their sessions, in one transaction.
    pub fn disable_member(&self, id: i64) -> Result<usize, Error> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let now = events::now_ms();
        transaction.execute("UPDATE members SET disabled_ms = ?2 WHERE id = ?1 AND disabled_ms IS NULL", params![id, now])?;
        let revoked = transaction.execute("UPDATE sessions SET revoked_ms = ?2 WHERE member = ?1 AND revoked_ms IS NULL", params![id, now])?;
        transaction.execute("UPDATE enrolments SET used_ms = ?2 WHERE member = ?1 AND used_ms IS NULL", params![id, now])?;
        transaction.commit()?;
        Ok(revoked)
    }

    pub fn create_enrolment(&self, member: i64, token: &str, expires_ms: i64) -> Result<(), Error> {
        self.connection().execute("INSERT INTO enrolments (token_sha256, member, expires_ms) VALUES (?1, ?2, ?3)", params![secret_hash(token), member, expires_ms])?;
        Ok(())
    }

    /// The member of an unused, unexpired enrolment link.
    pub fn enrolment_member(&self, token: &str, now_ms: i64) -> Result<Option<i64>, Error> {
        let connection = self.connection();
        Ok(connection.query_row("SELECT member FROM enrolments WHERE token_sha256 = ?1 AND used_ms IS NULL AND expires_ms > ?2", params![secret_hash(token), now_ms], |row| row.get(0)).optional()?)
    }

    /// Marks an enrolment link used; false when it already was (single use).
    pub fn use_enrolment(&self, token: &str) -> Result<bool, Error> {
        Ok(self.connection().execute("UPDATE enrolments SET used_ms = ?2 WHERE token_sha256 = ?1 AND used_ms IS NULL", params![secret_hash(token), events::now_ms()])? == 1)
    }

    pub fn add_passkey(&self, member: i64, credential_id: &str, passkey_json: &str) -> Result<(), Error> {
        self.connection().execute("INSERT INTO passkeys (member, credential_id, passkey, created_ms) VALUES (?1, ?2, ?3, ?4)", params![member, credential_id, passkey_json, events::now_ms()])?;
        Ok(())
    }

    pub fn passkeys(&self, member: i64) -> Result<Vec<(String, String)>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT credential_id, passkey FROM passkeys WHERE member = ?1 ORDER BY id")?;
        let rows = statement.query_map([member], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A member's passkeys as (credential id, created, last used).
    pub fn passkey_list(&self, member: i64) -> Result<Vec<(String, i64, Option<i64>)>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT credential_id, created_ms, last_used_ms FROM passkeys WHERE member = ?1 ORDER BY id")?;
        let rows = statement.query_map([member], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes one of a member's passkeys, never the last (the account
    /// would have no way in): false when it is not theirs or the last one.
    pub fn remove_passkey(&self, member: i64, credential_id: &str) -> Result<bool, Error> {
        let removed = self.connection().execute(
            "DELETE FROM passkeys WHERE member = ?1 AND credential_id = ?2 AND (SELECT COUNT(*) FROM passkeys WHERE member = ?1) > 1",
            params![member, credential_id],
        )?;
        Ok(removed > 0)
    }

    pub fn update_passkey(&self, credential_id: &str, passkey_json: &str) -> Result<(), Error> {
        self.connection().execute("UPDATE passkeys SET passkey = ?2, last_used_ms = ?3 WHERE credential_id = ?1", params![credential_id, passkey_json, events::now_ms()])?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn create_session(&self, id: &str, short_id: &str, member: i64, csrf: &str, expires_ms: i64, idle_ms: i64, country: Option<&str>) -> Result<(), Error> {
        let now = events::now_ms();
        self.connection().execute(
            "INSERT INTO sessions (id_sha256, short_id, member, csrf_sha256, created_ms, last_seen_ms, expires_ms, idle_ms, stepped_up_ms, country) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?5, ?8)",
            params![secret_hash(id), short_id, member, secret_hash(csrf), now, expires_ms, idle_ms, country],
        )?;
        Ok(())
    }

    /// The session of a cookie value, if it exists (live or not).
    pub fn session(&self, id: &str) -> Result<Option<Session>, Error> {
        let connection = self.connection();
        Ok(connection.query_row(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_sha256 = ?1"), [secret_hash(id)], session_from_row).optional()?)
    }

    pub fn touch_session(&self, short_id: &str, now_ms: i64) -> Result<(), Error> {
        self.connection().execute("UPDATE sessions SET last_seen_ms = ?2 WHERE short_id = ?1", params![short_id, now_ms])?;
        Ok(())
    }

    pub fn step_up_session(&self, short_id: &str, now_ms: i64) -> Result<(), Error> {
        self.connection().execute("UPDATE sessions SET stepped_up_ms = ?2 WHERE short_id = ?1", params![short_id, now_ms])?;
        Ok(())
    }

    pub fn sessions_of(&self, member: Option<i64>) -> Result<Vec<Session>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE (CAST(?1 AS BIGINT) IS NULL OR member = ?1) AND revoked_ms IS NULL ORDER BY created_ms"))?;
        let rows = statement.query_map([member], session_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes sessions: one (by short id), a member's, or all (`None, None`).
    pub fn revoke_sessions(&self, short_id: Option<&str>, member: Option<i64>) -> Result<usize, Error> {
        Ok(self.connection().execute(
            "UPDATE sessions SET revoked_ms = ?3 WHERE revoked_ms IS NULL AND (CAST(?1 AS TEXT) IS NULL OR short_id = ?1) AND (CAST(?2 AS BIGINT) IS NULL OR member = ?2)",
            params![short_id, member, events::now_ms()],
        )?)
    }

    /// Replaces a member's recovery codes (stored as hashes).
    pub fn set_recovery_codes(&self, member: i64, codes: &[String]) -> Result<(), Error> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        transaction.execute("DELETE FROM recovery_codes WHERE member = ?1", [member])?;
        for code in codes {
            transaction.execute("INSERT INTO recovery_codes (member, code_sha256) VALUES (?1, ?2)", params![member, secret_hash(code)])?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Uses up a recovery code; false when it is unknown or was used.
    pub fn use_recovery_code(&self, member: i64, code: &str) -> Result<bool, Error> {
        Ok(self.connection().execute("UPDATE recovery_codes SET used_ms = ?3 WHERE member = ?1 AND code_sha256 = ?2 AND used_ms IS NULL", params![member, secret_hash(code), events::now_ms()])? == 1)
    }

    /// Opts the organisation in to (or out of) source addresses in the audit.
    pub fn set_audit_addresses(&self, organisation: i64, on: bool) -> Result<(), Error> {
        self.connection().execute("UPDATE organisations SET audit_addresses = ?2 WHERE id = ?1", params![organisation, on])?;
        Ok(())
    }

    /// Whether audit entries carry source addresses (the instance's
    /// organisation opted in).
    pub fn audit_addresses(&self) -> Result<bool, Error> {
        let connection = self.connection();
        Ok(connection.query_row("SELECT COUNT(*) FROM organisations WHERE audit_addresses = 1", [], |row| row.get::<_, i64>(0))? > 0)
    }

    pub fn set_phishing_resistant_only(&self, organisation: i64, on: bool) -> Result<(), Error> {
        self.connection().execute("UPDATE organisations SET phishing_resistant_only = ?2 WHERE id = ?1", params![organisation, on])?;
        Ok(())
    }

    /// Stores a member's password (an argon2id PHC string) and sealed TOTP
    /// secret, unconfirmed until a first code proves the authenticator app.
    pub fn set_password_factor(&self, member: i64, password_phc: &str, totp_sealed: &[u8]) -> Result<(), Error> {
        self.connection().execute(
            "UPDATE members SET password_phc = ?2, totp_sealed = ?3, totp_confirmed = 0, totp_last_step = 0 WHERE id = ?1",
            params![member, password_phc, totp_sealed],
        )?;
        Ok(())
    }

    /// (password PHC, sealed TOTP secret, confirmed, last step used).
    pub fn password_factor(&self, member: i64) -> Result<Option<(String, Vec<u8>, bool, i64)>, Error> {
        let connection = self.connection();
        let row: Option<(Option<String>, Option<Vec<u8>>, bool, i64)> = connection
            .query_row("SELECT password_phc, totp_sealed, totp_confirmed, totp_last_step FROM members WHERE id = ?1", [member], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
            .optional()?;
        Ok(row.and_then(|(phc, sealed, confirmed, step)| Some((phc?, sealed?, confirmed, step))))
    }

    /// Records a TOTP step as used (codes are single use) and confirms the
    /// factor; false when the step is not newer than the last one used.
    pub fn use_totp_step(&self, member: i64, step: i64) -> Result<bool, Error> {
        Ok(self.connection().execute("UPDATE members SET totp_last_step = ?2, totp_confirmed = 1 WHERE id = ?1 AND totp_last_step < ?2", params![member, step])? == 1)
    }

    /// Records a sign-in country; true when the member had signed in before,
    /// but never from this country.
    pub fn note_login_country(&self, member: i64, country: &str) -> Result<bool, Error> {
        let connection = self.connection();
        let inserted = connection.execute("INSERT INTO login_countries (member, country, first_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", params![member, country, events::now_ms()])? == 1;
        let known: i64 = connection.query_row("SELECT COUNT(*) FROM login_countries WHERE member = ?1", [member], |row| row.get(0))?;
        Ok(inserted && known > 1)
    }
}
