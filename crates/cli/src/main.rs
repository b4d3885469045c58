//! `hearth`: the one binary. It parses the command line and the
//! configuration, builds the runtime objects, and hands over to a command.
//! Everything else lives in the library crates.
//!
//! Architecture invariant: only this crate reads flags, files named by the
//! user, and the environment, and only it exits the process.

mod args;
mod commands;
mod config;
mod progress;

use clap::Parser;

/// mimalloc keeps the resident set close to what is live under the ingest
/// pattern (many short-lived JSON values across threads), where glibc's
/// per-thread arenas grow and fragment. Built without transparent huge
/// pages (`no_thp`): with them, partly used 2 MiB pages counted fully in
/// the resident set (idle 111 MB instead of 81, peak ingest 323 MB instead
/// of 245, measured with `hearth-bench ingest --events 2000000`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long, in milliseconds, freed memory stays with the allocator before it
/// goes back to the system while serving, unless `MIMALLOC_PURGE_DELAY` is
/// set. mimalloc's own 1 s kept the resident set of a 10M-event
/// `hearth-bench ingest` at 292-306 MB; see the README for the trade-off.
const SERVE_PURGE_DELAY_MS: &str = "100";

/// mimalloc reads its options from the environment as the process loads, and
/// this crate has no unsafe code to set one later: `hearth serve` without
/// `MIMALLOC_PURGE_DELAY` runs itself again with it. Should that fail, it
/// serves with mimalloc's default.
fn exec_with_purge_delay() {
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else { return };
    let error = std::process::Command::new(exe).args(std::env::args_os().skip(1)).env("MIMALLOC_PURGE_DELAY", SERVE_PURGE_DELAY_MS).exec();
    eprintln!("warning: could not run with MIMALLOC_PURGE_DELAY={SERVE_PURGE_DELAY_MS} ({error}); serving with the allocator's default");
}

fn main() -> std::process::ExitCode {
    let args = args::Cli::parse();
    if matches!(args.command, args::Command::Serve(_)) && std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        exec_with_purge_delay();
    }
    match commands::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
