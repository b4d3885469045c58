//! The flush thread: sealed buffers become parts, and parts get compacted.
//!
//! Order of a flush, each step durable before the next: new user ids to the
//! user log; the part files; the manifest naming them and the new replay
//! point; only then the WAL segments the parts replace are deleted. A crash
//! between any two steps leaves the WAL able to rebuild what is missing, and
//! part files the manifest does not name are deleted on open.

use crate::buffer::{Buffer, Row};
use crate::compaction;
use crate::error::Error;
use crate::ingest::Done;
use crate::manifest::{part_path, Manifest, PartMeta};
use crate::part;
use crate::store::{PartRef, Shared};
use crate::users::{PendingUsers, UserLog};
use events::{day_of_ms, ProjectId};
use std::collections::BTreeMap;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) struct FlushJob {
    pub(crate) buffer: Arc<Buffer>,
    pub(crate) users: PendingUsers,
    /// The WAL segment the ingest thread moved on to; older ones are covered.
    pub(crate) replay_from: u64,
    pub(crate) waiters: Vec<Done>,
}

pub(crate) fn spawn(shared: Arc<Shared>, manifest: Manifest, user_log: UserLog) -> Result<(mpsc::Sender<FlushJob>, mpsc::Sender<crate::rewrite::RewriteJob>, JoinHandle<()>), Error> {
    let (sender, receiver) = mpsc::channel::<FlushJob>();
    let (rewrite_sender, rewrite_receiver) = mpsc::channel::<crate::rewrite::RewriteJob>();
    // Days left with several parts by an earlier run are settled too.
    let mut parts_per_day: BTreeMap<(ProjectId, i32), usize> = BTreeMap::new();
    for part in &manifest.parts {
        *parts_per_day.entry((part.project, part.day)).or_default() += 1;
    }
    let settle_backlog = parts_per_day.into_iter().filter(|(_, n)| *n > 1).map(|(day, _)| day).collect();
    let mut flusher = Flusher {
        shared: shared.clone(),
        manifest,
        user_log,
        n_unsynced_files: 0,
        compaction_backlog: Default::default(),
        settle_backlog,
        last_flush: Instant::now(),
    };
    let thread = std::thread::Builder::new()
        .name("hearth-flush".into())
        .spawn(move || flusher.run_loop(&receiver, &rewrite_receiver))
        .map_err(|source| Error::Io { path: shared.data_dir.clone(), source })?;
    Ok((sender, rewrite_sender, thread))
}

pub(crate) struct Flusher {
    pub(crate) shared: Arc<Shared>,
    pub(crate) manifest: Manifest,
    user_log: UserLog,
    /// Part files written since the last [`Flusher::make_durable`].
    pub(crate) n_unsynced_files: usize,
    /// Days with new parts that may need merging.
    compaction_backlog: std::collections::BTreeSet<(ProjectId, i32)>,
    /// Days with more than one part, to be merged whole once writes pause.
    settle_backlog: std::collections::BTreeSet<(ProjectId, i32)>,
    last_flush: Instant,
}

/// How long the flush thread waits for a job before doing compaction work.
const IDLE_POLL: Duration = Duration::from_millis(50);

impl Flusher {
    /// Flushes come first; compaction runs one merge at a time while no flush
    /// waits, and the backlog is drained before the thread stops.
    fn run_loop(&mut self, receiver: &mpsc::Receiver<FlushJob>, rewrites: &mpsc::Receiver<crate::rewrite::RewriteJob>) {
        loop {
            match receiver.recv_timeout(IDLE_POLL) {
                Ok(job) => self.run(job),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    while self.compact_step() {}
                    return;
                }
            }
            // Rewrites (retention, erasure, policy) go before compaction:
            // someone waits for them.
            while self.shared.pending_flushes.load(std::sync::atomic::Ordering::Acquire) == 0 {
                match rewrites.try_recv() {
                    Ok(job) => self.rewrite(job),
                    Err(_) => break,
                }
            }
            while self.shared.pending_flushes.load(std::sync::atomic::Ordering::Acquire) == 0 && self.compact_step() {}
            let settle_after = Duration::from_millis(self.shared.config.settle_after_ms);
            while self.last_flush.elapsed() >= settle_after && self.shared.pending_flushes.load(std::sync::atomic::Ordering::Acquire) == 0 && self.settle_step() {}
            let backlog = self.compaction_backlog.len() + self.settle_backlog.len();
            metrics::gauge!("hearth_compaction_backlog_days").set(backlog as f64);
        }
    }

    /// Merges every part of one day written since it was last settled into
    /// one; false when there is nothing to settle.
    fn settle_step(&mut self) -> bool {
        let Some(&(project, day)) = self.settle_backlog.iter().next() else { return false };
        self.settle_backlog.remove(&(project, day));
        if let Err(error) = compaction::settle_day(self, project, day) {
            tracing::error!(%error, project = project.0, day, "settling a day failed; its parts stay as they are");
        }
        true
    }

    fn run(&mut self, job: FlushJob) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.flush(&job) {
                Ok(touched) => {
                    self.shared.pending_flushes.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                    job.waiters.into_iter().for_each(|done| done(Ok(())));
                    self.last_flush = Instant::now();
                    self.settle_backlog.extend(touched.iter().copied());
                    self.compaction_backlog.extend(touched);
                    return;
                }
                Err(error) => {
                    // The events stay in the WAL and visible in the sealed
                    // buffer; try again rather than lose the order of flushes.
                    tracing::error!(%error, retry_in_ms = delay.as_millis() as u64, "flush failed");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    fn flush(&mut self, job: &FlushJob) -> Result<Vec<(ProjectId, i32)>, Error> {
        let started = Instant::now();
        self.user_log.persist(&job.users)?;
        // Whatever was derived from these events and is still only in memory
        // (the dependent) must be durable before their WAL segments go.
        let dependent = self.shared.config.wal_dependent.clone();
        if let Some(sink) = self.shared.config.sink.clone() {
            make_dependent_durable(dependent.as_deref())?;
            return self.flush_to_sink(job, sink.as_ref(), started);
        }
        let groups = group_by_project_day(&job.buffer);
        // When ingestion outpaces flushing (the next buffer is already a
        // quarter full), the dependent (identity links in SQLite, much of it
        // waiting on pages and fsyncs) is made durable while the parts are
        // written: a long import then waits less for flushes. Otherwise
        // first: a third busy thread on two cores would delay requests.
        let behind = self.shared.state().active.n_rows >= self.shared.config.flush_rows / 4;
        let (first, beside) = if behind { (None, dependent) } else { (dependent, None) };
        make_dependent_durable(first.as_deref())?;
        let (beside_result, new_parts) = std::thread::scope(|scope| {
            let beside = beside.as_deref().map(|dependent| scope.spawn(move || make_dependent_durable(Some(dependent))));
            let new_parts = self.write_parts_in_parallel(groups);
            (beside.map_or(Ok(()), |thread| thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))), new_parts)
        });
        let new_parts = new_parts?;
        beside_result?;
        self.make_durable()?;
        let touched: Vec<(ProjectId, i32)> = new_parts.iter().map(|p| (p.project, p.day)).collect();
        self.manifest.parts.extend(new_parts.iter().cloned());
        self.manifest.replay_from = job.replay_from;
        self.manifest.save(&self.shared.data_dir)?;
        {
            let mut state = self.shared.state();
            state.parts.extend(new_parts.into_iter().map(|meta| Arc::new(PartRef::new(&self.shared.data_dir, meta))));
            state.sealed.retain(|sealed| !Arc::ptr_eq(sealed, &job.buffer));
        }
        wal::Wal::open(&self.shared.data_dir.join("wal"))?.remove_segments_before(job.replay_from)?;
        metrics::histogram!("hearth_flush_seconds").record(started.elapsed().as_secs_f64());
        metrics::gauge!("hearth_parts").set(self.manifest.parts.len() as f64);
        Ok(touched)
    }

    /// Hands the buffer's rows to the external database, then moves the
    /// replay point past them: the same order as a flush to parts, with the
    /// sink's acknowledgement in place of the durable part files.
    fn flush_to_sink(&mut self, job: &FlushJob, sink: &dyn crate::EventSink, started: Instant) -> Result<Vec<(ProjectId, i32)>, Error> {
        let mut by_project: BTreeMap<ProjectId, Vec<&Row>> = BTreeMap::new();
        for chunk in &job.buffer.chunks {
            by_project.entry(chunk.project).or_default().extend(chunk.rows.iter());
        }
        for (project, mut rows) in by_project {
            sort_and_dedup(&mut rows);
            if let Some(gate) = &self.shared.config.sink_gate {
                let held = gate.hold_back(project, &mut rows).map_err(|error| Error::Sink(error.to_string()))?;
                if held > 0 {
                    tracing::info!(project = project.0, events = held, "held back events of erased people from the event database");
                    metrics::counter!("hearth_events_held_back_total").increment(held as u64);
                }
            }
            sink.write(project, &rows).map_err(|error| Error::Sink(error.to_string()))?;
        }
        self.manifest.replay_from = job.replay_from;
        self.manifest.save(&self.shared.data_dir)?;
        self.shared.state().sealed.retain(|sealed| !Arc::ptr_eq(sealed, &job.buffer));
        wal::Wal::open(&self.shared.data_dir.join("wal"))?.remove_segments_before(job.replay_from)?;
        metrics::histogram!("hearth_flush_seconds").record(started.elapsed().as_secs_f64());
        Ok(Vec::new())
    }

    /// Writes one part per (project, day) group on two threads: a flush of
    /// historical data has a group for each of many days, and while it runs
    /// ingestion may be waiting for it, so the second core is free. Each
    /// thread takes the largest group left: days differ in size (in the
    /// benchmark's import the later half of the days holds two thirds of the
    /// events), and a fixed half each left one thread idle a third of the time.
    fn write_parts_in_parallel(&mut self, groups: BTreeMap<(ProjectId, i32), Vec<&Row>>) -> Result<Vec<PartMeta>, Error> {
        let columns_max = self.shared.config.property_columns_max;
        let mut jobs: Vec<(PartMeta, std::path::PathBuf, Vec<&Row>)> = Vec::with_capacity(groups.len());
        for ((project, day), mut rows) in groups {
            sort_and_dedup(&mut rows);
            let (meta, path) = self.allocate_part(project, day, 0, &rows);
            jobs.push((meta, path, rows));
        }
        let mut largest_first: Vec<usize> = (0..jobs.len()).collect();
        largest_first.sort_by_key(|&index| std::cmp::Reverse(jobs[index].2.len()));
        let next = std::sync::atomic::AtomicUsize::new(0);
        // Each thread's written parts as (job index, bytes).
        let work = || -> Result<Vec<(usize, u64)>, Error> {
            let mut written = Vec::new();
            while let Some(&index) = largest_first.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                let (_, path, rows) = &jobs[index];
                written.push((index, part::write_part(path, rows, columns_max, part::PartCompression::Transient)?.bytes));
            }
            Ok(written)
        };
        let (helper_result, own_result) = std::thread::scope(|scope| {
            let helper = scope.spawn(work);
            let own_result = work();
            (helper.join(), own_result)
        });
        let helper_written = helper_result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        for (index, bytes) in own_result?.into_iter().chain(helper_written) {
            jobs[index].0.bytes = bytes;
        }
        self.n_unsynced_files += jobs.len();
        Ok(jobs.into_iter().map(|(meta, _, _)| meta).collect())
    }

    /// Writes rows of one project and day, sorted and deduplicated by
    /// [`sort_and_dedup`], as a part.
    pub(crate) fn write_part(&mut self, project: ProjectId, day: i32, rows: &[&Row], level: u32) -> Result<PartMeta, Error> {
        let (mut meta, path) = self.allocate_part(project, day, level, rows);
        let written = part::write_part(&path, rows, self.shared.config.property_columns_max, part::PartCompression::for_level(level))?;
        meta.bytes = written.bytes;
        self.n_unsynced_files += 1;
        Ok(meta)
    }

    /// A new part id with its file path, and the part's facts as far as
    /// `rows` tell them (empty `rows`: filled in by the caller); the file
    /// counts as unsynced once written (see [`Flusher::make_durable`]).
    pub(crate) fn allocate_part(&mut self, project: ProjectId, day: i32, level: u32, rows: &[&Row]) -> (PartMeta, std::path::PathBuf) {
        let id = self.manifest.next_part_id;
        self.manifest.next_part_id += 1;
        let meta = PartMeta {
            id,
            project,
            day,
            rows: rows.len() as u64,
            bytes: 0,
            min_time_ms: rows.iter().map(|r| r.time_ms).min().unwrap_or_default(),
            max_time_ms: rows.iter().map(|r| r.time_ms).max().unwrap_or_default(),
            level,
        };
        let path = part_path(&self.shared.data_dir, &meta);
        (meta, path)
    }

    /// Makes every new part file, and the directories that name them, durable
    /// before the manifest may name them: one `syncfs` for the data
    /// directory's filesystem instead of an fsync per file and directory
    /// (a flush of historical data writes a part for each of ~90 days, and
    /// per-file fsyncs of new files dominated its time).
    pub(crate) fn make_durable(&mut self) -> Result<(), Error> {
        if self.n_unsynced_files == 0 {
            return Ok(());
        }
        let data_dir = &self.shared.data_dir;
        let dir = std::fs::File::open(data_dir).map_err(|source| Error::Io { path: data_dir.clone(), source })?;
        rustix::fs::syncfs(&dir).map_err(|errno| Error::Io { path: data_dir.clone(), source: errno.into() })?;
        self.n_unsynced_files = 0;
        Ok(())
    }

    /// Does one merge from the backlog; false when there is nothing to do.
    fn compact_step(&mut self) -> bool {
        let Some(&(project, day)) = self.compaction_backlog.iter().next() else { return false };
        match compaction::merge_one_level(self, project, day) {
            Ok(true) => {}
            Ok(false) => {
                self.compaction_backlog.remove(&(project, day));
            }
            Err(error) => {
                tracing::error!(%error, project = project.0, day, "compaction failed; the parts stay as they are");
                self.compaction_backlog.remove(&(project, day));
            }
        }
        true
    }
}

fn make_dependent_durable(dependent: Option<&dyn crate::WalDependent>) -> Result<(), Error> {
    dependent.map_or(Ok(()), |dependent| dependent.make_durable().map_err(|error| Error::Dependent(error.to_string())))
}

/// The buffer's rows by project and UTC day, borrowed: a flush copies nothing.
fn group_by_project_day(buffer: &Buffer) -> BTreeMap<(ProjectId, i32), Vec<&Row>> {
    let mut groups: BTreeMap<(ProjectId, i32), Vec<&Row>> = BTreeMap::new();
    for chunk in &buffer.chunks {
        for row in &chunk.rows {
            groups.entry((chunk.project, day_of_ms(row.time_ms))).or_default().push(row);
        }
    }
    groups
}

/// Orders rows by (user, time, event, insert id) and keeps the last copy of
/// each deduplication key: rows come in ingest order, and the sort is stable.
pub(crate) fn sort_and_dedup<R: std::borrow::Borrow<Row>>(rows: &mut Vec<R>) {
    rows.sort_by(|a, b| {
        let (a, b) = (a.borrow(), b.borrow());
        (a.user_key, a.time_ms, &a.name, &a.insert_id).cmp(&(b.user_key, b.time_ms, &b.name, &b.insert_id))
    });
    let mut kept: Vec<R> = Vec::with_capacity(rows.len());
    for row in rows.drain(..) {
        match kept.last_mut() {
            Some(last) if last.borrow().same_dedup_key(row.borrow()) => *last = row,
            _ => kept.push(row),
        }
    }
    *rows = kept;
}
