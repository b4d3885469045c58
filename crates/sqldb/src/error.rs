//! Errors of both engines, and `optional()` for "no row is not an error".

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgresql: {message}")]
    Postgres {
        message: String,
        /// The SQLSTATE, when the server answered with one.
        code: Option<String>,
    },
    #[error("cannot connect to postgresql at {target}: {message}")]
    Connect { target: String, message: String },
    #[error("the statement returned no rows")]
    NoRows,
    #[error("column {column}: cannot read {found} as {expected}")]
    Conversion { column: usize, expected: &'static str, found: &'static str },
    #[error("the connection's worker thread is gone")]
    WorkerGone,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A unique, foreign-key, not-null or check constraint refused the write.
    pub fn is_constraint_violation(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => failure.code == rusqlite::ErrorCode::ConstraintViolation,
            Error::Postgres { code: Some(code), .. } => code.starts_with("23"),
            _ => false,
        }
    }
}

/// `query_row(...).optional()`: no row becomes `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(Error::NoRows) | Err(Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => Ok(None),
            Err(error) => Err(error),
        }
    }
}
