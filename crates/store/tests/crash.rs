//! Crash safety with real processes: the test runs itself as a child that
//! appends batches and prints each acknowledged batch id, kills it with
//! SIGKILL at a random moment, reopens the store, and checks that every
//! acknowledged event is there exactly once. Tiny buffers make flushes and
//! compactions happen constantly, so kills land inside them too.

use events::{Event, ProjectId};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use store::{Store, StoreConfig};

const CHILD_ENV: &str = "HEARTH_STORE_CRASH_CHILD_DIR";
const EVENTS_PER_BATCH: u64 = 25;
const DAY_MS: i64 = 86_400_000;
const BASE_MS: i64 = 1_780_000_000_000;

fn tiny_config() -> StoreConfig {
    StoreConfig { flush_rows: 120, flush_interval_ms: 50, compact_min_parts: 2, property_columns_max: 8, queue_batches_max: 64, settle_after_ms: 100, sink: None, sink_gate: None, wal_dependent: None }
}

fn batch(batch_id: u64) -> Vec<Event> {
    (0..EVENTS_PER_BATCH)
        .map(|i| {
            let n = batch_id * EVENTS_PER_BATCH + i;
            let mut properties = serde_json::Map::new();
            properties.insert("n".into(), json!(n));
            properties.insert("plan".into(), json!(if n.is_multiple_of(3) { "pro" } else { "free" }));
            Event {
                name: if n.is_multiple_of(2) { "Page View".into() } else { "API Request".into() },
                distinct_id: format!("user{}", n % 37),
                // Spread over three days, so flushes write several parts.
                time_ms: BASE_MS + (n as i64 % 3) * DAY_MS + n as i64,
                insert_id: format!("{n:032x}"),
                properties,
            }
        })
        .collect()
}

/// The child: resumes where the previous child stopped, re-sending the
/// batch it may have been killed in (as a client retries), forever.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        // Run as an ordinary test: nothing to do without the parent.
        return;
    };
    let start: u64 = std::env::var("HEARTH_STORE_CRASH_START").unwrap().parse().unwrap();
    let store = Store::open(std::path::Path::new(&dir), tiny_config()).unwrap();
    println!("ready");
    for batch_id in start.. {
        store.append_blocking(ProjectId(1), batch(batch_id)).unwrap();
        println!("acked {batch_id}");
    }
}

#[test]
fn acknowledged_events_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: HashSet<u64> = HashSet::new();
    let mut next_batch = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for cycle in 0..25 {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("HEARTH_STORE_CRASH_START", next_batch.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let lifetime = Duration::from_millis(50 + seed % 400);
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => lines.push(line),
                    Err(_) => break,
                }
            }
            lines
        });
        let started = Instant::now();
        while started.elapsed() < lifetime {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        assert!(lines.iter().any(|l| l.ends_with("ready")) || cycle > 0, "child never became ready in cycle {cycle}: {lines:?}");
        for line in lines {
            if let Some(id) = line.strip_prefix("acked ") {
                let id: u64 = id.parse().unwrap();
                acked.insert(id);
                next_batch = next_batch.max(id + 1);
            }
        }
    }
    assert!(acked.len() > 50, "too few batches acknowledged to mean anything: {}", acked.len());

    let store = Store::open(dir.path(), tiny_config()).unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    store
        .snapshot()
        .scan_days(ProjectId(1), 0, i32::MAX, |day| {
            for event in day.events {
                *seen.entry(event.insert_id().to_owned()).or_default() += 1;
            }
            true
        })
        .unwrap();
    for batch_id in &acked {
        for event in batch(*batch_id) {
            assert_eq!(seen.get(&event.insert_id), Some(&1), "event {} of acknowledged batch {batch_id}", event.insert_id);
        }
    }
    // Nothing that was never sent appears.
    let sent_max = (next_batch + 1) * EVENTS_PER_BATCH;
    for insert_id in seen.keys() {
        let n = u64::from_str_radix(insert_id, 16).unwrap();
        assert!(n < sent_max, "unknown event {insert_id}");
    }
    store.close().unwrap();
}

#[test]
fn reopen_after_clean_close_keeps_everything_and_compacts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), tiny_config()).unwrap();
        for batch_id in 0..40 {
            store.append_blocking(ProjectId(1), batch(batch_id)).unwrap();
        }
        // A duplicate re-send of a batch days later must not count twice.
        store.append_blocking(ProjectId(1), batch(3)).unwrap();
        store.close().unwrap();
    }
    let store = Store::open(dir.path(), tiny_config()).unwrap();
    let mut n_events = 0;
    store
        .snapshot()
        .scan_days(ProjectId(1), 0, i32::MAX, |day| {
            assert!(day.events.windows(2).all(|w| w[0].time_ms() <= w[1].time_ms()));
            n_events += day.events.len();
            true
        })
        .unwrap();
    assert_eq!(n_events as u64, 40 * EVENTS_PER_BATCH);
    let stats = store.stats();
    assert_eq!(stats.buffered_events, 0);
    // Idle past settle_after_ms, each of the three days settles into one part.
    let started = std::time::Instant::now();
    while store.stats().parts > 3 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(store.stats().parts, 3, "one part per day once settled");
    let mut n_settled = 0;
    store.snapshot().scan_days(ProjectId(1), 0, i32::MAX, |day| {
        n_settled += day.events.len();
        true
    }).unwrap();
    assert_eq!(n_settled, n_events, "settling kept every event once");
    store.close().unwrap();
}
