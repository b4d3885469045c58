#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("metadata database error: {0}")]
    Database(#[from] sqldb::Error),
    #[error("a project named {0:?} already exists")]
    ProjectExists(String),
    #[error("no project named {0:?}")]
    NoSuchProject(String),
    #[error("invalid project name {0:?}: use 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidProjectName(String),
    #[error("invalid {what} name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidName { what: &'static str, name: String },
    #[error("{0} already exists")]
    Exists(String),
    #[error("no {0}")]
    NotFound(String),
    #[error("metadata io error on {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}
