//! `hearth incident contain|lift`: the first minutes of an incident, in one
//! command. Every step is an audit entry and a line of output, and holds on
//! the very next request (the server reads keys, sessions, blocks and the
//! export freeze from SQLite on every request).

use crate::args::IncidentCommand;
use crate::commands::{audit_cli, data_dir};
use crate::config::Config;
use serde_json::json;

pub(crate) fn run(config: &Config, command: IncidentCommand) -> anyhow::Result<()> {
    match command {
        IncidentCommand::Contain { data, key, user, session, address, all, token_overlap } => {
            let data = data_dir(config, &data);
            let meta = meta::Meta::open(&data)?;
            if key.is_none() && user.is_none() && session.is_none() && address.is_none() && !all {
                anyhow::bail!("nothing to contain: give --key, --user, --session, --address or --all");
            }
            let step = |action: &str, detail: serde_json::Value, line: String| -> anyhow::Result<()> {
                audit_cli(config, &data, None, &format!("incident.contain.{action}"), detail)?;
                println!("{line}");
                Ok(())
            };
            if let Some(id) = key {
                let disabled = meta.disable_api_key(id)?;
                step("key", json!({"key": id, "disabled": disabled}), if disabled { format!("disabled API key {id}") } else { format!("API key {id} was already disabled (or does not exist)") })?;
            }
            if let Some(email) = &user {
                let meta_arc = std::sync::Arc::new(meta::Meta::open(&data)?);
                let protector = crate::commands::open_protector(config, &data, meta_arc)?;
                let access = crate::commands::open_access(config, &protector)?;
                let member = access.member_by_email(email)?.ok_or_else(|| anyhow::anyhow!("no member {email}"))?;
                let revoked = meta.disable_member(member.id)?;
                step("user", json!({"member": member.id, "sessions_revoked": revoked}), format!("disabled member {} and revoked {revoked} session(s)", member.id))?;
            }
            if let Some(id) = &session {
                let revoked = meta.revoke_sessions(Some(id), None)?;
                step("session", json!({"session": id, "revoked": revoked}), format!("revoked {revoked} session(s) with id {id}"))?;
            }
            if let Some(cidr) = &address {
                let net: ipnet::IpNet = cidr.parse().or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map_err(|_| anyhow::anyhow!("{cidr:?} is not an address or CIDR"))?;
                meta.block_address(&net.to_string(), "incident containment")?;
                // The audit names the block, the operator chose to record it.
                step("address", json!({"blocked": net.to_string()}), format!("blocked {net} on every route, ingestion included"))?;
            }
            if all {
                let revoked = meta.revoke_sessions(None, None)?;
                step("sessions", json!({"revoked": revoked}), format!("revoked all {revoked} live session(s)"))?;
                let keys = meta.disable_all_api_keys()?;
                step("keys", json!({"disabled": keys}), format!("disabled all {keys} API key(s)"))?;
                let overlap_ms = crate::commands::api_keys::parse_duration_ms(&token_overlap)?;
                for project in meta.projects()? {
                    let secret = meta.rotate_project_secret(project.id)?;
                    let token = meta.rotate_project_token(project.id, events::now_ms() + overlap_ms)?;
                    step("project", json!({"project": project.id.0, "secret_rotated": true, "token_rotated": true, "token_overlap_ms": overlap_ms}), format!("project {:?}: new secret {secret} (shown once); new public token {token}; the old token collects for {token_overlap} more", project.name))?;
                }
                meta.set_exports_frozen(true)?;
                step("freeze", json!({"exports_frozen": true}), "froze exports until an owner lifts it (hearth incident lift)".to_owned())?;
            }
            Ok(())
        }
        IncidentCommand::Lift { data, address } => {
            let data = data_dir(config, &data);
            let meta = meta::Meta::open(&data)?;
            match address {
                Some(cidr) => {
                    let net: ipnet::IpNet = cidr.parse().or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map_err(|_| anyhow::anyhow!("{cidr:?} is not an address or CIDR"))?;
                    let removed = meta.unblock_address(&net.to_string())?;
                    audit_cli(config, &data, None, "incident.lift.address", json!({"unblocked": net.to_string(), "was_blocked": removed}))?;
                    println!("{net} {}", if removed { "unblocked" } else { "was not blocked" });
                }
                None => {
                    meta.set_exports_frozen(false)?;
                    audit_cli(config, &data, None, "incident.lift.freeze", serde_json::Value::Null)?;
                    println!("exports are allowed again");
                }
            }
            Ok(())
        }
    }
}
