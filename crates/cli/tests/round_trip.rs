//! The real binary: generate, import, export, re-import, export again; and
//! the CLI's error messages.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn hearth(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).arg("--data").arg(data).env("HEARTH_LOG", "warn").output().unwrap()
}

fn ok(output: Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Events keyed by Mixpanel's dedup key, with their other properties.
/// Asserts two keyed sets are equal, naming the first difference only.
fn assert_same(got: &BTreeMap<(String, String, i64, String), BTreeMap<String, Value>>, want: &BTreeMap<(String, String, i64, String), BTreeMap<String, Value>>) {
    for (key, properties) in want {
        match got.get(key) {
            None => panic!("missing {key:?} ({} got, {} wanted)", got.len(), want.len()),
            Some(found) => assert_eq!(found, properties, "properties of {key:?}"),
        }
    }
    assert_eq!(got.len(), want.len(), "extra events");
}

fn keyed(jsonl: &str) -> BTreeMap<(String, String, i64, String), BTreeMap<String, Value>> {
    let mut events = BTreeMap::new();
    for line in jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line).unwrap();
        let mut properties: BTreeMap<String, Value> = serde_json::from_value(value["properties"].clone()).unwrap();
        let time = properties.remove("time").unwrap();
        // Generated files carry milliseconds, exports seconds (as Mixpanel).
        let time = time.as_f64().unwrap();
        let time_ms = if time >= 1e11 { time as i64 } else { (time * 1000.0).round() as i64 };
        let key = (
            value["event"].as_str().unwrap().to_owned(),
            properties.remove("distinct_id").unwrap().as_str().unwrap().to_owned(),
            time_ms,
            properties.remove("$insert_id").unwrap().as_str().unwrap().to_owned(),
        );
        properties.remove("$import");
        // Numbers compare by value: a float column gives 3.0 for 3.
        for value in properties.values_mut() {
            if let Some(f) = value.as_f64() {
                *value = Value::from(f);
            }
        }
        events.insert(key, properties);
    }
    events
}

#[test]
fn generated_data_round_trips_through_import_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let generated = dir.path().join("gen.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["gen", "--users", "300", "--days", "30", "--start", "2026-03-02", "--out"])
        .arg(&generated)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let generated_text = std::fs::read_to_string(&generated).unwrap();
    let n_lines = generated_text.lines().count();
    let sent = keyed(&generated_text);
    assert!(sent.len() > 1000 && sent.len() < n_lines, "duplicates expected: {} keys, {} lines", sent.len(), n_lines);

    ok(hearth(&["project", "create", "first"], &data));
    ok(hearth(&["project", "create", "second"], &data));
    let imported = hearth(&["import", "--project", "first", generated.to_str().unwrap()], &data);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    assert!(String::from_utf8_lossy(&imported.stderr).contains(&format!("imported {n_lines} events")));

    let export = |project: &str| ok(hearth(&["export", "--project", project, "--from", "2026-03-01", "--to", "2026-04-30"], &data));
    let first_export = export("first");
    assert_eq!(first_export.lines().count(), sent.len(), "the export is deduplicated");
    assert_same(&keyed(&first_export), &sent);

    let exported_file = dir.path().join("export.jsonl");
    std::fs::write(&exported_file, &first_export).unwrap();
    ok(hearth(&["import", "--project", "second", exported_file.to_str().unwrap()], &data));
    let second_export = export("second");
    assert_same(&keyed(&second_export), &keyed(&first_export));
    // Projects are isolated: nothing of "second" leaked into "first".
    assert_eq!(export("first").lines().count(), sent.len());
}

#[test]
fn cli_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let missing = hearth(&["export", "--project", "nope", "--from", "2026-01-01", "--to", "2026-01-02"], &data);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no project named \"nope\""));
    ok(hearth(&["project", "create", "p"], &data));
    let bad_date = hearth(&["export", "--project", "p", "--from", "yesterday", "--to", "2026-01-02"], &data);
    assert!(String::from_utf8_lossy(&bad_date.stderr).contains("--from must be YYYY-MM-DD"));
    let duplicate = hearth(&["project", "create", "p"], &data);
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
    let bad_file = dir.path().join("bad.jsonl");
    std::fs::write(&bad_file, "{not json}\n{\"event\":\"E\",\"properties\":{\"distinct_id\":\"a\",\"time\":1780000000,\"$insert_id\":\"i1\"}}\n").unwrap();
    let partial = hearth(&["import", "--project", "p", bad_file.to_str().unwrap()], &data);
    let stderr = String::from_utf8_lossy(&partial.stderr);
    assert!(partial.status.success(), "{stderr}");
    assert!(stderr.contains("imported 1 events") && stderr.contains("1 rejected") && stderr.contains("line 1: not JSON"), "{stderr}");
    ok(hearth(&["project", "set", "p", "--geo-precision", "city"], &data));
    let listed = ok(hearth(&["project", "list", "--json"], &data));
    assert!(listed.contains("\"geo_precision\":\"city\""), "{listed}");
    let wrong = hearth(&["project", "set", "p", "--geo-precision", "street"], &data);
    assert!(!wrong.status.success() && String::from_utf8_lossy(&wrong.stderr).contains("street"));
    let help = Command::new(env!("CARGO_BIN_EXE_hearth")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for command in ["serve", "project", "import", "export", "gen", "query"] {
        assert!(help.contains(command), "--help lacks {command}");
    }
}

#[test]
fn a_second_process_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(hearth(&["project", "create", "p"], &data));
    let _held = store::Store::open(&data, store::StoreConfig::default()).unwrap();
    let refused = hearth(&["export", "--project", "p", "--from", "2026-01-01", "--to", "2026-01-02"], &data);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("in use by another hearth process"), "{}", String::from_utf8_lossy(&refused.stderr));
}

#[test]
fn query_prints_json_a_table_and_csv_and_imports_merge_identities() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(hearth(&["project", "create", "p"], &data));
    ok(hearth(&["project", "set", "p", "--timezone", "Europe/Berlin"], &data));
    let wrong_zone = hearth(&["project", "set", "p", "--timezone", "Mars/Olympus"], &data);
    assert!(!wrong_zone.status.success() && String::from_utf8_lossy(&wrong_zone.stderr).contains("Mars/Olympus"));
    // A device's page view, then its sign-up with $device_id and $user_id: one person.
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        [
            r#"{"event":"Page View","properties":{"distinct_id":"$device:d1","time":1780000000,"$insert_id":"e1","$device_id":"d1"}}"#,
            r#"{"event":"Sign Up","properties":{"distinct_id":"u1","time":1780000100,"$insert_id":"e2","$device_id":"d1","$user_id":"u1","plan":"pro, annual"}}"#,
            r#"{"event":"Page View","properties":{"distinct_id":"u2","time":1780000200,"$insert_id":"e3"}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    ok(hearth(&["import", "--project", "p", events.to_str().unwrap()], &data));
    let spec = dir.path().join("spec.json");
    // 1780000000 is 2026-05-28 in Berlin.
    std::fs::write(&spec, r#"{"report":"insights","from":"2026-05-28","to":"2026-05-28","events":[{"event":"$any","measure":"uniques"}]}"#).unwrap();
    let json: Value = serde_json::from_str(&ok(hearth(&["query", "--project", "p", spec.to_str().unwrap()], &data))).unwrap();
    assert_eq!(json["series"][0]["points"]["2026-05-28"], 2.0, "the device and its user are one person: {json}");
    std::fs::write(&spec, r#"{"report":"insights","from":"2026-05-28","to":"2026-05-28","events":[{"event":"$any","measure":"uniques"},{"event":"Sign Up","measure":"total"}],"breakdown":"plan"}"#).unwrap();
    let table = ok(hearth(&["query", "--project", "p", spec.to_str().unwrap(), "--format", "table"], &data));
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("event") && header.contains("segment") && header.contains("2026-05-28"), "{table}");
    let csv = ok(hearth(&["query", "--project", "p", spec.to_str().unwrap(), "--format", "csv"], &data));
    assert!(csv.lines().any(|line| line == "Sign Up,total,\"pro, annual\",1"), "{csv}");
    std::fs::write(&spec, r#"{"report":"funnel","from":"2026-05-28","to":"2026-05-28","steps":[{"event":"Page View"}]}"#).unwrap();
    let bad = hearth(&["query", "--project", "p", spec.to_str().unwrap()], &data);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("2 to 20 steps"), "{}", String::from_utf8_lossy(&bad.stderr));
}
