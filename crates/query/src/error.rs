//! Why a report could not be computed.

/// The crate's error. `BadSpec` is the client's fault (HTTP 400); the others
/// are the server's.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    BadSpec(String),
    #[error("cohort {0} does not exist")]
    UnknownCohort(i64),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Meta(#[from] meta::Error),
    /// The report, or one of its options, is not available on this backend.
    #[error("{0}")]
    Unsupported(String),
    /// The external event database failed.
    #[error("the event database failed: {0}")]
    Backend(String),
}

impl QueryError {
    pub(crate) fn bad(message: impl Into<String>) -> QueryError {
        QueryError::BadSpec(message.into())
    }

    /// True when the request, not the server, is at fault.
    pub fn is_client_error(&self) -> bool {
        matches!(self, QueryError::BadSpec(_) | QueryError::UnknownCohort(_))
    }
}
