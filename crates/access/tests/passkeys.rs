//! The passkey ceremonies with a software authenticator (no browser):
//! enrolment through a one-time link, sign-in with a new session id each
//! time, step-up, a wrong origin refused, a ceremony finished only once, an
//! unknown email and a disabled member refused, and the idle timeout.

use access::{Access, AccessConfig, AccessError};
use std::sync::Arc;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const ORIGIN: &str = "http://localhost:8080";

fn access() -> (tempfile::TempDir, Access) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let keys_dir = root.path().join("keys");
    let meta = Arc::new(meta::Meta::open(&data).unwrap());
    let keys = Arc::new(keys::KeyStore::open(&keys_dir, &data, &keys::MasterSource::File { path: keys_dir.join("master.key"), create: true }).unwrap());
    (root, Access::new(meta, keys, AccessConfig::new(ORIGIN).unwrap()).unwrap())
}

fn enrol(access: &Access, authenticator: &mut SoftPasskey, token: &str, origin: &str) -> Result<access::NewSession, AccessError> {
    let (ceremony, options) = access.enrol_start(token)?;
    let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let credential = authenticator.do_registration(Url::parse(origin).unwrap(), options).map_err(|e| AccessError::WebAuthn(format!("{e:?}")))?;
    access.enrol_finish(&ceremony, &credential, Some("DE"))
}

fn sign_in(access: &Access, authenticator: &mut SoftPasskey, email: &str) -> Result<access::NewSession, AccessError> {
    let (ceremony, options) = access.login_start(email)?;
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let credential = authenticator.do_authentication(Url::parse(ORIGIN).unwrap(), options).map_err(|e| AccessError::WebAuthn(format!("{e:?}")))?;
    access.login_finish(&ceremony, &credential, Some("DE"))
}

#[test]
fn enrolment_sign_in_and_step_up_with_a_software_authenticator() {
    let (_root, access) = access();
    let invitation = access.invite("owner@example.com", meta::Role::Owner, true, true, &[]).unwrap();
    let mut authenticator = SoftPasskey::new(true);

    // A page on another origin gets nothing it can use.
    assert!(enrol(&access, &mut SoftPasskey::new(true), &invitation.token, "http://evil.example:8080").is_err());
    let first = enrol(&access, &mut authenticator, &invitation.token, ORIGIN).unwrap();
    assert_eq!(first.recovery_codes.len(), 10);
    assert!(matches!(enrol(&access, &mut authenticator, &invitation.token, ORIGIN), Err(AccessError::BadEnrolment)), "a link works once");

    let second = sign_in(&access, &mut authenticator, "Owner@Example.com").unwrap();
    assert_ne!(first.id, second.id, "a new session id at every sign-in");
    assert_eq!(second.id.len(), 64, "256 bits");
    let view = access.session(&second.id).unwrap().unwrap();
    assert!(access::Access::csrf_matches(&view, &second.csrf));
    assert!(!access::Access::csrf_matches(&view, &first.csrf));

    let (ceremony, options) = access.step_up_start(&view).unwrap();
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let credential = authenticator.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap();
    access.step_up_finish(&view, &ceremony, &credential).unwrap();
    assert!(matches!(access.step_up_finish(&view, &ceremony, &credential), Err(AccessError::NoCeremony)), "a ceremony is finished once");
    assert!(access.session(&second.id).unwrap().unwrap().stepped_up(events::now_ms()));

    // Someone else's authenticator does not sign this member in.
    assert!(sign_in(&access, &mut SoftPasskey::new(true), "owner@example.com").is_err());
    assert!(matches!(access.login_start("nobody@example.com"), Err(AccessError::SignInFailed)));

    // Disabled: no session survives, no sign-in starts.
    access.meta().disable_member(invitation.member.id).unwrap();
    assert!(access.session(&second.id).unwrap().is_none());
    assert!(matches!(access.login_start("owner@example.com"), Err(AccessError::SignInFailed)));
}

#[test]
fn idle_sessions_expire() {
    let (_root, access) = access();
    let invitation = access.invite("a@example.com", meta::Role::Viewer, false, false, &[]).unwrap();
    let organisation = access.meta().organisation("default").unwrap();
    access.meta().set_session_timeouts(organisation.id, 200, 10_000).unwrap();
    let session = enrol(&access, &mut SoftPasskey::new(true), &invitation.token, ORIGIN).unwrap();
    assert!(access.session(&session.id).unwrap().is_some());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(access.session(&session.id).unwrap().is_none(), "idle past the timeout");
}
