//! Rewriting stored events in place: retention (drop what is too old),
//! erasure (drop a person's events) and re-applying a privacy policy
//! (change what events hold).
//!
//! Runs on the flush thread, the manifest's one writer, one part at a time:
//! each replacement part is written and made durable, then published in the
//! manifest in place of the old one, whose file goes when the last snapshot
//! reading it does. A crash between parts leaves some parts rewritten and
//! the rest not, each consistent; running the job again finishes it.
//!
//! A rewrite may change an event's properties or drop it, not its name,
//! time, distinct id or insert id: those place the row in its part and give
//! it its user key, which only the ingest thread hands out.

use crate::error::Error;
use crate::flush::Flusher;
use crate::manifest::PartMeta;
use crate::part;
use crate::store::PartRef;
use events::{Event, ProjectId};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

/// What to do with a whole part, decided from its metadata alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartFate {
    /// Leave it alone (nothing to change in it).
    Keep,
    /// Delete it without reading it (every row goes).
    Drop,
    /// Read its rows and pass each through the row rule.
    Inspect,
}

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFate {
    Unchanged,
    Changed,
    Dropped,
}

/// The rules of one rewrite.
pub trait Rewrite: Send {
    fn part(&mut self, part: &PartMeta) -> PartFate;
    fn row(&mut self, event: &mut Event) -> RowFate;
    /// Called before a rewritten part is published: whatever its new rows
    /// depend on (sealed values, say) must be durable when this returns.
    fn before_publish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// What a rewrite did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteReport {
    pub parts_seen: u64,
    pub parts_dropped: u64,
    pub parts_rewritten: u64,
    pub rows_read: u64,
    pub rows_dropped: u64,
    pub rows_changed: u64,
}

pub(crate) struct RewriteJob {
    pub(crate) project: ProjectId,
    pub(crate) rewrite: Box<dyn Rewrite>,
    pub(crate) progress: Box<dyn FnMut(u64, u64) + Send>,
    pub(crate) done: mpsc::Sender<Result<RewriteReport, Error>>,
}

impl Flusher {
    pub(crate) fn rewrite(&mut self, mut job: RewriteJob) {
        let result = self.rewrite_parts(&mut job);
        let _ = job.done.send(result);
    }

    fn rewrite_parts(&mut self, job: &mut RewriteJob) -> Result<RewriteReport, Error> {
        let parts: Vec<Arc<PartRef>> = {
            let state = self.shared.state();
            state.parts.iter().filter(|p| p.meta.project == job.project).cloned().collect()
        };
        let total = parts.len() as u64;
        let mut report = RewriteReport::default();
        for (index, part) in parts.iter().enumerate() {
            report.parts_seen += 1;
            match job.rewrite.part(&part.meta) {
                PartFate::Keep => {}
                PartFate::Drop => {
                    report.rows_dropped += part.meta.rows;
                    report.parts_dropped += 1;
                    self.publish_replacement(part, None)?;
                }
                PartFate::Inspect => {
                    let rows = part::read_part(&part.path)?;
                    report.rows_read += rows.len() as u64;
                    let mut kept = Vec::with_capacity(rows.len());
                    let mut touched = false;
                    for row in rows {
                        let mut event = row.to_event();
                        match job.rewrite.row(&mut event) {
                            RowFate::Unchanged => kept.push(row),
                            RowFate::Changed => {
                                touched = true;
                                report.rows_changed += 1;
                                kept.push(crate::buffer::StoredEvent { user_key: row.user_key, ..crate::buffer::StoredEvent::from_event(Event { name: row.name.to_string(), distinct_id: row.distinct_id.to_string(), time_ms: row.time_ms, insert_id: row.insert_id.to_string(), properties: event.properties }) });
                            }
                            RowFate::Dropped => {
                                touched = true;
                                report.rows_dropped += 1;
                            }
                        }
                    }
                    if touched {
                        job.rewrite.before_publish().map_err(|detail| Error::Rewrite { detail })?;
                        report.parts_rewritten += 1;
                        let replacement = if kept.is_empty() {
                            None
                        } else {
                            let refs: Vec<&crate::buffer::Row> = kept.iter().collect();
                            let meta = self.write_part(job.project, part.meta.day, &refs, part.meta.level)?;
                            self.make_durable()?;
                            Some(meta)
                        };
                        self.publish_replacement(part, replacement)?;
                    }
                }
            }
            (job.progress)(index as u64 + 1, total);
        }
        metrics::gauge!("hearth_parts").set(self.manifest.parts.len() as f64);
        Ok(report)
    }

    /// Puts `replacement` (or nothing) in the place of `old`: manifest first,
    /// then the readers' state.
    fn publish_replacement(&mut self, old: &Arc<PartRef>, replacement: Option<PartMeta>) -> Result<(), Error> {
        self.manifest.parts.retain(|p| p.id != old.meta.id);
        if let Some(meta) = &replacement {
            self.manifest.parts.push(meta.clone());
        }
        self.manifest.save(&self.shared.data_dir)?;
        {
            let mut state = self.shared.state();
            state.parts.retain(|p| p.meta.id != old.meta.id);
            if let Some(meta) = replacement {
                state.parts.push(Arc::new(PartRef::new(&self.shared.data_dir, meta)));
            }
        }
        old.obsolete.store(true, Ordering::Release);
        Ok(())
    }
}
