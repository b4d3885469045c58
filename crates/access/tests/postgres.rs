//! Two nodes' access services over one PostgreSQL database (a real server
//! from Debian's packages, on loopback), as behind a load balancer without
//! sticky sessions: a ceremony started on one node finishes on the other, a
//! session opened on one is live on the other, and a session revoked on one
//! is dead on the other at once.

use access::{Access, AccessConfig};
use sqldb::local_server::LocalPostgres;
use std::sync::Arc;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const ORIGIN: &str = "http://localhost:8080";

fn node(server: &LocalPostgres, root: &std::path::Path, name: &str) -> Access {
    let data = root.join(format!("{name}-data"));
    let keys_dir = root.join("keys");
    let meta = Arc::new(meta::Meta::connect(&server.target()).unwrap());
    let master = keys::MasterSource::File { path: keys_dir.join("master.key"), create: true };
    let keys = Arc::new(keys::KeyStore::connect(&server.target(), &keys_dir, &data, &master).unwrap());
    Access::new(meta, keys, AccessConfig::new(ORIGIN).unwrap()).unwrap()
}

#[test]
fn ceremonies_and_sessions_cross_nodes() {
    let server = LocalPostgres::start().unwrap();
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (node(&server, root.path(), "a"), node(&server, root.path(), "b"));
    let invitation = a.invite("owner@example.com", meta::Role::Owner, true, true, &[]).unwrap();
    let mut authenticator = SoftPasskey::new(true);

    // Enrolment: started on a, finished on b.
    let (ceremony, options) = a.enrol_start(&invitation.token).unwrap();
    let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let credential = authenticator.do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap();
    let enrolled = b.enrol_finish(&ceremony, &credential, Some("DE")).unwrap();
    assert!(b.enrol_finish(&ceremony, &credential, Some("DE")).is_err(), "a ceremony finishes once, on any node");

    // Sign-in: started on b, finished on a; the session is live on both.
    let (ceremony, options) = b.login_start("owner@example.com").unwrap();
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let credential = authenticator.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap();
    let session = a.login_finish(&ceremony, &credential, Some("DE")).unwrap();
    assert!(a.session(&session.id).unwrap().is_some());
    assert!(b.session(&session.id).unwrap().is_some());
    assert!(b.session(&enrolled.id).unwrap().is_some());

    // Revoked on b: dead on a at once.
    assert_eq!(b.meta().revoke_sessions(Some(&session.short_id), None).unwrap(), 1);
    assert!(a.session(&session.id).unwrap().is_none());
    assert!(a.session(&enrolled.id).unwrap().is_some(), "only that session");
}
