//! `hearth privacy show|set|history|findings|apply|retention`.

use crate::args::{PrivacyCommand, ProjectArg};
use crate::commands::{audit_cli, data_dir, open_project, open_protector};
use crate::config::Config;
use crate::progress::count_bar;
use anyhow::Context;
use privacy::policy::PolicyDocument;
use std::sync::Arc;

pub(crate) fn run(config: &Config, command: PrivacyCommand) -> anyhow::Result<()> {
    match command {
        PrivacyCommand::Show { target, json } => {
            let (protector, project) = open(config, &target)?;
            let loaded = protector.policy(project.id)?;
            if json {
                println!("{}", serde_json::json!({"version": loaded.version, "policy": loaded.policy.document()}));
            } else {
                let origin = if loaded.version == 0 { "the built-in default".to_owned() } else { format!("version {}", loaded.version) };
                println!("# privacy policy of {:?}: {origin}", project.name);
                print!("{}", loaded.policy.document().to_toml());
            }
            Ok(())
        }
        PrivacyCommand::Set { target, file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let document = if file.extension().is_some_and(|e| e == "json") {
                let value: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
                PolicyDocument::from_json(value)
            } else {
                PolicyDocument::from_toml(&text)
            }
            .map_err(|error| anyhow::anyhow!("{}: {error}", file.display()))?;
            let (protector, project) = open(config, &target)?;
            let version = protector.set_policy(project.id, document).map_err(|error| anyhow::anyhow!("{}: {error}", file.display()))?;
            audit_cli(config, &data_dir(config, &target.data), Some(&project), "policy.set", serde_json::json!({"version": version}))?;
            println!("project {:?}: privacy policy version {version} applies to events from now on", project.name);
            println!("stored events keep the policy they were written under; `hearth privacy apply --project {} --rewrite` re-applies this one to them", project.name);
            Ok(())
        }
        PrivacyCommand::History { target } => {
            let (protector, project) = open(config, &target)?;
            for version in protector.meta().privacy_policy_history(project.id)? {
                println!("v{}\t{}", version.version, chrono::DateTime::from_timestamp_millis(version.created_ms).map(|t| t.to_rfc3339()).unwrap_or_default());
            }
            Ok(())
        }
        PrivacyCommand::Findings { target, format } => {
            let (protector, project) = open(config, &target)?;
            let counts = protector.meta().privacy_counts(project.id)?;
            if format == "json" {
                let rows: Vec<serde_json::Value> = counts
                    .iter()
                    .map(|c| serde_json::json!({"event": c.event, "property": c.property, "kind": c.kind, "count": c.count, "first_ms": c.first_ms, "last_ms": c.last_ms}))
                    .collect();
                println!("{}", serde_json::Value::from(rows));
                return Ok(());
            }
            if counts.is_empty() {
                println!("no personal data found in free-form values, nothing blocked");
                return Ok(());
            }
            println!("{:<28} {:<28} {:<18} {:>10}", "event", "property", "kind", "count");
            for c in counts {
                println!("{:<28} {:<28} {:<18} {:>10}", c.event, c.property, c.kind, c.count);
            }
            Ok(())
        }
        PrivacyCommand::Apply { target, rewrite } => {
            if !rewrite {
                anyhow::bail!("re-applying the policy rewrites stored events: confirm with --rewrite");
            }
            let (protector, project) = open(config, &target)?;
            let (report, unit) = match config.storage.clickhouse()? {
                // Beside running nodes: the events are read from and written
                // back to ClickHouse itself.
                Some(settings) => {
                    let client = crate::config::connect_clickhouse(&settings)?;
                    let days = ClickHouseDays(clickhouse_store::EventReader::new(client.clone()));
                    let sink = clickhouse_store::ClickHouseSink::new(client);
                    let bar = count_bar(0, "events read");
                    let report = protector.rewrite_with_policy_in(&days, &sink, project.id, &mut |read| bar.set_position(read))?;
                    bar.finish_and_clear();
                    (report, "days")
                }
                None => {
                    let store = open_store(config, &target, &protector)?;
                    let bar = count_bar(0, "parts");
                    let progress_bar = bar.clone();
                    let report = protector.rewrite_with_policy(&store, project.id, Box::new(move |done, total| {
                        progress_bar.set_length(total);
                        progress_bar.set_position(done);
                    }))?;
                    bar.finish_and_clear();
                    store.close()?;
                    (report, "parts")
                }
            };
            let version = protector.policy(project.id)?.version;
            audit_cli(config, &data_dir(config, &target.data), Some(&project), "policy.rewrite", serde_json::json!({"version": version, "rows_changed": report.rows_changed, "rows_dropped": report.rows_dropped}))?;
            println!(
                "re-applied policy v{version} to {:?}: {} {unit} read, {} rewritten, {} events changed, {} dropped",
                project.name, report.parts_seen, report.parts_rewritten, report.rows_changed, report.rows_dropped
            );
            if protector.policy(project.id)?.policy.pseudonymise_ids {
                println!("note: stored distinct ids were left as they are; pseudonyms apply to events ingested under the policy");
            }
            Ok(())
        }
        PrivacyCommand::Retention { target } => {
            let (protector, project) = open(config, &target)?;
            let store = open_store(config, &target, &protector)?;
            let bar = count_bar(0, "parts");
            let progress_bar = bar.clone();
            let report = protector.enforce_retention(&store, project.id, events::now_ms(), Box::new(move |done, total| {
                progress_bar.set_length(total);
                progress_bar.set_position(done);
            }))?;
            bar.finish_and_clear();
            store.close()?;
            match report {
                Some(report) => println!("retention: {} parts dropped, {} rewritten, {} events deleted", report.parts_dropped, report.parts_rewritten, report.rows_dropped),
                None => println!("the policy of {:?} sets no event retention: nothing to delete", project.name),
            }
            Ok(())
        }
    }
}

pub(crate) fn open(config: &Config, target: &ProjectArg) -> anyhow::Result<(Arc<protect::Protector>, meta::Project)> {
    let data = data_dir(config, &target.data);
    let (meta, project) = open_project(config, &data, &target.project)?;
    let protector = open_protector(config, &data, Arc::new(meta))?;
    Ok((protector, project))
}

/// The node's store; with events in ClickHouse, one whose sink is there, so
/// that erasure and retention reach it.
pub(crate) fn open_store(config: &Config, target: &ProjectArg, protector: &Arc<protect::Protector>) -> anyhow::Result<store::Store> {
    let data = data_dir(config, &target.data);
    let store_config = match config.storage.clickhouse()? {
        Some(_) => config.ingest_store_config(crate::config::Unreachable::Fail, protector)?,
        None => config.store_config(),
    };
    crate::commands::open_store(&data, store_config, protector.meta())
}

/// Where a person's events are read for a GDPR export: the store, or
/// ClickHouse when events live there.
pub(crate) struct ClickHouseDays(pub(crate) clickhouse_store::EventReader);

impl protect::EventDays for ClickHouseDays {
    fn scan_days(&self, project: events::ProjectId, from_day: i32, to_day: i32, visit: &mut dyn FnMut(store::DayRows) -> bool) -> Result<(), String> {
        self.0.scan_days(project, from_day, to_day, visit).map_err(|e| e.to_string())
    }
}
