//! Finding, creating and checking the master key.

use crate::KeyError;
use privacy::crypto::Key;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterSource {
    /// A file holding the key as base64 or hex; created (mode 0600) when
    /// absent and `create` is set.
    File { path: PathBuf, create: bool },
    /// The key itself, as base64 or hex (from `HEARTH_MASTER_KEY`).
    Text(String),
}

#[derive(Debug, Clone)]
pub struct MasterKey {
    pub key: Key,
    /// The file it came from, if any (rotation writes there).
    pub path: Option<PathBuf>,
    /// True when this call created it.
    pub created: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_path_buf(), source }
}

/// The absolute, symlink-resolved form of a path that may not exist yet.
pub(crate) fn resolved(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(path) };
    // Resolve the longest existing ancestor, keep the rest as written.
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize().unwrap_or_else(|_| existing.to_path_buf());
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    out
}

/// Refuses a path inside the data directory.
pub(crate) fn check_outside(path: &Path, data_dir: &Path) -> Result<(), KeyError> {
    let (path, data) = (resolved(path), resolved(data_dir));
    if path.starts_with(&data) {
        return Err(KeyError::InsideDataDir { key: path, data });
    }
    Ok(())
}

impl MasterKey {
    pub fn load(source: &MasterSource, data_dir: &Path) -> Result<MasterKey, KeyError> {
        match source {
            MasterSource::Text(text) => Ok(MasterKey { key: Key::from_text(text).map_err(|e| KeyError::BadMaster(e.to_string()))?, path: None, created: false }),
            MasterSource::File { path, create } => {
                check_outside(path, data_dir)?;
                if path.exists() {
                    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(io(path))?);
                    let key = Key::from_text(&text).map_err(|e| KeyError::BadMaster(format!("{}: {e}", path.display())))?;
                    return Ok(MasterKey { key, path: Some(path.clone()), created: false });
                }
                if !create {
                    return Err(KeyError::Io { path: path.clone(), source: std::io::Error::new(std::io::ErrorKind::NotFound, "no master key file") });
                }
                let key = Key::generate()?;
                write_key_file(path, &key)?;
                Ok(MasterKey { key, path: Some(path.clone()), created: true })
            }
        }
    }
}

/// Writes a key file readable by its owner only, atomically and durably.
pub(crate) fn write_key_file(path: &Path, key: &Key) -> Result<(), KeyError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let temporary = path.with_extension("key.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary).map_err(io(&temporary))?;
        file.write_all(key.to_text().as_bytes()).map_err(io(&temporary))?;
        file.write_all(b"\n").map_err(io(&temporary))?;
        file.sync_all().map_err(io(&temporary))?;
    }
    std::fs::rename(&temporary, path).map_err(io(path))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(directory) = std::fs::File::open(parent) {
            let _ = directory.sync_all();
        }
    }
    Ok(())
}
