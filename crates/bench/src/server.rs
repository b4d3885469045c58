//! The server under test: a real `hearth serve` child process on loopback.

use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Server {
    child: Child,
    hearth: PathBuf,
    pub(crate) addr: SocketAddr,
    pub(crate) token: String,
    pub(crate) secret: String,
}

/// The per-address rate limits, lifted: the benchmark measures what the
/// server can take, and all its load comes from one address. With the
/// defaults a single address gets 2,000 ingestion requests a second (100,000
/// events/s in `/track` batches of 50) and 100 authenticated ones (200,000
/// events/s in `/import` batches of 2,000), and the excess is answered 429.
const LIFTED_ADDRESS_LIMITS: [&str; 4] = ["INGEST_PER_SECOND", "INGEST_BURST", "AUTH_PER_SECOND_PER_ADDRESS", "AUTH_BURST"];

pub(crate) struct DiskStats {
    pub(crate) parts: usize,
    pub(crate) part_bytes: u64,
}

impl Server {
    pub(crate) fn start(hearth: &Path, data: &Path) -> anyhow::Result<Server> {
        Server::start_with_policy(hearth, data, None)
    }

    /// Starts a server whose project has the privacy policy of `policy` (a
    /// TOML file), or the default one.
    pub(crate) fn start_with_policy(hearth: &Path, data: &Path, policy: Option<&Path>) -> anyhow::Result<Server> {
        Server::start_with(hearth, data, policy, &[])
    }

    /// Starts a server with extra `HEARTH_*` settings in its environment.
    pub(crate) fn start_with(hearth: &Path, data: &Path, policy: Option<&Path>, env: &[(String, String)]) -> anyhow::Result<Server> {
        Server::start_node(hearth, data, policy, env, None)
    }

    /// [`Server::start_with`] for a node that shares its metadata with
    /// another: `project` is the (token, secret) of the project that node
    /// created; None creates one.
    pub(crate) fn start_node(hearth: &Path, data: &Path, policy: Option<&Path>, env: &[(String, String)], project: Option<(String, String)>) -> anyhow::Result<Server> {
        let (token, secret) = match project {
            Some(project) => project,
            None => {
                let output = Command::new(hearth)
                    .args(["project", "create", "bench", "--json", "--data"])
                    .arg(data)
                    .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .output()
                    .with_context(|| format!("running {}", hearth.display()))?;
                if !output.status.success() {
                    bail!("project create failed: {}", String::from_utf8_lossy(&output.stderr));
                }
                let created: serde_json::Value = serde_json::from_slice(&output.stdout)?;
                (created["token"].as_str().unwrap_or_default().to_owned(), created["secret"].as_str().unwrap_or_default().to_owned())
            }
        };
        if let Some(policy) = policy {
            let status = Command::new(hearth).args(["privacy", "set", "--project", "bench", "--data"]).arg(data).arg(policy).stdout(Stdio::null()).status()?;
            if !status.success() {
                bail!("setting the privacy policy failed");
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = std::fs::File::create(data.join("server.log"))?;
        let child = Command::new(hearth)
            .args(["serve", "--listen", &addr.to_string(), "--data"])
            .arg(data)
            .env("HEARTH_LOG", "warn")
            .envs(LIFTED_ADDRESS_LIMITS.map(|name| (format!("HEARTH_RATE_LIMITS__{name}"), "1000000")))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let server = Server { child, hearth: hearth.to_path_buf(), addr, token, secret };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(mut stream) = std::net::TcpStream::connect(self.addr) {
                use std::io::{Read, Write};
                let _ = stream.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("the server did not become ready")
    }

    /// The server's peak resident set size so far (VmHWM), in MB.
    pub(crate) fn peak_rss_mb(&self) -> anyhow::Result<f64> {
        peak_rss_mb_of(self.child.id())
    }

    /// Stops the server gracefully (it flushes what it buffers first).
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        self.child.wait()?;
        Ok(())
    }
}

/// A process's peak resident set size so far (VmHWM), in MB.
pub(crate) fn peak_rss_mb_of(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    Ok(kb / 1024.0)
}

impl Server {
    /// Waits until the server has settled (compaction backlog empty; it
    /// settles after `store.settle_after_ms` without writes, 30 s by default).
    pub(crate) fn wait_settled(&self, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        while started.elapsed() < timeout {
            let metrics = self.get("/metrics")?;
            let backlog = metrics
                .lines()
                .find_map(|line| line.strip_prefix("hearth_compaction_backlog_days "))
                .and_then(|value| value.trim().parse::<f64>().ok());
            if backlog == Some(0.0) {
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        bail!("the server did not settle within {timeout:?}")
    }

    /// What the store has done so far: seconds in each timed activity (the
    /// `_sum` of its histograms) and how often, to show where a phase went.
    pub(crate) fn store_work(&self) -> anyhow::Result<StoreWork> {
        let metrics = self.get("/metrics")?;
        let sum = |name: &str| -> f64 { Self::metric(&metrics, &format!("{name}_sum")) };
        Ok(StoreWork {
            ingest_waiting: sum("hearth_ingest_backpressure_seconds"),
            flushing: sum("hearth_flush_seconds"),
            compacting: sum("hearth_compaction_seconds"),
            flushes: Self::metric(&metrics, "hearth_flush_seconds_count"),
            compactions: Self::metric(&metrics, "hearth_compaction_seconds_count"),
        })
    }

    /// A metric's value in Prometheus text, 0 when absent.
    fn metric(metrics: &str, name: &str) -> f64 {
        let prefix = format!("{name} ");
        metrics.lines().find_map(|line| line.strip_prefix(prefix.as_str())).and_then(|value| value.trim().parse().ok()).unwrap_or(0.0)
    }

    fn get(&self, path: &str) -> anyhow::Result<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.addr)?;
        stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// Stops the server gracefully (it flushes) and sums the parts.
    pub(crate) fn stop_and_measure(mut self, data: &Path) -> anyhow::Result<DiskStats> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        self.child.wait()?;
        let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("manifest.json"))?)?;
        let parts = manifest["parts"].as_array().cloned().unwrap_or_default();
        let part_bytes = parts.iter().filter_map(|p| p["bytes"].as_u64()).sum();
        let _ = &self.hearth;
        Ok(DiskStats { parts: parts.len(), part_bytes })
    }
}

pub(crate) fn export_all(hearth: &Path, data: &Path, out: &Path) -> anyhow::Result<()> {
    let status = Command::new(hearth)
        .args(["export", "--project", "bench", "--from", "1970-01-01", "--to", "2100-01-01", "--time-in-ms", "--data"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .env("HEARTH_LOG", "warn")
        .status()?;
    if !status.success() {
        bail!("hearth export failed");
    }
    Ok(())
}

/// Cumulative work of the store; see [`Server::store_work`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StoreWork {
    /// Appends held back because the buffer was full while a flush was pending.
    pub(crate) ingest_waiting: f64,
    pub(crate) flushing: f64,
    pub(crate) compacting: f64,
    pub(crate) flushes: f64,
    pub(crate) compactions: f64,
}

impl std::ops::Sub for StoreWork {
    type Output = StoreWork;
    fn sub(self, earlier: StoreWork) -> StoreWork {
        StoreWork {
            ingest_waiting: self.ingest_waiting - earlier.ingest_waiting,
            flushing: self.flushing - earlier.flushing,
            compacting: self.compacting - earlier.compacting,
            flushes: self.flushes - earlier.flushes,
            compactions: self.compactions - earlier.compactions,
        }
    }
}
