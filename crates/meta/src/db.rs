//! The connection (SQLite or PostgreSQL), the schema migrations, and the
//! change counters that let caches know when to rebuild.

use crate::error::Error;
use sqldb::{Connection, Dialect, PostgresTarget};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Versioned migrations, applied in order at open; `user_version` records the
/// last one applied.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        token TEXT NOT NULL UNIQUE,
        secret_sha256 BLOB NOT NULL UNIQUE,
        timezone TEXT NOT NULL DEFAULT 'UTC',
        geo_precision TEXT NOT NULL DEFAULT 'country',
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE profiles (
        project INTEGER NOT NULL REFERENCES projects(id),
        distinct_id TEXT NOT NULL,
        properties TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (project, distinct_id)
    ) WITHOUT ROWID;
    CREATE TABLE group_profiles (
        project INTEGER NOT NULL REFERENCES projects(id),
        group_key TEXT NOT NULL,
        group_id TEXT NOT NULL,
        properties TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (project, group_key, group_id)
    ) WITHOUT ROWID;
    CREATE TABLE identity_links (
        project INTEGER NOT NULL REFERENCES projects(id),
        distinct_id TEXT NOT NULL,
        canonical_id TEXT NOT NULL,
        source TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        PRIMARY KEY (project, distinct_id)
    ) WITHOUT ROWID;",
    "CREATE TABLE cohorts (
        id INTEGER PRIMARY KEY,
        project INTEGER NOT NULL REFERENCES projects(id),
        name TEXT NOT NULL,
        definition TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX cohorts_by_project ON cohorts (project);",
    "CREATE TABLE privacy_policies (
        project INTEGER NOT NULL REFERENCES projects(id),
        version INTEGER NOT NULL,
        document TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (project, version)
    );
    CREATE TABLE personal_values (
        project INTEGER NOT NULL REFERENCES projects(id),
        subject TEXT NOT NULL,
        token TEXT NOT NULL,
        ciphertext BLOB NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (project, subject, token)
    ) WITHOUT ROWID;
    CREATE TABLE privacy_counts (
        project INTEGER NOT NULL REFERENCES projects(id),
        event TEXT NOT NULL,
        property TEXT NOT NULL,
        kind TEXT NOT NULL,
        count INTEGER NOT NULL,
        first_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        PRIMARY KEY (project, event, property, kind)
    ) WITHOUT ROWID;
    CREATE TABLE erasures (
        id INTEGER PRIMARY KEY,
        project INTEGER NOT NULL REFERENCES projects(id),
        task_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        subjects INTEGER NOT NULL,
        requested_ms INTEGER NOT NULL,
        finished_ms INTEGER,
        -- retrievals: the requested distinct ids, as a JSON array
        detail TEXT
    );
    CREATE TABLE erased_ids (
        project INTEGER NOT NULL REFERENCES projects(id),
        distinct_id TEXT NOT NULL,
        erasure INTEGER NOT NULL REFERENCES erasures(id),
        PRIMARY KEY (project, distinct_id)
    ) WITHOUT ROWID;",
    "CREATE TABLE service_accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        disabled_ms INTEGER,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        account INTEGER NOT NULL REFERENCES service_accounts(id),
        display TEXT NOT NULL,
        secret_sha256 BLOB NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        projects TEXT NOT NULL,
        allow_cidrs TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER,
        last_used_ms INTEGER,
        disabled_ms INTEGER,
        replaces INTEGER
    );
    CREATE INDEX api_keys_by_account ON api_keys (account);
    CREATE TABLE project_tokens (
        project INTEGER NOT NULL REFERENCES projects(id),
        token TEXT NOT NULL UNIQUE,
        expires_ms INTEGER NOT NULL
    );
    ALTER TABLE projects ADD COLUMN secret_disabled INTEGER NOT NULL DEFAULT 0;",
    "CREATE TABLE organisations (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        phishing_resistant_only INTEGER NOT NULL DEFAULT 1,
        idle_timeout_ms INTEGER NOT NULL DEFAULT 1800000,
        absolute_timeout_ms INTEGER NOT NULL DEFAULT 43200000,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE members (
        id INTEGER PRIMARY KEY,
        organisation INTEGER NOT NULL REFERENCES organisations(id),
        email_token TEXT NOT NULL UNIQUE,
        email_sealed BLOB NOT NULL,
        role TEXT NOT NULL,
        can_export INTEGER NOT NULL DEFAULT 0,
        can_view_pii INTEGER NOT NULL DEFAULT 0,
        projects TEXT NOT NULL DEFAULT '[]',
        webauthn_id TEXT NOT NULL,
        disabled_ms INTEGER,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE passkeys (
        id INTEGER PRIMARY KEY,
        member INTEGER NOT NULL REFERENCES members(id),
        credential_id TEXT NOT NULL UNIQUE,
        passkey TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        last_used_ms INTEGER
    );
    CREATE TABLE enrolments (
        token_sha256 BLOB PRIMARY KEY,
        member INTEGER NOT NULL REFERENCES members(id),
        expires_ms INTEGER NOT NULL,
        used_ms INTEGER
    );
    CREATE TABLE sessions (
        id_sha256 BLOB PRIMARY KEY,
        short_id TEXT NOT NULL UNIQUE,
        member INTEGER NOT NULL REFERENCES members(id),
        csrf_sha256 BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        idle_ms INTEGER NOT NULL,
        stepped_up_ms INTEGER,
        revoked_ms INTEGER,
        country TEXT
    );
    CREATE INDEX sessions_by_member ON sessions (member);
    CREATE TABLE login_countries (
        member INTEGER NOT NULL REFERENCES members(id),
        country TEXT NOT NULL,
        first_ms INTEGER NOT NULL,
        PRIMARY KEY (member, country)
    ) WITHOUT ROWID;",
    "CREATE TABLE recovery_codes (
        member INTEGER NOT NULL REFERENCES members(id),
        code_sha256 BLOB NOT NULL,
        used_ms INTEGER,
        PRIMARY KEY (member, code_sha256)
    ) WITHOUT ROWID;",
    "ALTER TABLE organisations ADD COLUMN exports_frozen_ms INTEGER;
    CREATE TABLE blocked_addresses (
        cidr TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );",
    "ALTER TABLE members ADD COLUMN password_phc TEXT;
    ALTER TABLE members ADD COLUMN totp_sealed BLOB;
    ALTER TABLE members ADD COLUMN totp_confirmed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE members ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;",
    "CREATE TABLE canaries (
        project INTEGER NOT NULL REFERENCES projects(id),
        distinct_id TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (project, distinct_id)
    ) WITHOUT ROWID;
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        project INTEGER,
        rule TEXT NOT NULL,
        severity TEXT NOT NULL,
        actor TEXT NOT NULL,
        detail TEXT NOT NULL,
        action_taken TEXT,
        created_ms INTEGER NOT NULL
    );",
    "CREATE TABLE alert_rules (
        rule TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL,
        action TEXT NOT NULL,
        threshold REAL NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE credential_countries (
        credential TEXT NOT NULL,
        country TEXT NOT NULL,
        first_ms INTEGER NOT NULL,
        PRIMARY KEY (credential, country)
    ) WITHOUT ROWID;
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE export_requests (
        id INTEGER PRIMARY KEY,
        project INTEGER NOT NULL REFERENCES projects(id),
        requester TEXT NOT NULL,
        requester_member INTEGER,
        params TEXT NOT NULL,
        rows INTEGER NOT NULL,
        users INTEGER NOT NULL,
        reason TEXT NOT NULL,
        status TEXT NOT NULL,
        decided_by INTEGER,
        decided_ms INTEGER,
        used_ms INTEGER,
        created_ms INTEGER NOT NULL
    );",
    "CREATE TABLE dashboards (
        id INTEGER PRIMARY KEY,
        project INTEGER NOT NULL REFERENCES projects(id),
        name TEXT NOT NULL,
        tiles TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );",
    "ALTER TABLE organisations ADD COLUMN audit_addresses INTEGER NOT NULL DEFAULT 0;",
    // WebAuthn ceremonies between start and finish, where nodes share the
    // metadata (a sign-in started on one node may finish on another).
    "CREATE TABLE ceremonies (
        id_sha256 BLOB PRIMARY KEY,
        state TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );",
    // Numbers for people, shared by every node, where events live in
    // ClickHouse: what the audit's bitmaps of returned people hold there.
    "CREATE TABLE person_keys (
        project INTEGER NOT NULL REFERENCES projects(id),
        distinct_id TEXT NOT NULL,
        person_key INTEGER NOT NULL,
        PRIMARY KEY (project, distinct_id)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX person_keys_by_key ON person_keys (project, person_key);",
    // What stays of a finished erasure, where events live in an external
    // database: keyed hashes of the erased ids, so that events of theirs
    // still buffered on another node (or in a node's WAL while it was down)
    // are held back when they arrive.
    "CREATE TABLE erasure_tombstones (
        project INTEGER NOT NULL REFERENCES projects(id),
        tombstone TEXT NOT NULL,
        erased_ms INTEGER NOT NULL,
        PRIMARY KEY (project, tombstone)
    ) WITHOUT ROWID;",
    // Limits that every node counts together (see `shared_limits`).
    "CREATE TABLE shared_limits (
        key TEXT PRIMARY KEY,
        tat_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE sign_in_failures (
        key TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX sign_in_failures_by_key ON sign_in_failures (key, at_ms);",
    // Identity links made durable but not yet merged into identity_links
    // (SQLite; see `identity`): appended in queue order, merged in key order.
    "CREATE TABLE identity_links_recent (
        seq INTEGER PRIMARY KEY,
        project INTEGER NOT NULL REFERENCES projects(id),
        distinct_id TEXT NOT NULL,
        canonical_id TEXT NOT NULL,
        source TEXT NOT NULL,
        time_ms INTEGER NOT NULL
    );",
];

/// The metadata database: an SQLite file of this node's, or a PostgreSQL
/// database that every node shares. Calls block; async callers wrap them in
/// `spawn_blocking`.
#[derive(Debug)]
pub struct Meta {
    connection: Mutex<Connection>,
    /// On PostgreSQL, a second connection for the change counters that other
    /// nodes read ([`SharedGenerations`]), so that a change can be announced
    /// while the main connection is still held.
    shared: Option<SharedGenerations>,
    /// Bumped by every change to identity links, so that readers in this
    /// process (the query engine) know when to rebuild what depends on them.
    identity_generation: AtomicU64,
    /// The same for profiles, group profiles and cohorts.
    profile_generation: AtomicU64,
    /// The same for privacy policies.
    policy_generation: AtomicU64,
    /// The same for erasures.
    erasure_generation: AtomicU64,
    /// Identity links waiting for their commit ([`Meta::queue_links`]).
    pub(crate) queued_links: Mutex<Vec<crate::identity::QueuedLink>>,
    /// Held by a commit of queued links from taking the queue until they are
    /// durable: a second commit, finding the queue empty, returns only once
    /// the links the first one took are durable too.
    pub(crate) committing_links: Mutex<()>,
    /// Rows in `identity_links_recent` (see [`crate::identity`]): SQLite's
    /// durable queue, on PostgreSQL only what a migration copied in.
    pub(crate) recent_links: AtomicUsize,
}

/// What the generations count, as stored in `hearth_generations`.
#[derive(Debug, Clone, Copy)]
enum Generation {
    Identity = 0,
    Profile = 1,
    Policy = 2,
    Erasure = 3,
}

const GENERATION_NAMES: [&str; 4] = ["identity", "profile", "policy", "erasure"];

/// How long a node trusts the shared counters it read: the longest another
/// node's change to a policy, a block, a link, a profile or an erasure goes
/// unseen by this node's caches. Sessions, keys and projects are read from
/// the database on every use and are never stale.
const SHARED_GENERATIONS_TTL: Duration = Duration::from_secs(1);

/// How long a change to identity links or profiles may wait before it is
/// announced, so that the changes of many requests go out as one statement
/// (those come with ingestion, hundreds a second; policies and erasures are
/// announced at once).
const ANNOUNCE_COALESCE: Duration = Duration::from_millis(50);

/// Change counters in PostgreSQL: every node adds one when it changes what
/// the counter covers, and reads them all at most once per
/// [`SHARED_GENERATIONS_TTL`].
#[derive(Debug)]
struct SharedGenerations {
    connection: Arc<Mutex<Connection>>,
    read: Mutex<Option<(Instant, [u64; 4])>>,
    /// Kinds changed here and not yet announced (identity and profile).
    pending: Arc<[AtomicBool; 4]>,
    /// Wakes the announcer; dropped to stop it (it announces what is left).
    wake: Option<mpsc::Sender<()>>,
    announcer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SharedGenerations {
    fn drop(&mut self) {
        self.wake.take();
        if let Some(thread) = self.announcer.take() {
            let _ = thread.join();
        }
    }
}

/// Adds one to each of `kinds` in one statement.
fn announce(connection: &Mutex<Connection>, kinds: &[Generation]) {
    if kinds.is_empty() {
        return;
    }
    let rows: Vec<String> = kinds.iter().map(|kind| format!("('{}', 1)", GENERATION_NAMES[*kind as usize])).collect();
    let result = lock(connection).execute_batch(&format!(
        "INSERT INTO hearth_generations (kind, value) VALUES {} ON CONFLICT (kind) DO UPDATE SET value = hearth_generations.value + 1",
        rows.join(", ")
    ));
    if let Err(error) = result {
        tracing::warn!(%error, "announcing a change to the other nodes failed");
    }
}

impl SharedGenerations {
    fn new(connection: Connection) -> SharedGenerations {
        let connection = Arc::new(Mutex::new(connection));
        let pending: Arc<[AtomicBool; 4]> = Arc::new(Default::default());
        let (wake, woken) = mpsc::channel::<()>();
        let announcer = {
            let (connection, pending) = (connection.clone(), pending.clone());
            std::thread::Builder::new().name("hearth-announce".to_owned()).spawn(move || {
                let take = || -> Vec<Generation> {
                    [Generation::Identity, Generation::Profile].into_iter().filter(|kind| pending[*kind as usize].swap(false, Ordering::AcqRel)).collect()
                };
                // Until the meta is dropped: wait for a change, let more
                // come, announce them together.
                while woken.recv().is_ok() {
                    std::thread::sleep(ANNOUNCE_COALESCE);
                    while woken.try_recv().is_ok() {}
                    announce(&connection, &take());
                }
                announce(&connection, &take());
            })
        };
        // No thread: every change is announced at once.
        let (wake, announcer) = match announcer {
            Ok(thread) => (Some(wake), Some(thread)),
            Err(_) => (None, None),
        };
        SharedGenerations { connection, read: Mutex::new(None), pending, wake, announcer }
    }

    fn values(&self) -> [u64; 4] {
        let mut read = lock(&self.read);
        if let Some((at, values)) = *read
            && at.elapsed() < SHARED_GENERATIONS_TTL
        {
            return values;
        }
        let mut values = [0u64; 4];
        let rows = lock(&self.connection).rows("SELECT kind, value FROM hearth_generations", []);
        match rows {
            Ok(rows) => {
                for row in rows {
                    let (kind, value): (String, i64) = match (row.get(0), row.get(1)) {
                        (Ok(kind), Ok(value)) => (kind, value),
                        _ => continue,
                    };
                    if let Some(index) = GENERATION_NAMES.iter().position(|name| *name == kind) {
                        values[index] = value as u64;
                    }
                }
            }
            // Unreachable for a moment: keep what was read last (the next
            // call tries again), or count nothing as changed.
            Err(error) => {
                tracing::warn!(%error, "reading the shared change counters failed");
                return read.map_or(values, |(_, values)| values);
            }
        }
        *read = Some((Instant::now(), values));
        values
    }

    fn bump(&self, generation: Generation) {
        let coalesced = matches!(generation, Generation::Identity | Generation::Profile)
            && self.wake.as_ref().is_some_and(|wake| {
                self.pending[generation as usize].store(true, Ordering::Release);
                wake.send(()).is_ok()
            });
        if !coalesced {
            announce(&self.connection, &[generation]);
        }
        *lock(&self.read) = None;
    }
}

/// Links still queued when the metadata closes are committed: a command that
/// recorded links without flushing a store loses none. (A crash skips this;
/// the WAL's replay gives those links back, see [`crate::identity`].)
impl Drop for Meta {
    fn drop(&mut self) {
        if let Err(error) = self.commit_queued_links() {
            tracing::error!(%error, "queued identity links could not be committed at close");
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The table of shared change counters (PostgreSQL only).
const GENERATIONS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS hearth_generations (kind TEXT PRIMARY KEY, value BIGINT NOT NULL)";

impl Meta {
    /// Opens (creating) this node's `meta.sqlite` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Meta, Error> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::Io { path: data_dir.to_path_buf(), source })?;
        let mut connection = Connection::open_sqlite(&data_dir.join("meta.sqlite"))?;
        if let Some(sqlite) = connection.sqlite() {
            sqlite.pragma_update(None, "journal_mode", "WAL").map_err(sqldb::Error::from)?;
            sqlite.pragma_update(None, "synchronous", "FULL").map_err(sqldb::Error::from)?;
            sqlite.pragma_update(None, "foreign_keys", "ON").map_err(sqldb::Error::from)?;
        }
        migrate_sqlite(&mut connection)?;
        Meta::with(connection, None)
    }

    /// Connects to the PostgreSQL database the nodes share, applying any
    /// schema migrations it lacks.
    pub fn connect(target: &PostgresTarget) -> Result<Meta, Error> {
        let mut connection = Connection::connect_postgres(target)?;
        sqldb::migrate_postgres(&mut connection, "meta", MIGRATIONS)?;
        let counters = Connection::connect_postgres(target)?;
        counters.execute_batch(GENERATIONS_SCHEMA)?;
        Meta::with(connection, Some(SharedGenerations::new(counters)))
    }

    fn with(connection: Connection, shared: Option<SharedGenerations>) -> Result<Meta, Error> {
        // Links left unmerged (by a crash, or copied in by a migration) are
        // merged with the next ones.
        let recent_links: i64 = connection.query_row("SELECT count(*) FROM identity_links_recent", [], |row| row.get(0))?;
        Ok(Meta {
            connection: Mutex::new(connection),
            shared,
            identity_generation: AtomicU64::new(1),
            profile_generation: AtomicU64::new(1),
            policy_generation: AtomicU64::new(1),
            erasure_generation: AtomicU64::new(1),
            queued_links: Mutex::new(Vec::new()),
            committing_links: Mutex::new(()),
            recent_links: AtomicUsize::new(usize::try_from(recent_links).unwrap_or_default()),
        })
    }

    /// Which engine holds the metadata.
    /// Whether other nodes share this metadata (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    pub fn dialect(&self) -> Dialect {
        self.connection().dialect()
    }

    /// Changes whenever an identity link is added (by any node). Queued
    /// links are committed first, so that a reader checking it sees them; if
    /// that fails, the generation stays and the reader's next read of the
    /// links reports the error.
    pub fn identity_generation(&self) -> u64 {
        if let Err(error) = self.commit_queued_links() {
            tracing::warn!(%error, "queued identity links could not be committed");
        }
        self.identity_generation.load(Ordering::Acquire) + self.shared_changes(Generation::Identity)
    }

    /// Changes whenever a profile, group profile or cohort changes (by any node).
    pub fn profile_generation(&self) -> u64 {
        self.profile_generation.load(Ordering::Acquire) + self.shared_changes(Generation::Profile)
    }

    /// Changes whenever a privacy policy is stored, here or (seen through
    /// SQLite's `data_version`, or the shared counters) by another process.
    pub fn policy_generation(&self) -> u64 {
        self.policy_generation.load(Ordering::Acquire) + self.external_changes() + self.shared_changes(Generation::Policy)
    }

    /// Changes whenever an erasure is recorded, here or by another process.
    pub fn erasure_generation(&self) -> u64 {
        self.erasure_generation.load(Ordering::Acquire) + self.external_changes() + self.shared_changes(Generation::Erasure)
    }

    /// SQLite's count of commits by other connections (the CLI while the
    /// server runs); it only grows. Zero on PostgreSQL.
    fn external_changes(&self) -> u64 {
        if self.shared.is_some() {
            // PostgreSQL: the shared counters say it (and the connection,
            // perhaps busy with a transaction, is not waited for).
            return 0;
        }
        let connection = self.connection();
        match connection.sqlite() {
            Some(sqlite) => sqlite.query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0)).map_or(0, |v| v as u64) << 32,
            None => 0,
        }
    }

    /// The shared counter of `generation`, shifted clear of the local one.
    fn shared_changes(&self, generation: Generation) -> u64 {
        self.shared.as_ref().map_or(0, |shared| shared.values()[generation as usize] << 32)
    }

    fn bump(&self, local: &AtomicU64, generation: Generation) {
        local.fetch_add(1, Ordering::AcqRel);
        if let Some(shared) = &self.shared {
            shared.bump(generation);
        }
    }

    pub(crate) fn bump_policy_generation(&self) {
        self.bump(&self.policy_generation, Generation::Policy);
    }

    pub(crate) fn bump_erasure_generation(&self) {
        self.bump(&self.erasure_generation, Generation::Erasure);
    }

    pub(crate) fn bump_identity_generation(&self) {
        self.bump(&self.identity_generation, Generation::Identity);
    }

    pub(crate) fn bump_profile_generation(&self) {
        self.bump(&self.profile_generation, Generation::Profile);
    }

    pub(crate) fn connection(&self) -> MutexGuard<'_, Connection> {
        lock(&self.connection)
    }
}

fn migrate_sqlite(connection: &mut Connection) -> Result<(), Error> {
    let applied: usize = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
        transaction.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        transaction.commit()?;
    }
    Ok(())
}
