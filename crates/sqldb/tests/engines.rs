//! The same statements on SQLite and on a real PostgreSQL (Debian's, started
//! on loopback by `LocalPostgres`) give the same answers.

use sqldb::local_server::LocalPostgres;
use sqldb::{params, Connection, Dialect, OptionalExtension};

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        ratio REAL,
        payload BLOB
    );",
    "ALTER TABLE items ADD COLUMN flag INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE tags (item INTEGER NOT NULL REFERENCES items(id), tag TEXT NOT NULL, PRIMARY KEY (item, tag)) WITHOUT ROWID;",
];

fn migrate(connection: &mut Connection) {
    match connection.dialect() {
        Dialect::Postgres => {
            assert_eq!(sqldb::migrate_postgres(connection, "engines-test", MIGRATIONS).unwrap(), 2);
            assert_eq!(sqldb::migrate_postgres(connection, "engines-test", MIGRATIONS).unwrap(), 0, "a second start applies nothing");
        }
        Dialect::Sqlite => {
            for migration in MIGRATIONS {
                connection.execute_batch(migration).unwrap();
            }
        }
    }
}

/// Runs the same workload and returns what it read, for comparison.
fn workload(connection: &mut Connection) -> Vec<String> {
    migrate(connection);
    let mut seen = Vec::new();
    let a: i64 = connection.query_row("INSERT INTO items (name, size, ratio, payload) VALUES (?1, ?2, ?3, ?4) RETURNING id", params!["a", 10_i64, 0.5_f64, vec![0u8, 255, 7]], |row| row.get(0)).unwrap();
    let b: i64 = connection.query_row("INSERT INTO items (name, size, ratio, payload, flag) VALUES (?1, ?2, NULL, NULL, ?3) RETURNING id", params!["b", 20_i64, true], |row| row.get(0)).unwrap();
    assert_ne!(a, b);
    let ignored = connection.execute("INSERT INTO items (name, size) VALUES (?1, ?2) ON CONFLICT DO NOTHING", params!["a", 99_i64]).unwrap();
    assert_eq!(ignored, 0, "a conflicting insert changes nothing");
    let duplicate = connection.execute("INSERT INTO items (name, size) VALUES (?1, ?2)", params!["a", 99_i64]).unwrap_err();
    assert!(duplicate.is_constraint_violation(), "{duplicate}");
    let orphan = connection.execute("INSERT INTO tags (item, tag) VALUES (?1, ?2)", params![12345_i64, "x"]);
    if connection.dialect() == Dialect::Postgres {
        assert!(orphan.unwrap_err().is_constraint_violation());
    }
    connection.execute("INSERT INTO tags (item, tag) VALUES (?1, ?2), (?1, ?3)", params![a, "red", "blue"]).unwrap();

    {
        let transaction = connection.transaction_immediate().unwrap();
        transaction.execute("UPDATE items SET size = size + ?1 WHERE id = ?2", params![5_i64, a]).unwrap();
        // Dropped without commit: rolled back.
    }
    {
        let transaction = connection.transaction().unwrap();
        transaction.execute("UPDATE items SET size = size * 2 WHERE id = ?1", [b]).unwrap();
        transaction.commit().unwrap();
    }

    let mut statement = connection.prepare("SELECT name, size, ratio, payload, flag FROM items WHERE size >= ?1 ORDER BY name").unwrap();
    type Item = (String, i64, Option<f64>, Option<Vec<u8>>, bool);
    let rows: Vec<Item> =
        statement.query_map([0_i64], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))).unwrap().collect::<Result<_, _>>().unwrap();
    seen.push(format!("{rows:?}"));
    let missing: Option<i64> = connection.query_row("SELECT id FROM items WHERE name = ?1", ["zzz"], |row| row.get(0)).optional().unwrap();
    assert_eq!(missing, None);
    let count: i64 = connection.query_row("SELECT COUNT(*) FROM tags WHERE item = ?1 AND (?2 IS NULL OR tag = ?2)", params![a, None::<String>], |row| row.get(0)).unwrap();
    seen.push(format!("tags {count}"));
    let quoted: String = connection.query_row("SELECT '?' || name FROM items WHERE id = ?1", [a], |row| row.get(0)).unwrap();
    seen.push(quoted);
    seen
}

#[test]
fn sqlite_and_postgresql_answer_alike() {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = Connection::open_sqlite(&dir.path().join("test.sqlite")).unwrap();
    sqlite.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let on_sqlite = workload(&mut sqlite);

    let server = LocalPostgres::start().unwrap();
    let mut postgres = Connection::connect_postgres(&server.target()).unwrap();
    let on_postgres = workload(&mut postgres);
    assert_eq!(on_sqlite, on_postgres);
    assert_eq!(on_sqlite[0], r#"[("a", 10, Some(0.5), Some([0, 255, 7]), false), ("b", 40, None, None, true)]"#);
}

#[test]
fn a_wrong_password_is_refused_with_the_servers_reason() {
    let server = LocalPostgres::start().unwrap();
    let mut target = server.target();
    target.password = Some("wrong".to_owned());
    let error = Connection::connect_postgres(&target).unwrap_err().to_string();
    assert!(error.contains("password authentication failed"), "{error}");
    assert!(!error.contains("wrong"), "the password is not in the message: {error}");
}
