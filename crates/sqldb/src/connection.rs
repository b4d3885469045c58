//! The connection, its statements, transactions and rows: rusqlite's shape
//! over either engine.

use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::postgres_worker::{Kind, Outcome, PostgresTarget, Worker};
use crate::value::{FromSql, Params, Value};
use std::path::Path;

/// The advisory lock every PostgreSQL transaction holds: writers are
/// serialised across nodes as SQLite serialises them within one file.
const WRITER_LOCK: i64 = 0x4845_4152_5448; // "HEARTH"

#[derive(Debug)]
enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres(Worker),
}

/// A connection to SQLite or PostgreSQL.
#[derive(Debug)]
pub struct Connection {
    inner: Inner,
}

/// A column position (a trait, so that `row.get(0)` infers `usize`).
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One row, materialised.
#[derive(Debug, Clone)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    /// The value of column `index` (0-based) as `T`.
    pub fn get<I: RowIndex, T: FromSql>(&self, index: I) -> Result<T> {
        let index = index.index();
        let value = self.values.get(index).ok_or(Error::Conversion { column: index, expected: "a column", found: "nothing (index out of range)" })?;
        T::from_value(value, index)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl Connection {
    /// Opens (creating) an SQLite file.
    pub fn open_sqlite(path: &Path) -> Result<Connection> {
        let connection = rusqlite::Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(Connection { inner: Inner::Sqlite(connection) })
    }

    /// Connects to PostgreSQL; fails at once if the server is unreachable or
    /// refuses the credentials.
    pub fn connect_postgres(target: &PostgresTarget) -> Result<Connection> {
        Ok(Connection { inner: Inner::Postgres(Worker::connect(target)?) })
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) => Dialect::Sqlite,
            Inner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            Inner::Sqlite(connection) => Some(connection),
            Inner::Postgres(_) => None,
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        let values = params.values();
        match &self.inner {
            Inner::Sqlite(connection) => {
                let mut statement = connection.prepare_cached(sql)?;
                Ok(statement.execute(rusqlite::params_from_iter(values.iter()))?)
            }
            Inner::Postgres(worker) => match worker.call(Kind::Execute, Dialect::Postgres.placeholders(sql), values)? {
                Outcome::Count(n) => Ok(n as usize),
                _ => Ok(0),
            },
        }
    }

    /// Runs statements separated by `;`, without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(connection) => Ok(connection.execute_batch(sql)?),
            Inner::Postgres(worker) => worker.call(Kind::Batch, sql.to_owned(), Vec::new()).map(|_| ()),
        }
    }

    /// Every row of a query.
    pub fn rows<P: Params>(&self, sql: &str, params: P) -> Result<Vec<Row>> {
        let values = params.values();
        match &self.inner {
            Inner::Sqlite(connection) => {
                let mut statement = connection.prepare_cached(sql)?;
                let columns = statement.column_count();
                let mut rows = statement.query(rusqlite::params_from_iter(values.iter()))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let mut values = Vec::with_capacity(columns);
                    for index in 0..columns {
                        values.push(from_rusqlite(row.get_ref(index)?));
                    }
                    out.push(Row { values });
                }
                Ok(out)
            }
            Inner::Postgres(worker) => match worker.call(Kind::Query, Dialect::Postgres.placeholders(sql), values)? {
                Outcome::Rows(rows) => Ok(rows.into_iter().map(|values| Row { values }).collect()),
                _ => Ok(Vec::new()),
            },
        }
    }

    /// The first row of a query through `f`; [`Error::NoRows`] if there is none.
    pub fn query_row<T, P: Params, F: FnOnce(&Row) -> Result<T>>(&self, sql: &str, params: P, f: F) -> Result<T> {
        let rows = self.rows(sql, params)?;
        f(rows.first().ok_or(Error::NoRows)?)
    }

    /// Runs an `INSERT` into a table whose key is `id` and returns the new
    /// row's `id` (`RETURNING id`: SQLite's `last_insert_rowid()` has no
    /// PostgreSQL counterpart).
    pub fn insert_returning_id<P: Params>(&self, sql: &str, params: P) -> Result<i64> {
        self.query_row(&format!("{sql} RETURNING id"), params, |row| row.get(0))
    }

    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(Statement { connection: self, sql: sql.to_owned() })
    }

    /// The same as [`Connection::prepare`]: both engines cache prepared statements.
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        self.prepare(sql)
    }

    /// Begins a transaction that reads first and may write later.
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.begin(false)
    }

    /// Begins a transaction that takes the write lock at once (SQLite's
    /// `BEGIN IMMEDIATE`): for read-then-write sequences that must not
    /// interleave with another writer.
    pub fn transaction_immediate(&mut self) -> Result<Transaction<'_>> {
        self.begin(true)
    }

    fn begin(&self, immediate: bool) -> Result<Transaction<'_>> {
        match (&self.inner, immediate) {
            (Inner::Sqlite(_), false) => self.execute_batch("BEGIN DEFERRED")?,
            (Inner::Sqlite(_), true) => self.execute_batch("BEGIN IMMEDIATE")?,
            (Inner::Postgres(_), _) => self.execute_batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({WRITER_LOCK})"))?,
        }
        Ok(Transaction { connection: self, finished: false })
    }
}

/// An open transaction: rolled back when dropped without [`Transaction::commit`].
#[derive(Debug)]
pub struct Transaction<'c> {
    connection: &'c Connection,
    finished: bool,
}

impl Transaction<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.finished = true;
        self.connection.execute_batch("COMMIT")
    }

    pub fn rollback(mut self) -> Result<()> {
        self.finished = true;
        self.connection.execute_batch("ROLLBACK")
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.connection
    }
}

/// A statement to run, perhaps several times.
#[derive(Debug)]
pub struct Statement<'c> {
    connection: &'c Connection,
    sql: String,
}

impl Statement<'_> {
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        self.connection.execute(&self.sql, params)
    }

    /// Every row through `f`, as rusqlite's iterator of results.
    pub fn query_map<T, P: Params, F: FnMut(&Row) -> Result<T>>(&mut self, params: P, mut f: F) -> Result<std::vec::IntoIter<Result<T>>> {
        let rows = self.connection.rows(&self.sql, params)?;
        Ok(rows.iter().map(&mut f).collect::<Vec<_>>().into_iter())
    }

    pub fn query_row<T, P: Params, F: FnOnce(&Row) -> Result<T>>(&mut self, params: P, f: F) -> Result<T> {
        self.connection.query_row(&self.sql, params, f)
    }

    pub fn rows<P: Params>(&mut self, params: P) -> Result<Vec<Row>> {
        self.connection.rows(&self.sql, params)
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(v) => ValueRef::Integer(*v),
            Value::Real(v) => ValueRef::Real(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

pub(crate) fn from_rusqlite(value: rusqlite::types::ValueRef<'_>) -> Value {
    match value {
        rusqlite::types::ValueRef::Null => Value::Null,
        rusqlite::types::ValueRef::Integer(v) => Value::Integer(v),
        rusqlite::types::ValueRef::Real(v) => Value::Real(v),
        rusqlite::types::ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
        rusqlite::types::ValueRef::Blob(v) => Value::Blob(v.to_vec()),
    }
}
