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
    let meta = std::sync::Arc::new(meta);
    let erased: HashSet<String> = meta.erased_ids(project.id)?.into_iter().collect();
    // Events in ClickHouse are read from there (a running server does not
    // matter); the embedded store is opened, so its server must be stopped.
    let (store, reader) = match config.storage.clickhouse()? {
        Some(settings) => (None, Some(clickhouse_store::EventReader::new(crate::config::connect_clickhouse(&settings)?))),
        None => (Some(crate::commands::open_store(&data, config.store_config(), &meta)?), None),
    };
    let names: HashSet<String> = args.events.into_iter().collect();
    let mut n_events = 0u64;
    let mut write_error = None;
    let mut line = Vec::with_capacity(1024);
    let visit = |day: store::DayRows| {
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
    };
    scan_days(store.as_ref(), reader.as_ref(), project.id, (from_day, to_day), visit)?;
    if let Some(error) = write_error {
        // A closed pipe (e.g. `| head`) is not a failure of the export.
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(error.into());
        }
    }
    out.flush()?;
    drop(out);
    if let Some(store) = store {
        store.close()?;
    }
    crate::commands::audit_cli(config, &data, Some(&project), "export", serde_json::json!({"from": args.from_date, "to": args.to_date, "where": args.filter, "rows": n_events, "via": "hearth export"}))?;
    eprintln!("exported {n_events} events");
    Ok(())
}

/// Each day's events of a project in `[from_day, to_day]`, oldest first,
/// from the embedded store or from ClickHouse, while `visit` says go on.
fn scan_days(
    store: Option<&store::Store>,
    reader: Option<&clickhouse_store::EventReader>,
    project: events::ProjectId,
    (from_day, to_day): (i32, i32),
    mut visit: impl FnMut(store::DayRows) -> bool,
) -> anyhow::Result<()> {
    if let Some(store) = store {
        store.snapshot().scan_days(project, from_day, to_day, visit)?;
    } else if let Some(reader) = reader {
        reader.scan_days(project, from_day, to_day, &mut visit)?;
    }
    Ok(())
}
