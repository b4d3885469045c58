//! PostgreSQL over TLS, against a real server that takes TLS only: the
//! connection is encrypted, the server's certificate is verified, and what
//! goes wrong is said plainly.

use sqldb::local_server::{LocalPostgres, PASSWORD};
use sqldb::{Connection, PostgresTarget};

fn refused(target: &PostgresTarget) -> String {
    match Connection::connect_postgres(target) {
        Ok(_) => panic!("{target:?} connected"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_tls_connection_is_encrypted_and_verifies_the_server() {
    let server = LocalPostgres::start_with_tls().unwrap();
    let target = server.target();
    assert!(target.encrypted().unwrap());
    let connection = Connection::connect_postgres(&target).unwrap();
    let (ssl, version): (i64, String) = connection
        .query_row("SELECT CASE WHEN ssl THEN 1 ELSE 0 END, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", [], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap();
    assert_eq!(ssl, 1, "the session is not encrypted");
    assert!(version.starts_with("TLSv1."), "{version}");
    connection.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)").unwrap();
    connection.execute("INSERT INTO notes (id, text) VALUES (?1, ?2)", sqldb::params![1, "over TLS"]).unwrap();

    // libpq's verify-full means the same here (certificates are always verified).
    let verify_full = PostgresTarget { url: target.url.replace("sslmode=require", "sslmode=verify-full"), ..target.clone() };
    let text: String = Connection::connect_postgres(&verify_full).unwrap().query_row("SELECT text FROM notes WHERE id = 1", [], |row| row.get(0)).unwrap();
    assert_eq!(text, "over TLS");

    // Without the CA file, the public roots do not vouch for a self-signed certificate.
    let untrusted = PostgresTarget { ca_file: None, ..target.clone() };
    let message = refused(&untrusted);
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    // A plain connection is refused by this server, with its reason.
    let plain = PostgresTarget::new(server.url(), Some(PASSWORD.to_owned()));
    assert!(!plain.encrypted().unwrap());
    let message = refused(&plain);
    assert!(message.contains("no encryption") || message.contains("pg_hba.conf"), "{message}");
    // A CA file that holds no certificate is named.
    let empty = tempfile::NamedTempFile::new().unwrap();
    let message = refused(&PostgresTarget { ca_file: Some(empty.path().to_owned()), ..target.clone() });
    assert!(message.contains("holds no certificate") && message.contains(&empty.path().display().to_string()), "{message}");
    // The password is in no message.
    assert!(!message.contains(PASSWORD));
}
