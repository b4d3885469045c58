//! The audit database (`audit.sqlite`), appends, reads, verification, and
//! the optional JSONL sink outside the data directory and syslog copy.

use crate::entry::{canonical_body, chain_hash, Entry, NewEntry, GENESIS};
use crate::syslog::SyslogTarget;
use crate::AuditError;
use sqldb::{params, Connection, Dialect, OptionalExtension, PostgresTarget};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    project INTEGER,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time_ms);
CREATE INDEX IF NOT EXISTS audit_by_actor ON audit (actor, time_ms);
";

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// `kind:id` of the actor, or a prefix of it.
    pub actor: Option<String>,
    pub action: Option<String>,
    pub project: Option<u32>,
    pub limit: Option<usize>,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub entries: u64,
    pub head_seq: u64,
    pub head_hash: String,
    /// The first break, if any: the entry and what is wrong with it.
    pub broken: Option<(u64, String)>,
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

#[derive(Debug)]
pub struct AuditLog {
    connection: Mutex<Connection>,
    sink: Option<PathBuf>,
    syslog: Option<SyslogTarget>,
}

impl AuditLog {
    /// Opens (creating) `audit.sqlite` in `dir`. With `sink`, every entry is
    /// also appended as a JSON line to that file, which should live on
    /// another disk or be shipped off the machine.
    pub fn open(dir: &Path, sink: Option<PathBuf>) -> Result<AuditLog, AuditError> {
        std::fs::create_dir_all(dir).map_err(|source| AuditError::Io { path: dir.to_path_buf(), source })?;
        let connection = Connection::open_sqlite(&dir.join("audit.sqlite"))?;
        if let Some(sqlite) = connection.sqlite() {
            sqlite.pragma_update(None, "journal_mode", "WAL").map_err(sqldb::Error::from)?;
            sqlite.pragma_update(None, "synchronous", "FULL").map_err(sqldb::Error::from)?;
        }
        connection.execute_batch(SCHEMA)?;
        Ok(AuditLog { connection: Mutex::new(connection), sink, syslog: None })
    }

    /// Connects to the PostgreSQL database the nodes share: one chain for
    /// every node, appended under the database's writer lock.
    pub fn connect(target: &PostgresTarget, sink: Option<PathBuf>) -> Result<AuditLog, AuditError> {
        let mut connection = Connection::connect_postgres(target)?;
        sqldb::migrate_postgres(&mut connection, "audit", &[SCHEMA])?;
        Ok(AuditLog { connection: Mutex::new(connection), sink, syslog: None })
    }

    /// Which engine holds the log.
    pub fn dialect(&self) -> Dialect {
        self.connection.lock().unwrap_or_else(|p| p.into_inner()).dialect()
    }

    /// Also sends every entry to syslog.
    pub fn with_syslog(mut self, target: Option<SyslogTarget>) -> AuditLog {
        self.syslog = target;
        self
    }

    /// Appends an entry at the head of the chain (other processes' appends
    /// included: the head is read inside the write transaction).
    pub fn append(&self, entry: NewEntry) -> Result<Entry, AuditError> {
        let time_ms = events::now_ms();
        let stored = {
            let mut connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
            let transaction = connection.transaction_immediate()?;
            let head: Option<(u64, String)> = transaction.query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
            let (seq, prev_hash) = match head {
                Some((seq, hash)) => (seq + 1, hash),
                None => (1, GENESIS.to_owned()),
            };
            let body = canonical_body(seq, time_ms, &entry);
            let hash = chain_hash(&prev_hash, &body);
            transaction.execute(
                "INSERT INTO audit (seq, time_ms, actor, action, project, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![seq, time_ms, entry.actor.label(), entry.action, entry.project, body, prev_hash, hash],
            )?;
            transaction.commit()?;
            Entry { seq, time_ms, body: entry, prev_hash, hash }
        };
        if let Some(sink) = &self.sink {
            let line = serde_json::to_string(&stored).expect("an entry serialises");
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(sink).map_err(|source| AuditError::Io { path: sink.clone(), source })?;
            file.write_all(line.as_bytes()).and_then(|()| file.write_all(b"\n")).and_then(|()| file.sync_data()).map_err(|source| AuditError::Io { path: sink.clone(), source })?;
        }
        if let Some(target) = &self.syslog {
            crate::syslog::send(target, &stored)?;
        }
        Ok(stored)
    }

    /// Entries matching the filter, oldest first.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Entry>, AuditError> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let mut statement = connection.prepare(
            "SELECT seq, time_ms, body, prev_hash, hash FROM audit
             WHERE (CAST(?1 AS BIGINT) IS NULL OR time_ms >= ?1) AND (CAST(?2 AS BIGINT) IS NULL OR time_ms < ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR actor = ?3 OR actor LIKE ?3 || '%') AND (CAST(?4 AS TEXT) IS NULL OR action = ?4)
               AND (CAST(?5 AS BIGINT) IS NULL OR project = ?5)
             ORDER BY seq LIMIT ?6",
        )?;
        let limit = filter.limit.map_or(i64::MAX, |n| n as i64);
        let rows = statement.query_map(params![filter.since_ms, filter.until_ms, filter.actor, filter.action, filter.project, limit], |row| {
            Ok((row.get::<_, u64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?, row.get::<_, String>(4)?))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (seq, time_ms, body, prev_hash, hash) = row?;
            let parsed: NewEntry = serde_json::from_str(&body).map_err(|e| AuditError::Corrupt { seq, detail: e.to_string() })?;
            entries.push(Entry { seq, time_ms, body: parsed, prev_hash, hash });
        }
        Ok(entries)
    }

    /// Entries per hour of day (UTC, 0–23) since `since_ms` whose action
    /// is one of `actions`: the organisation's habits, for the
    /// unusual-hours alert. Counted in SQL, without reading bodies.
    pub fn hour_histogram(&self, since_ms: i64, actions: &[&str]) -> Result<[u64; 24], AuditError> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        let placeholders: Vec<String> = (0..actions.len()).map(|i| format!("?{}", i + 2)).collect();
        let sql = format!("SELECT (time_ms / 3600000) % 24, COUNT(*) FROM audit WHERE time_ms >= ?1 AND action IN ({}) GROUP BY 1", placeholders.join(", "));
        let mut hours = [0u64; 24];
        if actions.is_empty() {
            return Ok(hours);
        }
        let mut values = vec![sqldb::Value::Integer(since_ms)];
        values.extend(actions.iter().map(|a| sqldb::Value::Text((*a).to_owned())));
        let mut statement = connection.prepare_cached(&sql)?;
        let rows = statement.query_map(values, |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))?;
        for row in rows {
            let (hour, n) = row?;
            if let Some(slot) = hours.get_mut(hour.rem_euclid(24) as usize) {
                *slot += n as u64;
            }
        }
        Ok(hours)
    }

    /// Walks the whole chain. `head`: a (seq, hash) recorded elsewhere (the
    /// sink, a previous verification) that the log must still contain.
    pub fn verify(&self, head: Option<(u64, &str)>) -> Result<Verification, AuditError> {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        // Read in pages, so that a long log is not held in memory at once.
        let mut statement = connection.prepare("SELECT seq, time_ms, body, prev_hash, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT 10000")?;
        let mut page = statement.rows([0_i64])?.into_iter();
        let mut expected_prev = GENESIS.to_owned();
        let mut expected_seq = 1u64;
        let mut verification = Verification { entries: 0, head_seq: 0, head_hash: GENESIS.to_owned(), broken: None };
        let mut hashes_at_head = None;
        loop {
            let row = match page.next() {
                Some(row) => row,
                None if verification.entries == 0 || !verification.entries.is_multiple_of(10_000) => break,
                None => {
                    page = statement.rows([verification.head_seq as i64])?.into_iter();
                    match page.next() {
                        Some(row) => row,
                        None => break,
                    }
                }
            };
            let (seq, time_ms, body, prev_hash, hash): (u64, i64, String, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?);
            verification.entries += 1;
            let problem = if seq != expected_seq {
                Some(format!("sequence jumps from {} to {seq}: entries were deleted", expected_seq - 1))
            } else if prev_hash != expected_prev {
                Some("its link to the previous entry is broken: entries were deleted, inserted or reordered".to_owned())
            } else if chain_hash(&prev_hash, &body) != hash {
                Some("its content does not match its hash: it was edited".to_owned())
            } else {
                match serde_json::from_str::<serde_json::Value>(&body) {
                    Ok(value) if value.get("seq").and_then(|v| v.as_u64()) == Some(seq) && value.get("time_ms").and_then(|v| v.as_i64()) == Some(time_ms) => None,
                    _ => Some("its recorded place or time differs from its body: it was edited".to_owned()),
                }
            };
            if let Some(problem) = problem {
                verification.broken = Some((seq, problem));
                break;
            }
            if let Some((head_seq, _)) = head
                && head_seq == seq
            {
                hashes_at_head = Some(hash.clone());
            }
            expected_prev = hash.clone();
            expected_seq = seq + 1;
            verification.head_seq = seq;
            verification.head_hash = hash;
        }
        if verification.broken.is_none()
            && let Some((head_seq, head_hash)) = head
        {
            match hashes_at_head {
                None => verification.broken = Some((head_seq, format!("the log ends at entry {} but entry {head_seq} was recorded elsewhere: the tail was cut", verification.head_seq))),
                Some(hash) if hash != head_hash => verification.broken = Some((head_seq, "it differs from the copy recorded elsewhere".to_owned())),
                Some(_) => {}
            }
        }
        Ok(verification)
    }

    /// The last (seq, hash) of a sink file, to check the log against.
    pub fn sink_head(path: &Path) -> Result<Option<(u64, String)>, AuditError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuditError::Io { path: path.to_path_buf(), source })?;
        let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else { return Ok(None) };
        let entry: Entry = serde_json::from_str(line).map_err(|e| AuditError::Corrupt { seq: 0, detail: format!("last line of {}: {e}", path.display()) })?;
        Ok(Some((entry.seq, entry.hash)))
    }
}
