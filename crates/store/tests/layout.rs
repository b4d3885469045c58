//! Which flushed parts get typed property columns: a flush that splits into
//! many days (historical data sent user by user) writes its small parts raw,
//! a flush of one day writes typed columns, and a merge types raw parts.

use events::{Event, ProjectId};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::json;
use store::{Store, StoreConfig};

const DAY_MS: i64 = 86_400_000;
const BASE_MS: i64 = 1_780_000_000_000;
const P: ProjectId = ProjectId(1);

fn events(n_days: i64, n: i64) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            name: "Page View".into(),
            distinct_id: format!("user{}", i % 10),
            time_ms: BASE_MS + (i % n_days) * DAY_MS + i,
            insert_id: format!("{i:032x}"),
            properties: json!({"n": i, "plan": "pro", "nested": {"a": [i]}}).as_object().unwrap().clone(),
        })
        .collect()
}

/// Per part file: its typed property columns.
fn part_columns(dir: &std::path::Path) -> Vec<Vec<String>> {
    let mut parts = Vec::new();
    for day in std::fs::read_dir(dir.join("parts/p1")).unwrap() {
        for file in std::fs::read_dir(day.unwrap().path()).unwrap() {
            let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file.unwrap().path()).unwrap()).unwrap();
            parts.push(builder.schema().fields().iter().map(|f| f.name().clone()).filter(|name| name.starts_with("properties.")).collect());
        }
    }
    parts
}

fn all_events(store: &Store) -> Vec<Event> {
    let snapshot = store.snapshot();
    let mut rows: Vec<Event> = snapshot.day_sources(P).iter().flat_map(|source| snapshot.day_rows(P, source.day).unwrap().iter().map(|r| r.to_event()).collect::<Vec<_>>()).collect();
    rows.sort_by(|a, b| a.insert_id.cmp(&b.insert_id));
    rows
}

#[test]
fn a_many_day_flush_writes_raw_parts_that_a_merge_types() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { flush_rows: 1_000_000, settle_after_ms: 600_000, compact_min_parts: 2, ..StoreConfig::default() };
    let store = Store::open(dir.path(), config).unwrap();
    let mut sent = events(3, 300);
    store.append_blocking(P, sent.clone()).unwrap();
    store.flush().unwrap();
    let flushed = part_columns(dir.path());
    assert_eq!(flushed.len(), 3);
    assert!(flushed.iter().all(Vec::is_empty), "raw parts: {flushed:?}");
    sent.sort_by(|a, b| a.insert_id.cmp(&b.insert_id));
    assert_eq!(all_events(&store), sent, "raw parts read back as sent");

    // A second flush gives each day a second part; merging two raw parts types them.
    let more: Vec<Event> = events(3, 600).into_iter().skip(300).collect();
    store.append_blocking(P, more.clone()).unwrap();
    store.flush().unwrap();
    // Compaction runs on the flush thread while no flush waits.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while part_columns(dir.path()).iter().any(Vec::is_empty) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let merged = part_columns(dir.path());
    assert_eq!(merged.len(), 3, "{merged:?}");
    assert!(merged.iter().all(|columns| columns == &["properties.n", "properties.plan"]), "{merged:?}");
    sent.extend(more);
    sent.sort_by(|a, b| a.insert_id.cmp(&b.insert_id));
    assert_eq!(all_events(&store), sent);
}

#[test]
fn a_one_day_flush_writes_typed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig { settle_after_ms: 600_000, ..StoreConfig::default() }).unwrap();
    store.append_blocking(P, events(1, 100)).unwrap();
    store.flush().unwrap();
    assert_eq!(part_columns(dir.path()), vec![vec!["properties.n".to_owned(), "properties.plan".to_owned()]]);
}
