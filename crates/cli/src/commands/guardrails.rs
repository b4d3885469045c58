//! `hearth alerts …` and `hearth exports …`: the alert rules and their
//! delivery, and the export approval thresholds, from the command line.
//! Changes are audited and hold on the server's next request (it rereads
//! settings whenever the metadata changed).

use crate::args::{AlertsCommand, ExportsCommand};
use crate::commands::{audit_cli, data_dir};
use crate::config::Config;
use alerting::{Action, Rule};
use serde_json::json;

pub(crate) fn run_alerts(config: &Config, command: AlertsCommand) -> anyhow::Result<()> {
    match command {
        AlertsCommand::List { data, json } => {
            let meta = crate::commands::open_meta(config, &data_dir(config, &data))?;
            for alert in meta.alerts(None)? {
                if json {
                    let detail: serde_json::Value = serde_json::from_str(&alert.detail).unwrap_or_default();
                    println!("{}", json!({"id": alert.id, "project": alert.project, "rule": alert.rule, "severity": alert.severity, "credential": alert.actor, "action_taken": alert.action_taken, "detail": detail, "created_ms": alert.created_ms}));
                } else {
                    println!("{:>5}  {}  {:<8}  {:<14}  {:<28}  {}", alert.id, crate::commands::api_keys::time_text(Some(alert.created_ms)), alert.severity, alert.rule, alert.actor, alert.action_taken.as_deref().unwrap_or("-"));
                }
            }
            Ok(())
        }
        AlertsCommand::Rules { data, json } => {
            let meta = crate::commands::open_meta(config, &data_dir(config, &data))?;
            for settings in server::alert_rule_settings(&meta)? {
                if json {
                    println!("{}", json!({"rule": settings.rule, "enabled": settings.enabled, "action": settings.action, "threshold": settings.threshold, "threshold_means": settings.rule.threshold_meaning()}));
                } else {
                    let threshold = if settings.rule.threshold_meaning() == "unused" { "-".to_owned() } else { format!("{} ({})", settings.threshold, settings.rule.threshold_meaning()) };
                    println!("{:<14} {:<8} action={:<7} threshold={threshold}", settings.rule.as_str(), if settings.enabled { "on" } else { "off" }, settings.action.as_str());
                }
            }
            Ok(())
        }
        AlertsCommand::Set { data, rule, enabled, action, threshold } => {
            let data = data_dir(config, &data);
            let meta = crate::commands::open_meta(config, &data)?;
            let rule = Rule::parse(&rule)?;
            let mut settings = server::alert_rule_settings(&meta)?.into_iter().find(|s| s.rule == rule).unwrap_or_else(|| rule.default_settings());
            if let Some(enabled) = enabled {
                settings.enabled = enabled;
            }
            if let Some(action) = action {
                settings.action = Action::parse(&action)?;
            }
            if let Some(threshold) = threshold {
                anyhow::ensure!(threshold.is_finite() && threshold >= 0.0, "--threshold must be a number of at least 0");
                settings.threshold = threshold;
            }
            meta.set_alert_rule(&meta::StoredRule { rule: rule.as_str().to_owned(), enabled: settings.enabled, action: settings.action.as_str().to_owned(), threshold: settings.threshold })?;
            audit_cli(config, &data, None, "alerts.rule.set", json!({"rule": rule, "enabled": settings.enabled, "action": settings.action, "threshold": settings.threshold}))?;
            println!("{}: {}, action {}, threshold {}", rule.as_str(), if settings.enabled { "on" } else { "off" }, settings.action.as_str(), settings.threshold);
            Ok(())
        }
        AlertsCommand::Test => {
            let delivery = config.alerts.delivery()?;
            anyhow::ensure!(delivery.webhook.is_some() || delivery.smtp.is_some(), "no delivery is configured: set [alerts] webhook_url or smtp_host");
            let message = alerting::AlertMessage {
                id: 0,
                rule: Rule::Canary,
                severity: alerting::Severity::Medium,
                credential: "cli:test".to_owned(),
                project: None,
                action_taken: None,
                detail: json!({"test": true, "note": "a test alert sent by `hearth alerts test`"}),
                created_ms: events::now_ms(),
            };
            let failures = alerting::deliver(&delivery, &message);
            for failure in &failures {
                eprintln!("{failure}");
            }
            anyhow::ensure!(failures.is_empty(), "{} delivery channel(s) failed", failures.len());
            println!("test alert delivered to: {}", [delivery.webhook.as_ref().map(|w| w.url.clone()), delivery.smtp.as_ref().map(|s| s.to.join(", "))].into_iter().flatten().collect::<Vec<_>>().join("; "));
            Ok(())
        }
    }
}

pub(crate) fn run_exports(config: &Config, command: ExportsCommand) -> anyhow::Result<()> {
    match command {
        ExportsCommand::Settings { data, approval_rows, approval_users } => {
            let data = data_dir(config, &data);
            let meta = crate::commands::open_meta(config, &data)?;
            let mut changed = false;
            for (given, name, flag) in [(approval_rows, server::APPROVAL_ROWS_SETTING, "--approval-rows"), (approval_users, server::APPROVAL_USERS_SETTING, "--approval-users")] {
                let Some(text) = given else { continue };
                let value = match text.as_str() {
                    "none" => None,
                    number => Some(number.parse::<u64>().map_err(|_| anyhow::anyhow!("{flag} must be a whole number or none, got {number:?}"))?.to_string()),
                };
                meta.set_setting(name, value.as_deref())?;
                changed = true;
            }
            let show = |name: &str| -> anyhow::Result<String> { Ok(meta.setting(name)?.unwrap_or_else(|| "none".to_owned())) };
            let (rows, users) = (show(server::APPROVAL_ROWS_SETTING)?, show(server::APPROVAL_USERS_SETTING)?);
            if changed {
                audit_cli(config, &data, None, "exports.settings.set", json!({"approval_rows": rows, "approval_users": users}))?;
            }
            println!("exports above {rows} rows or {users} people need a second owner's approval");
            Ok(())
        }
        ExportsCommand::Requests { data, status, json } => {
            let meta = crate::commands::open_meta(config, &data_dir(config, &data))?;
            for request in meta.export_requests(status.as_deref())? {
                if json {
                    println!("{}", serde_json::to_string(&request)?);
                } else {
                    println!("{:>5}  {}  {:<9} project {:<4} {:<28} {} rows, {} people: {}", request.id, crate::commands::api_keys::time_text(Some(request.created_ms)), request.status, request.project, request.requester, request.rows, request.users, request.reason);
                }
            }
            Ok(())
        }
    }
}
