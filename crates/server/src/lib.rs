//! The HTTP face of Hearth: Mixpanel's ingestion endpoints, raw export, the
//! profile query, and operations endpoints.
//!
//! Architecture invariant: this is the only crate that speaks HTTP. Handlers
//! are thin: they decode with the `mixpanel` crate, enrich with `enrich`,
//! write through `store` and `meta`, and map every failure to a response in
//! one place ([`error::ApiError`]). Bad input is a 4xx with a JSON reason,
//! never a 5xx or a panic. Nothing here logs a client address, a query
//! string, a request body or a credential.

mod alerts;
mod audit_trail;
mod auth;
mod client_ip;
mod config;
mod error;
mod rate_limit;
mod routes;
mod state;
pub mod tls;

pub use alerts::settings_from as alert_rule_settings;
pub use config::{EventsBackend, RateLimits, ServerConfig};
pub use routes::{APPROVAL_ROWS_SETTING, APPROVAL_USERS_SETTING};
pub use routes::{route_rules, Access, RouteRule};
pub use state::{AppState, Services};

use axum::Router;

/// Builds the application router.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

/// Serves HTTPS until the shutdown future completes.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = tls::TlsListener::new(listener, acceptor)?.tap_io(|_| {});
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Serves until the shutdown future completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
