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
    /// With TLS: the certificate of the CA that signed the server's.
    pub ca_file: Option<PathBuf>,
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
        LocalPostgres::start_cluster(false)
    }

    /// [`LocalPostgres::start`] with TLS only: a certificate for 127.0.0.1
    /// from a throwaway CA (made with the `openssl` command), and plain connections
    /// refused (`hostssl` in `pg_hba.conf`). [`LocalPostgres::target`] then
    /// asks for TLS and trusts the certificate.
    pub fn start_with_tls() -> io::Result<LocalPostgres> {
        LocalPostgres::start_cluster(true)
    }

    fn start_cluster(tls: bool) -> io::Result<LocalPostgres> {
        let dir = tempfile::Builder::new().prefix("hearth-postgres-").tempdir()?;
        let run_as = is_root().then(|| "postgres".to_owned());
        let mut server = LocalPostgres { child: None, dir, port: free_port()?, bin: bin_dir()?, run_as, ca_file: None };
        server.init()?;
        if tls {
            server.make_certificate()?;
        }
        server.launch()?;
        let mut admin = server.target();
        admin.url = admin.url.replacen(&format!("{}/{DATABASE}", server.port), &format!("{}/postgres", server.port), 1);
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

    /// A certificate and key for 127.0.0.1 in the cluster's folder, and a
    /// `pg_hba.conf` that takes password sign-ins over TLS only.
    fn make_certificate(&mut self) -> io::Result<()> {
        let root = self.dir.path();
        let path = |name: &str| root.join(name).display().to_string();
        let openssl = |args: &[&str]| -> io::Result<()> {
            let output = Command::new("openssl").args(args).output()?;
            if !output.status.success() {
                return Err(io::Error::other(format!("openssl {} failed: {}", args[0], String::from_utf8_lossy(&output.stderr))));
            }
            Ok(())
        };
        // A CA, and the server's certificate signed by it (a self-signed
        // certificate is no trust anchor for webpki).
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(&[&["req", "-x509"][..], &ec, &["-days", "2", "-subj", "/CN=hearth test CA", "-keyout", &path("ca.key"), "-out", &path("ca.crt")]].concat())?;
        openssl(&[&["req"][..], &ec, &["-subj", "/CN=127.0.0.1", "-keyout", &path("server.key"), "-out", &path("server.csr")]].concat())?;
        std::fs::write(root.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")?;
        openssl(&[
            "x509", "-req", "-in", &path("server.csr"), "-CA", &path("ca.crt"), "-CAkey", &path("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", &path("server.ext"), "-out",
            &path("server.crt"),
        ])?;
        let key = root.join("server.key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        std::fs::write(root.join("data").join("pg_hba.conf"), "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n")?;
        if self.run_as.is_some() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(root).status()?;
            if !status.success() {
                return Err(io::Error::other("chown of the certificate to postgres failed"));
            }
        }
        self.ca_file = Some(root.join("ca.crt"));
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
            .args(match &self.ca_file {
                Some(_) => vec![
                    "-c".to_owned(),
                    "ssl=on".to_owned(),
                    "-c".to_owned(),
                    format!("ssl_cert_file={}", root.join("server.crt").display()),
                    "-c".to_owned(),
                    format!("ssl_key_file={}", root.join("server.key").display()),
                ],
                None => Vec::new(),
            })
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

    /// How a client reaches the test database (over TLS, trusting the
    /// certificate, when the server has one).
    pub fn target(&self) -> PostgresTarget {
        match &self.ca_file {
            Some(certificate) => PostgresTarget { url: format!("{}?sslmode=require", self.url()), password: Some(PASSWORD.to_owned()), ca_file: Some(certificate.clone()) },
            None => PostgresTarget::new(self.url(), Some(PASSWORD.to_owned())),
        }
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
