//! `ledgerd`: parse flags, set up logging and signals, call
//! `ledger_server::serve`. Everything else lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use ledger_server::Config;
use ledger_server::config::LogFormat;

/// jemalloc: 1.6× the appends of glibc's malloc at the same memory
/// (docs/BENCHMARKS.md, "What changed on 2026-11-22").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The append-only signed audit ledger server.
///
/// With no arguments: data in ./ledger-data, one log named "default", keys
/// generated on first start, plaintext gRPC on 127.0.0.1:50051, metrics on
/// 127.0.0.1:9464/metrics. A non-loopback --listen needs [tls] in the config
/// (mutual TLS, roles per log) or --insecure-listen. Precedence: flags > LEDGER_* variables > file.
#[derive(Parser, Debug)]
#[command(name = "ledgerd", version)]
struct Args {
    /// TOML configuration file (see docs/ledgerd.example.toml)
    #[arg(long, env = "LEDGER_CONFIG")]
    config: Option<PathBuf>,
    /// where the logs live
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// gRPC listen address
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Prometheus listen address
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// log output format
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// allow plaintext gRPC on a non-loopback address (no authentication: every client has every role)
    #[arg(long)]
    insecure_listen: bool,
}

fn load(args: &Args) -> anyhow::Result<Config> {
    let mut c = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    c.apply_env(std::env::vars())?;
    if let Some(d) = &args.data_dir {
        c.data_dir = d.clone();
    }
    if let Some(l) = args.listen {
        c.listen = l;
    }
    if let Some(m) = args.metrics_listen {
        c.metrics_listen = m;
    }
    if let Some(f) = args.log_format {
        c.log_format = f;
    }
    c.insecure_listen |= args.insecure_listen;
    c.validate()?;
    Ok(c)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEDGER_LOG_LEVEL").unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.init(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = load(&args)?;
    init_logging(config.log_format);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let metrics = if config.metrics_enabled {
        let m = tokio::net::TcpListener::bind(config.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {} (metrics)", config.metrics_listen))?;
        config.metrics_listen = m.local_addr()?;
        Some(m)
    } else {
        None
    };
    config.listen = listener.local_addr()?;
    ledger_server::serve_with_metrics(config, listener, metrics, shutdown_signal()).await?;
    Ok(())
}
