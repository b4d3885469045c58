//! Rewrites on real parts: whole parts dropped by their metadata, rows
//! dropped and changed inside others, the result published atomically and
//! still there after the store is reopened; old part files deleted.

use events::{Event, ProjectId};
use serde_json::json;
use store::{PartFate, PartMeta, Rewrite, RowFate, Store, StoreConfig};

const DAY_MS: i64 = 86_400_000;
const BASE_MS: i64 = 1_780_000_000_000;
const P: ProjectId = ProjectId(1);

fn events() -> Vec<Event> {
    (0..300)
        .map(|n: i64| Event {
            name: "Page View".into(),
            distinct_id: format!("user{}", n % 10),
            time_ms: BASE_MS + (n % 3) * DAY_MS + n,
            insert_id: format!("{n:032x}"),
            properties: json!({"n": n, "note": format!("secret-{n}")}).as_object().unwrap().clone(),
        })
        .collect()
}

/// Drops the oldest day whole, user3's events everywhere, and the `note`
/// property of the rest.
struct Rules {
    oldest_day: i32,
}

impl Rewrite for Rules {
    fn part(&mut self, part: &PartMeta) -> PartFate {
        if part.day == self.oldest_day { PartFate::Drop } else { PartFate::Inspect }
    }

    fn row(&mut self, event: &mut Event) -> RowFate {
        if event.distinct_id == "user3" {
            return RowFate::Dropped;
        }
        if event.properties.remove("note").is_some() { RowFate::Changed } else { RowFate::Unchanged }
    }
}

fn all_rows(store: &Store) -> Vec<Event> {
    let snapshot = store.snapshot();
    let mut rows = Vec::new();
    for source in snapshot.day_sources(P) {
        rows.extend(snapshot.day_rows(P, source.day).unwrap().iter().map(|r| r.to_event()));
    }
    rows
}

#[test]
fn a_rewrite_drops_and_changes_rows_durably() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { flush_rows: 50, settle_after_ms: 60_000, ..StoreConfig::default() };
    let store = Store::open(dir.path(), config.clone()).unwrap();
    store.append_blocking(P, events()).unwrap();
    store.flush().unwrap();
    let oldest_day = events::day_of_ms(BASE_MS);
    let parts_before: Vec<std::path::PathBuf> = walk(dir.path());
    let mut seen = Vec::new();
    let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = progress.clone();
    let report = store.rewrite(P, Box::new(Rules { oldest_day }), Box::new(move |done, total| sink.lock().unwrap().push((done, total)))).unwrap();
    seen.extend(progress.lock().unwrap().iter().copied());
    assert_eq!(seen.last().map(|(d, t)| d == t), Some(true));
    assert!(report.parts_dropped >= 1, "{report:?}");
    assert_eq!(report.rows_dropped, 100 + 200 / 10, "{report:?}");
    assert_eq!(report.rows_changed, 200 - 20, "{report:?}");

    let check = |rows: Vec<Event>| {
        assert_eq!(rows.len(), 180);
        assert!(rows.iter().all(|e| e.distinct_id != "user3"));
        assert!(rows.iter().all(|e| events::day_of_ms(e.time_ms) != oldest_day));
        assert!(rows.iter().all(|e| !e.properties.contains_key("note") && e.properties.contains_key("n")));
    };
    check(all_rows(&store));
    store.close().unwrap();
    drop(store);
    let reopened = Store::open(dir.path(), config).unwrap();
    check(all_rows(&reopened));
    // Every part held a changed or dropped row: none of the old files is left.
    let parquet = |paths: Vec<std::path::PathBuf>| paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect::<Vec<_>>();
    let before = parquet(parts_before);
    let after = parquet(walk(dir.path()));
    assert!(!before.is_empty() && !after.is_empty());
    assert!(after.iter().all(|p| !before.contains(p)), "old part files survived: {before:?} / {after:?}");
    reopened.close().unwrap();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
