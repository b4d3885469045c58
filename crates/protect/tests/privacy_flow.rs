//! The privacy layer end to end on real files: generated SaaS data written
//! through the protector into a real store, SQLite and key store, then read
//! back by the report engine, erased, retained and retrieved.

use datagen::{GenConfig, Generator};
use events::{Event, ProjectId};
use privacy::apply::Verdict;
use privacy::policy::{PolicyDocument, Retention};
use protect::Protector;
use serde_json::json;
use std::sync::Arc;

struct Instance {
    _root: tempfile::TempDir,
    data: std::path::PathBuf,
    keys_dir: std::path::PathBuf,
    meta: Arc<meta::Meta>,
    store: Arc<store::Store>,
    protector: Arc<Protector>,
    engine: query::Engine,
}

fn instance() -> Instance {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let keys_dir = root.path().join("keys");
    let meta = Arc::new(meta::Meta::open(&data).unwrap());
    let key_store = keys::KeyStore::open(&keys_dir, &data, &keys::MasterSource::File { path: keys_dir.join("master.key"), create: true }).unwrap();
    let protector = Arc::new(Protector::new(meta.clone(), Arc::new(key_store)));
    let store = Arc::new(store::Store::open(&data, store::StoreConfig { settle_after_ms: 200, ..store::StoreConfig::default() }).unwrap());
    let engine = query::Engine::new(store.clone(), meta.clone());
    Instance { _root: root, data, keys_dir, meta, store, protector, engine }
}

fn generator() -> Generator {
    Generator::new(GenConfig { users: 400, days: 21, ..GenConfig::for_events(10_000) })
}

/// Writes events and profiles the way the server does: policy, vault,
/// identity links, then the store.
fn load(instance: &Instance, project: ProjectId, events: Vec<Event>, profiles: Vec<events::ProfileUpdate>) {
    let links = meta::LinkCache::default();
    for chunk in events.chunks(2000) {
        let mut batch = instance.protector.batch(project).unwrap();
        let mut kept = Vec::with_capacity(chunk.len());
        for event in chunk {
            let mut event = event.clone();
            if batch.event(&mut event).unwrap() == Verdict::Keep {
                kept.push(event);
            }
        }
        batch.commit().unwrap();
        links.record(&instance.meta, project, &kept).unwrap();
        instance.store.append_blocking(project, kept).unwrap();
    }
    let mut batch = instance.protector.batch(project).unwrap();
    let mut protected = Vec::new();
    for mut update in profiles {
        batch.profile(&mut update).unwrap();
        protected.push(update);
    }
    batch.commit().unwrap();
    instance.meta.apply_profile_updates(project, &protected).unwrap();
}

fn generated(generator: &Generator) -> (Vec<Event>, Vec<events::ProfileUpdate>) {
    let mut events = Vec::new();
    generator.for_each_event(|e| events.push(e));
    let mut profiles = Vec::new();
    generator.for_each_profile(|p| profiles.push(p));
    (events, profiles)
}

fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%d").to_string()
}

fn report_specs(generator: &Generator) -> Vec<query::Spec> {
    let range = generator.time_range_ms();
    let (from, to) = (day(range.start), day(range.end - 1));
    [
        json!({"report": "insights", "from": from, "to": to, "interval": "week", "events": [{"event": "$any", "measure": "uniques"}, {"event": "API Request", "measure": "total"}], "breakdown": "mp_country_code"}),
        json!({"report": "insights", "from": from, "to": to, "interval": "day", "events": [{"event": "Page View", "measure": "dau"}]}),
        json!({"report": "funnel", "from": from, "to": to, "steps": [{"event": "Page View"}, {"event": "Sign Up"}, {"event": "API Request"}], "window": "7d"}),
        json!({"report": "retention", "from": from, "to": to, "born": {"event": "Sign Up"}, "return": {"event": "API Request"}, "unit": "day", "periods": 7}),
        json!({"report": "flows", "from": from, "to": to, "anchor": {"event": "Sign Up"}, "steps": 2}),
    ]
    .into_iter()
    .map(|text| serde_json::from_value(text).unwrap())
    .collect()
}

#[test]
fn pseudonymised_ids_give_the_same_uniques_funnels_retention_and_flows() {
    let instance = instance();
    let plain = instance.meta.create_project("plain").unwrap().project;
    let pseudonymous = instance.meta.create_project("pseudonymous").unwrap().project;
    instance.protector.set_policy(pseudonymous.id, PolicyDocument { pseudonymise_ids: true, ..PolicyDocument::default() }).unwrap();
    let generator = generator();
    let (events, profiles) = generated(&generator);
    load(&instance, plain.id, events.clone(), profiles.clone());
    load(&instance, pseudonymous.id, events.clone(), profiles);
    instance.store.flush().unwrap();

    // No raw id reaches the pseudonymous project's events.
    let raw_ids: std::collections::HashSet<&str> = events.iter().map(|e| e.distinct_id.as_str()).collect();
    let snapshot = instance.store.snapshot();
    let mut n_rows = 0;
    snapshot.scan_days(pseudonymous.id, i32::MIN, i32::MAX, |day| {
        for row in &day.events {
            n_rows += 1;
            assert!(!raw_ids.contains(row.distinct_id()), "raw id {} stored", row.distinct_id());
            assert!(row.distinct_id().starts_with("pid:") || row.distinct_id().starts_with("$device:pid:"), "{}", row.distinct_id());
        }
        true
    }).unwrap();
    assert!(n_rows > 2000, "{n_rows}");

    for spec in report_specs(&generator) {
        let a = instance.engine.run(&plain, &spec).unwrap();
        let b = instance.engine.run(&pseudonymous, &spec).unwrap();
        assert_eq!(a, b, "pseudonymisation changed {spec:?}");
        assert_ne!(serde_json::to_string(&a).unwrap().matches(':').count(), 0);
    }
}

#[test]
fn erasure_takes_effect_at_once_and_reaches_the_parts() {
    let instance = instance();
    let project = instance.meta.create_project("p").unwrap().project;
    let generator = generator();
    let (events, profiles) = generated(&generator);
    load(&instance, project.id, events.clone(), profiles);
    instance.store.flush().unwrap();

    // A person with an anonymous device merged into their user id.
    let victim = "u7";
    let retrieved = instance.protector.retrieve(instance.store.as_ref(), project.id, victim).unwrap();
    let device_ids: Vec<String> = retrieved["distinct_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).filter(|id| id.starts_with("$device:")).collect();
    assert!(!device_ids.is_empty(), "u7 should have a merged device: {}", retrieved["distinct_ids"]);
    let email = retrieved["profiles"][0]["$properties"]["$email"].as_str().unwrap().to_owned();
    assert!(email.contains('@'), "the retrieval decrypts the email: {email}");
    let n_events = retrieved["events"].as_array().unwrap().len();
    assert!(n_events > 0);
    let vault_before = instance.meta.personal_values(project.id, victim, None).unwrap();
    assert!(!vault_before.is_empty());

    let spec: query::Spec = serde_json::from_value(json!({"report": "profiles", "limit": 10000})).unwrap();
    let before = serde_json::to_string(&instance.engine.run(&project, &spec).unwrap()).unwrap();
    assert!(before.contains(&format!("\"{victim}\"")));
    let any_uniques = report_specs(&generator).remove(0);
    let uniques_before = serde_json::to_value(instance.engine.run(&project, &any_uniques).unwrap()).unwrap();

    let erased = instance.protector.erase(project.id, "task-1", &[victim.to_owned()]).unwrap();
    assert!(erased.distinct_ids.contains(&victim.to_owned()) && device_ids.iter().all(|d| erased.distinct_ids.contains(d)));
    assert!(erased.keys_destroyed >= 1);

    // At once: gone from profiles, from every report, and unreadable.
    let after = serde_json::to_string(&instance.engine.run(&project, &spec).unwrap()).unwrap();
    assert!(!after.contains(&format!("\"{victim}\"")));
    let uniques_after = serde_json::to_value(instance.engine.run(&project, &any_uniques).unwrap()).unwrap();
    assert_ne!(uniques_before, uniques_after, "the erased person still counts");
    let activity: query::Spec = serde_json::from_value(json!({"report": "activity", "distinct_id": victim})).unwrap();
    let activity = serde_json::to_value(instance.engine.run(&project, &activity).unwrap()).unwrap();
    assert_eq!(activity["events"].as_array().map(Vec::len).unwrap_or(0), 0, "{activity}");
    for entry in &vault_before {
        assert_eq!(instance.protector.keys().open_value(project.id, victim, &entry.token, &entry.ciphertext).unwrap(), None, "ciphertext still opens after erasure");
    }
    assert!(instance.meta.personal_values(project.id, victim, None).unwrap().is_empty());

    // Within the compaction job: gone from the parts too.
    let finished = instance.protector.run_pending_erasures(&instance.store, &mut |_, _, _| {}).unwrap();
    assert_eq!(finished, 1);
    assert_eq!(instance.meta.erasure("task-1").unwrap().unwrap().status, "SUCCESS");
    let mut left = 0;
    instance.store.snapshot().scan_days(project.id, i32::MIN, i32::MAX, |day| {
        left += day.events.iter().filter(|e| erased.distinct_ids.iter().any(|id| id == e.distinct_id())).count();
        true
    }).unwrap();
    assert_eq!(left, 0);
    assert!(instance.meta.erased_ids(project.id).unwrap().is_empty(), "ids are forgotten once compacted");
    let uniques_compacted = serde_json::to_value(instance.engine.run(&project, &any_uniques).unwrap()).unwrap();
    assert_eq!(uniques_after, uniques_compacted);
    let retrieved = instance.protector.retrieve(instance.store.as_ref(), project.id, victim).unwrap();
    assert!(retrieved["events"].as_array().unwrap().is_empty() && retrieved["profiles"].as_array().unwrap().is_empty());
    let _ = (&instance.data, &instance.keys_dir);
}

#[test]
fn retention_leaves_nothing_older_than_the_policy() {
    let instance = instance();
    let project = instance.meta.create_project("p").unwrap().project;
    let generator = generator();
    let (events, profiles) = generated(&generator);
    load(&instance, project.id, events.clone(), profiles);
    instance.store.flush().unwrap();
    let range = generator.time_range_ms();
    let now_ms = range.end;
    instance.protector.set_policy(project.id, PolicyDocument { retention: Retention { events_days: Some(7), profiles_days: None }, ..PolicyDocument::default() }).unwrap();
    let report = instance.protector.enforce_retention(&instance.store, project.id, now_ms, Box::new(|_, _| {})).unwrap().unwrap();
    assert!(report.parts_dropped > 0 && report.rows_dropped > 0, "{report:?}");
    let cutoff = now_ms - 7 * events::MS_PER_DAY;
    let (mut older, mut kept) = (0, 0);
    instance.store.snapshot().scan_days(project.id, i32::MIN, i32::MAX, |day| {
        older += day.events.iter().filter(|e| e.time_ms() < cutoff).count();
        kept += day.events.len();
        true
    }).unwrap();
    assert_eq!(older, 0, "an event older than the retention survived");
    let expected_kept: std::collections::HashSet<&str> = events.iter().filter(|e| e.time_ms >= cutoff).map(|e| e.insert_id.as_str()).collect();
    assert_eq!(kept, expected_kept.len());
}

#[test]
fn a_policy_rewrite_applies_the_new_policy_to_stored_events() {
    let instance = instance();
    let project = instance.meta.create_project("p").unwrap().project;
    let open = PolicyDocument { properties: Default::default(), pii_scan: privacy::policy::PiiAction::Off, ..PolicyDocument::default() };
    instance.protector.set_policy(project.id, open).unwrap();
    let event = |n: i64, note: &str| Event {
        name: "Note".into(),
        distinct_id: format!("u{n}"),
        time_ms: 1_780_000_000_000 + n,
        insert_id: format!("i{n}"),
        properties: json!({"note": note, "email": format!("p{n}@example.com"), "plan": "pro"}).as_object().unwrap().clone(),
    };
    load(&instance, project.id, vec![event(1, "call +44 20 7946 0958"), event(2, "nothing personal")], Vec::new());
    instance.protector.set_policy(project.id, PolicyDocument::default()).unwrap();
    let report = instance.protector.rewrite_with_policy(&instance.store, project.id, Box::new(|_, _| {})).unwrap();
    assert_eq!(report.rows_changed, 2, "{report:?}");
    let mut rows = Vec::new();
    instance.store.snapshot().scan_days(project.id, i32::MIN, i32::MAX, |day| {
        rows.extend(day.events.iter().map(|e| e.to_event()));
        true
    }).unwrap();
    rows.sort_by_key(|e| e.time_ms);
    assert_eq!(rows[0].properties["note"], "call [phone]");
    assert!(privacy::crypto::is_value_token(rows[0].properties["email"].as_str().unwrap()));
    assert_eq!(rows[1].properties["plan"], "pro");
    // The sealed email is still readable through the vault.
    let mut properties = rows[0].properties.clone();
    assert_eq!(instance.protector.reveal(project.id, "u1", &mut properties).unwrap(), 1);
    assert_eq!(properties["email"], "p1@example.com");
}
