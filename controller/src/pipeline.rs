//! The packet-in pipeline, in one function and in order: parse the frame
//! once, LLDP, host learning, session classification, forwarding. The
//! topology is read once, under one lock, for everything the packet needs
//! (learning, where its destination is, the route a session would take,
//! the paths plain forwarding would install); deciding modules then build
//! plans, and the installer behind [`Ctx::exec`] sends them. Nothing here
//! awaits: a decision that needs Redis comes back as a [`Pending`] for the
//! control plane to hand to its lookup worker.
//!
//! Two things read the topology again, outside the packet's own path: a
//! SIP answer that sets up a media leg (the leg's ends are other hosts),
//! and a SIP datagram to a host not located yet, which is flooded.
//!
//! Also here: [`topology_changed`], the one reaction to a topology change
//! (paths and sessions that crossed a link that went away), shared by
//! LLDP in the pipeline and by the control plane's port and switch events.

use crate::forwarding::{Flooded, Forwarding};
use crate::frame::{Frame, is_group};
use crate::plan::{Execute, Plan, Release};
use crate::sessions::{Admission, Pending, SessionPacket, Sessions};
use crate::stats::Stats;
use crate::topology::{Change, Hop, PortRef, Topology};
use bytes::Bytes;
use parking_lot::Mutex;
use smallvec::SmallVec;
use std::time::Instant;
use tracing::{debug, info};

/// What the pipeline works with.
pub struct Ctx<'a> {
    pub exec: &'a dyn Execute,
    pub topology: &'a Mutex<Topology>,
    pub forwarding: &'a Forwarding,
    pub sessions: &'a Sessions,
    pub stats: &'a Stats,
    /// What this controller's probes are signed with.
    pub lldp_key: &'a crate::lldp::Key,
    /// How old a probe may be (a captured one replayed later is not).
    pub lldp_max_age_ms: u64,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").finish_non_exhaustive()
    }
}

/// Handles one PACKET_IN of switch `dpid` that arrived on `in_port`:
/// `data` is its frame, inside the received message `msg` (so the frame
/// can be kept without a copy). Returns an admission waiting for a Redis
/// lookup, if the packet started one.
pub fn packet_in(
    ctx: &Ctx<'_>,
    dpid: u64,
    in_port: u32,
    msg: &Bytes,
    data: &[u8],
    now: Instant,
) -> Option<Box<Pending>> {
    // 1. Parse, once.
    let f = Frame::parse(data)?;
    // 2. LLDP.
    if f.is_lldp() {
        lldp_in(ctx, (dpid, in_port), data);
        return None;
    }
    let here: PortRef = (dpid, in_port);
    // Session classification is pure (the CRM's services, no topology):
    // done first so the topology is read once for what it needs.
    let class = f.tcp_udp().and_then(|ip| ctx.sessions.classify(ip));

    let mut topo = ctx.topology.lock();
    // 3. Host learning, on edge ports only. A copy of a frame the
    // controller just flooded, coming back over a link LLDP has not found
    // yet, teaches nothing: learning from it would put a host on a link
    // port (and then refuse that port's LLDP).
    let on_link = topo.is_link_port(here);
    let unknown_dst = is_group(&f.dst) || topo.host(&f.dst).is_none();
    let copy = !on_link && unknown_dst && ctx.forwarding.is_flood_copy(data, now);
    let learns = !on_link && !copy && !is_group(&f.src);
    if learns && !topo.can_learn(&f.src, here) {
        // Its port (or the controller) holds as many hosts as it may: a
        // flood of new addresses from one port stops here.
        drop(topo);
        ctx.stats.hosts_refused.inc();
        return None;
    }
    let new_host = learns && topo.host(&f.src).is_none();
    let moved = learns && topo.learn_host(f.src, here, f.sender_ip, now).is_some();
    let dst_at = if is_group(&f.dst) {
        None
    } else {
        topo.host(&f.dst).map(|h| h.at)
    };
    let Some(dst_at) = dst_at else {
        // A broadcast, or a destination not located yet: flooded to edge
        // ports. One arriving over a link is a copy in transit.
        if !on_link && !copy {
            flood(ctx, &topo, here, data, now);
        } else if copy {
            ctx.stats.floods_suppressed.inc();
        }
        drop(topo);
        if moved {
            ctx.forwarding.host_gone(ctx.exec, f.src);
        }
        if new_host {
            // A host appeared: requested sessions may have waited for it.
            ctx.sessions.retry_requested(ctx.exec, ctx.topology);
        }
        return None;
    };
    // What the packet may need, read now: a session's route from its edge
    // port, plain forwarding's paths both ways.
    let route = match &class {
        Some(crate::sessions::detect::Class::Request { .. })
        | Some(crate::sessions::detect::Class::Sip {
            to_server: true, ..
        }) if !on_link => topo.route(here, dst_at),
        _ => None,
    };
    let src_at = if on_link {
        topo.host(&f.src).map(|h| h.at)
    } else {
        Some(here)
    };
    let fwd = topo.path(dpid, dst_at.0);
    let rev = src_at.and_then(|s| topo.path(dst_at.0, s.0).map(|p| (s, p)));
    drop(topo);
    if moved {
        ctx.forwarding.host_gone(ctx.exec, f.src);
    }
    if new_host {
        ctx.sessions.retry_requested(ctx.exec, ctx.topology);
    }
    let owned = slice_of(msg, data);

    // 4. Sessions.
    if let Some(class) = class {
        let pkt = SessionPacket {
            dpid,
            in_port,
            on_link,
            frame: &f,
            data: owned.clone(),
            dst_at: Some(dst_at),
            route,
        };
        match ctx.sessions.packet(ctx.exec, ctx.topology, &pkt, class) {
            Admission::NotSession => {}
            Admission::Done => return None,
            Admission::Lookup(p) => return Some(p),
            Admission::Flood => {
                let topo = ctx.topology.lock();
                flood(ctx, &topo, here, data, now);
                return None;
            }
        }
    }

    // 5. Plain forwarding.
    if on_link {
        // A packet in transit on a path we installed: OVS revalidates its
        // datapath flow cache asynchronously, so a packet released just
        // after the barriers can still miss at a downstream switch. Send
        // it along the existing path; re-routing from here would replace
        // the pair's whole path with a truncated one.
        if let Some(out_port) = ctx.forwarding.hop_on_path((f.src, f.dst), dpid) {
            let mut plan = Plan::new();
            plan.packet_out(Release {
                dpid,
                in_port,
                out_port,
                data: owned,
            });
            ctx.exec.execute(plan);
            ctx.stats.transit_forwarded.inc();
            return None;
        }
    }
    let Some(fwd) = fwd else {
        debug!("no path {dpid:x} -> {:x} for {}", dst_at.0, f.dst);
        return None;
    };
    let fwd_hops: SmallVec<[Hop; 8]> = fwd
        .iter()
        .map(|&(dpid, out_port)| Hop { dpid, out_port })
        .chain(std::iter::once(Hop {
            dpid: dst_at.0,
            out_port: dst_at.1,
        }))
        .collect();
    let rev_hops: Option<SmallVec<[Hop; 8]>> = rev.map(|(s, p)| {
        p.iter()
            .map(|&(dpid, out_port)| Hop { dpid, out_port })
            .chain(std::iter::once(Hop {
                dpid: s.0,
                out_port: s.1,
            }))
            .collect()
    });
    let out_port = fwd_hops.first().map_or(0, |h| h.out_port);
    let done = ctx.forwarding.setup(
        ctx.exec,
        (f.src, f.dst),
        &fwd_hops,
        rev_hops.as_deref(),
        Release {
            dpid,
            in_port,
            out_port,
            data: owned,
        },
        now,
    );
    if done == crate::forwarding::Setup::Refused {
        ctx.stats.paths_refused.inc();
    }
    None
}

fn flood(ctx: &Ctx<'_>, topo: &Topology, from: PortRef, data: &[u8], now: Instant) {
    match ctx.forwarding.flood(ctx.exec, topo, from, data, now) {
        Flooded::Sent => ctx.stats.floods.inc(),
        Flooded::Suppressed => ctx.stats.floods_suppressed.inc(),
    }
}

/// An LLDP probe arrived at `to`. Only this controller's probes, fresh
/// and correctly signed, between two ports where no host lives, make a
/// link: nothing a host sends changes the topology.
fn lldp_in(ctx: &Ctx<'_>, to: PortRef, frame: &[u8]) {
    let Some(p) = crate::lldp::parse_probe(frame) else {
        return;
    };
    let from = (p.dpid, p.port);
    let mut topo = ctx.topology.lock();
    let trusted = p.verify(ctx.lldp_key, crate::lldp::now_ms(), ctx.lldp_max_age_ms)
        && from != to
        && ctx.exec.connected(from.0)
        && !topo.has_hosts_at(to)
        && !topo.has_hosts_at(from);
    if !trusted {
        drop(topo);
        ctx.stats.lldp_ignored.inc();
        return;
    }
    let change = topo.link_seen(from, to, Instant::now());
    drop(topo);
    if !change.is_empty() {
        topology_changed(ctx, &change);
    }
}

/// Tears down what a topology change invalidated: the paths across links
/// that went away or to hosts that did, and the sessions whose path broke.
pub fn topology_changed(ctx: &Ctx<'_>, change: &Change) {
    if change.is_empty() {
        return;
    }
    for (a, b) in &change.links_added {
        info!("link up {:x}:{} -> {:x}:{}", a.0, a.1, b.0, b.1);
    }
    for (a, b) in &change.links_removed {
        info!("link down {:x}:{} -> {:x}:{}", a.0, a.1, b.0, b.1);
    }
    ctx.stats.links_added.add(change.links_added.len() as u64);
    ctx.stats
        .links_removed
        .add(change.links_removed.len() as u64);
    ctx.forwarding.topology_changed(ctx.exec, change);
    ctx.sessions
        .topology_changed(ctx.exec, ctx.topology, change);
}

/// The packet as an owned `Bytes`: zero-copy when it lies inside the
/// received message (a decoded PACKET_IN borrows from it), else a copy.
pub fn slice_of(msg: &Bytes, data: &[u8]) -> Bytes {
    let r = msg.as_ptr_range();
    if r.contains(&data.as_ptr()) && data.as_ptr_range().end <= r.end {
        msg.slice_ref(data)
    } else {
        Bytes::copy_from_slice(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CrmMode;
    use crate::crm::{Replica, Snapshot, Store, StoreOptions};
    use crate::plan::Recorder;
    use crate::sessions::Crm;
    use etherparse::PacketBuilder;
    use openflow::MacAddr;
    use std::sync::Arc;

    const H1: [u8; 6] = [0, 0, 0, 0, 0, 1];
    const H2: [u8; 6] = [0, 0, 0, 0, 0, 0x65];

    /// Two switches: h1 on s1 port 1, s1 port 10 to s2 port 11, h2 on s2
    /// port 2.
    struct Net {
        rec: Recorder,
        topo: Mutex<Topology>,
        fwd: Forwarding,
        sessions: Sessions,
        stats: Arc<Stats>,
        key: crate::lldp::Key,
    }

    impl Net {
        async fn new(crm: &str) -> Net {
            Net::with_meters(crm, 100).await
        }

        async fn with_meters(crm: &str, meters: u32) -> Net {
            Net::build(crm, meters, crate::sessions::SessionLimits::default()).await
        }

        async fn build(crm: &str, meters: u32, limits: crate::sessions::SessionLimits) -> Net {
            let file: tierflow_api::model::CrmFile = serde_json::from_str(crm).expect("crm");
            let stats = Arc::new(Stats::default());
            let store = Store::connect_with(
                "redis://127.0.0.1:1",
                &StoreOptions {
                    lazy: true,
                    ..StoreOptions::default()
                },
            )
            .await
            .expect("lazy store");
            let crm = Crm {
                mode: CrmMode::Replica,
                replica: Replica::fixed(Snapshot::from_file(&file)),
                store,
            };
            let mut t = Topology::default();
            let now = Instant::now();
            t.link_seen((1, 10), (2, 11), now);
            t.link_seen((2, 11), (1, 10), now);
            t.set_ports(1, [1, 10]);
            t.set_ports(2, [2, 11]);
            let net = Net {
                rec: Recorder::default(),
                topo: Mutex::new(t),
                fwd: Forwarding::new(60),
                sessions: Sessions::new(crm, "US".into(), 30, stats.clone()).with_limits(limits),
                stats,
                key: crate::lldp::Key::from_bytes([9; 32]),
            };
            // Both switches were learnt.
            for dpid in [1, 2] {
                net.sessions.switch_ready(&net.rec, dpid, meters);
            }
            net
        }

        fn ctx(&self) -> Ctx<'_> {
            Ctx {
                exec: &self.rec,
                topology: &self.topo,
                forwarding: &self.fwd,
                sessions: &self.sessions,
                stats: &self.stats,
                lldp_key: &self.key,
                lldp_max_age_ms: 3500,
            }
        }

        fn packet_in(&self, dpid: u64, port: u32, frame: &[u8]) -> Vec<String> {
            let ctx = self.ctx();
            let msg = Bytes::copy_from_slice(frame);
            assert!(packet_in(&ctx, dpid, port, &msg, &msg, Instant::now()).is_none());
            self.rec.take()
        }
    }

    fn tcp(src: [u8; 6], dst: [u8; 6], ips: ([u8; 4], [u8; 4]), dport: u16) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(src, dst)
            .ipv4(ips.0, ips.1, 64)
            .tcp(40000, dport, 1, 1000);
        let mut v = Vec::new();
        b.write(&mut v, b"").expect("frame");
        v
    }

    /// `dpid TYPE` (and the command or band of flow and meter mods) of
    /// each line of a plan's dump: its shape.
    fn shape(dump: &[String]) -> Vec<String> {
        dump.iter()
            .map(|l| {
                let (dpid, rest) = l.split_at(16);
                let dpid = dpid.trim_start_matches('0');
                let field = |k: &str| {
                    rest.split(&format!("\"{k}\":"))
                        .nth(1)
                        .and_then(|s| s.split([',', '}']).next())
                        .unwrap_or("")
                        .trim_matches('"')
                        .to_string()
                };
                if rest.contains("\"FLOW_MOD\"") {
                    format!(
                        "{dpid} flow {} prio {}",
                        field("command"),
                        field("priority")
                    )
                } else if rest.contains("\"METER_MOD\"") {
                    format!("{dpid} meter {} rate {}", field("command"), field("rate"))
                } else if rest.contains("\"PACKET_OUT\"") {
                    format!("{dpid} packet_out")
                } else {
                    format!("{dpid} {}", rest.trim().split(' ').next().unwrap_or(""))
                }
            })
            .collect()
    }

    #[tokio::test]
    async fn unknown_destinations_flood_to_edge_ports_then_a_reply_sets_up_the_path() {
        let net = Net::new("{}").await;
        let f = tcp(H1, H2, ([10, 0, 0, 1], [10, 0, 0, 101]), 80);
        // h2 unknown: flooded to s2's edge port only (s1 has no other).
        assert_eq!(shape(&net.packet_in(1, 1, &f)), vec!["2 packet_out"]);
        // h2 answers: h1 is known, both directions are set up, egress first.
        let back = tcp(H2, H1, ([10, 0, 0, 101], [10, 0, 0, 1]), 40000);
        assert_eq!(
            shape(&net.packet_in(2, 2, &back)),
            vec![
                "1 flow ADD prio 10",
                "1 flow ADD prio 10",
                "1 BARRIER",
                "2 flow ADD prio 10",
                "2 flow ADD prio 10",
                "2 BARRIER",
                "2 release",
            ]
        );
        // A copy of h1's frame arriving over the link (in transit) follows
        // the installed path.
        assert_eq!(shape(&net.packet_in(2, 11, &f)), vec!["2 packet_out"]);
        assert_eq!(net.stats.transit_forwarded.get(), 1);
    }

    const CRM: &str = r#"{
        "tiers": [
            {"name": "gold", "min_benefit": 1000.0, "rate_kbps": 50000, "burst_kbits": 5000,
             "dscp": 46, "queue_id": 1, "queue_min_kbps": 0, "hold_rate_kbps": 64},
            {"name": "best-effort", "min_benefit": 0.0, "rate_kbps": 2000, "burst_kbits": 200,
             "dscp": 0, "queue_id": 0, "queue_min_kbps": 0, "hold_rate_kbps": 32}
        ],
        "customers": [
            {"id": "c-1", "name": "Acme", "phones": [], "ips": ["10.0.0.1"],
             "lifetime_value": 0.0, "annual_revenue": 100000.0, "margin_pct": 10.0,
             "open_opportunity_value": 0.0, "win_probability": 0.0, "churn_risk": 0.0,
             "segment": "enterprise"}
        ],
        "services": [{"name": "iperf", "ip": "10.0.0.101", "proto": "tcp", "port": 5201, "kind": "web"}]
    }"#;

    #[tokio::test]
    async fn a_session_request_is_decided_and_its_tier_goes_on_every_switch_before_the_packet() {
        let net = Net::new(CRM).await;
        // h2 is located first (any frame from it).
        let hello = tcp(H2, H1, ([10, 0, 0, 101], [10, 0, 0, 1]), 40000);
        net.packet_in(2, 2, &hello);
        let req = tcp(H1, H2, ([10, 0, 0, 1], [10, 0, 0, 101]), 5201);
        let dump = net.packet_in(1, 1, &req);
        let per_switch = |d: &str| {
            vec![
                format!("{d} meter DELETE rate "),
                format!("{d} meter ADD rate 50000"),
                format!("{d} meter DELETE rate "),
                format!("{d} meter ADD rate 50000"),
                format!("{d} flow ADD prio 30000"),
                format!("{d} flow ADD prio 30000"),
                format!("{d} BARRIER"),
            ]
        };
        let mut want = per_switch("2");
        want.extend(per_switch("1"));
        want.push("1 release".into());
        assert_eq!(shape(&dump), want, "{dump:#?}");
        // The ingress switch marks DSCP on the forward flow; the release
        // leaves by the path's first port.
        assert!(
            dump.iter()
                .any(|l| l.starts_with("0000000000000001") && l.contains("ip_dscp"))
        );
        assert!(dump.last().is_some_and(|l| l.contains("out_port=10")));
        let live = net.sessions.list(None, None, None);
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].tier, "gold");
        assert_eq!(live[0].explanation.customer_id.as_deref(), Some("c-1"));
        assert_eq!(live[0].path, vec!["0000000000000001", "0000000000000002"]);
        // The next packet of the session (its flows idled out meanwhile)
        // puts them back, without a new decision.
        let again = shape(&net.packet_in(1, 1, &req));
        assert_eq!(again.last().map(String::as_str), Some("1 release"));
        assert_eq!(net.stats.decisions.get(), 1);
        assert_eq!(net.stats.sessions_reinstalled.get(), 1);
        // Not towards the service: plain forwarding.
        let web = tcp(H1, H2, ([10, 0, 0, 1], [10, 0, 0, 101]), 80);
        assert!(
            shape(&net.packet_in(1, 1, &web))
                .iter()
                .all(|l| !l.contains("prio 30000"))
        );
        let _ = MacAddr(H1);
    }

    fn sip(src: [u8; 6], dst: [u8; 6], ips: ([u8; 4], [u8; 4]), text: &str) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(src, dst)
            .ipv4(ips.0, ips.1, 64)
            .udp(5060, 5060);
        let mut v = Vec::new();
        b.write(&mut v, text.as_bytes()).expect("frame");
        v
    }

    fn sip_request(method: &str, call_id: &str) -> String {
        format!(
            "{method} sip:support@10.0.0.101 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{call_id}\r\n\
             From: <sip:+14155550101@10.0.0.1>;tag=t1\r\n\
             To: <sip:support@10.0.0.101>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    const CALLS: &str = r#"{
        "tiers": [
            {"name": "gold", "min_benefit": 1000.0, "rate_kbps": 50000, "burst_kbits": 5000,
             "dscp": 46, "queue_id": 1, "queue_min_kbps": 0, "hold_rate_kbps": 64},
            {"name": "best-effort", "min_benefit": 0.0, "rate_kbps": 2000, "burst_kbits": 200,
             "dscp": 0, "queue_id": 0, "queue_min_kbps": 0, "hold_rate_kbps": 32}
        ],
        "services": [{"name": "sip", "ip": "10.0.0.101", "proto": "udp", "port": 5060, "kind": "sip"}]
    }"#;

    #[tokio::test]
    async fn a_bye_ends_its_own_call_and_a_parked_call_comes_back_on_its_media() {
        let net = Net::new(CALLS).await;
        let ips = ([10, 0, 0, 1], [10, 0, 0, 101]);
        net.packet_in(2, 2, &tcp(H2, H1, (ips.1, ips.0), 40000));
        net.packet_in(1, 1, &sip(H1, H2, ips, &sip_request("INVITE", "call-a")));
        let live = || net.sessions.list(None, None, None);
        assert_eq!(live().len(), 1);
        let id = live()[0].id.clone();
        // A second call between the same two addresses rides the same
        // session; a BYE for a call it does not carry ends nothing.
        net.packet_in(1, 1, &sip(H1, H2, ips, &sip_request("INVITE", "call-b")));
        net.packet_in(1, 1, &sip(H1, H2, ips, &sip_request("BYE", "spoofed")));
        assert_eq!(net.stats.sip_bye_ignored.get(), 1);
        net.packet_in(1, 1, &sip(H1, H2, ips, &sip_request("BYE", "call-a")));
        assert!(net.sessions.get(&id).is_some(), "call-b still up");
        // The link breaks: the call is parked. It comes back.
        let change = net.topo.lock().port_down((1, 10));
        topology_changed(&net.ctx(), &change);
        assert!(net.sessions.get(&id).is_none());
        assert!(net.sessions.find(&id).is_some_and(|s| s.path.is_empty()));
        {
            let mut t = net.topo.lock();
            t.port_up((1, 10));
            t.link_seen((1, 10), (2, 11), Instant::now());
            t.link_seen((2, 11), (1, 10), Instant::now());
        }
        net.rec.take();
        // Its RTP brings it back: no new INVITE needed.
        let rtp = {
            let b = PacketBuilder::ethernet2(H1, H2)
                .ipv4(ips.0, ips.1, 64)
                .udp(4000, 6000);
            let mut v = Vec::new();
            b.write(&mut v, &[0x80; 172]).expect("frame");
            v
        };
        let dump = shape(&net.packet_in(1, 1, &rtp));
        // No customer has the caller's number: the default tier.
        assert!(
            dump.contains(&"1 meter ADD rate 2000".to_string()),
            "{dump:#?}"
        );
        assert_eq!(dump.last().map(String::as_str), Some("1 release"));
        assert!(net.sessions.get(&id).is_some_and(|s| s.path.len() == 2));
        // It still knows call-b: that BYE ends it.
        net.packet_in(1, 1, &sip(H1, H2, ips, &sip_request("BYE", "call-b")));
        assert!(net.sessions.get(&id).is_none());
        assert!(net.sessions.find_ended(&id).is_some());
    }

    #[tokio::test]
    async fn only_our_fresh_signed_probes_between_host_free_ports_make_links() {
        let net = Net::new("{}").await;
        let mut t = Topology::default();
        t.set_ports(1, [1, 10]);
        t.set_ports(3, [1, 5]);
        *net.topo.lock() = t;
        let probe = |key: &crate::lldp::Key, from: (u64, u32), at: u64| {
            crate::lldp::probe(key, from.0, from.1, MacAddr([2, 0, 0, 0, 0, 9]), at)
        };
        let now = crate::lldp::now_ms();
        let links = |net: &Net| net.topo.lock().links().count();
        // Another key (a host forging, another controller): nothing.
        let forged = probe(&crate::lldp::Key::from_bytes([1; 32]), (3, 5), now);
        net.packet_in(1, 10, &forged);
        // Too old (a captured probe replayed later): nothing.
        let stale = probe(&net.key, (3, 5), now - 10_000);
        net.packet_in(1, 10, &stale);
        // Back into the port it came out of: nothing.
        let looped = probe(&net.key, (1, 10), now);
        net.packet_in(1, 10, &looped);
        assert_eq!(links(&net), 0);
        assert_eq!(net.stats.lldp_ignored.get(), 3);
        // A host lives at 3:1: a probe claiming to come out of its port
        // (relayed by that host) makes no link either.
        net.packet_in(3, 1, &tcp(H1, H2, ([10, 0, 0, 1], [10, 0, 0, 2]), 80));
        net.packet_in(1, 10, &probe(&net.key, (3, 1), now));
        assert_eq!(links(&net), 0);
        // Ours, fresh, between host-free ports: a link.
        net.packet_in(1, 10, &probe(&net.key, (3, 5), now));
        assert_eq!(links(&net), 1);
        assert_eq!(net.stats.lldp_ignored.get(), 4);
    }

    #[tokio::test]
    async fn a_switch_that_leaves_moves_the_sessions_that_crossed_it() {
        let net = Net::new(CRM).await;
        // A square: 1 -(10)- 2 -(12)- 3, 1 -(11)- 4 -(13)- 3; h1 on 1:1,
        // h2 on 3:2.
        let mut t = Topology::default();
        let now = Instant::now();
        for (a, b) in [
            ((1, 10), (2, 10)),
            ((2, 12), (3, 12)),
            ((1, 11), (4, 11)),
            ((4, 13), (3, 13)),
        ] {
            t.link_seen(a, b, now);
            t.link_seen(b, a, now);
        }
        t.set_ports(1, [1, 10, 11]);
        t.set_ports(2, [10, 12]);
        t.set_ports(3, [2, 12, 13]);
        t.set_ports(4, [11, 13]);
        *net.topo.lock() = t;
        for dpid in [3, 4] {
            net.sessions.switch_ready(&net.rec, dpid, 100);
        }
        net.packet_in(3, 2, &tcp(H2, H1, ([10, 0, 0, 101], [10, 0, 0, 1]), 40000));
        let req = tcp(H1, H2, ([10, 0, 0, 1], [10, 0, 0, 101]), 5201);
        net.packet_in(1, 1, &req);
        let s = net.sessions.list(None, None, None).pop().expect("session");
        let middle = s.path[1].clone();
        let gone = u64::from_str_radix(&middle, 16).expect("dpid");
        // The middle switch leaves (crash, bridge deleted): the session
        // leaves its path at once...
        let change = net.topo.lock().switch_gone(gone);
        net.rec.take();
        topology_changed(&net.ctx(), &change);
        let removed = net.rec.take();
        assert!(
            removed.iter().any(|l| l.contains("DELETE")),
            "its flows go from the other switches: {removed:#?}"
        );
        assert!(net.sessions.get(&s.id).is_none());
        // ... and its next packet takes the other way round, same id.
        net.packet_in(1, 1, &req);
        let back = net.sessions.get(&s.id).expect("re-admitted");
        assert_eq!(back.path.len(), 3);
        assert!(
            !back.path.contains(&middle),
            "{:?} avoids {middle}",
            back.path
        );
    }

    #[tokio::test]
    async fn sessions_are_bounded_per_client() {
        let crm = CRM.replace(
            r#""services": ["#,
            r#""services": [{"name": "iperf2", "ip": "10.0.0.101", "proto": "tcp", "port": 5202, "kind": "web"},"#,
        );
        let net = Net::build(
            &crm,
            100,
            crate::sessions::SessionLimits {
                per_client: 1,
                per_port: 100,
            },
        )
        .await;
        net.packet_in(2, 2, &tcp(H2, H1, ([10, 0, 0, 101], [10, 0, 0, 1]), 40000));
        net.packet_in(1, 1, &tcp(H1, H2, ([10, 0, 0, 1], [10, 0, 0, 101]), 5201));
        assert_eq!(net.sessions.list(None, None, None).len(), 1);
        // The same client, another service: one session is its limit, so
        // this one is plain traffic.
        let dump =
            shape(&net.packet_in(1, 1, &tcp(H1, H2, ([10, 0, 0, 1], [10, 0, 0, 101]), 5202)));
        assert!(dump.iter().all(|l| !l.contains("prio 30000")), "{dump:#?}");
        assert!(dump.iter().any(|l| l.contains("prio 10")), "{dump:#?}");
        assert_eq!(net.stats.sessions_refused_limit.get(), 1);
        assert_eq!(net.sessions.list(None, None, None).len(), 1);
    }

    #[tokio::test]
    async fn with_no_meter_left_a_session_gets_no_tier_and_its_flows_no_meter() {
        // Two meters per switch: one session's worth.
        let net = Net::with_meters(CRM, 2).await;
        let hello = tcp(H2, H1, ([10, 0, 0, 101], [10, 0, 0, 1]), 40000);
        net.packet_in(2, 2, &hello);
        let first = tcp(H1, H2, ([10, 0, 0, 1], [10, 0, 0, 101]), 5201);
        assert!(
            shape(&net.packet_in(1, 1, &first)).contains(&"1 meter ADD rate 50000".to_string())
        );
        // A second client: its session is refused its tier.
        const H3: [u8; 6] = [0, 0, 0, 0, 0, 3];
        let second = tcp(H3, H2, ([10, 0, 0, 3], [10, 0, 0, 101]), 5201);
        let dump = net.packet_in(1, 1, &second);
        assert!(
            dump.iter().all(|l| !l.contains("METER")),
            "no meter, nowhere: {dump:#?}"
        );
        assert_eq!(
            shape(&dump),
            vec![
                "2 flow ADD prio 30000",
                "2 flow ADD prio 30000",
                "2 BARRIER",
                "1 flow ADD prio 30000",
                "1 flow ADD prio 30000",
                "1 BARRIER",
                "1 release",
            ]
        );
        assert!(
            dump.iter()
                .all(|l| !l.contains("ip_dscp") && !l.contains("SET_QUEUE"))
        );
        assert_eq!(net.stats.sessions_refused_meters.get(), 1);
        assert_eq!(
            net.sessions.list(None, None, None).len(),
            1,
            "not a session"
        );
    }
}
