//! The ingest thread: group commit.
//!
//! It takes every append that is waiting, frames them all into the current WAL
//! segment, syncs once, and only then makes the rows visible and reports
//! success. One fsync therefore covers as many requests as arrived while the
//! previous one ran, which is what lets small /track batches reach high rates.
//! The same thread decides when to seal the buffer, so the split between what
//! a flush covers and what the next WAL segment holds is exact.

use crate::buffer::{Chunk, Row};
use crate::codec;
use crate::error::Error;
use crate::flush::FlushJob;
use crate::store::Shared;
use crate::users::UserKeys;
use events::ProjectId;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Called once with the outcome of an append or a flush.
pub type Done = Box<dyn FnOnce(Result<(), Error>) + Send>;

pub(crate) enum Command {
    Append { batch: PreparedBatch, done: Done },
    Flush { done: Done },
    Shutdown,
}

/// Appends taken into one group commit at most; bounds the latency of the
/// first request in a group.
const GROUP_APPENDS_MAX: usize = 512;
const GROUP_BYTES_MAX: usize = 32 * 1024 * 1024;

pub(crate) struct IngestThread {
    shared: Arc<Shared>,
    wal: wal::Wal,
    segment: wal::SegmentWriter,
    users: UserKeys,
    flush_jobs: mpsc::Sender<FlushJob>,
    buffer_started: Option<Instant>,
}

impl IngestThread {
    pub(crate) fn new(shared: Arc<Shared>, wal: wal::Wal, users: UserKeys, flush_jobs: mpsc::Sender<FlushJob>) -> Result<IngestThread, Error> {
        let segment = wal.create_segment()?;
        let has_replayed_rows = !shared.state().active.is_empty();
        let buffer_started = has_replayed_rows.then(Instant::now);
        Ok(IngestThread { shared, wal, segment, users, flush_jobs, buffer_started })
    }

    pub(crate) fn run(mut self, commands: mpsc::Receiver<Command>) {
        let interval = Duration::from_millis(self.shared.config.flush_interval_ms);
        loop {
            let first = match commands.recv_timeout(interval) {
                Ok(command) => command,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.seal_if_due(Vec::new());
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let mut appends = Vec::new();
            let mut flush_waiters = Vec::new();
            let mut shutdown = false;
            let mut group_bytes = 0;
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Append { batch, done } => {
                        group_bytes += batch.payload.len();
                        appends.push((batch, done));
                    }
                    Command::Flush { done } => flush_waiters.push(done),
                    Command::Shutdown => shutdown = true,
                }
                if shutdown || appends.len() >= GROUP_APPENDS_MAX || group_bytes >= GROUP_BYTES_MAX {
                    break;
                }
                next = commands.try_recv().ok();
            }
            self.commit(appends);
            self.seal_if_due(flush_waiters);
            if shutdown {
                return;
            }
        }
    }

    fn commit(&mut self, appends: Vec<(PreparedBatch, Done)>) {
        if appends.is_empty() {
            return;
        }
        if self.shared.stopped.load(Ordering::Acquire) {
            appends.into_iter().for_each(|(_, done)| done(Err(Error::Stopped)));
            return;
        }
        let started = Instant::now();
        let written = appends.iter().try_for_each(|(batch, _)| self.segment.append(&batch.payload)).and_then(|()| self.segment.sync());
        metrics::histogram!("hearth_wal_fsync_seconds").record(started.elapsed().as_secs_f64());
        if let Err(error) = written {
            // The segment may now hold a partial group; nothing after it can be
            // trusted to be durable. Refuse all writes until a restart replays.
            tracing::error!(%error, "wal write failed; the store stops accepting events");
            self.shared.stopped.store(true, Ordering::Release);
            appends.into_iter().for_each(|(_, done)| done(Err(Error::Stopped)));
            return;
        }
        let mut chunks = Vec::with_capacity(appends.len());
        let mut dones = Vec::with_capacity(appends.len());
        for (batch, done) in appends {
            chunks.push(to_chunk(&mut self.users, batch.project, batch.rows));
            dones.push(done);
        }
        {
            let mut state = self.shared.state();
            for chunk in chunks {
                state.active.push(chunk);
            }
        }
        self.buffer_started.get_or_insert_with(Instant::now);
        for done in dones {
            done(Ok(()));
        }
    }

    fn seal_if_due(&mut self, flush_waiters: Vec<Done>) {
        let n_rows = self.shared.state().active.n_rows;
        let too_old = self
            .buffer_started
            .is_some_and(|started| started.elapsed() >= Duration::from_millis(self.shared.config.flush_interval_ms));
        let flush_rows = self.shared.config.flush_rows;
        let due = !flush_waiters.is_empty() || n_rows >= flush_rows || (too_old && n_rows > 0);
        if !due {
            return;
        }
        // Backpressure: one flush at a time. The buffer keeps growing while a
        // flush runs, up to one and a half times its size; then this thread
        // (and with it every append) waits, so memory stays bounded however
        // fast clients send.
        let must_seal = !flush_waiters.is_empty() || n_rows >= flush_rows + flush_rows / 2;
        if self.shared.pending_flushes.load(Ordering::Acquire) > 0 {
            if !must_seal {
                return;
            }
            let waiting_since = Instant::now();
            while self.shared.pending_flushes.load(Ordering::Acquire) > 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            metrics::histogram!("hearth_ingest_backpressure_seconds").record(waiting_since.elapsed().as_secs_f64());
        }
        if let Err(error) = self.seal(flush_waiters) {
            tracing::error!(%error, "could not start a new wal segment; the store stops accepting events");
            self.shared.stopped.store(true, Ordering::Release);
        }
    }

    /// Starts a new segment and hands the buffer to the flush thread.
    fn seal(&mut self, flush_waiters: Vec<Done>) -> Result<(), Error> {
        let next_segment = self.wal.create_segment()?;
        let sealed = {
            let mut state = self.shared.state();
            let buffer = Arc::new(std::mem::take(&mut state.active));
            state.sealed.push(buffer.clone());
            buffer
        };
        self.segment = next_segment;
        self.buffer_started = None;
        self.shared.pending_flushes.fetch_add(1, Ordering::AcqRel);
        let job = FlushJob { buffer: sealed, users: self.users.take_pending(), replay_from: self.segment.seq(), waiters: flush_waiters };
        if let Err(mpsc::SendError(job)) = self.flush_jobs.send(job) {
            self.shared.pending_flushes.fetch_sub(1, Ordering::AcqRel);
            job.waiters.into_iter().for_each(|done| done(Err(Error::Stopped)));
        }
        Ok(())
    }
}

/// Gives each row its user key.
pub(crate) fn to_chunk(users: &mut UserKeys, project: ProjectId, mut rows: Vec<Row>) -> Chunk {
    for row in &mut rows {
        row.user_key = users.key_for(project, &row.distinct_id);
    }
    Chunk::new(project, rows)
}

/// A batch ready for the ingest thread: rows with their properties serialised
/// and the WAL record encoded, done on the caller's thread so that the one
/// ingest thread only writes, syncs and indexes.
pub struct PreparedBatch {
    project: ProjectId,
    rows: Vec<Row>,
    payload: Vec<u8>,
}

impl PreparedBatch {
    pub fn new(project: ProjectId, events: Vec<events::Event>) -> PreparedBatch {
        let rows: Vec<Row> = events.into_iter().map(Row::from_event).collect();
        let payload = codec::encode(project, &rows);
        PreparedBatch { project, rows, payload }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
