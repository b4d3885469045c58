//! The rules, their defaults, and what an organisation may set per rule:
//! on or off, a threshold, and whether the server acts on its own.

use crate::error::AlertingError;
use serde::{Deserialize, Serialize};

/// Something that looks like misuse of a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A canary profile (honeytoken) was returned.
    Canary,
    /// A credential exported more rows today than its threshold times its
    /// own daily baseline.
    ExportVolume,
    /// A credential was used from a country it was never used from.
    NewCountry,
    /// Data was read at an hour when the organisation hardly ever reads.
    UnusualHours,
    /// Many failed sign-ins for one account or from one address.
    FailedLogins,
    /// A key was used from an address outside its allowlist.
    KeyAllowlist,
}

impl Rule {
    pub const ALL: [Rule; 6] = [Rule::Canary, Rule::ExportVolume, Rule::NewCountry, Rule::UnusualHours, Rule::FailedLogins, Rule::KeyAllowlist];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Canary => "canary",
            Rule::ExportVolume => "export_volume",
            Rule::NewCountry => "new_country",
            Rule::UnusualHours => "unusual_hours",
            Rule::FailedLogins => "failed_logins",
            Rule::KeyAllowlist => "key_allowlist",
        }
    }

    pub fn parse(text: &str) -> Result<Rule, AlertingError> {
        Rule::ALL.into_iter().find(|rule| rule.as_str() == text).ok_or_else(|| AlertingError::UnknownRule(text.to_owned()))
    }

    pub fn describe(self) -> &'static str {
        match self {
            Rule::Canary => "a canary profile was touched",
            Rule::ExportVolume => "export volume far above the credential's baseline",
            Rule::NewCountry => "credential used from a new country",
            Rule::UnusualHours => "data read at an unusual hour",
            Rule::FailedLogins => "many failed sign-ins",
            Rule::KeyAllowlist => "key used from outside its allowlist",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::Canary | Rule::ExportVolume => Severity::Critical,
            Rule::NewCountry | Rule::FailedLogins | Rule::KeyAllowlist => Severity::High,
            Rule::UnusualHours => Severity::Medium,
        }
    }

    /// What the threshold means for this rule, for help texts.
    pub fn threshold_meaning(self) -> &'static str {
        match self {
            Rule::Canary | Rule::NewCountry | Rule::KeyAllowlist => "unused",
            Rule::ExportVolume => "multiple of the credential's mean daily export rows over the previous 14 days",
            Rule::UnusualHours => "percent of the organisation's reads (last 28 days) below which an hour of day is unusual",
            Rule::FailedLogins => "failed sign-ins within 15 minutes, per account or per address",
        }
    }

    /// The settings an organisation starts with: every rule on; only the
    /// canary acts by itself (a canary is never touched by honest work).
    pub fn default_settings(self) -> RuleSettings {
        let (action, threshold) = match self {
            Rule::Canary => (Action::Revoke, 0.0),
            Rule::ExportVolume => (Action::None, 10.0),
            Rule::UnusualHours => (Action::None, 1.0),
            Rule::FailedLogins => (Action::None, 10.0),
            Rule::NewCountry | Rule::KeyAllowlist => (Action::None, 0.0),
        };
        RuleSettings { rule: self, enabled: true, action, threshold }
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What the server does by itself when a rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Alert only.
    None,
    /// Revoke the session or disable the key that triggered the alert.
    Revoke,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Revoke => "revoke",
        }
    }

    pub fn parse(text: &str) -> Result<Action, AlertingError> {
        match text {
            "none" => Ok(Action::None),
            "revoke" => Ok(Action::Revoke),
            other => Err(AlertingError::UnknownAction(other.to_owned())),
        }
    }
}

/// One rule as an organisation set it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RuleSettings {
    pub rule: Rule,
    pub enabled: bool,
    pub action: Action,
    pub threshold: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_actions_round_trip_through_their_names() {
        for rule in Rule::ALL {
            assert_eq!(Rule::parse(rule.as_str()).unwrap(), rule);
            assert_eq!(serde_json::to_value(rule).unwrap(), serde_json::json!(rule.as_str()));
        }
        assert!(matches!(Rule::parse("bulk"), Err(AlertingError::UnknownRule(_))));
        assert_eq!(Action::parse("revoke").unwrap(), Action::Revoke);
        assert!(Action::parse("delete").is_err());
    }

    #[test]
    fn only_the_canary_acts_by_default() {
        let acting: Vec<Rule> = Rule::ALL.into_iter().filter(|r| r.default_settings().action == Action::Revoke).collect();
        assert_eq!(acting, vec![Rule::Canary]);
        assert!(Rule::ALL.iter().all(|r| r.default_settings().enabled));
    }
}
