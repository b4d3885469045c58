//! `hearth export`: a project's events as Mixpanel raw-export JSONL,
//! deduplicated, day by day in time order; from the data directory, or with
//! `--url` from a running server (see `remote`).

use crate::args::ExportArgs;
use crate::commands::{data_dir, open_project};
use crate::config::Config;
use anyhow::{bail, Context};
use std::collections::HashSet;
use std::io::Write;

fn parse_day(text: &str, flag: &str) -> anyhow::Result<i32> {
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").with_context(|| format!("{flag} must be YYYY-MM-DD, got {text:?}"))?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Ok((date - epoch).num_days() as i32)
}

pub(crate) fn run(config: &Config, args: ExportArgs) -> anyhow::Result<()> {
    let from_day = parse_day(&args.from_date, "--from")?;
    let to_day = parse_day(&args.to_date, "--to")?;
    if to_day < from_day {
        bail!("--to is before --from");
    }
    let filter = args.filter.as_deref().map(mixpanel::Filter::parse).transpose().map_err(|error| anyhow::anyhow!("--where: {error}"))?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) if path.extension().is_some_and(|e| e == "gz") => {
            Box::new(flate2::write::GzEncoder::new(std::fs::File::create(path)?, flate2::Compression::default()))
        }
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    if let Some(url) = &args.remote.url {
        // The server applies the same filters, audits the export and counts it against the quota.
        let remote = super::remote::Remote::new(url, args.remote.secret.as_deref().unwrap_or_default())?;
        let query = super::remote::ExportQuery { from_date: &args.from_date, to_date: &args.to_date, events: &args.events, filter: args.filter.as_deref(), time_in_ms: args.time_in_ms };
        let lines = super::remote::export(&remote, &query, &mut out)?;
        drop(out);
        eprintln!("exported {lines} events from {url}");
        return Ok(());
    }
    let data = data_dir(config, &args.data);
    let (meta, project) = open_project(config, &data, args.project.as_deref().unwrap_or_default())?;
    let erased: HashSet<String> = meta.erased_ids(project.id)?.into_iter().collect();
    config.require_embedded("hearth export")?;
    let store = store::Store::open(&data, config.store_config())?;
    let names: HashSet<String> = args.events.into_iter().collect();
    let mut n_events = 0u64;
    let mut write_error = None;
    let mut line = Vec::with_capacity(1024);
    store.snapshot().scan_days(project.id, from_day, to_day, |day| {
        for event in day.events.iter().filter(|e| (names.is_empty() || names.contains(e.name())) && !erased.contains(e.distinct_id()) && filter.as_ref().is_none_or(|f| f.matches(&e.export_properties()))) {
            line.clear();
            event.write_export_json(&mut line, args.time_in_ms);
            line.push(b'\n');
            if let Err(error) = out.write_all(&line) {
                write_error = Some(error);
                return false;
            }
            n_events += 1;
        }
        true
    })?;
    if let Some(error) = write_error {
        // A closed pipe (e.g. `| head`) is not a failure of the export.
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(error.into());
        }
    }
    out.flush()?;
    drop(out);
    store.close()?;
    crate::commands::audit_cli(config, &data, Some(&project), "export", serde_json::json!({"from": args.from_date, "to": args.to_date, "where": args.filter, "rows": n_events, "via": "hearth export"}))?;
    eprintln!("exported {n_events} events");
    Ok(())
}
