//! `hearth migrate --to clickhouse|embedded`: moves every project's events
//! between the embedded store and ClickHouse, a UTC day at a time, with a
//! progress bar.
//!
//! Resumable: each day copied is recorded in a progress file in the data
//! directory (written atomically after the day), and a rerun skips what it
//! lists. A day cut short by a crash is copied again whole, which both
//! stores absorb: they deduplicate by (event, distinct_id, time, $insert_id).
//! The source is left as it was; removing it is the operator's decision.

use crate::args::{MigrateArgs, MigrateTarget};
use crate::commands::data_dir;
use crate::config::{connect_clickhouse, Config};
use crate::progress::count_bar;
use anyhow::{bail, Context};
use clickhouse_store::{ClickHouseSink, EventReader};
use events::ProjectId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Rows per ClickHouse insert or embedded append when a day is large.
const BATCH_ROWS: usize = 100_000;

pub(crate) fn run(config: &Config, args: MigrateArgs) -> anyhow::Result<()> {
    let data = data_dir(config, &args.data);
    let target = match args.to {
        MigrateTarget::Postgres => return crate::commands::migrate_metadata::to_postgres(config, &data),
        MigrateTarget::Clickhouse => "clickhouse",
        MigrateTarget::Embedded => "embedded",
    };
    let settings = crate::config::StorageSection { backend: "clickhouse".into(), ..config.storage.clone() }.clickhouse()?.context("ClickHouse settings")?;
    let client = connect_clickhouse(&settings)?;
    let meta = std::sync::Arc::new(crate::commands::open_meta(config, &data)?);
    let projects: Vec<meta::Project> = meta.projects()?;
    if projects.is_empty() {
        bail!("no projects in {}: nothing to migrate", data.display());
    }
    let progress_path = data.join(format!("migrate-to-{target}.json"));
    let destination = format!("{}/{}", settings.url, settings.database);
    if args.restart {
        let _ = std::fs::remove_file(&progress_path);
    }
    let mut progress = Progress::load(&progress_path, &destination)?;
    let copied = if target == "clickhouse" {
        to_clickhouse(config, &data, &meta, &projects, ClickHouseSink::new(client), &mut progress, &progress_path)?
    } else {
        to_embedded(config, &data, &meta, &projects, EventReader::new(client), &mut progress, &progress_path)?
    };
    eprintln!(
        "copied {} events ({} days) to {target}; {} days were already done. Now set storage.backend = \"{target}\".",
        copied.events, copied.days, copied.skipped_days
    );
    Ok(())
}

#[derive(Debug, Default)]
struct Copied {
    events: u64,
    days: u64,
    skipped_days: u64,
}

fn to_clickhouse(config: &Config, data: &Path, meta: &std::sync::Arc<meta::Meta>, projects: &[meta::Project], sink: ClickHouseSink, progress: &mut Progress, progress_path: &Path) -> anyhow::Result<Copied> {
    // The embedded store as it is, WAL replayed; the server must be stopped.
    let store = open_store(config, data, meta)?;
    let snapshot = store.snapshot();
    let days: Vec<(ProjectId, i32)> = projects.iter().flat_map(|p| snapshot.day_sources(p.id).into_iter().map(move |s| (p.id, s.day))).collect();
    let copied = copy_days(days, "days to ClickHouse", progress, progress_path, |project, day| {
        let rows = snapshot.day_rows(project, day)?;
        for batch in rows.chunks(BATCH_ROWS) {
            sink.insert(project, batch.iter().map(clickhouse_store::RowRef::from))?;
        }
        Ok(rows.len() as u64)
    })?;
    drop(snapshot);
    store.close()?;
    Ok(copied)
}

fn to_embedded(config: &Config, data: &Path, meta: &std::sync::Arc<meta::Meta>, projects: &[meta::Project], reader: EventReader, progress: &mut Progress, progress_path: &Path) -> anyhow::Result<Copied> {
    let store = open_store(config, data, meta)?;
    let mut days: Vec<(ProjectId, i32)> = Vec::new();
    for project in projects {
        days.extend(reader.days(project.id, 0, i32::MAX)?.into_iter().map(|day| (project.id, day)));
    }
    let copied = copy_days(days, "days to the embedded store", progress, progress_path, |project, day| {
        let rows = reader.day_rows(project, day)?;
        let n = rows.len() as u64;
        let mut events: Vec<events::Event> = Vec::with_capacity(rows.len().min(BATCH_ROWS));
        for row in rows {
            events.push(row.into_event());
            if events.len() == BATCH_ROWS {
                store.append_blocking(project, std::mem::take(&mut events))?;
            }
        }
        if !events.is_empty() {
            store.append_blocking(project, events)?;
        }
        // Appends are durable in the WAL once acknowledged: the day is safe.
        Ok(n)
    })?;
    store.close()?;
    Ok(copied)
}

/// The data directory's embedded store; the server must be stopped.
fn open_store(config: &Config, data: &Path, meta: &std::sync::Arc<meta::Meta>) -> anyhow::Result<store::Store> {
    crate::commands::open_store(data, config.store_config(), meta).context("stop the server first")
}

/// Copies each day not yet done with `copy_day` (answering the events it
/// copied), recording it as done once copied, with a progress bar.
fn copy_days(
    days: Vec<(ProjectId, i32)>,
    label: &str,
    progress: &mut Progress,
    progress_path: &Path,
    mut copy_day: impl FnMut(ProjectId, i32) -> anyhow::Result<u64>,
) -> anyhow::Result<Copied> {
    let bar = count_bar(days.len() as u64, label);
    let mut copied = Copied::default();
    for (project, day) in days {
        if progress.is_done(project, day) {
            copied.skipped_days += 1;
        } else {
            copied.events += copy_day(project, day)?;
            copied.days += 1;
            progress.mark_done(project, day, progress_path)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(copied)
}

/// The days already copied, and where to: a progress file for another
/// destination is not resumed.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    destination: String,
    done: BTreeSet<(u32, i32)>,
}

impl Progress {
    fn load(path: &Path, destination: &str) -> anyhow::Result<Progress> {
        let fresh = Progress { destination: destination.to_owned(), done: BTreeSet::new() };
        let Ok(text) = std::fs::read_to_string(path) else { return Ok(fresh) };
        let progress: Progress = serde_json::from_str(&text).with_context(|| format!("reading {} (remove it, or pass --restart, to start over)", path.display()))?;
        if progress.destination != destination {
            eprintln!("{} was for {}; starting over for {destination}", path.display(), progress.destination);
            return Ok(fresh);
        }
        if !progress.done.is_empty() {
            eprintln!("resuming: {} days were copied by an earlier run", progress.done.len());
        }
        Ok(progress)
    }

    fn is_done(&self, project: ProjectId, day: i32) -> bool {
        self.done.contains(&(project.0, day))
    }

    fn mark_done(&mut self, project: ProjectId, day: i32, path: &Path) -> anyhow::Result<()> {
        self.done.insert((project.0, day));
        let temp: PathBuf = path.with_extension("json.tmp");
        std::fs::write(&temp, serde_json::to_vec(self)?).with_context(|| format!("writing {}", temp.display()))?;
        std::fs::File::open(&temp)?.sync_all()?;
        std::fs::rename(&temp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}
