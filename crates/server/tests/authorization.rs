//! The authorisation matrix, generated from the router's own route table:
//! every route times no credential, the project secret, and a key of each
//! scope. A route whose handler checks another scope than its rule says, or
//! none, fails here; a route cannot exist without a rule (the router is
//! built from the table). Then each key rule on the next request:
//! disabling, expiry, rotation overlap, IP allowlists, switching the project
//! secret off, token rotation.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use base64::Engine;
use meta::{KeySpec, Scope};
use std::net::SocketAddr;
use std::sync::Arc;

mod support;
use tower::ServiceExt;

thread_local! {
    /// The access service of the last harness (for tests that open sessions).
    static ACCESS: std::cell::RefCell<Option<Arc<access::Access>>> = const { std::cell::RefCell::new(None) };
}

struct Harness {
    _instance: support::Instance,
    router: axum::Router,
    meta: Arc<meta::Meta>,
    project: meta::Project,
    secret: String,
    account: i64,
}

fn harness() -> Harness {
    harness_with(server::ServerConfig::default())
}

fn harness_with(config: server::ServerConfig) -> Harness {
    let (instance, services) = support::services();
    let meta = instance.meta.clone();
    let created = meta.create_project("test").unwrap();
    meta.create_project("other").unwrap();
    let account = meta.create_service_account("robot").unwrap().id;
    ACCESS.with(|slot| *slot.borrow_mut() = Some(instance.access.clone()));
    let router = server::router(server::AppState::new(services, config, None));
    Harness { _instance: instance, router, meta, project: created.project, secret: created.secret, account }
}

impl Harness {
    fn key(&self, scopes: &[Scope], allow_cidrs: &[&str], expires_ms: Option<i64>) -> (String, i64) {
        let spec = KeySpec { scopes: scopes.to_vec(), projects: vec![self.project.id], allow_cidrs: allow_cidrs.iter().map(|s| s.to_string()).collect(), expires_ms };
        let (secret, key) = self.meta.create_api_key(self.account, &spec, None).unwrap();
        (secret, key.id)
    }

    /// Path parameters become ids no row has: a route that acts on its id
    /// (disabling key 1, say) must not cut off the harness's own keys.
    async fn call(&self, method: Method, path: &str, credential: Option<&str>, from: Option<&str>) -> StatusCode {
        let concrete = path.replace("{id}", "999999").replace("{task_id}", "no-such-task").replace("{distinct_id}", "u1");
        let separator = if concrete.contains('?') { '&' } else { '?' };
        let uri = format!("{concrete}{separator}from_date=2026-01-01&to_date=2026-01-02");
        let mut request = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
        if let Some(credential) = credential {
            request = request.header(header::AUTHORIZATION, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{credential}:"))));
        }
        let body = r#"[{"event":"E","properties":{"time":1780000000,"distinct_id":"u1","$insert_id":"i1"}}]"#;
        let mut request = request.body(Body::from(body)).unwrap();
        if let Some(address) = from {
            request.extensions_mut().insert(ConnectInfo(address.parse::<SocketAddr>().unwrap()));
        }
        self.router.clone().oneshot(request).await.unwrap().status()
    }
}

fn admitted(status: StatusCode) -> bool {
    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN
}

#[tokio::test]
async fn every_route_admits_exactly_what_its_rule_says() {
    let h = harness();
    let keys: Vec<(Scope, String)> = Scope::ALL.iter().map(|scope| (*scope, h.key(&[*scope], &[], None).0)).collect();
    let rules = server::route_rules();
    assert!(rules.len() > 30, "the table lists every route: {}", rules.len());
    let mut failures = Vec::new();
    for rule in &rules {
        let (method, path) = (rule.method.clone(), rule.path);
        let anonymous = h.call(method.clone(), path, None, None).await;
        let secret = h.call(method.clone(), path, Some(&h.secret), None).await;
        match rule.access {
            server::Access::Public | server::Access::Token => {
                if !admitted(anonymous) {
                    failures.push(format!("{method} {path}: public, but {anonymous} without a credential"));
                }
            }
            server::Access::Session => {
                // Only a member's session cookie opens these: no secret, no key.
                for (name, status) in [("nothing", anonymous), ("the project secret", secret)] {
                    if status != StatusCode::UNAUTHORIZED {
                        failures.push(format!("{method} {path}: session-only, but {name} got {status}"));
                    }
                }
                let status = h.call(method.clone(), path, Some(&keys[3].1), None).await;
                if status != StatusCode::UNAUTHORIZED {
                    failures.push(format!("{method} {path}: session-only, but an admin key got {status}"));
                }
            }
            server::Access::Scope(needed) => {
                if anonymous != StatusCode::UNAUTHORIZED {
                    failures.push(format!("{method} {path}: {anonymous} without a credential, expected 401"));
                }
                if !admitted(secret) {
                    failures.push(format!("{method} {path}: the project secret got {secret}"));
                }
                for (scope, key) in &keys {
                    let status = h.call(method.clone(), path, Some(key), None).await;
                    let expected_in = *scope == needed;
                    if expected_in != admitted(status) || (!expected_in && status != StatusCode::FORBIDDEN) {
                        failures.push(format!("{method} {path} needs {:?}: a {:?} key got {status}", needed.as_str(), scope.as_str()));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    let garbage = h.call(Method::POST, "/api/v1/query", Some("hth_sk_000000000000000000000000000000000000"), None).await;
    assert_eq!(garbage, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn key_rules_hold_on_the_next_request() {
    let h = harness();
    let path = "/api/v1/privacy/findings";
    // Disabling a key, or its account.
    let (key, id) = h.key(&[Scope::Read], &[], None);
    assert!(admitted(h.call(Method::GET, path, Some(&key), None).await));
    h.meta.disable_api_key(id).unwrap();
    assert_eq!(h.call(Method::GET, path, Some(&key), None).await, StatusCode::UNAUTHORIZED);
    let (key, _) = h.key(&[Scope::Read], &[], None);
    h.meta.disable_service_account(h.account).unwrap();
    assert_eq!(h.call(Method::GET, path, Some(&key), None).await, StatusCode::UNAUTHORIZED);
    let account = h.meta.create_service_account("robot2").unwrap().id;
    let h = Harness { account, ..h };

    // Expiry.
    let (key, _) = h.key(&[Scope::Read], &[], Some(events::now_ms() + 300));
    assert!(admitted(h.call(Method::GET, path, Some(&key), None).await));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(h.call(Method::GET, path, Some(&key), None).await, StatusCode::UNAUTHORIZED);

    // Rotation with overlap, then without.
    let (old, id) = h.key(&[Scope::Read], &[], None);
    let (new, new_key) = h.meta.rotate_api_key(id, events::now_ms() + 3_600_000).unwrap();
    assert!(admitted(h.call(Method::GET, path, Some(&old), None).await), "the old key works during the overlap");
    assert!(admitted(h.call(Method::GET, path, Some(&new), None).await));
    assert_eq!(new_key.scopes, vec![Scope::Read]);
    let (newer, _) = h.meta.rotate_api_key(new_key.id, events::now_ms()).unwrap();
    assert_eq!(h.call(Method::GET, path, Some(&new), None).await, StatusCode::UNAUTHORIZED, "no overlap: the old key dies at once");
    assert!(admitted(h.call(Method::GET, path, Some(&newer), None).await));

    // IP allowlist.
    let (key, _) = h.key(&[Scope::Read], &["10.0.0.0/8"], None);
    assert_eq!(h.call(Method::GET, path, Some(&key), Some("127.0.0.1:5000")).await, StatusCode::FORBIDDEN);
    assert!(admitted(h.call(Method::GET, path, Some(&key), Some("10.1.2.3:5000")).await));
    assert_eq!(h.call(Method::GET, path, Some(&key), None).await, StatusCode::FORBIDDEN, "no known source: refused");

    // Projects: a key acts only on its own.
    let other = h.meta.project_by_name("other").unwrap();
    let (key, _) = h.key(&[Scope::Read], &[], None);
    assert_eq!(h.call(Method::GET, &format!("{path}?project_id={}", other.id.0), Some(&key), None).await, StatusCode::FORBIDDEN);
    assert!(admitted(h.call(Method::GET, &format!("{path}?project_id={}", h.project.id.0), Some(&key), None).await));

    // The project secret, switched off and on.
    assert!(admitted(h.call(Method::GET, path, Some(&h.secret), None).await));
    h.meta.set_secret_disabled(h.project.id, true).unwrap();
    assert_eq!(h.call(Method::GET, path, Some(&h.secret), None).await, StatusCode::UNAUTHORIZED);
    h.meta.set_secret_disabled(h.project.id, false).unwrap();
    assert!(admitted(h.call(Method::GET, path, Some(&h.secret), None).await));
}

#[tokio::test]
async fn a_rotated_token_keeps_collecting_during_its_overlap() {
    let h = harness();
    let old = h.project.token.clone();
    let new = h.meta.rotate_project_token(h.project.id, events::now_ms() + 3_600_000).unwrap();
    assert_ne!(old, new);
    for token in [&old, &new] {
        assert_eq!(h.meta.project_by_token(token).unwrap().map(|p| p.id), Some(h.project.id));
    }
    let newer = h.meta.rotate_project_token(h.project.id, events::now_ms() - 1).unwrap();
    assert_eq!(h.meta.project_by_token(&new).unwrap(), None, "an overlap that ended refuses the token");
    assert_eq!(h.meta.project_by_token(&old).unwrap().map(|p| p.id), Some(h.project.id), "the first overlap still runs");
    let body = format!(r#"{{"event":"E","properties":{{"token":"{old}","distinct_id":"u1"}}}}"#);
    let request = Request::post("/track?verbose=1").header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap();
    let response = h.router.clone().oneshot(request).await.unwrap();
    let text = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert!(String::from_utf8_lossy(&text).contains("\"status\":1"), "{}", String::from_utf8_lossy(&text));
    assert_eq!(h.meta.project_by_token(&newer).unwrap().map(|p| p.id), Some(h.project.id));
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_headers_are_set() {
    let limits = server::RateLimits { api_per_second: 1, api_burst: 3, exports_per_minute: 2, ..server::RateLimits::default() };
    let h = harness_with(server::ServerConfig { rate_limits: limits, ..server::ServerConfig::default() });
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(h.call(Method::GET, "/api/v1/privacy/findings", Some(&h.secret), None).await);
    }
    assert!(statuses[..3].iter().all(|s| admitted(*s)), "{statuses:?}");
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let request = Request::get("/api/v1/privacy/findings").header(header::AUTHORIZATION, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:", h.secret)))).body(Body::empty()).unwrap();
    let response = h.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    // Another credential has its own budget.
    let (key, _) = h.key(&[Scope::Read], &[], None);
    assert!(admitted(h.call(Method::GET, "/api/v1/privacy/findings", Some(&key), None).await));

    let response = h.router.clone().oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
    let headers = response.headers();
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert!(!headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("unsafe-inline"));
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
}

#[tokio::test]
async fn blocked_addresses_get_nothing_and_the_api_allowlist_holds() {
    let config = server::ServerConfig {
        blocked: vec!["203.0.113.0/24".parse().unwrap()],
        api_allowed: vec!["10.0.0.0/8".parse().unwrap()],
        ..server::ServerConfig::default()
    };
    let h = harness_with(config);
    assert_eq!(h.call(Method::POST, "/track", None, Some("203.0.113.9:1000")).await, StatusCode::FORBIDDEN, "blocked from ingestion too");
    assert!(admitted(h.call(Method::POST, "/track", None, Some("198.51.100.1:1000")).await), "ingestion is not behind the API allowlist");
    assert_eq!(h.call(Method::GET, "/api/v1/privacy/findings", Some(&h.secret), Some("198.51.100.1:1000")).await, StatusCode::FORBIDDEN);
    assert!(admitted(h.call(Method::GET, "/api/v1/privacy/findings", Some(&h.secret), Some("10.9.9.9:1000")).await));
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_account() {
    let h = harness();
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let request = Request::post("/api/v1/auth/login/start").header(header::CONTENT_TYPE, "application/json").body(Body::from(r#"{"email":"victim@example.com"}"#)).unwrap();
        statuses.push(h.router.clone().oneshot(request).await.unwrap().status());
    }
    assert!(statuses[..20].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert_eq!(statuses[24], StatusCode::TOO_MANY_REQUESTS, "the account is locked out for a while: {statuses:?}");
    // Another account is not.
    let request = Request::post("/api/v1/auth/login/start").header(header::CONTENT_TYPE, "application/json").body(Body::from(r#"{"email":"other@example.com"}"#)).unwrap();
    assert_eq!(h.router.clone().oneshot(request).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "current_thread")]
async fn sessions_need_permission_and_a_fresh_passkey_to_export() {
    let h = harness();
    let access = ACCESS.with(|slot| slot.borrow().clone()).unwrap();
    let member = access.invite("ana@example.com", meta::Role::Analyst, true, false, &[]).unwrap().member;
    let organisation = h.meta.organisation("default").unwrap();
    h.meta.set_phishing_resistant_only(organisation.id, false).unwrap();
    let uri = access.set_password(&member, "correct horse battery staple").unwrap();
    let code = totp_rs::TOTP::from_url_unchecked(&uri).unwrap().generate_current().unwrap();
    let session = access.password_login("ana@example.com", "correct horse battery staple", &code, None).unwrap();
    let project = h.project.id.0;
    let call = |path: &str, csrf: Option<&str>, method: Method| {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut request = Request::builder().method(method).uri(format!("{path}{separator}project_id={project}")).header(header::COOKIE, format!("hearth_session={}", session.id)).header(header::CONTENT_TYPE, "application/json");
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        h.router.clone().oneshot(request.body(Body::from("{}")).unwrap())
    };
    let read = call("/api/v1/privacy/findings", None, Method::GET).await.unwrap();
    assert_eq!(read.status(), StatusCode::OK, "the session reads");
    let export = call("/api/2.0/export?from_date=2026-01-01&to_date=2026-01-02", None, Method::GET).await.unwrap();
    assert_eq!(export.status(), StatusCode::FORBIDDEN, "the export permission alone is not enough");
    let body = axum::body::to_bytes(export.into_body(), usize::MAX).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("step-up"), "{}", String::from_utf8_lossy(&body));
    let reveal = call("/api/v1/people/x?reveal=true", None, Method::GET).await.unwrap();
    assert_eq!(reveal.status(), StatusCode::FORBIDDEN, "no view_pii");
    let no_csrf = call("/api/v1/cohorts", None, Method::POST).await.unwrap();
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN, "state changes need the CSRF token");
    let with_csrf = call("/api/v1/cohorts", Some(&session.csrf), Method::POST).await.unwrap();
    assert_eq!(with_csrf.status(), StatusCode::BAD_REQUEST, "past CSRF, the body is judged");
    let admin_only = call("/api/v1/privacy/policy", Some(&session.csrf), Method::PUT).await.unwrap();
    assert_eq!(admin_only.status(), StatusCode::FORBIDDEN, "analysts change no policy");
}

/// A signed-in member of `role` (passkey enrolment with a software
/// authenticator): the session cookie and CSRF token.
fn member_session(access: &access::Access, email: &str, role: meta::Role) -> (String, String) {
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    let invitation = access.invite(email, role, false, false, &[]).unwrap();
    let (ceremony, options) = access.enrol_start(&invitation.token).unwrap();
    let options: webauthn_rs::prelude::CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let mut authenticator = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
    let credential = authenticator.do_registration(webauthn_rs::prelude::Url::parse("http://localhost:8080").unwrap(), options).unwrap();
    let session = access.enrol_finish(&ceremony, &credential, None).unwrap();
    (session.id, session.csrf)
}

#[tokio::test(flavor = "current_thread")]
async fn every_route_times_every_role() {
    let h = harness();
    let access = ACCESS.with(|slot| slot.borrow().clone()).unwrap();
    let roles = [meta::Role::Viewer, meta::Role::Analyst, meta::Role::Admin, meta::Role::Owner];
    let sessions: Vec<(meta::Role, String, String)> = roles.iter().map(|role| {
        let (cookie, csrf) = member_session(&access, &format!("{}@example.com", role.as_str()), *role);
        (*role, cookie, csrf)
    }).collect();
    let project = h.project.id.0;
    let mut failures = Vec::new();
    for rule in server::route_rules() {
        let server::Access::Scope(scope) = rule.access else { continue };
        for (role, cookie, csrf) in &sessions {
            let path = rule.path.replace("{id}", "999999").replace("{task_id}", "no-such-task").replace("{distinct_id}", "u1");
            let separator = if path.contains('?') { '&' } else { '?' };
            let uri = format!("{path}{separator}project_id={project}&from_date=2026-01-01&to_date=2026-01-02");
            let request = Request::builder().method(rule.method.clone()).uri(uri).header(header::COOKIE, format!("hearth_session={cookie}")).header("x-csrf-token", csrf.as_str()).header(header::CONTENT_TYPE, "application/json");
            let status = h.router.clone().oneshot(request.body(Body::from("{}")).unwrap()).await.unwrap().status();
            // Reads for every role; ingest and admin for admins and owners;
            // export only with the export permission, which none of these has.
            let allowed = match scope {
                Scope::Read => true,
                Scope::Ingest | Scope::Admin => *role >= meta::Role::Admin,
                Scope::Export => false,
            };
            if allowed != admitted(status) {
                failures.push(format!("{} {} needs {:?}: a {} session got {status}", rule.method, rule.path, scope.as_str(), role.as_str()));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
