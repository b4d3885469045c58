//! Alerts raised while answering: a canary touched. Each alert is stored,
//! audited, and (by default) acted on at once: the key that touched the
//! canary is disabled, or the session revoked, so the next request fails.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::Inner;
use audit::{NewEntry, Outcome};
use serde_json::json;

/// The canary ids among `touched`, if the project has canaries.
pub(crate) fn canaries_touched<'a>(canaries: &std::collections::HashSet<String>, touched: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    if canaries.is_empty() {
        return Vec::new();
    }
    let mut hit: Vec<String> = touched.into_iter().filter(|id| canaries.contains(*id)).map(str::to_owned).collect();
    hit.sort();
    hit.dedup();
    hit
}

/// Raises the canary alert for `principal` and takes the automatic action.
pub(crate) fn canary_alert(inner: &Inner, principal: &Principal, via: &str, canaries: usize) -> Result<(), ApiError> {
    let action = if !inner.config.act_on_canary {
        None
    } else if principal.actor.kind == "api_key" {
        let id = principal.actor.id.rsplit('#').next().and_then(|n| n.parse::<i64>().ok());
        id.map(|id| inner.meta.disable_api_key(id)).transpose()?.map(|_| "key disabled")
    } else if principal.actor.kind == "session" {
        inner.meta.revoke_sessions(Some(&principal.actor.id), None)?;
        Some("session revoked")
    } else {
        None
    };
    let detail = json!({"via": via, "canaries": canaries, "credential": principal.actor.label(), "member": principal.actor.user, "country": principal.country, "action": action});
    inner.meta.raise_alert(Some(principal.project.id), "canary", "critical", &principal.actor.label(), &detail.to_string(), action)?;
    let entry = NewEntry::new(principal.actor.clone(), "alert.canary", Outcome::Ok).project(principal.project.id.0).country(principal.country.clone()).detail(detail);
    inner.audit.append(entry).map_err(|e| ApiError::Internal(e.to_string()))?;
    metrics::counter!("hearth_alerts_total", "rule" => "canary").increment(1);
    tracing::warn!(credential = %principal.actor.label(), via, "ALERT: a canary profile was touched");
    Ok(())
}
