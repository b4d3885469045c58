//! The route table, kept in one place so that every endpoint and its rule is
//! visible together.

mod engage_query;
mod export;
mod ingest;
mod ops;
mod privacy;
mod profiles;
mod query;
mod request;

pub(crate) fn request_facts(parts: &axum::http::request::Parts, inner: &crate::state::Inner) -> request::RequestFacts {
    request::RequestFacts::from_parts(parts, inner)
}

use crate::state::AppState;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use mixpanel::Endpoint;
use std::time::Instant;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

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
    for endpoint in [Endpoint::Track, Endpoint::Engage, Endpoint::Groups, Endpoint::Import] {
        let handler = move |state, request| ingest::handle(state, endpoint, request);
        let path = endpoint.path();
        ingestion = ingestion.route(path, get(handler).post(handler)).route(&format!("{path}/"), get(handler).post(handler));
    }
    let api = Router::new()
        .route("/api/2.0/export", get(export::handle))
        .route("/api/2.0/export/", get(export::handle))
        .route("/api/2.0/engage", get(engage_query::handle).post(engage_query::handle))
        .route("/api/2.0/engage/", get(engage_query::handle).post(engage_query::handle))
        .route("/api/v1/query", axum::routing::post(query::run))
        .route("/api/v1/openapi.json", get(query::openapi))
        .route("/api/v1/cohorts", get(query::list_cohorts).post(query::create_cohort))
        .route("/api/v1/cohorts/{id}", axum::routing::delete(query::delete_cohort))
        .route("/api/v1/privacy/policy", get(privacy::get_policy).put(privacy::put_policy))
        .route("/api/v1/privacy/policy/history", get(privacy::policy_history))
        .route("/api/v1/privacy/findings", get(privacy::findings))
        .route("/api/v1/people/{distinct_id}", get(privacy::person))
        .route("/api/v1/audit", get(privacy::audit_entries))
        .route("/api/app/data-deletions/v3.0", axum::routing::post(privacy::create_deletion))
        .route("/api/app/data-deletions/v3.0/", axum::routing::post(privacy::create_deletion))
        .route("/api/app/data-deletions/v3.0/{task_id}", get(privacy::deletion_status).delete(privacy::cancel_deletion))
        .route("/api/app/data-retrievals/v3.0", axum::routing::post(privacy::create_retrieval))
        .route("/api/app/data-retrievals/v3.0/", axum::routing::post(privacy::create_retrieval))
        .route("/api/app/data-retrievals/v3.0/{task_id}", get(privacy::retrieval_status));
    let operations = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    Router::new()
        .merge(ingestion.layer(cors))
        .merge(api)
        .merge(operations)
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
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
