//! The privacy policy of a project: what may be kept of each event and
//! property, written as a document (TOML for people, JSON over the API),
//! checked here into a [`Policy`] that ingest applies before anything is
//! written.
//!
//! A rule names one action per property: keep, drop, hash (keyed, so joins
//! and counts still work but the value is never stored), encrypt (under the
//! person's own key, see `keys`), coarsen (URLs to origin plus path or
//! origin only, referrers to their domain, timestamps to the hour, numbers
//! to buckets) or truncate. Event rules can drop whole events and, in
//! allowlist mode, declare the only events and properties accepted.
//!
//! The defaults aim at the fields of the 2025 incident: names, emails and
//! phone numbers encrypted; geo to country; page URLs without their query
//! string except campaign parameters; referrers as their domain.

use crate::pii::PiiKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a policy document was refused; the message names the place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy document: {0}")]
    Syntax(String),
    #[error("policy rule for {place}: {message}")]
    Rule { place: String, message: String },
}

/// Everything not ruled is kept ("open"), or only what is declared is
/// accepted ("allowlist"); the rest is dropped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaMode {
    #[default]
    Open,
    Allowlist,
}

/// What happens to personal data found in free-form values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiAction {
    /// Replaced by a placeholder such as `[email]`.
    #[default]
    Redact,
    /// Replaced by its keyed-hash token.
    Hash,
    /// The whole property is dropped.
    Drop,
    /// Not scanned.
    Off,
}

/// How precisely location is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeoLevel {
    None,
    #[default]
    Country,
    Region,
    City,
}

impl GeoLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            GeoLevel::None => "none",
            GeoLevel::Country => "country",
            GeoLevel::Region => "region",
            GeoLevel::City => "city",
        }
    }
}

/// Coarsening targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coarsening {
    /// `scheme://host/path`, query kept only for `utm_*` parameters.
    UrlPath,
    /// `scheme://host`.
    UrlOrigin,
    /// The host alone (for referrers).
    Domain,
    /// A timestamp (seconds or milliseconds, or ISO 8601 text) cut to the hour.
    Hour,
}

/// One property's rule, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Keep,
    Drop,
    Hash,
    Encrypt,
    Coarsen(Coarsening),
    /// Numbers become the lower bound of their bucket.
    Buckets(Vec<f64>),
    /// Strings cut to this many characters.
    Truncate(usize),
}

/// The rule as written: a name ("keep", "drop", "hash", "encrypt") or a table
/// with exactly one of `coarsen`, `buckets`, `truncate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RuleText {
    Name(String),
    Table(RuleTable),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coarsen: Option<Coarsening>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<usize>,
}

/// An event's rules: drop the whole event, or rule its properties.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventText {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, RuleText>,
}

/// How long data is kept; absent: for ever. Enforced by a background job
/// that drops whole parts and rewrites partial ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Events older than this many days (by event time) are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_days: Option<u32>,
    /// Profiles not updated for this many days are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles_days: Option<u32>,
}

/// The policy document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(default)]
    pub schema: SchemaMode,
    /// Replace distinct ids (and the device, user and alias ids that identity
    /// merge reads) by keyed pseudonyms before they are stored.
    #[serde(default)]
    pub pseudonymise_ids: bool,
    #[serde(default)]
    pub pii_scan: PiiAction,
    /// Per kind of finding, overriding `pii_scan`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pii_actions: BTreeMap<String, PiiAction>,
    #[serde(default)]
    pub geo: GeoLevel,
    #[serde(default)]
    pub retention: Retention,
    /// Rules for a property in every event and in profiles.
    #[serde(default)]
    pub properties: BTreeMap<String, RuleText>,
    /// Rules for one event's properties (they win over `properties`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub events: BTreeMap<String, EventText>,
}

/// Keys whose values identify a person directly: encrypted by default.
pub const PERSONAL_KEYS: &[&str] =
    &["$email", "email", "$name", "name", "$first_name", "$last_name", "first_name", "last_name", "$phone", "phone"];

impl Default for PolicyDocument {
    fn default() -> Self {
        let mut properties: BTreeMap<String, RuleText> = PERSONAL_KEYS.iter().map(|key| ((*key).to_owned(), RuleText::Name("encrypt".to_owned()))).collect();
        let coarsen = |to| RuleText::Table(RuleTable { coarsen: Some(to), ..RuleTable::default() });
        properties.insert("$current_url".to_owned(), coarsen(Coarsening::UrlPath));
        properties.insert("$referrer".to_owned(), coarsen(Coarsening::Domain));
        properties.insert("$initial_referrer".to_owned(), coarsen(Coarsening::Domain));
        PolicyDocument {
            schema: SchemaMode::Open,
            pseudonymise_ids: false,
            pii_scan: PiiAction::Redact,
            pii_actions: BTreeMap::new(),
            geo: GeoLevel::Country,
            retention: Retention::default(),
            properties,
            events: BTreeMap::new(),
        }
    }
}

impl PolicyDocument {
    pub fn from_toml(text: &str) -> Result<PolicyDocument, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))
    }

    pub fn from_json(value: serde_json::Value) -> Result<PolicyDocument, PolicyError> {
        serde_json::from_value(value).map_err(|e| PolicyError::Syntax(e.to_string()))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// The checked policy, ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub schema: SchemaMode,
    pub retention: Retention,
    pub pseudonymise_ids: bool,
    pub geo: GeoLevel,
    pii_default: PiiAction,
    pii_by_kind: BTreeMap<PiiKind, PiiAction>,
    properties: BTreeMap<String, Rule>,
    events: BTreeMap<String, EventRules>,
    document: PolicyDocument,
}

#[derive(Debug, Clone, PartialEq)]
struct EventRules {
    drop: bool,
    properties: BTreeMap<String, Rule>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::check(PolicyDocument::default()).expect("the default policy is valid")
    }
}

fn check_rule(place: &str, text: &RuleText) -> Result<Rule, PolicyError> {
    let error = |message: String| PolicyError::Rule { place: place.to_owned(), message };
    match text {
        RuleText::Name(name) => match name.as_str() {
            "keep" => Ok(Rule::Keep),
            "drop" => Ok(Rule::Drop),
            "hash" => Ok(Rule::Hash),
            "encrypt" => Ok(Rule::Encrypt),
            other => Err(error(format!("unknown action {other:?}; expected keep, drop, hash, encrypt, or a table with coarsen, buckets or truncate"))),
        },
        RuleText::Table(table) => match (table.coarsen, &table.buckets, table.truncate) {
            (Some(to), None, None) => Ok(Rule::Coarsen(to)),
            (None, Some(buckets), None) => {
                if buckets.is_empty() || buckets.windows(2).any(|w| w[0] >= w[1]) || buckets.iter().any(|b| !b.is_finite()) {
                    return Err(error("buckets must be finite, increasing and not empty".to_owned()));
                }
                Ok(Rule::Buckets(buckets.clone()))
            }
            (None, None, Some(length)) if length > 0 => Ok(Rule::Truncate(length)),
            (None, None, Some(_)) => Err(error("truncate must be at least 1".to_owned())),
            _ => Err(error("a rule table holds exactly one of coarsen, buckets, truncate".to_owned())),
        },
    }
}

impl Policy {
    /// Checks a document; every error names its place.
    pub fn check(document: PolicyDocument) -> Result<Policy, PolicyError> {
        let properties = document.properties.iter().map(|(key, text)| Ok((key.clone(), check_rule(&format!("property {key:?}"), text)?))).collect::<Result<_, PolicyError>>()?;
        let mut events = BTreeMap::new();
        for (name, event) in &document.events {
            let rules = event
                .properties
                .iter()
                .map(|(key, text)| Ok((key.clone(), check_rule(&format!("event {name:?} property {key:?}"), text)?)))
                .collect::<Result<_, PolicyError>>()?;
            events.insert(name.clone(), EventRules { drop: event.drop, properties: rules });
        }
        let mut pii_by_kind = BTreeMap::new();
        for (name, action) in &document.pii_actions {
            let kind = PiiKind::parse(name).ok_or_else(|| PolicyError::Rule {
                place: format!("pii_actions.{name}"),
                message: format!("unknown kind; expected one of {}", PiiKind::ALL.map(PiiKind::as_str).join(", ")),
            })?;
            pii_by_kind.insert(kind, *action);
        }
        if document.retention.events_days == Some(0) || document.retention.profiles_days == Some(0) {
            return Err(PolicyError::Rule { place: "retention".to_owned(), message: "days must be at least 1 (leave it out to keep data for ever)".to_owned() });
        }
        Ok(Policy {
            schema: document.schema,
            retention: document.retention,
            pseudonymise_ids: document.pseudonymise_ids,
            geo: document.geo,
            pii_default: document.pii_scan,
            pii_by_kind,
            properties,
            events,
            document,
        })
    }

    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    /// What to do with personal data of `kind` found in a free-form value.
    pub fn pii_action(&self, kind: PiiKind) -> PiiAction {
        self.pii_by_kind.get(&kind).copied().unwrap_or(self.pii_default)
    }

    pub fn scans_pii(&self) -> bool {
        self.pii_default != PiiAction::Off || self.pii_by_kind.values().any(|a| *a != PiiAction::Off)
    }

    /// Whether events of this name are accepted.
    pub fn accepts_event(&self, name: &str) -> bool {
        match self.events.get(name) {
            Some(rules) => !rules.drop,
            None => self.schema == SchemaMode::Open,
        }
    }

    /// The rule for a property of an event (`None` for profiles): the event's
    /// own rule, else the global one, else keep (open) or drop (allowlist).
    pub fn rule_for(&self, event: Option<&str>, key: &str) -> &Rule {
        self.property_rules(event).rule_for(key)
    }

    /// The rules for the properties of one event (`None` for profiles), with
    /// the event's own rules looked up once for all its properties.
    pub fn property_rules(&self, event: Option<&str>) -> PropertyRules<'_> {
        PropertyRules { policy: self, event: event.and_then(|name| self.events.get(name)) }
    }
}

/// [`Policy::rule_for`] for the properties of one event.
pub struct PropertyRules<'p> {
    policy: &'p Policy,
    event: Option<&'p EventRules>,
}

impl<'p> PropertyRules<'p> {
    /// The event's own rule, else the global one, else keep (open) or drop
    /// (allowlist).
    pub fn rule_for(&self, key: &str) -> &'p Rule {
        if let Some(rule) = self.event.and_then(|rules| rules.properties.get(key)) {
            return rule;
        }
        if let Some(rule) = self.policy.properties.get(key) {
            return rule;
        }
        match self.policy.schema {
            SchemaMode::Open => &Rule::Keep,
            SchemaMode::Allowlist if is_server_derived(key) => &Rule::Keep,
            SchemaMode::Allowlist => &Rule::Drop,
        }
    }

    /// True when the property is ruled explicitly somewhere (an allowlist
    /// declaration).
    pub fn is_declared(&self, key: &str) -> bool {
        self.event.is_some_and(|rules| rules.properties.contains_key(key)) || self.policy.properties.contains_key(key)
    }
}

/// Properties the server derives itself, already coarsened: kept in
/// allowlist mode without a declaration, and never scanned for PII.
pub const SERVER_DERIVED_KEYS: &[&str] =
    &["mp_country_code", "$country_code", "$region", "$city", "$browser", "$browser_version", "$os", "$device", "$referring_domain", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];

pub fn is_server_derived(key: &str) -> bool {
    SERVER_DERIVED_KEYS.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_encrypts_personal_fields_and_coarsens_urls() {
        let policy = Policy::default();
        assert_eq!(policy.rule_for(Some("Signed Up"), "$email"), &Rule::Encrypt);
        assert_eq!(policy.rule_for(None, "name"), &Rule::Encrypt);
        assert_eq!(policy.rule_for(Some("x"), "$current_url"), &Rule::Coarsen(Coarsening::UrlPath));
        assert_eq!(policy.rule_for(Some("x"), "$referrer"), &Rule::Coarsen(Coarsening::Domain));
        assert_eq!(policy.rule_for(Some("x"), "plan"), &Rule::Keep);
        assert_eq!(policy.geo, GeoLevel::Country);
        assert!(policy.accepts_event("anything"));
        let round_trip = PolicyDocument::from_toml(&policy.document().to_toml()).unwrap();
        assert_eq!(&round_trip, policy.document());
    }

    #[test]
    fn documents_are_checked_with_the_place_named() {
        let text = r#"
schema = "allowlist"
pseudonymise_ids = true
pii_scan = "hash"
geo = "city"
[pii_actions]
card_number = "drop"
[properties]
comment = { truncate = 64 }
amount = { buckets = [0, 10, 100] }
[events."Signed Up".properties]
plan = "keep"
[events.Debug]
drop = true
"#;
        let policy = Policy::check(PolicyDocument::from_toml(text).unwrap()).unwrap();
        assert!(policy.accepts_event("Signed Up"));
        assert!(!policy.accepts_event("Debug"));
        assert!(!policy.accepts_event("Undeclared"));
        assert_eq!(policy.rule_for(Some("Signed Up"), "plan"), &Rule::Keep);
        assert_eq!(policy.rule_for(Some("Signed Up"), "other"), &Rule::Drop);
        assert_eq!(policy.rule_for(Some("Signed Up"), "$browser"), &Rule::Keep);
        assert_eq!(policy.rule_for(Some("Signed Up"), "comment"), &Rule::Truncate(64));
        assert_eq!(policy.pii_action(PiiKind::CardNumber), PiiAction::Drop);
        assert_eq!(policy.pii_action(PiiKind::Email), PiiAction::Hash);

        let bad = |text: &str| PolicyDocument::from_toml(text).and_then(Policy::check).unwrap_err().to_string();
        assert!(bad("[properties]\nx = \"shred\"").contains("property \"x\": unknown action \"shred\""));
        assert!(bad("[properties]\nx = { buckets = [10, 1] }").contains("increasing"));
        assert!(bad("[properties]\nx = { truncate = 3, coarsen = \"hour\" }").contains("exactly one"));
        assert!(bad("[pii_actions]\nsalary = \"drop\"").contains("pii_actions.salary"));
        assert!(bad("schema = \"closed\"").contains("policy document"));
        assert!(bad("colour = 1").contains("unknown field"));
    }
}
