//! The command line, exactly as typed; validation happens in `config`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "hearth", version, about = "Self-hosted, privacy-first product analytics that speaks Mixpanel's API")]
pub(crate) struct Cli {
    /// A TOML configuration file (default: ./hearth.toml when it exists).
    #[arg(long, global = true, env = "HEARTH_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server: ingestion, export and operations endpoints.
    Serve(ServeArgs),
    /// Manage projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Load Mixpanel raw-export or import JSONL (optionally .gz) into a project.
    Import(ImportArgs),
    /// Write a project's events as Mixpanel raw-export JSONL.
    Export(ExportArgs),
    /// Generate the deterministic synthetic SaaS data set.
    Gen(GenArgs),
    /// Run a report (insights, funnel, retention, flows, ...) from a JSON spec.
    Query(QueryArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DataArg {
    /// The data directory (default ./hearth-data).
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    pub(crate) listen: Option<String>,
    /// A proxy whose X-Forwarded-For is believed (CIDR); repeatable.
    #[arg(long = "trusted-proxy")]
    pub(crate) trusted_proxies: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectCommand {
    /// Create a project; prints its token and secret once.
    Create {
        name: String,
        #[command(flatten)]
        data: DataArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a project's settings.
    Set {
        name: String,
        #[command(flatten)]
        data: DataArg,
        /// How precise stored locations are: country (default), region or city.
        /// Region and city need the city database (scripts/install-geo.sh --city).
        #[arg(long, value_parser = ["country", "region", "city"])]
        geo_precision: Option<String>,
        /// The IANA time zone reports count days in (e.g. Europe/Berlin; default UTC).
        #[arg(long)]
        timezone: Option<String>,
    },
    /// List projects (names and public tokens).
    List {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// The project's name.
    #[arg(long)]
    pub(crate) project: String,
    /// JSONL files, plain or gzip.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) data: DataArg,
    #[arg(long)]
    pub(crate) project: String,
    /// First day, YYYY-MM-DD (UTC), inclusive.
    #[arg(long = "from")]
    pub(crate) from_date: String,
    /// Last day, YYYY-MM-DD (UTC), inclusive.
    #[arg(long = "to")]
    pub(crate) to_date: String,
    /// Only these event names; repeatable.
    #[arg(long = "event")]
    pub(crate) events: Vec<String>,
    /// Write here instead of standard output (.gz compresses).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Times in milliseconds instead of seconds.
    #[arg(long)]
    pub(crate) time_in_ms: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GenArgs {
    /// About this many events over 90 days (sets the number of users).
    #[arg(long, conflicts_with = "users")]
    pub(crate) events: Option<u64>,
    /// Exactly this many users.
    #[arg(long)]
    pub(crate) users: Option<u64>,
    #[arg(long)]
    pub(crate) days: Option<u32>,
    /// First day, YYYY-MM-DD.
    #[arg(long)]
    pub(crate) start: Option<String>,
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Write events as JSONL here (.gz compresses); `-` for standard output.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Write profile updates ($set) as /engage JSONL here.
    #[arg(long)]
    pub(crate) profiles: Option<PathBuf>,
    /// Load straight into this project of the data directory instead.
    #[arg(long)]
    pub(crate) project: Option<String>,
    #[command(flatten)]
    pub(crate) data: DataArg,
}

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// The project's name.
    #[arg(long)]
    pub(crate) project: String,
    /// The report spec (JSON, see docs/reports.md); `-` reads standard input.
    pub(crate) spec: PathBuf,
    /// Output: json (default, as the HTTP API), table or csv.
    #[arg(long, default_value = "json", value_parser = ["json", "table", "csv"])]
    pub(crate) format: String,
}
