use super::*;
use serde_json::json;

const NOW_MS: i64 = 1_795_317_755_287;

fn validate_with(record: Value, mode: Mode, limits: &Limits) -> RecordOutcome {
    let mut n_generated = 0;
    let mut new_insert_id = || {
        n_generated += 1;
        format!("generated-{n_generated}")
    };
    validate_event(7, record, mode, NOW_MS, limits, &mut new_insert_id)
}

fn accept(record: Value, mode: Mode) -> EventInput {
    match validate_with(record, mode, &Limits::default()) {
        RecordOutcome::Accepted(input) => input,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

fn reject(record: Value, mode: Mode) -> RecordError {
    reject_with(record, mode, &Limits::default())
}

fn reject_with(record: Value, mode: Mode, limits: &Limits) -> RecordError {
    match validate_with(record, mode, limits) {
        RecordOutcome::Rejected(error) => error,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

fn is_accepted(record: Value, mode: Mode, limits: &Limits) -> bool {
    matches!(
        validate_with(record, mode, limits),
        RecordOutcome::Accepted(_)
    )
}

/// A valid /import event; `extra` properties are merged in.
fn import_event(extra: Value) -> Value {
    let mut properties =
        json!({"time": 1_700_000_000, "distinct_id": "u1", "$insert_id": "abc-123"});
    if let (Some(properties), Value::Object(extra)) = (properties.as_object_mut(), extra) {
        properties.extend(extra);
    }
    json!({"event": "Signed up", "properties": properties})
}

#[test]
fn browser_event_is_normalised() {
    let record = json!({"event": "Viewed", "properties": {
        "token": "tok", "time": 1_795_317_755.287, "distinct_id": "$device:d1", "$device_id": "d1",
        "$insert_id": "k2j3h4g5f6d7s8a9", "$browser": "Chrome", "mp_lib": "web", "ip": "0"}});
    let input = accept(record, Mode::Track);
    assert_eq!(input.token.as_deref(), Some("tok"));
    assert_eq!(input.ip, IpProperty::Disabled);
    assert_eq!(input.event.name, "Viewed");
    assert_eq!(input.event.time_ms, NOW_MS);
    assert_eq!(input.event.distinct_id, "$device:d1");
    assert_eq!(input.event.insert_id, "k2j3h4g5f6d7s8a9");
    assert_eq!(
        Value::Object(input.event.properties),
        json!({"$device_id": "d1", "$browser": "Chrome", "mp_lib": "web"})
    );
}

#[test]
fn reserved_properties_are_taken_out() {
    let record = json!({"event": "e", "properties": {"token": 5, "ip": "203.0.113.9", "bucket": "b", "$bucket": "b", "$ignore": false, "kept": 1}});
    let input = accept(record, Mode::Track);
    assert_eq!(input.token, None);
    assert_eq!(input.ip, IpProperty::Address("203.0.113.9".to_owned()));
    assert_eq!(Value::Object(input.event.properties), json!({"kept": 1}));
}

#[test]
fn record_must_be_an_object_with_an_event_name() {
    let error = reject(json!([1, 2]), Mode::Track);
    assert_eq!((error.index, error.field.as_str()), (7, "record"));
    assert_eq!(reject(json!("e"), Mode::Track).field, "record");
    assert_eq!(
        reject(json!({"properties": {}}), Mode::Track).field,
        "event"
    );
    assert_eq!(
        reject(json!({"event": "", "properties": {}}), Mode::Track).field,
        "event"
    );
    assert_eq!(
        reject(json!({"event": 5, "properties": {}}), Mode::Track).field,
        "event"
    );
}

#[test]
fn properties_are_optional_on_track_only() {
    let input = accept(json!({"event": "e"}), Mode::Track);
    assert_eq!(input.event.distinct_id, "");
    assert_eq!(input.event.time_ms, NOW_MS);
    assert_eq!(input.event.insert_id, "generated-1");
    assert_eq!(Value::Object(input.event.properties), json!({}));
    assert_eq!(
        reject(json!({"event": "e"}), Mode::Import).field,
        "properties"
    );
    assert_eq!(
        reject(json!({"event": "e", "properties": [1]}), Mode::Track).field,
        "properties"
    );
}

#[test]
fn ignore_drops_the_event_unless_false() {
    for ignored in [
        json!(true),
        json!(1),
        json!("true"),
        json!("yes"),
        json!({}),
    ] {
        let outcome = validate_with(
            json!({"event": "e", "properties": {"$ignore": ignored}}),
            Mode::Track,
            &Limits::default(),
        );
        assert_eq!(outcome, RecordOutcome::Ignored, "{ignored}");
    }
    for kept in [json!(false), json!(null), json!("false")] {
        let input = accept(
            json!({"event": "e", "properties": {"$ignore": kept}}),
            Mode::Track,
        );
        assert!(!input.event.properties.contains_key("$ignore"));
    }
}

#[test]
fn event_name_is_truncated() {
    let input = accept(json!({"event": "é".repeat(300)}), Mode::Track);
    assert_eq!(input.event.name.chars().count(), 255);
}

#[test]
fn time_in_seconds_or_millis() {
    let input = accept(
        json!({"event": "e", "properties": {"time": 1_700_000_000}}),
        Mode::Track,
    );
    assert_eq!(input.event.time_ms, 1_700_000_000_000);
    let input = accept(
        json!({"event": "e", "properties": {"time": 1_700_000_000_123_i64}}),
        Mode::Track,
    );
    assert_eq!(input.event.time_ms, 1_700_000_000_123);
    let error = reject(
        json!({"event": "e", "properties": {"time": "yesterday"}}),
        Mode::Track,
    );
    assert_eq!(error.field, "properties.time");
}

#[test]
fn import_requires_time_within_bounds() {
    let mut record = import_event(json!({}));
    if let Some(properties) = record["properties"].as_object_mut() {
        properties.remove("time");
    }
    assert_eq!(reject(record, Mode::Import).field, "properties.time");
    // Times below 1e11 are seconds, so the bound is tested in seconds.
    let first_second_of_1971 = IMPORT_TIME_MS_MIN / 1000;
    assert!(is_accepted(
        import_event(json!({"time": first_second_of_1971})),
        Mode::Import,
        &Limits::default()
    ));
    let error = reject(
        import_event(json!({"time": first_second_of_1971 as f64 - 0.001})),
        Mode::Import,
    );
    assert_eq!(error.field, "properties.time");
    assert_eq!(error.insert_id.as_deref(), Some("abc-123"));
    let in_one_hour = NOW_MS + 3_600_000;
    assert!(is_accepted(
        import_event(json!({"time": in_one_hour})),
        Mode::Import,
        &Limits::default()
    ));
    assert_eq!(
        reject(import_event(json!({"time": in_one_hour + 1})), Mode::Import).field,
        "properties.time"
    );
}

#[test]
fn track_keeps_far_times() {
    let input = accept(
        json!({"event": "e", "properties": {"time": 0}}),
        Mode::Track,
    );
    assert_eq!(input.event.time_ms, 0);
}

#[test]
fn user_id_wins_then_device_id_then_distinct_id() {
    let input = accept(
        json!({"event": "e", "properties": {"distinct_id": "x", "$device_id": "d", "$user_id": "u"}}),
        Mode::Track,
    );
    assert_eq!(input.event.distinct_id, "u");
    assert_eq!(input.event.properties.get("$user_id"), Some(&json!("u")));
    assert_eq!(input.event.properties.get("$device_id"), Some(&json!("d")));
    let input = accept(
        json!({"event": "e", "properties": {"distinct_id": "x", "$device_id": "d"}}),
        Mode::Track,
    );
    assert_eq!(input.event.distinct_id, "$device:d");
    let input = accept(
        json!({"event": "e", "properties": {"distinct_id": "x", "$user_id": null, "$device_id": ""}}),
        Mode::Track,
    );
    assert_eq!(input.event.distinct_id, "x");
    let input = accept(
        json!({"event": "e", "properties": {"$user_id": 42}}),
        Mode::Track,
    );
    assert_eq!(input.event.distinct_id, "42");
    let input = accept(
        json!({"event": "e", "properties": {"distinct_id": 12.5}}),
        Mode::Track,
    );
    assert_eq!(input.event.distinct_id, "12.5");
    let error = reject(
        json!({"event": "e", "properties": {"distinct_id": ["x"]}}),
        Mode::Track,
    );
    assert_eq!(error.field, "properties.distinct_id");
    let error = reject(
        json!({"event": "e", "properties": {"$user_id": {"a": 1}}}),
        Mode::Track,
    );
    assert_eq!(error.field, "properties.$user_id");
}

#[test]
fn import_requires_a_distinct_id_and_rejects_placeholders() {
    let mut record = import_event(json!({}));
    if let Some(properties) = record["properties"].as_object_mut() {
        properties.remove("distinct_id");
    }
    assert_eq!(reject(record, Mode::Import).field, "properties.distinct_id");
    let input = accept(import_event(json!({"distinct_id": ""})), Mode::Import);
    assert_eq!(input.event.distinct_id, "");
    for placeholder in [
        json!("anonymous"),
        json!("UNDEFINED"),
        json!(0),
        json!(-1),
        json!("[]"),
        json!("00000000-0000-0000-0000-000000000000"),
    ] {
        let error = reject(
            import_event(json!({"distinct_id": placeholder})),
            Mode::Import,
        );
        assert_eq!(error.field, "properties.distinct_id", "{placeholder}");
    }
    assert_eq!(
        reject(import_event(json!({"$user_id": "null"})), Mode::Import).field,
        "properties.$user_id"
    );
    let input = accept(
        json!({"event": "e", "properties": {"distinct_id": "null"}}),
        Mode::Track,
    );
    assert_eq!(input.event.distinct_id, "null");
}

#[test]
fn distinct_id_length_is_checked_at_the_limit_and_one_over() {
    for mode in [Mode::Track, Mode::Import] {
        let input = accept(import_event(json!({"distinct_id": "a".repeat(255)})), mode);
        assert_eq!(input.event.distinct_id.len(), 255);
        let error = reject(import_event(json!({"distinct_id": "a".repeat(256)})), mode);
        assert_eq!(error.field, "properties.distinct_id");
    }
    let device_id_at_limit = "d".repeat(255 - "$device:".len());
    assert!(is_accepted(
        json!({"event": "e", "properties": {"$device_id": device_id_at_limit}}),
        Mode::Track,
        &Limits::default()
    ));
    let device_id_over = "d".repeat(256 - "$device:".len());
    assert_eq!(
        reject(
            json!({"event": "e", "properties": {"$device_id": device_id_over}}),
            Mode::Track
        )
        .field,
        "properties.$device_id"
    );
}

#[test]
fn missing_insert_id_is_generated_on_both_modes() {
    let mut record = import_event(json!({}));
    if let Some(properties) = record["properties"].as_object_mut() {
        properties.remove("$insert_id");
    }
    assert_eq!(accept(record, Mode::Import).event.insert_id, "generated-1");
    assert_eq!(
        accept(
            json!({"event": "e", "properties": {"$insert_id": ""}}),
            Mode::Track
        )
        .event
        .insert_id,
        "generated-1"
    );
}

#[test]
fn import_insert_id_is_36_bytes_of_alphanumerics_and_dashes() {
    let at_limit = "a".repeat(36);
    assert_eq!(
        accept(
            import_event(json!({"$insert_id": at_limit.clone()})),
            Mode::Import
        )
        .event
        .insert_id,
        at_limit
    );
    let uuid_hex = "9f1c7e2ab3d44c5e8f6a7b8c9d0e1f2a";
    assert_eq!(
        accept(import_event(json!({"$insert_id": uuid_hex})), Mode::Import)
            .event
            .insert_id,
        uuid_hex
    );
    let invalid = [
        json!("a".repeat(37)),
        json!("has space"),
        json!("under_score"),
        json!(""),
        json!(12),
        json!("null"),
        json!("-1"),
    ];
    for insert_id in invalid {
        let error = reject(import_event(json!({"$insert_id": insert_id})), Mode::Import);
        assert_eq!(error.field, "properties.$insert_id", "{}", error.message);
    }
}

#[test]
fn track_insert_id_is_a_string_of_at_most_255_chars() {
    let at_limit = "i".repeat(255);
    let input = accept(
        json!({"event": "e", "properties": {"$insert_id": at_limit.clone()}}),
        Mode::Track,
    );
    assert_eq!(input.event.insert_id, at_limit);
    let over = "i".repeat(256);
    let error = reject(
        json!({"event": "e", "properties": {"$insert_id": over}}),
        Mode::Track,
    );
    assert_eq!(
        (error.field.as_str(), error.insert_id),
        ("properties.$insert_id", None)
    );
    let error = reject(
        json!({"event": "e", "properties": {"$insert_id": 5}}),
        Mode::Track,
    );
    assert_eq!(error.field, "properties.$insert_id");
}

#[test]
fn import_adds_the_import_flag() {
    let input = accept(import_event(json!({"plan": "pro"})), Mode::Import);
    assert_eq!(
        Value::Object(input.event.properties),
        json!({"plan": "pro", "$import": true})
    );
    let input = accept(import_event(json!({"plan": "pro"})), Mode::Track);
    assert!(!input.event.properties.contains_key("$import"));
}

#[test]
fn record_size_is_checked_at_the_limit_and_one_over() {
    let record = json!({"event": "e", "properties": {"p": "x"}});
    let n_bytes = serde_json::to_vec(&record).expect("serializable").len();
    let limits = Limits {
        record_bytes_max: n_bytes,
        ..Limits::default()
    };
    assert!(is_accepted(record.clone(), Mode::Track, &limits));
    let limits = Limits {
        record_bytes_max: n_bytes - 1,
        ..Limits::default()
    };
    assert_eq!(reject_with(record, Mode::Track, &limits).field, "record");
}

#[test]
fn property_count_is_checked_at_the_limit_and_one_over() {
    let mut properties: Map<String, Value> = (0..255)
        .map(|idx| (format!("p{idx}"), json!(idx)))
        .collect();
    // Reserved properties do not count.
    properties.insert("token".to_owned(), json!("t"));
    properties.insert("time".to_owned(), json!(1_700_000_000));
    properties.insert("distinct_id".to_owned(), json!("u"));
    properties.insert("$insert_id".to_owned(), json!("i"));
    let record = json!({"event": "e", "properties": properties.clone()});
    assert_eq!(accept(record, Mode::Import).event.properties.len(), 256);
    properties.insert("p255".to_owned(), json!(255));
    let error = reject(json!({"event": "e", "properties": properties}), Mode::Track);
    assert_eq!(error.field, "properties");
}

#[test]
fn strings_are_truncated_at_255_chars_anywhere() {
    let at_limit = "s".repeat(255);
    let over = "s".repeat(256);
    let record = json!({"event": "e", "properties": {"a": at_limit.clone(), "b": over, "c": {"d": ["s".repeat(300)]}}});
    let input = accept(record, Mode::Track);
    assert_eq!(input.event.properties.get("a"), Some(&json!(at_limit)));
    assert_eq!(input.event.properties.get("b"), Some(&json!(at_limit)));
    assert_eq!(
        input.event.properties.get("c"),
        Some(&json!({"d": [at_limit]}))
    );
}

#[test]
fn nesting_depth_is_checked_at_the_limit_and_one_over() {
    let at_limit = json!({"event": "e", "properties": {"a": {"b": [{"c": 1}]}}});
    assert!(is_accepted(at_limit, Mode::Track, &Limits::default()));
    let over = json!({"event": "e", "properties": {"a": {"b": [{"c": [1]}]}}});
    let error = reject(over, Mode::Track);
    assert_eq!(error.field, "properties.a");
}

#[test]
fn collection_length_is_checked_at_the_limit_and_one_over() {
    let list_at_limit: Vec<i32> = (0..255).collect();
    let object_at_limit: Map<String, Value> = (0..255)
        .map(|idx| (format!("k{idx}"), json!(idx)))
        .collect();
    let record = json!({"event": "e", "properties": {"list": list_at_limit, "object": object_at_limit.clone()}});
    assert!(is_accepted(record, Mode::Track, &Limits::default()));
    let list_over: Vec<i32> = (0..256).collect();
    assert_eq!(
        reject(
            json!({"event": "e", "properties": {"list": list_over}}),
            Mode::Track
        )
        .field,
        "properties.list"
    );
    let mut object_over = object_at_limit;
    object_over.insert("k255".to_owned(), json!(255));
    assert_eq!(
        reject(
            json!({"event": "e", "properties": {"o": {"inner": object_over}}}),
            Mode::Track
        )
        .field,
        "properties.o"
    );
}

#[test]
fn messages_do_not_echo_values() {
    let error = reject(
        import_event(json!({"distinct_id": "Anonymous"})),
        Mode::Import,
    );
    assert!(!error.message.contains("Anonymous"));
    let error = reject(
        json!({"event": "e", "properties": {"time": "secret-time"}}),
        Mode::Track,
    );
    assert!(!error.message.contains("secret"));
}

#[test]
fn a_rejected_record_reports_the_clients_insert_id_whichever_check_failed() {
    let too_many: Map<String, Value> = (0..256).map(|idx| (format!("p{idx}"), json!(idx))).collect();
    let limits = Limits { record_bytes_max: 400, ..Limits::default() };
    // (record, mode, limits, field that fails, reported id)
    let cases = [
        (json!({"properties": {"time": 1_700_000_000, "distinct_id": "u", "$insert_id": "abc-123"}}), Mode::Import, Limits::default(), "event", Some("abc-123")),
        (import_event(json!({"time": "soon"})), Mode::Import, Limits::default(), "properties.time", Some("abc-123")),
        (import_event(json!({"distinct_id": ["x"]})), Mode::Import, Limits::default(), "properties.distinct_id", Some("abc-123")),
        (import_event(json!({"$insert_id": "no_underscores"})), Mode::Import, Limits::default(), "properties.$insert_id", Some("no_underscores")),
        (import_event(json!({"$insert_id": 7})), Mode::Import, Limits::default(), "properties.$insert_id", None),
        (import_event(json!({"pad": "x".repeat(400)})), Mode::Import, limits, "record", Some("abc-123")),
        (import_event(Value::Object(too_many.clone())), Mode::Import, Limits::default(), "properties", Some("abc-123")),
        // An empty id on /track is made up when the record is accepted, and
        // reported as sent when it is not.
        (json!({"event": "e", "properties": too_many.into_iter().chain([("$insert_id".to_owned(), json!(""))]).collect::<Map<_, _>>()}), Mode::Track, Limits::default(), "properties", Some("")),
        (json!({"event": "e", "properties": [1]}), Mode::Track, Limits::default(), "properties", None),
        (json!(["not an object"]), Mode::Track, Limits::default(), "record", None),
    ];
    for (record, mode, limits, field, reported) in cases {
        let error = reject_with(record.clone(), mode, &limits);
        assert_eq!((error.field.as_str(), error.insert_id.as_deref(), error.index), (field, reported, 7), "{record}");
    }
}
