//! A small client for ClickHouse's HTTP interface (port 8123): statements
//! in the body, results as `JSONEachRow`, inserts as `RowBinary`. HTTP
//! because it is the interface every ClickHouse version and every proxy
//! speaks, and it needs nothing beyond the HTTP client Hearth already has.

use crate::error::ClickHouseError;
use base64::Engine;
use std::time::Duration;

/// Where ClickHouse is and who Hearth is there.
#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    /// e.g. `http://127.0.0.1:8123`
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: String,
}

/// A ClickHouse server and database, ready for statements.
#[derive(Clone)]
pub struct Client {
    url: String,
    database: String,
    authorization: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("Client").field("url", &self.url).field("database", &self.database).finish_non_exhaustive()
    }
}

/// Long enough for a large insert or a migration's statement.
const TIMEOUT: Duration = Duration::from_secs(300);

impl Client {
    pub fn new(config: &ClickHouseConfig) -> Result<Client, ClickHouseError> {
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(ClickHouseError::BadUrl { url: config.url.clone() });
        }
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", config.user, config.password));
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(TIMEOUT)).build().into();
        Ok(Client {
            url: config.url.trim_end_matches('/').to_owned(),
            database: config.database.clone(),
            authorization: format!("Basic {credentials}"),
            agent,
        })
    }

    /// The database this client works in (tables are named `database.table`).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs a statement that returns nothing of interest.
    pub fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        self.post(&[], sql.as_bytes().to_vec()).map(drop)
    }

    /// Runs a query and parses each `JSONEachRow` line as a `T`; `sql` must
    /// not have a FORMAT clause.
    pub fn query<T: serde::de::DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        // 64-bit integers as numbers, not the strings ClickHouse defaults to.
        let settings = [("output_format_json_quote_64bit_integers", "0")];
        let text = self.post(&settings, format!("{sql} FORMAT JSONEachRow").into_bytes())?;
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).map_err(|error| ClickHouseError::Decode { detail: format!("{error} in {line:.200}") }))
            .collect()
    }

    /// Inserts `body`, rows in `RowBinary` of the listed columns.
    pub fn insert_row_binary(&self, table: &str, columns: &[&str], body: Vec<u8>) -> Result<(), ClickHouseError> {
        let statement = format!("INSERT INTO {}.{table} ({}) FORMAT RowBinary", self.database, columns.join(", "));
        self.post(&[("query", statement.as_str())], body).map(drop)
    }

    fn post(&self, params: &[(&str, &str)], body: Vec<u8>) -> Result<String, ClickHouseError> {
        // Statements only (inserts carry rows): HEARTH_LOG=clickhouse_store=debug shows them.
        if !params.iter().any(|(name, _)| *name == "query") {
            tracing::debug!(statement = %String::from_utf8_lossy(&body), "ClickHouse");
        }
        let mut request = self.agent.post(&self.url).header("authorization", &self.authorization);
        for (name, value) in params {
            request = request.query(*name, *value);
        }
        let mut response = request.send(&body[..]).map_err(|error| ClickHouseError::Unreachable { url: self.url.clone(), detail: error.to_string() })?;
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(u64::MAX).read_to_string().map_err(|error| ClickHouseError::Decode { detail: error.to_string() })?;
        if status != 200 {
            return Err(ClickHouseError::Server { status, message: text.trim().chars().take(2000).collect() });
        }
        Ok(text)
    }
}
