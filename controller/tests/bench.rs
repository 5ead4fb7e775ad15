//! Functional test of `tierflow bench` against the real controller started
//! in-process: both modes on standalone switches and on a chain of two
//! (which needs LLDP discovery through the emulated link) complete setups
//! without errors, and every setup shows the FLOW_MODs and barriers of its
//! whole path. Nothing here asserts a speed: that is what the tool measures.

#[allow(dead_code)]
mod support;

use std::time::Duration;
use tierflow::bench::{self, BenchError, Mode, Options, Report};
use tierflow::config::Config;

async fn bench_against_controller(
    mode: Mode,
    switches: usize,
    hops: usize,
) -> anyhow::Result<Report> {
    let mut config = Config {
        openflow: "127.0.0.1:0".parse()?,
        api: "127.0.0.1:0".parse()?,
        ..Default::default()
    };
    // Faster discovery; the tool waits for probes, not for a fixed time.
    config.timers.lldp_interval = 0.2;
    lift_port_limits(&mut config);
    let running = tierflow::app::start(config).await?;
    let mut opts = Options::new(running.openflow_addr.to_string());
    opts.mode = mode;
    opts.switches = switches;
    opts.hops = hops;
    opts.duration = Duration::from_secs(2);
    let result = bench::run(&opts).await;
    let ctl = running.ctl.clone();
    running.stop().await;
    let report = result?;
    eprintln!("{}", report.to_json());
    eprintln!("controller: {}", ctl.stats_json());

    assert!(report.setups > 0, "no setup completed: {report:?}");
    assert!(
        report.latency_us_p50 > 0.0 && report.latency_us_p50 <= report.latency_us_p99,
        "{report:?}"
    );
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(
        (report.mode, report.switches, report.hops),
        (mode, switches, hops)
    );
    // Each setup installs one flow per direction on every switch of its
    // path and confirms each switch with a barrier before the PACKET_OUT.
    let per_path = hops as u64;
    assert!(
        report.flow_mods >= 2 * per_path * report.setups,
        "{report:?}"
    );
    assert!(report.barriers >= per_path * report.setups, "{report:?}");
    assert!(ctl.stats().setups_completed.get() >= report.setups);
    Ok(report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_mode_on_standalone_switches() -> anyhow::Result<()> {
    let r = bench_against_controller(Mode::Throughput, 2, 1).await?;
    assert_eq!(r.window, 128);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_mode_on_standalone_switches() -> anyhow::Result<()> {
    let r = bench_against_controller(Mode::Latency, 2, 1).await?;
    assert_eq!(r.window, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_mode_on_a_chain_of_two() -> anyhow::Result<()> {
    bench_against_controller(Mode::Throughput, 2, 2).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_mode_on_a_chain_of_two() -> anyhow::Result<()> {
    bench_against_controller(Mode::Latency, 2, 2).await?;
    Ok(())
}

#[tokio::test]
async fn no_controller_and_bad_options_are_clear_errors() -> anyhow::Result<()> {
    // A port nobody listens on: bind one, note it, close it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let err = bench::run(&Options::new(addr.to_string()))
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, BenchError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");

    let mut opts = Options::new(addr.to_string());
    opts.switches = 3;
    opts.hops = 2;
    let err = bench::run(&opts).await.expect_err("3 is no multiple of 2");
    assert!(err.to_string().contains("multiple of --hops"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_mode_on_a_chain_of_two() -> anyhow::Result<()> {
    // The controller routes between the bench's two subnets: VLAN 1 with
    // a gateway in each (crm/bench-routed.json), in a Redis of its own.
    let redis = support::redis::RedisServer::start();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../crm/bench-routed.json");
    tierflow::crm::load_file(&redis.url(), std::path::Path::new(file)).await?;
    let mut config = Config {
        openflow: "127.0.0.1:0".parse()?,
        api: "127.0.0.1:0".parse()?,
        redis: redis.url(),
        ..Default::default()
    };
    config.timers.lldp_interval = 0.2;
    lift_port_limits(&mut config);
    config.ovsdb = Vec::new();
    let running = tierflow::app::start(config).await?;
    let mut opts = Options::new(running.openflow_addr.to_string());
    opts.switches = 2;
    opts.hops = 2;
    opts.routed = true;
    opts.duration = Duration::from_secs(2);
    let result = bench::run(&opts).await;
    let ctl = running.ctl.clone();
    running.stop().await;
    let report = result?;
    eprintln!("{}", report.to_json());
    eprintln!("controller: {}", ctl.stats_json());
    assert!(report.routed && report.setups > 0, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    // Routed, both ways, on both switches of each path.
    assert!(ctl.stats().routed_paths.get() >= 2, "{}", ctl.stats_json());
    assert!(report.barriers >= 2 * report.setups, "{report:?}");
    Ok(())
}

/// The tool measures what the controller can do: its emulated hosts send
/// far more packet-ins, and ask for far more sessions, per port than the
/// per-port limits let a real host.
fn lift_port_limits(config: &mut Config) {
    config.limits.packet_ins_per_port = 0;
    config.limits.admissions_per_port = 0;
}
