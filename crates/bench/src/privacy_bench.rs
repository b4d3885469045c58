//! `hearth-bench privacy`: the cost of privacy at ingest.
//!
//! In process, on one core: the PII detector alone over every string value
//! of the generated events, then the whole policy application per event,
//! with every rule off and with the default policy. Over HTTP: /import
//! throughput of two servers on the same events, one with the default
//! policy, one with every rule off; the ratio is the figure the privacy
//! issue asks for (the detector must cost less than 10%).

use crate::{bodies, load, server};
use events::Event;
use privacy::apply::{apply_to_event, Protection, SealError, Sealer, Tally};
use privacy::crypto::Key;
use privacy::policy::{Policy, PolicyDocument};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub(crate) struct PrivacyArgs {
    /// Events of the generated data set.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// Concurrent connections of the /import phases.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// The server binary.
    #[arg(long, default_value = "target/release/hearth")]
    hearth: PathBuf,
}

/// The policy with every rule off: what ingest costs without privacy.
const POLICY_OFF: &str = "schema = \"open\"\npii_scan = \"off\"\ngeo = \"country\"\n[properties]\n";

struct Discard;

impl Sealer for Discard {
    fn seal(&mut self, _subject: &str, _token: &str, _plaintext_json: &str) -> Result<(), SealError> {
        Ok(())
    }
}

fn string_values(event: &Event, out: &mut Vec<String>) {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    event.properties.values().for_each(|v| walk(v, out));
}

fn apply_all(policy: &Policy, events: &[Event]) -> (f64, Tally) {
    let hash_key = Key::from_bytes(&[1; 32]).expect("32 bytes");
    let pseudonym_key = Key::from_bytes(&[2; 32]).expect("32 bytes");
    let mut copies = events.to_vec();
    let mut tally = Tally::default();
    let mut sealer = Discard;
    let started = Instant::now();
    for event in &mut copies {
        let mut protection = Protection { hash_key: &hash_key, pseudonym_key: &pseudonym_key, sealer: &mut sealer };
        let _ = apply_to_event(policy, event, &mut protection, &mut tally);
    }
    (started.elapsed().as_secs_f64(), tally)
}

pub(crate) fn run(args: PrivacyArgs) -> anyhow::Result<()> {
    let config = datagen::GenConfig::for_events(args.events);
    let generator = datagen::Generator::new(config.clone());
    let mut events = Vec::new();
    generator.for_each_event(|event| events.push(event));
    println!("hearth-bench privacy: {} generated events", events.len());

    let mut values = Vec::new();
    for event in &events {
        string_values(event, &mut values);
    }
    let bytes: usize = values.iter().map(String::len).sum();
    let mut findings = Vec::new();
    let mut n_found = 0usize;
    let started = Instant::now();
    for value in &values {
        privacy::pii::scan_into(value, &mut findings);
        n_found += findings.len();
    }
    let scan_seconds = started.elapsed().as_secs_f64();
    println!("\n== in process, one core");
    println!("PII detector alone: {} string values, {:.1} MB, {:.0} ns/event, {:.0} MB/s, {} findings", values.len(), bytes as f64 / 1e6, scan_seconds * 1e9 / events.len() as f64, bytes as f64 / 1e6 / scan_seconds, n_found);
    let off = Policy::check(PolicyDocument::from_toml(POLICY_OFF)?)?;
    let (off_seconds, _) = apply_all(&off, &events);
    let (default_seconds, tally) = apply_all(&Policy::default(), &events);
    println!("{:<36} {:>14} {:>12}", "policy application", "events/s", "ns/event");
    for (name, seconds) in [("every rule off", off_seconds), ("default policy", default_seconds)] {
        println!("{:<36} {:>14.0} {:>12.0}", name, events.len() as f64 / seconds, seconds * 1e9 / events.len() as f64);
    }
    println!("findings counted by the default policy: {}", tally.counts.values().sum::<u64>());
    drop(values);

    println!("\n== over HTTP: /import, batches of 2000, {} connections (durable acknowledgements)", args.connections);
    let import_bodies = bodies::import_bodies(&config, 2000);
    let root = std::env::temp_dir().join(format!("hearth-bench-privacy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let off_file = root.join("policy-off.toml");
    std::fs::write(&off_file, POLICY_OFF)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let mut rates = Vec::new();
    for (name, policy) in [("every rule off", Some(off_file.as_path())), ("default policy", None)] {
        let data = root.join(name.replace(' ', "-")).join("data");
        std::fs::create_dir_all(&data)?;
        let server = server::Server::start_with_policy(&args.hearth, &data, policy)?;
        let result = runtime.block_on(load::closed_loop(server.addr, "/import?strict=1", Some(&server.secret), &import_bodies, args.connections))?;
        if result.n_failed > 0 {
            println!("FAILED requests: {}", result.n_failed);
        }
        println!("{:<36} {:>14.0} events/s   p99 {:>8.2} ms", name, result.events_per_second(), result.percentile_ms(99.0));
        rates.push(result.events_per_second());
        server.stop_and_measure(&data)?;
    }
    println!("default policy / every rule off: {:.3} (the privacy layer costs {:.1}% of /import throughput; target under 10%)", rates[1] / rates[0], (1.0 - rates[1] / rates[0]) * 100.0);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
