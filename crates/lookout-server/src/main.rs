//! `lookoutd --config cluster.toml --node N`: runs one Lookout node.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use lookout_config::ClusterConfig;

#[derive(Parser)]
#[command(name = "lookoutd", version, about = "Runs one node of a Lookout cluster")]
struct Args {
    /// The cluster topology file.
    #[arg(long, default_value = "cluster.toml")]
    config: PathBuf,
    /// This node's id, as declared in the config.
    #[arg(long)]
    node: u64,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOOKOUT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if cfg!(any(feature = "unsafe-ack-before-fsync", feature = "unsafe-skip-read-barrier")) {
        tracing::error!("THIS lookoutd IS A NEGATIVE-CONTROL BUILD (unsafe-* features): it loses data or reads stale on purpose");
    }
    let config = match ClusterConfig::load(&args.config) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("lookoutd: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = rt.block_on(lookout_server::run(config, args.node, shutdown_signal()));
    if let Err(e) = result {
        eprintln!("lookoutd: {e:#}");
        std::process::exit(1);
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::SignalKind;
    use tokio::signal::unix::signal;
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("signal received; stopping");
}
