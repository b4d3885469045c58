//! What every API handler answers with: JSON bodies, and blocking work
//! (SQLite, the store) moved off the async threads.

use crate::error::ApiError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// `value` as a JSON response.
pub(super) fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let mut response = (status, serde_json::to_vec(value).unwrap_or_default()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Runs blocking `work` on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await?
}
