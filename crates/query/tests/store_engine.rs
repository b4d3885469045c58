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
        let company = format!("c{}", person % 4);
        out.push(event("Page View", &id, base, &format!("pv{day}-{person}"), json!({"mp_country_code": country, "n": person, "company": company})));
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
        json!({"report": "insights", "from": "2026-01-01", "to": "2026-01-05", "interval": "day",
               "events": [{"event": "Page View", "measure": "uniques"}], "unit": {"group": "company"}, "breakdown": "mp_country_code"}),
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
    // Counting companies: c0..c3 each had a Page View every day.
    let spec = specs().pop().unwrap();
    let query::ReportResult::Insights(companies) = engine.run(&project, &spec).unwrap() else { panic!("insights expected") };
    let per_day: f64 = companies.series.iter().map(|s| s.points["2026-01-01"].unwrap()).sum();
    assert!(per_day >= 4.0, "{companies:?}");
    // New events invalidate the cached table.
    let extra = vec![event("Page View", "late", START + DAY, "late-1", json!({"mp_country_code": "JP"}))];
    store.append_blocking(project.id, extra).unwrap();
    let spec: Spec = serde_json::from_value(json!({"report": "insights", "from": "2026-01-02", "to": "2026-01-02", "events": [{"event": "Page View"}], "breakdown": "mp_country_code"})).unwrap();
    let query::ReportResult::Insights(result) = engine.run(&project, &spec).unwrap() else { panic!("insights expected") };
    let japan = result.series.iter().find(|s| s.segment == Some(json!("JP"))).expect("the new event's segment");
    assert_eq!(japan.points["2026-01-02"], Some(1.0));
}

#[test]
fn activity_profiles_and_cohort_members_read_the_store_and_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(meta::Meta::open(dir.path()).unwrap());
    let project = meta.create_project("p").unwrap().project;
    let config = store::StoreConfig { settle_after_ms: 3_600_000, compact_min_parts: 100, ..store::StoreConfig::default() };
    let store = Arc::new(store::Store::open(dir.path(), config).unwrap());
    let events = [event("Page View", "$device:d1", START, "a1", json!({"$current_url": "https://x.example/"})),
        event("Sign Up", "u1", START + 1_000, "a2", json!({"plan": "pro"})),
        event("API Request", "u1", START + DAY, "a3", json!({"latency_ms": 12})),
        event("Page View", "u2", START + 2_000, "b1", json!({}))];
    // Day one is split over two parts (a split day); day two is in the buffer.
    store.append_blocking(project.id, events[..1].to_vec()).unwrap();
    store.flush().unwrap();
    store.append_blocking(project.id, vec![events[1].clone(), events[3].clone()]).unwrap();
    store.flush().unwrap();
    store.append_blocking(project.id, vec![events[2].clone()]).unwrap();
    meta.link_identity(project.id, "$device:d1", "u1", meta::LinkSource::DeviceUser, START).unwrap();
    let profile = |id: &str, properties: serde_json::Value| events::ProfileUpdate {
        distinct_id: id.into(),
        time_ms: START,
        ignore_time: true,
        ignore_alias: false,
        op: events::ProfileOp::Set(properties.as_object().unwrap().clone()),
    };
    meta.apply_profile_updates(project.id, &[profile("u1", json!({"plan": "pro", "seats": 5})), profile("u2", json!({"plan": "free", "seats": 1}))])
        .unwrap();
    let sources = store.snapshot().day_sources(project.id);
    assert!(sources.iter().any(|s| s.parts.len() == 2 && s.chunks.is_empty()), "{sources:?}");
    let engine = Engine::new(store.clone(), meta.clone());
    let run = |spec: serde_json::Value| engine.run(&project, &serde_json::from_value(spec).unwrap()).unwrap();

    let query::ReportResult::Activity(activity) = run(json!({"report": "activity", "distinct_id": "$device:d1"})) else { panic!("activity expected") };
    assert_eq!(activity.distinct_id, "u1");
    assert_eq!(activity.distinct_ids, ["$device:d1", "u1"]);
    assert_eq!(activity.profile.as_ref().and_then(|p| p.get("seats")), Some(&json!(5)));
    let names: Vec<&str> = activity.events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["API Request", "Sign Up", "Page View"], "newest first, across both ids and the buffer");
    assert_eq!(activity.events[0]["properties"]["latency_ms"], 12);
    assert_eq!(activity.events[2]["properties"]["$current_url"], "https://x.example/");

    let query::ReportResult::Profiles(found) = run(json!({"report": "profiles", "where": [{"property": "seats", "op": "gte", "value": 2}]})) else {
        panic!("profiles expected")
    };
    assert_eq!(found.profiles.iter().map(|p| p.distinct_id.as_str()).collect::<Vec<_>>(), ["u1"]);
    // A profile update is seen by the next report that reads profiles.
    meta.apply_profile_updates(project.id, &[profile("u2", json!({"seats": 9}))]).unwrap();
    let query::ReportResult::Profiles(found) = run(json!({"report": "profiles", "where": [{"property": "seats", "op": "gte", "value": 2}]})) else {
        panic!("profiles expected")
    };
    assert_eq!(found.profiles.iter().map(|p| p.distinct_id.as_str()).collect::<Vec<_>>(), ["u1", "u2"]);
    let query::ReportResult::Insights(by_seats) = run(json!({"report": "insights", "from": "2026-01-01", "to": "2026-01-02", "interval": "month",
        "events": [{"event": "$any", "measure": "uniques"}], "breakdown": {"property": "seats", "source": "profile"}})) else {
        panic!("insights expected")
    };
    let segments: Vec<_> = by_seats.series.iter().map(|s| s.segment.clone().unwrap()).collect();
    assert_eq!(segments, [json!(5), json!(9)], "profile breakdowns read the updated profile");

    let members = |definition: serde_json::Value| {
        let query::ReportResult::Members(members) = run(json!({"report": "cohort_members", "definition": definition, "as_of": "2026-01-02"})) else {
            panic!("members expected")
        };
        members.members
    };
    assert_eq!(members(json!({"did": "Page View", "within_days": 2})), ["u1", "u2"]);
    assert_eq!(members(json!({"all": [{"did": "Page View", "within_days": 2}, {"did_not": "API Request", "within_days": 2}]})), ["u2"]);
    assert_eq!(members(json!({"did": "Page View", "at_least": 2, "within_days": 2})), Vec::<String>::new());
    assert_eq!(members(json!({"property": "plan", "op": "eq", "value": "free"})), ["u2"]);
    assert_eq!(members(json!({"any": [{"property": "plan", "op": "eq", "value": "free"}, {"did": "Sign Up", "from": "2026-01-01", "to": "2026-01-01"}]})), ["u1", "u2"]);
}
