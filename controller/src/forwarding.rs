//! Plain connectivity: shortest-path flows between pairs of hosts, and
//! floods.
//!
//! A path is between two Ethernet addresses in a VLAN (bridged), or
//! between two IPv4 hosts in different subnets (routed: the routing
//! module decides it, this table keeps it). Where no VLAN is configured a
//! path's flows are plain (they match the address pair only); otherwise
//! they are carried ([`CarriedPath`]): each also matches its ingress port
//! and the VLAN tag frames arrive with, and retags (and, at a routing hop,
//! rewrites) before it outputs.
//!
//! Path setup installs a flow per direction on every switch of the
//! shortest path, egress switch first, each switch's flows followed by a
//! barrier; the packet is released when every barrier has come back (the
//! plan says so, the installer does it). Flows carry a per-path cookie, so
//! the paths that cross a failed link are deleted precisely and re-routed
//! on the next packet. A path's flows are encoded once, when the path is
//! registered, and re-sent as shared bytes on every later setup of the
//! pair: no FLOW_MOD is built or encoded on the hot path.
//!
//! Flooding delivers a copy straight to every edge port (a port with no
//! switch-to-switch link) of every switch, from the controller: floods
//! never travel over inter-switch links, so topologies with loops cannot
//! storm. Until LLDP has found the links a port may look like an edge
//! port; a short filter of recently flooded frames drops copies that come
//! back during that window.
//!
//! Owns the path table and the flood filter. Decides; never sends: plans
//! go to the [`Execute`] it is given, while the path table's lock is held,
//! so a path's deletion and its re-installation reach the switches in the
//! order they were decided.

use crate::messages::{self, PATH_FLOW_LEN};
use crate::plan::{Execute, Plan, Release};
use crate::topology::{Change, Hop, PortRef, Topology};
use crate::vlan::{HopCarry, Tag, Vid};
use bytes::Bytes;
use openflow::{MacAddr, Message, PortNo};
use parking_lot::Mutex;
use smallvec::SmallVec;
use std::net::Ipv4Addr;
// ahash: keys come off the wire (MACs), so a DoS-resistant hash, but
// several times cheaper than std's SipHash on this hot path.
use ahash::AHashMap as HashMap;
use std::time::{Duration, Instant};

/// A flooded frame seen again within this window is a copy, not a retry
/// (ARP retries are a second apart).
const FLOOD_WINDOW: Duration = Duration::from_millis(300);
const FLOOD_FILTER_SLOTS: usize = 256;

/// What a path is between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKey {
    /// Frames from one Ethernet address to another, in a VLAN (VLAN 1
    /// where none is configured).
    L2 {
        vlan: Vid,
        src: MacAddr,
        dst: MacAddr,
    },
    /// IPv4 from one host to another in another subnet: routed.
    L3 { src: Ipv4Addr, dst: Ipv4Addr },
}

/// Two `u64`s written for a bridged pair, one for a routed one (the
/// derived impl writes a tag, the VLAN and each address's length and
/// bytes): every setup looks both of its pairs up.
impl std::hash::Hash for PathKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            PathKey::L2 { vlan, src, dst } => {
                state.write_u64((u64::from(*vlan) << 48) | src.to_u64());
                state.write_u64(dst.to_u64());
            }
            PathKey::L3 { src, dst } => {
                state.write_u64(
                    (1 << 63) | (u64::from(src.to_bits()) << 32) | u64::from(dst.to_bits()),
                );
            }
        }
    }
}

impl PathKey {
    /// The plain (VLAN 1) path of an address pair.
    pub fn plain(src: MacAddr, dst: MacAddr) -> PathKey {
        PathKey::L2 {
            vlan: crate::topology::VLAN1,
            src,
            dst,
        }
    }
}

/// A carried path as its decider gives it: its key, the hosts at its
/// ends (a host that goes takes the path with it), the VLANs of its ends,
/// and per switch where it leaves and how it carries the frame there.
#[derive(Debug, Clone, Copy)]
pub struct CarriedPath<'a> {
    pub key: PathKey,
    pub ends: (MacAddr, MacAddr),
    pub vlans: (Vid, Vid),
    pub hops: &'a [(Hop, HopCarry)],
}

/// One path's flows: `src` to `dst`, the switches it crosses.
#[derive(Debug, Clone)]
struct PathRec {
    /// Its flows' cookie.
    id: u64,
    /// The hosts at its ends.
    src: MacAddr,
    dst: MacAddr,
    hops: SmallVec<[Hop; 8]>,
    /// The encoded FLOW_MOD of each hop, in `hops` order (plain ones
    /// `PATH_FLOW_LEN` bytes each). A path's flows never change while it
    /// exists, and a pair is set up again each time its flows idle out:
    /// one allocation per new path, none per setup.
    flows: Bytes,
    /// Carried flows (they match VLANs): the VLANs of its two ends.
    carried: Option<(Vid, Vid)>,
    /// How each hop of a carried path carries its frames (what its flows
    /// were encoded from, so a setup of the same path encodes nothing).
    carries: Option<Box<[HopCarry]>>,
    /// When its flows were last set up.
    used: Instant,
}

impl PathRec {
    /// The encoded flow of hop `i`.
    fn flow(&self, i: usize) -> Option<Bytes> {
        if self.carried.is_none() {
            return self
                .flows
                .get(i * PATH_FLOW_LEN..(i + 1) * PATH_FLOW_LEN)
                .map(|_| self.flows.slice(i * PATH_FLOW_LEN..(i + 1) * PATH_FLOW_LEN));
        }
        // Carried flows differ in length: walk the messages' headers.
        let mut at = 0;
        for _ in 0..i {
            at += usize::from(openflow::Header::peek(self.flows.get(at..)?)?.length);
        }
        let len = usize::from(openflow::Header::peek(self.flows.get(at..)?)?.length);
        (at + len <= self.flows.len()).then(|| self.flows.slice(at..at + len))
    }

    /// The encoded flows of this path on switch `dpid`.
    fn flows_on(&self, dpid: u64) -> impl Iterator<Item = Bytes> + '_ {
        self.hops
            .iter()
            .enumerate()
            .filter(move |(_, h)| h.dpid == dpid)
            .filter_map(|(i, _)| self.flow(i))
    }
}

#[derive(Debug, Default)]
struct PathTable {
    next_id: u64,
    /// By pair: the one lookup a setup makes per direction. (A path's id,
    /// its flows' cookie, is only ever reached through its pair.)
    by_pair: HashMap<PathKey, PathRec>,
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
    /// Whether `hash` was flooded within the window (nothing recorded).
    fn recent(&self, hash: u64, now: Instant) -> bool {
        self.slots.iter().any(|(h, t)| {
            *h == hash && t.is_some_and(|t| now.saturating_duration_since(t) < FLOOD_WINDOW)
        })
    }

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

/// What a flood did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flooded {
    Sent,
    /// The same frame was flooded a moment ago: a copy coming back.
    Suppressed,
}

/// Forwarding state: installed paths and the flood filter.
#[derive(Debug)]
pub struct Forwarding {
    paths: Mutex<PathTable>,
    floods: Mutex<FloodFilter>,
    idle_timeout: u16,
    /// Paths remembered at most.
    cap: usize,
}

/// What a setup did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Installed,
    /// The path table is full: the packet went out alone.
    Refused,
}

impl Forwarding {
    /// Path flows idle out after `idle_timeout` seconds.
    pub fn new(idle_timeout: u16) -> Self {
        Forwarding::with_cap(idle_timeout, usize::MAX)
    }

    /// At most `cap` paths remembered.
    pub fn with_cap(idle_timeout: u16, cap: usize) -> Self {
        Forwarding {
            paths: Mutex::new(PathTable::default()),
            floods: Mutex::new(FloodFilter::default()),
            idle_timeout,
            cap,
        }
    }

    /// Installs the flows of both directions of a pair (`fwd` from the
    /// packet's switch to the destination's port, `rev` back to the
    /// source's, when known) and releases the packet once every switch
    /// confirmed. Egress first: the forward path is walked backwards, and
    /// each switch's reverse flow rides in its batch.
    pub fn setup(
        &self,
        exec: &dyn Execute,
        (src, dst): (MacAddr, MacAddr),
        fwd: &[Hop],
        rev: Option<&[Hop]>,
        release: Release,
        now: Instant,
    ) -> Setup {
        let mut plan = Plan::new();
        plan.made_at(now);
        // Held until the plan is queued: a concurrent deletion of these
        // paths must reach the switches after this setup, not before.
        let mut t = self.paths.lock();
        // Whether the pairs are new only matters near the bound: far from
        // it (always, unbounded) the two lookups are not made.
        if t.by_pair.len().saturating_add(2) > self.cap {
            let (kf, kr) = (PathKey::plain(src, dst), PathKey::plain(dst, src));
            let new = usize::from(!t.by_pair.contains_key(&kf))
                + usize::from(rev.is_some() && !t.by_pair.contains_key(&kr));
            if t.by_pair.len() + new > self.cap {
                drop(t);
                return refused(exec, release);
            }
        }
        let mut fwd_flows = Some(self.register(&mut t, &mut plan, (src, dst), fwd, now));
        let mut rev_flows = rev.map(|r| self.register(&mut t, &mut plan, (dst, src), r, now));
        let mut switches: SmallVec<[u64; 8]> = fwd.iter().rev().map(|h| h.dpid).collect();
        for h in rev.into_iter().flatten() {
            if !switches.contains(&h.dpid) {
                switches.push(h.dpid);
            }
        }
        for dpid in switches {
            push_flows_on(&mut plan, dpid, fwd, &mut fwd_flows);
            if let Some(r) = rev {
                push_flows_on(&mut plan, dpid, r, &mut rev_flows);
            }
            plan.gate(dpid);
        }
        plan.release(release);
        exec.execute(&mut plan);
        Setup::Installed
    }

    /// Registers the path of a pair, returning its encoded flows (one per
    /// hop, in order); when the pair had a different path, the old flows'
    /// deletion goes into `plan` first.
    fn register(
        &self,
        t: &mut PathTable,
        plan: &mut Plan,
        pair: (MacAddr, MacAddr),
        hops: &[Hop],
        now: Instant,
    ) -> Bytes {
        let key = PathKey::plain(pair.0, pair.1);
        match t.by_pair.get_mut(&key) {
            Some(rec) if rec.hops.as_slice() == hops && rec.carried.is_none() => {
                rec.used = now;
                return rec.flows.clone();
            }
            // Replaced by the insertion below.
            Some(rec) => delete_flows(plan, rec),
            None => {}
        }
        t.next_id = t.next_id.wrapping_add(1) & 0xff_ffff_ffff;
        let id = t.next_id;
        let mut flows = Vec::with_capacity(hops.len() * PATH_FLOW_LEN);
        for h in hops {
            let f = messages::path_flow(id, pair.0, pair.1, h.out_port, self.idle_timeout);
            // Cannot fail: a path flow is 96 bytes.
            let _ = openflow::encode(0, &f, &mut flows);
        }
        let flows = Bytes::from(flows);
        t.by_pair.insert(
            key,
            PathRec {
                id,
                src: pair.0,
                dst: pair.1,
                hops: hops.iter().copied().collect(),
                flows: flows.clone(),
                carried: None,
                carries: None,
                used: now,
            },
        );
        flows
    }

    /// Installs a carried path and its way back (when known), egress
    /// first, and releases the packet once every switch confirmed (the
    /// release should output to `TABLE`, so the first switch's new flow
    /// does to it what it does to the rest).
    pub fn setup_carried(
        &self,
        exec: &dyn Execute,
        fwd: &CarriedPath<'_>,
        rev: Option<&CarriedPath<'_>>,
        release: Release,
        now: Instant,
    ) -> Setup {
        let mut plan = Plan::new();
        let mut t = self.paths.lock();
        let new = usize::from(!t.by_pair.contains_key(&fwd.key))
            + usize::from(rev.is_some_and(|r| !t.by_pair.contains_key(&r.key)));
        if t.by_pair.len() + new > self.cap {
            drop(t);
            return refused(exec, release);
        }
        let fwd_id = self.register_carried(&mut t, &mut plan, fwd, now);
        let rev_id = rev.map(|r| self.register_carried(&mut t, &mut plan, r, now));
        let mut switches: SmallVec<[u64; 8]> = fwd.hops.iter().rev().map(|h| h.0.dpid).collect();
        for (h, _) in rev.into_iter().flat_map(|r| r.hops) {
            if !switches.contains(&h.dpid) {
                switches.push(h.dpid);
            }
        }
        for dpid in switches {
            for key in std::iter::once(fwd_id).chain(rev_id) {
                if let Some(rec) = t.by_pair.get(&key) {
                    for f in rec.flows_on(dpid) {
                        plan.push_shared(dpid, f);
                    }
                }
            }
            plan.gate(dpid);
        }
        plan.release(release);
        exec.execute(&mut plan);
        Setup::Installed
    }

    fn register_carried(
        &self,
        t: &mut PathTable,
        plan: &mut Plan,
        p: &CarriedPath<'_>,
        now: Instant,
    ) -> PathKey {
        let encode = |id: u64| {
            let mut flows = Vec::with_capacity(p.hops.len() * 160);
            for (h, c) in p.hops {
                let f = match p.key {
                    PathKey::L2 { src, dst, .. } => {
                        messages::vlan_path_flow(id, src, dst, c, h.out_port, self.idle_timeout)
                    }
                    PathKey::L3 { src, dst } => messages::routed_path_flow(
                        id,
                        (src, dst),
                        crate::vlan::ROUTER_MAC,
                        c,
                        h.out_port,
                        self.idle_timeout,
                    ),
                };
                // Cannot fail: a path flow is a few hundred bytes.
                let _ = openflow::encode(0, &f, &mut flows);
            }
            Bytes::from(flows)
        };
        {
            let same = |rec: &PathRec| {
                rec.hops.len() == p.hops.len()
                    && rec.hops.iter().zip(p.hops).all(|(a, (b, _))| a == b)
                    && rec
                        .carries
                        .as_deref()
                        .is_some_and(|c| c.iter().eq(p.hops.iter().map(|(_, c)| c)))
                    && (rec.src, rec.dst) == p.ends
            };
            match t.by_pair.get_mut(&p.key) {
                Some(rec) if same(rec) => {
                    rec.used = now;
                    return p.key;
                }
                // Replaced by the insertion below.
                Some(rec) => delete_flows(plan, rec),
                None => {}
            }
        }
        t.next_id = t.next_id.wrapping_add(1) & 0xff_ffff_ffff;
        let id = t.next_id;
        t.by_pair.insert(
            p.key,
            PathRec {
                id,
                src: p.ends.0,
                dst: p.ends.1,
                hops: p.hops.iter().map(|(h, _)| *h).collect(),
                flows: encode(id),
                carried: Some(p.vlans),
                carries: Some(p.hops.iter().map(|(_, c)| *c).collect()),
                used: now,
            },
        );
        p.key
    }

    /// A packet in transit on carried path `key` reached the controller
    /// at `dpid` (the datapath's cache lagging behind a fresh flow): the
    /// hop's flow goes in again and the packet is released through the
    /// table, so it is forwarded (and retagged) as the flow says. False
    /// if the path does not cross `dpid`.
    pub fn transit(&self, exec: &dyn Execute, key: PathKey, release: Release) -> bool {
        let t = self.paths.lock();
        let Some(rec) = t.by_pair.get(&key) else {
            return false;
        };
        let mut plan = Plan::new();
        for f in rec.flows_on(release.dpid) {
            plan.push_shared(release.dpid, f);
        }
        if plan.is_empty() {
            return false;
        }
        plan.gate(release.dpid);
        plan.release(Release {
            out_port: PortNo::Table.value(),
            ..release
        });
        exec.execute(&mut plan);
        true
    }

    /// Forgets the paths not set up for `idle` (their flows have idled
    /// out on the switches, or carry a long flow whose next miss sets it
    /// up again), deleting their flows.
    pub fn expire(&self, exec: &dyn Execute, idle: Duration, now: Instant) {
        self.remove_paths(exec, |r| now.saturating_duration_since(r.used) > idle);
    }

    /// Where the installed path of `pair` leaves switch `dpid`, if it
    /// crosses it.
    pub fn hop_on_path(&self, pair: (MacAddr, MacAddr), dpid: u64) -> Option<u32> {
        let t = self.paths.lock();
        let rec = t.by_pair.get(&PathKey::plain(pair.0, pair.1))?;
        rec.hops.iter().find(|h| h.dpid == dpid).map(|h| h.out_port)
    }

    /// Whether `data` is a copy of a frame flooded a moment ago.
    pub fn is_flood_copy(&self, data: &[u8], now: Instant) -> bool {
        self.floods.lock().recent(frame_hash(data), now)
    }

    /// Delivers `data` to every edge port of every switch except the one
    /// it came in on (`from`).
    pub fn flood(
        &self,
        exec: &dyn Execute,
        topo: &Topology,
        from: PortRef,
        data: &[u8],
        now: Instant,
    ) -> Flooded {
        if self.floods.lock().seen(frame_hash(data), now) {
            return Flooded::Suppressed;
        }
        let mut plan = Plan::new();
        let mut switches: SmallVec<[u64; 16]> = topo.switches().collect();
        switches.sort_unstable();
        for dpid in switches {
            let ports: SmallVec<[u32; 16]> = topo
                .edge_ports(dpid)
                .filter(|&p| (dpid, p) != from)
                .collect();
            if ports.is_empty() {
                continue;
            }
            let in_port = if dpid == from.0 {
                from.1
            } else {
                PortNo::Controller.value()
            };
            plan.push(
                dpid,
                &Message::PacketOut(messages::flood_out(in_port, ports, data)),
            );
        }
        exec.execute(&mut plan);
        Flooded::Sent
    }

    /// Deletes the paths a topology change broke, and those to and from
    /// hosts that went away.
    pub fn topology_changed(&self, exec: &dyn Execute, change: &Change) {
        let broken: Vec<PortRef> = change
            .links_removed
            .iter()
            .flat_map(|(a, b)| [*a, *b])
            .collect();
        if !broken.is_empty() {
            self.remove_paths(exec, |r| {
                r.hops
                    .iter()
                    .any(|h| broken.contains(&(h.dpid, h.out_port)))
            });
        }
        for mac in &change.hosts_removed {
            self.host_gone(exec, *mac);
        }
    }

    /// Deletes every path to or from a host that moved or went away.
    pub fn host_gone(&self, exec: &dyn Execute, mac: MacAddr) {
        self.remove_paths(exec, |r| r.src == mac || r.dst == mac);
    }

    /// Deletes the carried paths with an end in `vlan` (its gateways
    /// changed: what was routed may not be any more).
    pub fn vlan_changed(&self, exec: &dyn Execute, vlan: Vid) {
        self.remove_paths(exec, |r| {
            r.carried.is_some_and(|(a, b)| a == vlan || b == vlan)
        });
    }

    /// Deletes every path (VLANs were configured where none were, or the
    /// last one went: every flow's shape changes).
    pub fn clear(&self, exec: &dyn Execute) {
        self.remove_paths(exec, |_| true);
    }

    /// Delivers `data`, a frame of `vlan` that arrived tagged `arrive` at
    /// `from`, to every edge port of every switch carrying `vlan` except
    /// `from`: untagged where it is native, tagged where it is tagged.
    /// Floods never cross an inter-switch link.
    #[allow(clippy::too_many_arguments)]
    pub fn flood_vlan(
        &self,
        exec: &dyn Execute,
        topo: &Topology,
        plan_of: &crate::vlan::Plan,
        from: PortRef,
        (vlan, arrive): (Vid, Tag),
        data: &[u8],
        now: Instant,
    ) -> Flooded {
        if self.floods.lock().seen(frame_hash(data), now) {
            return Flooded::Suppressed;
        }
        let mut plan = Plan::new();
        let mut switches: SmallVec<[u64; 16]> = topo.switches().collect();
        switches.sort_unstable();
        for dpid in switches {
            let (untagged, tagged) = plan_of.split_ports(
                dpid,
                topo.edge_ports(dpid).filter(|&p| (dpid, p) != from),
                vlan,
            );
            if untagged.is_empty() && tagged.is_empty() {
                continue;
            }
            let in_port = if dpid == from.0 {
                from.1
            } else {
                PortNo::Controller.value()
            };
            plan.push(
                dpid,
                &Message::PacketOut(messages::vlan_flood_out(
                    in_port, arrive, vlan, &untagged, &tagged, data,
                )),
            );
        }
        exec.execute(&mut plan);
        Flooded::Sent
    }

    pub fn switch_gone(&self, exec: &dyn Execute, dpid: u64) {
        self.remove_paths(exec, |r| r.hops.iter().any(|h| h.dpid == dpid));
    }

    fn remove_paths(&self, exec: &dyn Execute, doomed: impl Fn(&PathRec) -> bool) {
        let mut t = self.paths.lock();
        let mut plan = Plan::new();
        let mut removed = 0usize;
        t.by_pair.retain(|_, r| {
            let gone = doomed(r);
            if gone {
                delete_flows(&mut plan, r);
                removed += 1;
            }
            !gone
        });
        if removed == 0 {
            return;
        }
        exec.execute(&mut plan);
        tracing::debug!("removed {removed} paths");
    }

    /// Installed paths now.
    pub fn path_count(&self) -> usize {
        self.paths.lock().by_pair.len()
    }
}

fn frame_hash(data: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

/// Puts the flows of plain path `hops` on switch `dpid` into `plan`:
/// `flows` holds them (as `register` returned them), `PATH_FLOW_LEN`
/// bytes each, in hop order. A one-hop path's flows are its one flow:
/// moved into the plan rather than shared once more (each share and drop
/// is an atomic count on the path's buffer, on every setup).
fn push_flows_on(plan: &mut Plan, dpid: u64, hops: &[Hop], flows: &mut Option<Bytes>) {
    for (i, h) in hops.iter().enumerate() {
        if h.dpid != dpid {
            continue;
        }
        let range = i * PATH_FLOW_LEN..(i + 1) * PATH_FLOW_LEN;
        let f = match flows {
            Some(all) if hops.len() == 1 && all.len() == PATH_FLOW_LEN => flows.take(),
            Some(all) => all.get(range.clone()).map(|_| all.slice(range)),
            None => None,
        };
        if let Some(f) = f {
            plan.push_shared(dpid, f);
        }
    }
}

fn delete_flows(plan: &mut Plan, r: &PathRec) {
    let del = messages::delete_path(r.id);
    for h in &r.hops {
        plan.push(h.dpid, &del);
    }
}

/// A setup the path table has no room for: the packet is forwarded, the
/// path not remembered, so the table's bound holds.
fn refused(exec: &dyn Execute, release: Release) -> Setup {
    let mut plan = Plan::new();
    plan.packet_out(release);
    exec.execute(&mut plan);
    Setup::Refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Recorder;

    fn mac(n: u8) -> MacAddr {
        MacAddr([0, 0, 0, 0, 0, n])
    }

    fn release() -> Release {
        Release {
            dpid: 1,
            in_port: 1,
            out_port: 10,
            data: Bytes::from_static(b"packet"),
        }
    }

    #[test]
    fn a_setup_goes_egress_first_with_a_barrier_per_switch_then_the_packet() {
        let f = Forwarding::new(60);
        let rec = Recorder::default();
        let fwd = [
            Hop {
                dpid: 1,
                out_port: 10,
            },
            Hop {
                dpid: 2,
                out_port: 3,
            },
        ];
        let rev = [
            Hop {
                dpid: 2,
                out_port: 11,
            },
            Hop {
                dpid: 1,
                out_port: 1,
            },
        ];
        f.setup(
            &rec,
            (mac(1), mac(2)),
            &fwd,
            Some(&rev),
            release(),
            Instant::now(),
        );
        let dump = rec.take();
        let shape: Vec<String> = dump
            .iter()
            .map(|l| {
                let (dpid, rest) = l.split_at(16);
                let what = if rest.contains("FLOW_MOD") {
                    let out = rest
                        .split("\"port\":")
                        .nth(1)
                        .and_then(|s| s.split(',').next());
                    format!("flow out {}", out.unwrap_or("?"))
                } else {
                    rest.trim().split(' ').next().unwrap_or("").to_string()
                };
                format!("{} {what}", dpid.trim_start_matches('0'))
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                "2 flow out 3",
                "2 flow out 11",
                "2 BARRIER",
                "1 flow out 10",
                "1 flow out 1",
                "1 BARRIER",
                "1 release",
            ],
            "{dump:#?}"
        );
        assert_eq!(f.hop_on_path((mac(1), mac(2)), 2), Some(3));
        // The same pair again re-sends the same flows; no deletion.
        f.setup(
            &rec,
            (mac(1), mac(2)),
            &fwd,
            Some(&rev),
            release(),
            Instant::now(),
        );
        assert!(!rec.take().iter().any(|l| l.contains("DELETE")));
    }

    #[test]
    fn a_broken_link_deletes_exactly_the_paths_across_it() {
        let f = Forwarding::new(60);
        let rec = Recorder::default();
        f.setup(
            &rec,
            (mac(1), mac(2)),
            &[
                Hop {
                    dpid: 1,
                    out_port: 10,
                },
                Hop {
                    dpid: 2,
                    out_port: 3,
                },
            ],
            None,
            release(),
            Instant::now(),
        );
        f.setup(
            &rec,
            (mac(3), mac(4)),
            &[Hop {
                dpid: 1,
                out_port: 5,
            }],
            None,
            release(),
            Instant::now(),
        );
        rec.take();
        let change = Change {
            links_removed: vec![((1, 10), (2, 11))],
            ..Change::default()
        };
        f.topology_changed(&rec, &change);
        let dump = rec.take();
        assert_eq!(dump.len(), 2, "{dump:#?}");
        assert!(
            dump.iter().all(|l| l.contains("\"command\":\"DELETE\"")),
            "{dump:#?}"
        );
        assert_eq!(f.path_count(), 1);
        assert_eq!(f.hop_on_path((mac(1), mac(2)), 1), None);
        f.host_gone(&rec, mac(4));
        assert_eq!(f.path_count(), 0);
    }

    #[test]
    fn paths_are_bounded_and_forgotten_when_idle() {
        let f = Forwarding::with_cap(60, 2);
        let rec = Recorder::default();
        let t0 = Instant::now();
        let hop = [Hop {
            dpid: 1,
            out_port: 2,
        }];
        assert_eq!(
            f.setup(&rec, (mac(1), mac(2)), &hop, Some(&hop), release(), t0),
            Setup::Installed
        );
        // Full: the packet goes out, nothing is remembered.
        assert_eq!(
            f.setup(&rec, (mac(3), mac(4)), &hop, None, release(), t0),
            Setup::Refused
        );
        assert_eq!(f.path_count(), 2);
        rec.take();
        // The first pair set up again later keeps its paths alive.
        let later = t0 + Duration::from_secs(50);
        f.setup(&rec, (mac(1), mac(2)), &hop, None, release(), later);
        f.expire(&rec, Duration::from_secs(30), later);
        assert_eq!(f.path_count(), 1, "the reverse path idled out");
        assert!(rec.take().iter().any(|l| l.contains("DELETE")));
        assert_eq!(f.hop_on_path((mac(1), mac(2)), 1), Some(2));
    }

    #[test]
    fn floods_reach_edge_ports_only_and_copies_are_suppressed() {
        let f = Forwarding::new(60);
        let rec = Recorder::default();
        let mut topo = Topology::default();
        let now = Instant::now();
        topo.link_seen((1, 10), (2, 11), now);
        topo.link_seen((2, 11), (1, 10), now);
        topo.set_ports(1, [1, 2, 10]);
        topo.set_ports(2, [1, 11]);
        assert_eq!(f.flood(&rec, &topo, (1, 1), b"arp", now), Flooded::Sent);
        let dump = rec.take();
        assert_eq!(dump.len(), 2, "{dump:#?}");
        assert!(
            dump[0].contains("\"in_port\":1")
                && dump[0].contains("{\"type\":\"OUTPUT\",\"port\":2")
        );
        assert!(
            !dump[0].contains("\"port\":10,"),
            "never over a link: {}",
            dump[0]
        );
        assert!(dump[1].starts_with("0000000000000002") && dump[1].contains("CONTROLLER"));
        assert_eq!(
            f.flood(&rec, &topo, (2, 1), b"arp", now),
            Flooded::Suppressed
        );
    }
}
