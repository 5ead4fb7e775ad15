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

use crate::forwarding::{CarriedPath, Flooded, Forwarding, PathKey};
use crate::frame::{Frame, is_group};
use crate::plan::{Execute, Plan, Release};
use crate::routing::{Decision, Router};
use crate::sessions::{Admission, Pending, SessionPacket, Sessions};
use crate::stats::Stats;
use crate::topology::{Change, Hop, Learnt, PortRef, Topology, VLAN1};
use crate::vlan::{self, ROUTER_MAC, Tag, Vid};
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
    pub router: &'a Router,
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
    // VLANs configured: the same stages, per VLAN (the one check a
    // network without VLANs pays).
    if ctx.sessions.vlans_active() {
        return vlan_packet_in(ctx, (dpid, in_port), msg, &f, data, now);
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
    let mut dst_at = if is_group(&f.dst) {
        None
    } else {
        topo.host(&f.dst).map(|h| h.at)
    };
    let copy = !on_link && dst_at.is_none() && ctx.forwarding.is_flood_copy(data, now);
    let learns = !on_link && !copy && !is_group(&f.src);
    let learnt = if learns {
        topo.learn(VLAN1, f.src, here, f.sender_ip, now)
    } else {
        Learnt::Known { moved_from: None }
    };
    if learnt == Learnt::Refused {
        // Its port (or the controller) holds as many hosts as it may: a
        // flood of new addresses from one port stops here.
        drop(topo);
        ctx.stats.hosts_refused.inc();
        return None;
    }
    let new_host = learnt == Learnt::New;
    let moved = matches!(
        learnt,
        Learnt::Known {
            moved_from: Some(_)
        }
    );
    if learns && f.dst == f.src {
        // A frame to its own sender: it is where it was just learnt.
        dst_at = Some(here);
    }
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
            delivered: owned.clone(),
            dst_at: Some(dst_at),
            route,
            carry: None,
            now,
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
            ctx.exec.execute(&mut plan);
            ctx.stats.transit_forwarded.inc();
            return None;
        }
    }
    let Some(fwd) = fwd else {
        debug!("no path {dpid:x} -> {:x} for {}", dst_at.0, f.dst);
        return None;
    };
    let mut fwd_hops = SmallVec::new();
    push_hops(&mut fwd_hops, &fwd, dst_at);
    let rev_hops = rev.map(|(s, p)| {
        let mut hops = SmallVec::new();
        push_hops(&mut hops, &p, s);
        hops
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

/// Appends the hops of switch path `path`, then the last switch's way
/// out to `to`. (Pushes in place: `collect` over a chain, or returning
/// the vector, costs several times more, on every setup.)
fn push_hops(hops: &mut SmallVec<[Hop; 8]>, path: &[(u64, u32)], to: PortRef) {
    for &(dpid, out_port) in path {
        hops.push(Hop { dpid, out_port });
    }
    hops.push(Hop {
        dpid: to.0,
        out_port: to.1,
    });
}

/// Where a frame goes, as the VLAN pipeline found it.
#[derive(Debug, Clone, Copy)]
struct Dest {
    vlan: Vid,
    mac: openflow::MacAddr,
    at: PortRef,
    /// Sent to the router, for a host of another subnet.
    routed: bool,
}

/// The pipeline where VLANs are configured: the same stages in the same
/// order, per VLAN. The frame is classified into a VLAN at its ingress
/// port (or dropped and counted), its source learnt in that VLAN, and its
/// destination found in it (flooded to the VLAN's edge ports when
/// unknown); a frame sent to the router is answered, forwarded to a host
/// of another routed subnet, or waits for the router's ARP. Paths and
/// sessions are carried: their flows match port and VLAN, retag, and
/// route at the first switch.
fn vlan_packet_in(
    ctx: &Ctx<'_>,
    here: PortRef,
    msg: &Bytes,
    f: &Frame<'_>,
    data: &[u8],
    now: Instant,
) -> Option<Box<Pending>> {
    let net = ctx.sessions.net();
    let class = f.tcp_udp().and_then(|ip| ctx.sessions.classify(ip));
    let arrive = Tag::of(f.vid);
    let owned = slice_of(msg, data);
    let mut topo = ctx.topology.lock();
    let on_link = topo.is_link_port(here);
    // 1. Classify: the frame's VLAN.
    let vlan = if on_link {
        vlan::Plan::classify_link(f.vid)
    } else {
        match net.classify(here, f.vid) {
            Some(v) => v,
            None => {
                drop(topo);
                ctx.stats.vlan_dropped.inc();
                return None;
            }
        }
    };
    // 2. Learning, in that VLAN (never the router's own address).
    let to_router = f.dst == ROUTER_MAC;
    let unknown_dst = is_group(&f.dst) || (!to_router && topo.host_in(vlan, &f.dst).is_none());
    let copy = !on_link && unknown_dst && ctx.forwarding.is_flood_copy(data, now);
    let learns = !on_link && !copy && !is_group(&f.src) && f.src != ROUTER_MAC;
    let learnt = if learns {
        topo.learn(vlan, f.src, here, f.sender_ip, now)
    } else {
        Learnt::Known { moved_from: None }
    };
    if learnt == Learnt::Refused {
        drop(topo);
        ctx.stats.hosts_refused.inc();
        return None;
    }
    let new_host = learnt == Learnt::New;
    let moved = matches!(
        learnt,
        Learnt::Known {
            moved_from: Some(_)
        }
    );
    // An address the router was asking for: what waited for it goes on.
    let resolved = match (learns, f.sender_ip) {
        (true, Some(std::net::IpAddr::V4(ip))) => ctx.router.resolved(vlan, ip),
        _ => SmallVec::new(),
    };
    // 3. Where it goes.
    let dest = if to_router {
        if on_link {
            None
        } else {
            match ctx
                .router
                .decide(&net, &topo, here, (vlan, arrive), f, &owned, now)
            {
                Decision::Answer(mut plan) => {
                    ctx.exec.execute(&mut plan);
                    ctx.stats.router_answered.inc();
                    None
                }
                Decision::Forward(t) => Some(Dest {
                    vlan: t.vlan,
                    mac: t.mac,
                    at: t.at,
                    routed: true,
                }),
                Decision::Wait(ask) => {
                    if let Some(mut plan) = ask {
                        ctx.exec.execute(&mut plan);
                        ctx.stats.router_arp_sent.inc();
                    }
                    ctx.stats.routed_waited.inc();
                    None
                }
                Decision::Consumed => None,
                Decision::Drop(why) => {
                    debug!("router dropped {} -> {}: {why:?}", f.src, f.dst);
                    ctx.stats.routed_dropped.inc();
                    None
                }
            }
        }
    } else if let Some(h) = (!is_group(&f.dst))
        .then(|| topo.host_in(vlan, &f.dst))
        .flatten()
    {
        Some(Dest {
            vlan,
            mac: f.dst,
            at: h.at,
            routed: false,
        })
    } else {
        // A broadcast or an unknown destination: an ARP for a gateway is
        // the router's to answer; the rest is flooded in its VLAN.
        if let Some(mut plan) = f
            .arp
            .filter(|_| !on_link && !copy)
            .and_then(|a| Router::arp_for_gateway(&net, here, (vlan, arrive), &a))
        {
            ctx.exec.execute(&mut plan);
            ctx.stats.router_answered.inc();
        } else if !on_link && !copy {
            match ctx
                .forwarding
                .flood_vlan(ctx.exec, &topo, &net, here, (vlan, arrive), data, now)
            {
                Flooded::Sent => ctx.stats.floods.inc(),
                Flooded::Suppressed => ctx.stats.floods_suppressed.inc(),
            }
        } else if copy {
            ctx.stats.floods_suppressed.inc();
        }
        None
    };
    // 4. The route and how it carries the frame.
    let planned = dest.and_then(|d| {
        let route = topo.route(here, d.at)?;
        let carry = vlan::carry(
            &net,
            &crate::routing::triples(&route),
            (
                vlan::End { vlan, mac: f.src },
                vlan::End {
                    vlan: d.vlan,
                    mac: d.mac,
                },
            ),
            d.routed.then_some(ROUTER_MAC),
            |p| topo.is_link_port(p),
        );
        if carry.is_none() {
            ctx.stats.vlan_dropped.inc();
        }
        Some((d, route, carry?))
    });
    drop(topo);
    if let Some(mac) = moved.then_some(f.src) {
        ctx.forwarding.host_gone(ctx.exec, mac);
    }
    if new_host {
        ctx.sessions.retry_requested(ctx.exec, ctx.topology);
    }
    let pending = planned.and_then(|(d, route, carry)| {
        let at = (here, on_link);
        vlan_forward(
            ctx,
            at,
            f,
            (vlan, arrive),
            &owned,
            (d, route, carry),
            class,
            now,
        )
    });
    // Packets that waited for this host go on now.
    for p in resolved {
        if let Some(left) = packet_in(ctx, p.dpid, p.in_port, &p.data, &p.data, now) {
            ctx.sessions.abandon(&left);
            ctx.stats.admissions_shed.inc();
        }
    }
    pending
}

/// Sessions, then plain forwarding, of a frame of `vlan` (arrived tagged
/// `arrive`) whose destination and route are known.
#[allow(clippy::too_many_arguments)]
fn vlan_forward(
    ctx: &Ctx<'_>,
    (here, on_link): (PortRef, bool),
    f: &Frame<'_>,
    (vlan, arrive): (Vid, Tag),
    owned: &Bytes,
    (d, route, carry): (Dest, crate::topology::Route, vlan::Carry),
    class: Option<crate::sessions::detect::Class>,
    now: Instant,
) -> Option<Box<Pending>> {
    let (dpid, in_port) = here;
    // 5. Sessions.
    if let Some(class) = class {
        let net = ctx.sessions.net();
        // The frame as the destination's port gets it (what a relay sends).
        let leave = net.edge_tag(d.at, d.vlan).unwrap_or(Tag::Untagged);
        let relay = vlan::HopCarry {
            in_port,
            arrive,
            leave,
            l3: d.routed.then_some(vlan::Rewrite {
                eth_src: ROUTER_MAC,
                eth_dst: d.mac,
            }),
        };
        // A routed frame whose TTL runs out here dies here.
        let delivered = vlan::rewrite_frame(owned, &relay).map(Bytes::from)?;
        let wants_route = !on_link
            && matches!(
                &class,
                crate::sessions::detect::Class::Request { .. }
                    | crate::sessions::detect::Class::Sip {
                        to_server: true,
                        ..
                    }
            );
        let pkt = SessionPacket {
            dpid,
            in_port,
            on_link,
            frame: f,
            data: owned.clone(),
            delivered,
            dst_at: Some(d.at),
            route: wants_route.then(|| route.clone()),
            carry: Some(Box::new(carry.clone())),
            now,
        };
        match ctx.sessions.packet(ctx.exec, ctx.topology, &pkt, class) {
            Admission::NotSession => {}
            Admission::Done => return None,
            Admission::Lookup(p) => return Some(p),
            Admission::Flood => return None,
        }
    }
    // 6. Plain forwarding.
    let routed_transit = on_link && f.src == ROUTER_MAC;
    let ips = f.ip4.as_ref().map(|ip| (ip.src, ip.dst));
    let keys = match (d.routed || routed_transit, ips) {
        (true, Some((s, t))) => (
            PathKey::L3 { src: s, dst: t },
            PathKey::L3 { src: t, dst: s },
        ),
        (true, None) => return None,
        (false, _) => (
            PathKey::L2 {
                vlan,
                src: f.src,
                dst: f.dst,
            },
            PathKey::L2 {
                vlan: d.vlan,
                src: f.dst,
                dst: f.src,
            },
        ),
    };
    let release = Release {
        dpid,
        in_port,
        out_port: openflow::PortNo::Table.value(),
        data: owned.clone(),
    };
    if on_link {
        // In transit on a path we installed (the datapath's cache lags):
        // along that path. A routed frame cannot be routed again here.
        if ctx.forwarding.transit(ctx.exec, keys.0, release.clone()) {
            ctx.stats.transit_forwarded.inc();
            return None;
        }
        if routed_transit {
            return None;
        }
    }
    let (fwd_hops, rev_hops) = crate::routing::path_hops(&route, &carry)?;
    let fwd = CarriedPath {
        key: keys.0,
        ends: (f.src, d.mac),
        vlans: (vlan, d.vlan),
        hops: &fwd_hops,
    };
    let rev = CarriedPath {
        key: keys.1,
        ends: (d.mac, f.src),
        vlans: (d.vlan, vlan),
        hops: &rev_hops,
    };
    // From a link port only the way on is known.
    let done =
        ctx.forwarding
            .setup_carried(ctx.exec, &fwd, (!on_link).then_some(&rev), release, now);
    if done == crate::forwarding::Setup::Refused {
        ctx.stats.paths_refused.inc();
    } else if d.routed {
        ctx.stats.routed_paths.add(if on_link { 1 } else { 2 });
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
/// and correctly signed, make a link: nothing a host sends changes the
/// topology. Where hosts were learnt at either port (frames that crossed
/// the link before it was discovered, or a host sending probes back), the
/// link needs the probes of both ways; then both ways are made at once.
fn lldp_in(ctx: &Ctx<'_>, to: PortRef, frame: &[u8]) {
    let Some(p) = crate::lldp::parse_probe(frame) else {
        return;
    };
    let from = (p.dpid, p.port);
    let now = Instant::now();
    let mut topo = ctx.topology.lock();
    let valid = p.verify(ctx.lldp_key, crate::lldp::now_ms(), ctx.lldp_max_age_ms)
        && from != to
        && ctx.exec.connected(from.0);
    let hosts = valid && (topo.has_hosts_at(to) || topo.has_hosts_at(from));
    if !valid || (hosts && !topo.confirmed_both_ways(from, to, now)) {
        drop(topo);
        ctx.stats.lldp_ignored.inc();
        return;
    }
    let mut change = topo.link_seen(from, to, now);
    if hosts {
        let back = topo.link_seen(to, from, now);
        change.links_added.extend(back.links_added);
        change.links_removed.extend(back.links_removed);
        change.hosts_removed.extend(back.hosts_removed);
    }
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
        router: Router,
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
                router: Router::default(),
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
                router: &self.router,
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
        // The host at 3:1 keeps sending its own port's probes back in
        // (the one probe it receives): never a link.
        for _ in 0..3 {
            net.packet_in(3, 1, &probe(&net.key, (3, 1), now));
        }
        assert_eq!(links(&net), 1);
        assert!(net.topo.lock().has_hosts_at((3, 1)));
    }

    #[tokio::test]
    async fn a_link_where_frames_were_learnt_before_discovery_is_made_by_probes_both_ways() {
        let net = Net::new("{}").await;
        let mut t = Topology::default();
        t.set_ports(1, [1, 10]);
        t.set_ports(3, [1, 5]);
        *net.topo.lock() = t;
        let now = crate::lldp::now_ms();
        let probe = |from: (u64, u32)| {
            crate::lldp::probe(&net.key, from.0, from.1, MacAddr([2, 0, 0, 0, 0, 9]), now)
        };
        // Before discovery, a broadcast crossed 3:5 -> 1:10 and one the
        // other way: each end learnt a host there.
        net.packet_in(1, 10, &tcp(H1, H2, ([10, 0, 0, 1], [10, 0, 0, 2]), 80));
        net.packet_in(3, 5, &tcp(H2, H1, ([10, 0, 0, 2], [10, 0, 0, 1]), 80));
        assert!(net.topo.lock().has_hosts_at((1, 10)));
        // One way's probe alone: held back.
        net.packet_in(1, 10, &probe((3, 5)));
        assert_eq!(net.topo.lock().links().count(), 0);
        // The other way's: the link, both ways, and no host at its ends.
        net.packet_in(3, 5, &probe((1, 10)));
        let t = net.topo.lock();
        assert_eq!(t.links().count(), 2);
        assert!(!t.has_hosts_at((1, 10)) && !t.has_hosts_at((3, 5)));
    }

    #[tokio::test]
    async fn a_switch_away_keeps_its_sessions_and_one_gone_for_good_moves_them() {
        let net = Net::new(CRM).await;
        // A square: 1 -(10)- 2 -(12)- 3, 1 -(11)- 4 -(13)- 3; h1 on 1:1,
        // h2 on 3:2.
        let mut t = Topology::default();
        let now = Instant::now();
        let square = [
            ((1, 10), (2, 10)),
            ((2, 12), (3, 12)),
            ((1, 11), (4, 11)),
            ((4, 13), (3, 13)),
        ];
        for (a, b) in square {
            t.link_seen(a, b, now);
            t.link_seen(b, a, now);
        }
        let ports: [(u64, &[u32]); 4] = [
            (1, &[1, 10, 11]),
            (2, &[10, 12]),
            (3, &[2, 12, 13]),
            (4, &[11, 13]),
        ];
        for (d, p) in ports {
            t.set_ports(d, p.iter().copied());
        }
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
        // The middle switch's connection drops (a controller change, an
        // echo timeout): it keeps forwarding, so the session stays...
        let change = net.topo.lock().switch_down(gone);
        net.rec.take();
        topology_changed(&net.ctx(), &change);
        let sent = net.rec.take();
        assert!(
            !sent.iter().any(|l| l.contains("DELETE")),
            "nothing leaves the other switches: {sent:#?}"
        );
        assert_eq!(net.sessions.get(&s.id).expect("live").path, s.path);
        // ... and when it is back, its meters and flows are put back.
        let back_ports = ports.iter().find(|(d, _)| *d == gone).expect("ports").1;
        net.topo.lock().set_ports(gone, back_ports.iter().copied());
        assert_eq!(net.sessions.switch_ready(&net.rec, gone, 100), 1);
        let sent = net.rec.take();
        let on = format!("{gone:016x}");
        assert!(
            sent.iter()
                .any(|l| l.starts_with(&on) && l.contains("METER_MOD") && l.contains("\"ADD\""))
                && sent
                    .iter()
                    .any(|l| l.starts_with(&on) && l.contains("FLOW_MOD")),
            "{sent:#?}"
        );
        // Gone for good: its links go when their probes stop, the session
        // leaves its path...
        net.topo.lock().switch_down(gone);
        let later = now + std::time::Duration::from_secs(10);
        let change = {
            let mut t = net.topo.lock();
            for (a, b) in square {
                if a.0 != gone && b.0 != gone {
                    t.link_seen(a, b, later);
                    t.link_seen(b, a, later);
                }
            }
            t.expire_links(later, std::time::Duration::from_secs(3))
        };
        assert_eq!(change.links_removed.len(), 4, "{change:?}");
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
                admissions_per_port: 0,
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

#[cfg(test)]
mod vlan_tests {
    //! The pipeline where VLANs are configured: s1 port 10 to s2 port 11;
    //! VLAN 10 native on s1:1 and s2:2, VLAN 20 native on s1:3 and s2:4;
    //! s2:5 a trunk (VLAN 10 tagged, VLAN 20 native).
    use super::*;
    use crate::config::CrmMode;
    use crate::crm::{Replica, Snapshot, Store, StoreOptions};
    use crate::plan::Recorder;
    use crate::sessions::Crm;
    use etherparse::PacketBuilder;
    use openflow::MacAddr;
    use std::sync::Arc;

    const H1: [u8; 6] = [0, 0, 0, 0, 0, 1];
    const H2: [u8; 6] = [0, 0, 0, 0, 0, 2];
    const H3: [u8; 6] = [0, 0, 0, 0, 0, 3];

    struct Net {
        rec: Recorder,
        topo: Mutex<Topology>,
        fwd: Forwarding,
        sessions: Sessions,
        router: Router,
        stats: Arc<Stats>,
        key: crate::lldp::Key,
    }

    async fn net(crm: &str) -> Net {
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
        t.set_ports(1, [1, 3, 10]);
        t.set_ports(2, [2, 4, 5, 11]);
        let n = Net {
            rec: Recorder::default(),
            topo: Mutex::new(t),
            fwd: Forwarding::new(60),
            sessions: Sessions::new(crm, "US".into(), 30, stats.clone()),
            router: Router::default(),
            stats,
            key: crate::lldp::Key::from_bytes([9; 32]),
        };
        for dpid in [1, 2] {
            n.sessions.switch_ready(&n.rec, dpid, 100);
        }
        n.rec.take();
        n
    }

    impl Net {
        fn packet_in(&self, dpid: u64, port: u32, frame: &[u8]) -> Vec<String> {
            let ctx = Ctx {
                exec: &self.rec,
                topology: &self.topo,
                forwarding: &self.fwd,
                sessions: &self.sessions,
                router: &self.router,
                stats: &self.stats,
                lldp_key: &self.key,
                lldp_max_age_ms: 3500,
            };
            let msg = Bytes::copy_from_slice(frame);
            assert!(packet_in(&ctx, dpid, port, &msg, &msg, Instant::now()).is_none());
            self.rec.take()
        }
    }

    const BRIDGED: &str = r#"{
        "vlans": [{"vid": 10}, {"vid": 20}],
        "ports": [
            {"dpid": "1", "port": 1, "native_vlan": 10},
            {"dpid": "2", "port": 2, "native_vlan": 10},
            {"dpid": "1", "port": 3, "native_vlan": 20},
            {"dpid": "2", "port": 4, "native_vlan": 20},
            {"dpid": "2", "port": 5, "native_vlan": 20, "tagged_vlans": [10]}
        ]
    }"#;

    fn eth(src: [u8; 6], dst: [u8; 6], vid: Option<u16>) -> Vec<u8> {
        let mut v = Vec::new();
        match vid {
            Some(vid) => PacketBuilder::ethernet2(src, dst)
                .single_vlan(etherparse::VlanId::try_new(vid).expect("vid"))
                .ipv4([10, 0, 0, src[5]], [10, 0, 0, dst[5]], 64)
                .udp(1000, 2000)
                .write(&mut v, b"x"),
            None => PacketBuilder::ethernet2(src, dst)
                .ipv4([10, 0, 0, src[5]], [10, 0, 0, dst[5]], 64)
                .udp(1000, 2000)
                .write(&mut v, b"x"),
        }
        .expect("frame");
        v
    }

    #[tokio::test]
    async fn floods_stay_in_their_vlan_with_each_ports_tag() {
        let n = net(BRIDGED).await;
        // h1 (VLAN 10 on s1:1) to an unknown h2: VLAN 10's edge ports
        // only: s2:2 untagged, s2:5 tagged; never VLAN 20's s1:3, s2:4.
        let d = n.packet_in(1, 1, &eth(H1, H2, None));
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(d[0].starts_with("0000000000000002"), "{d:?}");
        assert!(
            d[0].contains(r#""actions":[{"type":"OUTPUT","port":2,"max_len":0},{"type":"PUSH_VLAN","ethertype":33024},{"type":"SET_FIELD","field":{"field":"vlan_vid","value":4106}},{"type":"OUTPUT","port":5,"max_len":0}]"#),
            "{d:?}"
        );
        assert_eq!(
            n.topo.lock().host_in(10, &MacAddr(H1)).map(|h| h.at),
            Some((1, 1))
        );
        assert!(n.topo.lock().host_in(1, &MacAddr(H1)).is_none());
        // h3 in VLAN 20 sends to h1's address: h1 is not in VLAN 20, so
        // it is flooded there (s2:4, s2:5 untagged), never to h1.
        let d = n.packet_in(1, 3, &eth(H3, H1, None));
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(
            d[0].contains(r#""actions":[{"type":"OUTPUT","port":4,"max_len":0},{"type":"OUTPUT","port":5,"max_len":0}]"#),
            "{d:?}"
        );
        // A tag the port does not carry, or a tagged frame on an access
        // port: dropped and counted.
        assert!(n.packet_in(2, 5, &eth(H2, H1, Some(20))).is_empty());
        assert!(n.packet_in(1, 1, &eth(H1, H2, Some(10))).is_empty());
        assert_eq!(n.stats.vlan_dropped.get(), 2);
    }

    #[tokio::test]
    async fn a_bridged_path_pushes_at_the_access_port_and_pops_at_the_other() {
        let n = net(BRIDGED).await;
        n.packet_in(1, 1, &eth(H1, H2, None));
        // h2 (VLAN 10, s2:2) answers: both ways, egress first, released
        // through the table.
        let d = n.packet_in(2, 2, &eth(H2, H1, None));
        let shape: Vec<String> = d
            .iter()
            .map(|l| {
                let (dpid, rest) = l.split_at(16);
                let what = if rest.contains("FLOW_MOD") {
                    "flow"
                } else {
                    rest.trim().split(' ').next().unwrap_or("")
                };
                format!("{} {what}", dpid.trim_start_matches('0'))
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                "1 flow",
                "1 flow",
                "1 BARRIER",
                "2 flow",
                "2 flow",
                "2 BARRIER",
                "2 release"
            ],
            "{d:#?}"
        );
        // s2, h2 -> h1: in from s2:2 untagged, out to the link tagged 10.
        let s2_fwd = &d[3];
        for want in [
            r#"{"field":"in_port","value":2},{"field":"vlan_vid","value":0}"#,
            r#"{"type":"PUSH_VLAN","ethertype":33024},{"type":"SET_FIELD","field":{"field":"vlan_vid","value":4106}},{"type":"OUTPUT","port":11"#,
        ] {
            assert!(s2_fwd.contains(want), "{want} missing from {s2_fwd}");
        }
        // s1, h2 -> h1: in from the link tagged 10, popped out to s1:1.
        let s1_fwd = &d[0];
        for want in [
            r#"{"field":"in_port","value":10},{"field":"vlan_vid","value":4106}"#,
            r#"{"type":"POP_VLAN"},{"type":"OUTPUT","port":1"#,
        ] {
            assert!(s1_fwd.contains(want), "{want} missing from {s1_fwd}");
        }
        assert!(
            d[6].contains("out_port=4294967289"),
            "released through the table: {}",
            d[6]
        );
        // A trunk host (s2:5) tagged 10 reaches h1 tagged all the way.
        n.packet_in(2, 5, &eth(H3, H1, Some(10)));
        assert_eq!(
            n.topo.lock().host_in(10, &MacAddr(H3)).map(|h| h.at),
            Some((2, 5))
        );
    }

    const ROUTED: &str = r#"{
        "tiers": [
            {"name": "gold", "min_benefit": 1000.0, "rate_kbps": 50000, "burst_kbits": 5000,
             "dscp": 46, "queue_id": 1, "queue_min_kbps": 0, "hold_rate_kbps": 64},
            {"name": "best-effort", "min_benefit": 0.0, "rate_kbps": 2000, "burst_kbits": 200,
             "dscp": 0, "queue_id": 0, "queue_min_kbps": 0, "hold_rate_kbps": 32}
        ],
        "customers": [
            {"id": "c-1", "name": "Acme", "phones": [], "ips": ["10.20.0.5"],
             "lifetime_value": 0.0, "annual_revenue": 100000.0, "margin_pct": 10.0,
             "open_opportunity_value": 0.0, "win_probability": 0.0, "churn_risk": 0.0,
             "segment": "enterprise"}
        ],
        "services": [{"name": "iperf", "ip": "10.30.0.7", "proto": "tcp", "port": 5201, "kind": "web"}],
        "vlans": [
            {"vid": 20, "gateways": ["10.20.0.1/24"]},
            {"vid": 30, "gateways": ["10.30.0.1/24"]},
            {"vid": 40}
        ],
        "ports": [
            {"dpid": "1", "port": 1, "native_vlan": 20},
            {"dpid": "2", "port": 2, "native_vlan": 30},
            {"dpid": "1", "port": 3, "native_vlan": 40}
        ]
    }"#;

    fn arp(op: u16, from: ([u8; 6], [u8; 4]), to: ([u8; 6], [u8; 4])) -> Vec<u8> {
        crate::routing::arp_frame(
            op,
            (MacAddr(from.0), from.1.into()),
            (MacAddr(to.0), to.1.into()),
        )
    }

    fn tcp(src: [u8; 6], dst: [u8; 6], ips: ([u8; 4], [u8; 4]), dport: u16) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(src, dst)
            .ipv4(ips.0, ips.1, 64)
            .tcp(40000, dport, 1, 1000)
            .write(&mut v, b"")
            .expect("frame");
        v
    }

    #[tokio::test]
    async fn the_router_answers_for_its_gateway_asks_for_the_next_hop_and_routes() {
        let n = net(ROUTED).await;
        let r = ROUTER_MAC.0;
        // h1 (10.20.0.5, VLAN 20) asks for its gateway: answered, not flooded.
        let d = n.packet_in(
            1,
            1,
            &arp(1, (H1, [10, 20, 0, 5]), ([0; 6], [10, 20, 0, 1])),
        );
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(
            d[0].starts_with("0000000000000001") && d[0].contains(r#""port":1,"#),
            "{d:?}"
        );
        assert_eq!(n.stats.router_answered.get(), 1);
        // The gateway of another VLAN is not answered here (flooded in 20:
        // no other port carries it, so nothing).
        let d = n.packet_in(
            1,
            1,
            &arp(1, (H1, [10, 20, 0, 5]), ([0; 6], [10, 30, 0, 1])),
        );
        assert!(d.is_empty(), "{d:#?}");
        // h1 sends to h2 (10.30.0.7) through the router: h2 unknown, the
        // router asks VLAN 30 for it (s2:2 only) and the packet waits.
        let web = tcp(H1, r, ([10, 20, 0, 5], [10, 30, 0, 7]), 80);
        let d = n.packet_in(1, 1, &web);
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(d[0].starts_with("0000000000000002"), "{d:?}");
        assert_eq!(n.router.waiting(), 1);
        // h2 answers the router: the waiting packet is routed at once,
        // both ways.
        let d = n.packet_in(2, 2, &arp(2, (H2, [10, 30, 0, 7]), (r, [10, 30, 0, 1])));
        assert_eq!(n.router.waiting(), 0);
        assert_eq!(n.stats.routed_paths.get(), 2, "{d:#?}");
        let first = d
            .iter()
            .find(|l| {
                l.starts_with("0000000000000001") && l.contains(r#""ipv4_dst","value":"10.30.0.7""#)
            })
            .expect("s1 routes h1 -> h2");
        for want in [
            r#"{"field":"in_port","value":1},{"field":"vlan_vid","value":0},{"field":"eth_dst","value":"0e:74:66:00:00:01"}"#,
            r#"{"type":"SET_FIELD","field":{"field":"eth_dst","value":"00:00:00:00:00:02"}},{"type":"DEC_NW_TTL"},{"type":"PUSH_VLAN","ethertype":33024},{"type":"SET_FIELD","field":{"field":"vlan_vid","value":4126}},{"type":"OUTPUT","port":10,"max_len":0}"#,
        ] {
            assert!(first.contains(want), "{want} missing from {first}");
        }
        let back = d
            .iter()
            .find(|l| {
                l.starts_with("0000000000000002") && l.contains(r#""ipv4_dst","value":"10.20.0.5""#)
            })
            .expect("s2 routes h2 -> h1");
        assert!(
            back.contains("DEC_NW_TTL") && back.contains("4116"),
            "{back}"
        );
        assert!(d.last().is_some_and(|l| l.contains("release")), "{d:#?}");
        // Echo to a gateway is answered; a bridged VLAN (40) is never routed.
        let mut ping = Vec::new();
        PacketBuilder::ethernet2(H1, r)
            .ipv4([10, 20, 0, 5], [10, 30, 0, 1], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut ping, b"hi")
            .expect("ping");
        assert_eq!(n.packet_in(1, 1, &ping).len(), 1);
        let d = n.packet_in(1, 3, &tcp(H3, r, ([10, 40, 0, 9], [10, 30, 0, 7]), 80));
        assert!(d.is_empty(), "{d:#?}");
        assert!(n.stats.routed_dropped.get() >= 1);
    }

    #[tokio::test]
    async fn a_session_across_subnets_gets_its_tier_on_the_routed_path() {
        let n = net(ROUTED).await;
        let r = ROUTER_MAC.0;
        // Both hosts located (h2 by an ARP of its own).
        n.packet_in(
            2,
            2,
            &arp(1, (H2, [10, 30, 0, 7]), ([0; 6], [10, 30, 0, 1])),
        );
        n.packet_in(
            1,
            1,
            &arp(1, (H1, [10, 20, 0, 5]), ([0; 6], [10, 20, 0, 1])),
        );
        let req = tcp(H1, r, ([10, 20, 0, 5], [10, 30, 0, 7]), 5201);
        let d = n.packet_in(1, 1, &req);
        let live = n.sessions.list(None, None, None);
        assert_eq!(live.len(), 1, "{d:#?}");
        assert_eq!(live[0].tier, "gold");
        assert_eq!(live[0].path, vec!["0000000000000001", "0000000000000002"]);
        let tier_flows: Vec<&String> = d
            .iter()
            .filter(|l| l.contains(r#""priority":30000"#))
            .collect();
        assert_eq!(tier_flows.len(), 4, "{d:#?}");
        // At the client's switch the forward flow routes, meters and marks.
        let s1_fwd = tier_flows
            .iter()
            .find(|l| {
                l.starts_with("0000000000000001") && l.contains(r#""ipv4_src","value":"10.20.0.5""#)
            })
            .expect("s1 forward");
        for want in [
            r#"{"field":"in_port","value":1},{"field":"vlan_vid","value":0}"#,
            r#"{"type":"METER","meter_id""#,
            r#"{"type":"SET_FIELD","field":{"field":"eth_src","value":"0e:74:66:00:00:01"}},{"type":"SET_FIELD","field":{"field":"eth_dst","value":"00:00:00:00:00:02"}},{"type":"DEC_NW_TTL"},{"type":"PUSH_VLAN""#,
            r#"{"type":"SET_FIELD","field":{"field":"ip_dscp","value":46}}"#,
        ] {
            assert!(s1_fwd.contains(want), "{want} missing from {s1_fwd}");
        }
        // At the server's switch the reverse flow routes back to h1.
        let s2_rev = tier_flows
            .iter()
            .find(|l| {
                l.starts_with("0000000000000002") && l.contains(r#""ipv4_src","value":"10.30.0.7""#)
            })
            .expect("s2 reverse");
        assert!(
            s2_rev.contains(
                r#"{"field":"eth_dst","value":"00:00:00:00:00:01"}},{"type":"DEC_NW_TTL"}"#
            ),
            "{s2_rev}"
        );
        assert!(
            d.last()
                .is_some_and(|l| l.contains("release") && l.contains("out_port=4294967289"))
        );
    }
}
