//! `hearth project create|list`.

use crate::args::ProjectCommand;
use crate::commands::data_dir;
use crate::config::Config;
use serde_json::json;

pub(crate) fn run(config: &Config, command: ProjectCommand) -> anyhow::Result<()> {
    match command {
        ProjectCommand::Create { name, data, json } => {
            let meta = meta::Meta::open(&data_dir(config, &data))?;
            let created = meta.create_project(&name)?;
            let project = &created.project;
            if json {
                let out = json!({"id": project.id.0, "name": project.name, "token": project.token, "secret": created.secret});
                println!("{out}");
            } else {
                println!("created project {:?} (id {})", project.name, project.id.0);
                println!("project token (public, for SDKs): {}", project.token);
                println!("project secret (for /import and export; shown only now): {}", created.secret);
            }
            Ok(())
        }
        ProjectCommand::List { data, json } => {
            let meta = meta::Meta::open(&data_dir(config, &data))?;
            for project in meta.projects()? {
                if json {
                    println!("{}", json!({"id": project.id.0, "name": project.name, "token": project.token, "timezone": project.timezone}));
                } else {
                    println!("{}\t{}\t{}", project.id.0, project.name, project.token);
                }
            }
            Ok(())
        }
    }
}
