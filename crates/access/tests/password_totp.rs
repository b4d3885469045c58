//! The password-and-TOTP fallback on real files: refused while the
//! organisation is phishing-resistant only and for owners and admins;
//! otherwise a password plus a current code signs in, each code once, and
//! the session cannot step up.

use access::{Access, AccessConfig};
use std::sync::Arc;

fn access() -> (tempfile::TempDir, Access) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let keys_dir = root.path().join("keys");
    let meta = Arc::new(meta::Meta::open(&data).unwrap());
    let keys = Arc::new(keys::KeyStore::open(&keys_dir, &data, &keys::MasterSource::File { path: keys_dir.join("master.key"), create: true }).unwrap());
    let access = Access::new(meta, keys, AccessConfig::new("http://localhost:8080").unwrap()).unwrap();
    (root, access)
}

fn current_code(uri: &str) -> String {
    totp_rs::TOTP::from_url_unchecked(uri).unwrap().generate_current().unwrap()
}

#[test]
fn password_and_totp_work_only_where_allowed_and_each_code_once() {
    let (_root, access) = access();
    let analyst = access.invite("ana@example.com", meta::Role::Analyst, false, false, &[]).unwrap().member;
    let owner = access.invite("own@example.com", meta::Role::Owner, true, true, &[]).unwrap().member;
    let organisation = access.meta().organisation("default").unwrap();

    // Phishing-resistant only (the default): no password for anyone.
    assert!(access.set_password(&analyst, "correct horse battery staple").is_err());
    access.meta().set_phishing_resistant_only(organisation.id, false).unwrap();
    assert!(access.set_password(&owner, "correct horse battery staple").is_err(), "owners use passkeys only");
    assert!(access.set_password(&analyst, "short").is_err());
    let uri = access.set_password(&analyst, "correct horse battery staple").unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");

    let code = current_code(&uri);
    assert!(access.password_login("ana@example.com", "wrong password here", &code, None).is_err());
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 500_000) % 1_000_000);
    assert!(access.password_login("ana@example.com", "correct horse battery staple", &wrong, None).is_err());
    let session = access.password_login("ANA@example.com", "correct horse battery staple", &code, None).unwrap();
    assert!(access.password_login("ana@example.com", "correct horse battery staple", &code, None).is_err(), "a code works once");
    let view = access.session(&session.id).unwrap().unwrap();
    assert!(!view.stepped_up(events::now_ms()), "a password session cannot export or reveal");

    // Turned back on: the password stops working.
    access.meta().set_phishing_resistant_only(organisation.id, true).unwrap();
    assert!(access.password_login("ana@example.com", "correct horse battery staple", &code, None).is_err());
    // No plaintext password or TOTP secret in the database file.
    for entry in std::fs::read_dir(_root.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!bytes.windows(28).any(|w| w == b"correct horse battery staple"), "{}", path.display());
        }
    }
}
