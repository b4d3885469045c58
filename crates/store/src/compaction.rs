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
    let mut rows = Vec::new();
    // Older parts first, so that the dedup keeps the latest-ingested copy.
    let mut ordered = inputs.clone();
    ordered.sort_by_key(|p| p.meta.id);
    for input in &ordered {
        rows.extend(part::read_part(&input.path)?);
    }
    let mut refs: Vec<&crate::buffer::Row> = rows.iter().collect();
    crate::flush::sort_and_dedup(&mut refs);
    let merged = flusher.write_part(project, day, &refs, level + 1)?;
    flusher.sync_new_dirs()?;
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
