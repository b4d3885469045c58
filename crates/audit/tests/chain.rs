//! The audit chain on a real SQLite file: an intact log verifies; an edited,
//! deleted, reordered or inserted entry, and a cut tail (against the sink's
//! head), are each found and named.

use audit::{Actor, AuditLog, Filter, NewEntry, Outcome, UserSet};
use rusqlite::{params, Connection};
use serde_json::json;

fn filled(dir: &std::path::Path, sink: Option<std::path::PathBuf>) -> AuditLog {
    let log = AuditLog::open(dir, sink).unwrap();
    for n in 0..10u32 {
        let actor = Actor::new(if n % 2 == 0 { "project_secret" } else { "cli" }, format!("{}", n % 3));
        let entry = NewEntry::new(actor, if n % 3 == 0 { "export" } else { "query" }, Outcome::Ok)
            .project(1)
            .country(Some("DE".into()))
            .detail(json!({"n": n, "spec": {"report": "insights"}}))
            .users(UserSet::from_keys((0..n * 100).step_by(3)));
        log.append(entry).unwrap();
    }
    log
}

fn tamper(dir: &std::path::Path, sql: &str) {
    let connection = Connection::open(dir.join("audit.sqlite")).unwrap();
    connection.execute_batch(sql).unwrap();
}

#[test]
fn an_intact_log_verifies_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path(), None);
    let verification = log.verify(None).unwrap();
    assert!(verification.is_intact(), "{verification:?}");
    assert_eq!((verification.entries, verification.head_seq), (10, 10));
    let exports = log.list(&Filter { action: Some("export".into()), ..Filter::default() }).unwrap();
    assert_eq!(exports.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 4, 7, 10]);
    let by_actor = log.list(&Filter { actor: Some("cli:".into()), ..Filter::default() }).unwrap();
    assert!(by_actor.iter().all(|e| e.body.actor.kind == "cli") && by_actor.len() == 5);
    let users = exports[3].body.users.as_ref().unwrap();
    assert_eq!(users.count, 300);
    assert!(users.keys().unwrap().contains(897) && !users.keys().unwrap().contains(898));
}

#[test]
fn an_edited_entry_is_found() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), None));
    tamper(dir.path(), "UPDATE audit SET body = replace(body, '\"n\":4', '\"n\":5') WHERE seq = 5");
    let verification = AuditLog::open(dir.path(), None).unwrap().verify(None).unwrap();
    assert_eq!(verification.broken.as_ref().map(|(seq, _)| *seq), Some(5), "{verification:?}");
    assert!(verification.broken.unwrap().1.contains("edited"));
}

#[test]
fn an_edited_entry_with_a_recomputed_hash_breaks_the_next_link() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), None));
    // A forger who recomputes the edited entry's own hash still breaks the
    // link the next entry holds.
    let connection = Connection::open(dir.path().join("audit.sqlite")).unwrap();
    let (body, prev): (String, String) = connection.query_row("SELECT body, prev_hash FROM audit WHERE seq = 5", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    let forged = body.replace("\"DE\"", "\"FR\"");
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(forged.as_bytes());
    let hash = hex::encode(hasher.finalize());
    connection.execute("UPDATE audit SET body = ?1, hash = ?2 WHERE seq = 5", params![forged, hash]).unwrap();
    let verification = AuditLog::open(dir.path(), None).unwrap().verify(None).unwrap();
    assert_eq!(verification.broken.map(|(seq, _)| seq), Some(6));
}

#[test]
fn a_deleted_entry_is_found() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), None));
    tamper(dir.path(), "DELETE FROM audit WHERE seq = 3");
    let verification = AuditLog::open(dir.path(), None).unwrap().verify(None).unwrap();
    assert_eq!(verification.broken.as_ref().map(|(seq, _)| *seq), Some(4), "{verification:?}");
    assert!(verification.broken.unwrap().1.contains("deleted"));
}

#[test]
fn reordered_entries_are_found() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), None));
    // Swap the contents of entries 6 and 7, keeping the sequence numbers.
    tamper(
        dir.path(),
        "UPDATE audit SET seq = -6 WHERE seq = 6; UPDATE audit SET seq = 6 WHERE seq = 7; UPDATE audit SET seq = 7 WHERE seq = -6;",
    );
    let verification = AuditLog::open(dir.path(), None).unwrap().verify(None).unwrap();
    assert_eq!(verification.broken.map(|(seq, _)| seq), Some(6));
}

#[test]
fn a_cut_tail_is_found_against_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = sink_dir.path().join("audit.jsonl");
    drop(filled(dir.path(), Some(sink.clone())));
    let head = AuditLog::sink_head(&sink).unwrap().unwrap();
    assert_eq!(head.0, 10);
    assert_eq!(std::fs::read_to_string(&sink).unwrap().lines().count(), 10);
    let log = AuditLog::open(dir.path(), None).unwrap();
    assert!(log.verify(Some((head.0, &head.1))).unwrap().is_intact());
    drop(log);
    tamper(dir.path(), "DELETE FROM audit WHERE seq >= 9");
    let log = AuditLog::open(dir.path(), None).unwrap();
    assert!(log.verify(None).unwrap().is_intact(), "without the head a cut tail looks intact");
    let verification = log.verify(Some((head.0, &head.1))).unwrap();
    assert!(verification.broken.as_ref().is_some_and(|(_, why)| why.contains("tail was cut")), "{verification:?}");
}

#[test]
fn reads_are_counted_by_hour_of_day_per_action() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path(), None);
    let all = log.list(&Filter::default()).unwrap();
    let mut expected = [0u64; 24];
    for entry in all.iter().filter(|e| e.body.action == "export") {
        expected[(entry.time_ms.rem_euclid(86_400_000) / 3_600_000) as usize] += 1;
    }
    let hours = log.hour_histogram(0, &["export"]).unwrap();
    assert_eq!(hours, expected);
    assert!(hours.iter().sum::<u64>() > 0);
    assert_eq!(log.hour_histogram(0, &["nothing"]).unwrap(), [0; 24]);
    assert_eq!(log.hour_histogram(i64::MAX, &["export"]).unwrap(), [0; 24]);
}
