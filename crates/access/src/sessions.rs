//! The ceremonies (enrolment, sign-in, step-up) and the sessions they open.

use crate::ceremonies::Ceremony;
use crate::{Access, AccessError};
use meta::{Member, Session};
use serde_json::Value;
use webauthn_rs::prelude::{Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Uuid};

/// A recovery code: 80 random bits as four groups of four base32 characters.
fn recovery_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes: [u8; 16] = rand::random();
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[(*b as usize) % 32] as char).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// How long a step-up lasts.
pub const STEP_UP_MS: i64 = 5 * 60 * 1000;
/// Sessions are touched at most this often (idle timeouts are minutes).
const TOUCH_EVERY_MS: i64 = 30_000;

/// A session just opened: the cookie value and the CSRF token, both shown
/// to the browser once and stored only as hashes.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub short_id: String,
    pub csrf: String,
    pub member: Member,
    pub expires_ms: i64,
    /// The sign-in came from a country this member never used before.
    pub new_country: bool,
    /// After an enrolment: ten single-use recovery codes, shown once.
    pub recovery_codes: Vec<String>,
}

/// A live session and its member.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: Session,
    pub member: Member,
}

impl SessionView {
    pub fn stepped_up(&self, now_ms: i64) -> bool {
        self.session.stepped_up_ms.is_some_and(|t| now_ms - t < STEP_UP_MS)
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

impl Access {
    fn passkeys_of(&self, member: i64) -> Result<Vec<Passkey>, AccessError> {
        Ok(self.meta.passkeys(member)?.into_iter().filter_map(|(_, json)| serde_json::from_str(&json).ok()).collect())
    }

    fn usable(member: Option<Member>) -> Result<Member, AccessError> {
        member.filter(|m| m.disabled_ms.is_none()).ok_or(AccessError::SignInFailed)
    }

    /// Starts registering a passkey with an enrolment link: WebAuthn
    /// creation options for `navigator.credentials.create`.
    pub fn enrol_start(&self, token: &str) -> Result<(String, Value), AccessError> {
        let member_id = self.meta.enrolment_member(token, events::now_ms())?.ok_or(AccessError::BadEnrolment)?;
        let member = Self::usable(self.meta.member(member_id)?).map_err(|_| AccessError::BadEnrolment)?;
        let name = self.email_of(&member)?.unwrap_or_else(|| format!("member {}", member.id));
        let user = Uuid::parse_str(&member.webauthn_id).map_err(|e| AccessError::Invalid(e.to_string()))?;
        let existing: Vec<_> = self.passkeys_of(member.id)?.iter().map(|p| p.cred_id().clone()).collect();
        let (options, state) = self.webauthn.start_passkey_registration(user, &name, &name, Some(existing)).map_err(|e| AccessError::WebAuthn(e.to_string()))?;
        let ceremony = self.ceremonies.start(Ceremony::Enrol { member: member.id, token: token.to_owned(), state })?;
        Ok((ceremony, to_value(&options)))
    }

    /// Finishes an enrolment: the passkey is stored, the link used up, and
    /// the member signed in.
    pub fn enrol_finish(&self, ceremony: &str, credential: &RegisterPublicKeyCredential, country: Option<&str>) -> Result<NewSession, AccessError> {
        let Some(Ceremony::Enrol { member, token, state }) = self.ceremonies.take(ceremony)? else { return Err(AccessError::NoCeremony) };
        let passkey = self.webauthn.finish_passkey_registration(credential, &state).map_err(|e| AccessError::WebAuthn(e.to_string()))?;
        if !self.meta.use_enrolment(&token)? {
            return Err(AccessError::BadEnrolment);
        }
        let json = serde_json::to_string(&passkey).map_err(|e| AccessError::Invalid(e.to_string()))?;
        self.meta.add_passkey(member, &hex::encode(passkey.cred_id()), &json)?;
        let member = Self::usable(self.meta.member(member)?)?;
        let codes: Vec<String> = (0..10).map(|_| recovery_code()).collect();
        self.meta.set_recovery_codes(member.id, &codes)?;
        let mut session = self.open_session(member, country)?;
        session.recovery_codes = codes;
        Ok(session)
    }

    /// A recovery code of a member who lost every passkey: used up, it gives
    /// an enrolment link (fifteen minutes) to register a new passkey, and
    /// nothing else. Returns the link's token.
    pub fn recover(&self, email: &str, code: &str) -> Result<String, AccessError> {
        let member = Self::usable(self.member_by_email(email).unwrap_or(None))?;
        if !self.meta.use_recovery_code(member.id, &code.trim().to_uppercase())? {
            return Err(AccessError::SignInFailed);
        }
        let token = hex::encode(rand::random::<[u8; 32]>());
        self.meta.create_enrolment(member.id, &token, events::now_ms() + 15 * 60 * 1000)?;
        Ok(token)
    }

    /// Starts signing in: request options for `navigator.credentials.get`.
    pub fn login_start(&self, email: &str) -> Result<(String, Value), AccessError> {
        let member = Self::usable(self.member_by_email(email).unwrap_or(None))?;
        let passkeys = self.passkeys_of(member.id)?;
        if passkeys.is_empty() {
            return Err(AccessError::SignInFailed);
        }
        let (options, state) = self.webauthn.start_passkey_authentication(&passkeys).map_err(|e| AccessError::WebAuthn(e.to_string()))?;
        let ceremony = self.ceremonies.start(Ceremony::Login { member: member.id, state })?;
        Ok((ceremony, to_value(&options)))
    }

    fn verify_assertion(&self, member: i64, state: &webauthn_rs::prelude::PasskeyAuthentication, credential: &PublicKeyCredential) -> Result<(), AccessError> {
        let result = self.webauthn.finish_passkey_authentication(credential, state).map_err(|_| AccessError::SignInFailed)?;
        // Keep the signature counter current (a cloned authenticator shows).
        for (id, json) in self.meta.passkeys(member)? {
            if let Ok(mut passkey) = serde_json::from_str::<Passkey>(&json)
                && passkey.cred_id() == result.cred_id()
            {
                passkey.update_credential(&result);
                self.meta.update_passkey(&id, &serde_json::to_string(&passkey).unwrap_or(json))?;
            }
        }
        Ok(())
    }

    /// Finishes signing in; a new session (with a new id: ids rotate at
    /// every sign-in).
    pub fn login_finish(&self, ceremony: &str, credential: &PublicKeyCredential, country: Option<&str>) -> Result<NewSession, AccessError> {
        let Some(Ceremony::Login { member, state }) = self.ceremonies.take(ceremony)? else { return Err(AccessError::NoCeremony) };
        self.verify_assertion(member, &state, credential)?;
        let member = Self::usable(self.meta.member(member)?)?;
        self.open_session(member, country)
    }

    /// Starts a step-up for a signed-in member.
    pub fn step_up_start(&self, view: &SessionView) -> Result<(String, Value), AccessError> {
        let passkeys = self.passkeys_of(view.member.id)?;
        let (options, state) = self.webauthn.start_passkey_authentication(&passkeys).map_err(|e| AccessError::WebAuthn(e.to_string()))?;
        let ceremony = self.ceremonies.start(Ceremony::StepUp { member: view.member.id, session: view.session.short_id.clone(), state })?;
        Ok((ceremony, to_value(&options)))
    }

    pub fn step_up_finish(&self, view: &SessionView, ceremony: &str, credential: &PublicKeyCredential) -> Result<(), AccessError> {
        let Some(Ceremony::StepUp { member, session, state }) = self.ceremonies.take(ceremony)? else { return Err(AccessError::NoCeremony) };
        if member != view.member.id || session != view.session.short_id {
            return Err(AccessError::NoCeremony);
        }
        self.verify_assertion(member, &state, credential)?;
        self.meta.step_up_session(&session, events::now_ms())?;
        Ok(())
    }

    pub(crate) fn open_session_for(&self, member: Member, country: Option<&str>) -> Result<NewSession, AccessError> {
        self.open_session(member, country)
    }

    fn open_session(&self, member: Member, country: Option<&str>) -> Result<NewSession, AccessError> {
        let organisation = self.meta.organisation_by_id(member.organisation)?;
        let id = hex::encode(rand::random::<[u8; 32]>());
        let csrf = hex::encode(rand::random::<[u8; 32]>());
        let short_id = hex::encode(rand::random::<[u8; 6]>());
        let expires_ms = events::now_ms() + organisation.absolute_timeout_ms;
        self.meta.create_session(&id, &short_id, member.id, &csrf, expires_ms, organisation.idle_timeout_ms, country)?;
        let new_country = match country {
            Some(country) => self.meta.note_login_country(member.id, country)?,
            None => false,
        };
        Ok(NewSession { id, short_id, csrf, member, expires_ms, new_country, recovery_codes: Vec::new() })
    }

    /// The live session of a cookie value, touched; `None` when unknown,
    /// revoked, expired (idle or absolute) or its member disabled.
    pub fn session(&self, id: &str) -> Result<Option<SessionView>, AccessError> {
        let Some(session) = self.meta.session(id)? else { return Ok(None) };
        let now = events::now_ms();
        if !session.is_live(now) {
            return Ok(None);
        }
        let Some(member) = self.meta.member(session.member)?.filter(|m| m.disabled_ms.is_none()) else { return Ok(None) };
        if now - session.last_seen_ms > TOUCH_EVERY_MS {
            self.meta.touch_session(&session.short_id, now)?;
        }
        Ok(Some(SessionView { session, member }))
    }

    /// True when `csrf` is the session's token.
    pub fn csrf_matches(view: &SessionView, csrf: &str) -> bool {
        use sha2::{Digest, Sha256};
        let hash = Sha256::digest(csrf.as_bytes());
        // Both are hashes of secrets: comparing them leaks nothing usable.
        hash.as_slice() == view.session.csrf_sha256.as_slice()
    }
}

