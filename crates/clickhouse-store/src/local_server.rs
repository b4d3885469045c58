//! A throwaway ClickHouse server for tests and benchmarks: Debian's
//! `clickhouse-server` (which `scripts/install-test-deps.sh` installs),
//! started on free loopback ports with its data in a temporary folder, and a
//! password-protected user so that the client's authentication is exercised
//! too. Not for production: one process, no tuning, deleted when dropped.

use crate::{ClickHouseConfig, Client, ClickHouseError};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "hearth";
pub const PASSWORD: &str = "test-password";

pub struct LocalClickHouse {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub http_port: u16,
    tcp_port: u16,
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn server_binary() -> io::Result<PathBuf> {
    ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "clickhouse-server is not installed: run scripts/install-test-deps.sh (it installs Debian's clickhouse-server)"))
}

impl LocalClickHouse {
    /// Starts a server and waits until it answers.
    pub fn start() -> io::Result<LocalClickHouse> {
        let dir = tempfile::Builder::new().prefix("hearth-clickhouse-").tempdir()?;
        let mut server = LocalClickHouse { child: None, dir, http_port: free_port()?, tcp_port: free_port()? };
        server.write_config()?;
        server.launch()?;
        Ok(server)
    }

    fn write_config(&self) -> io::Result<()> {
        let root = self.dir.path().display().to_string();
        let config = format!(
            "<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>{}</http_port>
  <tcp_port>{}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
",
            self.http_port, self.tcp_port
        );
        let users = format!(
            "<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <{USER}><password>{PASSWORD}</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></{USER}>
  </users>
  <quotas><default></default></quotas>
</yandex>
"
        );
        std::fs::write(self.dir.path().join("config.xml"), config)?;
        std::fs::write(self.dir.path().join("users.xml"), users)
    }

    /// Starts the server (again, after [`LocalClickHouse::kill`]) and waits
    /// until it answers `/ping`.
    pub fn launch(&mut self) -> io::Result<()> {
        let log = std::fs::File::create(self.dir.path().join("server.log"))?;
        let child = Command::new(server_binary()?)
            .arg(format!("--config-file={}", self.dir.path().join("config.xml").display()))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if answers_ping(self.http_port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        Err(io::Error::new(io::ErrorKind::TimedOut, format!("clickhouse-server did not answer within 60 s; its log: {log}")))
    }

    /// Kills the server at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where the server keeps its files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn config(&self, database: &str) -> ClickHouseConfig {
        ClickHouseConfig { url: self.url(), database: database.to_owned(), user: USER.to_owned(), password: PASSWORD.to_owned() }
    }

    pub fn client(&self, database: &str) -> Result<Client, ClickHouseError> {
        Client::new(&self.config(database))
    }
}

fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.write_all(b"GET /ping HTTP/1.0\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("Ok.")
}

impl Drop for LocalClickHouse {
    fn drop(&mut self) {
        self.kill();
    }
}
