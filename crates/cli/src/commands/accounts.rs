//! `hearth admin create`, `hearth members invite|list|disable|enrol`,
//! `hearth sessions list|revoke`.

use crate::args::{AdminCommand, MembersCommand, SessionsCommand};
use crate::commands::{audit_cli, data_dir, open_access, open_protector};
use crate::config::Config;
use serde_json::json;
use std::sync::Arc;

fn open(config: &Config, data: &crate::args::DataArg) -> anyhow::Result<(std::path::PathBuf, Arc<access::Access>)> {
    let data = data_dir(config, data);
    let meta = Arc::new(crate::commands::open_meta(config, &data)?);
    let protector = open_protector(config, &data, meta)?;
    Ok((data.clone(), open_access(config, &protector)?))
}

fn print_invitation(invitation: &access::Invitation) {
    println!("enrolment link (one use, expires in 1 hour; open it in a browser with your passkey):");
    println!("  {}", invitation.link);
}

pub(crate) fn run_admin(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Create { email, data } => {
            let (data, access) = open(config, &data)?;
            let organisation = access.meta().organisation("default")?;
            if access.meta().members(organisation.id)?.iter().any(|m| m.role == meta::Role::Owner && m.disabled_ms.is_none()) {
                anyhow::bail!("an owner exists already: owners invite further members (`hearth members invite`)");
            }
            let invitation = access.invite(&email, meta::Role::Owner, true, true, &[])?;
            audit_cli(config, &data, None, "member.invite", json!({"member": invitation.member.id, "role": "owner", "bootstrap": true}))?;
            println!("created owner {} (member {})", email.trim(), invitation.member.id);
            print_invitation(&invitation);
            Ok(())
        }
        AdminCommand::PhishingResistantOnly { data, switch } => {
            let (data, access) = open(config, &data)?;
            let enabled = switch.is_on();
            let organisation = access.meta().organisation("default")?;
            access.meta().set_phishing_resistant_only(organisation.id, enabled)?;
            audit_cli(config, &data, None, "organisation.phishing_resistant_only", json!({"on": enabled}))?;
            println!("{}", if enabled { "passkeys only, for everyone" } else { "viewers and analysts may also sign in with a password and TOTP; owners and admins still use passkeys only" });
            Ok(())
        }
        AdminCommand::AuditAddresses { data, switch } => {
            let (data, access) = open(config, &data)?;
            let enabled = switch.is_on();
            let organisation = access.meta().organisation("default")?;
            access.meta().set_audit_addresses(organisation.id, enabled)?;
            audit_cli(config, &data, None, "organisation.audit_addresses", json!({"on": enabled}))?;
            println!("{}", if enabled { "audit entries now record source addresses (from the next request on)" } else { "audit entries record only the source's country" });
            Ok(())
        }
        AdminCommand::Sessions { data, idle, absolute } => {
            let (data, access) = open(config, &data)?;
            let idle_ms = crate::commands::api_keys::parse_duration_ms(&idle)?;
            let absolute_ms = crate::commands::api_keys::parse_duration_ms(&absolute)?;
            if idle_ms < 60_000 || absolute_ms < idle_ms {
                anyhow::bail!("the idle timeout must be at least a minute and at most the absolute lifetime");
            }
            let organisation = access.meta().organisation("default")?;
            access.meta().set_session_timeouts(organisation.id, idle_ms, absolute_ms)?;
            audit_cli(config, &data, None, "organisation.session_timeouts", json!({"idle_ms": idle_ms, "absolute_ms": absolute_ms}))?;
            println!("sessions from now on: idle timeout {idle}, absolute lifetime {absolute}");
            Ok(())
        }
    }
}

pub(crate) fn run_members(config: &Config, command: MembersCommand) -> anyhow::Result<()> {
    match command {
        MembersCommand::Invite { email, data, role, export, view_pii, projects } => {
            let (data, access) = open(config, &data)?;
            let role = meta::Role::parse(&role).ok_or_else(|| anyhow::anyhow!("role must be owner, admin, analyst or viewer"))?;
            let projects = projects.iter().map(|name| Ok(access.meta().project_by_name(name)?.id)).collect::<anyhow::Result<Vec<_>>>()?;
            let invitation = access.invite(&email, role, export, view_pii, &projects)?;
            audit_cli(config, &data, None, "member.invite", json!({"member": invitation.member.id, "role": role.as_str(), "export": export, "view_pii": view_pii}))?;
            println!("invited {} as {} (member {})", email.trim(), role.as_str(), invitation.member.id);
            print_invitation(&invitation);
            Ok(())
        }
        MembersCommand::List { data } => {
            let (_, access) = open(config, &data)?;
            let organisation = access.meta().organisation("default")?;
            for member in access.meta().members(organisation.id)? {
                let email = access.email_of(&member)?.unwrap_or_else(|| "(erased)".to_owned());
                let permissions: Vec<&str> = [(member.can_export, "export"), (member.can_view_pii, "view_pii")].into_iter().filter(|(on, _)| *on).map(|(_, name)| name).collect();
                let state = if member.disabled_ms.is_some() { "disabled" } else { "active" };
                println!("{}\t{email}\t{}\t{}\t{state}\tpasskeys: {}", member.id, member.role.as_str(), permissions.join(","), access.meta().passkeys(member.id)?.len());
            }
            Ok(())
        }
        MembersCommand::Disable { email, data } => {
            let (data, access) = open(config, &data)?;
            let member = access.member_by_email(&email)?.ok_or_else(|| anyhow::anyhow!("no member {email}"))?;
            let sessions = access.meta().disable_member(member.id)?;
            audit_cli(config, &data, None, "member.disable", json!({"member": member.id, "sessions_revoked": sessions}))?;
            println!("member {} disabled; {sessions} session(s) revoked", member.id);
            Ok(())
        }
        MembersCommand::Enrol { email, data } => {
            let (data, access) = open(config, &data)?;
            let member = access.member_by_email(&email)?.filter(|m| m.disabled_ms.is_none()).ok_or_else(|| anyhow::anyhow!("no active member {email}"))?;
            let (link, _, _) = access.enrolment_link(member.id)?;
            audit_cli(config, &data, None, "member.enrolment_link", json!({"member": member.id}))?;
            println!("enrolment link (one use, expires in 1 hour):\n  {link}");
            Ok(())
        }
    }
}

pub(crate) fn run_sessions(config: &Config, command: SessionsCommand) -> anyhow::Result<()> {
    match command {
        SessionsCommand::List { data } => {
            let (_, access) = open(config, &data)?;
            let now = events::now_ms();
            for session in access.meta().sessions_of(None)?.into_iter().filter(|s| s.is_live(now)) {
                let when = chrono::DateTime::from_timestamp_millis(session.created_ms).map(|t| t.to_rfc3339()).unwrap_or_default();
                println!("{}\tmember {}\tsince {when}\tcountry {}", session.short_id, session.member, session.country.as_deref().unwrap_or("-"));
            }
            Ok(())
        }
        SessionsCommand::Revoke { id, data, member, all } => {
            let (data, access) = open(config, &data)?;
            let member_id = match &member {
                Some(email) => Some(access.member_by_email(email)?.ok_or_else(|| anyhow::anyhow!("no member {email}"))?.id),
                None => None,
            };
            if id.is_none() && member_id.is_none() && !all {
                anyhow::bail!("give a session id, --member EMAIL, or --all");
            }
            let n = access.meta().revoke_sessions(id.as_deref(), member_id)?;
            audit_cli(config, &data, None, "session.revoke", json!({"session": id, "member": member_id, "all": all, "revoked": n}))?;
            println!("{n} session(s) revoked: each fails on its next request");
            Ok(())
        }
    }
}
