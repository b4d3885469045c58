//! The checks behind each rule, called where the facts are: an export's
//! rows, any audited read, a failed sign-in, a refused key.

use super::{raise, settings_of, Trigger};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Inner;
use alerting::Rule;
use audit::Actor;
use serde_json::json;
use std::collections::HashSet;

/// Failed sign-ins are counted over this window.
pub(super) const FAILED_LOGIN_WINDOW_MS: i64 = 15 * 60_000;
/// The export baseline looks back this many days before today.
const BASELINE_DAYS: i64 = 14;
/// The organisation's reading habits are learnt over this many days and
/// relearnt this often.
const HABIT_DAYS: i64 = 28;
const HABIT_REFRESH_MS: i64 = 3_600_000;
/// The audited actions that read people's data.
const READ_ACTIONS: [&str; 4] = ["query", "profile.read", "export", "pii.reveal"];

/// The canary ids among `touched`, if the project has canaries.
pub(crate) fn canaries_touched<'a>(canaries: &HashSet<String>, touched: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    if canaries.is_empty() {
        return Vec::new();
    }
    let mut hit: Vec<String> = touched.into_iter().filter(|id| canaries.contains(*id)).map(str::to_owned).collect();
    hit.sort();
    hit.dedup();
    hit
}

/// A canary was returned through `via`.
pub(crate) fn canary_touched(inner: &Inner, principal: &Principal, via: &str, canaries: usize) -> Result<(), ApiError> {
    raise(inner, Trigger { rule: Rule::Canary, actor: &principal.actor, project: Some(principal.project.id), country: principal.source.country.clone(), detail: json!({"via": via, "canaries": canaries}) })?;
    Ok(())
}

/// After an export: today's rows of this credential against its threshold
/// times its own daily baseline.
pub(crate) fn check_export_volume(inner: &Inner, principal: &Principal) -> Result<(), ApiError> {
    let settings = settings_of(inner, Rule::ExportVolume)?;
    if !settings.enabled {
        return Ok(());
    }
    let today = events::now_ms().div_euclid(events::MS_PER_DAY);
    let since = (today - BASELINE_DAYS) * events::MS_PER_DAY;
    let filter = audit::Filter { since_ms: Some(since), actor: Some(principal.actor.label()), action: Some("export".to_owned()), ..audit::Filter::default() };
    let entries = inner.audit.list(&filter).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut daily = vec![0u64; BASELINE_DAYS as usize + 1];
    for entry in entries.iter().filter(|e| e.body.actor == principal.actor) {
        let day = entry.time_ms.div_euclid(events::MS_PER_DAY);
        let rows = entry.body.detail.get("rows").and_then(|v| v.as_u64()).unwrap_or(0);
        if let Some(slot) = usize::try_from(day - (today - BASELINE_DAYS)).ok().and_then(|i| daily.get_mut(i)) {
            *slot += rows;
        }
    }
    let today_rows = daily.pop().unwrap_or(0);
    let baseline = alerting::daily_baseline(&daily);
    if (today_rows as f64) > settings.threshold * baseline {
        let detail = json!({"rows_today": today_rows, "baseline_rows_per_day": baseline, "multiple": settings.threshold});
        raise(inner, Trigger { rule: Rule::ExportVolume, actor: &principal.actor, project: Some(principal.project.id), country: principal.source.country.clone(), detail })?;
    }
    Ok(())
}

/// On every audited action: a credential in a new country; and, for reads,
/// an hour at which the organisation hardly ever reads.
pub(crate) fn check_read(inner: &Inner, principal: &Principal, action: &str) -> Result<(), ApiError> {
    if let Some(country) = &principal.source.country {
        let credential = principal.actor.label();
        let key = (credential.clone(), country.clone());
        let known = inner.alerts.countries.lock().unwrap_or_else(|p| p.into_inner()).contains(&key);
        if !known {
            let new = inner.meta.note_credential_country(&credential, country)?;
            inner.alerts.countries.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
            if new {
                raise(inner, Trigger { rule: Rule::NewCountry, actor: &principal.actor, project: Some(principal.project.id), country: Some(country.clone()), detail: json!({"via": action}) })?;
            }
        }
    }
    if READ_ACTIONS.contains(&action) {
        let settings = settings_of(inner, Rule::UnusualHours)?;
        let now = events::now_ms();
        let hour = (now.rem_euclid(events::MS_PER_DAY) / 3_600_000) as u32;
        if settings.enabled && alerting::is_unusual_hour(&habits(inner, now)?, hour, settings.threshold) {
            raise(inner, Trigger { rule: Rule::UnusualHours, actor: &principal.actor, project: Some(principal.project.id), country: principal.source.country.clone(), detail: json!({"via": action, "hour_utc": hour}) })?;
        }
    }
    Ok(())
}

/// The organisation's reads by hour of day, relearnt hourly from the audit.
fn habits(inner: &Inner, now: i64) -> Result<alerting::HourHistogram, ApiError> {
    let mut cached = inner.alerts.hours.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, histogram)) = cached.as_ref()
        && now - at < HABIT_REFRESH_MS
    {
        return Ok(histogram.clone());
    }
    // Up to the last refresh only: the reads being judged are not habits.
    let reads = inner.audit.hour_histogram(now - HABIT_DAYS * events::MS_PER_DAY, &READ_ACTIONS).map_err(|e| ApiError::Internal(e.to_string()))?;
    let histogram = alerting::HourHistogram { reads };
    *cached = Some((now, histogram.clone()));
    Ok(histogram)
}

/// A failed sign-in for `account` (an email's keyed token, never the
/// email) from `address` (kept in memory only).
pub(crate) fn failed_sign_in(inner: &Inner, account: Option<&str>, address: Option<std::net::IpAddr>, country: Option<String>) -> Result<(), ApiError> {
    let settings = settings_of(inner, Rule::FailedLogins)?;
    if !settings.enabled {
        return Ok(());
    }
    let now = events::now_ms();
    let threshold = settings.threshold.max(1.0) as usize;
    // Per account on every node together where nodes share the metadata;
    // per address in this node's memory only (an address is not written).
    let shared_per_account = match account {
        Some(account) if inner.meta.is_shared() => {
            Some(inner.meta.record_shared_failure(&format!("account:{account}"), FAILED_LOGIN_WINDOW_MS, now).map_err(|e| ApiError::Internal(e.to_string()))?)
        }
        _ => None,
    };
    let (per_account, per_address) = {
        let mut failures = inner.alerts.failures.lock().unwrap_or_else(|p| p.into_inner());
        let per_account = match shared_per_account {
            Some(n) => n,
            None => account.map_or(0, |account| failures.record(&format!("account:{account}"), now)),
        };
        let per_address = address.map_or(0, |ip| failures.record(&format!("address:{ip}"), now));
        (per_account, per_address)
    };
    if let Some(account) = account
        && per_account >= threshold
    {
        let actor = Actor::new("account", account);
        raise(inner, Trigger { rule: Rule::FailedLogins, actor: &actor, project: None, country: country.clone(), detail: json!({"failures": per_account, "window_minutes": FAILED_LOGIN_WINDOW_MS / 60_000, "per": "account"}) })?;
    }
    if per_address >= threshold {
        // Named by country: the address itself is not written down.
        let actor = Actor::new("address", country.clone().unwrap_or_else(|| "unknown country".to_owned()));
        raise(inner, Trigger { rule: Rule::FailedLogins, actor: &actor, project: None, country, detail: json!({"failures": per_address, "window_minutes": FAILED_LOGIN_WINDOW_MS / 60_000, "per": "address"}) })?;
    }
    Ok(())
}

/// A key was presented from outside its allowlist.
pub(crate) fn key_outside_allowlist(inner: &Inner, actor: &Actor, project: Option<events::ProjectId>, country: Option<String>, path: &str) -> Result<(), ApiError> {
    raise(inner, Trigger { rule: Rule::KeyAllowlist, actor, project, country, detail: json!({"path": path}) })?;
    Ok(())
}
