//! Containment: the first minutes of an incident as one plan, carried out
//! the same way from the CLI and the API. Every step holds on the very next
//! request (the server reads keys, sessions, blocks and the export freeze
//! from SQLite on every request); each is returned so that the caller
//! audits it and says what was done.

use meta::Meta;
use serde_json::{json, Value};

/// What to cut off.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// An API key id: disabled.
    pub key: Option<i64>,
    /// A member id: their sessions revoked, the member disabled.
    pub member: Option<i64>,
    /// A session's short id: revoked.
    pub session: Option<String>,
    /// An address or CIDR, already checked: blocked everywhere.
    pub address: Option<String>,
    /// Everything: sessions, keys, secrets, tokens (with overlap), exports frozen.
    pub all: bool,
    /// How long a rotated-away public token keeps collecting.
    pub token_overlap_ms: i64,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.key.is_none() && self.member.is_none() && self.session.is_none() && self.address.is_none() && !self.all
    }
}

/// One step taken: `incident.contain.{action}` in the audit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub action: &'static str,
    pub detail: Value,
    /// What was done, in words (new secrets and tokens included: shown once).
    pub said: String,
}

/// Carries out the plan, in order, handing each step to `on_step` (to audit
/// and show it) as it is taken; stops at the first failure, and the steps
/// before it hold.
pub fn contain(meta: &Meta, plan: &Plan, mut on_step: impl FnMut(&Step) -> Result<(), meta::Error>) -> Result<Vec<Step>, meta::Error> {
    let mut steps = Vec::new();
    let mut take = |step: Step| -> Result<(), meta::Error> {
        on_step(&step)?;
        steps.push(step);
        Ok(())
    };
    if let Some(id) = plan.key {
        let disabled = meta.disable_api_key(id)?;
        let said = if disabled { format!("disabled API key {id}") } else { format!("API key {id} was already disabled (or does not exist)") };
        take(Step { action: "key", detail: json!({"key": id, "disabled": disabled}), said })?;
    }
    if let Some(member) = plan.member {
        let revoked = meta.disable_member(member)?;
        take(Step { action: "user", detail: json!({"member": member, "sessions_revoked": revoked}), said: format!("disabled member {member} and revoked {revoked} session(s)") })?;
    }
    if let Some(id) = &plan.session {
        let revoked = meta.revoke_sessions(Some(id), None)?;
        take(Step { action: "session", detail: json!({"session": id, "revoked": revoked}), said: format!("revoked {revoked} session(s) with id {id}") })?;
    }
    if let Some(net) = &plan.address {
        meta.block_address(net, "incident containment")?;
        // The audit names the block: the operator chose to record it.
        take(Step { action: "address", detail: json!({"blocked": net}), said: format!("blocked {net} on every route, ingestion included") })?;
    }
    if plan.all {
        let revoked = meta.revoke_sessions(None, None)?;
        take(Step { action: "sessions", detail: json!({"revoked": revoked}), said: format!("revoked all {revoked} live session(s)") })?;
        let keys = meta.disable_all_api_keys()?;
        take(Step { action: "keys", detail: json!({"disabled": keys}), said: format!("disabled all {keys} API key(s)") })?;
        for project in meta.projects()? {
            let secret = meta.rotate_project_secret(project.id)?;
            let token = meta.rotate_project_token(project.id, events::now_ms() + plan.token_overlap_ms)?;
            let said = format!("project {:?}: new secret {secret} (shown once); new public token {token}; the old token collects for {} more minutes", project.name, plan.token_overlap_ms / 60_000);
            take(Step { action: "project", detail: json!({"project": project.id.0, "secret_rotated": true, "token_rotated": true, "token_overlap_ms": plan.token_overlap_ms}), said })?;
        }
        meta.set_exports_frozen(true)?;
        take(Step { action: "freeze", detail: json!({"exports_frozen": true}), said: "froze exports until an owner lifts it (hearth incident lift, or the dashboard)".to_owned() })?;
    }
    Ok(steps)
}
