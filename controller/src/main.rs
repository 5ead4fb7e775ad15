//! The `tierflow` binary: command-line entry point.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tierflow::bench;
use tierflow::config::{Config, Listen, RedisTlsFiles};
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
    Run(Box<RunArgs>),
    /// Decode files of raw OpenFlow 1.3 messages; print one JSON object per message.
    Decode {
        /// Re-encode every message and exit 1 if any differs from its input bytes.
        #[arg(long)]
        roundtrip: bool,
        /// Files holding one or more messages back to back.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// OpenFlow 1.3 load tool: emulated switches send packet-ins for new
    /// flows; prints a final JSON line with setups per second and latencies.
    Bench(BenchArgs),
    /// The CRM held in Redis.
    #[command(subcommand)]
    Crm(CrmCommand),
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// The controller's OpenFlow address (host:port; port 6653 if omitted).
    #[arg(long)]
    controller: String,
    /// throughput: a window of outstanding packet-ins per switch;
    /// latency: one outstanding setup at a time across all switches.
    #[arg(long, value_enum, default_value_t = bench::Mode::Throughput)]
    mode: bench::Mode,
    /// Emulated switches.
    #[arg(long, default_value_t = 16)]
    switches: usize,
    /// Switches per path: 1 = standalone switches with two hosts each;
    /// K > 1 = chains of K switches (--switches a multiple of K), hosts at the ends.
    #[arg(long, default_value_t = 1)]
    hops: usize,
    /// Measurement length in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Outstanding packet-ins per sending switch in throughput mode.
    #[arg(long, default_value_t = 128)]
    window: usize,
    /// Every packet-in from a new client address: with a CRM service
    /// covering the bench hosts (crm/bench.json), each is a session request.
    #[arg(long)]
    sessions: bool,
    /// Routed paths: each chain's hosts in two subnets, new flows sent to
    /// the router (load crm/bench-routed.json into the controller's Redis).
    #[arg(long)]
    routed: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// TOML configuration file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Plain-TCP OpenFlow listener address, or "off" [default: 0.0.0.0:6653].
    #[arg(long, value_name = "ADDR|off")]
    openflow: Option<Listen>,
    /// OpenFlow-over-TLS listener address (switches must show a
    /// certificate signed by --tls-ca) [default: none].
    #[arg(long, value_name = "ADDR")]
    openflow_tls: Option<SocketAddr>,
    /// The controller's TLS certificate (PEM; ovs-pki's ctl-cert.pem).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The controller's TLS private key (PEM; ovs-pki's ctl-privkey.pem).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// The CA certificate switches' certificates must chain to (PEM;
    /// ovs-pki's switchca/cacert.pem).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// REST API listener address [default: 127.0.0.1:8080].
    #[arg(long)]
    api: Option<SocketAddr>,
    /// Redis URL, redis:// or rediss:// (TLS) [default: redis://127.0.0.1:6379].
    #[arg(long)]
    redis: Option<String>,
    #[command(flatten)]
    redis_tls: RedisTlsArgs,
    /// OVSDB endpoint (repeatable) [default: unix:/var/run/openvswitch/db.sock].
    #[arg(long)]
    ovsdb: Vec<String>,
    /// Where decisions read customers: remote (Redis per decision) or
    /// replica (in-memory copy) [default: remote].
    #[arg(long, value_enum)]
    crm_mode: Option<CrmModeArg>,
    /// This instance's name among the instances sharing the Redis
    /// [default: the host's name and the OpenFlow port].
    #[arg(long)]
    instance: Option<String>,
}

/// Trust and client certificate for a rediss:// Redis.
#[derive(Debug, Args)]
struct RedisTlsArgs {
    /// CA certificate the rediss:// server's certificate must chain to
    /// (PEM) [default: the system's roots].
    #[arg(long, value_name = "FILE")]
    redis_ca: Option<PathBuf>,
    /// Client certificate for a Redis with tls-auth-clients (PEM).
    #[arg(long, value_name = "FILE", requires = "redis_key")]
    redis_cert: Option<PathBuf>,
    /// Client private key for a Redis with tls-auth-clients (PEM).
    #[arg(long, value_name = "FILE", requires = "redis_cert")]
    redis_key: Option<PathBuf>,
}

impl RedisTlsArgs {
    /// Flags override the config file's `[redis_tls]`, key by key.
    fn apply(self, files: &mut RedisTlsFiles) {
        if self.redis_ca.is_some() {
            files.ca = self.redis_ca;
        }
        if self.redis_cert.is_some() {
            files.cert = self.redis_cert;
        }
        if self.redis_key.is_some() {
            files.key = self.redis_key;
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CrmModeArg {
    Remote,
    Replica,
}

#[derive(Debug, Subcommand)]
enum CrmCommand {
    /// Load customers, promotions, tiers, services and policy from a JSON
    /// file (the API's shapes) into Redis. Validates the whole file first;
    /// an invalid file writes nothing.
    Load {
        file: PathBuf,
        /// Redis URL (redis:// or rediss://).
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis: String,
        #[command(flatten)]
        redis_tls: RedisTlsArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode { roundtrip, files } => decode::run(&files, roundtrip),
        Command::Bench(args) => bench_main(args),
        Command::Crm(CrmCommand::Load {
            file,
            redis,
            redis_tls,
        }) => crm_load(&file, &redis, redis_tls),
        Command::Run(args) => match run(*args) {
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

fn bench_main(args: BenchArgs) -> ExitCode {
    init_logging();
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration < 1e9) {
        eprintln!("tierflow bench: --duration must be a positive number of seconds");
        return ExitCode::FAILURE;
    }
    let mut opts = bench::Options::new(args.controller);
    opts.mode = args.mode;
    opts.switches = args.switches;
    opts.hops = args.hops;
    opts.duration = std::time::Duration::from_secs_f64(args.duration);
    opts.window = args.window;
    opts.sessions = args.sessions;
    opts.routed = args.routed;
    match bench::run_blocking(&opts) {
        Ok(report) => {
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tierflow bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn crm_load(file: &std::path::Path, redis: &str, tls: RedisTlsArgs) -> ExitCode {
    let mut files = RedisTlsFiles::default();
    tls.apply(&mut files);
    let tls = match tierflow::crm::RedisTls::load(&files) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tierflow crm load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tierflow crm load: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(tierflow::crm::load_file_with(redis, tls.as_ref(), file)) {
        Ok(summary) => {
            println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tierflow crm load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging();
    let mut config = match &args.config {
        // Validated once the flags are applied: a flag may complete the
        // file (`--openflow-tls` for its `[tls]`).
        Some(path) => Config::read(path)?,
        None => Config::default(),
    };
    if let Some(a) = args.openflow {
        config.openflow = a;
    }
    if let Some(a) = args.openflow_tls {
        config.openflow_tls = Some(a);
    }
    if args.tls_cert.is_some() {
        config.tls.cert = args.tls_cert;
    }
    if args.tls_key.is_some() {
        config.tls.key = args.tls_key;
    }
    if args.tls_ca.is_some() {
        config.tls.ca = args.tls_ca;
    }
    args.redis_tls.apply(&mut config.redis_tls);
    if let Some(a) = args.api {
        config.api = a;
    }
    if let Some(r) = args.redis {
        config.redis = r;
    }
    if !args.ovsdb.is_empty() {
        config.ovsdb = args.ovsdb;
    }
    match args.crm_mode {
        Some(CrmModeArg::Remote) => config.crm_mode = tierflow::config::CrmMode::Remote,
        Some(CrmModeArg::Replica) => config.crm_mode = tierflow::config::CrmMode::Replica,
        None => {}
    }
    if args.instance.is_some() {
        config.instance = args.instance;
    }
    if let Ok(t) = std::env::var("TIERFLOW_API_TOKEN") {
        config.api_token = Some(t);
    }
    if let Ok(t) = std::env::var("TIERFLOW_API_READ_TOKEN") {
        config.api_read_token = Some(t);
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
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
