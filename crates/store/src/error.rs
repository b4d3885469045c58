use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Wal(#[from] wal::Error),
    #[error("io error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("parquet error on {path}: {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("data corruption in {path}: {detail}")]
    DataCorruption { path: PathBuf, detail: String },
    #[error("the data directory {path} is in use by another hearth process (stop it first)")]
    Locked { path: PathBuf },
    #[error("a rewrite could not go on: {detail}")]
    Rewrite { detail: String },
    #[error("the external event database refused rows: {0}")]
    Sink(String),
    #[error("state derived from the events could not be made durable: {0}")]
    Dependent(String),
    #[error("the store stopped after an earlier write failure; restart to recover from the wal")]
    Stopped,
}

pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, Error>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, Error> {
        self.map_err(|source| Error::Io { path: path.to_path_buf(), source })
    }
}
