//! The key database (`keys.sqlite` in the key directory) and the caches in
//! front of it.
//!
//! Deleted rows must not linger: the database runs with `secure_delete`
//! (freed pages are zeroed) and a rollback journal that is deleted after
//! each transaction, so a destroyed subject key is gone from the files, not
//! only from the rows. Other processes (the CLI rotating keys or erasing a
//! person while the server runs) are noticed through SQLite's
//! `data_version`, which empties the caches.
//!
//! On PostgreSQL (nodes that scale out share the key tables), other nodes'
//! erasures and rotations are noticed through the `key_changes` counter,
//! which every such transaction increments and every use of the store reads,
//! so a key destroyed on one node opens nothing on another from then on.
//! PostgreSQL has no `secure_delete`: a destroyed row's bytes stay in the
//! table file and its write-ahead log until they are overwritten. They are
//! wrapped keys, useless without the data key and the master key that
//! wrapped them; rotating the project's data key and then the master key
//! makes every such leftover unreadable for good (docs/postgres.md).

use crate::master::{check_outside, write_key_file, MasterKey, MasterSource};
use crate::KeyError;
use events::ProjectId;
use privacy::apply::{SealError, Sealer};
use privacy::crypto::{self, Key};
use sqldb::{params, Connection, Dialect, OptionalExtension, PostgresTarget};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use zeroize::Zeroizing;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS master (id INTEGER PRIMARY KEY CHECK (id = 1), fingerprint TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS project_roots (project INTEGER PRIMARY KEY, wrapped BLOB NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS data_keys (
    project INTEGER NOT NULL, version INTEGER NOT NULL, wrapped BLOB NOT NULL, created_ms INTEGER NOT NULL,
    PRIMARY KEY (project, version)
);
CREATE TABLE IF NOT EXISTS subject_keys (
    project INTEGER NOT NULL, subject BLOB NOT NULL, version INTEGER NOT NULL, wrapped BLOB NOT NULL, created_ms INTEGER NOT NULL,
    PRIMARY KEY (project, subject)
) WITHOUT ROWID;
";

/// PostgreSQL only: the counter of changes that other nodes' caches must see.
const KEY_CHANGES_SCHEMA: &str = "
CREATE TABLE key_changes (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT INTO key_changes (id, value) VALUES (1, 0);
";

/// Bounds on what is kept unwrapped in memory.
const SUBJECT_CACHE_MAX: usize = 100_000;
const SEALED_MEMO_MAX: usize = 200_000;

/// The stable keys of one project.
#[derive(Debug)]
pub struct ProjectKeys {
    /// Keyed hash of personal values (tokens).
    pub hash_key: Key,
    /// Keyed hash of identifiers (pseudonyms).
    pub pseudonym_key: Key,
    /// Keyed hash of erased identifiers (erasure tombstones).
    pub tombstone_key: Key,
    /// Keyed hash of subjects in this store.
    subject_ref_key: Key,
}

/// One sealed personal value, for the metadata database's vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub subject: String,
    pub token: String,
    pub ciphertext: Vec<u8>,
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub projects: usize,
    pub subject_keys: u64,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
}

#[derive(Default)]
struct Cache {
    data_version: i64,
    projects: HashMap<ProjectId, Arc<ProjectKeys>>,
    data_keys: HashMap<(ProjectId, i64), Key>,
    subjects: HashMap<(ProjectId, [u8; 16]), Key>,
    sealed: HashSet<(ProjectId, String, String)>,
}

pub struct KeyStore {
    dir: PathBuf,
    master: Mutex<MasterKey>,
    connection: Mutex<Connection>,
    cache: Mutex<Cache>,
    /// On PostgreSQL, when the change counter was last read (see [`Fresh`]).
    checked_at: Mutex<Option<std::time::Instant>>,
}

/// How current the caches must be for a use of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    /// Opening values, destroying or rotating keys: the change counter is
    /// read first, so a key destroyed on another node opens nothing here.
    Now,
    /// Sealing new values: a check within the last [`SEAL_CHECK_EVERY`] is
    /// enough on PostgreSQL (a value sealed under a key destroyed elsewhere
    /// a moment ago can never be opened, which is what erasure wants), so
    /// ingestion does not pay a round trip per request.
    Recent,
}

/// See [`Fresh::Recent`].
const SEAL_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    events::now_ms()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_path_buf(), source }
}

fn root_context(project: ProjectId) -> Vec<u8> {
    format!("hearth root key v1|{project}").into_bytes()
}

fn data_key_context(project: ProjectId, version: i64) -> Vec<u8> {
    format!("hearth data key v1|{project}|{version}").into_bytes()
}

fn subject_key_context(project: ProjectId, subject_ref: &[u8; 16], version: i64) -> Vec<u8> {
    let mut context = format!("hearth subject key v1|{project}|{version}|").into_bytes();
    context.extend_from_slice(subject_ref);
    context
}

/// What a personal value's ciphertext is bound to.
fn value_context(project: ProjectId, subject: &str, token: &str) -> Vec<u8> {
    format!("hearth value v1|{project}|{subject}|{token}").into_bytes()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl KeyStore {
    /// Opens (creating when absent) the key store in `dir`, which must lie
    /// outside `data_dir`, with the master key from `master`.
    pub fn open(dir: &Path, data_dir: &Path, master: &MasterSource) -> Result<KeyStore, KeyError> {
        check_outside(dir, data_dir)?;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let master = MasterKey::load(master, data_dir)?;
        let path = dir.join("keys.sqlite");
        let connection = Connection::open_sqlite(&path)?;
        if let Some(sqlite) = connection.sqlite() {
            sqlite.pragma_update(None, "journal_mode", "DELETE").map_err(sqldb::Error::from)?;
            sqlite.pragma_update(None, "synchronous", "FULL").map_err(sqldb::Error::from)?;
            sqlite.pragma_update(None, "secure_delete", "ON").map_err(sqldb::Error::from)?;
        }
        connection.execute_batch(SCHEMA)?;
        Self::with_master(dir, data_dir, connection, master)
    }

    /// Connects to the key tables in the PostgreSQL database the nodes
    /// share. Every node must hold the same master key (`master`); the first
    /// one to connect records its fingerprint, and a node with another key
    /// is refused. `dir` is where a master key file lives.
    pub fn connect(target: &PostgresTarget, dir: &Path, data_dir: &Path, master: &MasterSource) -> Result<KeyStore, KeyError> {
        check_outside(dir, data_dir)?;
        let master = MasterKey::load(master, data_dir)?;
        let mut connection = Connection::connect_postgres(target)?;
        sqldb::migrate_postgres(&mut connection, "keys", &[SCHEMA, KEY_CHANGES_SCHEMA])?;
        Self::with_master(dir, data_dir, connection, master)
    }

    /// Checks the master key against the fingerprint the store recorded (or
    /// records it), finishing an interrupted rotation.
    fn with_master(dir: &Path, data_dir: &Path, connection: Connection, mut master: MasterKey) -> Result<KeyStore, KeyError> {
        let recorded: Option<String> = connection.query_row("SELECT fingerprint FROM master WHERE id = 1", [], |row| row.get(0)).optional()?;
        match recorded {
            None => {
                connection.execute("INSERT INTO master (id, fingerprint) VALUES (1, ?1) ON CONFLICT DO NOTHING", [master.key.fingerprint()])?;
                let stored: String = connection.query_row("SELECT fingerprint FROM master WHERE id = 1", [], |row| row.get(0))?;
                if stored != master.key.fingerprint() {
                    // Another node recorded its key first.
                    return Err(KeyError::WrongMaster(master.path.as_ref().map_or_else(|| "HEARTH_MASTER_KEY".to_owned(), |p| p.display().to_string()), stored));
                }
            }
            Some(fingerprint) if fingerprint == master.key.fingerprint() => {}
            Some(fingerprint) => {
                // A rotation interrupted after the database switched to the
                // new key but before the file was renamed: finish it.
                let pending = master.path.as_ref().map(|p| p.with_extension("key.new"));
                let finished = match &pending {
                    Some(pending) if pending.exists() => {
                        let candidate = MasterKey::load(&MasterSource::File { path: pending.clone(), create: false }, data_dir)?;
                        if candidate.key.fingerprint() == fingerprint {
                            let target = master.path.clone().unwrap_or_default();
                            std::fs::rename(pending, &target).map_err(io(&target))?;
                            master = MasterKey { path: Some(target), ..candidate };
                            true
                        } else {
                            false
                        }
                    }
                    _ => false,
                };
                if !finished {
                    let place = master.path.as_ref().map_or_else(|| "HEARTH_MASTER_KEY".to_owned(), |p| p.display().to_string());
                    return Err(KeyError::WrongMaster(place, fingerprint));
                }
            }
        }
        if let Some(pending) = master.path.as_ref().map(|p| p.with_extension("key.new")) {
            let _ = std::fs::remove_file(pending);
        }
        Ok(KeyStore { dir: dir.to_path_buf(), master: Mutex::new(master), connection: Mutex::new(connection), cache: Mutex::new(Cache::default()), checked_at: Mutex::new(None) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when opening created the master key (a fresh instance).
    pub fn master_created(&self) -> bool {
        lock(&self.master).created
    }

    pub fn master_fingerprint(&self) -> String {
        lock(&self.master).key.fingerprint()
    }

    /// The connection, after emptying the caches if another process changed
    /// the database since the last look.
    fn connection(&self) -> Result<MutexGuard<'_, Connection>, KeyError> {
        self.connection_for(Fresh::Now)
    }

    /// [`KeyStore::connection`], the last look allowed to be `fresh`.
    fn connection_for(&self, fresh: Fresh) -> Result<MutexGuard<'_, Connection>, KeyError> {
        let connection = lock(&self.connection);
        let version: i64 = match connection.dialect() {
            Dialect::Sqlite => connection.query_row("PRAGMA data_version", [], |row| row.get(0))?,
            Dialect::Postgres => {
                let mut checked_at = lock(&self.checked_at);
                if fresh == Fresh::Recent && checked_at.is_some_and(|at| at.elapsed() < SEAL_CHECK_EVERY) {
                    return Ok(connection);
                }
                *checked_at = Some(std::time::Instant::now());
                connection.query_row("SELECT value FROM key_changes WHERE id = 1", [], |row| row.get(0))?
            }
        };
        let changed = {
            let mut cache = lock(&self.cache);
            let changed = cache.data_version != version;
            if changed {
                *cache = Cache { data_version: version, ..Cache::default() };
            }
            changed
        };
        if changed {
            self.follow_master_rotation(&connection)?;
        }
        Ok(connection)
    }

    /// After another process rotated the master key, the database names a
    /// new fingerprint: read the new key from the file (a key given as text
    /// cannot have been rotated by another process).
    fn follow_master_rotation(&self, connection: &Connection) -> Result<(), KeyError> {
        let recorded: String = connection.query_row("SELECT fingerprint FROM master WHERE id = 1", [], |row| row.get(0))?;
        let mut master = lock(&self.master);
        if master.key.fingerprint() == recorded {
            return Ok(());
        }
        let Some(path) = master.path.clone() else {
            return Err(KeyError::WrongMaster("HEARTH_MASTER_KEY".to_owned(), recorded));
        };
        // The rotating process renames `.key.new` over the file right after
        // its commit: give it a moment.
        for _ in 0..50 {
            for candidate in [path.clone(), path.with_extension("key.new")] {
                if let Ok(text) = std::fs::read_to_string(&candidate) {
                    let text = Zeroizing::new(text);
                    if let Ok(key) = Key::from_text(&text) {
                        if key.fingerprint() == recorded {
                            tracing::info!(fingerprint = %recorded, "following a master key rotation");
                            master.key = key;
                            return Ok(());
                        }
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(KeyError::WrongMaster(path.display().to_string(), recorded))
    }

    /// The project's stable keys, created on first use.
    pub fn project_keys(&self, project: ProjectId) -> Result<Arc<ProjectKeys>, KeyError> {
        // They are never destroyed, only re-wrapped: a recent look will do.
        let connection = self.connection_for(Fresh::Recent)?;
        if let Some(keys) = lock(&self.cache).projects.get(&project) {
            return Ok(keys.clone());
        }
        let master = lock(&self.master).key.clone();
        let wrapped: Option<Vec<u8>> = connection.query_row("SELECT wrapped FROM project_roots WHERE project = ?1", [project.0], |row| row.get(0)).optional()?;
        let root = match wrapped {
            Some(wrapped) => crypto::unwrap(&master, &wrapped, &root_context(project)).map_err(|e| KeyError::Damaged(format!("project {project} root key: {e}")))?,
            None => {
                let root = Key::generate()?;
                let wrapped = crypto::wrap(&master, &root, &root_context(project))?;
                connection.execute("INSERT INTO project_roots (project, wrapped, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", params![project.0, wrapped, now_ms()])?;
                // Another process may have won the race: read back what is stored.
                let stored: Vec<u8> = connection.query_row("SELECT wrapped FROM project_roots WHERE project = ?1", [project.0], |row| row.get(0))?;
                crypto::unwrap(&master, &stored, &root_context(project)).map_err(|e| KeyError::Damaged(e.to_string()))?
            }
        };
        let keys = Arc::new(ProjectKeys { hash_key: root.derive("value token"), pseudonym_key: root.derive("pseudonym"), tombstone_key: root.derive("erasure tombstone"), subject_ref_key: root.derive("subject ref") });
        lock(&self.cache).projects.insert(project, keys.clone());
        Ok(keys)
    }

    fn subject_ref(keys: &ProjectKeys, subject: &str) -> [u8; 16] {
        let digest = crypto::keyed_hash(&keys.subject_ref_key, subject.as_bytes());
        digest[..16].try_into().expect("16 bytes")
    }

    /// The current data key of a project and its version, created on first use.
    fn current_data_key(&self, connection: &Connection, project: ProjectId) -> Result<(i64, Key), KeyError> {
        let row: Option<(i64, Vec<u8>)> = connection
            .query_row("SELECT version, wrapped FROM data_keys WHERE project = ?1 ORDER BY version DESC LIMIT 1", [project.0], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let master = lock(&self.master).key.clone();
        match row {
            Some((version, wrapped)) => {
                if let Some(key) = lock(&self.cache).data_keys.get(&(project, version)) {
                    return Ok((version, key.clone()));
                }
                let key = crypto::unwrap(&master, &wrapped, &data_key_context(project, version)).map_err(|e| KeyError::Damaged(format!("project {project} data key v{version}: {e}")))?;
                lock(&self.cache).data_keys.insert((project, version), key.clone());
                Ok((version, key))
            }
            None => {
                let key = Key::generate()?;
                let wrapped = crypto::wrap(&master, &key, &data_key_context(project, 1))?;
                connection.execute("INSERT INTO data_keys (project, version, wrapped, created_ms) VALUES (?1, 1, ?2, ?3)", params![project.0, wrapped, now_ms()])?;
                lock(&self.cache).data_keys.insert((project, 1), key.clone());
                Ok((1, key))
            }
        }
    }

    fn data_key(&self, connection: &Connection, project: ProjectId, version: i64) -> Result<Key, KeyError> {
        if let Some(key) = lock(&self.cache).data_keys.get(&(project, version)) {
            return Ok(key.clone());
        }
        let wrapped: Vec<u8> = connection.query_row("SELECT wrapped FROM data_keys WHERE project = ?1 AND version = ?2", params![project.0, version], |row| row.get(0))?;
        let master = lock(&self.master).key.clone();
        let key = crypto::unwrap(&master, &wrapped, &data_key_context(project, version)).map_err(|e| KeyError::Damaged(e.to_string()))?;
        lock(&self.cache).data_keys.insert((project, version), key.clone());
        Ok(key)
    }

    /// Subject keys for these subjects; the missing ones are created when
    /// `create`, all in one transaction. Absent subjects (destroyed, or never
    /// had one) are missing from the answer when not created.
    fn subject_keys(&self, project: ProjectId, subjects: &[&str], create: bool) -> Result<HashMap<String, Key>, KeyError> {
        let keys = self.project_keys(project)?;
        let mut connection = self.connection_for(if create { Fresh::Recent } else { Fresh::Now })?;
        let mut found = HashMap::with_capacity(subjects.len());
        let mut missing = Vec::new();
        {
            let cache = lock(&self.cache);
            for subject in subjects {
                let subject_ref = Self::subject_ref(&keys, subject);
                match cache.subjects.get(&(project, subject_ref)) {
                    Some(key) => {
                        found.insert((*subject).to_owned(), key.clone());
                    }
                    None => missing.push(((*subject).to_owned(), subject_ref)),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let transaction = connection.transaction_immediate()?;
        let mut loaded = Vec::with_capacity(missing.len());
        {
            let mut select = transaction.prepare_cached("SELECT version, wrapped FROM subject_keys WHERE project = ?1 AND subject = ?2")?;
            let mut insert = transaction.prepare_cached("INSERT INTO subject_keys (project, subject, version, wrapped, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for (subject, subject_ref) in missing {
                let row: Option<(i64, Vec<u8>)> = select.query_row(params![project.0, &subject_ref[..]], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
                let key = match row {
                    Some((version, wrapped)) => {
                        let data_key = self.data_key(&transaction, project, version)?;
                        crypto::unwrap(&data_key, &wrapped, &subject_key_context(project, &subject_ref, version)).map_err(|e| KeyError::Damaged(format!("subject key: {e}")))?
                    }
                    None if create => {
                        let (version, data_key) = self.current_data_key(&transaction, project)?;
                        let key = Key::generate()?;
                        let wrapped = crypto::wrap(&data_key, &key, &subject_key_context(project, &subject_ref, version))?;
                        insert.execute(params![project.0, &subject_ref[..], version, wrapped, now_ms()])?;
                        key
                    }
                    None => continue,
                };
                loaded.push((subject, subject_ref, key));
            }
        }
        transaction.commit()?;
        let mut cache = lock(&self.cache);
        if cache.subjects.len() + loaded.len() > SUBJECT_CACHE_MAX {
            cache.subjects.clear();
        }
        for (subject, subject_ref, key) in loaded {
            cache.subjects.insert((project, subject_ref), key.clone());
            found.insert(subject, key);
        }
        Ok(found)
    }

    /// A sealer for one batch of one project's events or profiles.
    pub fn sealer(self: &Arc<Self>, project: ProjectId) -> Result<SubjectSealer, KeyError> {
        let keys = self.project_keys(project)?;
        Ok(SubjectSealer { store: self.clone(), project, keys, pending: Vec::new(), queued: HashSet::new() })
    }

    /// Records that these values are in the vault, so that the same value of
    /// the same person is not sealed and written again for every event.
    pub fn remember_sealed(&self, project: ProjectId, values: &[SealedValue]) {
        let mut cache = lock(&self.cache);
        if cache.sealed.len() + values.len() > SEALED_MEMO_MAX {
            cache.sealed.clear();
        }
        for value in values {
            cache.sealed.insert((project, value.subject.clone(), value.token.clone()));
        }
    }

    /// Opens a sealed value; `None` when the subject's key no longer exists
    /// (erased) or never did.
    pub fn open_value(&self, project: ProjectId, subject: &str, token: &str, ciphertext: &[u8]) -> Result<Option<Zeroizing<String>>, KeyError> {
        let keys = self.subject_keys(project, &[subject], false)?;
        let Some(key) = keys.get(subject) else { return Ok(None) };
        match crypto::open(key, ciphertext, &value_context(project, subject, token)) {
            Ok(plaintext) => Ok(Some(Zeroizing::new(String::from_utf8_lossy(&plaintext).into_owned()))),
            Err(_) => Ok(None),
        }
    }

    /// Destroys the keys of these subjects: everything sealed for them
    /// becomes unreadable, in every copy. Returns how many keys existed.
    pub fn destroy_subjects(&self, project: ProjectId, subjects: &[String]) -> Result<usize, KeyError> {
        let keys = self.project_keys(project)?;
        let mut connection = self.connection()?;
        let transaction = connection.transaction_immediate()?;
        let mut n_destroyed = 0;
        let refs: Vec<[u8; 16]> = subjects.iter().map(|s| Self::subject_ref(&keys, s)).collect();
        {
            let mut delete = transaction.prepare_cached("DELETE FROM subject_keys WHERE project = ?1 AND subject = ?2")?;
            for subject_ref in &refs {
                n_destroyed += delete.execute(params![project.0, &subject_ref[..]])?;
            }
        }
        announce_change(&transaction)?;
        transaction.commit()?;
        let mut cache = lock(&self.cache);
        for subject_ref in &refs {
            cache.subjects.remove(&(project, *subject_ref));
        }
        cache.sealed.retain(|(p, subject, _)| *p != project || !subjects.contains(subject));
        Ok(n_destroyed)
    }

    /// Rotates the master key: every project root and data key is re-wrapped
    /// under `new` (a fresh key when `None`) in one transaction, then the key
    /// file is replaced. A running server keeps working: it holds the keys it
    /// unwrapped, and rereads the file when the database says the master
    /// changed.
    pub fn rotate_master(&self, new: Option<Key>) -> Result<RotationReport, KeyError> {
        let new = match new {
            Some(key) => key,
            None => Key::generate()?,
        };
        let old = lock(&self.master).clone();
        let path = old.path.clone();
        // The new key reaches the disk before any wrap that needs it.
        let pending = path.as_ref().map(|p| p.with_extension("key.new"));
        if let Some(pending) = &pending {
            write_key_file(pending, &new)?;
        }
        let mut connection = self.connection()?;
        let transaction = connection.transaction_immediate()?;
        let mut report = RotationReport { old_fingerprint: old.key.fingerprint(), new_fingerprint: new.fingerprint(), ..RotationReport::default() };
        let roots: Vec<(u32, Vec<u8>)> = transaction.prepare("SELECT project, wrapped FROM project_roots")?.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?;
        for (project, wrapped) in roots {
            let project = ProjectId(project);
            let root = crypto::unwrap(&old.key, &wrapped, &root_context(project)).map_err(|e| KeyError::Damaged(e.to_string()))?;
            transaction.execute("UPDATE project_roots SET wrapped = ?2 WHERE project = ?1", params![project.0, crypto::wrap(&new, &root, &root_context(project))?])?;
            report.projects += 1;
        }
        let data_keys: Vec<(u32, i64, Vec<u8>)> = transaction.prepare("SELECT project, version, wrapped FROM data_keys")?.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?.collect::<Result<_, _>>()?;
        for (project, version, wrapped) in data_keys {
            let project = ProjectId(project);
            let key = crypto::unwrap(&old.key, &wrapped, &data_key_context(project, version)).map_err(|e| KeyError::Damaged(e.to_string()))?;
            transaction.execute("UPDATE data_keys SET wrapped = ?3 WHERE project = ?1 AND version = ?2", params![project.0, version, crypto::wrap(&new, &key, &data_key_context(project, version))?])?;
        }
        transaction.execute("UPDATE master SET fingerprint = ?1 WHERE id = 1", [new.fingerprint()])?;
        announce_change(&transaction)?;
        transaction.commit()?;
        if let (Some(pending), Some(path)) = (&pending, &path) {
            std::fs::rename(pending, path).map_err(io(path))?;
        }
        *lock(&self.master) = MasterKey { key: new, path, created: false };
        Ok(report)
    }

    /// Rotates a project's data key: a new version wraps every subject key,
    /// and the old versions are destroyed. `progress(done, total)`.
    pub fn rotate_data_key(&self, project: ProjectId, progress: &mut dyn FnMut(u64, u64)) -> Result<RotationReport, KeyError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction_immediate()?;
        let (old_version, _) = self.current_data_key(&transaction, project)?;
        let new_version = old_version + 1;
        let new_key = Key::generate()?;
        let master = lock(&self.master).key.clone();
        transaction.execute(
            "INSERT INTO data_keys (project, version, wrapped, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![project.0, new_version, crypto::wrap(&master, &new_key, &data_key_context(project, new_version))?, now_ms()],
        )?;
        let subjects: Vec<(Vec<u8>, i64, Vec<u8>)> =
            transaction.prepare("SELECT subject, version, wrapped FROM subject_keys WHERE project = ?1")?.query_map([project.0], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?.collect::<Result<_, _>>()?;
        let total = subjects.len() as u64;
        {
            let mut update = transaction.prepare("UPDATE subject_keys SET version = ?3, wrapped = ?4 WHERE project = ?1 AND subject = ?2")?;
            for (done, (subject, version, wrapped)) in subjects.into_iter().enumerate() {
                let subject_ref: [u8; 16] = subject.as_slice().try_into().map_err(|_| KeyError::Damaged("subject reference length".to_owned()))?;
                let old_key = self.data_key(&transaction, project, version)?;
                let key = crypto::unwrap(&old_key, &wrapped, &subject_key_context(project, &subject_ref, version)).map_err(|e| KeyError::Damaged(e.to_string()))?;
                update.execute(params![project.0, &subject[..], new_version, crypto::wrap(&new_key, &key, &subject_key_context(project, &subject_ref, new_version))?])?;
                if done % 1000 == 0 {
                    progress(done as u64, total);
                }
            }
        }
        transaction.execute("DELETE FROM data_keys WHERE project = ?1 AND version < ?2", params![project.0, new_version])?;
        announce_change(&transaction)?;
        transaction.commit()?;
        progress(total, total);
        lock(&self.cache).data_keys.retain(|(p, _), _| *p != project);
        let fingerprint = self.master_fingerprint();
        Ok(RotationReport { projects: 1, subject_keys: total, old_fingerprint: fingerprint.clone(), new_fingerprint: fingerprint })
    }
}

/// Tells the other nodes sharing a PostgreSQL store to empty their caches
/// (on SQLite, `data_version` does this for other processes by itself).
fn announce_change(connection: &Connection) -> Result<(), KeyError> {
    if connection.dialect() == Dialect::Postgres {
        connection.execute("UPDATE key_changes SET value = value + 1 WHERE id = 1", [])?;
    }
    Ok(())
}

/// Collects the values of one batch, then seals them all once the subject
/// keys they need exist (created together, in one transaction).
pub struct SubjectSealer {
    store: Arc<KeyStore>,
    project: ProjectId,
    keys: Arc<ProjectKeys>,
    pending: Vec<(String, String, Zeroizing<String>)>,
    queued: HashSet<(String, String)>,
}

impl SubjectSealer {
    pub fn project_keys(&self) -> Arc<ProjectKeys> {
        self.keys.clone()
    }

    /// Seals what was collected. The answer goes to the vault before the
    /// events that hold the tokens are acknowledged.
    pub fn finish(self) -> Result<Vec<SealedValue>, KeyError> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let mut subjects: Vec<&str> = self.pending.iter().map(|(subject, _, _)| subject.as_str()).collect();
        subjects.sort_unstable();
        subjects.dedup();
        let keys = self.store.subject_keys(self.project, &subjects, true)?;
        let mut sealed = Vec::with_capacity(self.pending.len());
        for (subject, token, plaintext) in &self.pending {
            let key = keys.get(subject).ok_or_else(|| KeyError::Damaged("a subject key was not created".to_owned()))?;
            let ciphertext = crypto::seal(key, plaintext.as_bytes(), &value_context(self.project, subject, token))?;
            sealed.push(SealedValue { subject: subject.clone(), token: token.clone(), ciphertext });
        }
        Ok(sealed)
    }
}

impl Sealer for SubjectSealer {
    fn seal(&mut self, subject: &str, token: &str, plaintext_json: &str) -> Result<(), SealError> {
        let known = lock(&self.store.cache).sealed.contains(&(self.project, subject.to_owned(), token.to_owned()));
        if !known && self.queued.insert((subject.to_owned(), token.to_owned())) {
            self.pending.push((subject.to_owned(), token.to_owned(), Zeroizing::new(plaintext_json.to_owned())));
        }
        Ok(())
    }
}
