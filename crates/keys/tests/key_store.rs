//! The key store on real files: sealing and opening, crypto-shredding that
//! leaves no key bytes in the files, the master key outside the data
//! directory, wrong keys refused, and both rotations keeping data readable.

use events::ProjectId;
use keys::{KeyError, KeyStore, MasterSource};
use privacy::apply::Sealer;
use std::path::Path;

const P: ProjectId = ProjectId(1);

fn file_source(dir: &Path) -> MasterSource {
    MasterSource::File { path: dir.join("master.key"), create: true }
}

fn all_bytes_under(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    bytes
}

fn seal_one(store: &std::sync::Arc<KeyStore>, subject: &str, token: &str, value: &str) -> keys::SealedValue {
    let mut sealer = store.sealer(P).unwrap();
    sealer.seal(subject, token, value).unwrap();
    sealer.finish().unwrap().pop().unwrap()
}

#[test]
fn sealed_values_open_until_the_subject_is_destroyed() {
    let root = tempfile::tempdir().unwrap();
    let (data, key_dir) = (root.path().join("data"), root.path().join("keys"));
    let store = std::sync::Arc::new(KeyStore::open(&key_dir, &data, &file_source(&key_dir)).unwrap());
    assert!(store.master_created());
    let ada = seal_one(&store, "ada", "pii:AAAAAAAAAAAAAAAAAAAAAA", "\"ada@example.com\"");
    let bob = seal_one(&store, "bob", "pii:BBBBBBBBBBBBBBBBBBBBBB", "\"bob@example.com\"");
    assert!(!String::from_utf8_lossy(&ada.ciphertext).contains("ada@"));
    assert_eq!(store.open_value(P, "ada", &ada.token, &ada.ciphertext).unwrap().as_deref().map(String::as_str), Some("\"ada@example.com\""));
    // Bound to its place: another subject's name or token does not open it.
    assert_eq!(store.open_value(P, "bob", &ada.token, &ada.ciphertext).unwrap(), None);

    let wrapped_keys = stored_subject_keys(&key_dir);
    assert_eq!(wrapped_keys.len(), 2);
    assert!(wrapped_keys.iter().all(|w| contains(&all_bytes_under(&key_dir), w)));
    assert_eq!(store.destroy_subjects(P, &["ada".to_owned()]).unwrap(), 1);
    assert_eq!(store.open_value(P, "ada", &ada.token, &ada.ciphertext).unwrap(), None);
    assert!(store.open_value(P, "bob", &bob.token, &bob.ciphertext).unwrap().is_some());
    drop(store);

    // Reopened from disk, with the same master key: still unreadable, and
    // the rows that held ada's wrapped key are zeroed in the file.
    let store = std::sync::Arc::new(KeyStore::open(&key_dir, &data, &file_source(&key_dir)).unwrap());
    assert_eq!(store.open_value(P, "ada", &ada.token, &ada.ciphertext).unwrap(), None);
    assert!(store.open_value(P, "bob", &bob.token, &bob.ciphertext).unwrap().is_some());
    // The destroyed key's bytes are gone from every file of the key store
    // (secure_delete zeroes the freed cells; the journal is deleted).
    let after = all_bytes_under(&key_dir);
    let remaining = stored_subject_keys(&key_dir);
    assert_eq!(remaining.len(), 1);
    let destroyed: Vec<&Vec<u8>> = wrapped_keys.iter().filter(|w| !remaining.contains(w)).collect();
    assert_eq!(destroyed.len(), 1);
    assert!(!contains(&after, destroyed[0]), "the destroyed subject key is still in the key store's files");
    assert!(contains(&after, &remaining[0]));
}

fn stored_subject_keys(key_dir: &Path) -> Vec<Vec<u8>> {
    let connection = rusqlite::Connection::open(key_dir.join("keys.sqlite")).unwrap();
    let mut statement = connection.prepare("SELECT wrapped FROM subject_keys").unwrap();
    statement.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_master_key_may_not_live_in_the_data_directory() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let inside = data.join("keys");
    let error = KeyStore::open(&inside, &data, &file_source(&inside)).unwrap_err();
    assert!(matches!(error, KeyError::InsideDataDir { .. }), "{error}");
    let outside = root.path().join("keys");
    let error = KeyStore::open(&outside, &data, &MasterSource::File { path: data.join("master.key"), create: true }).unwrap_err();
    assert!(matches!(error, KeyError::InsideDataDir { .. }), "{error}");
    assert!(!data.join("master.key").exists());
}

#[test]
fn a_wrong_master_key_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (data, key_dir) = (root.path().join("data"), root.path().join("keys"));
    drop(KeyStore::open(&key_dir, &data, &file_source(&key_dir)).unwrap());
    let other = privacy::crypto::Key::generate().unwrap();
    let error = KeyStore::open(&key_dir, &data, &MasterSource::Text(other.to_text().to_string())).unwrap_err();
    assert!(matches!(error, KeyError::WrongMaster(..)), "{error}");
    let error = KeyStore::open(&key_dir, &data, &MasterSource::Text("not a key".into())).unwrap_err();
    assert!(matches!(error, KeyError::BadMaster(_)), "{error}");
}

#[test]
fn rotations_keep_every_value_readable_and_tokens_stable() {
    let root = tempfile::tempdir().unwrap();
    let (data, key_dir) = (root.path().join("data"), root.path().join("keys"));
    let store = std::sync::Arc::new(KeyStore::open(&key_dir, &data, &file_source(&key_dir)).unwrap());
    let hash_before = store.project_keys(P).unwrap().hash_key.fingerprint();
    let sealed: Vec<_> = (0..50).map(|i| seal_one(&store, &format!("user-{i}"), &format!("pii:{i:0>22}"), &format!("\"u{i}@example.com\""))).collect();
    let old_master = std::fs::read(key_dir.join("master.key")).unwrap();

    let report = store.rotate_master(None).unwrap();
    assert_ne!(report.old_fingerprint, report.new_fingerprint);
    assert_ne!(std::fs::read(key_dir.join("master.key")).unwrap(), old_master);
    let mut progress = Vec::new();
    let report = store.rotate_data_key(P, &mut |done, total| progress.push((done, total))).unwrap();
    assert_eq!(report.subject_keys, 50);
    assert_eq!(progress.last(), Some(&(50, 50)));
    drop(store);

    let store = std::sync::Arc::new(KeyStore::open(&key_dir, &data, &file_source(&key_dir)).unwrap());
    for (i, value) in sealed.iter().enumerate() {
        let opened = store.open_value(P, &value.subject, &value.token, &value.ciphertext).unwrap();
        assert_eq!(opened.as_deref().map(String::as_str), Some(format!("\"u{i}@example.com\"").as_str()));
    }
    assert_eq!(store.project_keys(P).unwrap().hash_key.fingerprint(), hash_before, "tokens must survive rotation");
    // The old master key opens nothing any more.
    let error = KeyStore::open(&key_dir, &data, &MasterSource::Text(String::from_utf8(old_master).unwrap())).unwrap_err();
    assert!(matches!(error, KeyError::WrongMaster(..)));
}

#[test]
fn another_process_erasing_a_subject_is_seen_at_once() {
    let root = tempfile::tempdir().unwrap();
    let (data, key_dir) = (root.path().join("data"), root.path().join("keys"));
    let server = std::sync::Arc::new(KeyStore::open(&key_dir, &data, &file_source(&key_dir)).unwrap());
    let ada = seal_one(&server, "ada", "pii:AAAAAAAAAAAAAAAAAAAAAA", "\"ada@example.com\"");
    assert!(server.open_value(P, "ada", &ada.token, &ada.ciphertext).unwrap().is_some());
    let cli = KeyStore::open(&key_dir, &data, &file_source(&key_dir)).unwrap();
    cli.destroy_subjects(P, &["ada".to_owned()]).unwrap();
    assert_eq!(server.open_value(P, "ada", &ada.token, &ada.ciphertext).unwrap(), None, "the server's cached key must go");
}

#[test]
fn a_running_store_follows_a_master_rotation_by_another_process() {
    let root = tempfile::tempdir().unwrap();
    let (data, key_dir) = (root.path().join("data"), root.path().join("keys"));
    let server = std::sync::Arc::new(KeyStore::open(&key_dir, &data, &file_source(&key_dir)).unwrap());
    let ada = seal_one(&server, "ada", "pii:AAAAAAAAAAAAAAAAAAAAAA", "\"ada@example.com\"");
    let cli = KeyStore::open(&key_dir, &data, &file_source(&key_dir)).unwrap();
    cli.rotate_master(None).unwrap();
    // The server's caches are emptied by the change; it must unwrap again
    // with the new master key, read from the rotated file.
    assert!(server.open_value(P, "ada", &ada.token, &ada.ciphertext).unwrap().is_some());
    let bob = seal_one(&server, "bob", "pii:BBBBBBBBBBBBBBBBBBBBBB", "\"bob@example.com\"");
    assert_eq!(server.master_fingerprint(), cli.master_fingerprint());
    let later = KeyStore::open(&key_dir, &data, &file_source(&key_dir)).unwrap();
    assert!(later.open_value(P, "bob", &bob.token, &bob.ciphertext).unwrap().is_some());
}
