/// Why protecting, revealing or erasing failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    #[error(transparent)]
    Meta(#[from] meta::Error),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Policy(#[from] privacy::policy::PolicyError),
    #[error(transparent)]
    Seal(#[from] privacy::apply::SealError),
    #[error("the event database refused: {0}")]
    External(String),
    #[error("the stored privacy policy v{version} no longer parses: {message}")]
    StoredPolicy { version: i64, message: String },
}
