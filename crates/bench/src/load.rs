//! The load: HTTP/1.1 keep-alive connections on loopback, closed-loop for
//! throughput (each connection sends its next batch when the last one is
//! acknowledged) and open-loop for latency (batches leave on a fixed
//! schedule; latency counts from the scheduled time, so a slow server cannot
//! hide its queueing).

use crate::bodies::Body;
use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(crate) struct LoadResult {
    pub(crate) n_events: u64,
    pub(crate) n_requests: u64,
    pub(crate) n_failed: u64,
    pub(crate) elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl LoadResult {
    fn record(&mut self, acknowledged: bool, n_events: u64, latency_us: u64) {
        self.n_requests += 1;
        self.latencies_us.push(latency_us);
        if acknowledged {
            self.n_events += n_events;
        } else {
            self.n_failed += 1;
        }
    }

    /// Two loads that ran at the same time, as one: their sums, over the
    /// longer one's time.
    pub(crate) fn combine(a: LoadResult, b: LoadResult) -> LoadResult {
        let mut latencies_us = a.latencies_us;
        latencies_us.extend(b.latencies_us);
        LoadResult {
            n_events: a.n_events + b.n_events,
            n_requests: a.n_requests + b.n_requests,
            n_failed: a.n_failed + b.n_failed,
            elapsed: a.elapsed.max(b.elapsed),
            latencies_us,
        }
    }

    pub(crate) fn events_per_second(&self) -> f64 {
        self.n_events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn percentile_ms(&self, percentile: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let index = ((percentile / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[index.min(sorted.len() - 1)] as f64 / 1000.0
    }
}

struct Connection {
    sender: SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    path: String,
    authorization: Option<String>,
    content_type: &'static str,
}

impl Connection {
    async fn open(addr: SocketAddr, path: &str, secret: Option<&str>) -> anyhow::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(addr).await.context("connecting to the server")?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let authorization = secret.map(|s| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{s}:"))));
        let content_type = if path.starts_with("/import") { "application/json" } else { "application/x-www-form-urlencoded" };
        Ok(Connection { sender, addr, path: path.to_owned(), authorization, content_type })
    }

    /// Sends one body; true when the server acknowledged it.
    async fn send(&mut self, body: &Bytes) -> anyhow::Result<bool> {
        self.sender.ready().await?;
        let mut request = hyper::Request::post(&self.path).header("host", self.addr.to_string()).header("content-type", self.content_type);
        if let Some(value) = &self.authorization {
            request = request.header("authorization", value);
        }
        let response = self.sender.send_request(request.body(Full::new(body.clone()))?).await?;
        let ok = response.status().is_success();
        let answer = response.into_body().collect().await?.to_bytes();
        Ok(ok && (answer.as_ref() == b"1" || answer.windows(10).any(|w| w == b"\"status\":1" || w == b"\"code\":200")))
    }
}

pub(crate) async fn closed_loop(addr: SocketAddr, path: &str, secret: Option<&str>, bodies: &[Body], connections: usize) -> anyhow::Result<LoadResult> {
    let bodies: Arc<Vec<(Bytes, u64)>> = Arc::new(bodies.iter().map(|b| (b.bytes.clone(), b.n_events)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let result = Arc::new(Mutex::new(LoadResult::default()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let mut connection = Connection::open(addr, path, secret).await?;
        let (bodies, next, result) = (bodies.clone(), next.clone(), result.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, n_events)) = bodies.get(index) else { break };
                let sent_at = Instant::now();
                let ok = connection.send(body).await.unwrap_or(false);
                let latency_us = sent_at.elapsed().as_micros() as u64;
                result.lock().unwrap_or_else(|p| p.into_inner()).record(ok, *n_events, latency_us);
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let mut result = std::mem::take(&mut *result.lock().unwrap_or_else(|p| p.into_inner()));
    result.elapsed = started.elapsed();
    Ok(result)
}

pub(crate) async fn open_loop(addr: SocketAddr, path: &str, bodies: &[Body], rate_events_per_second: u64, duration: Duration) -> anyhow::Result<LoadResult> {
    let n_pool = 64;
    let (pool_sender, pool_receiver) = tokio::sync::mpsc::channel::<Connection>(n_pool);
    for _ in 0..n_pool {
        pool_sender.send(Connection::open(addr, path, None).await?).await.ok();
    }
    let pool_receiver = Arc::new(tokio::sync::Mutex::new(pool_receiver));
    let events_per_body = bodies.first().map_or(1, |b| b.n_events.max(1));
    let period = Duration::from_secs_f64(events_per_body as f64 / rate_events_per_second.max(1) as f64);
    let result = Arc::new(Mutex::new(LoadResult::default()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut index = 0usize;
    while started.elapsed() < duration && index < bodies.len() {
        let scheduled = started + period * index as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let (body, n_events) = (bodies[index].bytes.clone(), bodies[index].n_events);
        let (pool_receiver, pool_sender, result) = (pool_receiver.clone(), pool_sender.clone(), result.clone());
        tasks.push(tokio::spawn(async move {
            let Some(mut connection) = pool_receiver.lock().await.recv().await else { return };
            let ok = connection.send(&body).await.unwrap_or(false);
            let latency_us = scheduled.elapsed().as_micros() as u64;
            let _ = pool_sender.send(connection).await;
            result.lock().unwrap_or_else(|p| p.into_inner()).record(ok, n_events, latency_us);
        }));
        index += 1;
    }
    for task in tasks {
        task.await?;
    }
    let mut result = std::mem::take(&mut *result.lock().unwrap_or_else(|p| p.into_inner()));
    result.elapsed = started.elapsed();
    Ok(result)
}
