//! The `tierflow` binary: command-line entry point.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tierflow::config::Config;
use tierflow::decode;

#[derive(Debug, Parser)]
#[command(
    name = "tierflow",
    version,
    about = "QoS-aware OpenFlow 1.3 controller"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller.
    Run(RunArgs),
    /// Decode files of raw OpenFlow 1.3 messages; print one JSON object per message.
    Decode {
        /// Re-encode every message and exit 1 if any differs from its input bytes.
        #[arg(long)]
        roundtrip: bool,
        /// Files holding one or more messages back to back.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// TOML configuration file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// OpenFlow listener address [default: 0.0.0.0:6653].
    #[arg(long)]
    openflow: Option<SocketAddr>,
    /// REST API listener address [default: 127.0.0.1:8080].
    #[arg(long)]
    api: Option<SocketAddr>,
    /// Redis URL [default: redis://127.0.0.1:6379].
    #[arg(long)]
    redis: Option<String>,
    /// OVSDB endpoint (repeatable) [default: unix:/var/run/openvswitch/db.sock].
    #[arg(long)]
    ovsdb: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode { roundtrip, files } => decode::run(&files, roundtrip),
        Command::Run(args) => match run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tierflow: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging();
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(a) = args.openflow {
        config.openflow = a;
    }
    if let Some(a) = args.api {
        config.api = a;
    }
    if let Some(r) = args.redis {
        config.redis = r;
    }
    if !args.ovsdb.is_empty() {
        config.ovsdb = args.ovsdb;
    }
    if let Ok(t) = std::env::var("TIERFLOW_API_TOKEN") {
        config.api_token = Some(t);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let running = tierflow::app::start(config).await?;
        tierflow::app::signalled().await;
        tracing::info!("stopping");
        let ctl = running.ctl.clone();
        running.stop().await;
        tracing::info!(stats = %ctl.stats_json(), "stopped");
        Ok(())
    })
}
