//! The manifest: the one file that says which parts exist and from which WAL
//! segment a restart must replay. Replaced atomically (write, fsync, rename,
//! fsync the directory), so a crash leaves either the old or the new one.
//! Part files it does not list are leftovers of an interrupted flush or
//! compaction and are deleted on open.

use crate::error::{Error, IoContext};
use events::ProjectId;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "manifest.json";
const FORMAT_VERSION: u32 = 1;

/// One immutable Parquet part: the events of one project and one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub id: u64,
    pub project: ProjectId,
    /// Days since the Unix epoch (UTC).
    pub day: i32,
    pub rows: u64,
    pub bytes: u64,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    /// 0 for a flushed part; one more than its inputs' highest for a compacted one.
    pub level: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) format: u32,
    pub(crate) next_part_id: u64,
    /// The first WAL segment whose events are not all in parts.
    pub(crate) replay_from: u64,
    pub(crate) parts: Vec<PartMeta>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest { format: FORMAT_VERSION, next_part_id: 1, replay_from: 0, parts: Vec::new() }
    }
}

impl Manifest {
    pub(crate) fn load(data_dir: &Path) -> Result<Manifest, Error> {
        let path = data_dir.join(FILE_NAME);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|error| Error::DataCorruption { path: path.clone(), detail: error.to_string() })?;
        if manifest.format != FORMAT_VERSION {
            let detail = format!("manifest format {} is not supported (expected {FORMAT_VERSION})", manifest.format);
            return Err(Error::DataCorruption { path, detail });
        }
        Ok(manifest)
    }

    pub(crate) fn save(&self, data_dir: &Path) -> Result<(), Error> {
        let path = data_dir.join(FILE_NAME);
        let temp = data_dir.join(format!("{FILE_NAME}.tmp"));
        // Compact: saved after every flush and merge, and a long import
        // leaves tens of thousands of parts before compaction catches up.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let mut file = fs::File::create(&temp).at(&temp)?;
        file.write_all(&bytes).at(&temp)?;
        file.sync_all().at(&temp)?;
        fs::rename(&temp, &path).at(&path)?;
        wal::sync_dir(data_dir)?;
        Ok(())
    }
}

pub(crate) fn part_path(data_dir: &Path, part: &PartMeta) -> PathBuf {
    part_dir(data_dir, part.project, part.day).join(format!("{:016}.parquet", part.id))
}

pub(crate) fn part_dir(data_dir: &Path, project: ProjectId, day: i32) -> PathBuf {
    data_dir.join("parts").join(format!("p{}", project.0)).join(day_label(day))
}

/// `YYYY-MM-DD` of a day number.
pub(crate) fn day_label(day: i32) -> String {
    let date = chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default();
    date.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap().parts.len(), 0);
        let mut manifest = Manifest::default();
        manifest.parts.push(PartMeta {
            id: 7,
            project: ProjectId(1),
            day: 20_000,
            rows: 3,
            bytes: 100,
            min_time_ms: 1,
            max_time_ms: 2,
            level: 0,
        });
        manifest.replay_from = 4;
        manifest.save(dir.path()).unwrap();
        let loaded = Manifest::load(dir.path()).unwrap();
        assert_eq!(loaded.parts, manifest.parts);
        assert_eq!(loaded.replay_from, 4);
        assert!(!dir.path().join("manifest.json.tmp").exists());
    }

    #[test]
    fn day_labels_are_iso_dates() {
        assert_eq!(day_label(0), "1970-01-01");
        assert_eq!(day_label(20_454), "2026-01-01");
    }
}
