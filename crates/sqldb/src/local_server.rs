//! A throwaway PostgreSQL server for tests and benchmarks: Debian's
//! `postgresql` binaries (which `scripts/install-test-deps.sh` installs), a
//! fresh cluster in a temporary folder on a free loopback port, with a
//! password user so that authentication is exercised too. Not for
//! production: no tuning, no fsync, deleted when dropped. Run as root, the
//! cluster runs as the `postgres` system user, since PostgreSQL refuses root.

use crate::{Connection, PostgresTarget};
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "hearth";
pub const PASSWORD: &str = "test-password";
pub const DATABASE: &str = "hearth";

pub struct LocalPostgres {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    run_as: Option<String>,
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The newest installed server's `bin` folder.
fn bin_dir() -> io::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "PostgreSQL is not installed: run scripts/install-test-deps.sh (it installs Debian's postgresql)"))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl LocalPostgres {
    /// Creates a cluster, starts it and waits until it answers.
    pub fn start() -> io::Result<LocalPostgres> {
        let dir = tempfile::Builder::new().prefix("hearth-postgres-").tempdir()?;
        let run_as = is_root().then(|| "postgres".to_owned());
        let mut server = LocalPostgres { child: None, dir, port: free_port()?, bin: bin_dir()?, run_as };
        server.init()?;
        server.launch()?;
        let admin = PostgresTarget { url: format!("postgresql://{USER}@127.0.0.1:{}/postgres", server.port), password: Some(PASSWORD.to_owned()) };
        let connection = Connection::connect_postgres(&admin).map_err(io::Error::other)?;
        connection.execute_batch(&format!("CREATE DATABASE {DATABASE}")).map_err(io::Error::other)?;
        Ok(server)
    }

    fn command(&self, program: &str) -> Command {
        let binary = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(binary);
                command
            }
            None => Command::new(binary),
        }
    }

    fn init(&self) -> io::Result<()> {
        let root = self.dir.path();
        std::fs::write(root.join("password"), PASSWORD)?;
        if self.run_as.is_some() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(root).status()?;
            if !status.success() {
                return Err(io::Error::other("chown of the cluster folder to postgres failed"));
            }
        }
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(root.join("data"))
            .args(["-U", USER, "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", root.join("password").display()))
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!("initdb failed: {}", String::from_utf8_lossy(&output.stderr))));
        }
        Ok(())
    }

    /// Starts the server (again, after [`LocalPostgres::kill`]) and waits
    /// until it accepts connections.
    pub fn launch(&mut self) -> io::Result<()> {
        let root = self.dir.path();
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(root.join("data"))
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"])
            .arg("-k")
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self.command("pg_isready").args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"]).status()?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("postgres did not start within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A URL for the test database (the password apart, in [`PASSWORD`]).
    pub fn url(&self) -> String {
        format!("postgresql://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    pub fn target(&self) -> PostgresTarget {
        PostgresTarget { url: self.url(), password: Some(PASSWORD.to_owned()) }
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        // With runuser, killing the wrapper leaves the server: stop it first.
        let data = self.dir.path().join("data");
        let _ = self.command("pg_ctl").arg("-D").arg(&data).args(["-m", "immediate", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        self.kill();
    }
}
