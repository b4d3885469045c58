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
            let meta = crate::commands::open_meta(config, &data)?;
            if key.is_none() && user.is_none() && session.is_none() && address.is_none() && !all {
                anyhow::bail!("nothing to contain: give --key, --user, --session, --address or --all");
            }
            let member = match &user {
                None => None,
                Some(email) => {
                    let meta_arc = std::sync::Arc::new(crate::commands::open_meta(config, &data)?);
                    let protector = crate::commands::open_protector(config, &data, meta_arc)?;
                    let access = crate::commands::open_access(config, &protector)?;
                    Some(access.member_by_email(email)?.ok_or_else(|| anyhow::anyhow!("no member {email}"))?.id)
                }
            };
            let address = address
                .map(|cidr| cidr.parse::<ipnet::IpNet>().or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map(|net| net.to_string()).map_err(|_| anyhow::anyhow!("{cidr:?} is not an address or CIDR")))
                .transpose()?;
            let token_overlap_ms = crate::commands::api_keys::parse_duration_ms(&token_overlap)?;
            let plan = incident::containment::Plan { key, member, session, address, all, token_overlap_ms };
            let mut audit_failure = None;
            incident::containment::contain(&meta, &plan, |step| {
                if let Err(error) = audit_cli(config, &data, None, &format!("incident.contain.{}", step.action), step.detail.clone()) {
                    audit_failure.get_or_insert(error);
                }
                println!("{}", step.said);
                Ok(())
            })?;
            if let Some(error) = audit_failure {
                return Err(error.context("a containment step was taken but not audited"));
            }
            Ok(())
        }
        IncidentCommand::Report { data, from, to, key, session, user, country, out, contacts } => report(config, &data, (&from, &to), incident::Selector { key, session, member: None, country, project: None }, user, &out, contacts),
        IncidentCommand::Lift { data, address } => {
            let data = data_dir(config, &data);
            let meta = crate::commands::open_meta(config, &data)?;
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

fn csv(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) { format!("\"{}\"", cell.replace('"', "\"\"")) } else { cell.to_owned() }
}

#[allow(clippy::too_many_arguments)]
fn report(config: &Config, data: &crate::args::DataArg, (from, to): (&str, &str), mut selector: incident::Selector, user: Option<String>, out: &std::path::Path, contacts: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let started = std::time::Instant::now();
    let data = data_dir(config, data);
    let meta = std::sync::Arc::new(crate::commands::open_meta(config, &data)?);
    let protector = crate::commands::open_protector(config, &data, meta.clone())?;
    if let Some(email) = &user {
        let access = crate::commands::open_access(config, &protector)?;
        selector.member = Some(access.member_by_email(email)?.ok_or_else(|| anyhow::anyhow!("no member {email}"))?.id);
    }
    let from_ms = crate::commands::audit_log::parse_time(from, "--from")?;
    let to_ms = crate::commands::audit_log::parse_time(to, "--to")?;
    let log = crate::commands::open_audit(config, &data)?;
    let report = if config.storage.clickhouse()?.is_some() {
        // Events in ClickHouse: the audit's numbers are the shared person keys.
        incident::exposure(&log, &meta, incident::PersonKeys::Shared, from_ms, to_ms, selector)?
    } else {
        let store = std::sync::Arc::new(crate::commands::open_store(&data, config.store_config(), &meta).map_err(|e| anyhow::anyhow!("{e:#} (the report reads the store's user keys: stop the server, or use GET /api/v1/incident/exposure)"))?);
        let engine = query::Engine::new(store.clone(), meta.clone());
        let report = incident::exposure(&log, &meta, incident::PersonKeys::Store(&engine), from_ms, to_ms, selector)?;
        drop(engine);
        if let Ok(store) = std::sync::Arc::try_unwrap(store) {
            store.close()?;
        }
        report
    };
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("exposure.json"), serde_json::to_vec_pretty(&report)?)?;
    let mut people = std::io::BufWriter::new(std::fs::File::create(out.join("people.csv"))?);
    writeln!(people, "project,canonical_id,distinct_ids,country,organisations,fields,seen_through{}", if contacts { ",email,name,phone" } else { "" })?;
    let mut revealed = 0;
    for person in &report.people {
        let mut row = vec![person.project.to_string(), person.canonical_id.clone(), person.distinct_ids.join(" "), person.country.clone().unwrap_or_default(), person.organisations.join(" "), person.fields.join(" "), person.via.join(" ")];
        if contacts {
            let mut profile = person.profile.clone().unwrap_or_default();
            revealed += protector.reveal(events::ProjectId(person.project), &person.canonical_id, &mut profile)?;
            for key in ["$email", "$name", "$phone"] {
                row.push(profile.get(key).and_then(|v| v.as_str()).filter(|v| !privacy::crypto::is_value_token(v)).unwrap_or_default().to_owned());
            }
        }
        writeln!(people, "{}", row.iter().map(|c| csv(c)).collect::<Vec<_>>().join(","))?;
    }
    people.flush()?;
    let mut organisations = std::io::BufWriter::new(std::fs::File::create(out.join("organisations.csv"))?);
    writeln!(organisations, "organisation,people,name,admins{}", if contacts { ",admin_emails" } else { "" })?;
    for (organisation, n) in &report.organisations {
        let detail = report.organisation_details.get(organisation).cloned().unwrap_or_default();
        let mut row = vec![organisation.clone(), n.to_string(), detail.name.clone().unwrap_or_default(), detail.admins.join(" ")];
        if contacts {
            // The admins' contacts, decrypted for the person running the report.
            let project = events::ProjectId(detail.project);
            let mut emails = Vec::new();
            for (id, mut profile) in meta.profiles(project, &detail.admins, usize::MAX)? {
                revealed += protector.reveal(project, &id, &mut profile)?;
                emails.extend(profile.get("$email").and_then(|v| v.as_str()).filter(|v| !privacy::crypto::is_value_token(v)).map(str::to_owned));
            }
            row.push(emails.join(" "));
        }
        writeln!(organisations, "{}", row.iter().map(|c| csv(c)).collect::<Vec<_>>().join(","))?;
    }
    organisations.flush()?;
    std::fs::write(out.join("article33.md"), incident::article33_draft(&report))?;
    let mut summary = String::new();
    summary.push_str(&format!("# Exposure report

{} audited requests; {} people; {} export rows; {} unresolved user keys.

## Fields

| field | people | sensitivity |
|---|---|---|
", report.entries, report.people.len(), report.rows_returned, report.unresolved_keys));
    for (field, s) in &report.fields {
        summary.push_str(&format!("| {field} | {} | {} |
", s.people, s.sensitivity));
    }
    summary.push_str("
## People by country

");
    for (country, n) in &report.people_by_country {
        summary.push_str(&format!("- {country}: {n}
"));
    }
    summary.push_str("
## People by project

");
    for (project, n) in &report.people_by_project {
        summary.push_str(&format!("- project {project}: {n}
"));
    }
    std::fs::write(out.join("summary.md"), summary)?;
    audit_cli(config, &data, None, "incident.report", json!({"selector": report.selector, "people": report.people.len(), "contacts": contacts}))?;
    if contacts {
        audit_cli(config, &data, None, "pii.reveal", json!({"via": "incident report", "revealed": revealed, "people": report.people.len()}))?;
    }
    println!("exposure report in {}: {} people, {} fields, from {} audited requests ({:.2} s)", out.display(), report.people.len(), report.fields.len(), report.entries, started.elapsed().as_secs_f64());
    Ok(())
}
