use std::path::PathBuf;

/// Why the key store refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key store database error: {0}")]
    Database(#[from] sqldb::Error),
    #[error("key store io error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the master key must live outside the data directory: {key} is inside {data}; move it (and the key store) elsewhere, e.g. beside the data directory")]
    InsideDataDir { key: PathBuf, data: PathBuf },
    #[error("the master key in {0} is not the one this key store was made with (fingerprint {1} expected); give the right key with --master-key-file or HEARTH_MASTER_KEY")]
    WrongMaster(String, String),
    #[error("the master key is malformed: {0}")]
    BadMaster(String),
    #[error("a wrapped key did not open: the key store is damaged or was edited ({0})")]
    Damaged(String),
    #[error("{0}")]
    Crypto(#[from] privacy::crypto::CryptoError),
}
