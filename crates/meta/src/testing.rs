//! Unit tests run on both engines: a temporary SQLite file and a throwaway
//! PostgreSQL cluster (`sqldb::local_server`).

use crate::Meta;
use sqldb::local_server::LocalPostgres;

/// Runs `test` with a way to open the same metadata again (as after a
/// restart), once on SQLite and once on PostgreSQL.
pub(crate) fn on_each_backend_reopening(test: impl Fn(&dyn Fn() -> Meta)) {
    let dir = tempfile::tempdir().unwrap();
    test(&|| Meta::open(dir.path()).unwrap());
    let server = LocalPostgres::start().unwrap();
    test(&|| Meta::connect(&server.target()).unwrap());
}

/// Runs `test` on a fresh SQLite file and on a fresh PostgreSQL database.
pub(crate) fn on_each_backend(test: impl Fn(&Meta)) {
    on_each_backend_reopening(|open| test(&open()));
}
