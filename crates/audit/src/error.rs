/// Why the audit log refused.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit database error: {0}")]
    Database(#[from] sqldb::Error),
    #[error("audit io error on {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("audit entry {seq} is unreadable: {detail}")]
    Corrupt { seq: u64, detail: String },
}
