//! Bad input at the HTTP layer: every malformed request gets a 4xx with a
//! JSON reason (or the SDK's `0`), never a 5xx, and the valid records sent
//! with bad ones behave as Mixpanel documents.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;
use events::ProjectId;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;

mod support;
use tower::ServiceExt;

struct Harness {
    _instance: support::Instance,
    router: axum::Router,
    store: Arc<store::Store>,
    token: String,
    secret: String,
    project: ProjectId,
}

fn harness(limits: mixpanel::Limits) -> Harness {
    let (instance, services) = support::services();
    let created = instance.meta.create_project("test").unwrap();
    let config = server::ServerConfig { limits, ..server::ServerConfig::default() };
    let state = server::AppState::new(services, config, None);
    Harness { router: server::router(state), store: instance.store.clone(), token: created.project.token.clone(), secret: created.secret, project: created.project.id, _instance: instance }
}

struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
        Answer { status, body }
    }

    fn basic(&self) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.secret)))
    }

    async fn import(&self, body: Vec<u8>, extra_headers: &[(&str, &str)]) -> Answer {
        let mut request = Request::post("/import?strict=1").header(header::AUTHORIZATION, self.basic()).header(header::CONTENT_TYPE, "application/json");
        for (name, value) in extra_headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    async fn track_form(&self, data: &str, query: &str) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new()).append_pair("data", data).finish();
        let request = Request::post(format!("/track/?{query}")).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Body::from(body)).unwrap();
        self.send(request).await
    }

    fn stored(&self) -> Vec<store::StoredEvent> {
        let mut events = Vec::new();
        self.store
            .snapshot()
            .scan_days(self.project, 0, i32::MAX, |day| {
                events.extend(day.events);
                true
            })
            .unwrap();
        events
    }
}

fn event(i: usize) -> Value {
    json!({"event": "E", "properties": {"time": 1_780_000_000 + i, "distinct_id": format!("u{i}"), "$insert_id": format!("id-{i}")}})
}

#[tokio::test]
async fn malformed_payloads_get_a_json_400() {
    let h = harness(mixpanel::Limits::default());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed json", b"[{\"event\": ".to_vec()),
        ("invalid utf-8", b"[{\"event\": \"\xff\xfe\"}]".to_vec()),
        ("a scalar", b"42".to_vec()),
    ];
    for (name, body) in cases {
        let answer = h.import(body, &[]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(answer.json()["code"], 400, "{name}");
        assert!(answer.json()["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}");
    }
    let answer = h.track_form("!!!not base64!!!", "verbose=1").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.json()["error"].as_str().unwrap().contains("base64"), "{}", answer.json());
    // Deep nesting beyond serde's recursion limit is a 400, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(h.import(deep.into_bytes(), &[]).await.status, StatusCode::BAD_REQUEST);
    assert!(h.stored().is_empty());
}

#[tokio::test]
async fn wrong_credentials_and_tokens_are_refused_without_storing() {
    let h = harness(mixpanel::Limits::default());
    let body = serde_json::to_vec(&json!([event(1)])).unwrap();
    let request = Request::post("/import").header(header::AUTHORIZATION, "Basic d3Jvbmc6").body(Body::from(body.clone())).unwrap();
    let answer = h.send(request).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json(), json!({"code": 401, "error": "Invalid credentials", "status": "Unauthorized"}));
    let no_auth = h.send(Request::post("/import").body(Body::from(body)).unwrap()).await;
    assert_eq!(no_auth.status, StatusCode::UNAUTHORIZED);

    let wrong_token = json!([{"event": "E", "properties": {"token": "nope", "distinct_id": "a"}}]);
    let answer = h.track_form(&wrong_token.to_string(), "verbose=1").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["status"], 0);
    assert!(answer.json()["error"].as_str().unwrap().contains("token"));
    assert_eq!(h.track_form(&wrong_token.to_string(), "").await.body, b"0");
    // One good and one bad token in a batch: the good one is kept, and the answer is 1.
    let mixed = json!([
        {"event": "E", "properties": {"token": "nope", "distinct_id": "a"}},
        {"event": "E", "properties": {"token": h.token, "distinct_id": "b", "$insert_id": "kept"}}
    ]);
    assert_eq!(h.track_form(&mixed.to_string(), "").await.body, b"1");
    let stored = h.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].insert_id(), "kept");
}

#[tokio::test]
async fn body_size_is_limited_exactly_and_gzip_bombs_are_stopped() {
    let limits = mixpanel::Limits { body_bytes_max: 4096, ..mixpanel::Limits::default() };
    let h = harness(limits);
    // Pad a valid array to exactly the limit, then one byte over.
    let base = serde_json::to_vec(&json!([event(1)])).unwrap();
    let pad = 4096 - base.len();
    let mut at_limit = base.clone();
    at_limit.splice(1..1, std::iter::repeat_n(b' ', pad));
    assert_eq!(at_limit.len(), 4096);
    assert_eq!(h.import(at_limit.clone(), &[]).await.status, StatusCode::OK);
    let mut over = at_limit;
    over.insert(1, b' ');
    let answer = h.import(over, &[]).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json()["code"], 413);
    // 50 MB of zeros compress to ~50 KB; inflating must stop at the cap.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..50 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    let answer = h.import(bomb, &[("content-encoding", "gzip")]).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(h.stored().len(), 1);
}

#[tokio::test]
async fn batch_size_is_limited_at_2000_events() {
    let h = harness(mixpanel::Limits::default());
    let at_limit: Vec<Value> = (0..2000).map(event).collect();
    let answer = h.import(serde_json::to_vec(&at_limit).unwrap(), &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.json()["num_records_imported"], 2000);
    let over: Vec<Value> = (0..2001).map(event).collect();
    let answer = h.import(serde_json::to_vec(&over).unwrap(), &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.json()["error"].as_str().unwrap().contains("2000"), "{}", answer.json());
    assert_eq!(h.stored().len(), 2000);
}

#[tokio::test]
async fn bad_records_are_reported_and_their_neighbours_imported() {
    let h = harness(mixpanel::Limits::default());
    let mut too_many = serde_json::Map::new();
    for i in 0..256 {
        too_many.insert(format!("p{i}"), json!(i));
    }
    let mut at_limit = too_many.clone();
    at_limit.remove("p255");
    let with = |extra: serde_json::Map<String, Value>, i: usize| {
        let mut record = event(i);
        record["properties"].as_object_mut().unwrap().extend(extra);
        record
    };
    let deep = json!({"a": {"b": {"c": {"d": {"e": 1}}}}});
    let batch = json!([
        event(0),
        with(too_many, 1),
        with(at_limit, 2),
        with(deep.as_object().unwrap().clone(), 3),
        {"event": "E", "properties": {"distinct_id": "x", "$insert_id": "no-time"}},
        {"event": "E", "properties": {"time": 1_780_000_000, "distinct_id": "null", "$insert_id": "placeholder"}},
        "not an object",
    ]);
    let answer = h.import(serde_json::to_vec(&batch).unwrap(), &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let report = answer.json();
    assert_eq!(report["num_records_imported"], 2);
    let failed_indexes: Vec<u64> = report["failed_records"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(failed_indexes, vec![1, 3, 4, 5, 6]);
    let stored: Vec<String> = h.stored().into_iter().map(|e| e.insert_id().to_owned()).collect();
    assert_eq!(stored.len(), 2);
    assert!(stored.contains(&"id-0".to_owned()) && stored.contains(&"id-2".to_owned()));
}

#[tokio::test]
async fn random_requests_never_produce_a_5xx() {
    let h = harness(mixpanel::Limits::default());
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds: [&[u8]; 6] = [b"data=", b"[{\"event\":\"E\",\"properties\":{}}]", b"{\"$token\":1}", b"eyJldmVudCI6", b"\x1f\x8b\x08", b"data=W3siZXZlbnQiOiJFIn1d"];
    for i in 0..600 {
        let seed = seeds[i % seeds.len()];
        let mut body = seed.to_vec();
        for _ in 0..(next() % 64) {
            body.push((next() % 256) as u8);
        }
        if next() % 3 == 0 && !body.is_empty() {
            let at = (next() as usize) % body.len();
            body[at] = (next() % 256) as u8;
        }
        let path = ["/track", "/engage/", "/groups", "/import", "/api/2.0/export", "/api/2.0/engage"][i % 6];
        let query = ["", "?verbose=1", "?data=%%%", "?ip=1&img=1", "?callback=cb", "?strict=0&from_date=x"][(next() % 6) as usize];
        let request = Request::post(format!("{path}{query}"))
            .header(header::AUTHORIZATION, h.basic())
            .header(header::CONTENT_TYPE, ["text/plain", "application/json", "application/x-www-form-urlencoded"][i % 3])
            .body(Body::from(body))
            .unwrap();
        let answer = h.send(request).await;
        assert!(answer.status.as_u16() < 500, "{path}{query} -> {}", answer.status);
    }
}
