//! The PostgreSQL side: one worker thread owns the client and runs every
//! statement sent to it.
//!
//! Why a thread: the `postgres` crate blocks on a runtime of its own, which
//! tokio forbids inside its worker threads; metadata calls come from both
//! kinds of thread. Statements and values cross the channel owned, and rows
//! come back materialised, so nothing borrowed outlives a call. Prepared
//! statements are cached per connection; a lost connection is re-opened at
//! the next call.

use crate::error::{Error, Result};
use crate::value::Value;
use postgres::types::{IsNull, ToSql as PgToSql, Type};
use postgres::{Client, NoTls};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Where the shared metadata lives: a `postgresql://user@host:port/database`
/// URL, and the password apart from it (from the environment or a file, so
/// that it is not in the config).
///
/// The connection is encrypted when the URL asks for it (`sslmode=require`,
/// or libpq's `verify-ca` and `verify-full`, which mean the same here): TLS
/// by rustls, and the server's certificate is always verified, against
/// `ca_file` (PEM) when given, else the public web roots, with its host
/// name or address. Without `sslmode` (or with `disable` or `prefer`) the
/// connection is plain, for a database on the same host or a private
/// network.
#[derive(Clone)]
pub struct PostgresTarget {
    pub url: String,
    pub password: Option<String>,
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTarget")
            .field("url", &self.describe())
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl PostgresTarget {
    /// The URL with any password in it replaced, for messages.
    pub fn describe(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let credentials = &self.url[scheme + 3..at];
                let user = credentials.split(':').next().unwrap_or("");
                format!("{}{}@{}", &self.url[..scheme + 3], user, &self.url[at + 1..])
            }
            _ => self.url.clone(),
        }
    }

    /// A PostgresTarget without a CA file.
    pub fn new(url: impl Into<String>, password: Option<String>) -> PostgresTarget {
        PostgresTarget { url: url.into(), password, ca_file: None }
    }

    /// Whether the connection is encrypted (and the server verified).
    pub fn encrypted(&self) -> Result<bool> {
        Ok(self.config()?.get_ssl_mode() == postgres::config::SslMode::Require)
    }

    /// Whether the connection would cross a network unencrypted: plain, to
    /// a host that is not this machine's loopback or socket.
    pub fn plain_over_network(&self) -> Result<bool> {
        let config = self.config()?;
        let remote = config.get_hosts().iter().any(|host| match host {
            postgres::config::Host::Tcp(name) => !matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1"),
            postgres::config::Host::Unix(_) => false,
        });
        Ok(remote && config.get_ssl_mode() != postgres::config::SslMode::Require)
    }

    fn config(&self) -> Result<postgres::Config> {
        // The postgres crate knows disable, prefer and require; certificates
        // are always verified here, so libpq's verify modes are `require`.
        let url = self.url.replace("sslmode=verify-full", "sslmode=require").replace("sslmode=verify-ca", "sslmode=require");
        let mut config = postgres::Config::from_str(&url).map_err(|e| Error::Connect { target: self.describe(), message: format!("invalid URL: {e}") })?;
        if let Some(password) = &self.password {
            config.password(password);
        }
        config.connect_timeout(Duration::from_secs(10));
        config.application_name("hearth");
        if config.get_ssl_mode() != postgres::config::SslMode::Require {
            // Plain: `prefer` must not try TLS and then fail on a certificate.
            config.ssl_mode(postgres::config::SslMode::Disable);
        }
        Ok(config)
    }

    /// The TLS connector of an encrypted connection.
    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        use rustls_pki_types::pem::PemObject;
        let failed = |message: String| Error::Connect { target: self.describe(), message };
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let certificates = rustls_pki_types::CertificateDer::pem_file_iter(path)
                    .and_then(|certificates| certificates.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| failed(format!("reading the CA file {}: {e}", path.display())))?;
                if certificates.is_empty() {
                    return Err(failed(format!("the CA file {} holds no certificate", path.display())));
                }
                for certificate in certificates {
                    roots.add(certificate).map_err(|e| failed(format!("a certificate in {}: {e}", path.display())))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| failed(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

pub(crate) enum Kind {
    Execute,
    Query,
    Batch,
}

pub(crate) enum Outcome {
    Count(u64),
    Rows(Vec<Vec<Value>>),
    Done,
}

struct Call {
    kind: Kind,
    sql: String,
    params: Vec<Value>,
    reply: mpsc::SyncSender<Result<Outcome>>,
}

pub(crate) struct Worker {
    sender: Option<mpsc::Sender<Call>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("postgres::Worker")
    }
}

/// Prepared statements kept per connection, at most this many.
const CACHED_STATEMENTS_MAX: usize = 512;

impl Worker {
    /// Connects (failing at once if the server refuses) and starts the thread.
    pub(crate) fn connect(target: &PostgresTarget) -> Result<Worker> {
        let config = target.config()?;
        let tls = if config.get_ssl_mode() == postgres::config::SslMode::Require { Some(target.tls()?) } else { None };
        let describe = target.describe();
        let (ready_sender, ready) = mpsc::sync_channel(1);
        let (sender, calls) = mpsc::channel::<Call>();
        let thread = std::thread::Builder::new()
            .name("postgres".to_owned())
            .spawn(move || {
                let connect = || {
                    match &tls {
                        Some(tls) => config.connect(tls.clone()),
                        None => config.connect(NoTls),
                    }
                    .map_err(|e| Error::Connect { target: describe.clone(), message: error_message(&e) })
                };
                let mut client = match connect() {
                    Ok(client) => {
                        let _ = ready_sender.send(Ok(()));
                        client
                    }
                    Err(error) => {
                        let _ = ready_sender.send(Err(error));
                        return;
                    }
                };
                let mut statements: HashMap<String, postgres::Statement> = HashMap::new();
                for call in calls {
                    if client.is_closed() {
                        statements.clear();
                        match connect() {
                            Ok(fresh) => client = fresh,
                            Err(error) => {
                                let _ = call.reply.send(Err(error));
                                continue;
                            }
                        }
                    }
                    let outcome = run(&mut client, &mut statements, &call);
                    if outcome.is_err() {
                        // A schema change elsewhere can invalidate a cached plan.
                        statements.clear();
                    }
                    let _ = call.reply.send(outcome);
                }
            })
            .map_err(|e| Error::Connect { target: target.describe(), message: e.to_string() })?;
        ready.recv().map_err(|_| Error::WorkerGone)??;
        Ok(Worker { sender: Some(sender), thread: Some(thread) })
    }

    pub(crate) fn call(&self, kind: Kind, sql: String, params: Vec<Value>) -> Result<Outcome> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.sender.as_ref().ok_or(Error::WorkerGone)?.send(Call { kind, sql, params, reply }).map_err(|_| Error::WorkerGone)?;
        answer.recv().map_err(|_| Error::WorkerGone)?
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(client: &mut Client, statements: &mut HashMap<String, postgres::Statement>, call: &Call) -> Result<Outcome> {
    if let Kind::Batch = call.kind {
        client.batch_execute(&call.sql).map_err(postgres_error)?;
        return Ok(Outcome::Done);
    }
    let statement = prepared(client, statements, &call.sql, &call.params)?;
    let params: Vec<&(dyn PgToSql + Sync)> = call.params.iter().map(|v| v as &(dyn PgToSql + Sync)).collect();
    match call.kind {
        Kind::Execute => Ok(Outcome::Count(client.execute(&statement, &params).map_err(postgres_error)?)),
        Kind::Query => {
            let rows = client.query(&statement, &params).map_err(postgres_error)?;
            rows.iter().map(row_values).collect::<Result<Vec<_>>>().map(Outcome::Rows)
        }
        Kind::Batch => unreachable!("handled above"),
    }
}

/// The statement prepared with each placeholder typed by its value, so that a
/// placeholder PostgreSQL cannot type from its context (`?2 IS NULL OR tag =
/// ?2`) still works; a NULL leaves its placeholder to inference, and, where
/// inference fails too, is taken as text.
fn prepared(client: &mut Client, statements: &mut HashMap<String, postgres::Statement>, sql: &str, params: &[Value]) -> Result<postgres::Statement> {
    let types: Vec<Type> = params.iter().map(value_type).collect();
    let key = format!("{}|{sql}", types.iter().map(|t| t.oid().to_string()).collect::<Vec<_>>().join(","));
    if let Some(statement) = statements.get(&key) {
        return Ok(statement.clone());
    }
    let statement = match client.prepare_typed(sql, &types) {
        Err(error) if [Some(&postgres::error::SqlState::INDETERMINATE_DATATYPE), Some(&postgres::error::SqlState::AMBIGUOUS_PARAMETER)].contains(&error.code()) => {
            let guessed: Vec<Type> = types.iter().map(|t| if t.oid() == 0 { Type::TEXT } else { t.clone() }).collect();
            client.prepare_typed(sql, &guessed).map_err(postgres_error)?
        }
        other => other.map_err(postgres_error)?,
    };
    if statements.len() >= CACHED_STATEMENTS_MAX {
        statements.clear();
    }
    statements.insert(key, statement.clone());
    Ok(statement)
}

/// Oid 0: "infer this placeholder's type from the statement".
fn unspecified() -> Type {
    Type::new("unspecified".to_owned(), 0, postgres::types::Kind::Pseudo, "pg_catalog".to_owned())
}

fn value_type(value: &Value) -> Type {
    match value {
        Value::Null => unspecified(),
        Value::Integer(_) => Type::INT8,
        Value::Real(_) => Type::FLOAT8,
        Value::Text(_) => Type::TEXT,
        Value::Blob(_) => Type::BYTEA,
    }
}

fn error_message(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => {
            // The cause too: "error performing TLS handshake" alone says not why.
            let mut message = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            message
        }
    }
}

fn postgres_error(error: postgres::Error) -> Error {
    Error::Postgres { message: error_message(&error), code: error.code().map(|c| c.code().to_owned()) }
}

fn row_values(row: &postgres::Row) -> Result<Vec<Value>> {
    let mut values = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let got = |e: postgres::Error| postgres_error(e);
        let value = match *column.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(index).map_err(got)?.map(Value::Integer),
            Type::INT4 => row.try_get::<_, Option<i32>>(index).map_err(got)?.map(|v| Value::Integer(v.into())),
            Type::INT2 => row.try_get::<_, Option<i16>>(index).map_err(got)?.map(|v| Value::Integer(v.into())),
            Type::BOOL => row.try_get::<_, Option<bool>>(index).map_err(got)?.map(|v| Value::Integer(v.into())),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(index).map_err(got)?.map(Value::Real),
            Type::FLOAT4 => row.try_get::<_, Option<f32>>(index).map_err(got)?.map(|v| Value::Real(v.into())),
            Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(index).map_err(got)?.map(Value::Blob),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => row.try_get::<_, Option<String>>(index).map_err(got)?.map(Value::Text),
            _ => return Err(Error::Conversion { column: index, expected: "a column type both engines share (cast it)", found: "an unsupported postgresql type" }),
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(values)
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Values bind to whatever type PostgreSQL inferred for the placeholder, as
/// loosely as SQLite's type affinity would take them.
impl PgToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::UNKNOWN => v.to_string().to_sql(&Type::TEXT, out),
                _ => Err(format!("cannot bind an integer to a {ty} placeholder").into()),
            },
            Value::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                _ => Err(format!("cannot bind a real to a {ty} placeholder").into()),
            },
            Value::Text(v) => match *ty {
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(v.as_bytes());
                    Ok(IsNull::No)
                }
                Type::JSON => {
                    out.extend_from_slice(v.as_bytes());
                    Ok(IsNull::No)
                }
                Type::INT8 => v.parse::<i64>()?.to_sql(ty, out),
                _ => v.as_str().to_sql(&Type::TEXT, out),
            },
            Value::Blob(v) => match *ty {
                Type::BYTEA => v.as_slice().to_sql(ty, out),
                _ => Err(format!("cannot bind a blob to a {ty} placeholder").into()),
            },
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}
