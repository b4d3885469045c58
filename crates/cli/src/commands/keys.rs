//! `hearth keys rotate`.

use crate::args::KeysCommand;
use crate::commands::{audit_cli, data_dir, keys_dir, open_protector};
use crate::config::Config;
use crate::progress::count_bar;
use std::sync::Arc;

pub(crate) fn run(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate { data, master, project } => {
            if !master && project.is_none() {
                anyhow::bail!("nothing to rotate: give --master, --project NAME, or both");
            }
            let data = data_dir(config, &data);
            let meta = Arc::new(crate::commands::open_meta(config, &data)?);
            let protector = open_protector(config, &data, meta.clone())?;
            if master {
                if std::env::var("HEARTH_MASTER_KEY").is_ok_and(|v| !v.trim().is_empty()) {
                    anyhow::bail!("the master key comes from HEARTH_MASTER_KEY: rotate it where it is kept (a file is rotated in place)");
                }
                let report = protector.keys().rotate_master(None)?;
                audit_cli(config, &data, None, "keys.rotate_master", serde_json::json!({"old": report.old_fingerprint, "new": report.new_fingerprint, "projects": report.projects}))?;
                println!("master key rotated: {} -> {} ({} project keys re-wrapped, file in {})", report.old_fingerprint, report.new_fingerprint, report.projects, keys_dir(config, &data).display());
            }
            if let Some(name) = project {
                let project = meta.project_by_name(&name)?;
                let bar = count_bar(0, "subject keys");
                let report = protector.keys().rotate_data_key(project.id, &mut |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })?;
                bar.finish_and_clear();
                audit_cli(config, &data, Some(&project), "keys.rotate_data_key", serde_json::json!({"subject_keys": report.subject_keys}))?;
                println!("project {:?}: data key rotated, {} subject keys re-wrapped; the old data key is destroyed", project.name, report.subject_keys);
            }
            Ok(())
        }
    }
}
