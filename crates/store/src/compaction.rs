//! Compaction: a day's parts merged into one, duplicates dropped.
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

pub(crate) fn compact_day(flusher: &mut Flusher, project: ProjectId, day: i32) -> Result<bool, Error> {
    let inputs: Vec<Arc<PartRef>> = {
        let state = flusher.shared.state();
        state.parts.iter().filter(|p| p.meta.project == project && p.meta.day == day).cloned().collect()
    };
    if inputs.len() < flusher.shared.config.compact_min_parts.max(2) {
        return Ok(false);
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    // Older parts first, so that the dedup keeps the latest-ingested copy.
    let mut ordered = inputs.clone();
    ordered.sort_by_key(|p| p.meta.id);
    for input in &ordered {
        rows.extend(part::read_part(&input.path)?);
    }
    let level = inputs.iter().map(|p| p.meta.level).max().unwrap_or(0) + 1;
    let merged = flusher.write_part(project, day, rows, level)?;
    let input_ids: Vec<u64> = inputs.iter().map(|p| p.meta.id).collect();
    flusher.manifest.parts.retain(|p| !input_ids.contains(&p.id));
    flusher.manifest.parts.push(merged.clone());
    flusher.manifest.save(&flusher.shared.data_dir)?;
    {
        let mut state = flusher.shared.state();
        state.parts.retain(|p| !input_ids.contains(&p.meta.id));
        state.parts.push(Arc::new(PartRef::new(&flusher.shared.data_dir, merged)));
    }
    for input in inputs {
        input.obsolete.store(true, Ordering::Release);
    }
    metrics::histogram!("hearth_compaction_seconds").record(started.elapsed().as_secs_f64());
    metrics::gauge!("hearth_parts").set(flusher.manifest.parts.len() as f64);
    Ok(true)
}
