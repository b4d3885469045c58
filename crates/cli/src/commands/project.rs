//! `hearth project create|set|list`.

use crate::args::ProjectCommand;
use crate::commands::data_dir;
use crate::config::Config;
use serde_json::json;

pub(crate) fn run(config: &Config, command: ProjectCommand) -> anyhow::Result<()> {
    match command {
        ProjectCommand::Create { name, data, json } => {
            let meta = crate::commands::open_meta(config, &data_dir(config, &data))?;
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
        ProjectCommand::Set { name, data, geo_precision, timezone } => {
            let data_dir = data_dir(config, &data);
            let meta = std::sync::Arc::new(crate::commands::open_meta(config, &data_dir)?);
            let project = meta.project_by_name(&name)?;
            if geo_precision.is_none() && timezone.is_none() {
                anyhow::bail!("nothing to set: give --geo-precision or --timezone");
            }
            if let Some(zone) = timezone {
                if !query::is_time_zone(&zone) {
                    anyhow::bail!("unknown time zone {zone:?}: use an IANA name such as UTC or Europe/Berlin");
                }
                meta.set_timezone(project.id, &zone)?;
                println!("project {:?}: reports now count days in {zone}", project.name);
            }
            if let Some(precision) = geo_precision {
                // Geo precision is part of the privacy policy: a new version.
                let level = match precision.as_str() {
                    "none" => privacy::policy::GeoLevel::None,
                    "country" => privacy::policy::GeoLevel::Country,
                    "region" => privacy::policy::GeoLevel::Region,
                    "city" => privacy::policy::GeoLevel::City,
                    other => anyhow::bail!("unknown geo precision {other:?}: use none, country, region or city"),
                };
                let protector = crate::commands::open_protector(config, &data_dir, meta.clone())?;
                let mut document = protector.policy(project.id)?.policy.document().clone();
                document.geo = level;
                let version = protector.set_policy(project.id, document)?;
                println!("project {:?}: geo precision is now {} (privacy policy version {version})", project.name, level.as_str());
            }
            Ok(())
        }
        ProjectCommand::RotateToken { name, data, overlap } => {
            let data_dir = data_dir(config, &data);
            let meta = crate::commands::open_meta(config, &data_dir)?;
            let project = meta.project_by_name(&name)?;
            let overlap_ms = crate::commands::api_keys::parse_duration_ms(&overlap)?;
            let token = meta.rotate_project_token(project.id, events::now_ms() + overlap_ms)?;
            crate::commands::audit_cli(config, &data_dir, Some(&project), "project.token.rotate", json!({"overlap_ms": overlap_ms}))?;
            println!("project {:?}: new public token {token}", project.name);
            println!("the old token keeps being accepted for {overlap}; a running server notices within 10 seconds");
            Ok(())
        }
        ProjectCommand::Secret { name, data, disable, enable } => {
            let data_dir = data_dir(config, &data);
            let meta = crate::commands::open_meta(config, &data_dir)?;
            let project = meta.project_by_name(&name)?;
            let disabled = disable && !enable;
            meta.set_secret_disabled(project.id, disabled)?;
            crate::commands::audit_cli(config, &data_dir, Some(&project), if disabled { "project.secret.disable" } else { "project.secret.enable" }, serde_json::Value::Null)?;
            println!("project {:?}: the project secret is {} from the next request on", project.name, if disabled { "refused" } else { "accepted again" });
            Ok(())
        }
        ProjectCommand::List { data, json } => {
            let meta = crate::commands::open_meta(config, &data_dir(config, &data))?;
            for project in meta.projects()? {
                if json {
                    println!("{}", json!({"id": project.id.0, "name": project.name, "token": project.token, "timezone": project.timezone, "geo_precision": project.geo_precision.as_str()}));
                } else {
                    println!("{}\t{}\t{}\tgeo: {}", project.id.0, project.name, project.token, project.geo_precision.as_str());
                }
            }
            Ok(())
        }
    }
}
