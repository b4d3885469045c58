//! The route table, kept in one place so that every endpoint and its rule is
//! visible together.

mod auth_routes;
mod dashboard;
mod dashboards;
mod engage_query;
mod export;
mod guardrails;
mod ingest;
mod keys;
mod operations;
mod ops;
mod privacy;
mod profiles;
mod query;
mod request;
mod respond;

/// What the request says about its sender (address after trusted proxies, user agent).
pub(crate) type RequestFactsView = request::RequestFacts;

pub use export::{APPROVAL_ROWS_SETTING, APPROVAL_USERS_SETTING};

pub(crate) fn request_facts(parts: &axum::http::request::Parts, inner: &crate::state::Inner) -> request::RequestFacts {
    request::RequestFacts::from_parts(parts, inner)
}

use crate::state::AppState;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use mixpanel::Endpoint;
use std::time::Instant;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, metrics, the OpenAPI document).
    Public,
    /// The public project token inside the payload (SDK ingestion).
    Token,
    /// The project secret, or an API key holding this scope, or a member's
    /// session allowed it.
    Scope(meta::Scope),
    /// A signed-in member (the handler checks role and step-up).
    Session,
}

/// One route and its rule: the router is built from these, so a route
/// cannot exist without a rule, and the authorisation matrix test
/// (tests/authorization.rs) checks every one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

struct Route {
    rule: RouteRule,
    handler: MethodRouter<AppState>,
}

fn route(method: Method, path: &'static str, access: Access, handler: MethodRouter<AppState>) -> Route {
    Route { rule: RouteRule { method, path, access }, handler }
}

/// Every route with its rule.
fn route_table() -> Vec<Route> {
    use axum::routing::{delete, get, post, put};
    use meta::Scope::{Admin, Export, Read};
    let mut table = Vec::new();
    for endpoint in [Endpoint::Track, Endpoint::Engage, Endpoint::Groups, Endpoint::Import] {
        let handler = move |state, request| ingest::handle(state, endpoint, request);
        // /import takes the project secret or an ingest key; the others the token.
        let access = if endpoint == Endpoint::Import { Access::Scope(meta::Scope::Ingest) } else { Access::Token };
        let path: &'static str = endpoint.path();
        let slashed: &'static str = Box::leak(format!("{path}/").into_boxed_str());
        for path in [path, slashed] {
            table.push(route(Method::GET, path, access, get(handler)));
            table.push(route(Method::POST, path, access, post(handler)));
        }
    }
    for path in ["/api/2.0/export", "/api/2.0/export/"] {
        table.push(route(Method::GET, path, Access::Scope(Export), get(export::handle)));
    }
    for path in ["/api/2.0/engage", "/api/2.0/engage/"] {
        // Profile listings are user-level rows: the export permission.
        table.push(route(Method::GET, path, Access::Scope(Export), get(engage_query::handle)));
        table.push(route(Method::POST, path, Access::Scope(Export), post(engage_query::handle)));
    }
    table.extend([
        route(Method::POST, "/api/v1/query", Access::Scope(Read), post(query::run)),
        route(Method::GET, "/api/v1/openapi.json", Access::Public, get(query::openapi)),
        route(Method::GET, "/api/v1/cohorts", Access::Scope(Read), get(query::list_cohorts)),
        route(Method::GET, "/api/v1/events/names", Access::Scope(Read), get(query::event_names)),
        route(Method::GET, "/api/v1/events/live", Access::Scope(Read), get(query::live_events)),
        route(Method::GET, "/api/v1/dashboards", Access::Scope(Read), get(dashboards::list)),
        route(Method::POST, "/api/v1/dashboards", Access::Scope(Read), post(dashboards::create)),
        route(Method::GET, "/api/v1/dashboards/{id}", Access::Scope(Read), get(dashboards::get_one)),
        route(Method::PUT, "/api/v1/dashboards/{id}", Access::Scope(Read), put(dashboards::update)),
        route(Method::DELETE, "/api/v1/dashboards/{id}", Access::Scope(Read), delete(dashboards::delete)),
        route(Method::POST, "/api/v1/cohorts", Access::Scope(Read), post(query::create_cohort)),
        route(Method::DELETE, "/api/v1/cohorts/{id}", Access::Scope(Read), delete(query::delete_cohort)),
        route(Method::GET, "/api/v1/privacy/policy", Access::Scope(Read), get(privacy::get_policy)),
        route(Method::PUT, "/api/v1/privacy/policy", Access::Scope(Admin), put(privacy::put_policy)),
        route(Method::GET, "/api/v1/privacy/policy/history", Access::Scope(Read), get(privacy::policy_history)),
        route(Method::GET, "/api/v1/privacy/findings", Access::Scope(Read), get(privacy::findings)),
        route(Method::GET, "/api/v1/people/{distinct_id}", Access::Scope(Read), get(privacy::person)),
        route(Method::GET, "/api/v1/audit", Access::Scope(Admin), get(privacy::audit_entries)),
        route(Method::GET, "/api/v1/incident/exposure", Access::Scope(Admin), get(privacy::exposure)),
        route(Method::GET, "/api/v1/keys", Access::Scope(Admin), get(keys::list)),
        route(Method::POST, "/api/v1/keys", Access::Scope(Admin), post(keys::create)),
        route(Method::POST, "/api/v1/keys/{id}/disable", Access::Scope(Admin), post(keys::disable)),
        route(Method::POST, "/api/v1/keys/{id}/rotate", Access::Scope(Admin), post(keys::rotate)),
        route(Method::GET, "/api/v1/network/blocked", Access::Scope(Admin), get(keys::blocked)),
        route(Method::POST, "/api/v1/incident/contain", Access::Scope(Admin), post(operations::contain)),
        route(Method::POST, "/api/v1/incident/lift", Access::Scope(Admin), post(operations::lift)),
        route(Method::POST, "/api/v1/incident/unfreeze", Access::Session, post(operations::unfreeze)),
        route(Method::GET, "/api/v1/project", Access::Scope(Read), get(operations::get_project)),
        route(Method::PUT, "/api/v1/project", Access::Scope(Admin), put(operations::put_project)),
        route(Method::POST, "/api/v1/project/rotate-token", Access::Scope(Admin), post(operations::rotate_token)),
        route(Method::POST, "/api/v1/project/rotate-secret", Access::Scope(Admin), post(operations::rotate_secret)),
        route(Method::POST, "/api/v1/canaries", Access::Scope(Admin), post(privacy::create_canaries)),
        route(Method::GET, "/api/v1/alerts", Access::Scope(Admin), get(privacy::list_alerts)),
        route(Method::GET, "/api/v1/alerts/rules", Access::Scope(Admin), get(guardrails::get_alert_rules)),
        route(Method::PUT, "/api/v1/alerts/rules/{rule}", Access::Scope(Admin), put(guardrails::put_alert_rule)),
        route(Method::GET, "/api/v1/exports/settings", Access::Scope(Admin), get(guardrails::get_export_settings)),
        route(Method::PUT, "/api/v1/exports/settings", Access::Scope(Admin), put(guardrails::put_export_settings)),
        route(Method::GET, "/api/v1/exports/requests", Access::Scope(Admin), get(guardrails::list_export_requests)),
        route(Method::POST, "/api/v1/exports/requests/{id}/approve", Access::Session, post(guardrails::approve_export)),
        route(Method::POST, "/api/v1/exports/requests/{id}/refuse", Access::Session, post(guardrails::refuse_export)),
        route(Method::POST, "/api/app/data-deletions/v3.0", Access::Scope(Admin), post(privacy::create_deletion)),
        route(Method::POST, "/api/app/data-deletions/v3.0/", Access::Scope(Admin), post(privacy::create_deletion)),
        route(Method::GET, "/api/app/data-deletions/v3.0/{task_id}", Access::Scope(Admin), get(privacy::deletion_status)),
        route(Method::DELETE, "/api/app/data-deletions/v3.0/{task_id}", Access::Scope(Admin), delete(privacy::cancel_deletion)),
        route(Method::POST, "/api/app/data-retrievals/v3.0", Access::Scope(Export), post(privacy::create_retrieval)),
        route(Method::POST, "/api/app/data-retrievals/v3.0/", Access::Scope(Export), post(privacy::create_retrieval)),
        route(Method::GET, "/api/app/data-retrievals/v3.0/{task_id}", Access::Scope(Export), get(privacy::retrieval_status)),
        route(Method::POST, "/api/v1/auth/enrol/start", Access::Public, post(auth_routes::enrol_start)),
        route(Method::POST, "/api/v1/auth/enrol/finish", Access::Public, post(auth_routes::enrol_finish)),
        route(Method::POST, "/api/v1/auth/login/start", Access::Public, post(auth_routes::login_start)),
        route(Method::POST, "/api/v1/auth/login/finish", Access::Public, post(auth_routes::login_finish)),
        route(Method::POST, "/api/v1/auth/recover", Access::Public, post(auth_routes::recover)),
        route(Method::POST, "/api/v1/auth/password", Access::Session, post(auth_routes::set_password)),
        route(Method::POST, "/api/v1/auth/password/login", Access::Public, post(auth_routes::password_login)),
        route(Method::POST, "/api/v1/auth/step-up/start", Access::Session, post(auth_routes::step_up_start)),
        route(Method::POST, "/api/v1/auth/step-up/finish", Access::Session, post(auth_routes::step_up_finish)),
        route(Method::POST, "/api/v1/auth/logout", Access::Session, post(auth_routes::logout)),
        route(Method::GET, "/api/v1/auth/me", Access::Session, get(auth_routes::me)),
        route(Method::GET, "/api/v1/auth/sessions", Access::Session, get(auth_routes::my_sessions)),
        route(Method::DELETE, "/api/v1/auth/sessions/{id}", Access::Session, delete(auth_routes::revoke_session)),
        route(Method::GET, "/api/v1/auth/passkeys", Access::Session, get(auth_routes::my_passkeys)),
        route(Method::POST, "/api/v1/auth/passkeys", Access::Session, post(auth_routes::add_passkey)),
        route(Method::DELETE, "/api/v1/auth/passkeys/{id}", Access::Session, delete(auth_routes::remove_passkey)),
        route(Method::GET, "/api/v1/admin/members", Access::Session, get(auth_routes::list_members)),
        route(Method::POST, "/api/v1/admin/members", Access::Session, post(auth_routes::invite_member)),
        route(Method::POST, "/api/v1/admin/members/{id}", Access::Session, post(auth_routes::change_member)),
        route(Method::POST, "/api/v1/admin/members/{id}/disable", Access::Session, post(auth_routes::disable_member)),
        route(Method::GET, "/", Access::Public, get(dashboard::page)),
        route(Method::GET, "/enrol", Access::Public, get(dashboard::page)),
        route(Method::GET, "/assets/{file}", Access::Public, get(dashboard::asset)),
        route(Method::GET, "/healthz", Access::Public, get(ops::healthz)),
        route(Method::GET, "/readyz", Access::Public, get(ops::readyz)),
        route(Method::GET, "/metrics", Access::Public, get(ops::metrics)),
    ]);
    table
}

/// Every route's rule (for the authorisation matrix test and the docs).
pub fn route_rules() -> Vec<RouteRule> {
    route_table().into_iter().map(|r| r.rule).collect()
}

pub(crate) fn router(state: AppState) -> Router {
    // mixpanel-browser sends XHRs with credentials: the exact Origin must be
    // echoed with Allow-Credentials. Ingestion carries no ambient authority
    // (the token is in the payload), so any origin may send.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(std::time::Duration::from_secs(86_400));
    let mut ingestion = Router::new();
    let mut api = Router::new();
    let mut by_path: Vec<(&'static str, MethodRouter<AppState>, bool)> = Vec::new();
    for route in route_table() {
        match by_path.iter_mut().find(|(path, _, _)| *path == route.rule.path) {
            Some((_, methods, _)) => *methods = std::mem::take(methods).merge(route.handler),
            None => by_path.push((route.rule.path, route.handler, route.rule.access == Access::Token)),
        }
    }
    for (path, methods, is_ingestion) in by_path {
        if is_ingestion {
            ingestion = ingestion.route(path, methods);
        } else {
            api = api.route(path, methods);
        }
    }
    Router::new()
        .merge(ingestion.layer(cors))
        .merge(api)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), refuse_blocked))
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Addresses on the blocklist get nothing, ingestion included.
async fn refuse_blocked(axum::extract::State(state): axum::extract::State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let address = request::RequestFacts::from_parts(&parts, &state.inner).client_ip;
    if address.is_some_and(|ip| state.inner.is_blocked(ip)) {
        metrics::counter!("hearth_blocked_requests_total").increment(1);
        return crate::error::ApiError::Forbidden("this address is blocked".to_owned()).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Headers every response carries: no script may run from an API answer,
/// no page may frame one, no type sniffing, no referrer.
async fn security_headers(axum::extract::State(state): axum::extract::State<AppState>, request: Request, next: Next) -> Response {
    use axum::http::{header, HeaderValue};
    // A Basic challenge makes a browser pop up a password dialog (and a
    // headless one wait for ever): pages signed in by cookie never get one.
    let from_page = request.headers().contains_key("sec-fetch-mode") || request.headers().contains_key(header::COOKIE);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if from_page {
        headers.remove(header::WWW_AUTHENTICATE);
    }
    // The dashboard's pages set their own (script and styles from this origin).
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if state.inner.config.tls {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    response
}

async fn not_found() -> Response {
    crate::error::reply_response(mixpanel::error_reply(404, "no such endpoint")).into_response()
}

/// Logs method, path, status and latency: never the query string (it carries
/// the payload), the client address or any header.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), latency_ms, "request");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), latency_ms, "request");
    }
    if status == StatusCode::NOT_FOUND {
        metrics::counter!("hearth_http_not_found_total").increment(1);
    }
    response
}
