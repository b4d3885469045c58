//! Creating and finding members, with their email protected: a keyed-hash
//! token for lookup and a ciphertext under its own subject key (in the
//! instance's namespace of the key store) for display.

use crate::{Access, AccessError};
use events::ProjectId;
use keys::SealedValue;
use meta::{Member, NewMember, Role};
use privacy::apply::Sealer;
use privacy::crypto;

/// The key-store namespace of instance-level (not per-project) secrets.
const INSTANCE: ProjectId = ProjectId(0);

/// A member created with a one-time enrolment link.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub member: Member,
    /// `{origin}/enrol#{token}`: shown once.
    pub link: String,
    pub token: String,
    pub expires_ms: i64,
}

fn normalise(email: &str) -> Result<String, AccessError> {
    let email = email.trim().to_lowercase();
    let valid = email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')) && email.len() <= 254;
    if valid { Ok(email) } else { Err(AccessError::Invalid(format!("{email:?} is not an email address"))) }
}

fn subject(token: &str) -> String {
    format!("member-email:{token}")
}

impl Access {
    /// The keyed token that stands for an email in the metadata and the
    /// audit (the failed-sign-in alert counts by it).
    pub fn email_token(&self, email: &str) -> Result<String, AccessError> {
        let keys = self.keys.project_keys(INSTANCE)?;
        Ok(crypto::value_token(&keys.hash_key, email))
    }

    /// A member's email, decrypted (for their own account page and the
    /// admin's member list).
    pub fn email_of(&self, member: &Member) -> Result<Option<String>, AccessError> {
        let opened = self.keys.open_value(INSTANCE, &subject(&member.email_token), &member.email_token, &member.email_sealed)?;
        Ok(opened.map(|text| serde_json::from_str::<String>(&text).unwrap_or_default()))
    }

    pub fn member_by_email(&self, email: &str) -> Result<Option<Member>, AccessError> {
        let token = self.email_token(&normalise(email)?)?;
        Ok(self.meta.member_by_email_token(&token)?)
    }

    /// Creates a member of the instance's organisation and an enrolment link
    /// to register their first passkey.
    pub fn invite(&self, email: &str, role: Role, can_export: bool, can_view_pii: bool, projects: &[ProjectId]) -> Result<Invitation, AccessError> {
        let email = normalise(email)?;
        let organisation = self.meta.organisation("default")?;
        let token = self.email_token(&email)?;
        let mut sealer = self.keys.sealer(INSTANCE)?;
        sealer.seal(&subject(&token), &token, &serde_json::to_string(&email).unwrap_or_default()).map_err(|e| AccessError::Invalid(e.to_string()))?;
        let sealed: Vec<SealedValue> = sealer.finish()?;
        let email_sealed = sealed.into_iter().next().map(|v| v.ciphertext).ok_or_else(|| AccessError::Invalid("the email was not sealed".to_owned()))?;
        let member = self.meta.create_member(
            organisation.id,
            &NewMember { email_token: token, email_sealed, role, can_export, can_view_pii, projects: projects.to_vec(), webauthn_id: webauthn_rs::prelude::Uuid::new_v4().to_string() },
        )?;
        let (link, token, expires_ms) = self.enrolment_link(member.id)?;
        Ok(Invitation { member, link, token, expires_ms })
    }

    /// A new one-time enrolment link for an existing member (a lost passkey).
    pub fn enrolment_link(&self, member: i64) -> Result<(String, String, i64), AccessError> {
        let token = hex::encode(rand::random::<[u8; 32]>());
        let expires_ms = events::now_ms() + self.config.enrolment_ms;
        self.meta.create_enrolment(member, &token, expires_ms)?;
        let link = format!("{}enrol#{token}", self.config.origin.as_str().trim_end_matches('/').to_owned() + "/");
        Ok((link, token, expires_ms))
    }
}
