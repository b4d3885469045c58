//! Two real `hearth serve` nodes on different ports sharing one ClickHouse
//! (events) and one PostgreSQL (metadata), both servers from Debian's
//! packages started on loopback, as behind a load balancer without sticky
//! sessions: a passkey enrolment started on one node finishes on the other;
//! the session works on both and, revoked on one, dies on the other; events
//! sent to both nodes, some twice, count once in reports from either.

use clickhouse_store::local_server::LocalClickHouse;
use serde_json::{json, Value};
use sqldb::local_server::LocalPostgres;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, Url};

const ORIGIN: &str = "http://localhost:8080";
const MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct Cluster {
    postgres: LocalPostgres,
    /// None: each node keeps its events in its embedded store.
    clickhouse: Option<LocalClickHouse>,
    root: tempfile::TempDir,
    /// "postgres", or "sqlite" for a single node before it moves.
    metadata_backend: &'static str,
}

impl Cluster {
    fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("HEARTH_METADATA__BACKEND", self.metadata_backend.to_owned()),
            ("HEARTH_METADATA__POSTGRES_URL", self.postgres.target().url),
            ("HEARTH_METADATA__POSTGRES_PASSWORD", sqldb::local_server::PASSWORD.to_owned()),
            ("HEARTH_METADATA__POSTGRES_CA_FILE", self.postgres.ca_file.as_ref().map(|f| f.display().to_string()).unwrap_or_default()),
            ("HEARTH_STORE__FLUSH_INTERVAL_MS", "200".to_owned()),
            ("HEARTH_AUTH__ORIGIN", ORIGIN.to_owned()),
            ("HEARTH_LOG", "warn".to_owned()),
        ];
        if let Some(clickhouse) = &self.clickhouse {
            env.extend([
                ("HEARTH_STORAGE__BACKEND", "clickhouse".to_owned()),
                ("HEARTH_STORAGE__CLICKHOUSE_URL", format!("http://127.0.0.1:{}", clickhouse.http_port)),
                ("HEARTH_STORAGE__CLICKHOUSE_DATABASE", "scale_out".to_owned()),
                ("HEARTH_STORAGE__CLICKHOUSE_USER", clickhouse_store::local_server::USER.to_owned()),
                ("HEARTH_STORAGE__CLICKHOUSE_PASSWORD", clickhouse_store::local_server::PASSWORD.to_owned()),
                ("HEARTH_MASTER_KEY", MASTER_KEY.to_owned()),
            ]);
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    fn data(&self, node: &str) -> PathBuf {
        self.root.path().join(node).join("data")
    }

    /// Runs the CLI on node `node`'s data directory; the output, or the error message.
    fn try_cli(&self, node: &str, args: &[&str]) -> Result<String, String> {
        let output = Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).arg("--data").arg(self.data(node)).envs(self.env()).output().unwrap();
        match output.status.success() {
            true => Ok(String::from_utf8(output.stdout).unwrap() + &String::from_utf8_lossy(&output.stderr)),
            false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        self.try_cli("a", args).unwrap_or_else(|error| panic!("hearth {args:?}: {error}"))
    }

    fn serve(&self, node: &str) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(self.root.path().join(format!("{node}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(self.data(node))
            .envs(self.env())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let node = Node { child, url: format!("http://127.0.0.1:{port}"), log: self.root.path().join(format!("{node}.log")) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while node.get("/readyz", None).0 != 200 {
            assert!(Instant::now() < deadline, "node not ready: {}", node.log_tail());
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }
}

struct Node {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into()
}

impl Node {
    fn log_tail(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().rev().take(20).collect::<Vec<_>>().join("\n")
    }

    fn get(&self, path: &str, cookie: Option<&str>) -> (u16, String) {
        let mut request = agent().get(format!("{}{path}", self.url));
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        match request.call() {
            Ok(mut response) => (response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    /// POSTs JSON; returns the status, the body and any Set-Cookie.
    fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value, Option<String>) {
        let mut request = agent().post(format!("{}{path}", self.url)).header("Content-Type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.send(body.to_string()).unwrap();
        let cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).map(|c| c.split(';').next().unwrap_or_default().to_owned());
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (response.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::String(text)), cookie)
    }

    fn delete(&self, path: &str, headers: &[(&str, &str)]) -> u16 {
        let mut request = agent().delete(format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.call().unwrap().status().as_u16()
    }
}

fn basic(secret: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{secret}:")))
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Two nodes' shared databases; the metadata over TLS (the server takes
/// nothing else), as across a real network.
fn cluster() -> Cluster {
    Cluster { postgres: LocalPostgres::start_with_tls().unwrap(), clickhouse: Some(LocalClickHouse::start().unwrap()), root: tempfile::tempdir().unwrap(), metadata_backend: "postgres" }
}

/// Enrols a passkey through an enrolment link; the status, the body and the session cookie.
fn enrol(node: &Node, link: &str) -> (u16, Value, Option<String>) {
    let enrolment = link.split("/enrol#").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let (status, started, _) = node.post("/api/v1/auth/enrol/start", &json!({"token": enrolment}), &[]);
    assert_eq!(status, 200, "{started}");
    let options: CreationChallengeResponse = serde_json::from_value(started["options"].clone()).unwrap();
    let credential = SoftPasskey::new(true).do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap();
    node.post("/api/v1/auth/enrol/finish", &json!({"ceremony": started["ceremony"], "credential": credential}), &[])
}

#[test]
fn a_single_nodes_metadata_moves_to_postgres() {
    let mut cluster = Cluster { postgres: LocalPostgres::start().unwrap(), clickhouse: None, root: tempfile::tempdir().unwrap(), metadata_backend: "sqlite" };
    let project: Value = serde_json::from_str(cluster.cli(&["project", "create", "shop", "--json"]).lines().last().unwrap()).unwrap();
    let link = cluster.cli(&["admin", "create", "owner@example.com"]);
    let projects_before = cluster.cli(&["project", "list"]);
    let audit_before = cluster.cli(&["audit", "verify"]);
    assert!(audit_before.contains("audit log intact"), "{audit_before}");

    let moved = cluster.cli(&["migrate", "--to", "postgres"]);
    assert!(moved.contains("copied") && moved.contains("metadata.backend = \"postgres\""), "{moved}");
    assert!(cluster.cli(&["migrate", "--to", "postgres"]).contains("copied"), "a second run finishes or repeats the copy");

    cluster.metadata_backend = "postgres";
    assert_eq!(cluster.cli(&["project", "list"]), projects_before);
    let audit_after = cluster.cli(&["audit", "verify"]);
    let entries = |text: &str| text.split("intact: ").nth(1).and_then(|t| t.split(' ').next()).map(str::to_owned);
    assert!(audit_after.contains("audit log intact"), "{audit_after}");
    assert!(entries(&audit_after) >= entries(&audit_before), "{audit_before} then {audit_after}");

    // A node on PostgreSQL takes the project's traffic and the member's
    // enrolment link made before the move (the email opens with the moved keys).
    let node = cluster.serve("a");
    let track = json!([{"event": "Viewed", "properties": {"token": project["token"], "distinct_id": "u1", "$insert_id": "m-1"}}]);
    let (status, body, _) = node.post("/track?verbose=1", &track, &[]);
    assert_eq!((status, body["status"].clone()), (200, json!(1)), "{body}");
    let (status, body, cookie) = enrol(&node, &link);
    assert_eq!(status, 200, "{body}\n{}", node.log_tail());
    let (status, me) = node.get("/api/v1/auth/me", cookie.as_deref());
    assert_eq!(status, 200);
    assert!(me.contains("\"email\":\"owner@example.com\""), "the sealed email opens with the moved key store: {me}");

    // Another node's metadata cannot be poured into the same database.
    cluster.metadata_backend = "sqlite";
    cluster.try_cli("b", &["project", "create", "other"]).unwrap();
    let refused = cluster.try_cli("b", &["migrate", "--to", "postgres"]).unwrap_err();
    assert!(refused.contains("already holds metadata"), "{refused}");
}

#[test]
fn two_nodes_share_sessions_ceremonies_and_events() {
    let cluster = cluster();
    let project: Value = serde_json::from_str(cluster.cli(&["project", "create", "shop", "--json"]).lines().last().unwrap()).unwrap();
    let (token, secret) = (project["token"].as_str().unwrap().to_owned(), project["secret"].as_str().unwrap().to_owned());
    let link = cluster.cli(&["admin", "create", "owner@example.com"]);
    let enrolment = link.split("/enrol#").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let (a, b) = (cluster.serve("a"), cluster.serve("b"));

    // Enrolment started on a, finished on b.
    let (status, started, _) = a.post("/api/v1/auth/enrol/start", &json!({"token": enrolment}), &[]);
    assert_eq!(status, 200, "{started}");
    let options: CreationChallengeResponse = serde_json::from_value(started["options"].clone()).unwrap();
    let credential = SoftPasskey::new(true).do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap();
    let (status, signed_in, cookie) = b.post("/api/v1/auth/enrol/finish", &json!({"ceremony": started["ceremony"], "credential": credential}), &[]);
    assert_eq!(status, 200, "{signed_in}\n{}", b.log_tail());
    let cookie = cookie.expect("a session cookie");
    let csrf = signed_in["csrf_token"].as_str().unwrap().to_owned();
    let short_id = signed_in["session"].as_str().unwrap().to_owned();
    assert_eq!(a.get("/api/v1/auth/me", Some(&cookie)).0, 200, "the session works on the node that did not open it");
    assert_eq!(b.get("/api/v1/auth/me", Some(&cookie)).0, 200);

    // Events: /track to a, the same /import batch to both (a client retrying elsewhere).
    let now_s = (events::now_ms() / 1000) as f64;
    let track: Vec<Value> = (0..30).map(|i| json!({"event": "Viewed", "properties": {"token": token, "distinct_id": format!("u{}", i % 7), "time": now_s - 60.0 + f64::from(i), "$insert_id": format!("t-{i}")}})).collect();
    let (status, body, _) = a.post("/track?verbose=1", &Value::Array(track), &[]);
    assert_eq!((status, body["status"].clone()), (200, json!(1)), "{body}");
    let import: Vec<Value> = (0..50).map(|i| json!({"event": "Bought", "properties": {"distinct_id": format!("u{}", i % 5), "time": now_s - 3600.0 + f64::from(i), "$insert_id": format!("i-{i}"), "amount": i}})).collect();
    for node in [&a, &b] {
        let (status, body, _) = node.post("/import?strict=1", &Value::Array(import.clone()), &[("Authorization", &basic(&secret))]);
        assert_eq!(status, 200, "{body}");
    }
    // Yesterday too: the imported hour may lie before midnight UTC.
    let today = chrono::Utc::now().date_naive();
    let (from, to) = ((today - chrono::Days::new(1)).to_string(), today.to_string());
    let spec = json!({"report": "insights", "from": from, "to": to, "events": [{"event": "Viewed", "measure": "total"}, {"event": "Bought", "measure": "total"}, {"event": "Bought", "measure": "uniques"}]});
    let totals = |node: &Node| -> Vec<f64> {
        let (status, body, _) = node.post("/api/v1/query", &spec, &[("Authorization", &basic(&secret))]);
        assert_eq!(status, 200, "{body}");
        body["series"].as_array().unwrap().iter().map(|s| s["points"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum()).collect()
    };
    wait_for("every event in ClickHouse", || totals(&a) == [30.0, 50.0, 5.0]);
    assert_eq!(totals(&b), [30.0, 50.0, 5.0], "the other node reports the same, each event once");

    // Revoked on b: dead on a at once.
    assert_eq!(b.delete(&format!("/api/v1/auth/sessions/{short_id}"), &[("Cookie", &cookie), ("x-csrf-token", &csrf)]), 204);
    assert_eq!(a.get("/api/v1/auth/me", Some(&cookie)).0, 401, "a session revoked on one node dies on the other");
    assert_eq!(b.get("/api/v1/auth/me", Some(&cookie)).0, 401);

    // Password guesses for one account, spread over both nodes, share one
    // budget (20 at once): node b refuses the 21st, though it saw only 10.
    for attempt in 0..20 {
        let node = if attempt % 2 == 0 { &a } else { &b };
        let (status, body, _) = node.post("/api/v1/auth/password/login", &json!({"email": "owner@example.com", "password": "guess", "code": "000000"}), &[]);
        assert_ne!(status, 429, "attempt {attempt} was refused early: {body}");
        assert!((400..500).contains(&status), "attempt {attempt}: {status} {body}");
    }
    let (status, body, _) = b.post("/api/v1/auth/password/login", &json!({"email": "Owner@example.com", "password": "guess", "code": "000000"}), &[]);
    assert_eq!(status, 429, "the nodes each granted their own budget: {body}");
    let (status, _, _) = a.post("/api/v1/auth/password/login", &json!({"email": "someone-else@example.com", "password": "guess", "code": "000000"}), &[]);
    assert_ne!(status, 429, "another account has its own budget");
}

