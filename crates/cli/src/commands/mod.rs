//! One module per subcommand; `run` dispatches.

mod export;
mod generate;
mod import;
mod project;
mod query;
mod serve;

use crate::args::{Cli, Command, DataArg};
use crate::config::Config;
use std::path::PathBuf;

pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config);
    match cli.command {
        Command::Serve(args) => serve::run(config, args),
        Command::Project(command) => project::run(&config, command),
        Command::Import(args) => import::run(&config, args),
        Command::Export(args) => export::run(&config, args),
        Command::Gen(args) => generate::run(&config, args),
        Command::Query(args) => query::run(&config, args),
    }
}

pub(crate) fn data_dir(config: &Config, arg: &DataArg) -> PathBuf {
    arg.data.clone().unwrap_or_else(|| config.data.clone())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Opens the metadata database and finds a project by name.
pub(crate) fn open_project(data: &std::path::Path, name: &str) -> anyhow::Result<(meta::Meta, meta::Project)> {
    let meta = meta::Meta::open(data)?;
    let project = meta.project_by_name(name)?;
    Ok((meta, project))
}
