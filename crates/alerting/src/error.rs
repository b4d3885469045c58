/// Why an alert could not be delivered or a setting not taken.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error("unknown alert rule {0:?} (rules: canary, export_volume, new_country, unusual_hours, failed_logins, key_allowlist)")]
    UnknownRule(String),
    #[error("unknown action {0:?} (actions: none, revoke)")]
    UnknownAction(String),
    #[error("webhook delivery failed: {0}")]
    Webhook(String),
    #[error("mail delivery failed: {0}")]
    Mail(String),
    #[error("invalid mail address {0:?}")]
    Address(String),
}
