//! Alerts: the rules that decide when something looks like an attack, and
//! the delivery of each alert to people who can act on it.
//!
//! The server evaluates the rules where the facts are (an export's row
//! count, a request's country, a failed sign-in) and hands every alert it
//! raises to a [`Dispatcher`], which posts it to a webhook (JSON, signed
//! with HMAC-SHA256 so receivers can trust it) and mails it over SMTP, on
//! its own thread so that a slow receiver never slows an answer.

mod deliver;
mod error;
mod rules;
mod signature;
mod stats;

pub use deliver::{deliver, Delivery, Dispatcher, SmtpSecurity, SmtpSettings, WebhookSettings};
pub use error::AlertingError;
pub use rules::{Action, Rule, RuleSettings, Severity};
pub use signature::{sign, verify, SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub use stats::{daily_baseline, is_unusual_hour, FailureWindow, HourHistogram, MIN_HISTORY_READS, VOLUME_FLOOR_ROWS};

/// One raised alert, as delivered.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct AlertMessage {
    pub id: i64,
    pub rule: Rule,
    pub severity: Severity,
    /// The credential that triggered it (`api_key:name#id`, `session:…`).
    pub credential: String,
    pub project: Option<u32>,
    /// What the automatic action did, if any.
    pub action_taken: Option<String>,
    pub detail: serde_json::Value,
    pub created_ms: i64,
}

impl AlertMessage {
    /// A one-line summary, for mail subjects and logs.
    pub fn summary(&self) -> String {
        format!("[Hearth] {} alert: {} by {}", self.severity.as_str(), self.rule.describe(), self.credential)
    }
}
