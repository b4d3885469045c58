//! A real ClickHouse server for tests: Debian's `clickhouse-server` (which
//! `scripts/install-test-deps.sh` installs), started on free loopback ports
//! with its data in a temporary folder, and a password-protected user so
//! that the client's authentication is exercised too.

use clickhouse_store::{ClickHouseConfig, Client};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const USER: &str = "hearth";
pub(crate) const PASSWORD: &str = "test-password";

pub(crate) struct TestClickHouse {
    child: Option<Child>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) http_port: u16,
    tcp_port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn server_binary() -> PathBuf {
    for candidate in ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("clickhouse-server is not installed: run scripts/install-test-deps.sh (it installs Debian's clickhouse-server)");
}

impl TestClickHouse {
    pub(crate) fn start() -> TestClickHouse {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut server = TestClickHouse { child: None, dir, http_port: free_port(), tcp_port: free_port() };
        server.write_config();
        server.launch();
        server
    }

    fn write_config(&self) {
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
        std::fs::write(self.dir.path().join("config.xml"), config).expect("writing config.xml");
        std::fs::write(self.dir.path().join("users.xml"), users).expect("writing users.xml");
    }

    /// Starts the server (again) and waits until it answers.
    pub(crate) fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("a log file");
        let child = Command::new(server_binary())
            .arg(format!("--config-file={}", self.dir.path().join("config.xml").display()))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting clickhouse-server");
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.http_port)) {
                use std::io::{Read, Write};
                let _ = stream.write_all(b"GET /ping HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if answer.contains("Ok.") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("clickhouse-server did not answer within 60 s; its log: {}", std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default());
    }

    /// Kills the server at once (SIGKILL).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn config(&self, database: &str) -> ClickHouseConfig {
        ClickHouseConfig { url: format!("http://127.0.0.1:{}", self.http_port), database: database.to_owned(), user: USER.to_owned(), password: PASSWORD.to_owned() }
    }

    pub(crate) fn client(&self, database: &str) -> Client {
        Client::new(&self.config(database)).expect("a client")
    }
}

impl Drop for TestClickHouse {
    fn drop(&mut self) {
        self.kill();
    }
}
