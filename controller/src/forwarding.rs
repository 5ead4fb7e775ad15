//! Packet-in handling for plain connectivity: host learning, flooding, and
//! shortest-path setup.
//!
//! Flooding delivers a copy straight to every edge port (a port with no
//! switch-to-switch link) of every switch, from the controller: floods never
//! travel over inter-switch links, so topologies with loops cannot storm.
//! The controller-to-edge star is the flood tree. Until LLDP has found the
//! links a port may look like an edge port; a short filter of recently
//! flooded frames drops copies that come back during that window.
//!
//! Path setup installs a flow per direction on every switch of the shortest
//! path, egress switch first, each switch's flows followed by a barrier whose
//! xid names the setup; the packet is released by PACKET_OUT only when every
//! barrier has come back. Flows carry a per-path cookie, so the paths that
//! cross a failed link are deleted precisely and re-routed on the next packet.

use crate::control::ControlPlane;
use crate::cookie::{self, Kind};
use crate::switch::{SETUP_XID_BIT, Switch};
use crate::topology::{Change, Hop, PortRef};
use bytes::Bytes;
use etherparse::{ArpPacketSlice, EtherType, Ethernet2Slice, Ipv4HeaderSlice};
use openflow::{
    Action, FlowMod, Instruction, MacAddr, Match, Message, Oxm, PacketIn, PacketOut, PortNo,
};
use parking_lot::Mutex;
use slab::Slab;
use smallvec::SmallVec;
use std::borrow::Cow;
// ahash: keys come off the wire (MACs), so a DoS-resistant hash, but
// several times cheaper than std's SipHash on this hot path.
use ahash::AHashMap as HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::debug;

/// Priority of shortest-path forwarding flows ("plain forwarding"); tier
/// flows sit above it.
pub const PRIO_PATH: u16 = 10;
/// A flooded frame seen again within this window is a copy, not a retry
/// (ARP retries are a second apart).
const FLOOD_WINDOW: Duration = Duration::from_millis(300);
const FLOOD_FILTER_SLOTS: usize = 256;
/// Packet-ins per latency sample.
const LATENCY_SAMPLE: u64 = 16;

/// One path's flows: `src` to `dst`, the switches it crosses.
#[derive(Debug, Clone)]
struct PathRec {
    src: MacAddr,
    dst: MacAddr,
    hops: SmallVec<[Hop; 8]>,
    /// The encoded FLOW_MOD of each hop, in `hops` order. A path's flows
    /// never change while it exists, and a pair is set up again each time
    /// its flows idle out: encoding them once at registration takes the
    /// building and encoding of FLOW_MODs off every later setup. One
    /// allocation per new path, none per setup.
    flows: Vec<u8>,
}

/// Encoded size of a `path_flow`: header 8, fixed part 40, match with
/// eth_src and eth_dst 24, apply-actions with one output 24.
const PATH_FLOW_LEN: usize = 96;

#[derive(Debug, Default)]
struct PathTable {
    next_id: u64,
    by_id: HashMap<u64, PathRec>,
    by_pair: HashMap<(MacAddr, MacAddr), u64>,
}

/// A packet waiting for its path's barriers.
#[derive(Debug)]
struct Setup {
    generation: u8,
    remaining: u32,
    ingress: Arc<Switch>,
    /// The PACKET_IN's frame; `data` is a zero-copy slice of it.
    data: Bytes,
    in_port: u32,
    out_port: u32,
    created: Instant,
}

#[derive(Debug, Default)]
struct Setups {
    slab: Slab<Setup>,
    generation: u8,
}

#[derive(Debug)]
struct FloodFilter {
    slots: [(u64, Option<Instant>); FLOOD_FILTER_SLOTS],
    next: usize,
}

impl Default for FloodFilter {
    fn default() -> Self {
        FloodFilter {
            slots: [(0, None); FLOOD_FILTER_SLOTS],
            next: 0,
        }
    }
}

impl FloodFilter {
    /// Records `hash`; true if it was already flooded within the window.
    fn seen(&mut self, hash: u64, now: Instant) -> bool {
        let dup = self.slots.iter().any(|(h, t)| {
            *h == hash && t.is_some_and(|t| now.saturating_duration_since(t) < FLOOD_WINDOW)
        });
        if !dup {
            if let Some(slot) = self.slots.get_mut(self.next) {
                *slot = (hash, Some(now));
            }
            self.next = (self.next + 1) % FLOOD_FILTER_SLOTS;
        }
        dup
    }
}

/// Forwarding state: installed paths, setups in flight, the flood filter.
#[derive(Debug, Default)]
pub struct Forwarding {
    paths: Mutex<PathTable>,
    setups: Mutex<Setups>,
    floods: Mutex<FloodFilter>,
}

/// The fields of a frame forwarding needs, read with etherparse.
struct Frame {
    src: MacAddr,
    dst: MacAddr,
    ether_type: EtherType,
    sender_ip: Option<IpAddr>,
}

fn parse_frame(data: &[u8]) -> Option<Frame> {
    let eth = Ethernet2Slice::from_slice_without_fcs(data).ok()?;
    let ether_type = eth.ether_type();
    let payload = eth.payload_slice();
    let sender_ip = match ether_type {
        EtherType::ARP => ArpPacketSlice::from_slice(payload)
            .ok()
            .and_then(|a| <[u8; 4]>::try_from(a.sender_protocol_addr()).ok())
            .map(IpAddr::from),
        EtherType::IPV4 => Ipv4HeaderSlice::from_slice(payload)
            .ok()
            .map(|h| IpAddr::V4(h.source_addr())),
        _ => None,
    };
    Some(Frame {
        src: MacAddr(eth.source()),
        dst: MacAddr(eth.destination()),
        ether_type,
        sender_ip,
    })
}

fn is_group(mac: &MacAddr) -> bool {
    mac.0[0] & 1 != 0
}

impl ControlPlane {
    /// Entry point for every PACKET_IN (called from the switch's task).
    /// One packet-in in `LATENCY_SAMPLE` is timed into the latency
    /// histogram: two clock reads and a histogram shared by every switch
    /// task on each packet-in cost a tenth of setup throughput (perf).
    pub fn packet_in(self: &Arc<Self>, sw: &Arc<Switch>, frame: &Bytes, pi: &PacketIn<'_>) {
        if self
            .stats
            .packet_ins
            .inc_get()
            .is_multiple_of(LATENCY_SAMPLE)
        {
            let t0 = Instant::now();
            self.handle_packet_in(sw, frame, pi);
            self.stats.packet_in_latency.observe(t0.elapsed());
        } else {
            self.handle_packet_in(sw, frame, pi);
        }
    }

    fn handle_packet_in(self: &Arc<Self>, sw: &Arc<Switch>, frame: &Bytes, pi: &PacketIn<'_>) {
        let Some(in_port) = pi.match_.in_port() else {
            return;
        };
        let Some(f) = parse_frame(&pi.data) else {
            return;
        };
        if f.ether_type.0 == crate::lldp::ETH_TYPE_LLDP {
            self.lldp_in(sw, in_port, &pi.data);
            return;
        }
        let now = Instant::now();
        let here: PortRef = (sw.dpid, in_port);
        let mut topo = self.topology.lock();
        let on_link = topo.is_link_port(here);
        let mut moved = false;
        if !on_link && !is_group(&f.src) {
            moved = topo.learn_host(f.src, here, f.sender_ip, now).is_some();
        }
        let dst_at = if is_group(&f.dst) {
            None
        } else {
            topo.host(&f.dst).map(|h| h.at)
        };
        let Some(dst_at) = dst_at else {
            drop(topo);
            if moved {
                self.forwarding.host_gone(self, f.src);
            }
            // A broadcast arriving over a link is a copy in transit: floods
            // are delivered to edge ports only.
            if !on_link {
                self.flood(sw.dpid, in_port, &pi.data, now);
            }
            return;
        };
        // Only a CRM with tiers and services makes IPv4 session traffic; the
        // check keeps plain forwarding from dropping and retaking the lock.
        if f.ether_type == EtherType::IPV4 && self.sessions_wanted() {
            drop(topo);
            if self.session_packet_in(
                sw,
                frame,
                &pi.data,
                in_port,
                (f.src, f.dst),
                on_link,
                Some(dst_at),
            ) {
                if moved {
                    self.forwarding.host_gone(self, f.src);
                }
                return;
            }
            topo = self.topology.lock();
        }
        if on_link {
            // A packet in transit on a path we installed: OVS revalidates its
            // datapath flow cache asynchronously, so a packet released just
            // after the barriers can still miss at a downstream switch. Send
            // it along the existing path; re-routing from here would replace
            // the pair's whole path with a truncated one.
            if let Some(out_port) = self.forwarding.hop_on_path((f.src, f.dst), sw.dpid) {
                drop(topo);
                self.packet_out(sw, in_port, out_port, &pi.data);
                self.stats.transit_forwarded.inc();
                return;
            }
        }
        let src_at = if on_link {
            topo.host(&f.src).map(|h| h.at)
        } else {
            Some(here)
        };
        let fwd = topo.path(sw.dpid, dst_at.0);
        let rev = src_at.and_then(|s| topo.path(dst_at.0, s.0).map(|p| (s, p)));
        drop(topo);
        if moved {
            self.forwarding.host_gone(self, f.src);
        }
        let Some(fwd) = fwd else {
            debug!("no path {:x} -> {:x} for {}", sw.dpid, dst_at.0, f.dst);
            return;
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
        let data = slice_of(frame, &pi.data);
        self.forwarding
            .setup(self, sw, data, in_port, (f.src, f.dst), fwd_hops, rev_hops);
    }

    /// Delivers `data` to every edge port of every switch except where it
    /// came from.
    pub(crate) fn flood(&self, in_dpid: u64, in_port: u32, data: &[u8], now: Instant) {
        let hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            data.hash(&mut h);
            h.finish()
        };
        if self.forwarding.floods.lock().seen(hash, now) {
            self.stats.floods_suppressed.inc();
            return;
        }
        self.stats.floods.inc();
        for sw in self.switches() {
            let link_ports: SmallVec<[u32; 16]> =
                self.topology.lock().link_ports(sw.dpid).collect();
            let actions: openflow::Actions<'_> = sw
                .info
                .read()
                .ports
                .values()
                .map(|p| p.port_no.value())
                .filter(|&p| p < PortNo::Max.value() && !link_ports.contains(&p))
                .filter(|&p| !(sw.dpid == in_dpid && p == in_port))
                .map(Action::output)
                .collect();
            if actions.is_empty() {
                continue;
            }
            let in_port = if sw.dpid == in_dpid {
                PortNo::from(in_port)
            } else {
                PortNo::Controller
            };
            let out = PacketOut {
                buffer_id: openflow::NO_BUFFER,
                in_port,
                actions,
                data: data.into(),
            };
            sw.send_xid(0, &Message::PacketOut(out));
        }
    }

    /// A barrier of a path setup came back.
    pub fn setup_barrier(&self, _sw: &Switch, xid: u32) {
        if let Some(s) = self.forwarding.barrier_done(xid) {
            self.release(s);
        }
    }

    fn release(&self, s: Setup) {
        self.packet_out(&s.ingress, s.in_port, s.out_port, &s.data);
        self.stats.setups_completed.inc();
    }

    /// Sends `data` out of one port of `sw`, as if it came in on `in_port`.
    pub(crate) fn packet_out(&self, sw: &Switch, in_port: u32, out_port: u32, data: &[u8]) {
        let out = PacketOut {
            buffer_id: openflow::NO_BUFFER,
            in_port: PortNo::from(in_port),
            actions: [Action::output(out_port)].into_iter().collect(),
            data: Cow::Borrowed(data),
        };
        sw.send_xid(0, &Message::PacketOut(out));
    }
}

/// The packet as an owned `Bytes`: zero-copy when it lies inside the
/// received `frame` (a decoded PACKET_IN borrows from it), else a copy.
pub(crate) fn slice_of(frame: &Bytes, data: &[u8]) -> Bytes {
    let r = frame.as_ptr_range();
    if r.contains(&data.as_ptr()) && data.as_ptr_range().end <= r.end {
        frame.slice_ref(data)
    } else {
        Bytes::copy_from_slice(data)
    }
}

fn path_flow(
    cookie: u64,
    src: MacAddr,
    dst: MacAddr,
    out_port: u32,
    idle: u16,
) -> FlowMod<'static> {
    FlowMod {
        cookie,
        priority: PRIO_PATH,
        idle_timeout: idle,
        match_: Match::new()
            .with(Oxm::EthSrc(src, None))
            .with(Oxm::EthDst(dst, None)),
        instructions: [Instruction::ApplyActions {
            actions: [Action::output(out_port)].into_iter().collect(),
        }]
        .into_iter()
        .collect(),
        ..FlowMod::default()
    }
}

/// Points a `path_flow` at another output port.
fn set_output(flow: &mut FlowMod<'_>, port: u32) {
    if let Some(Instruction::ApplyActions { actions }) = flow.instructions.first_mut()
        && let Some(Action::Output { port: p, .. }) = actions.first_mut()
    {
        *p = PortNo::from(port);
    }
}

impl Forwarding {
    /// Registers the path of a pair, returning its id; when the pair had a
    /// different path, the old flows are deleted first.
    fn register(
        t: &mut PathTable,
        ctl: &ControlPlane,
        pair: (MacAddr, MacAddr),
        hops: &[Hop],
        idle: u16,
    ) -> u64 {
        if let Some(&id) = t.by_pair.get(&pair) {
            match t.by_id.get(&id) {
                Some(rec) if rec.hops.as_slice() == hops => return id,
                Some(rec) => {
                    let old = rec.clone();
                    delete_flows(ctl, id, &old);
                }
                None => {}
            }
            t.by_id.remove(&id);
        }
        t.next_id = t.next_id.wrapping_add(1) & 0xff_ffff_ffff;
        let id = t.next_id;
        t.by_pair.insert(pair, id);
        let mut flow = path_flow(cookie::cookie(Kind::Path, id), pair.0, pair.1, 0, idle);
        let mut flows = Vec::with_capacity(hops.len() * PATH_FLOW_LEN);
        for h in hops {
            set_output(&mut flow, h.out_port);
            // Cannot fail: a path flow is 96 bytes.
            let _ = openflow::encode(0, &flow, &mut flows);
        }
        t.by_id.insert(
            id,
            PathRec {
                src: pair.0,
                dst: pair.1,
                hops: hops.iter().copied().collect(),
                flows,
            },
        );
        id
    }

    /// The encoded flows of path `id` on switch `dpid`.
    fn flows_on<'t>(t: &'t PathTable, id: u64, dpid: u64) -> impl Iterator<Item = &'t [u8]> + 't {
        t.by_id.get(&id).into_iter().flat_map(move |rec| {
            rec.hops
                .iter()
                .zip(rec.flows.chunks(PATH_FLOW_LEN))
                .filter(move |(h, _)| h.dpid == dpid)
                .map(|(_, f)| f)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn setup(
        &self,
        ctl: &ControlPlane,
        ingress: &Arc<Switch>,
        data: Bytes,
        in_port: u32,
        (src, dst): (MacAddr, MacAddr),
        fwd: SmallVec<[Hop; 8]>,
        rev: Option<SmallVec<[Hop; 8]>>,
    ) {
        let idle = ctl.timers().flow_idle_timeout;
        // Held across the batches below: lock order is paths, then a
        // switch's output buffer (as in `register`'s deletes), never reverse.
        let mut table = self.paths.lock();
        let fwd_id = Self::register(&mut table, ctl, (src, dst), &fwd, idle);
        let rev_id = rev
            .as_ref()
            .map(|r| Self::register(&mut table, ctl, (dst, src), r, idle));
        let Some(first) = fwd.first().copied() else {
            return;
        };

        // Egress first: walk the forward path backwards; reverse-direction
        // flows ride along in the batch of the switch they belong to.
        let mut switches: SmallVec<[u64; 8]> = fwd.iter().rev().map(|h| h.dpid).collect();
        for h in rev.iter().flatten() {
            if !switches.contains(&h.dpid) {
                switches.push(h.dpid);
            }
        }
        let Some((slot, xid)) =
            self.begin_setup(ctl, ingress.clone(), data, in_port, first.out_port)
        else {
            return;
        };
        let mut sent = 0u32;
        let mut flow_mods = 0u64;
        for dpid in switches {
            let Some(sw) = ctl.switch(dpid) else { continue };
            let queued = sw.batch(|b| {
                for f in Self::flows_on(&table, fwd_id, dpid).chain(
                    rev_id
                        .into_iter()
                        .flat_map(|id| Self::flows_on(&table, id, dpid)),
                ) {
                    b.push_raw(f);
                    flow_mods += 1;
                }
                b.push(xid, &Message::BarrierRequest)
            });
            sent += u32::from(queued);
        }
        drop(table);
        ctl.stats.flow_mods_sent.add(flow_mods);
        self.arm_setup(ctl, slot, sent);
    }

    /// Parks a packet until the barriers of a setup come back; returns the
    /// slot and the xid those barriers must carry. The packet is released
    /// by PACKET_OUT on `release_sw`, in on `in_port`, out of `out_port`.
    pub(crate) fn begin_setup(
        &self,
        ctl: &ControlPlane,
        release_sw: Arc<Switch>,
        data: Bytes,
        in_port: u32,
        out_port: u32,
    ) -> Option<(usize, u32)> {
        let (slot, generation) = {
            let mut s = self.setups.lock();
            s.generation = s.generation.wrapping_add(1) & 0x7f;
            let generation = s.generation;
            let slot = s.slab.insert(Setup {
                generation,
                remaining: 0,
                ingress: release_sw,
                data,
                in_port,
                out_port,
                created: Instant::now(),
            });
            (slot, generation)
        };
        if slot > 0xff_ffff {
            // More than 16M setups in flight: refuse rather than alias xids.
            self.setups.lock().slab.try_remove(slot);
            ctl.stats.setups_abandoned.inc();
            return None;
        }
        Some((
            slot,
            SETUP_XID_BIT | (u32::from(generation) << 24) | slot as u32,
        ))
    }

    /// `sent` barriers carrying the setup's xid are on their way: release
    /// the packet when the last one is back (maybe already).
    pub(crate) fn arm_setup(&self, ctl: &ControlPlane, slot: usize, sent: u32) {
        let ready = {
            let mut s = self.setups.lock();
            match s.slab.get_mut(slot) {
                // Barrier replies may already have arrived (they decrement
                // below zero in wrapping arithmetic): settle the count now.
                Some(setup) => {
                    setup.remaining = setup.remaining.wrapping_add(sent);
                    (setup.remaining == 0).then(|| s.slab.remove(slot))
                }
                None => None,
            }
        };
        if let Some(s) = ready {
            ctl.release(s);
        }
    }

    fn barrier_done(&self, xid: u32) -> Option<Setup> {
        let slot = (xid & 0xff_ffff) as usize;
        let generation = ((xid >> 24) & 0x7f) as u8;
        let mut s = self.setups.lock();
        let setup = s
            .slab
            .get_mut(slot)
            .filter(|x| x.generation == generation)?;
        setup.remaining = setup.remaining.wrapping_sub(1);
        (setup.remaining == 0).then(|| s.slab.remove(slot))
    }

    /// Drops setups whose barriers never came back.
    pub fn sweep(&self, ctl: &ControlPlane) {
        let timeout = crate::config::Timers::secs(ctl.timers().request_timeout);
        let mut s = self.setups.lock();
        let before = s.slab.len();
        s.slab.retain(|_, x| x.created.elapsed() < timeout);
        ctl.stats
            .setups_abandoned
            .add((before - s.slab.len()) as u64);
    }

    /// Deletes the paths a topology change broke.
    pub fn topology_changed(&self, ctl: &ControlPlane, change: &Change) {
        let broken: Vec<PortRef> = change
            .links_removed
            .iter()
            .flat_map(|(a, b)| [*a, *b])
            .collect();
        if !broken.is_empty() {
            self.remove_paths(ctl, |r| {
                r.hops
                    .iter()
                    .any(|h| broken.contains(&(h.dpid, h.out_port)))
            });
        }
        for mac in &change.hosts_removed {
            self.host_gone(ctl, *mac);
        }
    }

    /// Deletes every path to or from a host that moved or went away.
    pub fn host_gone(&self, ctl: &ControlPlane, mac: MacAddr) {
        self.remove_paths(ctl, |r| r.src == mac || r.dst == mac);
    }

    pub fn switch_gone(&self, ctl: &ControlPlane, dpid: u64) {
        self.remove_paths(ctl, |r| r.hops.iter().any(|h| h.dpid == dpid));
    }

    fn remove_paths(&self, ctl: &ControlPlane, doomed: impl Fn(&PathRec) -> bool) {
        let removed: Vec<(u64, PathRec)> = {
            let mut t = self.paths.lock();
            let ids: Vec<u64> = t
                .by_id
                .iter()
                .filter(|(_, r)| doomed(r))
                .map(|(id, _)| *id)
                .collect();
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(r) = t.by_id.remove(&id) {
                    t.by_pair.remove(&(r.src, r.dst));
                    out.push((id, r));
                }
            }
            out
        };
        for (id, r) in &removed {
            delete_flows(ctl, *id, r);
        }
        if !removed.is_empty() {
            debug!("removed {} paths", removed.len());
        }
    }

    /// Where the installed path of `pair` leaves switch `dpid`, if it
    /// crosses it.
    fn hop_on_path(&self, pair: (MacAddr, MacAddr), dpid: u64) -> Option<u32> {
        let t = self.paths.lock();
        let rec = t.by_pair.get(&pair).and_then(|id| t.by_id.get(id))?;
        rec.hops.iter().find(|h| h.dpid == dpid).map(|h| h.out_port)
    }
}

fn delete_flows(ctl: &ControlPlane, id: u64, r: &PathRec) {
    let del = cookie::delete(cookie::cookie(Kind::Path, id), cookie::EXACT);
    for h in &r.hops {
        if let Some(sw) = ctl.switch(h.dpid) {
            sw.send(&del);
        }
    }
}
