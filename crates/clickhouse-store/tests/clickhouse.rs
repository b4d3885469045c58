//! Against a real ClickHouse (Debian's 18.16): the schema migrations, the
//! sink's inserts and deduplication, reading back, and a store that keeps
//! acknowledged events through a ClickHouse outage.



use clickhouse_store::{schema, ClickHouseError, ClickHouseSink, EventReader};
use events::{Event, ProjectId};
use std::sync::Arc;
use clickhouse_store::local_server::LocalClickHouse;

fn event(name: &str, user: &str, time_ms: i64, insert_id: &str, properties: serde_json::Value) -> Event {
    Event {
        name: name.to_owned(),
        distinct_id: user.to_owned(),
        time_ms,
        insert_id: insert_id.to_owned(),
        properties: properties.as_object().cloned().unwrap_or_default(),
    }
}

/// 2026-11-01T10:00:00Z
const T0: i64 = 1_793_527_200_000;
const DAY: i32 = (T0 / 86_400_000) as i32;

#[test]
fn migrations_apply_once_and_are_recorded() {
    let server = LocalClickHouse::start().unwrap();
    let client = server.client("hearth_schema_test").unwrap();
    let first = schema::migrate(&client).unwrap();
    assert_eq!(first, schema::migrations().iter().map(|m| m.version).collect::<Vec<_>>());
    assert_eq!(schema::migrate(&client).unwrap(), Vec::<u32>::new(), "a second start applies nothing");
    assert_eq!(schema::applied(&client).unwrap(), first);
    // The table is there and empty.
    assert_eq!(EventReader::new(client).count(ProjectId(1)).unwrap(), 0);
}

#[test]
fn repeated_inserts_count_once_and_read_back_exactly() {
    let server = LocalClickHouse::start().unwrap();
    let client = server.client("hearth_dedup_test").unwrap();
    schema::migrate(&client).unwrap();
    let sink = ClickHouseSink::new(client.clone());
    let tricky = "quote \" backslash \\ tab \t newline \n unicode é 漢字 🙂 nul-free";
    let batch = vec![
        event("Sign up", "user-1", T0, "a1", serde_json::json!({"plan": "free", "note": tricky})),
        event("Page view", "user-1", T0 + 1_000, "a2", serde_json::json!({"n": 1, "f": 1.5, "list": [1, "x"]})),
        event("Page view", "user-2", T0 + 2_000, "a3", serde_json::json!({})),
    ];
    let rows: Vec<store::StoredEvent> = batch.iter().cloned().map(store::StoredEvent::from_event).collect();
    let refs: Vec<&store::StoredEvent> = rows.iter().collect();
    store::EventSink::write(&sink, ProjectId(7), &refs).unwrap();
    // The same events again (a replay after a crash), one with a changed
    // property: the later copy wins, as in the embedded store.
    let mut again = batch.clone();
    again[1].properties.insert("n".into(), serde_json::json!(2));
    let rows_again: Vec<store::StoredEvent> = again.iter().cloned().map(store::StoredEvent::from_event).collect();
    store::EventSink::write(&sink, ProjectId(7), &rows_again.iter().collect::<Vec<_>>()).unwrap();
    // Another project's copy is another event.
    store::EventSink::write(&sink, ProjectId(8), &refs[..1]).unwrap();

    let reader = EventReader::new(client);
    assert_eq!(reader.count(ProjectId(7)).unwrap(), 3);
    assert_eq!(reader.count(ProjectId(8)).unwrap(), 1);
    assert_eq!(reader.days(ProjectId(7), DAY - 5, DAY + 5).unwrap(), vec![DAY]);
    assert_eq!(reader.days(ProjectId(7), DAY + 1, DAY + 5).unwrap(), Vec::<i32>::new());
    let back: Vec<Event> = reader.day_rows(ProjectId(7), DAY).unwrap().into_iter().map(|r| r.into_event()).collect();
    assert_eq!(back, again);
    assert_eq!(back[0].properties["note"], tricky);
}

#[test]
fn erasure_and_retention_delete_rows_from_clickhouse_itself() {
    let server = LocalClickHouse::start().unwrap();
    let client = server.client("hearth_delete_test").unwrap();
    schema::migrate(&client).unwrap();
    let sink = ClickHouseSink::new(client.clone());
    let quote = "o'brien \\ x";
    let batch = [
        event("Old", "keep", T0 - 40 * 86_400_000, "d1", serde_json::json!({})),
        event("New", "keep", T0, "d2", serde_json::json!({})),
        event("New", "erase-me", T0, "d3", serde_json::json!({})),
        event("New", quote, T0 + 1, "d4", serde_json::json!({})),
    ];
    let rows: Vec<store::StoredEvent> = batch.iter().cloned().map(store::StoredEvent::from_event).collect();
    let refs: Vec<&store::StoredEvent> = rows.iter().collect();
    store::EventSink::write(&sink, ProjectId(3), &refs).unwrap();
    store::EventSink::write(&sink, ProjectId(4), &refs).unwrap();

    store::EventSink::delete_people(&sink, ProjectId(3), &["erase-me".to_owned(), quote.to_owned()]).unwrap();
    store::EventSink::delete_before(&sink, ProjectId(3), T0 - 86_400_000).unwrap();
    // Gone from the table itself (no FINAL, no hiding): only project 3's "New" of "keep" is left.
    let left: Vec<serde_json::Value> = client.query("SELECT project, insert_id FROM hearth_delete_test.events ORDER BY project, insert_id").unwrap();
    let left: Vec<(u64, String)> = left.iter().map(|r| (r["project"].as_u64().unwrap(), r["insert_id"].as_str().unwrap().to_owned())).collect();
    let expected: Vec<(u64, String)> = [(3, "d2"), (4, "d1"), (4, "d2"), (4, "d3"), (4, "d4")].iter().map(|(p, i)| (*p, (*i).to_owned())).collect();
    assert_eq!(left, expected, "another project's rows stay");
}

#[test]
fn a_wrong_password_is_refused_with_clickhouses_reason() {
    let server = LocalClickHouse::start().unwrap();
    let mut config = server.config("default");
    config.password = "wrong".into();
    let client = clickhouse_store::Client::new(&config).unwrap();
    match schema::migrate(&client) {
        Err(ClickHouseError::Server { message, .. }) => assert!(message.to_lowercase().contains("password"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let bad = clickhouse_store::Client::new(&clickhouse_store::ClickHouseConfig { url: "localhost:8123".into(), ..server.config("default") });
    assert!(matches!(bad, Err(ClickHouseError::BadUrl { .. })));
}

#[test]
fn a_store_keeps_acknowledged_events_through_a_clickhouse_outage() {
    let mut server = LocalClickHouse::start().unwrap();
    let client = server.client("hearth_outage_test").unwrap();
    schema::migrate(&client).unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = store::StoreConfig { sink: Some(Arc::new(ClickHouseSink::new(client.clone()))), ..store::StoreConfig::default() };
    let store = Arc::new(store::Store::open(data.path(), config).unwrap());
    let first: Vec<Event> = (0..500).map(|i| event("Page view", &format!("user-{}", i % 37), T0 + i * 1_000, &format!("first-{i}"), serde_json::json!({"i": i}))).collect();
    store.append_blocking(ProjectId(1), first).unwrap();
    store.flush().unwrap();
    let reader = EventReader::new(client.clone());
    assert_eq!(reader.count(ProjectId(1)).unwrap(), 500);
    assert!(!data.path().join("parts").exists() || std::fs::read_dir(data.path().join("parts")).unwrap().next().is_none(), "no parts are written");

    // ClickHouse goes away; ingestion still acknowledges (the WAL has them).
    server.kill();
    let second: Vec<Event> = (0..300).map(|i| event("Sign up", &format!("user-{i}"), T0 + i * 7, &format!("second-{i}"), serde_json::json!({}))).collect();
    store.append_blocking(ProjectId(1), second).unwrap();
    let flushing = {
        let store = store.clone();
        std::thread::spawn(move || store.flush())
    };
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    assert!(!flushing.is_finished(), "a flush cannot finish while ClickHouse is down");
    server.launch().unwrap();
    flushing.join().unwrap().unwrap();
    assert_eq!(reader.count(ProjectId(1)).unwrap(), 800);
    store.close().unwrap();
    drop(store);
    // The retried flushes left the node's files consistent: it opens again.
    let config = store::StoreConfig { sink: Some(Arc::new(ClickHouseSink::new(client))), ..store::StoreConfig::default() };
    let reopened = store::Store::open(data.path(), config).unwrap();
    reopened.close().unwrap();
}
