//! The jobs that make deletions reach the parts: erasures (a person's
//! events), retention (events older than the policy allows) and policy
//! rewrites (stored events brought under the current policy). Each is a
//! [`store::Rewrite`]; the server runs pending erasures and retention in
//! the background, the CLI runs them when no server holds the store.

use crate::{ProtectBatch, ProtectError, Protector};
use events::{Event, ProjectId, MS_PER_DAY};
use privacy::apply::Verdict;
use std::collections::HashSet;
use store::{PartFate, PartMeta, Rewrite, RewriteReport, RowFate, Store};

/// Drops every event of these distinct ids.
struct Erasure {
    ids: HashSet<String>,
}

impl Rewrite for Erasure {
    fn part(&mut self, _part: &PartMeta) -> PartFate {
        PartFate::Inspect
    }

    fn row(&mut self, event: &mut Event) -> RowFate {
        if self.ids.contains(&event.distinct_id) { RowFate::Dropped } else { RowFate::Unchanged }
    }
}

/// Drops every event older than `cutoff_ms`.
struct RetentionCut {
    cutoff_ms: i64,
}

impl Rewrite for RetentionCut {
    fn part(&mut self, part: &PartMeta) -> PartFate {
        if part.max_time_ms < self.cutoff_ms {
            PartFate::Drop
        } else if part.min_time_ms >= self.cutoff_ms {
            PartFate::Keep
        } else {
            PartFate::Inspect
        }
    }

    fn row(&mut self, event: &mut Event) -> RowFate {
        if event.time_ms < self.cutoff_ms { RowFate::Dropped } else { RowFate::Unchanged }
    }
}

/// Re-applies the current policy. Ids stay as stored: a rewrite cannot
/// move an event to another user (see `store::rewrite`).
struct PolicyRewrite {
    protector: std::sync::Arc<Protector>,
    project: ProjectId,
    batch: Option<ProtectBatch>,
    error: Option<String>,
}

impl Rewrite for PolicyRewrite {
    fn part(&mut self, _part: &PartMeta) -> PartFate {
        PartFate::Inspect
    }

    fn row(&mut self, event: &mut Event) -> RowFate {
        let Some(batch) = self.batch.as_mut() else { return RowFate::Unchanged };
        let before = event.clone();
        match batch.event(event) {
            Ok(Verdict::Drop) => RowFate::Dropped,
            Ok(Verdict::Keep) if *event == before => RowFate::Unchanged,
            Ok(Verdict::Keep) => RowFate::Changed,
            Err(error) => {
                self.error.get_or_insert(error.to_string());
                *event = before;
                RowFate::Unchanged
            }
        }
    }

    fn before_publish(&mut self) -> Result<(), String> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let next = self.protector.batch(self.project).map_err(|e| e.to_string())?.keeping_ids();
        if let Some(batch) = self.batch.replace(next) {
            batch.commit().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl Protector {
    /// Removes the events of every pending erasure from the parts, then
    /// marks each done; returns how many were finished.
    pub fn run_pending_erasures(&self, store: &Store, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<usize, ProtectError> {
        let pending = self.meta().pending_erasures()?;
        let mut n_finished = 0;
        for (erasure, ids) in pending {
            self.meta().set_erasure_status(&erasure.task_id, "STARTED")?;
            let task = erasure.task_id.clone();
            let (sender, receiver) = std::sync::mpsc::channel();
            let report = store.rewrite(erasure.project, Box::new(Erasure { ids: ids.iter().cloned().collect() }), Box::new(move |done, total| {
                let _ = sender.send((done, total));
            }))?;
            for (done, total) in receiver.try_iter() {
                progress(&task, done, total);
            }
            tracing::info!(task = %erasure.task_id, rows_dropped = report.rows_dropped, parts_rewritten = report.parts_rewritten, "erasure reached the parts");
            if let Some(sink) = store.sink() {
                // Events in an external database: this node's buffered rows
                // go there first, then every row of these people leaves it.
                store.flush()?;
                sink.delete_people(erasure.project, &ids).map_err(|e| ProtectError::External(e.to_string()))?;
                tracing::info!(task = %erasure.task_id, people = ids.len(), "erasure reached the event database");
            }
            self.meta().finish_erasure(&erasure.task_id)?;
            n_finished += 1;
        }
        Ok(n_finished)
    }

    /// Enforces the project's retention: events older than the policy
    /// allows leave the parts, stale profiles the metadata.
    pub fn enforce_retention(&self, store: &Store, project: ProjectId, now_ms: i64, progress: Box<dyn FnMut(u64, u64) + Send>) -> Result<Option<RewriteReport>, ProtectError> {
        let forgotten = self.meta().forget_erasure_tombstones(now_ms - crate::gate::TOMBSTONE_DAYS * MS_PER_DAY)?;
        if forgotten > 0 {
            tracing::info!(tombstones = forgotten, days = crate::gate::TOMBSTONE_DAYS, "forgot erasure tombstones");
        }
        let retention = self.policy(project)?.policy.retention;
        if let Some(days) = retention.profiles_days {
            let n = self.meta().delete_profiles_before(project, now_ms - i64::from(days) * MS_PER_DAY)?;
            if n > 0 {
                tracing::info!(project = project.0, profiles = n, "retention deleted stale profiles");
            }
        }
        let Some(days) = retention.events_days else { return Ok(None) };
        let cutoff_ms = now_ms - i64::from(days) * MS_PER_DAY;
        let report = store.rewrite(project, Box::new(RetentionCut { cutoff_ms }), progress)?;
        if let Some(sink) = store.sink() {
            sink.delete_before(project, cutoff_ms).map_err(|e| ProtectError::External(e.to_string()))?;
        }
        Ok(Some(report))
    }

    /// Re-applies the project's current policy to its stored events.
    pub fn rewrite_with_policy(self: &std::sync::Arc<Self>, store: &Store, project: ProjectId, progress: Box<dyn FnMut(u64, u64) + Send>) -> Result<RewriteReport, ProtectError> {
        let batch = self.batch(project)?.keeping_ids();
        let rewrite = PolicyRewrite { protector: self.clone(), project, batch: Some(batch), error: None };
        let report = store.rewrite(project, Box::new(rewrite), progress)?;
        Ok(report)
    }

    /// [`Protector::rewrite_with_policy`] where events live in an external
    /// database: each day is read (`days`), every row passed through the
    /// policy, and the changed rows written back through `sink` (the last
    /// written wins) after the values they seal are committed; the dropped
    /// ones are deleted. A day counts as a part in the report. Events still
    /// buffered on a node come under the policy only if that node ingested
    /// them after the policy was set.
    pub fn rewrite_with_policy_in(
        self: &std::sync::Arc<Self>,
        days: &dyn crate::EventDays,
        sink: &dyn store::EventSink,
        project: ProjectId,
        progress: &mut dyn FnMut(u64),
    ) -> Result<RewriteReport, ProtectError> {
        let batch = self.batch(project)?.keeping_ids();
        let mut rewrite = PolicyRewrite { protector: self.clone(), project, batch: Some(batch), error: None };
        let mut report = RewriteReport::default();
        let mut failure: Option<ProtectError> = None;
        let mut touched: Vec<i32> = Vec::new();
        days.scan_days(project, i32::MIN, i32::MAX, &mut |day| {
            report.parts_seen += 1;
            let (mut changed, mut dropped) = (Vec::new(), Vec::new());
            for row in &day.events {
                let mut event = row.to_event();
                match rewrite.row(&mut event) {
                    RowFate::Unchanged => {}
                    RowFate::Changed => changed.push(store::StoredEvent::from_event(event)),
                    RowFate::Dropped => dropped.push(row),
                }
            }
            report.rows_read += day.events.len() as u64;
            if changed.is_empty() && dropped.is_empty() {
                progress(report.rows_read);
                return true;
            }
            // The sealed values the new rows point at are durable first.
            let written = rewrite
                .before_publish()
                .map_err(ProtectError::External)
                .and_then(|()| sink.write(project, &changed.iter().collect::<Vec<_>>()).map_err(|e| ProtectError::External(e.to_string())))
                .and_then(|()| sink.delete_events(project, &dropped).map_err(|e| ProtectError::External(e.to_string())));
            if let Err(error) = written {
                failure = Some(error);
                return false;
            }
            report.parts_rewritten += 1;
            touched.push(day.day);
            report.rows_changed += changed.len() as u64;
            report.rows_dropped += dropped.len() as u64;
            progress(report.rows_read);
            true
        })
        .map_err(ProtectError::External)?;
        if let Some(error) = failure {
            return Err(error);
        }
        // The old versions of the changed rows leave the files too.
        sink.purge_replaced(project, &touched).map_err(|e| ProtectError::External(e.to_string()))?;
        Ok(report)
    }
}

/// How often the background job looks for pending erasures.
const ERASURE_POLL: std::time::Duration = std::time::Duration::from_secs(2);
/// How often retention runs.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl Protector {
    /// The server's privacy thread: finishes erasures within seconds of
    /// their request (also those recorded by `hearth gdpr delete` while the
    /// server held the store) and enforces retention at start and hourly.
    pub fn spawn_background(self: &std::sync::Arc<Self>, store: std::sync::Arc<Store>, projects: Box<dyn Fn() -> Vec<ProjectId> + Send>, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let protector = self.clone();
        std::thread::Builder::new().name("hearth-privacy".into()).spawn(move || {
            let mut last_retention: Option<std::time::Instant> = None;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                if let Err(error) = protector.run_pending_erasures(&store, &mut |_, _, _| {}) {
                    tracing::error!(%error, "finishing erasures failed; retrying");
                }
                if last_retention.is_none_or(|at| at.elapsed() >= RETENTION_EVERY) {
                    for project in projects() {
                        match protector.enforce_retention(&store, project, events::now_ms(), Box::new(|_, _| {})) {
                            Ok(Some(report)) if report.rows_dropped > 0 => tracing::info!(project = project.0, rows = report.rows_dropped, parts = report.parts_dropped, "retention deleted old events"),
                            Ok(_) => {}
                            Err(error) => tracing::error!(%error, project = project.0, "retention failed"),
                        }
                    }
                    last_retention = Some(std::time::Instant::now());
                }
                let mut waited = std::time::Duration::ZERO;
                while waited < ERASURE_POLL && !stop.load(std::sync::atomic::Ordering::Acquire) {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    waited += std::time::Duration::from_millis(100);
                }
            }
        })
    }
}
