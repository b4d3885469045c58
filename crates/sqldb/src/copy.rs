//! Copying a node's SQLite metadata into the PostgreSQL database that nodes
//! share (`hearth migrate --to postgres`): every table, every row, as it is.
//!
//! Tables are copied in the order SQLite created them, so that a row's
//! foreign keys exist before it; rows go in multi-row inserts that skip rows
//! already there (`ON CONFLICT DO NOTHING`), so an interrupted copy can be
//! run again. Afterwards each `id` sequence is moved past the copied ids.
//! Columns are taken by name from the source; a table the target lacks is
//! an error (the target's schema comes from the same migrations).

use crate::connection::Connection;
use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::value::Value;

/// Rows per insert statement.
const ROWS_PER_INSERT: usize = 500;

/// What a copy did, per table: (name, rows read).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<(String, u64)>,
}

/// Copies every table of the SQLite `source` into `target` (PostgreSQL),
/// calling `progress(table, rows_so_far)` as it goes.
pub fn copy_sqlite_to_postgres(source: &Connection, target: &mut Connection, progress: &mut dyn FnMut(&str, u64)) -> Result<CopyReport> {
    let sqlite = source.sqlite().ok_or_else(|| Error::Conversion { column: 0, expected: "an SQLite source", found: "another engine" })?;
    if target.dialect() != Dialect::Postgres {
        return Err(Error::Conversion { column: 0, expected: "a PostgreSQL target", found: "another engine" });
    }
    let tables: Vec<String> = {
        let mut statement = sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")?;
        statement.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    let mut report = CopyReport::default();
    for table in tables {
        let columns: Vec<String> = {
            let mut statement = sqlite.prepare(&format!("SELECT name FROM pragma_table_info('{}') ORDER BY cid", table.replace('\'', "''")))?;
            statement.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        let column_list = columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
        let mut statement = sqlite.prepare(&format!("SELECT {column_list} FROM \"{table}\""))?;
        let mut rows = statement.query([])?;
        let mut pending: Vec<Value> = Vec::new();
        let mut n_rows = 0u64;
        let transaction = target.transaction()?;
        while let Some(row) = rows.next()? {
            for index in 0..columns.len() {
                pending.push(crate::connection::from_rusqlite(row.get_ref(index)?));
            }
            n_rows += 1;
            if pending.len() >= ROWS_PER_INSERT * columns.len() {
                insert(&transaction, &table, &column_list, columns.len(), std::mem::take(&mut pending))?;
                progress(&table, n_rows);
            }
        }
        if !pending.is_empty() {
            insert(&transaction, &table, &column_list, columns.len(), pending)?;
        }
        if columns.iter().any(|c| c == "id") {
            // Past the copied ids, where `id` is a serial (a sequence exists).
            let sequence: Option<String> = transaction.query_row("SELECT pg_get_serial_sequence(?1, 'id')", [table.as_str()], |row| row.get(0))?;
            if sequence.is_some() {
                transaction.execute(&format!("SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM \"{table}\"), false)"), [])?;
            }
        }
        transaction.commit()?;
        progress(&table, n_rows);
        report.tables.push((table, n_rows));
    }
    Ok(report)
}

fn insert(target: &Connection, table: &str, column_list: &str, n_columns: usize, values: Vec<Value>) -> Result<()> {
    let n_rows = values.len() / n_columns;
    let mut sql = format!("INSERT INTO \"{table}\" ({column_list}) VALUES ");
    for row in 0..n_rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..n_columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("?{}", row * n_columns + column + 1));
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    target.execute(&sql, values)?;
    Ok(())
}
