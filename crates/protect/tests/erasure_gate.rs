//! The erasure gate on real files: what a node's flush holds back from the
//! external event database once a person was erased (on any node).

use events::{Event, ProjectId};
use protect::Protector;
use std::sync::Arc;
use store::{SinkGate, StoredEvent};

fn protector(root: &std::path::Path) -> (Arc<meta::Meta>, Arc<Protector>) {
    let data = root.join("data");
    let keys_dir = root.join("keys");
    let meta = Arc::new(meta::Meta::open(&data).unwrap());
    let key_store = keys::KeyStore::open(&keys_dir, &data, &keys::MasterSource::File { path: keys_dir.join("master.key"), create: true }).unwrap();
    (meta.clone(), Arc::new(Protector::new(meta, Arc::new(key_store))))
}

fn row(distinct_id: &str, time_ms: i64) -> StoredEvent {
    StoredEvent::from_event(Event {
        name: "Page View".to_owned(),
        distinct_id: distinct_id.to_owned(),
        time_ms,
        insert_id: format!("{distinct_id}-{time_ms}"),
        properties: Default::default(),
    })
}

/// The (distinct id, time) of the rows the gate lets through.
fn passed(gate: &dyn SinkGate, project: ProjectId, rows: &[StoredEvent]) -> Vec<(String, i64)> {
    let mut refs: Vec<&StoredEvent> = rows.iter().collect();
    let held = gate.hold_back(project, &mut refs).unwrap();
    assert_eq!(held + refs.len(), rows.len());
    refs.iter().map(|r| (r.distinct_id().to_owned(), r.time_ms())).collect()
}

#[test]
fn the_gate_holds_back_an_erased_persons_events_from_before_the_erasure_only() {
    let root = tempfile::tempdir().unwrap();
    let (meta, protector) = protector(root.path());
    let project = meta.create_project("gated").unwrap().project.id;
    let other = meta.create_project("other").unwrap().project.id;
    let gate = protector.sink_gate();
    let before = events::now_ms() - 60_000;
    let rows = vec![row("victim", before), row("bystander", before), row("victim", before + 1)];
    assert_eq!(passed(&*gate, project, &rows).len(), 3, "nothing is erased yet");

    let erased = protector.erase(project, "task-gate", &["victim".to_owned()]).unwrap();
    // Pending: every event of the person is held back, whatever its time.
    let later = events::now_ms() + 60_000;
    let mut with_later = rows.clone();
    with_later.push(row("victim", later));
    assert_eq!(passed(&*gate, project, &with_later), [("bystander".to_owned(), before)]);
    // The same id in another project is another person.
    assert_eq!(passed(&*gate, other, &rows).len(), 3);

    // Finished: the ids are forgotten, their tombstones stay. Events from
    // before the erasure (a node that was down comes back) are held back;
    // a later event of the same id is new data.
    meta.finish_erasure(&erased.erasure.task_id).unwrap();
    assert!(meta.erased_ids(project).unwrap().is_empty());
    let tombstones = meta.erasure_tombstones(project).unwrap();
    assert_eq!(tombstones.len(), 1);
    assert!(!tombstones[0].0.contains("victim"), "a tombstone is a keyed hash, not the id");
    assert_eq!(passed(&*gate, project, &with_later), [("bystander".to_owned(), before), ("victim".to_owned(), later)]);

    // Tombstones are forgotten after their time, and then nothing is held back.
    assert_eq!(meta.forget_erasure_tombstones(events::now_ms() + 1).unwrap(), 1);
    assert_eq!(passed(&*gate, project, &with_later).len(), 4);
}

#[test]
fn without_an_external_event_database_erasures_leave_no_tombstones() {
    let root = tempfile::tempdir().unwrap();
    let (meta, protector) = protector(root.path());
    let project = meta.create_project("embedded").unwrap().project.id;
    protector.erase(project, "task-plain", &["victim".to_owned()]).unwrap();
    assert!(meta.erasure_tombstones(project).unwrap().is_empty());
}
