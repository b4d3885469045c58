//! `hearth audit list|verify|export`.

use crate::args::AuditCommand;
use crate::commands::{audit_cli, data_dir, open_audit};
use crate::config::Config;
use std::io::Write;

/// A date, an RFC 3339 time, or milliseconds since 1970.
pub(crate) fn parse_time(text: &str, flag: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_millis());
    }
    anyhow::bail!("{flag} {text:?} is not a date (YYYY-MM-DD), an RFC 3339 time or milliseconds")
}

pub(crate) fn run(config: &Config, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::List { data, since, until, actor, action, project, limit, json } => {
            let data = data_dir(config, &data);
            let project = match project {
                Some(name) => Some(crate::commands::open_meta(config, &data)?.project_by_name(&name)?),
                None => None,
            };
            let filter = audit::Filter {
                since_ms: since.as_deref().map(|t| parse_time(t, "--since")).transpose()?,
                until_ms: until.as_deref().map(|t| parse_time(t, "--until")).transpose()?,
                actor,
                action,
                project: project.as_ref().map(|p| p.id.0),
                limit,
            };
            let log = open_audit(config, &data)?;
            let entries = log.list(&filter)?;
            audit_cli(config, &data, project.as_ref(), "audit.read", serde_json::json!({"entries": entries.len()}))?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for entry in &entries {
                if json {
                    writeln!(out, "{}", serde_json::to_string(entry)?)?;
                } else {
                    let time = chrono::DateTime::from_timestamp_millis(entry.time_ms).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default();
                    let users = entry.body.users.as_ref().map_or(String::new(), |u| format!(" users={}", u.count));
                    let project = entry.body.project.map_or(String::new(), |p| format!(" project={p}"));
                    let country = entry.body.country.as_deref().map_or(String::new(), |c| format!(" country={c}"));
                    writeln!(out, "{:>6} {time} {:<24} {:<22} {:?}{project}{country}{users}", entry.seq, entry.body.actor.label(), entry.body.action, entry.body.outcome)?;
                }
            }
            Ok(())
        }
        AuditCommand::Verify { data, sink } => {
            let data = data_dir(config, &data);
            let sink = sink.or_else(|| (!config.audit.sink.is_empty()).then(|| config.audit.sink.clone().into()));
            let head = match &sink {
                Some(path) => audit::AuditLog::sink_head(path)?,
                None => None,
            };
            let log = open_audit(config, &data)?;
            let verification = log.verify(head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())))?;
            match &verification.broken {
                None => {
                    println!("audit log intact: {} entries, head {} {}", verification.entries, verification.head_seq, verification.head_hash);
                    if head.is_some() {
                        println!("the sink's last entry is in the log");
                    } else {
                        println!("no sink to compare against: a cut tail cannot be seen without one ([audit] sink)");
                    }
                    Ok(())
                }
                Some((seq, why)) => {
                    eprintln!("audit log BROKEN at entry {seq}: {why}");
                    std::process::exit(1);
                }
            }
        }
        AuditCommand::Export { data, out } => {
            let data = data_dir(config, &data);
            let log = open_audit(config, &data)?;
            let entries = log.list(&audit::Filter::default())?;
            let mut writer: Box<dyn Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            for entry in &entries {
                writeln!(writer, "{}", serde_json::to_string(entry)?)?;
            }
            writer.flush()?;
            drop(writer);
            audit_cli(config, &data, None, "audit.export", serde_json::json!({"entries": entries.len()}))?;
            if let Some(path) = out {
                eprintln!("wrote {} entries to {}", entries.len(), path.display());
            }
            Ok(())
        }
    }
}
