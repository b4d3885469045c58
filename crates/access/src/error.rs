/// Why an access operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("access configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Meta(#[from] meta::Error),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    /// Deliberately vague: which part was wrong is not told to the caller.
    #[error("sign-in failed")]
    SignInFailed,
    #[error("this enrolment link is unknown, used or expired: ask an owner for a new one")]
    BadEnrolment,
    #[error("the passkey ceremony is unknown or expired: start again")]
    NoCeremony,
    #[error("passkey verification failed: {0}")]
    WebAuthn(String),
    #[error("{0}")]
    Invalid(String),
}
