//! The report API over HTTP: authorisation by the project secret, a 400 with
//! a reason for every bad spec, the OpenAPI document, saved cohorts used as
//! filters, and reports over events sent through /import.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;
use serde_json::{json, Value};

mod support;
use tower::ServiceExt;

struct Harness {
    _instance: support::Instance,
    router: axum::Router,
    secret: String,
}

fn harness() -> Harness {
    let (instance, services) = support::services();
    let created = instance.meta.create_project("test").unwrap();
    let state = server::AppState::new(services, server::ServerConfig::default(), None);
    Harness { router: server::router(state), secret: created.secret, _instance: instance }
}

impl Harness {
    async fn call(&self, method: &str, path: &str, secret: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(secret) = secret {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{secret}:"));
            request = request.header(header::AUTHORIZATION, format!("Basic {basic}"));
        }
        let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())) };
        (status, value)
    }

    async fn query(&self, spec: Value) -> (StatusCode, Value) {
        self.call("POST", "/api/v1/query", Some(&self.secret.clone()), Some(spec)).await
    }

    async fn import(&self, events: Value) {
        let (status, body) = self.call("POST", "/import?strict=1", Some(&self.secret.clone()), Some(events)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

fn event(name: &str, distinct_id: &str, time_s: i64, plan: &str) -> Value {
    json!({"event": name, "properties": {"time": time_s, "distinct_id": distinct_id, "$insert_id": format!("{}-{distinct_id}-{time_s}", name.replace(" ", "")), "plan": plan}})
}

const DAY: i64 = 86_400;
const JAN1: i64 = 1_767_225_600; // 2026-01-01 UTC

#[tokio::test]
async fn reports_answer_over_imported_events_and_bad_specs_get_a_reason() {
    let h = harness();
    h.import(json!([
        event("Sign Up", "a", JAN1 + 10, "free"),
        event("Create API Key", "a", JAN1 + 20, "free"),
        event("Sign Up", "b", JAN1 + DAY + 10, "pro"),
        event("Sign Up", "c", JAN1 + DAY + 20, "pro"),
        event("Create API Key", "c", JAN1 + 9 * DAY, "pro"),
    ]))
    .await;

    let (status, body) = h
        .query(json!({"report": "insights", "from": "2026-01-01", "to": "2026-01-02", "events": [{"event": "Sign Up", "measure": "uniques"}], "breakdown": "plan"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["series"],
        json!([
            {"event": "Sign Up", "measure": "uniques", "segment": "pro", "points": {"2026-01-01": 0.0, "2026-01-02": 2.0}},
            {"event": "Sign Up", "measure": "uniques", "segment": "free", "points": {"2026-01-01": 1.0, "2026-01-02": 0.0}}
        ])
    );

    let (status, body) = h
        .query(json!({"report": "funnel", "from": "2026-01-01", "to": "2026-01-05", "steps": [{"event": "Sign Up"}, {"event": "Create API Key"}]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let counts: Vec<u64> = body["steps"].as_array().unwrap().iter().map(|s| s["count"].as_u64().unwrap()).collect();
    assert_eq!(counts, [3, 1], "c's key came after the 7-day window: {body}");

    // A saved cohort filters a report.
    let (status, cohort) = h
        .call("POST", "/api/v1/cohorts", Some(&h.secret.clone()), Some(json!({"name": "keyed", "definition": {"did": "Create API Key", "from": "2026-01-01", "to": "2026-01-31"}})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cohort}");
    let (status, body) = h
        .query(json!({"report": "insights", "from": "2026-01-01", "to": "2026-01-02", "interval": "month", "events": [{"event": "Sign Up", "measure": "uniques"}], "where": [{"cohort": cohort["id"]}]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["series"][0]["points"], json!({"2026-01-01": 2.0}));
    let (status, listed) = h.call("GET", "/api/v1/cohorts", Some(&h.secret.clone()), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["cohorts"][0]["name"], "keyed");

    for (spec, reason) in [
        (json!({"report": "insights", "from": "2026-01-01", "to": "2026-13-01", "events": [{"event": "x"}]}), "to must be a date"),
        (json!({"report": "insights", "from": "2026-01-02", "to": "2026-01-01", "events": [{"event": "x"}]}), "before from"),
        (json!({"report": "funnel", "from": "2026-01-01", "to": "2026-01-02", "steps": [{"event": "x"}]}), "2 to 20 steps"),
        (json!({"report": "funnel", "from": "2026-01-01", "to": "2026-01-02", "steps": [{"event": "x"}, {"event": "y"}], "window": "7 weeks"}), "window"),
        (json!({"report": "insights", "from": "2026-01-01", "to": "2026-01-02", "events": [{"event": "x"}], "where": [{"property": "p", "op": "gt", "value": "high"}]}), "numeric"),
        (json!({"report": "insights", "from": "2026-01-01", "to": "2026-01-02", "events": [{"event": "x"}], "formulas": [{"name": "f", "expression": "A / C"}]}), "names no event"),
        (json!({"report": "insights", "from": "2026-01-01", "to": "2026-01-02", "events": [{"event": "x"}], "where": [{"cohort": 999}]}), "cohort 999"),
        (json!({"report": "pie", "from": "2026-01-01"}), "invalid report spec"),
        (json!({"report": "insights", "from": "2026-01-01", "to": "2026-01-02", "events": [], "colour": "red"}), "invalid report spec"),
    ] {
        let (status, body) = h.query(spec.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{spec}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{spec}: {error:?} should mention {reason:?}");
    }

    let (status, _) = h.call("POST", "/api/v1/query", None, Some(json!({"report": "profiles"}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h.call("POST", "/api/v1/query", Some("wrong"), Some(json!({"report": "profiles"}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, openapi) = h.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/api/v1/query"]["post"].is_object());
}

/// Mixpanel's raw export with `where`: only the events the expression
/// selects; a bad expression is a 400 naming where it went wrong.
#[tokio::test]
async fn export_where_selects_by_expression() {
    let h = harness();
    h.import(json!([
        event("Sign Up", "a", JAN1 + 10, "free"),
        event("Sign Up", "b", JAN1 + DAY + 10, "pro"),
        event("Create API Key", "b", JAN1 + DAY + 50, "pro"),
        event("Sign Up", "c", JAN1 + DAY + 20, "team"),
    ]))
    .await;
    let export = |expression: &str| {
        let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("from_date", "2026-01-01").append_pair("to_date", "2026-01-03").append_pair("where", expression).finish();
        let secret = h.secret.clone();
        let h = &h;
        async move {
            let (status, body) = h.call("GET", &format!("/api/2.0/export?{query}"), Some(&secret), None).await;
            (status, body)
        }
    };
    let lines = |body: Value| -> Vec<(String, String)> {
        let text = match body {
            Value::String(text) => text,
            Value::Null => String::new(),
            one => one.to_string(),
        };
        text.lines().map(|line| serde_json::from_str::<Value>(line).unwrap()).map(|e| (e["event"].as_str().unwrap().to_owned(), e["properties"]["distinct_id"].as_str().unwrap().to_owned())).collect()
    };
    for (expression, want) in [
        (r#"properties["plan"] == "pro""#, vec![("Sign Up", "b"), ("Create API Key", "b")]),
        (r#"properties["plan"] in ["free", "team"] and properties["time"] >= 1767312000"#, vec![("Sign Up", "c")]),
        (r#"properties["distinct_id"] == "a" or not defined(properties["plan"])"#, vec![("Sign Up", "a")]),
        (r#"properties["plan"] == "enterprise""#, vec![]),
    ] {
        let (status, body) = export(expression).await;
        assert_eq!(status, StatusCode::OK, "{expression}: {body}");
        let mut got = lines(body);
        got.sort();
        let mut want: Vec<(String, String)> = want.into_iter().map(|(e, d)| (e.to_owned(), d.to_owned())).collect();
        want.sort();
        assert_eq!(got, want, "{expression}");
    }
    let (status, body) = export(r#"properties["plan"] = "pro""#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().starts_with("where: "), "{body}");
}
