//! `hearth-bench ingest-clickhouse`: durable ingestion through two Hearth
//! nodes that share one ClickHouse and one PostgreSQL (the scale-out
//! backends: events, and metadata with one project), on this one machine: events per second through /import and /track, split evenly over
//! the nodes; how long after the last acknowledgement every event is in
//! ClickHouse; the events ClickHouse holds (deduplicated) and their bytes
//! on disk; each process's peak RSS.
//!
//! Everything shares the same cores here, ClickHouse included, so the
//! figure is a floor for what two machines would do, not a forecast.

use crate::server::{peak_rss_mb_of, Server};
use crate::{bodies, load};
use anyhow::Context;
use clickhouse_store::local_server::{LocalClickHouse, PASSWORD, USER};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct ClickHouseArgs {
    /// Events for the /import phase (the data set of `hearth gen --events`).
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Events for the /track phase.
    #[arg(long, default_value_t = 500_000)]
    track_events: u64,
    /// Concurrent connections, over both nodes.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// The server binary.
    #[arg(long, default_value = "target/release/hearth")]
    hearth: PathBuf,
}

const DATABASE: &str = "hearth_bench";

#[derive(serde::Deserialize)]
struct Count {
    n: u64,
}

pub(crate) fn run(args: ClickHouseArgs) -> anyhow::Result<()> {
    println!("hearth-bench ingest-clickhouse: {} events via /import and {} via /track, through two nodes sharing one ClickHouse and one PostgreSQL", args.events, args.track_events);
    let clickhouse = LocalClickHouse::start().context("starting Debian's clickhouse-server (scripts/install-test-deps.sh installs it)")?;
    let client = clickhouse.client(DATABASE)?;
    let postgres = sqldb::local_server::LocalPostgres::start().context("starting Debian's PostgreSQL (scripts/install-test-deps.sh installs it)")?;
    let env: Vec<(String, String)> = [
        ("HEARTH_METADATA__BACKEND", "postgres".to_owned()),
        ("HEARTH_METADATA__POSTGRES_URL", postgres.url()),
        ("HEARTH_METADATA__POSTGRES_PASSWORD", sqldb::local_server::PASSWORD.to_owned()),
        // Nodes sharing the key store share the master key.
        ("HEARTH_MASTER_KEY", "6b".repeat(32)),
        ("HEARTH_STORAGE__BACKEND", "clickhouse".to_owned()),
        ("HEARTH_STORAGE__CLICKHOUSE_URL", clickhouse.url()),
        ("HEARTH_STORAGE__CLICKHOUSE_DATABASE", DATABASE.to_owned()),
        ("HEARTH_STORAGE__CLICKHOUSE_USER", USER.to_owned()),
        ("HEARTH_STORAGE__CLICKHOUSE_PASSWORD", PASSWORD.to_owned()),
        ("HEARTH_STORE__FLUSH_INTERVAL_MS", "1000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let data = tempfile::Builder::new().prefix("hearth-bench-nodes-").tempdir()?;
    let mut nodes: Vec<Server> = Vec::new();
    for n in 0..2 {
        let dir = data.path().join(format!("node{n}"));
        std::fs::create_dir_all(&dir)?;
        // The second node serves the project the first created: one shared metadata.
        let project = nodes.first().map(|first| (first.token.clone(), first.secret.clone()));
        nodes.push(Server::start_node(&args.hearth, &dir, None, &env, project)?);
    }

    println!("preparing request bodies (before the clock starts) ...");
    let config = datagen::GenConfig::for_events(args.events);
    let import_bodies = bodies::import_bodies(&config, 2000);
    let (import_a, import_b): (Vec<_>, Vec<_>) = import_bodies.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let import_halves = [import_a.into_iter().map(|(_, b)| b).collect::<Vec<_>>(), import_b.into_iter().map(|(_, b)| b).collect()];
    let track_config = datagen::GenConfig { seed: config.seed + 1, ..datagen::GenConfig::for_events(args.track_events) };
    // Each node's own token in its half of the /track bodies.
    let track_halves: Vec<Vec<bodies::Body>> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| bodies::track_bodies(&track_config, 50, &node.token).into_iter().skip(n).step_by(2).collect())
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let per_node = (args.connections / 2).max(1);
    let import = runtime.block_on(async {
        let (a, b) = tokio::join!(
            load::closed_loop(nodes[0].addr, "/import?strict=1", Some(&nodes[0].secret), &import_halves[0], per_node),
            load::closed_loop(nodes[1].addr, "/import?strict=1", Some(&nodes[1].secret), &import_halves[1], per_node)
        );
        Ok::<_, anyhow::Error>(load::LoadResult::combine(a?, b?))
    })?;
    let import_visible = wait_until_stable(&client)?;
    let track = runtime.block_on(async {
        let (a, b) = tokio::join!(
            load::closed_loop(nodes[0].addr, "/track/?ip=1&verbose=1", None, &track_halves[0], per_node),
            load::closed_loop(nodes[1].addr, "/track/?ip=1&verbose=1", None, &track_halves[1], per_node)
        );
        Ok::<_, anyhow::Error>(load::LoadResult::combine(a?, b?))
    })?;
    let track_visible = wait_until_stable(&client)?;

    println!("\n== ingestion through two nodes into one ClickHouse (each acknowledgement follows the node's WAL fsync)");
    println!("{:<34} {:>14} {:>12} {:>10} {:>10} {:>26}", "phase", "events/s", "requests", "p50 ms", "p99 ms", "all in ClickHouse after");
    for (name, result, visible) in [("/import, batches of 2000", &import, import_visible), ("/track, batches of 50", &track, track_visible)] {
        println!(
            "{:<34} {:>14.0} {:>12} {:>10.2} {:>10.2} {:>24.1} s",
            name,
            result.events_per_second(),
            result.n_requests,
            result.percentile_ms(50.0),
            result.percentile_ms(99.0),
            visible.as_secs_f64()
        );
    }
    if import.n_failed + track.n_failed > 0 {
        println!("FAILED requests: import {}, track {}", import.n_failed, track.n_failed);
    }
    let rss: Vec<String> = nodes.iter().map(|n| n.peak_rss_mb().map(|mb| format!("{mb:.0} MB")).unwrap_or_default()).collect();
    let clickhouse_rss = clickhouse.pid().map(peak_rss_mb_of).transpose()?.unwrap_or(0.0);
    println!("\npeak RSS: nodes {}, ClickHouse {clickhouse_rss:.0} MB", rss.join(" and "));

    let sent = import.n_events + track.n_events;
    let stored: Vec<Count> = client.query(&format!("SELECT count() AS n FROM {DATABASE}.events FINAL"))?;
    let stored = stored.first().map_or(0, |c| c.n);
    client.execute(&format!("OPTIMIZE TABLE {DATABASE}.events FINAL"))?;
    let bytes: Vec<Count> = client.query(&format!("SELECT sum(bytes) AS n FROM system.parts WHERE database = '{DATABASE}' AND table = 'events' AND active"))?;
    let bytes = bytes.first().map_or(0, |c| c.n);
    println!("\n== in ClickHouse");
    println!("events acknowledged: {sent}; stored once each (FINAL): {stored} (the data set has ~0.5% duplicates)");
    println!("bytes on disk after OPTIMIZE FINAL: {bytes} ({:.1} bytes/event; properties as key and value arrays plus the standard property columns, LZ4)", bytes as f64 / stored.max(1) as f64);
    for node in nodes {
        node.stop()?;
    }
    Ok(())
}

/// Waits until ClickHouse's row count stops growing (the nodes flush every
/// second); answers how long that took.
fn wait_until_stable(client: &clickhouse_store::Client) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut last = u64::MAX;
    let mut last_change = Instant::now();
    while started.elapsed() < Duration::from_secs(600) {
        let rows: Vec<Count> = client.query(&format!("SELECT count() AS n FROM {DATABASE}.events"))?;
        let n = rows.first().map_or(0, |c| c.n);
        if n != last {
            last = n;
            last_change = Instant::now();
        } else if last_change.elapsed() >= Duration::from_secs(3) {
            return Ok(last_change.duration_since(started));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    anyhow::bail!("ClickHouse's row count did not settle within 600 s")
}
