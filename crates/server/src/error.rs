//! One error type for every handler, rendered in Mixpanel's JSON shape
//! (`{"code","error","status"}`). Internal causes are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the server is busy, retry later")]
    Busy,
    #[error("too many requests: retry in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("{message}")]
    QuotaExceeded { message: String, retry_after_seconds: u64 },
    /// The export crosses the organisation's threshold: a second owner
    /// must approve the request filed for it.
    #[error("this export of {} rows and {} people needs a second owner's approval (request {}, {}); retry with approval_id={} once approved", request.rows, request.users, request.id, request.status, request.id)]
    ApprovalRequired { request: Box<meta::ExportRequest> },
    #[error("the event store is unavailable")]
    Unavailable,
    /// Not available in this deployment (e.g. on the ClickHouse backend yet).
    #[error("{0}")]
    NotImplemented(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::ApprovalRequired { .. } => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Busy | ApiError::RateLimited { .. } | ApiError::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub(crate) fn reply_response(reply: mixpanel::Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (status, reply.body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(cause = %cause, "request failed");
        }
        let status = self.status();
        if let ApiError::ApprovalRequired { request } = &self {
            let body = serde_json::json!({"code": status.as_u16(), "error": self.to_string(), "status": "error", "approval_request": request});
            let mut response = (status, body.to_string()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return response;
        }
        let mut response = reply_response(mixpanel::error_reply(status.as_u16(), &self.to_string()));
        if matches!(self, ApiError::Busy) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::RateLimited { retry_after_seconds } | ApiError::QuotaExceeded { retry_after_seconds, .. } = &self
            && let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"hearth\""));
        }
        response
    }
}

impl From<meta::Error> for ApiError {
    fn from(error: meta::Error) -> Self {
        match error {
            // The caller's fault: said as such, never a 500.
            meta::Error::InvalidProjectName(_) | meta::Error::InvalidName { .. } => ApiError::BadRequest(error.to_string()),
            meta::Error::ProjectExists(_) | meta::Error::Exists(_) => ApiError::Conflict(error.to_string()),
            meta::Error::NoSuchProject(_) | meta::Error::NotFound(_) => ApiError::NotFound(error.to_string()),
            meta::Error::Database(_) | meta::Error::Io { .. } => ApiError::Internal(error.to_string()),
        }
    }
}

impl From<protect::ProtectError> for ApiError {
    fn from(error: protect::ProtectError) -> Self {
        match error {
            protect::ProtectError::Policy(e) => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<store::Error> for ApiError {
    fn from(error: store::Error) -> Self {
        match error {
            store::Error::Stopped => ApiError::Unavailable,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> Self {
        ApiError::Internal(error.to_string())
    }
}
