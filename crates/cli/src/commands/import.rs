//! `hearth import`: Mixpanel JSONL (raw export or import format, plain or
//! gzip) into a project, with Mixpanel's /import validation, in batches of
//! 2000 written through the WAL like any other event.

use crate::args::ImportArgs;
use crate::commands::{data_dir, open_project};
use crate::config::Config;
use crate::progress::bytes_bar;
use anyhow::Context;
use mixpanel::{Mode, RecordOutcome};
use std::io::{BufRead, BufReader, Read};

const BATCH_EVENTS: usize = 2000;

pub(crate) fn run(config: &Config, args: ImportArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.remote.url {
        let remote = super::remote::Remote::new(url, args.remote.secret.as_deref().unwrap_or_default())?;
        let mut sent = super::remote::Sent::default();
        for path in &args.files {
            super::remote::import_file(&remote, path, &mut sent).with_context(|| format!("importing {}", path.display()))?;
        }
        eprintln!("imported {} events through {url}; {} rejected", sent.imported, sent.rejected);
        for example in &sent.examples {
            eprintln!("  rejected: {example}");
        }
        return Ok(());
    }
    let data = data_dir(config, &args.data);
    let (meta, project) = open_project(config, &data, args.project.as_deref().unwrap_or_default())?;
    let meta = std::sync::Arc::new(meta);
    let protector = crate::commands::open_protector(config, &data, meta.clone())?;
    let links = meta::LinkCache::default();
    let store = crate::commands::open_store(&data, config.ingest_store_config(crate::config::Unreachable::Fail, &protector)?, &meta)?;
    let limits = config.limits();
    let mut totals = Totals::default();
    for path in &args.files {
        import_file(&store, (&meta, &links, &protector), project.id, path, &limits, &mut totals).with_context(|| format!("importing {}", path.display()))?;
    }
    store.close()?;
    eprintln!("imported {} events into {:?}; {} rejected, {} ignored", totals.imported, project.name, totals.rejected, totals.ignored);
    for example in &totals.examples {
        eprintln!("  rejected: {example}");
    }
    Ok(())
}

#[derive(Default)]
struct Totals {
    imported: u64,
    rejected: u64,
    ignored: u64,
    examples: Vec<String>,
}

/// Counts bytes read from the file, for the progress bar.
pub(crate) struct Counting<R> {
    pub(crate) inner: R,
    pub(crate) bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn import_file(store: &store::Store, (meta, links, protector): (&meta::Meta, &meta::LinkCache, &protect::Protector), project: events::ProjectId, path: &std::path::Path, limits: &mixpanel::Limits, totals: &mut Totals) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let bar = bytes_bar(size, &path.display().to_string());
    let mut counting = BufReader::new(Counting { inner: file, bar: bar.clone() });
    let is_gzip = counting.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn BufRead> =
        if is_gzip { Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(counting))) } else { Box::new(counting) };
    let now_ms = events::now_ms();
    // Events without $insert_id get a random one: they are not deduplicated.
    let mut new_insert_id = || hex::encode(rand::random::<[u8; 16]>());
    let mut batch = Vec::with_capacity(BATCH_EVENTS);
    let mut protection = protector.batch(project)?;
    for (line_index, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", line_index + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: serde_json::Value = match serde_json::from_str(&line) {
            Ok(record) => record,
            Err(error) => {
                note_rejection(totals, format!("line {}: not JSON ({error})", line_index + 1));
                continue;
            }
        };
        match mixpanel::validate_event(line_index, record, Mode::Import, now_ms, limits, &mut new_insert_id) {
            RecordOutcome::Accepted(input) => {
                let mut event = input.event;
                if protection.event(&mut event)? == privacy::apply::Verdict::Keep {
                    batch.push(event);
                } else {
                    totals.ignored += 1;
                }
            }
            RecordOutcome::Ignored => totals.ignored += 1,
            RecordOutcome::Rejected(error) => note_rejection(totals, format!("line {}: {}: {}", line_index + 1, error.field, error.message)),
        }
        if batch.len() == BATCH_EVENTS {
            totals.imported += batch.len() as u64;
            // Sealed values, then identity links, then events, as the server does.
            std::mem::replace(&mut protection, protector.batch(project)?).commit()?;
            links.record(meta, project, &batch)?;
            store.append_blocking(project, std::mem::take(&mut batch))?;
        }
    }
    protection.commit()?;
    if !batch.is_empty() {
        totals.imported += batch.len() as u64;
        links.record(meta, project, &batch)?;
        store.append_blocking(project, batch)?;
    }
    bar.finish_and_clear();
    Ok(())
}

fn note_rejection(totals: &mut Totals, example: String) {
    totals.rejected += 1;
    if totals.examples.len() < 10 {
        totals.examples.push(example);
    }
}
