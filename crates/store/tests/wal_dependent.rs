//! A flush makes what was derived from its events durable (the store's
//! `WalDependent`) before it deletes the WAL segments holding them, and
//! keeps the segments, retrying, while that fails.

use events::{Event, ProjectId};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use store::{SinkError, Store, StoreConfig, WalDependent};

const P: ProjectId = ProjectId(1);

/// Fails its first `failures` calls; records the bytes in the WAL at each.
#[derive(Debug)]
struct Recorder {
    wal_dir: PathBuf,
    failures: AtomicUsize,
    wal_bytes_at_call: Mutex<Vec<u64>>,
}

impl WalDependent for Recorder {
    fn make_durable(&self) -> Result<(), SinkError> {
        self.wal_bytes_at_call.lock().unwrap().push(bytes_in(&self.wal_dir));
        let failing = self.failures.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok();
        if failing { Err("not yet".into()) } else { Ok(()) }
    }
}

fn bytes_in(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map(|entries| entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

fn events() -> Vec<Event> {
    (0..100)
        .map(|n: i64| Event {
            name: "Sign Up".into(),
            distinct_id: format!("user{n}"),
            time_ms: 1_780_000_000_000 + n,
            insert_id: format!("{n:032x}"),
            properties: json!({"$device_id": format!("d{n}"), "$user_id": format!("user{n}")}).as_object().unwrap().clone(),
        })
        .collect()
}

#[test]
fn a_flush_deletes_wal_segments_only_after_its_dependent_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder { wal_dir: dir.path().join("wal"), failures: AtomicUsize::new(2), wal_bytes_at_call: Mutex::new(Vec::new()) });
    let config = StoreConfig { flush_interval_ms: 3_600_000, wal_dependent: Some(recorder.clone()), ..StoreConfig::default() };
    let store = Store::open(dir.path(), config).unwrap();
    store.append_blocking(P, events()).unwrap();
    let wal_bytes_before = bytes_in(&dir.path().join("wal"));
    assert!(wal_bytes_before > 0);
    store.flush().unwrap();

    let calls = recorder.wal_bytes_at_call.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "two failures, then the flush that went through");
    assert!(calls.iter().all(|&bytes| bytes >= wal_bytes_before), "the WAL still held the events at every call: {calls:?}");
    assert!(store.snapshot().parts_of(P).count() > 0, "the flush published its part");
    assert_eq!(store.snapshot().n_buffered(P), 0);
    store.close().unwrap();
    drop(store);

    // Nothing is left to replay: the segments went once the dependent was durable.
    let reopened = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(reopened.snapshot().buffered_events().count(), 0);
    assert_eq!(reopened.snapshot().parts_of(P).map(|(part, _)| part.rows).sum::<u64>(), 100);
}

#[test]
fn buffered_events_come_in_the_order_they_were_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { flush_interval_ms: 3_600_000, ..StoreConfig::default() };
    let store = Store::open(dir.path(), config).unwrap();
    let mut first = events();
    let second = first.split_off(60);
    store.append_blocking(P, first).unwrap();
    store.append_blocking(ProjectId(2), second).unwrap();
    let buffered: Vec<(ProjectId, Event)> = store.snapshot().buffered_events().map(|(project, row)| (project, row.to_event())).collect();
    assert_eq!(buffered.len(), 100);
    assert!(buffered[..60].iter().all(|(project, _)| *project == P) && buffered[60..].iter().all(|(project, _)| *project == ProjectId(2)));
    assert_eq!(buffered[7].1.properties["$device_id"], "d7", "properties intact");
    assert_eq!(buffered[70].1.insert_id, format!("{:032x}", 70));
}

/// Takes a while, as SQLite does with many links; records the thread of each call.
#[derive(Debug)]
struct Slow {
    wal_dir: PathBuf,
    calls: Mutex<Vec<(Option<String>, u64)>>,
}

impl WalDependent for Slow {
    fn make_durable(&self) -> Result<(), SinkError> {
        let wal_bytes = bytes_in(&self.wal_dir);
        std::thread::sleep(std::time::Duration::from_millis(50));
        self.calls.lock().unwrap().push((std::thread::current().name().map(str::to_owned), wal_bytes));
        Ok(())
    }
}

#[test]
fn a_flush_behind_ingestion_makes_its_dependent_durable_beside_the_parts() {
    let dir = tempfile::tempdir().unwrap();
    let slow = Arc::new(Slow { wal_dir: dir.path().join("wal"), calls: Mutex::new(Vec::new()) });
    let config = StoreConfig { flush_rows: 200, flush_interval_ms: 3_600_000, wal_dependent: Some(slow.clone()), ..StoreConfig::default() };
    let store = Store::open(dir.path(), config).unwrap();
    // 60 batches of 50 as fast as they are acknowledged, then 25 left for
    // the flush at close, when nothing else arrives.
    for batch in 0..61i64 {
        let size = if batch == 60 { 25 } else { 50 };
        let events: Vec<Event> = events().into_iter().take(size).map(|e| Event { insert_id: format!("{batch:016x}{}", e.insert_id), ..e }).collect();
        store.append_blocking(P, events).unwrap();
    }
    store.close().unwrap();
    drop(store);
    let calls = slow.calls.lock().unwrap().clone();
    // A flush that finds the next buffer filling calls it beside the part
    // writers (an unnamed helper thread), one that keeps up on the flush thread.
    assert!(calls.iter().any(|(thread, _)| thread.is_none()), "{calls:?}");
    assert!(calls.iter().any(|(thread, _)| thread.as_deref() == Some("hearth-flush")), "{calls:?}");
    assert!(calls.iter().all(|(_, wal_bytes)| *wal_bytes > 0), "the WAL still held the events at every call: {calls:?}");
    let reopened = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(reopened.snapshot().buffered_events().count(), 0, "nothing left to replay");
    assert_eq!(reopened.snapshot().parts_of(P).map(|(part, _)| part.rows).sum::<u64>(), 60 * 50 + 25);
}
