//! Compaction: a day's parts merged, duplicates dropped.
//!
//! Levelled, so that each event is rewritten a logarithmic number of times:
//! a flush writes parts of level 0; once a day has `compact_min_parts` parts
//! of one level, they are merged into one part of the next level, and so on.
//! Merging a whole day at every step would rewrite it once per flush.
//!
//! Runs on the flush thread, so the manifest has one writer. The replaced
//! parts are marked obsolete and their files deleted when the last snapshot
//! that still reads them is dropped.

use crate::error::Error;
use crate::flush::Flusher;
use crate::part;
use crate::store::PartRef;
use events::ProjectId;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Merges every part of one day into one (when it has more than one).
pub(crate) fn settle_day(flusher: &mut Flusher, project: ProjectId, day: i32) -> Result<bool, Error> {
    let mut inputs: Vec<Arc<PartRef>> = {
        let state = flusher.shared.state();
        state.parts.iter().filter(|p| p.meta.project == project && p.meta.day == day).cloned().collect()
    };
    if inputs.len() < 2 {
        return Ok(false);
    }
    let started = Instant::now();
    // Oldest data first: higher levels hold older data, and ids grow within a level.
    inputs.sort_by_key(|p| (std::cmp::Reverse(p.meta.level), p.meta.id));
    let level = inputs.iter().map(|p| p.meta.level).max().unwrap_or(0) + 1;
    let merged = merge(flusher, project, day, &inputs, level)?;
    replace(flusher, &inputs, merged)?;
    metrics::histogram!("hearth_compaction_seconds").record(started.elapsed().as_secs_f64());
    Ok(true)
}

/// Merges the parts of the lowest level of one day that has enough of them;
/// false when no level has.
pub(crate) fn merge_one_level(flusher: &mut Flusher, project: ProjectId, day: i32) -> Result<bool, Error> {
    let n_parts_min = flusher.shared.config.compact_min_parts.max(2);
    let day_parts: Vec<Arc<PartRef>> = {
        let state = flusher.shared.state();
        state.parts.iter().filter(|p| p.meta.project == project && p.meta.day == day).cloned().collect()
    };
    let mut levels: Vec<u32> = day_parts.iter().map(|p| p.meta.level).collect();
    levels.sort_unstable();
    levels.dedup();
    let Some(level) = levels.into_iter().find(|level| day_parts.iter().filter(|p| p.meta.level == *level).count() >= n_parts_min) else {
        return Ok(false);
    };
    let inputs: Vec<Arc<PartRef>> = day_parts.into_iter().filter(|p| p.meta.level == level).collect();
    let started = Instant::now();
    // Oldest data first, so that deduplication keeps the latest copy.
    let mut ordered = inputs.clone();
    ordered.sort_by_key(|p| p.meta.id);
    let merged = merge(flusher, project, day, &ordered, level + 1)?;
    replace(flusher, &inputs, merged)?;
    metrics::histogram!("hearth_compaction_seconds").record(started.elapsed().as_secs_f64());
    metrics::gauge!("hearth_parts").set(flusher.manifest.parts.len() as f64);
    Ok(true)
}

/// Column-wise when the inputs' schemas unify (the usual case), else row by row.
fn merge(flusher: &mut Flusher, project: ProjectId, day: i32, ordered: &[Arc<PartRef>], level: u32) -> Result<crate::manifest::PartMeta, Error> {
    let paths: Vec<&std::path::Path> = ordered.iter().map(|p| p.path.as_path()).collect();
    let (meta, path) = flusher.allocate_part(project, day, level, &[]);
    if let Some(merged) = part::merge_parts(&paths, &path)? {
        flusher.n_unsynced_files += 1;
        flusher.make_durable()?;
        return Ok(crate::manifest::PartMeta { rows: merged.rows, bytes: merged.bytes, min_time_ms: merged.min_time_ms, max_time_ms: merged.max_time_ms, ..meta });
    }
    let mut rows = Vec::new();
    for input in ordered {
        rows.extend(part::read_part(&input.path)?);
    }
    let mut refs: Vec<&crate::buffer::Row> = rows.iter().collect();
    crate::flush::sort_and_dedup(&mut refs);
    let merged = flusher.write_part(project, day, &refs, level)?;
    flusher.make_durable()?;
    Ok(merged)
}

/// Publishes `merged` in place of `inputs`: manifest first, then the readers'
/// state; the inputs' files go when the last snapshot reading them does.
fn replace(flusher: &mut Flusher, inputs: &[Arc<PartRef>], merged: crate::manifest::PartMeta) -> Result<(), Error> {
    let input_ids: Vec<u64> = inputs.iter().map(|p| p.meta.id).collect();
    flusher.manifest.parts.retain(|p| !input_ids.contains(&p.id));
    flusher.manifest.parts.push(merged.clone());
    flusher.manifest.save(&flusher.shared.data_dir)?;
    {
        let mut state = flusher.shared.state();
        state.parts.retain(|p| !input_ids.contains(&p.meta.id));
        state.parts.push(Arc::new(PartRef::new(&flusher.shared.data_dir, merged)));
    }
    for input in inputs.iter() {
        input.obsolete.store(true, Ordering::Release);
    }
    metrics::gauge!("hearth_parts").set(flusher.manifest.parts.len() as f64);
    Ok(())
}
