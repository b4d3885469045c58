//! The key store shared by two nodes through one PostgreSQL database (a real
//! server from Debian's packages on loopback): a value sealed on one node
//! opens on the other; a subject destroyed on one opens nothing on the other
//! from then on, though the other had its key cached; a node with another
//! master key is refused.

use events::ProjectId;
use keys::{KeyError, KeyStore, MasterSource};
use privacy::apply::Sealer;
use sqldb::local_server::LocalPostgres;
use std::sync::Arc;

const P: ProjectId = ProjectId(1);

fn seal_one(store: &Arc<KeyStore>, subject: &str, token: &str, value: &str) -> keys::SealedValue {
    let mut sealer = store.sealer(P).unwrap();
    sealer.seal(subject, token, value).unwrap();
    sealer.finish().unwrap().pop().unwrap()
}

#[test]
fn two_nodes_share_keys_and_an_erasure_holds_on_both() {
    let server = LocalPostgres::start().unwrap();
    let root = tempfile::tempdir().unwrap();
    let (data, key_dir) = (root.path().join("data"), root.path().join("keys"));
    let master = MasterSource::File { path: key_dir.join("master.key"), create: true };
    let a = Arc::new(KeyStore::connect(&server.target(), &key_dir, &data, &master).unwrap());
    let b = Arc::new(KeyStore::connect(&server.target(), &key_dir, &data, &master).unwrap());
    assert_eq!(a.master_fingerprint(), b.master_fingerprint());

    let ada = seal_one(&a, "ada", "pii:AAAAAAAAAAAAAAAAAAAAAA", "\"ada@example.com\"");
    let bob = seal_one(&b, "bob", "pii:BBBBBBBBBBBBBBBBBBBBBB", "\"bob@example.com\"");
    assert_eq!(b.open_value(P, "ada", &ada.token, &ada.ciphertext).unwrap().as_deref().map(String::as_str), Some("\"ada@example.com\""));
    assert!(a.open_value(P, "bob", &bob.token, &bob.ciphertext).unwrap().is_some());

    // b has ada's key cached now; a destroys it.
    assert_eq!(a.destroy_subjects(P, &["ada".to_owned()]).unwrap(), 1);
    assert_eq!(b.open_value(P, "ada", &ada.token, &ada.ciphertext).unwrap(), None, "the other node's cache must not outlive the erasure");
    assert!(b.open_value(P, "bob", &bob.token, &bob.ciphertext).unwrap().is_some());

    // A data key rotation on b leaves bob readable on a.
    b.rotate_data_key(P, &mut |_, _| {}).unwrap();
    assert!(a.open_value(P, "bob", &bob.token, &bob.ciphertext).unwrap().is_some());

    let other = tempfile::tempdir().unwrap();
    let wrong = MasterSource::File { path: other.path().join("master.key"), create: true };
    let refused = KeyStore::connect(&server.target(), other.path(), &data, &wrong).unwrap_err();
    assert!(matches!(refused, KeyError::WrongMaster(..)), "{refused}");
}
