//! The audit chain in a PostgreSQL database that several nodes share (a real
//! server from Debian's packages, started on loopback): two logs appending
//! at once still make one intact chain, reads and the hour histogram work,
//! and an edit made in the database is found.

use audit::{Actor, AuditLog, Filter, NewEntry, Outcome};
use sqldb::local_server::LocalPostgres;
use sqldb::Connection;
use std::sync::Arc;

fn entry(node: &str, n: u32) -> NewEntry {
    NewEntry::new(Actor::new("cli", node.to_owned()), if n.is_multiple_of(2) { "export" } else { "query" }, Outcome::Ok).project(1).detail(serde_json::json!({ "n": n }))
}

#[test]
fn two_nodes_append_to_one_intact_chain() {
    let server = LocalPostgres::start().unwrap();
    let a = Arc::new(AuditLog::connect(&server.target(), None).unwrap());
    let b = Arc::new(AuditLog::connect(&server.target(), None).unwrap());
    let writers: Vec<_> = [("a", a.clone()), ("b", b.clone())]
        .into_iter()
        .map(|(node, log)| std::thread::spawn(move || (0..40).for_each(|n| drop(log.append(entry(node, n)).unwrap()))))
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());

    let verification = b.verify(None).unwrap();
    assert!(verification.is_intact(), "{verification:?}");
    assert_eq!((verification.entries, verification.head_seq), (80, 80));
    let from_a = b.list(&Filter { actor: Some("cli:a".into()), ..Filter::default() }).unwrap();
    assert_eq!(from_a.len(), 40);
    let limited = a.list(&Filter { action: Some("export".into()), limit: Some(7), ..Filter::default() }).unwrap();
    assert_eq!(limited.len(), 7);
    let hours = a.hour_histogram(0, &["export", "query"]).unwrap();
    assert_eq!(hours.iter().sum::<u64>(), 80);
    assert_eq!(a.hour_histogram(0, &["export"]).unwrap().iter().sum::<u64>(), 40);

    let tamper = Connection::connect_postgres(&server.target()).unwrap();
    tamper.execute_batch("UPDATE audit SET body = replace(body, '\"n\":', '\"n\": ') WHERE seq = 12").unwrap();
    let verification = a.verify(None).unwrap();
    assert_eq!(verification.broken.as_ref().map(|(seq, _)| *seq), Some(12), "{verification:?}");
}
