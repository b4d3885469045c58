//! Requests in the exact shapes the official SDKs send (wire reference,
//! section 1.1), decoded and validated through the public API, and the
//! replies those SDKs insist on.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mixpanel::{
    Decoded, EventInput, IpProperty, Limits, Mode, RawRequest, RecordOutcome, decode_request,
    track_reply, validate_event, validate_group_update, validate_profile_update,
};
use serde_json::{Value, json};
use std::io::Write;

const NOW_MS: i64 = 1_795_317_800_000;
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

/// `encodeURIComponent` / Python's `quote_plus` of a parameter value.
fn url_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("in-memory write");
    encoder.finish().expect("in-memory write")
}

fn decode(request: RawRequest<'_>) -> Decoded {
    decode_request(&request, &Limits::default()).expect("an SDK request decodes")
}

fn events(decoded: Decoded, mode: Mode) -> Vec<EventInput> {
    let mut n_generated = 0;
    let mut new_insert_id = || {
        n_generated += 1;
        format!("server-{n_generated}")
    };
    let limits = Limits::default();
    let mut accepted = Vec::new();
    for (index, record) in decoded.records.into_iter().enumerate() {
        match validate_event(index, record, mode, NOW_MS, &limits, &mut new_insert_id) {
            RecordOutcome::Accepted(input) => accepted.push(input),
            other => panic!("record {index} not accepted: {other:?}"),
        }
    }
    accepted
}

fn browser_events() -> Value {
    json!([
        {"event": "$mp_web_page_view", "properties": {
            "$os": "Linux", "$browser": "Chrome", "$current_url": "http://localhost:8080/?q=a+b", "$browser_version": 120,
            "$screen_height": 1080, "$screen_width": 1920, "mp_lib": "web", "$lib_version": "2.83.0",
            "$insert_id": "k2j3h4g5f6d7s8a9", "time": 1_795_317_755.287,
            "distinct_id": "$device:18f0c7a1-2b3c-4d5e-8f90-a1b2c3d4e5f6", "$device_id": "18f0c7a1-2b3c-4d5e-8f90-a1b2c3d4e5f6",
            "$initial_referrer": "$direct", "$initial_referring_domain": "$direct", "token": "tok",
            "mp_sent_by_lib_version": "2.83.0", "title": "Ünïcödé ✓"}},
        {"event": "Signed up", "properties": {
            "$insert_id": "a1b2c3d4e5f6g7h8", "time": 1_795_317_754.001, "distinct_id": "user-42",
            "$device_id": "18f0c7a1-2b3c-4d5e-8f90-a1b2c3d4e5f6", "$user_id": "user-42", "token": "tok", "mp_lib": "web"}}
    ])
}

#[test]
fn browser_batch_is_base64_array_in_a_form() {
    let data = STANDARD.encode(browser_events().to_string());
    let body = format!("data={}", url_encode(&data));
    let query = "verbose=1&ip=1&_=1795317755287";
    let decoded = decode(RawRequest {
        query: Some(query),
        content_type: FORM,
        content_encoding: None,
        body: body.as_bytes(),
    });
    assert!(decoded.from_data_param);
    assert!(decoded.params.verbose);
    assert_eq!(decoded.params.ip, Some(true));
    let inputs = events(decoded, Mode::Track);
    let [page_view, signed_up] = inputs.as_slice() else {
        panic!("two events expected")
    };
    assert_eq!(page_view.token.as_deref(), Some("tok"));
    assert_eq!(page_view.ip, IpProperty::Absent);
    assert_eq!(
        page_view.event.distinct_id,
        "$device:18f0c7a1-2b3c-4d5e-8f90-a1b2c3d4e5f6"
    );
    assert_eq!(page_view.event.time_ms, 1_795_317_755_287);
    assert_eq!(
        page_view.event.properties.get("title"),
        Some(&json!("Ünïcödé ✓"))
    );
    assert_eq!(
        page_view.event.properties.get("$current_url"),
        Some(&json!("http://localhost:8080/?q=a+b"))
    );
    assert_eq!(signed_up.event.distinct_id, "user-42");
    assert_eq!(signed_up.event.insert_id, "a1b2c3d4e5f6g7h8");
    let reply = track_reply(inputs.len(), true, None);
    let body: Value = serde_json::from_slice(&reply.body).expect("json reply");
    assert_eq!(
        (reply.status, body),
        (200, json!({"status": 1, "error": null}))
    );
}

#[test]
fn browser_beacon_is_the_same_form_as_text_plain() {
    let data = STANDARD.encode(browser_events().to_string());
    let body = format!("data={}", url_encode(&data));
    let request = RawRequest {
        query: Some("verbose=1&ip=1&_=1795317755999"),
        content_type: Some("text/plain;charset=UTF-8"),
        content_encoding: None,
        body: body.as_bytes(),
    };
    assert_eq!(events(decode(request), Mode::Track).len(), 2);
}

#[test]
fn browser_unbatched_single_object_gets_a_bare_one() {
    let one_event = browser_events().get(1).cloned().expect("second event");
    let body = format!(
        "data={}",
        url_encode(&STANDARD.encode(one_event.to_string()))
    );
    let decoded = decode(RawRequest {
        query: Some("ip=1&_=1795317755287"),
        content_type: FORM,
        content_encoding: None,
        body: body.as_bytes(),
    });
    assert!(!decoded.params.verbose);
    let inputs = events(decoded, Mode::Track);
    assert_eq!(inputs.len(), 1);
    assert_eq!(track_reply(inputs.len(), false, None).body, b"1");
}

#[test]
fn browser_engage_and_groups_batches() {
    let engage = json!([{"$set": {"$browser": "Chrome", "$os": "Linux", "$browser_version": 120, "plan": "pro"},
        "$token": "tok", "$distinct_id": "user-42", "$device_id": "18f0c7a1", "$user_id": "user-42"},
        {"$set_once": {"$initial_referrer": "$direct"}, "$token": "tok", "$distinct_id": "user-42"}]);
    let body = format!("data={}", url_encode(&STANDARD.encode(engage.to_string())));
    let decoded = decode(RawRequest {
        query: Some("verbose=1&ip=1&_=1"),
        content_type: FORM,
        content_encoding: None,
        body: body.as_bytes(),
    });
    let limits = Limits::default();
    for (index, record) in decoded.records.into_iter().enumerate() {
        let input =
            validate_profile_update(index, record, NOW_MS, &limits).expect("valid profile update");
        assert_eq!(input.token.as_deref(), Some("tok"));
        assert_eq!(input.updates.len(), 1);
        assert!(
            input
                .updates
                .iter()
                .all(|update| update.distinct_id == "user-42" && update.time_ms == NOW_MS)
        );
    }

    let groups = json!([{"$token": "tok", "$group_key": "company_id", "$group_id": "acme", "$set": {"name": "Acme"}}]);
    let body = format!("data={}", url_encode(&STANDARD.encode(groups.to_string())));
    let decoded = decode(RawRequest {
        query: Some("verbose=1&ip=1&_=1"),
        content_type: FORM,
        content_encoding: None,
        body: body.as_bytes(),
    });
    let record = decoded.records.into_iter().next().expect("one record");
    let input = validate_group_update(0, record, NOW_MS, &limits).expect("valid group update");
    assert_eq!(
        input.updates.first().map(|update| update.group_id.as_str()),
        Some("acme")
    );
}

#[test]
fn python_form_has_raw_json_and_flags_in_the_body() {
    let event = json!({"event": "Signed up", "properties": {"token": "tok", "distinct_id": "user-42", "time": 1_795_317_755.287,
        "$insert_id": "9f1c7e2ab3d44c5e8f6a7b8c9d0e1f2a", "mp_lib": "python", "$lib_version": "5.4.1", "plan": "pro plan"}});
    let body = format!("data={}&verbose=1&ip=0", url_encode(&event.to_string()));
    let decoded = decode(RawRequest {
        query: None,
        content_type: FORM,
        content_encoding: None,
        body: body.as_bytes(),
    });
    assert!(decoded.params.verbose);
    assert_eq!(decoded.params.ip, Some(false));
    assert!(decoded.from_data_param);
    let inputs = events(decoded, Mode::Track);
    let input = inputs.first().expect("one event");
    assert_eq!(input.event.properties.get("plan"), Some(&json!("pro plan")));
    assert_eq!(input.event.time_ms, 1_795_317_755_287);
    let reply: Value =
        serde_json::from_slice(&track_reply(1, true, None).body).expect("json reply");
    assert_eq!(reply.get("status"), Some(&json!(1)));
}

#[test]
fn python_buffered_import_is_a_json_array_in_the_form() {
    let batch = json!([
        {"event": "Old", "properties": {"token": "tok", "distinct_id": "u1", "time": 1_700_000_000.5, "$insert_id": "9f1c7e2ab3d44c5e8f6a7b8c9d0e1f2a"}},
        {"event": "Old", "properties": {"token": "tok", "distinct_id": "u2", "time": 1_700_000_001, "$insert_id": "0e1f2a9f1c7e2ab3d44c5e8f6a7b8c9d"}}
    ]);
    let body = format!("data={}&verbose=1&ip=0", url_encode(&batch.to_string()));
    let decoded = decode(RawRequest {
        query: None,
        content_type: FORM,
        content_encoding: None,
        body: body.as_bytes(),
    });
    let inputs = events(decoded, Mode::Import);
    assert_eq!(
        inputs
            .iter()
            .map(|input| input.event.time_ms)
            .collect::<Vec<_>>(),
        [1_700_000_000_500, 1_700_000_001_000]
    );
    assert!(
        inputs
            .iter()
            .all(|input| input.event.properties.get("$import") == Some(&json!(true)))
    );
}

#[test]
fn python_engage_with_time_in_seconds() {
    let update = json!({"$token": "tok", "$time": 1_795_317_755.287, "$distinct_id": "user-42", "$set": {"plan": "pro"}});
    let body = format!("data={}&verbose=1&ip=0", url_encode(&update.to_string()));
    let decoded = decode(RawRequest {
        query: None,
        content_type: FORM,
        content_encoding: None,
        body: body.as_bytes(),
    });
    let record = decoded.records.into_iter().next().expect("one record");
    let input =
        validate_profile_update(0, record, NOW_MS, &Limits::default()).expect("valid update");
    assert_eq!(
        input.updates.first().map(|update| update.time_ms),
        Some(1_795_317_755_287)
    );
}

#[test]
fn node_get_has_everything_in_the_query() {
    // Node's track adds only token, mp_lib and $lib_version.
    let event = json!({"event": "Clicked", "properties": {"distinct_id": "user-42", "token": "tok", "mp_lib": "node", "$lib_version": "0.24.0"}});
    let query = format!(
        "ip=0&verbose=0&data={}",
        url_encode(&STANDARD.encode(event.to_string()))
    );
    let decoded = decode(RawRequest {
        query: Some(&query),
        content_type: None,
        content_encoding: None,
        body: b"",
    });
    assert_eq!(decoded.params.ip, Some(false));
    assert!(!decoded.params.verbose);
    let inputs = events(decoded, Mode::Track);
    let input = inputs.first().expect("one event");
    assert_eq!(input.event.time_ms, NOW_MS);
    assert_eq!(input.event.insert_id, "server-1");
    assert_eq!(track_reply(1, false, None).body, b"1");
}

#[test]
fn node_query_with_unencoded_base64_plus_signs() {
    // Some clients do not percent-encode the base64: `+` arrives as a space.
    let event = json!({"event": "Clicked", "properties": {"note": ">>>???", "token": "tok"}});
    let encoded = STANDARD.encode(event.to_string());
    assert!(encoded.contains('+'));
    let query = format!("ip=0&verbose=0&data={encoded}");
    let inputs = events(
        decode(RawRequest {
            query: Some(&query),
            ..RawRequest::default()
        }),
        Mode::Track,
    );
    assert_eq!(
        inputs
            .first()
            .and_then(|input| input.event.properties.get("note")),
        Some(&json!(">>>???"))
    );
}

#[test]
fn node_import_uses_millisecond_dates_and_api_key() {
    let event = json!({"event": "Old", "properties": {"time": 1_700_000_000_123_i64, "distinct_id": "u1", "token": "tok", "mp_lib": "node"}});
    let query = format!(
        "ip=0&verbose=0&api_key=legacy-key&data={}",
        url_encode(&STANDARD.encode(event.to_string()))
    );
    let decoded = decode(RawRequest {
        query: Some(&query),
        ..RawRequest::default()
    });
    assert_eq!(decoded.params.api_key.as_deref(), Some("legacy-key"));
    let inputs = events(decoded, Mode::Import);
    assert_eq!(
        inputs.first().map(|input| input.event.time_ms),
        Some(1_700_000_000_123)
    );
}

#[test]
fn node_batch_posts_a_base64_array_form() {
    let batch = browser_events();
    let body = format!("data={}", url_encode(&STANDARD.encode(batch.to_string())));
    let decoded = decode(RawRequest {
        query: Some("ip=0&verbose=0"),
        content_type: FORM,
        content_encoding: None,
        body: body.as_bytes(),
    });
    assert_eq!(events(decoded, Mode::Track).len(), 2);
}

#[test]
fn swift_posts_gzipped_json_array() {
    let batch = json!([{"event": "App Open", "properties": {"time": 1_795_317_755_287_i64, "distinct_id": "$device:ABC", "$device_id": "ABC",
        "token": "tok", "$insert_id": "F1E2D3C4-B5A6-4789-9012-3456789ABCDE", "mp_lib": "swift"}}]);
    let body = gzip(batch.to_string().as_bytes());
    let request = RawRequest {
        query: Some("ip=1"),
        content_type: Some("application/json"),
        content_encoding: Some("gzip"),
        body: &body,
    };
    let decoded = decode(request);
    assert!(!decoded.from_data_param);
    let inputs = events(decoded, Mode::Track);
    assert_eq!(
        inputs.first().map(|input| input.event.time_ms),
        Some(1_795_317_755_287)
    );
}

#[test]
fn android_posts_a_gzipped_base64_form() {
    let batch = json!([{"event": "Launch", "properties": {"time": 1_795_317_755_287_i64, "distinct_id": "android-1", "token": "tok", "mp_lib": "android"}}]);
    let form = format!("data={}", url_encode(&STANDARD.encode(batch.to_string())));
    let body = gzip(form.as_bytes());
    let request = RawRequest {
        query: Some("ip=1"),
        content_type: FORM,
        content_encoding: Some("gzip"),
        body: &body,
    };
    assert_eq!(events(decode(request), Mode::Track).len(), 1);
}

#[test]
fn import_api_posts_gzipped_ndjson() {
    let lines = [
        json!({"event": "Purchase", "properties": {"time": 1_700_000_000_000_i64, "distinct_id": "u1", "$insert_id": "5d958f87-542d-4c10-9422-0ed75893dc81", "amount": 9.5}}),
        json!({"event": "Purchase", "properties": {"time": 1_700_000_001_000_i64, "distinct_id": "u2", "$insert_id": "5d958f87-542d-4c10-9422-0ed75893dc82"}}),
    ];
    let ndjson = format!("{}\n\n{}\n", lines[0], lines[1]);
    let body = gzip(ndjson.as_bytes());
    let request = RawRequest {
        query: Some("strict=1&project_id=123"),
        content_type: Some("application/x-ndjson"),
        content_encoding: Some("gzip"),
        body: &body,
    };
    let decoded = decode(request);
    assert_eq!(decoded.params.strict, Some(true));
    assert_eq!(decoded.params.project_id.as_deref(), Some("123"));
    let inputs = events(decoded, Mode::Import);
    assert_eq!(
        inputs
            .iter()
            .map(|input| input.event.distinct_id.as_str())
            .collect::<Vec<_>>(),
        ["u1", "u2"]
    );
}

#[test]
fn one_bad_record_does_not_sink_the_batch() {
    let batch = json!([{"event": "ok", "properties": {"token": "tok"}}, 42, {"properties": {}}]);
    let decoded = decode(RawRequest {
        body: batch.to_string().as_bytes(),
        ..RawRequest::default()
    });
    let limits = Limits::default();
    let mut new_insert_id = || "generated".to_owned();
    let outcomes: Vec<RecordOutcome> = decoded
        .records
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            validate_event(
                index,
                record,
                Mode::Track,
                NOW_MS,
                &limits,
                &mut new_insert_id,
            )
        })
        .collect();
    assert!(matches!(outcomes.first(), Some(RecordOutcome::Accepted(_))));
    assert!(
        matches!(outcomes.get(1), Some(RecordOutcome::Rejected(error)) if error.index == 1 && error.field == "record")
    );
    assert!(
        matches!(outcomes.get(2), Some(RecordOutcome::Rejected(error)) if error.index == 2 && error.field == "event")
    );
    assert_eq!(track_reply(1, false, Some("2 records rejected")).body, b"1");
}
