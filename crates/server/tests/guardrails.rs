//! Export guardrails and alert rules over HTTP: an export above the
//! organisation's threshold waits for a second owner's approval (refused
//! to the one who asked, spent once); personal fields leave exports only
//! for a view_pii holder who asks; profile listings take the export
//! permission; a key used outside its allowlist and a run of failed
//! sign-ins raise alerts.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use base64::Engine;
use meta::{KeySpec, Scope};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

mod support;

struct Harness {
    _instance: support::Instance,
    router: axum::Router,
    meta: Arc<meta::Meta>,
    access: Arc<access::Access>,
    project: meta::Project,
    secret: String,
}

enum Who<'a> {
    Secret,
    Key(&'a str),
    Session(&'a (String, String)),
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(server::ServerConfig::default())
    }

    fn with_config(config: server::ServerConfig) -> Harness {
        let (instance, services) = support::services();
        let meta = instance.meta.clone();
        let access = instance.access.clone();
        let created = meta.create_project("guarded").unwrap();
        let router = server::router(server::AppState::new(services, config, None));
        Harness { _instance: instance, router, meta, access, project: created.project, secret: created.secret }
    }

    async fn call(&self, method: Method, path: &str, who: Who<'_>, body: &str) -> (StatusCode, String) {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut request = Request::builder().method(method).uri(format!("{path}{separator}project_id={}", self.project.id.0)).header(header::CONTENT_TYPE, "application/json");
        let basic = |user: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:")));
        request = match who {
            Who::Secret => request.header(header::AUTHORIZATION, basic(&self.secret)),
            Who::Key(key) => request.header(header::AUTHORIZATION, basic(key)),
            Who::Session((cookie, csrf)) => request.header(header::COOKIE, format!("hearth_session={cookie}")).header("x-csrf-token", csrf.as_str()),
        };
        let mut request = request.body(Body::from(body.to_owned())).unwrap();
        request.extensions_mut().insert(ConnectInfo("127.0.0.1:5000".parse::<SocketAddr>().unwrap()));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn key(&self, scopes: &[Scope], allow_cidrs: &[&str]) -> String {
        let account = self.meta.service_account("robot").map(|a| a.id).or_else(|_| self.meta.create_service_account("robot").map(|a| a.id)).unwrap();
        let spec = KeySpec { scopes: scopes.to_vec(), projects: vec![self.project.id], allow_cidrs: allow_cidrs.iter().map(|s| s.to_string()).collect(), expires_ms: None };
        self.meta.create_api_key(account, &spec, None).unwrap().0
    }

    /// A member signed in with a passkey just now (so freshly stepped up).
    fn member(&self, email: &str, role: meta::Role, can_export: bool, can_view_pii: bool) -> (String, String) {
        use webauthn_authenticator_rs::WebauthnAuthenticator;
        let invitation = self.access.invite(email, role, can_export, can_view_pii, &[]).unwrap();
        let (ceremony, options) = self.access.enrol_start(&invitation.token).unwrap();
        let options: webauthn_rs::prelude::CreationChallengeResponse = serde_json::from_value(options).unwrap();
        let mut authenticator = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
        let credential = authenticator.do_registration(webauthn_rs::prelude::Url::parse("http://localhost:8080").unwrap(), options).unwrap();
        let session = self.access.enrol_finish(&ceremony, &credential, None).unwrap();
        (session.id, session.csrf)
    }

    /// Five people's events, one with an email (stored encrypted), visible to exports.
    async fn import_five(&self) -> String {
        let now = events::now_ms() / 1000;
        let rows: Vec<Value> = (0..5).map(|n| json!({"event": "Signed up", "properties": {"time": now - 60 + n, "distinct_id": format!("p{n}"), "$insert_id": format!("i{n}"), "$email": format!("person{n}@example.com"), "plan": "pro"}})).collect();
        let (status, body) = self.call(Method::POST, "/import?strict=1", Who::Secret, &Value::from(rows).to_string()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
        format!("/api/2.0/export?from_date={day}&to_date={day}")
    }

    async fn alerts(&self) -> Vec<Value> {
        let (status, body) = self.call(Method::GET, "/api/v1/alerts", Who::Secret, "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["alerts"].as_array().unwrap().clone()
    }
}

fn lines(body: &str) -> Vec<Value> {
    body.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn an_export_above_the_threshold_needs_a_second_owner_once() {
    let h = Harness::new();
    let export = h.import_five().await;
    let (status, body) = h.call(Method::PUT, "/api/v1/exports/settings", Who::Secret, r#"{"approval_rows": 3}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let asker = h.member("asker@example.com", meta::Role::Owner, true, false);
    let second = h.member("second@example.com", meta::Role::Owner, false, false);
    let analyst = h.member("analyst@example.com", meta::Role::Analyst, false, false);

    // Under the threshold: no approval needed.
    let (status, body) = h.call(Method::GET, &format!("{export}&limit=3"), Who::Session(&asker), "").await;
    assert_eq!((status, lines(&body).len()), (StatusCode::OK, 3), "{body}");
    // Above it: refused, with the request filed.
    let (status, body) = h.call(Method::GET, &export, Who::Session(&asker), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let refused: Value = serde_json::from_str(&body).unwrap();
    let request = &refused["approval_request"];
    assert_eq!((request["status"].as_str(), request["rows"].as_u64(), request["users"].as_u64()), (Some("pending"), Some(5), Some(5)), "{body}");
    let id = request["id"].as_i64().unwrap();
    let (status, listed) = h.call(Method::GET, "/api/v1/exports/requests?status=pending", Who::Secret, "").await;
    assert!(status == StatusCode::OK && listed.contains(&format!("\"id\":{id}")), "{listed}");

    // The asker cannot approve their own export; an analyst cannot approve at all.
    let approve = format!("/api/v1/exports/requests/{id}/approve");
    let (status, body) = h.call(Method::POST, &approve, Who::Session(&asker), "").await;
    assert!(status == StatusCode::FORBIDDEN && body.contains("second owner"), "{status} {body}");
    let (status, _) = h.call(Method::POST, &approve, Who::Session(&analyst), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = h.call(Method::POST, &approve, Who::Session(&second), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = h.call(Method::POST, &format!("/api/v1/exports/requests/{id}/refuse"), Who::Session(&second), "").await;
    assert_eq!(status, StatusCode::CONFLICT, "decided once");

    // The approval opens exactly this export, once.
    let (status, body) = h.call(Method::GET, &format!("{export}&approval_id={id}&limit=4"), Who::Session(&asker), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "other parameters: {body}");
    let (status, body) = h.call(Method::GET, &format!("{export}&approval_id={id}"), Who::Session(&asker), "").await;
    assert_eq!((status, lines(&body).len()), (StatusCode::OK, 5), "{body}");
    let (status, body) = h.call(Method::GET, &format!("{export}&approval_id={id}"), Who::Session(&asker), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "spent: {body}");

    // A refusal holds too.
    let (_, body) = h.call(Method::GET, &export, Who::Session(&asker), "").await;
    let again = serde_json::from_str::<Value>(&body).unwrap()["approval_request"]["id"].as_i64().unwrap();
    assert_ne!(again, id);
    let (status, _) = h.call(Method::POST, &format!("/api/v1/exports/requests/{again}/refuse"), Who::Session(&second), "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.call(Method::GET, &format!("{export}&approval_id={again}"), Who::Session(&asker), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, audit) = h.call(Method::GET, "/api/v1/audit?limit=1000", Who::Secret, "").await;
    for action in ["export.approval.request", "export.approval.grant", "export.approval.refuse", "exports.settings.set"] {
        assert!(audit.contains(action), "{action} is audited");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn personal_fields_leave_only_for_a_view_pii_holder_who_asks() {
    let h = Harness::new();
    let export = h.import_five().await;
    let key = h.key(&[Scope::Read, Scope::Export], &[]);
    let (status, body) = h.call(Method::GET, &export, Who::Key(&key), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = lines(&body);
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r["properties"].get("$email").is_none() && r["properties"]["plan"] == "pro"), "{body}");
    assert!(!body.contains("pii:") && !body.contains("@example.com"), "neither tokens nor values: {body}");

    let (status, _) = h.call(Method::GET, &format!("{export}&include_personal=true"), Who::Key(&key), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "programs never get personal fields");
    let exporter = h.member("exporter@example.com", meta::Role::Analyst, true, false);
    let (status, _) = h.call(Method::GET, &format!("{export}&include_personal=true"), Who::Session(&exporter), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "export without view_pii");
    let officer = h.member("officer@example.com", meta::Role::Analyst, true, true);
    let (status, body) = h.call(Method::GET, &format!("{export}&include_personal=true"), Who::Session(&officer), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut emails: Vec<String> = lines(&body).iter().map(|r| r["properties"]["$email"].as_str().unwrap_or_default().to_owned()).collect();
    emails.sort();
    assert_eq!(emails, (0..5).map(|n| format!("person{n}@example.com")).collect::<Vec<_>>());
    let (_, audit) = h.call(Method::GET, "/api/v1/audit?action=pii.reveal", Who::Secret, "").await;
    assert!(audit.contains("\"revealed\":5"), "the reveal is audited: {audit}");

    // Profile listings are user-level rows: the export permission.
    let reader = h.key(&[Scope::Read], &[]);
    let (status, _) = h.call(Method::POST, "/api/2.0/engage", Who::Key(&reader), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h.call(Method::POST, "/api/2.0/engage", Who::Key(&key), "").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "current_thread")]
async fn a_key_outside_its_allowlist_and_failed_sign_ins_raise_alerts() {
    let h = Harness::new();
    let fenced = h.key(&[Scope::Read], &["10.0.0.0/8"]);
    let (status, _) = h.call(Method::GET, "/api/v1/privacy/findings", Who::Key(&fenced), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let alerts = h.alerts().await;
    assert!(alerts.iter().any(|a| a["rule"] == "key_allowlist" && a["credential"].as_str().unwrap().starts_with("api_key:")), "{alerts:?}");

    let (status, body) = h.call(Method::PUT, "/api/v1/alerts/rules/failed_logins", Who::Secret, r#"{"threshold": 4}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = h.call(Method::PUT, "/api/v1/alerts/rules/failed_logins", Who::Secret, r#"{"action": "explode"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h.call(Method::PUT, "/api/v1/alerts/rules/nonsense", Who::Secret, "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for n in 0..4 {
        let before = h.alerts().await.iter().filter(|a| a["rule"] == "failed_logins").count();
        let (status, _) = h.call(Method::POST, "/api/v1/auth/password/login", Who::Secret, r#"{"email":"victim@example.com","password":"guess","code":"000000"}"#).await;
        assert!(status.is_client_error(), "{status}");
        if n < 3 {
            assert_eq!(before, 0, "no alert before the threshold");
        }
    }
    let alerts = h.alerts().await;
    let raised: Vec<&Value> = alerts.iter().filter(|a| a["rule"] == "failed_logins").collect();
    assert!(raised.iter().any(|a| a["detail"]["per"] == "account" && a["detail"]["failures"] == 4), "{alerts:?}");
    assert!(raised.iter().all(|a| !a.to_string().contains("victim@example.com") && !a.to_string().contains("127.0.0.1")), "no email or address in alerts: {raised:?}");

    // A rule switched off stays quiet.
    let (status, _) = h.call(Method::PUT, "/api/v1/alerts/rules/key_allowlist", Who::Secret, r#"{"enabled": false}"#).await;
    assert_eq!(status, StatusCode::OK);
    let before = h.alerts().await.len();
    let other = h.key(&[Scope::Read], &["10.0.0.0/8"]);
    h.call(Method::GET, "/api/v1/privacy/findings", Who::Key(&other), "").await;
    assert_eq!(h.alerts().await.len(), before);
    let (_, rules) = h.call(Method::GET, "/api/v1/alerts/rules", Who::Secret, "").await;
    assert!(rules.contains(r#""rule":"key_allowlist","enabled":false"#) || rules.contains(r#""enabled":false"#), "{rules}");
}

#[tokio::test(flavor = "current_thread")]
async fn only_an_owner_lifts_an_export_freeze_and_containment_holds_at_once() {
    let h = Harness::new();
    let export = h.import_five().await;
    let key = h.key(&[Scope::Read, Scope::Export], &[]);
    let admin_key = h.key(&[Scope::Admin], &[]);
    // Containment over the API: everything, with the key that asks for it.
    let (status, body) = h.call(Method::POST, "/api/v1/incident/contain", Who::Key(&admin_key), r#"{"all": true, "token_overlap_hours": 1}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let steps: Value = serde_json::from_str(&body).unwrap();
    let actions: Vec<&str> = steps["steps"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["sessions", "keys", "project", "freeze"], "{body}");
    let (status, _) = h.call(Method::GET, &export, Who::Key(&key), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "every key is disabled at once");
    let (status, _) = h.call(Method::GET, "/api/v1/project", Who::Secret, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old secret is rotated away");

    let owner = h.member("owner@example.com", meta::Role::Owner, true, false);
    let admin = h.member("admin@example.com", meta::Role::Admin, true, false);
    let (status, body) = h.call(Method::GET, &export, Who::Session(&owner), "").await;
    assert!(status == StatusCode::FORBIDDEN && body.contains("frozen"), "{status} {body}");
    let (status, _) = h.call(Method::POST, "/api/v1/incident/unfreeze", Who::Session(&admin), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an admin does not lift a freeze");
    let (status, _) = h.call(Method::POST, "/api/v1/incident/unfreeze", Who::Key(&admin_key), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "nor does any key");
    let (status, body) = h.call(Method::POST, "/api/v1/incident/unfreeze", Who::Session(&owner), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = h.call(Method::GET, &export, Who::Session(&owner), "").await;
    assert_eq!((status, lines(&body).len()), (StatusCode::OK, 5), "{body}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_members_export_quota_spans_all_their_sessions() {
    let h = Harness::with_config(server::ServerConfig { export_rows_per_day: 4, ..server::ServerConfig::default() });
    let export = h.import_five().await;
    let first = h.member("quota@example.com", meta::Role::Analyst, true, false);
    let (status, body) = h.call(Method::GET, &export, Who::Session(&first), "").await;
    assert_eq!((status, lines(&body).len()), (StatusCode::OK, 4), "the export stops at the quota: {body}");
    // Signing in again (a new session of the same member) resets nothing.
    let access = h.access.clone();
    let member = h.meta.members(h.meta.organisation("default").unwrap().id).unwrap().into_iter().find(|m| m.can_export).unwrap();
    let (link, token, _) = access.enrolment_link(member.id).unwrap();
    assert!(link.ends_with(&token));
    let (ceremony, options) = access.enrol_start(&token).unwrap();
    let options: webauthn_rs::prelude::CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let mut authenticator = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    let credential = authenticator.do_registration(webauthn_rs::prelude::Url::parse("http://localhost:8080").unwrap(), options).unwrap();
    let again = access.enrol_finish(&ceremony, &credential, None).unwrap();
    let second = (again.id, again.csrf);
    let (status, body) = h.call(Method::GET, &export, Who::Session(&second), "").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body.contains("member's daily export quota of 4 rows"), "{body}");
    // A key keeps its own quota.
    let key = h.key(&[Scope::Export], &[]);
    let (status, body) = h.call(Method::GET, &export, Who::Key(&key), "").await;
    assert_eq!((status, lines(&body).len()), (StatusCode::OK, 4), "{body}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_member_adds_a_second_passkey_and_removes_one_but_never_the_last() {
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    let h = Harness::new();
    let first = h.member("keys@example.com", meta::Role::Analyst, false, false);
    let count = |body: &str| serde_json::from_str::<Value>(body).unwrap()["passkeys"].as_array().unwrap().len();
    let (status, body) = h.call(Method::GET, "/api/v1/auth/passkeys", Who::Session(&first), "").await;
    assert_eq!((status, count(&body)), (StatusCode::OK, 1), "{body}");
    let only: String = serde_json::from_str::<Value>(&body).unwrap()["passkeys"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = h.call(Method::DELETE, &format!("/api/v1/auth/passkeys/{only}"), Who::Session(&first), "").await;
    assert_eq!(status, StatusCode::CONFLICT, "never the last passkey: {body}");

    // A second passkey: a self-enrolment token, then the usual ceremony.
    let (status, body) = h.call(Method::POST, "/api/v1/auth/passkeys", Who::Session(&first), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["enrolment_token"].as_str().unwrap().to_owned();
    let (ceremony, options) = h.access.enrol_start(&token).unwrap();
    let options: webauthn_rs::prelude::CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let mut second_device = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
    let credential = second_device.do_registration(webauthn_rs::prelude::Url::parse("http://localhost:8080").unwrap(), options).unwrap();
    let session = h.access.enrol_finish(&ceremony, &credential, None).unwrap();
    let second = (session.id, session.csrf);
    let (_, body) = h.call(Method::GET, "/api/v1/auth/passkeys", Who::Session(&second), "").await;
    assert_eq!(count(&body), 2, "{body}");
    assert!(h.access.enrol_start(&token).is_err(), "the token works once");

    let (status, _) = h.call(Method::DELETE, &format!("/api/v1/auth/passkeys/{only}"), Who::Session(&second), "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = h.call(Method::GET, "/api/v1/auth/passkeys", Who::Session(&second), "").await;
    assert_eq!(count(&body), 1);
    let (status, _) = h.call(Method::DELETE, "/api/v1/auth/passkeys/not-mine", Who::Session(&second), "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Members' own account changes are instance-wide entries: read the log itself.
    let log = audit::AuditLog::open(h._instance.dir.path(), None).unwrap();
    let actions: Vec<String> = log.list(&audit::Filter::default()).unwrap().into_iter().map(|e| e.body.action).collect();
    assert!(actions.iter().any(|a| a == "passkey.add.start") && actions.iter().any(|a| a == "passkey.remove"), "audited: {actions:?}");
}
