//! Liveness, readiness and Prometheus metrics.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    // Ready once the store is open (it is, or the server would not listen)
    // and still accepting writes.
    match state.inner.store.append_ready() {
        true => (StatusCode::OK, "ready").into_response(),
        false => (StatusCode::SERVICE_UNAVAILABLE, "the event store stopped after a write failure").into_response(),
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let stats = state.inner.store.stats();
    metrics::gauge!("hearth_parts").set(stats.parts as f64);
    metrics::gauge!("hearth_part_bytes").set(stats.part_bytes as f64);
    metrics::gauge!("hearth_buffered_events").set(stats.buffered_events as f64);
    let body = state.inner.metrics.as_ref().map(|handle| handle.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
