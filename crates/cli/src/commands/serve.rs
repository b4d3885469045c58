//! `hearth serve`: open the store and metadata, build the enricher, listen.

use crate::args::ServeArgs;
use crate::commands::data_dir;
use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) fn run(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    let data = data_dir(&config, &args.data);
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    config.trusted_proxies.extend(args.trusted_proxies);
    let trusted_proxies = config
        .trusted_proxies
        .iter()
        .map(|text| text.parse::<ipnet::IpNet>().or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)))
        .collect::<Result<Vec<_>, _>>()
        .context("a trusted proxy is not an address or CIDR")?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let enricher = Arc::new(build_enricher(&config)?);
    let meta = Arc::new(crate::commands::open_meta(&config, &data)?);
    let protector = crate::commands::open_protector(&config, &data, meta.clone())?;
    let store = Arc::new(
        crate::commands::open_store(&data, config.ingest_store_config(crate::config::Unreachable::Tolerate, &protector)?, &meta)?,
    );
    let stop_jobs = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let project_list = meta.clone();
    let jobs = protector.spawn_background(store.clone(), Box::new(move || project_list.projects().map(|ps| ps.into_iter().map(|p| p.id).collect()).unwrap_or_default()), stop_jobs.clone())?;
    let cidrs = |list: &[String], what: &str| -> anyhow::Result<Vec<ipnet::IpNet>> {
        list.iter()
            .map(|text| text.parse::<ipnet::IpNet>().or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).with_context(|| format!("{what}: {text:?} is not an address or CIDR")))
            .collect()
    };
    let server_config = server::ServerConfig {
        trusted_proxies,
        limits: config.limits(),
        blocked: cidrs(&config.network.blocked, "network.blocked")?,
        api_allowed: cidrs(&config.network.api_allowed, "network.api_allowed")?,
        rate_limits: config.rate_limits.to_server(),
        tls: !config.tls.certificate.is_empty(),
        export_rows_per_day: config.exports.rows_per_day_per_credential,
        alert_delivery: config.alerts.delivery()?,
        events_backend: if config.storage.clickhouse()?.is_some() { server::EventsBackend::ClickHouse } else { server::EventsBackend::Embedded },
        ..server::ServerConfig::default()
    };
    let audit = crate::commands::open_audit(&config, &data)?;
    let access = crate::commands::open_access(&config, &protector)?;
    let reports: Option<Arc<dyn query::ReportBackend>> = match config.storage.clickhouse()? {
        Some(clickhouse) => Some(Arc::new(clickhouse_store::reports::ClickHouseReports::new(clickhouse_store::Client::new(&clickhouse)?, meta.clone()))),
        None => None,
    };
    let services = server::Services { store: store.clone(), meta, protector, audit, access, enricher, reports };
    let state = server::AppState::new(services, server_config, Some(metrics));
    // Decoding runs in blocking tasks; a few threads use the cores, and more
    // would only hold more requests (and allocator heaps) in memory at once.
    let runtime = tokio::runtime::Builder::new_multi_thread().max_blocking_threads(4).enable_all().build()?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
        match (config.tls.certificate.is_empty(), config.tls.key.is_empty()) {
            (true, true) => {
                tracing::info!(listen = %listener.local_addr()?, data = %data.display(), "hearth is serving");
                server::serve(listener, state, shutdown_signal()).await.context("serving")
            }
            (false, false) => {
                let acceptor = server::tls::acceptor(std::path::Path::new(&config.tls.certificate), std::path::Path::new(&config.tls.key))?;
                tracing::info!(listen = %listener.local_addr()?, data = %data.display(), "hearth is serving HTTPS");
                server::serve_tls(listener, acceptor, state, shutdown_signal()).await.context("serving")
            }
            _ => anyhow::bail!("[tls] needs both certificate and key (or neither, for plain HTTP)"),
        }
    });
    stop_jobs.store(true, std::sync::atomic::Ordering::Release);
    let _ = jobs.join();
    tracing::info!("shutting down: flushing the buffer");
    store.close()?;
    served
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => {
            let _ = interrupt.await;
            return;
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}

/// Where scripts/install-geo.sh may have put its files: the current
/// directory, or the checkout the binary was built in (target/<profile>/hearth).
fn search_roots() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from(".")];
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(3).take(1).map(PathBuf::from));
    }
    roots
}

fn build_enricher(config: &Config) -> anyhow::Result<enrich::Enricher> {
    let roots = search_roots();
    let geo_files = if config.geo.files.is_empty() {
        roots.iter().map(|root| enrich::GeoDb::find_default(root)).find(|files| !files.is_empty()).unwrap_or_default()
    } else {
        config.geo.files.clone()
    };
    let geo = if geo_files.is_empty() {
        tracing::warn!("no geo database found: events get no country (run scripts/install-geo.sh)");
        None
    } else {
        Some(enrich::GeoDb::open(&geo_files)?)
    };
    let ua_path = if config.geo.ua_regexes.is_empty() { roots.iter().find_map(|root| enrich::UaParser::find_regexes(root)) } else { Some(PathBuf::from(&config.geo.ua_regexes)) };
    let ua = match ua_path {
        Some(path) => Some(enrich::UaParser::load(&path)?),
        None => {
            tracing::warn!("no uap-core regexes found: server-side events get no browser or os");
            None
        }
    };
    Ok(enrich::Enricher { geo, ua })
}
