//! Opening a store: load the manifest, delete part files it does not name,
//! rebuild user keys, and replay the WAL segments the manifest says are not
//! yet in parts.

use crate::codec;
use crate::error::{Error, IoContext};
use crate::ingest::to_chunk;
use crate::manifest::{part_path, Manifest};
use crate::store::{PartRef, State, StoreConfig};
use crate::users::{UserKeys, UserLog};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) struct Recovered {
    pub(crate) state: State,
    pub(crate) manifest: Manifest,
    pub(crate) wal: wal::Wal,
    pub(crate) users: UserKeys,
    pub(crate) user_log: UserLog,
}

pub(crate) fn recover(data_dir: &Path, _config: &StoreConfig) -> Result<Recovered, Error> {
    std::fs::create_dir_all(data_dir).at(data_dir)?;
    let manifest = Manifest::load(data_dir)?;
    remove_orphan_parts(data_dir, &manifest)?;
    let (user_log, mut users) = UserLog::open(&data_dir.join("users"))?;
    let wal = wal::Wal::open(&data_dir.join("wal"))?;
    wal.remove_segments_before(manifest.replay_from)?;
    let mut state = State {
        parts: manifest.parts.iter().map(|meta| Arc::new(PartRef::new(data_dir, meta.clone()))).collect(),
        ..State::default()
    };
    let wal_dir = data_dir.join("wal");
    let replayed = wal.replay(manifest.replay_from, |payload| {
        let (project, rows) = codec::decode(payload).map_err(|error| error.to_string())?;
        state.active.push(to_chunk(&mut users, project, rows));
        Ok::<(), String>(())
    })?;
    let stats = replayed.map_err(|detail| Error::DataCorruption { path: wal_dir, detail })?;
    tracing::info!(
        parts = manifest.parts.len(),
        wal_segments = stats.segments,
        wal_records = stats.records,
        torn_bytes = stats.torn_bytes,
        buffered_events = state.active.n_rows,
        "store recovered"
    );
    Ok(Recovered { state, manifest, wal, users, user_log })
}

fn remove_orphan_parts(data_dir: &Path, manifest: &Manifest) -> Result<(), Error> {
    let known: HashSet<PathBuf> = manifest.parts.iter().map(|p| part_path(data_dir, p)).collect();
    let root = data_dir.join("parts");
    if !root.exists() {
        return Ok(());
    }
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let path = entry.at(&dir)?.path();
            if path.is_dir() {
                stack.push(path);
            } else if !known.contains(&path) {
                tracing::info!(part = %path.display(), "removing a part file no manifest names");
                std::fs::remove_file(&path).at(&path)?;
            }
        }
    }
    Ok(())
}
