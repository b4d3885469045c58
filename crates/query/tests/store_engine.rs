//! The engine over a real store on disk answers exactly what the in-memory
//! path answers for the same events: days held by one settled part (read
//! column by column), days spread over several parts with duplicates across
//! them, and events still in the buffer, with identity links from SQLite.

use events::Event;
use query::spec::Spec;
use query::{run_dataset, Dataset, Engine};
use serde_json::json;
use std::sync::Arc;

fn event(name: &str, distinct_id: &str, time_ms: i64, insert_id: &str, properties: serde_json::Value) -> Event {
    let serde_json::Value::Object(properties) = properties else { panic!("properties must be an object") };
    Event { name: name.into(), distinct_id: distinct_id.into(), time_ms, insert_id: insert_id.into(), properties }
}

const DAY: i64 = 86_400_000;
const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn events_for(day: i64, n_people: usize) -> Vec<Event> {
    let mut out = Vec::new();
    for person in 0..n_people {
        let base = START + day * DAY + (person as i64) * 1_000;
        let id = if person % 3 == 0 { format!("$device:d{person}") } else { format!("u{person}") };
        let country = ["US", "DE", "FR"][person % 3];
        out.push(event("Page View", &id, base, &format!("pv{day}-{person}"), json!({"mp_country_code": country, "n": person})));
        if person % 2 == 0 {
            out.push(event("Sign Up", &id, base + 10, &format!("su{day}-{person}"), json!({"plan": "free", "mp_country_code": country})));
            out.push(event("API Request", &format!("u{person}"), base + 2 * DAY / 3, &format!("ar{day}-{person}"), json!({"latency_ms": 10.5 * person as f64})));
        }
    }
    out
}

fn specs() -> Vec<Spec> {
    let texts = [
        json!({"report": "insights", "from": "2026-01-01", "to": "2026-01-05", "interval": "day",
               "events": [{"event": "$any", "measure": "total"}, {"event": "Page View", "measure": "uniques"}], "breakdown": "mp_country_code"}),
        json!({"report": "insights", "from": "2026-01-01", "to": "2026-01-05", "interval": "week",
               "events": [{"event": "API Request", "measure": "p90", "property": "latency_ms"}, {"event": "API Request", "measure": "sum", "property": "latency_ms"}]}),
        json!({"report": "funnel", "from": "2026-01-01", "to": "2026-01-05", "steps": [{"event": "Page View"}, {"event": "Sign Up"}, {"event": "API Request"}], "window": "2d"}),
        json!({"report": "retention", "from": "2026-01-01", "to": "2026-01-05", "born": {"event": "Page View"}, "return": {"event": "API Request"}, "unit": "day", "periods": 4, "mode": "on_or_after"}),
        json!({"report": "flows", "from": "2026-01-01", "to": "2026-01-05", "anchor": {"event": "Page View"}, "steps": 2}),
    ];
    texts.into_iter().map(|t| serde_json::from_value(t).unwrap()).collect()
}

#[test]
fn settled_split_and_buffered_days_answer_like_memory() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(meta::Meta::open(dir.path()).unwrap());
    let project = meta.create_project("p").unwrap().project;
    let config = store::StoreConfig { settle_after_ms: 3_600_000, compact_min_parts: 100, ..store::StoreConfig::default() };
    let store = Arc::new(store::Store::open(dir.path(), config).unwrap());
    let mut all = Vec::new();
    // Days 0-1: one flush each (a single part per day).
    for day in 0..2 {
        let batch = events_for(day, 30);
        store.append_blocking(project.id, batch.clone()).unwrap();
        store.flush().unwrap();
        all.extend(batch);
    }
    // Day 2: two flushes with duplicates across them (the later copy wins).
    let first = events_for(2, 30);
    store.append_blocking(project.id, first.clone()).unwrap();
    store.flush().unwrap();
    let mut second: Vec<Event> = first.iter().take(10).cloned().collect();
    for event in &mut second {
        event.properties.insert("mp_country_code".into(), json!("GB"));
    }
    store.append_blocking(project.id, second.clone()).unwrap();
    store.flush().unwrap();
    all.extend(first);
    all.extend(second);
    // Days 3-4: still in the buffer.
    for day in 3..5 {
        let batch = events_for(day, 30);
        store.append_blocking(project.id, batch.clone()).unwrap();
        all.extend(batch);
    }
    let links: Vec<(String, String)> = (0..30).step_by(3).map(|p| (format!("$device:d{p}"), format!("u{p}"))).collect();
    for (device, user) in &links {
        meta.link_identity(project.id, device, user, meta::LinkSource::DeviceUser, 0).unwrap();
    }
    let sources = store.snapshot().day_sources(project.id);
    assert!(sources.iter().any(|s| s.is_single_part()), "{sources:?}");
    assert!(sources.iter().any(|s| s.parts.len() == 2), "{sources:?}");
    assert!(sources.iter().any(|s| !s.chunks.is_empty()), "{sources:?}");

    let engine = Engine::new(store.clone(), meta.clone());
    let dataset = Dataset { timezone: "UTC".into(), events: all, links, ..Dataset::default() };
    for spec in specs() {
        let from_store = engine.run(&project, &spec).unwrap();
        let from_memory = run_dataset(&dataset, &spec).unwrap();
        assert_eq!(from_store, from_memory, "{spec:?}");
        // A second run uses the cached table and columns.
        assert_eq!(engine.run(&project, &spec).unwrap(), from_memory);
    }
    // New events invalidate the cached table.
    let extra = vec![event("Page View", "late", START + DAY, "late-1", json!({"mp_country_code": "JP"}))];
    store.append_blocking(project.id, extra).unwrap();
    let spec: Spec = serde_json::from_value(json!({"report": "insights", "from": "2026-01-02", "to": "2026-01-02", "events": [{"event": "Page View"}], "breakdown": "mp_country_code"})).unwrap();
    let query::ReportResult::Insights(result) = engine.run(&project, &spec).unwrap() else { panic!("insights expected") };
    let japan = result.series.iter().find(|s| s.segment == Some(json!("JP"))).expect("the new event's segment");
    assert_eq!(japan.points["2026-01-02"], Some(1.0));
}
