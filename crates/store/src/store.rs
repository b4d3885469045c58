//! The public face of the store and the state its threads share.

use crate::buffer::{Buffer, Chunk};
use crate::error::Error;
use crate::ingest::{Command, Done, IngestThread, PreparedBatch};
use crate::manifest::{part_path, PartMeta};
use crate::snapshot::Snapshot;
use crate::{flush, recovery};
use events::{Event, ProjectId};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Knobs of the store. Every field is explicit so that tests can make the
/// buffer tiny and exercise flushes and compactions constantly.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Seal and flush the buffer once it holds this many events. While a
    /// flush is running the buffer may grow to one and a half times this;
    /// beyond, ingestion waits for the flush (memory is bounded by about
    /// three buffers). Twice, as before identity links were queued, let a
    /// 10M-event import reach 314 MB of RSS for 4% more throughput.
    /// 32,000 by default: measured with `hearth-bench ingest`, half of that
    /// costs /track throughput, twice as much costs about 80 MB of RSS for no
    /// gain.
    pub flush_rows: usize,
    /// ... or once its oldest event is this old.
    pub flush_interval_ms: u64,
    /// Merge a day's parts once it has this many.
    pub compact_min_parts: usize,
    /// Typed property columns per part; the rest go to the overflow column.
    pub property_columns_max: usize,
    /// Appends queued beyond this are refused (the server answers 429).
    pub queue_batches_max: usize,
    /// After this long without a flush, each day written since is merged into
    /// a single part ("settled"): smaller on disk, one pass per day to read.
    pub settle_after_ms: u64,
    /// When set, sealed buffers go to this external database instead of
    /// parts (see [`crate::EventSink`]); nothing is compacted here then.
    pub sink: Option<std::sync::Arc<dyn crate::EventSink>>,
    /// With a sink: the rows it must not get (see [`crate::SinkGate`]).
    pub sink_gate: Option<std::sync::Arc<dyn crate::SinkGate>>,
    /// What must be durable before a flush deletes WAL segments (see
    /// [`crate::WalDependent`]): the metadata's queued identity links.
    pub wal_dependent: Option<std::sync::Arc<dyn crate::WalDependent>>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            flush_rows: 32_000,
            flush_interval_ms: 10_000,
            compact_min_parts: 8,
            property_columns_max: 128,
            queue_batches_max: 4096,
            settle_after_ms: 30_000,
            sink: None,
            sink_gate: None,
            wal_dependent: None,
        }
    }
}

/// A published part and the file behind it. The file is deleted when the part
/// was replaced by compaction and the last snapshot holding it is gone.
#[derive(Debug)]
pub(crate) struct PartRef {
    pub(crate) meta: PartMeta,
    pub(crate) path: PathBuf,
    pub(crate) obsolete: AtomicBool,
}

impl PartRef {
    pub(crate) fn new(data_dir: &Path, meta: PartMeta) -> PartRef {
        PartRef { path: part_path(data_dir, &meta), meta, obsolete: AtomicBool::new(false) }
    }
}

impl Drop for PartRef {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire)
            && let Err(error) = std::fs::remove_file(&self.path) {
                tracing::warn!(part = %self.path.display(), %error, "could not delete a compacted part");
            }
    }
}

/// What readers see; guarded by one mutex held only for pointer swaps.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) parts: Vec<Arc<PartRef>>,
    pub(crate) sealed: Vec<Arc<Buffer>>,
    pub(crate) active: Buffer,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) data_dir: PathBuf,
    pub(crate) config: StoreConfig,
    state: Mutex<State>,
    pub(crate) stopped: AtomicBool,
    /// Sealed buffers handed to the flush thread and not yet published.
    pub(crate) pending_flushes: std::sync::atomic::AtomicUsize,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock only ever happens mid pointer-swap;
        // the data behind the pointers is immutable, so the state stays usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Counts for /metrics and the benchmark.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    pub parts: usize,
    pub part_bytes: u64,
    pub buffered_events: usize,
}

/// The embedded event store. Cheap to share: clone the `Arc`.
pub struct Store {
    shared: Arc<Shared>,
    /// Held for the store's lifetime: one process per data directory.
    _lock: std::fs::File,
    commands: mpsc::SyncSender<Command>,
    rewrites: Mutex<Option<mpsc::Sender<crate::rewrite::RewriteJob>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Store {
    /// Opens (or creates) the store in `data_dir`, replaying the WAL.
    pub fn open(data_dir: &Path, config: StoreConfig) -> Result<Store, Error> {
        let lock = lock_data_dir(data_dir)?;
        let recovered = recovery::recover(data_dir, &config)?;
        let shared = Arc::new(Shared {
            data_dir: data_dir.to_path_buf(),
            config: config.clone(),
            state: Mutex::new(recovered.state),
            stopped: AtomicBool::new(false),
            pending_flushes: std::sync::atomic::AtomicUsize::new(0),
        });
        let (flush_sender, rewrite_sender, flush_thread) = flush::spawn(shared.clone(), recovered.manifest, recovered.user_log)?;
        let (commands, command_receiver) = mpsc::sync_channel(config.queue_batches_max);
        let ingest = IngestThread::new(shared.clone(), recovered.wal, recovered.users, flush_sender)?;
        let ingest_thread = std::thread::Builder::new()
            .name("hearth-ingest".into())
            .spawn(move || ingest.run(command_receiver))
            .map_err(|source| Error::Io { path: data_dir.to_path_buf(), source })?;
        Ok(Store { shared, _lock: lock, commands, rewrites: Mutex::new(Some(rewrite_sender)), threads: Mutex::new(vec![ingest_thread, flush_thread]) })
    }

    /// The external database sealed buffers go to, if events live there.
    pub fn sink(&self) -> Option<Arc<dyn crate::EventSink>> {
        self.shared.config.sink.clone()
    }

    /// Appends a batch (see [`PreparedBatch::new`]). `done` runs on the ingest thread once the batch is
    /// durable in the WAL and visible to readers, or with the error that
    /// prevented it. A full queue fails at once with [`AppendError::Busy`].
    pub fn append(&self, batch: PreparedBatch, done: Done) -> Result<(), AppendError> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(AppendError::Stopped);
        }
        match self.commands.try_send(Command::Append { batch, done }) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(_)) => Err(AppendError::Busy),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(AppendError::Stopped),
        }
    }

    /// Appends and blocks until durable. For the CLI and tests.
    pub fn append_blocking(&self, project: ProjectId, events: Vec<Event>) -> Result<(), Error> {
        let (sender, receiver) = mpsc::channel();
        let done: Done = Box::new(move |result| {
            let _ = sender.send(result);
        });
        let command = Command::Append { batch: PreparedBatch::new(project, events), done };
        self.commands.send(command).map_err(|_| Error::Stopped)?;
        receiver.recv().map_err(|_| Error::Stopped)?
    }

    /// Seals the buffer and waits until its parts are published.
    pub fn flush(&self) -> Result<(), Error> {
        let (sender, receiver) = mpsc::channel();
        let done = Box::new(move |result| {
            let _ = sender.send(result);
        });
        self.commands.send(Command::Flush { done }).map_err(|_| Error::Stopped)?;
        receiver.recv().map_err(|_| Error::Stopped)?
    }

    /// Flushes the buffer, then rewrites every part of `project` by the rules
    /// of `rewrite` (see [`crate::rewrite`]); blocks until done.
    /// `progress(parts done, parts in all)`.
    pub fn rewrite(&self, project: ProjectId, rewrite: Box<dyn crate::Rewrite>, progress: Box<dyn FnMut(u64, u64) + Send>) -> Result<crate::RewriteReport, Error> {
        self.flush()?;
        let (done, receiver) = mpsc::channel();
        let job = crate::rewrite::RewriteJob { project, rewrite, progress, done };
        let sender = self.rewrites.lock().unwrap_or_else(|p| p.into_inner()).clone().ok_or(Error::Stopped)?;
        sender.send(job).map_err(|_| Error::Stopped)?;
        receiver.recv().map_err(|_| Error::Stopped)?
    }

    /// The parts and buffered events visible now.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.shared.state();
        let mut chunks: Vec<Arc<Chunk>> = Vec::new();
        for sealed in &state.sealed {
            chunks.extend(sealed.chunks.iter().cloned());
        }
        chunks.extend(state.active.chunks.iter().cloned());
        Snapshot::new(state.parts.clone(), chunks)
    }

    pub fn stats(&self) -> StoreStats {
        let state = self.shared.state();
        StoreStats {
            parts: state.parts.len(),
            part_bytes: state.parts.iter().map(|p| p.meta.bytes).sum(),
            buffered_events: state.active.n_rows + state.sealed.iter().map(|b| b.n_rows).sum::<usize>(),
        }
    }

    /// Flushes what is buffered and stops the threads. Nothing acknowledged
    /// depends on this: a crash instead only means a longer replay.
    pub fn close(&self) -> Result<(), Error> {
        let flushed = self.flush();
        self.rewrites.lock().unwrap_or_else(|p| p.into_inner()).take();
        let _ = self.commands.send(Command::Shutdown);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
        flushed
    }

    /// False once a write failure stopped the store.
    pub fn append_ready(&self) -> bool {
        !self.shared.stopped.load(Ordering::Acquire)
    }

    pub fn data_dir(&self) -> &Path {
        &self.shared.data_dir
    }
}

fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, Error> {
    use crate::error::IoContext;
    std::fs::create_dir_all(data_dir).at(data_dir)?;
    let path = data_dir.join("LOCK");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).at(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { path: data_dir.to_path_buf() }),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io { path, source }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error("the ingest queue is full")]
    Busy,
    #[error("the store has stopped")]
    Stopped,
}
