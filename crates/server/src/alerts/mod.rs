//! Alerts raised while answering. Each rule's check lives in [`checks`];
//! this module raises what they find: it honours the organisation's
//! settings for the rule (on or off, automatic action), takes the action
//! (the key that triggered it disabled, or the session revoked, so the
//! next request fails), stores and audits the alert, and queues it for
//! delivery by webhook and mail.

mod checks;

pub(crate) use checks::{canaries_touched, canary_touched, check_export_volume, check_read, failed_sign_in, key_outside_allowlist};

use crate::error::ApiError;
use crate::state::Inner;
use alerting::{Action, AlertMessage, FailureWindow, HourHistogram, Rule, RuleSettings};
use audit::{Actor, NewEntry, Outcome};
use events::ProjectId;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};

/// The same rule for the same credential alerts at most once in this long
/// (the canary excepted: every touch of one is reported).
const REPEAT_AFTER_MS: i64 = 10 * 60_000;

/// What the alert checks remember between requests: in memory only (no
/// address is ever written down).
pub(crate) struct AlertState {
    pub(crate) dispatcher: alerting::Dispatcher,
    rules: RwLock<(u64, Vec<RuleSettings>)>,
    recent: Mutex<HashMap<(Rule, String), i64>>,
    countries: Mutex<HashSet<(String, String)>>,
    hours: Mutex<Option<(i64, HourHistogram)>>,
    failures: Mutex<FailureWindow>,
}

impl AlertState {
    pub(crate) fn new(delivery: alerting::Delivery) -> AlertState {
        AlertState {
            dispatcher: alerting::Dispatcher::start(delivery),
            rules: RwLock::new((u64::MAX, Vec::new())),
            recent: Mutex::new(HashMap::new()),
            countries: Mutex::new(HashSet::new()),
            hours: Mutex::new(None),
            failures: Mutex::new(FailureWindow::new(checks::FAILED_LOGIN_WINDOW_MS)),
        }
    }
}

/// Every rule's settings: the defaults overlaid with what the organisation
/// stored (read again whenever the metadata changed, the CLI's changes too).
pub(crate) fn rule_settings(inner: &Inner) -> Result<Vec<RuleSettings>, ApiError> {
    let generation = inner.meta.policy_generation();
    {
        let cached = inner.alerts.rules.read().unwrap_or_else(|p| p.into_inner());
        if cached.0 == generation {
            return Ok(cached.1.clone());
        }
    }
    let settings = settings_from(&inner.meta)?;
    *inner.alerts.rules.write().unwrap_or_else(|p| p.into_inner()) = (generation, settings.clone());
    Ok(settings)
}

/// The rules as stored, over the defaults; for the API and the CLI.
pub fn settings_from(meta: &meta::Meta) -> Result<Vec<RuleSettings>, meta::Error> {
    let stored = meta.alert_rules()?;
    Ok(Rule::ALL
        .into_iter()
        .map(|rule| {
            let mut settings = rule.default_settings();
            if let Some(row) = stored.iter().find(|row| row.rule == rule.as_str()) {
                settings.enabled = row.enabled;
                settings.action = Action::parse(&row.action).unwrap_or(settings.action);
                settings.threshold = row.threshold;
            }
            settings
        })
        .collect())
}

fn settings_of(inner: &Inner, rule: Rule) -> Result<RuleSettings, ApiError> {
    Ok(rule_settings(inner)?.into_iter().find(|s| s.rule == rule).unwrap_or_else(|| rule.default_settings()))
}

/// What set an alert off.
pub(crate) struct Trigger<'a> {
    pub(crate) rule: Rule,
    pub(crate) actor: &'a Actor,
    pub(crate) project: Option<ProjectId>,
    pub(crate) country: Option<String>,
    pub(crate) detail: Value,
}

/// Raises an alert unless its rule is off or it just fired for the same
/// credential; returns the alert's id when raised.
pub(crate) fn raise(inner: &Inner, trigger: Trigger<'_>) -> Result<Option<i64>, ApiError> {
    let settings = settings_of(inner, trigger.rule)?;
    if !settings.enabled {
        return Ok(None);
    }
    let credential = trigger.actor.label();
    let now = events::now_ms();
    if trigger.rule != Rule::Canary {
        let mut recent = inner.alerts.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() > 10_000 {
            recent.retain(|_, at| now - *at < REPEAT_AFTER_MS);
        }
        match recent.get(&(trigger.rule, credential.clone())) {
            Some(at) if now - at < REPEAT_AFTER_MS => return Ok(None),
            _ => recent.insert((trigger.rule, credential.clone()), now),
        };
    }
    let action_taken = match settings.action {
        Action::Revoke => revoke(inner, trigger.actor)?,
        Action::None => None,
    };
    let mut detail = trigger.detail;
    if let Value::Object(map) = &mut detail {
        map.insert("credential".to_owned(), Value::from(credential.clone()));
        map.insert("member".to_owned(), trigger.actor.user.clone().map_or(Value::Null, Value::from));
        map.insert("country".to_owned(), trigger.country.clone().map_or(Value::Null, Value::from));
    }
    let severity = trigger.rule.severity();
    let id = inner.meta.raise_alert(trigger.project, trigger.rule.as_str(), severity.as_str(), &credential, &detail.to_string(), action_taken)?;
    let mut entry = NewEntry::new(trigger.actor.clone(), &format!("alert.{}", trigger.rule.as_str()), Outcome::Ok)
        .country(trigger.country.clone())
        .detail(serde_json::json!({"alert": id, "severity": severity.as_str(), "action": action_taken, "detail": detail}));
    if let Some(project) = trigger.project {
        entry = entry.project(project.0);
    }
    inner.audit.append(entry).map_err(|e| ApiError::Internal(e.to_string()))?;
    metrics::counter!("hearth_alerts_total", "rule" => trigger.rule.as_str()).increment(1);
    tracing::warn!(rule = trigger.rule.as_str(), credential = %credential, action = ?action_taken, "ALERT: {}", trigger.rule.describe());
    inner.alerts.dispatcher.send(AlertMessage {
        id,
        rule: trigger.rule,
        severity,
        credential,
        project: trigger.project.map(|p| p.0),
        action_taken: action_taken.map(str::to_owned),
        detail,
        created_ms: now,
    });
    Ok(Some(id))
}

/// Disables the key or revokes the session behind `actor`.
fn revoke(inner: &Inner, actor: &Actor) -> Result<Option<&'static str>, ApiError> {
    match actor.kind.as_str() {
        "api_key" => {
            let id = actor.id.rsplit('#').next().and_then(|n| n.parse::<i64>().ok());
            Ok(id.map(|id| inner.meta.disable_api_key(id)).transpose()?.map(|_| "key disabled"))
        }
        "session" => {
            inner.meta.revoke_sessions(Some(&actor.id), None)?;
            Ok(Some("session revoked"))
        }
        _ => Ok(None),
    }
}
