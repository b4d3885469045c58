//! `hearth gdpr delete|export`.

use crate::args::GdprCommand;
use crate::commands::audit_cli;
use crate::commands::privacy::{open, open_store};
use crate::config::Config;
use crate::progress::count_bar;
use std::io::Write;

pub(crate) fn run(config: &Config, command: GdprCommand) -> anyhow::Result<()> {
    match command {
        GdprCommand::Delete { target, distinct_ids } => {
            let (protector, project) = open(config, &target)?;
            let task_id = format!("cli-{}", hex::encode(rand::random::<[u8; 8]>()));
            let erased = protector.erase(project.id, &task_id, &distinct_ids)?;
            let data = crate::commands::data_dir(config, &target.data);
            audit_cli(config, &data, Some(&project), "gdpr.deletion", serde_json::json!({"task_id": task_id, "requested": distinct_ids.len(), "distinct_ids_erased": erased.distinct_ids.len(), "keys_destroyed": erased.keys_destroyed}))?;
            println!(
                "erasure {task_id}: {} distinct ids ({}), {} keys destroyed, profiles deleted; their events are gone from reports and exports now",
                erased.distinct_ids.len(),
                erased.distinct_ids.join(", "),
                erased.keys_destroyed
            );
            match open_store(config, &target, &protector) {
                Ok(store) => {
                    let bar = count_bar(0, "parts");
                    let finished = protector.run_pending_erasures(&store, &mut |_, done, total| {
                        bar.set_length(total);
                        bar.set_position(done);
                    })?;
                    bar.finish_and_clear();
                    store.close()?;
                    println!("removed their events from the parts ({finished} erasure(s) finished)");
                }
                Err(error) if error.chain().any(|cause| matches!(cause.downcast_ref::<store::Error>(), Some(store::Error::Locked { .. }))) => {
                    println!("a running server holds the store: it removes their events from the parts within a minute");
                }
                Err(error) => return Err(error),
            }
            Ok(())
        }
        GdprCommand::Export { target, distinct_id, out } => {
            let (protector, project) = open(config, &target)?;
            let answer = match config.storage.clickhouse()? {
                Some(settings) => {
                    let reader = clickhouse_store::EventReader::new(crate::config::connect_clickhouse(&settings)?);
                    protector.retrieve(&super::privacy::ClickHouseDays(reader), project.id, &distinct_id)?
                }
                None => {
                    let store = open_store(config, &target, &protector)?;
                    let answer = protector.retrieve(&store, project.id, &distinct_id)?;
                    store.close()?;
                    answer
                }
            };
            let data = crate::commands::data_dir(config, &target.data);
            audit_cli(config, &data, Some(&project), "pii.reveal", serde_json::json!({"via": "gdpr export", "events": answer["events"].as_array().map_or(0, Vec::len)}))?;
            let text = serde_json::to_string_pretty(&answer)?;
            match out {
                Some(path) => {
                    let mut file = std::fs::File::create(&path)?;
                    file.write_all(text.as_bytes())?;
                    eprintln!("wrote everything held on {distinct_id:?} to {}", path.display());
                }
                None => println!("{text}"),
            }
            Ok(())
        }
    }
}
