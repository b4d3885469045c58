//! The fallback factor: password (argon2id) plus TOTP (RFC 6238), for
//! viewers and analysts only, and only when the organisation turned
//! "phishing-resistant only" off. Owners and admins never have it. A
//! session opened this way cannot step up (step-up takes a passkey), so it
//! cannot export or reveal personal data.

use crate::{Access, AccessError, NewSession};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use events::ProjectId;
use keys::SealedValue;
use meta::Role;
use privacy::apply::Sealer;
use totp_rs::{Algorithm, TOTP};

const INSTANCE: ProjectId = ProjectId(0);
const PASSWORD_CHARS_MIN: usize = 12;
const STEP_SECONDS: u64 = 30;

fn totp(secret: &[u8], account: &str) -> Result<TOTP, AccessError> {
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECONDS, secret.to_vec(), Some("Hearth".to_owned()), account.to_owned()).map_err(|e| AccessError::Invalid(e.to_string()))
}

fn subject(member: i64) -> String {
    format!("member-totp:{member}")
}

impl Access {
    fn password_allowed(&self, member: &meta::Member) -> Result<(), AccessError> {
        let organisation = self.meta.organisation_by_id(member.organisation)?;
        if organisation.phishing_resistant_only {
            return Err(AccessError::Invalid("this organisation signs in with passkeys only".to_owned()));
        }
        if member.role >= Role::Admin {
            return Err(AccessError::Invalid("owners and admins sign in with passkeys only".to_owned()));
        }
        Ok(())
    }

    /// Sets a member's password and a new TOTP secret; returns the
    /// `otpauth://` URI for their authenticator app (shown once). The factor
    /// works once a first code confirms it.
    pub fn set_password(&self, member: &meta::Member, password: &str) -> Result<String, AccessError> {
        self.password_allowed(member)?;
        if password.chars().count() < PASSWORD_CHARS_MIN {
            return Err(AccessError::Invalid(format!("a password needs at least {PASSWORD_CHARS_MIN} characters")));
        }
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| AccessError::Invalid(e.to_string()))?;
        let phc = Argon2::default().hash_password(password.as_bytes(), &salt).map_err(|e| AccessError::Invalid(e.to_string()))?.to_string();
        // 160 bits, as RFC 4226 recommends.
        let secret: Vec<u8> = rand::random::<[u8; 20]>().to_vec();
        let token = format!("totp:{}", member.id);
        let mut sealer = self.keys.sealer(INSTANCE)?;
        sealer.seal(&subject(member.id), &token, &serde_json::to_string(&hex::encode(&secret)).unwrap_or_default()).map_err(|e| AccessError::Invalid(e.to_string()))?;
        let sealed: Vec<SealedValue> = sealer.finish()?;
        let ciphertext = sealed.into_iter().next().map(|v| v.ciphertext).ok_or_else(|| AccessError::Invalid("the TOTP secret was not sealed".to_owned()))?;
        self.meta.set_password_factor(member.id, &phc, &ciphertext)?;
        let account = self.email_of(member)?.unwrap_or_else(|| format!("member-{}", member.id));
        Ok(totp(&secret, &account)?.get_url())
    }

    /// Signs in with email, password and a current TOTP code (each code
    /// works once).
    pub fn password_login(&self, email: &str, password: &str, code: &str, country: Option<&str>) -> Result<NewSession, AccessError> {
        let member = self.member_by_email(email).unwrap_or(None).filter(|m| m.disabled_ms.is_none()).ok_or(AccessError::SignInFailed)?;
        self.password_allowed(&member).map_err(|_| AccessError::SignInFailed)?;
        let (phc, sealed, _, _) = self.meta.password_factor(member.id)?.ok_or(AccessError::SignInFailed)?;
        let parsed = PasswordHash::new(&phc).map_err(|_| AccessError::SignInFailed)?;
        Argon2::default().verify_password(password.as_bytes(), &parsed).map_err(|_| AccessError::SignInFailed)?;
        let opened = self.keys.open_value(INSTANCE, &subject(member.id), &format!("totp:{}", member.id), &sealed)?.ok_or(AccessError::SignInFailed)?;
        let secret = hex::decode(serde_json::from_str::<String>(&opened).unwrap_or_default()).map_err(|_| AccessError::SignInFailed)?;
        let checker = totp(&secret, "member")?;
        let now = events::now_ms() as u64 / 1000;
        // The current step and one on either side (clock drift).
        let step = [now.saturating_sub(STEP_SECONDS), now, now + STEP_SECONDS].into_iter().find(|t| checker.generate(*t) == code.trim()).ok_or(AccessError::SignInFailed)?;
        if !self.meta.use_totp_step(member.id, (step / STEP_SECONDS) as i64)? {
            return Err(AccessError::SignInFailed);
        }
        let mut session = self.open_session_for(member, country)?;
        // A password session never counts as a fresh passkey assertion.
        self.meta.step_up_session(&session.short_id, 0)?;
        session.recovery_codes.clear();
        Ok(session)
    }
}
