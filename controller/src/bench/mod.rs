//! `tierflow bench`: an OpenFlow 1.3 load tool in the spirit of cbench
//! (which only speaks 1.0). Emulated switches (one tokio task and one TCP
//! connection each) complete the handshake as Open vSwitch would, answer
//! the controller's LLDP over emulated links, reveal their hosts, and then
//! send PACKET_INs for new flows between hosts at opposite ends of the
//! network. A setup is complete when its PACKET_OUT reaches the ingress
//! switch: by then the controller has sent every FLOW_MOD of the path and
//! had every barrier answered.
//!
//! This module owns the options, the topology plan, the run's phases and
//! the report; `switch` is one emulated switch, `wire` its bytes, `hist`
//! the latency histogram.
//!
//! Phases (driven from here, watched by every switch): connect and
//! handshake → link discovery (`--hops` > 1: wait until every emulated link
//! has carried two LLDP probes, so the controller has seen them all) →
//! reveal hosts (gratuitous ARPs, until each sending switch has seen the
//! controller flood its destinations' ARPs, proof they are learned) →
//! measure → drain (stop sending, let outstanding setups finish; any that
//! never do are errors) → stop.

mod hist;
mod switch;
mod wire;

use hist::Histogram;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info};
use wire::Host;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Many outstanding packet-ins per switch; completed setups per second.
    Throughput,
    /// One outstanding setup at a time across all switches; per-setup latency.
    Latency,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Throughput => "throughput",
            Mode::Latency => "latency",
        }
    }
}

/// A run's parameters. `Options::new` gives the command line's defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// `host:port` of the controller's OpenFlow listener (port 6653 if omitted).
    pub controller: String,
    pub mode: Mode,
    /// Emulated switches.
    pub switches: usize,
    /// Switches per chain: 1 = standalone switches with two hosts each;
    /// K > 1 = chains of K switches with a host at each end.
    pub hops: usize,
    /// Length of the measurement.
    pub duration: Duration,
    /// Outstanding packet-ins per sending switch (throughput mode).
    pub window: usize,
    /// Deadline for every switch's handshake.
    pub handshake_timeout: Duration,
    /// Deadline for LLDP discovery of the emulated links.
    pub discovery_timeout: Duration,
    /// Deadline for the controller to learn the emulated hosts.
    pub reveal_timeout: Duration,
    /// A setup not complete after this long is lost (an error).
    pub setup_timeout: Duration,
    /// Every packet-in comes from a new client address (10.64.0.0/10), so
    /// against a controller whose CRM has a service covering the bench
    /// hosts every packet-in is a new session request: measures session
    /// admission (decision, meters, tier flows, barriers) instead of path
    /// setup.
    pub sessions: bool,
    /// Routed paths: each chain's two hosts in two subnets (10.1.0.0/16
    /// and 10.2.0.0/16), every new flow sent to the router. The
    /// controller must route them: VLAN 1 with gateways 10.1.0.1/16 and
    /// 10.2.0.1/16 (crm/bench-routed.json).
    pub routed: bool,
}

impl Options {
    pub fn new(controller: impl Into<String>) -> Self {
        Options {
            controller: controller.into(),
            mode: Mode::Throughput,
            switches: 16,
            hops: 1,
            duration: Duration::from_secs(10),
            window: 128,
            handshake_timeout: Duration::from_secs(10),
            discovery_timeout: Duration::from_secs(20),
            reveal_timeout: Duration::from_secs(10),
            setup_timeout: Duration::from_secs(3),
            sessions: false,
            routed: false,
        }
    }
}

/// The final JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: Mode,
    /// Routed paths (hosts in two subnets) rather than bridged ones.
    pub routed: bool,
    pub switches: usize,
    pub hops: usize,
    /// Outstanding packet-ins per sending switch (1 across the run in latency mode).
    pub window: usize,
    /// Measured time (setups complete inside it are counted).
    pub duration_s: f64,
    /// Path setups completed during the measurement.
    pub setups: u64,
    /// `setups / duration_s`.
    pub responses_per_sec: f64,
    /// Slowest and fastest whole second of the measurement.
    pub per_second_min: f64,
    pub per_second_max: f64,
    pub latency_us_p50: f64,
    pub latency_us_p99: f64,
    pub latency_us_min: f64,
    pub latency_us_mean: f64,
    pub latency_us_max: f64,
    /// FLOW_MODs and BARRIER_REQUESTs the switches received from the start
    /// of the measurement to the end of the drain.
    pub flow_mods: u64,
    pub barriers: u64,
    /// Setups that never completed (within `setup_timeout`, or by the end
    /// of the drain).
    pub lost: u64,
    /// Lost setups, PACKET_OUTs matching no outstanding packet-in, and
    /// OFPT_ERRORs from the controller.
    pub errors: u64,
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid options: {0}")]
    Options(String),
    #[error("cannot resolve controller address {addr:?}: {reason}")]
    Resolve { addr: String, reason: String },
    #[error("cannot connect to the controller at {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("handshake with the controller failed: {0}")]
    Handshake(String),
    #[error("link discovery failed: {0}")]
    Discovery(String),
    #[error("the controller did not learn the emulated hosts: {0}")]
    Reveal(String),
    #[error("switch {dpid:016x}: {reason}")]
    Switch { dpid: u64, reason: String },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// The OpenFlow port assumed when `--controller` names none.
const DEFAULT_PORT: u16 = 6653;

/// Emulated datapath ids: a recognisable prefix and the switch number.
const DPID_BASE: u64 = 0x0000_be0c_0000_0000;

/// One emulated link end: leaving `port`, arriving at `peer`'s `peer_port`.
#[derive(Debug, Clone, Copy)]
struct Link {
    port: u32,
    peer: usize,
    peer_port: u32,
}

/// One emulated switch's part of the topology.
#[derive(Debug, Clone)]
struct SwitchPlan {
    index: usize,
    dpid: u64,
    ports: Vec<u32>,
    links: Vec<Link>,
    /// Hosts attached here, by port.
    hosts: Vec<(u32, Host)>,
    /// New flows this switch originates: (in_port, from, to).
    flows: Vec<(u32, Host, Host)>,
    /// Vary the source address per packet (`Options::sessions`).
    sessions: bool,
    /// Send new flows through the router (`Options::routed`).
    routed: bool,
}

fn plan(o: &Options) -> Result<Vec<SwitchPlan>, BenchError> {
    let bad = |m: String| Err(BenchError::Options(m));
    if o.switches == 0 || o.switches > 0xff_ffff {
        return bad(format!("--switches must be 1..={}", 0xff_ffff));
    }
    if o.hops == 0 {
        return bad("--hops must be at least 1".into());
    }
    if !o.switches.is_multiple_of(o.hops) {
        return bad(format!(
            "--switches ({}) must be a multiple of --hops ({}): switches form chains of --hops",
            o.switches, o.hops
        ));
    }
    if o.window == 0 {
        return bad("--window must be at least 1".into());
    }
    if o.duration.is_zero() {
        return bad("--duration must be positive".into());
    }
    let k = o.hops;
    let mut out = Vec::with_capacity(o.switches);
    for i in 0..o.switches {
        let dpid = DPID_BASE | (i as u64 + 1);
        let (chain, pos) = (i / k, i % k);
        let (a, b) = if o.routed {
            (
                Host::in_subnet(2 * chain as u32, 1),
                Host::in_subnet(2 * chain as u32 + 1, 2),
            )
        } else {
            (
                Host::numbered(2 * chain as u32),
                Host::numbered(2 * chain as u32 + 1),
            )
        };
        let mut sw = SwitchPlan {
            index: i,
            dpid,
            ports: vec![1, 2],
            links: Vec::new(),
            hosts: Vec::new(),
            flows: Vec::new(),
            sessions: o.sessions,
            routed: o.routed,
        };
        if k == 1 {
            sw.hosts = vec![(1, a), (2, b)];
            sw.flows = vec![(1, a, b), (2, b, a)];
        } else {
            // Port 1: the host (chain ends only); 2: next switch; 3: previous.
            sw.ports.push(3);
            if pos + 1 < k {
                sw.links.push(Link {
                    port: 2,
                    peer: i + 1,
                    peer_port: 3,
                });
            }
            if pos > 0 {
                sw.links.push(Link {
                    port: 3,
                    peer: i - 1,
                    peer_port: 2,
                });
            }
            if pos == 0 {
                sw.hosts = vec![(1, a)];
                sw.flows = vec![(1, a, b)];
            } else if pos + 1 == k {
                sw.hosts = vec![(1, b)];
                sw.flows = vec![(1, b, a)];
            }
        }
        out.push(sw);
    }
    Ok(out)
}

/// Where the run is; every switch watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connect,
    Reveal,
    Measure,
    Drain,
    Stop,
}

/// What one switch tells the coordinator while it runs.
#[derive(Debug, Default)]
struct Progress {
    handshaken: AtomicBool,
    revealed: AtomicBool,
    /// Setups completed so far (all phases).
    completed: AtomicU64,
    outstanding: AtomicU64,
    /// LLDP PACKET_INs delivered to the controller, by in_port.
    lldp: [AtomicU32; 4],
}

/// Totals one switch hands back at the end.
#[derive(Debug, Default)]
struct SwitchStats {
    hist: Histogram,
    lost: u64,
    unmatched: u64,
    of_errors: u64,
    flow_mods: u64,
    barriers: u64,
}

/// Runs the benchmark on its own runtime (multi-threaded when the process
/// may use more than one CPU, else single-threaded).
pub fn run_blocking(opts: &Options) -> Result<Report, BenchError> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = if cpus > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .map_err(BenchError::Runtime)?;
    rt.block_on(run(opts))
}

async fn resolve(addr: &str) -> Result<SocketAddr, BenchError> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = addr.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    let target = match addr.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => addr.to_string(),
        _ => format!("{addr}:{DEFAULT_PORT}"),
    };
    let err = |reason: String| BenchError::Resolve {
        addr: addr.to_string(),
        reason,
    };
    tokio::net::lookup_host(&target)
        .await
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".into()))
}

/// Runs the benchmark on the caller's runtime.
pub async fn run(opts: &Options) -> Result<Report, BenchError> {
    let plans = plan(opts)?;
    let addr = resolve(&opts.controller).await?;
    let n = plans.len();

    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|source| BenchError::Connect { addr, source })?;
        let _ = s.set_nodelay(true);
        streams.push(s);
    }
    info!("{n} emulated switches connected to {addr}");

    let progress: Arc<[Progress]> = (0..n).map(|_| Progress::default()).collect();
    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let (inject_txs, inject_rxs): (Vec<_>, Vec<_>) =
        (0..n).map(|_| mpsc::unbounded_channel()).unzip();
    let peers: Arc<[mpsc::UnboundedSender<(u32, bytes::Bytes)>]> = inject_txs.into();
    let token = (opts.mode == Mode::Latency).then(|| Arc::new(Semaphore::new(1)));
    let dpids: Vec<u64> = plans.iter().map(|p| p.dpid).collect();
    let senders: Vec<usize> = plans
        .iter()
        .filter(|p| !p.flows.is_empty())
        .map(|p| p.index)
        .collect();
    let link_ends: Vec<(usize, u32)> = plans
        .iter()
        .flat_map(|p| p.links.iter().map(|l| (l.peer, l.peer_port)))
        .collect();

    let mut tasks = JoinSet::new();
    for ((plan, stream), inject_rx) in plans.into_iter().zip(streams).zip(inject_rxs) {
        let ctx = switch::Ctx {
            plan,
            stream,
            phase: phase_rx.clone(),
            inject_rx,
            peers: peers.clone(),
            progress: progress.clone(),
            token: token.clone(),
            window: opts.window,
            setup_timeout: opts.setup_timeout,
        };
        tasks.spawn(switch::run(ctx));
    }
    drop(phase_rx);
    let mut co = Coordinator {
        tasks,
        progress: progress.clone(),
        dpids,
    };

    let t0 = Instant::now();
    let all_handshaken = co
        .wait_until(opts.handshake_timeout, |p| {
            p.iter().all(|s| s.handshaken.load(Ordering::Relaxed))
        })
        .await?;
    if !all_handshaken {
        let missing: Vec<String> = co.missing(|s| !s.handshaken.load(Ordering::Relaxed));
        return Err(co.fail(BenchError::Handshake(format!(
            "switches {} got no FEATURES_REQUEST and PORT_DESC request within {:?}",
            missing.join(", "),
            opts.handshake_timeout
        ))));
    }
    info!("handshakes done in {:.2?}", t0.elapsed());

    if !link_ends.is_empty() {
        let t1 = Instant::now();
        let ends = link_ends.clone();
        let discovered = co
            .wait_until(opts.discovery_timeout, move |p| {
                ends.iter().all(|&(sw, port)| {
                    p.get(sw)
                        .and_then(|s| s.lldp.get(port as usize))
                        .is_some_and(|c| c.load(Ordering::Relaxed) >= 2)
                })
            })
            .await?;
        if !discovered {
            let unseen: Vec<String> = link_ends
                .iter()
                .filter(|&&(sw, port)| {
                    co.progress
                        .get(sw)
                        .and_then(|s| s.lldp.get(port as usize))
                        .is_none_or(|c| c.load(Ordering::Relaxed) < 2)
                })
                .map(|&(sw, port)| format!("{:x}:{port}", co.dpid(sw)))
                .collect();
            return Err(co.fail(BenchError::Discovery(format!(
                "fewer than two LLDP probes reached {} within {:?} (is the controller probing every port?)",
                unseen.join(", "),
                opts.discovery_timeout
            ))));
        }
        info!(
            "{} links discovered in {:.2?}",
            link_ends.len() / 2,
            t1.elapsed()
        );
    }

    let _ = phase_tx.send(Phase::Reveal);
    let t2 = Instant::now();
    let revealed = co
        .wait_until(opts.reveal_timeout, |p| {
            p.iter().all(|s| s.revealed.load(Ordering::Relaxed))
        })
        .await?;
    if !revealed {
        let missing = co.missing(|s| !s.revealed.load(Ordering::Relaxed));
        return Err(co.fail(BenchError::Reveal(format!(
            "switches {} never saw their peers' ARPs flooded within {:?}",
            missing.join(", "),
            opts.reveal_timeout
        ))));
    }
    info!("hosts learned in {:.2?}", t2.elapsed());

    let _ = phase_tx.send(Phase::Measure);
    let start = Instant::now();
    info!(
        "measuring {} mode for {:?} ({} sending switches)",
        opts.mode.name(),
        opts.duration,
        senders.len()
    );
    let end = start + opts.duration;
    let mut per_second: Vec<f64> = Vec::new();
    let mut last = (start, 0u64);
    loop {
        let next = (last.0 + Duration::from_secs(1)).min(end);
        co.sleep_until(next).await?;
        let now = Instant::now();
        let done = co.completed();
        let dt = now.duration_since(last.0).as_secs_f64();
        if dt >= 0.5 {
            let rate = (done - last.1) as f64 / dt;
            per_second.push(rate);
            info!(
                "t={:>5.1}s {:>12.0} setups/s",
                now.duration_since(start).as_secs_f64(),
                rate
            );
        }
        last = (now, done);
        if now >= end {
            break;
        }
    }
    let _ = phase_tx.send(Phase::Drain);
    let stopped = Instant::now();
    let setups = co.completed();
    let elapsed = stopped.duration_since(start).as_secs_f64();

    let drained = co
        .wait_until(opts.setup_timeout, |p| {
            p.iter().all(|s| s.outstanding.load(Ordering::Relaxed) == 0)
        })
        .await?;
    if !drained {
        debug!("drain ended with setups outstanding");
    }
    let _ = phase_tx.send(Phase::Stop);

    let mut total = SwitchStats::default();
    while let Some(r) = co.tasks.join_next().await {
        let s = r.map_err(|e| BenchError::Switch {
            dpid: 0,
            reason: format!("task failed: {e}"),
        })??;
        total.hist.merge(&s.hist);
        total.lost += s.lost;
        total.unmatched += s.unmatched;
        total.of_errors += s.of_errors;
        total.flow_mods += s.flow_mods;
        total.barriers += s.barriers;
    }
    let us = |ns: f64| (ns / 100.0).round() / 10.0;
    let h = &total.hist;
    let fold = |f: fn(f64, f64) -> f64, init| per_second.iter().copied().fold(init, f);
    Ok(Report {
        mode: opts.mode,
        routed: opts.routed,
        switches: n,
        hops: opts.hops,
        window: if opts.mode == Mode::Latency {
            1
        } else {
            opts.window
        },
        duration_s: (elapsed * 1000.0).round() / 1000.0,
        setups,
        responses_per_sec: (setups as f64 / elapsed).round(),
        per_second_min: if per_second.is_empty() {
            0.0
        } else {
            fold(f64::min, f64::MAX).round()
        },
        per_second_max: fold(f64::max, 0.0).round(),
        latency_us_p50: us(h.quantile(0.50) as f64),
        latency_us_p99: us(h.quantile(0.99) as f64),
        latency_us_min: us(h.min() as f64),
        latency_us_mean: us(h.mean()),
        latency_us_max: us(h.max() as f64),
        flow_mods: total.flow_mods,
        barriers: total.barriers,
        lost: total.lost,
        errors: total.lost + total.unmatched + total.of_errors,
    })
}

/// The coordinator's view of the switch tasks.
struct Coordinator {
    tasks: JoinSet<Result<SwitchStats, BenchError>>,
    progress: Arc<[Progress]>,
    dpids: Vec<u64>,
}

/// How often the coordinator looks at the switches' progress.
const POLL: Duration = Duration::from_millis(10);

impl Coordinator {
    fn dpid(&self, i: usize) -> u64 {
        self.dpids.get(i).copied().unwrap_or_default()
    }

    fn completed(&self) -> u64 {
        self.progress
            .iter()
            .map(|s| s.completed.load(Ordering::Relaxed))
            .sum()
    }

    fn missing(&self, f: impl Fn(&Progress) -> bool) -> Vec<String> {
        self.progress
            .iter()
            .enumerate()
            .filter(|(_, s)| f(s))
            .map(|(i, _)| format!("{:x}", self.dpid(i)))
            .collect()
    }

    /// Stops every switch and hands back `e`.
    fn fail(&mut self, e: BenchError) -> BenchError {
        self.tasks.abort_all();
        e
    }

    /// A switch task ended before the run did: its error (or a generic one).
    fn ended_early(
        &mut self,
        r: Result<Result<SwitchStats, BenchError>, tokio::task::JoinError>,
    ) -> BenchError {
        let e = match r {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => BenchError::Switch {
                dpid: 0,
                reason: "stopped early".into(),
            },
            Err(e) => BenchError::Switch {
                dpid: 0,
                reason: format!("task failed: {e}"),
            },
        };
        self.fail(e)
    }

    /// Polls `cond` until it holds (true) or `timeout` passes (false); a
    /// switch failing meanwhile ends the run with its error.
    async fn wait_until(
        &mut self,
        timeout: Duration,
        cond: impl Fn(&[Progress]) -> bool,
    ) -> Result<bool, BenchError> {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(&self.progress) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::select! {
                Some(r) = self.tasks.join_next() => return Err(self.ended_early(r)),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn sleep_until(&mut self, t: Instant) -> Result<(), BenchError> {
        tokio::select! {
            Some(r) = self.tasks.join_next() => Err(self.ended_early(r)),
            _ = tokio::time::sleep_until(t.into()) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_are_wired_end_to_end_and_validated() {
        let mut o = Options::new("127.0.0.1");
        o.switches = 6;
        o.hops = 3;
        let p = plan(&o).expect("valid plan");
        let senders: Vec<usize> = p
            .iter()
            .filter(|s| !s.flows.is_empty())
            .map(|s| s.index)
            .collect();
        assert_eq!(senders, vec![0, 2, 3, 5]);
        // Every link end has its mirror image.
        for s in &p {
            for l in &s.links {
                let back = p[l.peer].links.iter().find(|b| b.port == l.peer_port);
                assert!(back.is_some_and(|b| b.peer == s.index && b.peer_port == l.port));
            }
        }
        assert_eq!(p[0].flows[0].2, p[2].hosts[0].1);
        o.switches = 7;
        assert!(matches!(plan(&o), Err(BenchError::Options(m)) if m.contains("multiple")));
        o.hops = 1;
        let p = plan(&o).expect("standalone");
        let macs: std::collections::HashSet<_> = p
            .iter()
            .flat_map(|s| s.hosts.iter().map(|h| h.1.mac))
            .collect();
        assert_eq!(macs.len(), 14);
    }
}
