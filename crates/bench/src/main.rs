//! `hearth-bench`: benchmarks that print figures (never timed tests).
//!
//! `hearth-bench ingest` measures durable ingestion over HTTP on loopback from
//! this separate load process: events per second through /import (batches of
//! 2000) and /track (batches of 50), p99 acknowledgement latency at a fixed
//! rate, bytes per event on disk after compaction next to DuckDB's zstd
//! Parquet of the same events, and the server's peak RSS.

mod bodies;
mod clickhouse_bench;
mod duckdb;
mod load;
mod privacy_bench;
mod server;

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "hearth-bench")]
enum Cli {
    /// The ingestion benchmark.
    Ingest(IngestArgs),
    /// What the privacy policy and the PII detector cost: per event in
    /// process, and /import throughput with the default policy and with
    /// every rule off.
    Privacy(privacy_bench::PrivacyArgs),
    /// Ingestion through two nodes sharing one ClickHouse.
    IngestClickhouse(clickhouse_bench::ClickHouseArgs),
}

#[derive(Debug, clap::Args)]
struct IngestArgs {
    /// Events for the /import phase (the data set of `hearth gen --events`).
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Events for the /track throughput phase.
    #[arg(long, default_value_t = 2_000_000)]
    track_events: u64,
    /// Target rate of the latency phase, events per second (in /track batches of 50).
    #[arg(long, default_value_t = 20_000)]
    latency_rate: u64,
    /// Length of the latency phase.
    #[arg(long, default_value_t = 15)]
    latency_seconds: u64,
    /// Concurrent connections of the throughput phases.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// The server binary.
    #[arg(long, default_value = "target/release/hearth")]
    hearth: PathBuf,
    /// The Python with duckdb installed (scripts/bench.sh provides it).
    #[arg(long, default_value = ".test-deps/venv/bin/python")]
    python: PathBuf,
    /// Keep the data directory here instead of a temporary one.
    #[arg(long)]
    data: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Ingest(args) => ingest(args),
        Cli::Privacy(args) => privacy_bench::run(args),
        Cli::IngestClickhouse(args) => clickhouse_bench::run(args),
    }
}

fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let temp = std::env::temp_dir().join(format!("hearth-bench-{}", std::process::id()));
    let data = args.data.clone().unwrap_or(temp);
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    println!("hearth-bench ingest: {} events via /import, {} via /track, data in {}", args.events, args.track_events, data.display());

    println!("preparing request bodies (before the clock starts) ...");
    let config = datagen::GenConfig::for_events(args.events);
    let import_bodies = bodies::import_bodies(&config, 2000);
    let n_import: u64 = import_bodies.iter().map(|b| b.n_events).sum();
    let server = server::Server::start(&args.hearth, &data)?;
    let track_config = datagen::GenConfig { seed: config.seed + 1, ..datagen::GenConfig::for_events(args.track_events) };
    let track_bodies = bodies::track_bodies(&track_config, 50, &server.token);
    let n_track: u64 = track_bodies.iter().map(|b| b.n_events).sum();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;

    let before_import = server.store_work()?;
    let import = runtime.block_on(load::closed_loop(server.addr, "/import?strict=1", Some(&server.secret), &import_bodies, args.connections))?;
    let after_import = server.store_work()?;
    let rss_after_import_mb = server.peak_rss_mb()?;
    drop(import_bodies);
    let track = runtime.block_on(load::closed_loop(server.addr, "/track/?ip=1&verbose=1", None, &track_bodies, args.connections))?;
    let after_track = server.store_work()?;
    let latency_config = datagen::GenConfig { seed: config.seed + 2, ..datagen::GenConfig::for_events(args.latency_rate * args.latency_seconds) };
    let latency_bodies = bodies::track_bodies(&latency_config, 50, &server.token);
    let latency = runtime.block_on(load::open_loop(server.addr, "/track/?ip=1&verbose=1", &latency_bodies, args.latency_rate, Duration::from_secs(args.latency_seconds)))?;
    let peak_rss_mb = server.peak_rss_mb()?;
    let settled_in = server.wait_settled(Duration::from_secs(900))?;
    let stats = server.stop_and_measure(&data)?;

    println!("\n== ingestion (durable: every acknowledgement follows an fsync)");
    println!("{:<34} {:>14} {:>12} {:>10} {:>10}", "phase", "events/s", "requests", "p50 ms", "p99 ms");
    for (name, result) in [("/import, batches of 2000", &import), ("/track, batches of 50", &track)] {
        println!("{:<34} {:>14.0} {:>12} {:>10.2} {:>10.2}", name, result.events_per_second(), result.n_requests, result.percentile_ms(50.0), result.percentile_ms(99.0));
    }
    println!(
        "{:<34} {:>14.0} {:>12} {:>10.2} {:>10.2}",
        format!("/track at {} events/s", args.latency_rate),
        latency.events_per_second(),
        latency.n_requests,
        latency.percentile_ms(50.0),
        latency.percentile_ms(99.0)
    );
    println!("\nstore work per phase: seconds appends were held back for a pending flush; flushes; merges");
    for (name, result, seconds) in [("/import", &import, after_import - before_import), ("/track", &track, after_track - after_import)] {
        println!(
            "{:<34} held {:.1} s; {:.0} flushes, {:.1} s; {:.0} merges, {:.1} s (phase lasted {:.1} s)",
            name,
            seconds.ingest_waiting,
            seconds.flushes,
            seconds.flushing,
            seconds.compactions,
            seconds.compacting,
            result.elapsed.as_secs_f64()
        );
    }
    if import.n_failed + track.n_failed + latency.n_failed > 0 {
        println!("FAILED requests: import {}, track {}, latency {}", import.n_failed, track.n_failed, latency.n_failed);
    }
    println!("\nserver peak RSS: {rss_after_import_mb:.0} MB after the {n_import}-event import, {peak_rss_mb:.0} MB overall");

    let n_stored = n_import + n_track + latency.n_events;
    println!("\n== storage after compaction (settled {:.0} s after the last write)", settled_in.as_secs_f64());
    println!("events sent: {n_stored} (the data set has ~0.5% duplicates, stored once)");
    println!("parts: {}, bytes: {}", stats.parts, stats.part_bytes);
    let export = data.join("export.jsonl");
    server::export_all(&args.hearth, &data, &export).context("exporting for the DuckDB comparison")?;
    let duck = duckdb::parquet_bytes(&args.python, &export, &data.join("duckdb.parquet"))?;
    let hearth_per_event = stats.part_bytes as f64 / duck.rows as f64;
    let duck_per_event = duck.bytes as f64 / duck.rows as f64;
    println!("{:<44} {:>12} {:>14}", "", "bytes", "bytes/event");
    println!("{:<44} {:>12} {:>14.1}", "Hearth parts", stats.part_bytes, hearth_per_event);
    println!("{:<44} {:>12} {:>14.1}", "DuckDB COPY ... (FORMAT parquet, zstd)", duck.bytes, duck_per_event);
    println!("ratio Hearth / DuckDB: {:.2} (target at most 0.70); rows compared: {}", hearth_per_event / duck_per_event, duck.rows);
    println!();
    duckdb::print_column_bytes(&args.python, &data.join("parts"), &data.join("duckdb.parquet"), duck.rows)?;
    if args.data.is_none() {
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(())
}
