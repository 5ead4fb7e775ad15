//! What the controller knows of the network: the live ports of every
//! switch, links found by LLDP (they expire when probes stop arriving),
//! where hosts attach, per VLAN (learned from packet-ins on edge ports: a
//! host on a trunk is learnt once per VLAN it sends in), and
//! shortest paths between switches over a `petgraph` graph rebuilt when
//! links change. Updates return a [`Change`] for the caller to act on;
//! this module sends nothing and knows nothing of OpenFlow connections.

use openflow::MacAddr;
use petgraph::graphmap::DiGraphMap;
use smallvec::SmallVec;
// ahash: keys come off the wire (MACs), so a DoS-resistant hash, but
// several times cheaper than std's SipHash on this hot path.
use ahash::AHashMap as HashMap;
use ahash::AHashSet as HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One end of a link: (datapath id, port number).
pub type PortRef = (u64, u32);

/// A switch path: (dpid, port towards the next switch) per switch.
pub type SwitchPath = Arc<[(u64, u32)]>;

/// A hop of a path: leave switch `dpid` through `out_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hop {
    pub dpid: u64,
    pub out_port: u32,
}

/// A switch of a route between two ports: where the forward direction
/// enters it and where it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortHop {
    pub dpid: u64,
    pub in_port: u32,
    pub out_port: u32,
}

/// The switches from one port to another, first switch first.
pub type Route = SmallVec<[PortHop; 4]>;

/// Addresses remembered per host (the most recent).
const MAX_HOST_IPS: usize = 8;

/// The VLAN of everything learnt where no VLAN is configured.
pub const VLAN1: u16 = 1;

/// Where a host attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub mac: MacAddr,
    /// The VLAN it was learnt in.
    pub vlan: u16,
    pub at: PortRef,
    pub ips: Vec<IpAddr>,
    pub last_seen: Instant,
    /// The address this host last put in `Topology::by_ip`, with the
    /// topology's `ip_epoch` then: while the epoch has not moved, no entry
    /// was taken from one host by another since, so the entry still names
    /// this host and `learn` need not write it again.
    ip_claim: Option<(IpAddr, u64)>,
}

#[derive(Debug, Clone, Copy)]
struct LinkEnd {
    peer: PortRef,
    last_seen: Instant,
}

/// What `Topology::learn` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learnt {
    /// A new host its port (or the controller) has no room for.
    Refused,
    New,
    /// Known already; `moved_from` its previous port when it moved.
    Known {
        moved_from: Option<PortRef>,
    },
}

/// Ports, links, hosts and the switch graph.
#[derive(Debug)]
pub struct Topology {
    /// Live (up) ports of every connected switch, reserved ports excluded.
    ports: HashMap<u64, SmallVec<[u32; 8]>>,
    /// Directed: the probe left `key` and arrived at `peer`.
    links: HashMap<PortRef, LinkEnd>,
    /// By (VLAN, address).
    hosts: HashMap<(u16, MacAddr), Host>,
    /// Which host last sent from each address.
    by_ip: HashMap<IpAddr, (u16, MacAddr)>,
    /// Moves on whenever an entry of `by_ip` passes from one host to
    /// another (see `Host::ip_claim`).
    ip_epoch: u64,
    /// How many hosts live at each port.
    hosts_at: HashMap<PortRef, u32>,
    limits: HostLimits,
    /// Edge a -> b weighted with a's port towards b.
    graph: DiGraphMap<u64, u32>,
    /// Switch-to-switch paths, cleared whenever the graph changes.
    paths: HashMap<(u64, u64), Option<SwitchPath>>,
    /// The path from a switch to itself, shared so that looking it up (every
    /// single-switch setup) allocates nothing.
    here: SwitchPath,
    /// Both ends of every link, rebuilt with the graph: every packet-in asks
    /// whether it arrived on a link, and that must not scan the links.
    link_ends: HashSet<PortRef>,
    /// Valid probes held back because hosts were learnt at one of their
    /// ports, by (from, to): a link there needs the probes of both ways.
    held_probes: HashMap<(PortRef, PortRef), Instant>,
    /// Switches whose OpenFlow connection dropped: no path crosses them
    /// (nothing can be installed there), but their links stay links until
    /// their probes time out. A switch keeps forwarding with the flows it
    /// has (fail-secure) while its controller is away, and frames still
    /// in flight on those links are not hosts.
    down: HashSet<u64>,
}

/// How long a held-back probe waits for the other way's (a few probe
/// rounds).
const HELD_PROBE_WINDOW: Duration = Duration::from_secs(10);
/// Most held-back probes remembered (older ones are forgotten first).
const MAX_HELD_PROBES: usize = 4096;

impl Default for Topology {
    fn default() -> Self {
        Topology {
            ports: HashMap::default(),
            links: HashMap::default(),
            hosts: HashMap::default(),
            by_ip: HashMap::default(),
            ip_epoch: 0,
            hosts_at: HashMap::default(),
            limits: HostLimits::default(),
            graph: DiGraphMap::new(),
            paths: HashMap::default(),
            here: Arc::from([]),
            link_ends: HashSet::default(),
            held_probes: HashMap::default(),
            down: HashSet::default(),
        }
    }
}

/// Bounds on the hosts learnt, so a flood of frames from random addresses
/// costs its port, not the controller's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    /// Hosts learnt at one port at most.
    pub per_port: u32,
    /// Hosts learnt in all at most.
    pub total: usize,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            per_port: 256,
            total: 100_000,
        }
    }
}

/// What an update changed, for the caller to act on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub links_added: Vec<(PortRef, PortRef)>,
    pub links_removed: Vec<(PortRef, PortRef)>,
    pub hosts_removed: Vec<MacAddr>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.links_added.is_empty()
            && self.links_removed.is_empty()
            && self.hosts_removed.is_empty()
    }
}

impl Topology {
    pub fn with_limits(limits: HostLimits) -> Topology {
        Topology {
            limits,
            ..Topology::default()
        }
    }

    /// Whether `mac` at `at` may be learnt (in VLAN 1): known already, or
    /// room at its port and in all.
    pub fn can_learn(&self, mac: &MacAddr, at: PortRef) -> bool {
        self.can_learn_in(VLAN1, mac, at)
    }

    /// Whether `mac` at `at` may be learnt in `vlan`.
    pub fn can_learn_in(&self, vlan: u16, mac: &MacAddr, at: PortRef) -> bool {
        self.hosts.contains_key(&(vlan, *mac))
            || (self.hosts_at.get(&at).copied().unwrap_or(0) < self.limits.per_port
                && self.hosts.len() < self.limits.total)
    }

    /// Forgets hosts not heard from for `idle` (their paths go).
    pub fn expire_hosts(&mut self, now: Instant, idle: Duration) -> Change {
        let gone: Vec<(u16, MacAddr)> = self
            .hosts
            .values()
            .filter(|h| now.saturating_duration_since(h.last_seen) > idle)
            .map(|h| (h.vlan, h.mac))
            .collect();
        let mut change = Change::default();
        for key in gone {
            self.forget_host(&key);
            change.hosts_removed.push(key.1);
        }
        change
    }

    /// Forgets every host learnt at `port` (its VLANs changed: they are
    /// learnt again in their new VLAN by their next frame).
    pub fn forget_port(&mut self, port: PortRef) -> Change {
        let mut change = Change::default();
        self.remove_hosts_at(port, &mut change);
        change
    }

    /// Hosts learnt now.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// The live ports of a switch (its PORT_DESC): a switch that was down
    /// carries paths again.
    pub fn set_ports(&mut self, dpid: u64, ports: impl IntoIterator<Item = u32>) {
        let mut v: SmallVec<[u32; 8]> = ports.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        self.ports.insert(dpid, v);
        if self.down.remove(&dpid) {
            self.rebuild_graph();
        }
    }

    /// A port came up.
    pub fn port_up(&mut self, port: PortRef) {
        let v = self.ports.entry(port.0).or_default();
        if let Err(i) = v.binary_search(&port.1) {
            v.insert(i, port.1);
        }
    }

    /// The live ports of a switch.
    pub fn ports(&self, dpid: u64) -> &[u32] {
        self.ports.get(&dpid).map_or(&[], |v| v.as_slice())
    }

    /// Switches whose ports are known.
    pub fn switches(&self) -> impl Iterator<Item = u64> + '_ {
        self.ports.keys().copied()
    }

    /// The live ports of a switch that carry no link: where hosts live.
    pub fn edge_ports(&self, dpid: u64) -> impl Iterator<Item = u32> + '_ {
        self.ports(dpid)
            .iter()
            .copied()
            .filter(move |p| !self.link_ends.contains(&(dpid, *p)))
    }

    /// A valid probe from `from` arrived at `to`, where (or at `from`)
    /// hosts were learnt: whether the other way's probe arrived too within
    /// the last seconds. Hosts learnt at both ends of a real link are
    /// frames that crossed it before discovery finished; a host that sends
    /// probes back (its own port's, which is all it receives) never makes
    /// the other way, so it never turns its port into a link.
    pub fn confirmed_both_ways(&mut self, from: PortRef, to: PortRef, now: Instant) -> bool {
        if self
            .held_probes
            .get(&(to, from))
            .is_some_and(|t| now.saturating_duration_since(*t) <= HELD_PROBE_WINDOW)
        {
            self.held_probes.remove(&(to, from));
            return true;
        }
        if self.held_probes.len() >= MAX_HELD_PROBES {
            self.held_probes
                .retain(|_, t| now.saturating_duration_since(*t) <= HELD_PROBE_WINDOW);
        }
        if self.held_probes.len() < MAX_HELD_PROBES {
            self.held_probes.insert((from, to), now);
        }
        false
    }

    /// An LLDP probe sent from `from` arrived at `to`.
    pub fn link_seen(&mut self, from: PortRef, to: PortRef, now: Instant) -> Change {
        let mut change = Change::default();
        let prev = self.links.insert(
            from,
            LinkEnd {
                peer: to,
                last_seen: now,
            },
        );
        if prev.is_some_and(|p| p.peer == to) {
            return change;
        }
        if let Some(p) = prev {
            change.links_removed.push((from, p.peer));
        }
        change.links_added.push((from, to));
        // A port that carries a link has no hosts: anything learned there
        // (before discovery finished) was a copy in transit.
        for end in [from, to] {
            self.remove_hosts_at(end, &mut change);
        }
        self.rebuild_graph();
        change
    }

    /// Drops links whose probes stopped arriving.
    pub fn expire_links(&mut self, now: Instant, timeout: Duration) -> Change {
        let stale: Vec<PortRef> = self
            .links
            .iter()
            .filter(|(_, l)| now.saturating_duration_since(l.last_seen) > timeout)
            .map(|(k, _)| *k)
            .collect();
        self.remove_links(|from, _| stale.contains(&from))
    }

    /// Drops every link touching `port` (port down or deleted).
    pub fn port_down(&mut self, port: PortRef) -> Change {
        if let Some(v) = self.ports.get_mut(&port.0) {
            v.retain(|p| *p != port.1);
        }
        let mut change = self.remove_links(|from, to| from == port || to == port);
        self.remove_hosts_at(port, &mut change);
        change
    }

    /// A switch's connection dropped. Its ports and hosts are forgotten
    /// (its PORT_DESC and their next frames tell them again) and no path
    /// crosses it; its links stay until their probes time out
    /// ([`Topology::expire_links`]), so a switch that comes back within
    /// that time (a controller change, an echo timeout) costs the sessions
    /// crossing it nothing, and one that does not loses its links then.
    pub fn switch_down(&mut self, dpid: u64) -> Change {
        self.ports.remove(&dpid);
        let mut change = Change::default();
        let gone: Vec<(u16, MacAddr)> = self
            .hosts
            .values()
            .filter(|h| h.at.0 == dpid)
            .map(|h| (h.vlan, h.mac))
            .collect();
        for key in gone {
            self.forget_host(&key);
            change.hosts_removed.push(key.1);
        }
        self.down.insert(dpid);
        self.rebuild_graph();
        change
    }

    /// Whether a switch's connection is down (its links still known).
    pub fn is_down(&self, dpid: u64) -> bool {
        self.down.contains(&dpid)
    }

    fn remove_links(&mut self, mut doomed: impl FnMut(PortRef, PortRef) -> bool) -> Change {
        let mut change = Change::default();
        self.links.retain(|from, l| {
            let drop = doomed(*from, l.peer);
            if drop {
                change.links_removed.push((*from, l.peer));
            }
            !drop
        });
        if !change.links_removed.is_empty() {
            self.rebuild_graph();
        }
        change
    }

    fn remove_hosts_at(&mut self, at: PortRef, change: &mut Change) {
        let gone: Vec<(u16, MacAddr)> = self
            .hosts
            .values()
            .filter(|h| h.at == at)
            .map(|h| (h.vlan, h.mac))
            .collect();
        for key in gone {
            self.forget_host(&key);
            change.hosts_removed.push(key.1);
        }
    }

    fn forget_host(&mut self, key: &(u16, MacAddr)) {
        if let Some(h) = self.hosts.remove(key) {
            self.count_out(h.at);
            for ip in h.ips {
                if self.by_ip.get(&ip) == Some(key) {
                    self.by_ip.remove(&ip);
                }
            }
        }
    }

    fn rebuild_graph(&mut self) {
        let mut g = DiGraphMap::new();
        for (&(a, pa), l) in &self.links {
            let (b, pb) = l.peer;
            if self.down.contains(&a) || self.down.contains(&b) {
                continue;
            }
            // One direction seen is enough: the ports of both ends are known.
            g.add_edge(a, b, pa);
            g.add_edge(b, a, pb);
        }
        self.graph = g;
        self.paths.clear();
        self.link_ends = self
            .links
            .iter()
            .flat_map(|(from, l)| [*from, l.peer])
            .collect();
    }

    /// Whether `port` carries a link to another switch.
    pub fn is_link_port(&self, port: PortRef) -> bool {
        self.link_ends.contains(&port)
    }

    /// The far end of the link leaving `port`, if there is one.
    pub fn peer(&self, port: PortRef) -> Option<PortRef> {
        self.links.get(&port).map(|l| l.peer)
    }

    /// All link ports of a switch.
    pub fn link_ports(&self, dpid: u64) -> impl Iterator<Item = u32> + '_ {
        self.link_ends
            .iter()
            .filter(move |p| p.0 == dpid)
            .map(|p| p.1)
    }

    /// Learns (or refreshes) a host in VLAN 1. Returns the previous
    /// attachment when the host moved, so the caller can tear down paths
    /// towards the old place.
    pub fn learn_host(
        &mut self,
        mac: MacAddr,
        at: PortRef,
        ip: Option<IpAddr>,
        now: Instant,
    ) -> Option<PortRef> {
        self.learn_host_in(VLAN1, mac, at, ip, now)
    }

    /// Learns (or refreshes) a host in `vlan`; see `learn_host`.
    pub fn learn_host_in(
        &mut self,
        vlan: u16,
        mac: MacAddr,
        at: PortRef,
        ip: Option<IpAddr>,
        now: Instant,
    ) -> Option<PortRef> {
        let key = (vlan, mac);
        if let Some(ip) = ip {
            self.claim_ip(ip, key);
        }
        let moved_from = match self.hosts.get(&key) {
            Some(h) if h.at != at => Some(h.at),
            Some(_) => None,
            None => {
                *self.hosts_at.entry(at).or_default() += 1;
                None
            }
        };
        if let Some(old) = moved_from {
            self.count_out(old);
            *self.hosts_at.entry(at).or_default() += 1;
        }
        match self.hosts.get_mut(&key) {
            Some(h) => {
                h.last_seen = now;
                if let Some(ip) = ip.filter(|ip| !h.ips.contains(ip)) {
                    // Bounded: a host sending from ever new source addresses
                    // (spoofing, a load tool) must not grow this forever.
                    if h.ips.len() >= MAX_HOST_IPS {
                        let old = h.ips.remove(0);
                        if self.by_ip.get(&old) == Some(&key) {
                            self.by_ip.remove(&old);
                        }
                    }
                    h.ips.push(ip);
                }
                (h.at != at).then(|| std::mem::replace(&mut h.at, at))
            }
            None => {
                self.hosts.insert(
                    key,
                    Host {
                        mac,
                        vlan,
                        at,
                        ips: ip.into_iter().collect(),
                        last_seen: now,
                        ip_claim: None,
                    },
                );
                None
            }
        }
    }

    /// Learns (or refreshes) `mac` at `at` in `vlan`, unless the limits
    /// refuse a new host there: `can_learn_in`, `host_in` and
    /// `learn_host_in` in one, for the packet-in path, where a known host
    /// at its known port (nearly every packet) costs one lookup of the
    /// host table (and one of the address table when the frame carries
    /// the sender's address).
    pub fn learn(
        &mut self,
        vlan: u16,
        mac: MacAddr,
        at: PortRef,
        ip: Option<IpAddr>,
        now: Instant,
    ) -> Learnt {
        let key = (vlan, mac);
        let Some(h) = self.hosts.get_mut(&key) else {
            if !self.can_learn_in(vlan, &mac, at) {
                return Learnt::Refused;
            }
            self.learn_host_in(vlan, mac, at, ip, now);
            return Learnt::New;
        };
        if h.at != at {
            return Learnt::Known {
                moved_from: self.learn_host_in(vlan, mac, at, ip, now),
            };
        }
        h.last_seen = now;
        if let Some(ip) = ip {
            if !h.ips.contains(&ip) {
                return Learnt::Known {
                    moved_from: self.learn_host_in(vlan, mac, at, Some(ip), now),
                };
            }
            // Which host last sent from each address: written again only
            // if another host may have taken the address since.
            if h.ip_claim != Some((ip, self.ip_epoch)) {
                if let Some(old) = self.by_ip.insert(ip, key)
                    && old != key
                {
                    self.ip_epoch += 1;
                }
                h.ip_claim = Some((ip, self.ip_epoch));
            }
        }
        Learnt::Known { moved_from: None }
    }

    /// `ip` was last sent from by host `key`.
    fn claim_ip(&mut self, ip: IpAddr, key: (u16, MacAddr)) {
        if let Some(old) = self.by_ip.insert(ip, key)
            && old != key
        {
            self.ip_epoch += 1;
        }
    }

    /// A host of VLAN 1.
    pub fn host(&self, mac: &MacAddr) -> Option<&Host> {
        self.host_in(VLAN1, mac)
    }

    /// A host of `vlan`.
    pub fn host_in(&self, vlan: u16, mac: &MacAddr) -> Option<&Host> {
        self.hosts.get(&(vlan, *mac))
    }

    fn count_out(&mut self, at: PortRef) {
        if let Some(n) = self.hosts_at.get_mut(&at) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.hosts_at.remove(&at);
            }
        }
    }

    /// Whether hosts live at `port`.
    pub fn has_hosts_at(&self, port: PortRef) -> bool {
        self.hosts_at.get(&port).is_some_and(|n| *n > 0)
    }

    /// The host that last sent from `ip`.
    pub fn host_by_ip(&self, ip: IpAddr) -> Option<&Host> {
        self.by_ip.get(&ip).and_then(|m| self.hosts.get(m))
    }

    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.values()
    }

    /// Links as (from, to) pairs, one entry per direction seen.
    pub fn links(&self) -> impl Iterator<Item = (PortRef, PortRef)> + '_ {
        self.links.iter().map(|(k, l)| (*k, l.peer))
    }

    /// The shortest route from one port to another: each switch with the
    /// port the forward direction enters by and leaves by. None when
    /// unreachable.
    pub fn route(&mut self, from: PortRef, to: PortRef) -> Option<Route> {
        let path = self.path(from.0, to.0)?;
        let mut hops = Route::new();
        let mut in_port = from.1;
        for &(dpid, out_port) in path.iter() {
            hops.push(PortHop {
                dpid,
                in_port,
                out_port,
            });
            in_port = self.peer((dpid, out_port))?.1;
        }
        hops.push(PortHop {
            dpid: to.0,
            in_port,
            out_port: to.1,
        });
        Some(hops)
    }

    /// Shortest switch path from `src` to `dst` as (dpid, port towards the
    /// next switch); empty when src == dst; None when unreachable.
    pub fn path(&mut self, src: u64, dst: u64) -> Option<SwitchPath> {
        if src == dst {
            return Some(self.here.clone());
        }
        if let Some(p) = self.paths.get(&(src, dst)) {
            return p.clone();
        }
        let found = petgraph::algo::astar(&self.graph, src, |n| n == dst, |_| 1u32, |_| 0).map(
            |(_, nodes)| {
                nodes
                    .windows(2)
                    .filter_map(|w| match w {
                        [a, b] => self.graph.edge_weight(*a, *b).map(|p| (*a, *p)),
                        _ => None,
                    })
                    .collect::<Arc<[_]>>()
            },
        );
        self.paths.insert((src, dst), found.clone());
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(t: &mut Topology, now: Instant) {
        // 1 -2- 2 -3- 3 -4- 4 -1- 1 (ports: 10 towards next, 11 towards previous)
        for (a, b) in [(1, 2), (2, 3), (3, 4), (4, 1)] {
            t.link_seen((a, 10), (b, 11), now);
            t.link_seen((b, 11), (a, 10), now);
        }
    }

    #[test]
    fn an_address_names_the_host_that_last_sent_from_it() {
        let mut t = Topology::default();
        let t0 = Instant::now();
        let (a, b) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        let ip: Option<IpAddr> = "10.0.0.9".parse().ok();
        let owner = |t: &Topology| ip.and_then(|ip| t.host_by_ip(ip)).map(|h| h.mac);
        // Each learnt, then seen again (the second sighting is the one
        // that may skip writing the address).
        for _ in 0..2 {
            t.learn(VLAN1, a, (1, 1), ip, t0);
        }
        assert_eq!(owner(&t), Some(a));
        for _ in 0..2 {
            t.learn(VLAN1, b, (1, 2), ip, t0);
        }
        assert_eq!(owner(&t), Some(b));
        // A sends from it again: A's earlier write does not count.
        t.learn(VLAN1, a, (1, 1), ip, t0);
        assert_eq!(owner(&t), Some(a));
        t.learn(VLAN1, b, (1, 2), ip, t0);
        assert_eq!(owner(&t), Some(b));
    }

    #[test]
    fn shortest_path_on_a_ring_and_reroute_after_cut() {
        let mut t = Topology::default();
        let now = Instant::now();
        ring(&mut t, now);
        assert_eq!(&*t.path(1, 2).expect("path"), &[(1, 10)]);
        assert_eq!(&*t.path(1, 4).expect("path"), &[(1, 11)]);
        assert_eq!(t.path(1, 3).expect("path").len(), 2);
        assert_eq!(&*t.path(2, 2).expect("path"), &[]);
        let change = t.port_down((1, 10));
        assert_eq!(change.links_removed.len(), 2);
        assert_eq!(&*t.path(1, 2).expect("path"), &[(1, 11), (4, 11), (3, 11)]);
        assert!(t.is_link_port((1, 11)));
        assert!(!t.is_link_port((1, 10)));
    }

    #[test]
    fn routes_name_the_ports_in_and_out_and_edge_ports_exclude_links() {
        let mut t = Topology::default();
        let now = Instant::now();
        ring(&mut t, now);
        for d in 1..=4 {
            t.set_ports(d, [1, 10, 11]);
        }
        let r = t.route((1, 1), (3, 1)).expect("route");
        let hops: Vec<(u64, u32, u32)> =
            r.iter().map(|h| (h.dpid, h.in_port, h.out_port)).collect();
        assert_eq!(hops.len(), 3);
        assert_eq!(hops[0].1, 1);
        assert_eq!(hops[2], (3, hops[2].1, 1));
        assert_eq!(t.edge_ports(2).collect::<Vec<_>>(), vec![1]);
        assert_eq!(
            t.route((2, 1), (2, 5)).map(|r| r.to_vec()),
            Some(vec![PortHop {
                dpid: 2,
                in_port: 1,
                out_port: 5
            }])
        );
        t.port_down((2, 1));
        assert_eq!(t.ports(2), &[10, 11]);
        t.port_up((2, 1));
        assert_eq!(t.ports(2), &[1, 10, 11]);
        t.switch_down(2);
        assert!(t.ports(2).is_empty());
    }

    #[test]
    fn a_switch_down_carries_no_path_but_keeps_its_links_until_they_expire() {
        let mut t = Topology::default();
        let t0 = Instant::now();
        ring(&mut t, t0);
        for d in 1..=4 {
            t.set_ports(d, [1, 10, 11]);
        }
        assert_eq!(&*t.path(1, 2).expect("path"), &[(1, 10)]);
        let change = t.switch_down(2);
        assert!(change.links_removed.is_empty(), "{change:?}");
        // Frames still in flight from it are not hosts...
        assert!(t.is_link_port((1, 10)) && t.is_link_port((3, 11)));
        // ... and paths go the other way round.
        assert_eq!(&*t.path(1, 3).expect("path"), &[(1, 11), (4, 11)]);
        assert_eq!(t.path(1, 2), None);
        // Back within the probes' timeout: as before.
        t.set_ports(2, [1, 10, 11]);
        assert_eq!(&*t.path(1, 2).expect("path"), &[(1, 10)]);
        // Down for good: its links go when their probes stop.
        t.switch_down(2);
        let later = t0 + Duration::from_secs(10);
        for (a, b) in [(3, 4), (4, 1)] {
            t.link_seen((a, 10), (b, 11), later);
            t.link_seen((b, 11), (a, 10), later);
        }
        let change = t.expire_links(later, Duration::from_secs(3));
        assert_eq!(change.links_removed.len(), 4, "{change:?}");
        assert!(!t.is_link_port((1, 10)));
    }

    #[test]
    fn links_expire_and_hosts_move() {
        let mut t = Topology::default();
        let t0 = Instant::now();
        ring(&mut t, t0);
        let later = t0 + Duration::from_secs(10);
        t.link_seen((1, 10), (2, 11), later);
        let change = t.expire_links(later, Duration::from_secs(3));
        // Only the freshly seen direction of 1-2 survives, which still connects 1 and 2.
        assert_eq!(change.links_removed.len(), 7);
        assert!(t.path(1, 2).is_some());
        assert!(t.path(1, 3).is_none());

        let mac = MacAddr([0, 0, 0, 0, 0, 1]);
        assert_eq!(t.learn_host(mac, (1, 1), None, t0), None);
        assert_eq!(t.learn_host(mac, (1, 1), "10.0.0.1".parse().ok(), t0), None);
        assert_eq!(t.learn_host(mac, (2, 5), None, t0), Some((1, 1)));
        assert_eq!(t.host(&mac).map(|h| (h.at, h.ips.len())), Some(((2, 5), 1)));
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(t.host_by_ip(ip).map(|h| h.mac), Some(mac));
        // Discovering a link on a host's port forgets the host.
        let change = t.link_seen((2, 5), (3, 9), t0);
        assert_eq!(change.hosts_removed, vec![mac]);
        assert!(
            t.host_by_ip(ip).is_none(),
            "a forgotten host's addresses go too"
        );
    }
}
