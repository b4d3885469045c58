//! Segment files: naming, writing with explicit sync, and replay.

use crate::error::{Error, IoContext};
use crate::record::{self, Decoded};
use crate::RECORD_BYTES_MAX;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"HRTHWAL1";
const SEGMENT_SUFFIX: &str = ".wal";

/// A directory of segments, numbered by a sequence that only grows.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
}

/// What a replay found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayStats {
    pub segments: usize,
    pub records: u64,
    /// Bytes cut from the end of the last segment (a write the crash tore).
    pub torn_bytes: u64,
}

impl Wal {
    pub fn open(dir: &Path) -> Result<Wal, Error> {
        fs::create_dir_all(dir).at(dir)?;
        Ok(Wal { dir: dir.to_path_buf() })
    }

    /// Sequence numbers of the segments on disk, ascending.
    pub fn segments(&self) -> Result<Vec<u64>, Error> {
        let mut seqs = Vec::new();
        for entry in fs::read_dir(&self.dir).at(&self.dir)? {
            let entry = entry.at(&self.dir)?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SEGMENT_SUFFIX)) else {
                continue;
            };
            if let Ok(seq) = stem.parse::<u64>() {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016}{SEGMENT_SUFFIX}"))
    }

    /// Calls `apply` with every intact record of the segments numbered
    /// `from_seq` or above, in order. A torn tail in the last segment is cut
    /// off the file; damage in an earlier segment is an error, because records
    /// after it were acknowledged and would be lost silently.
    pub fn replay<E>(
        &self,
        from_seq: u64,
        mut apply: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Result<ReplayStats, E>, Error> {
        let seqs: Vec<u64> = self.segments()?.into_iter().filter(|s| *s >= from_seq).collect();
        let mut stats = ReplayStats::default();
        for (position, seq) in seqs.iter().enumerate() {
            let is_last = position + 1 == seqs.len();
            let path = self.path_of(*seq);
            let bytes = fs::read(&path).at(&path)?;
            stats.segments += 1;
            if bytes.len() < MAGIC.len() {
                // Created, then the crash came before the magic was durable.
                truncate_torn(&path, 0, bytes.len(), is_last, &mut stats)?;
                continue;
            }
            if &bytes[..MAGIC.len()] != MAGIC {
                return Err(Error::BadMagic { path });
            }
            let mut offset = MAGIC.len();
            loop {
                match record::decode_at(&bytes, offset) {
                    Decoded::Record { payload, next_offset } => {
                        if let Err(error) = apply(payload) {
                            return Ok(Err(error));
                        }
                        stats.records += 1;
                        offset = next_offset;
                    }
                    Decoded::End => break,
                    Decoded::Torn => {
                        truncate_torn(&path, offset, bytes.len(), is_last, &mut stats)?;
                        break;
                    }
                }
            }
        }
        Ok(Ok(stats))
    }

    /// Starts a new segment after every existing one and makes its creation
    /// durable.
    pub fn create_segment(&self) -> Result<SegmentWriter, Error> {
        let seq = self.segments()?.last().map_or(1, |last| last + 1);
        let path = self.path_of(seq);
        let file = OpenOptions::new().write(true).create_new(true).open(&path).at(&path)?;
        let mut writer = SegmentWriter { seq, path, file: BufWriter::with_capacity(1 << 20, file), bytes: 0 };
        writer.file.write_all(MAGIC).at(&writer.path)?;
        writer.bytes = MAGIC.len() as u64;
        writer.sync()?;
        sync_dir(&self.dir)?;
        Ok(writer)
    }

    /// Deletes every segment numbered below `seq`: their records are in
    /// published parts.
    pub fn remove_segments_before(&self, seq: u64) -> Result<usize, Error> {
        let mut n_removed = 0;
        for old in self.segments()?.into_iter().filter(|s| *s < seq) {
            let path = self.path_of(old);
            fs::remove_file(&path).at(&path)?;
            n_removed += 1;
        }
        if n_removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(n_removed)
    }
}

fn truncate_torn(path: &Path, offset: usize, len: usize, is_last: bool, stats: &mut ReplayStats) -> Result<(), Error> {
    if !is_last {
        return Err(Error::Corrupt { path: path.to_path_buf(), offset: offset as u64 });
    }
    tracing::warn!(segment = %path.display(), offset, torn_bytes = len - offset, "wal tail torn by a crash, truncating");
    let file = OpenOptions::new().write(true).open(path).at(path)?;
    if offset == 0 {
        // Not even the magic survived: the segment held nothing.
        drop(file);
        fs::remove_file(path).at(path)?;
    } else {
        file.set_len(offset as u64).at(path)?;
        file.sync_all().at(path)?;
    }
    stats.torn_bytes += (len - offset) as u64;
    Ok(())
}

/// Appends records to one segment. Nothing is durable until [`SegmentWriter::sync`].
#[derive(Debug)]
pub struct SegmentWriter {
    seq: u64,
    path: PathBuf,
    file: BufWriter<File>,
    bytes: u64,
}

impl SegmentWriter {
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn append(&mut self, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > RECORD_BYTES_MAX {
            return Err(Error::RecordTooLarge { len: payload.len(), max: RECORD_BYTES_MAX });
        }
        self.file.write_all(&record::encode_header(payload)).at(&self.path)?;
        self.file.write_all(payload).at(&self.path)?;
        self.bytes += (record::HEADER_BYTES + payload.len()) as u64;
        Ok(())
    }

    /// Writes out the buffer and waits for the data to reach the disk.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.file.flush().at(&self.path)?;
        self.file.get_ref().sync_data().at(&self.path)
    }
}

/// Makes a directory's entries (a created, renamed or removed file) durable.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay_all(wal: &Wal) -> (Vec<Vec<u8>>, ReplayStats) {
        let mut records = Vec::new();
        let stats = wal
            .replay(0, |payload| {
                records.push(payload.to_vec());
                Ok::<(), ()>(())
            })
            .expect("replay io")
            .expect("apply");
        (records, stats)
    }

    #[test]
    fn records_survive_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path()).unwrap();
        let mut writer = wal.create_segment().unwrap();
        for i in 0..100u32 {
            writer.append(&i.to_le_bytes()).unwrap();
        }
        writer.sync().unwrap();
        drop(writer);
        let (records, stats) = replay_all(&Wal::open(dir.path()).unwrap());
        assert_eq!(records.len(), 100);
        assert_eq!(records[42], 42u32.to_le_bytes());
        assert_eq!(stats.torn_bytes, 0);
    }

    #[test]
    fn a_torn_tail_is_cut_at_every_offset_and_writing_resumes_in_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path()).unwrap();
        let mut writer = wal.create_segment().unwrap();
        writer.append(b"first").unwrap();
        writer.append(b"second").unwrap();
        writer.sync().unwrap();
        let path = wal.path_of(writer.seq());
        drop(writer);
        let full = fs::read(&path).unwrap();
        let first_end = MAGIC.len() + record::HEADER_BYTES + 5;
        for cut in 0..full.len() {
            fs::write(&path, &full[..cut]).unwrap();
            let (records, _) = replay_all(&wal);
            let expected = if cut >= first_end { 1 } else { 0 };
            assert_eq!(records.len(), expected, "cut at {cut}");
            // The file now ends at a record boundary (or is gone).
            let (again, stats) = replay_all(&wal);
            assert_eq!(again.len(), expected);
            assert_eq!(stats.torn_bytes, 0, "second replay at cut {cut} found a tail");
            fs::write(&path, &full).unwrap();
        }
        let mut next = wal.create_segment().unwrap();
        assert!(next.seq() > 1);
        next.append(b"third").unwrap();
        next.sync().unwrap();
        let (records, _) = replay_all(&wal);
        assert_eq!(records, vec![b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]);
    }

    #[test]
    fn damage_before_the_last_segment_is_an_error_not_a_silent_loss() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path()).unwrap();
        let mut first = wal.create_segment().unwrap();
        first.append(b"acknowledged").unwrap();
        first.sync().unwrap();
        let first_path = wal.path_of(first.seq());
        let mut second = wal.create_segment().unwrap();
        second.append(b"later").unwrap();
        second.sync().unwrap();
        let mut bytes = fs::read(&first_path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&first_path, bytes).unwrap();
        let result = wal.replay(0, |_| Ok::<(), ()>(()));
        assert!(matches!(result, Err(Error::Corrupt { .. })), "{result:?}");
    }

    #[test]
    fn removing_old_segments_keeps_the_newer_ones() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path()).unwrap();
        for _ in 0..3 {
            wal.create_segment().unwrap();
        }
        assert_eq!(wal.remove_segments_before(3).unwrap(), 2);
        assert_eq!(wal.segments().unwrap(), vec![3]);
    }
}
