use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("wal io error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("wal segment {path} does not start with the wal magic")]
    BadMagic { path: PathBuf },
    #[error("wal record of {len} bytes exceeds the maximum of {max}")]
    RecordTooLarge { len: usize, max: usize },
    #[error("wal segment {path} is corrupt at offset {offset} and is not the last segment")]
    Corrupt { path: PathBuf, offset: u64 },
}

pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, Error>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, Error> {
        self.map_err(|source| Error::Io { path: path.to_path_buf(), source })
    }
}
