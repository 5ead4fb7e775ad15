//! The control plane: the registry of connected switches, the topology,
//! and what happens when switches connect, report port changes or errors.
//! Packet-in handling and path setup live in `forwarding`.

use crate::config::{Config, Timers};
use crate::cookie::{self, Kind};
use crate::forwarding::Forwarding;
use crate::lldp;
use crate::qos;
use crate::session::{Crm, Sessions};
use crate::stats::Stats;
use crate::switch::Switch;
use crate::topology::{Change, Topology};
use openflow::multipart::{MultipartReplyBody, MultipartRequestBody};
use openflow::{
    Action, ErrorMsg, FlowMod, FlowRemoved, Instruction, Match, Message, Oxm, PacketOut, PortNo,
    PortReason, PortStatus, SwitchConfig,
};
use parking_lot::{Mutex, RwLock};
// ahash: keys come off the wire (MACs), so a DoS-resistant hash, but
// several times cheaper than std's SipHash on this hot path.
use ahash::AHashMap as HashMap;
use std::sync::Arc;
use std::time::Instant;
use tracing::{debug, info, warn};

/// Priority of the LLDP-to-controller flow: above everything else.
pub const PRIO_LLDP: u16 = 65_000;
/// Priority of the table-miss flow.
pub const PRIO_MISS: u16 = 0;

/// Shared by every connection task and the API.
pub struct ControlPlane {
    config: Config,
    switches: RwLock<HashMap<u64, Arc<Switch>>>,
    pub(crate) topology: Mutex<Topology>,
    pub(crate) forwarding: Forwarding,
    pub(crate) sessions: Sessions,
    pub(crate) ovsdb: Arc<crate::ovsdb::OvsdbSet>,
    pub stats: Stats,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("switches", &self.switches.read().len())
            .finish()
    }
}

impl ControlPlane {
    pub fn new(config: Config, crm: Crm) -> Self {
        let sessions = Sessions::new(
            crm,
            config.default_country.clone(),
            config.timers.session_idle_timeout,
        );
        let ovsdb = Arc::new(crate::ovsdb::OvsdbSet::new(
            config.ovsdb.clone(),
            crate::ovsdb::DEFAULT_TIMEOUT,
        ));
        ControlPlane {
            sessions,
            ovsdb,
            config,
            switches: RwLock::new(HashMap::default()),
            topology: Mutex::new(Topology::default()),
            forwarding: Forwarding::default(),
            stats: Stats::default(),
        }
    }

    /// The session table (the API and tests read it).
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn timers(&self) -> Timers {
        self.config.timers
    }

    pub fn switch(&self, dpid: u64) -> Option<Arc<Switch>> {
        self.switches.read().get(&dpid).cloned()
    }

    pub fn switches(&self) -> Vec<Arc<Switch>> {
        let mut v: Vec<_> = self.switches.read().values().cloned().collect();
        v.sort_by_key(|s| s.dpid);
        v
    }

    /// A switch finished its handshake: clean out our stale flows, install
    /// table-miss and LLDP-to-controller, learn its ports, probe them.
    pub fn switch_connected(self: &Arc<Self>, sw: &Arc<Switch>) {
        if let Some(old) = self.switches.write().insert(sw.dpid, sw.clone()) {
            // Same datapath reconnected before its old connection timed out.
            old.closed().cancel();
        }
        self.stats.switches_connected.inc();
        sw.batch(|b| {
            b.push(
                sw.next_xid(),
                &Message::SetConfig(SwitchConfig {
                    flags: 0,
                    miss_send_len: openflow::CML_NO_BUFFER,
                }),
            );
            b.push(sw.next_xid(), &delete_ours());
            b.push(sw.next_xid(), &table_miss());
            b.push(sw.next_xid(), &lldp_to_controller());
        });
        self.stats.flow_mods_sent.add(3);
        let ctl = self.clone();
        let sw = sw.clone();
        tokio::spawn(async move { ctl.learn_switch(&sw).await });
    }

    /// PORT_DESC, DESC and METER_FEATURES, then the first LLDP round.
    async fn learn_switch(self: &Arc<Self>, sw: &Arc<Switch>) {
        match sw.port_desc().await {
            Ok(ports) => {
                sw.info.write().ports = ports.into_iter().map(|p| (p.port_no.value(), p)).collect();
            }
            Err(e) => warn!("PORT_DESC failed: {e}"),
        }
        match sw.multipart(MultipartRequestBody::Desc).await {
            Ok(parts) => {
                for p in parts {
                    if let MultipartReplyBody::Desc(d) = p.body {
                        let mut info = sw.info.write();
                        info.mfr_desc = d.mfr_desc.as_string();
                        info.hw_desc = d.hw_desc.as_string();
                        info.sw_desc = d.sw_desc.as_string();
                    }
                }
            }
            Err(e) => warn!("DESC failed: {e}"),
        }
        match sw.multipart(MultipartRequestBody::MeterFeatures).await {
            Ok(parts) => {
                for p in parts {
                    if let MultipartReplyBody::MeterFeatures(m) = p.body {
                        sw.info.write().meter_features = Some(m);
                    }
                }
            }
            Err(e) => warn!("METER_FEATURES failed: {e}"),
        }
        self.sessions_switch_ready(sw);
        self.probe_switch(sw);
    }

    /// A switch's connection ended.
    pub fn switch_disconnected(&self, sw: &Arc<Switch>) {
        {
            let mut map = self.switches.write();
            // A newer connection of the same datapath may have replaced it.
            if map.get(&sw.dpid).is_some_and(|cur| Arc::ptr_eq(cur, sw)) {
                map.remove(&sw.dpid);
            } else {
                return;
            }
        }
        let change = self.topology.lock().switch_gone(sw.dpid);
        self.apply_change(&change);
        self.forwarding.switch_gone(self, sw.dpid);
    }

    /// Sends one LLDP probe out of every live port of every switch, and
    /// expires links whose probes stopped arriving.
    pub fn lldp_round(&self) {
        for sw in self.switches() {
            self.probe_switch(&sw);
        }
        let timeout = Timers::secs(self.config.timers.link_timeout);
        let change = self.topology.lock().expire_links(Instant::now(), timeout);
        self.apply_change(&change);
        self.forwarding.sweep(self);
    }

    fn probe_switch(&self, sw: &Switch) {
        let ports: Vec<(u32, openflow::MacAddr)> = sw
            .info
            .read()
            .ports
            .values()
            .filter(|p| p.port_no.value() < PortNo::Max.value() && p.is_up())
            .map(|p| (p.port_no.value(), p.hw_addr))
            .collect();
        sw.batch(|b| {
            for (port, mac) in ports {
                let frame = lldp::probe(sw.dpid, port, mac);
                let out = PacketOut {
                    buffer_id: openflow::NO_BUFFER,
                    in_port: PortNo::Controller,
                    actions: [Action::output(port)].into_iter().collect(),
                    data: frame[..].into(),
                };
                b.push(0, &Message::PacketOut(out));
            }
        });
    }

    /// An LLDP probe arrived at (sw, in_port).
    pub(crate) fn lldp_in(&self, sw: &Switch, in_port: u32, frame: &[u8]) {
        let Some(from) = lldp::parse(frame) else {
            return;
        };
        if self.switch(from.0).is_none() {
            return;
        }
        let change = self
            .topology
            .lock()
            .link_seen(from, (sw.dpid, in_port), Instant::now());
        if !change.is_empty() {
            self.apply_change(&change);
        }
    }

    /// Tears down what a topology change invalidated.
    pub(crate) fn apply_change(&self, change: &Change) {
        for (a, b) in &change.links_added {
            info!("link up {:x}:{} -> {:x}:{}", a.0, a.1, b.0, b.1);
        }
        for (a, b) in &change.links_removed {
            info!("link down {:x}:{} -> {:x}:{}", a.0, a.1, b.0, b.1);
        }
        self.stats.links_added.add(change.links_added.len() as u64);
        self.stats
            .links_removed
            .add(change.links_removed.len() as u64);
        self.forwarding.topology_changed(self, change);
        self.sessions_topology_changed(change);
    }

    pub fn port_status(&self, sw: &Switch, ps: &PortStatus) {
        let port = ps.desc.port_no.value();
        let up = ps.reason != PortReason::Delete && ps.desc.is_up();
        {
            let mut info = sw.info.write();
            if ps.reason == PortReason::Delete {
                info.ports.remove(&port);
            } else {
                info.ports.insert(port, ps.desc.clone());
            }
        }
        debug!(
            "port {port} {} ({})",
            if up { "up" } else { "down" },
            ps.reason
        );
        if up {
            self.probe_switch(sw);
        } else {
            let change = self.topology.lock().port_down((sw.dpid, port));
            self.apply_change(&change);
        }
    }

    /// A flow we asked to hear about left a switch: only a session's
    /// reporting flow asks (path flows idle out on their own and are set
    /// up again by the next packet).
    pub fn flow_removed(&self, sw: &Switch, fr: &FlowRemoved<'_>) {
        if let Some(id) = cookie::id_of(fr.cookie, Kind::Session) {
            self.session_flow_removed(sw.dpid, id, false, fr.reason);
        } else if let Some(id) = cookie::id_of(fr.cookie, Kind::Media) {
            self.session_flow_removed(sw.dpid, id, true, fr.reason);
        }
    }

    /// OFPT_ERROR from a switch: counted and logged with what it refers to.
    pub fn switch_error(&self, sw: &Switch, xid: u32, e: &ErrorMsg<'_>) {
        self.stats.switch_errors.inc();
        let offending = match openflow::decode(&e.data) {
            Ok((h, m)) => format!("{} xid {} {}", h.msg_type, h.xid, openflow::to_json(&h, &m)),
            Err(_) => openflow::Header::peek(&e.data).map_or_else(
                || hex_prefix(&e.data),
                |h| {
                    format!(
                        "{} xid {} (first {} bytes)",
                        h.msg_type,
                        h.xid,
                        e.data.len()
                    )
                },
            ),
        };
        warn!(
            dpid = format_args!("{:016x}", sw.dpid),
            xid, "switch sent OFPT_ERROR {e} for {offending}"
        );
    }

    /// One JSON line of counters.
    pub fn stats_json(&self) -> String {
        serde_json::to_string(&self.stats).unwrap_or_default()
    }
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(16).map(|x| format!("{x:02x}")).collect()
}

/// Deletes every flow in our cookie namespace, in every table.
pub fn delete_ours() -> FlowMod<'static> {
    cookie::delete(cookie::NAMESPACE, cookie::NAMESPACE_MASK)
}

/// The flows that bring traffic towards service `index` to the
/// controller: the first packet of every flow to it (a session request),
/// and for SIP every signalling datagram in both directions.
pub fn service_flows(
    index: u64,
    net: ipnet::Ipv4Net,
    proto: u8,
    port: u16,
    sip: bool,
) -> Vec<FlowMod<'static>> {
    let mask = (net.prefix_len() < 32).then(|| net.netmask());
    let ip = |dst: bool| {
        let m = Match::new().with(Oxm::EthType(0x0800, None));
        let m = if dst {
            m.with(Oxm::Ipv4Dst(net.network(), mask))
        } else {
            m.with(Oxm::Ipv4Src(net.network(), mask))
        };
        m.with(Oxm::IpProto(proto, None))
    };
    let l4 = |m: Match<'static>, dst: bool| match (proto, dst) {
        (6, true) => m.with(Oxm::TcpDst(port, None)),
        (6, false) => m.with(Oxm::TcpSrc(port, None)),
        (17, true) => m.with(Oxm::UdpDst(port, None)),
        (17, false) => m.with(Oxm::UdpSrc(port, None)),
        _ => m,
    };
    let flow = |priority: u16, match_: Match<'static>| FlowMod {
        cookie: cookie::cookie(Kind::Service, index),
        priority,
        match_,
        instructions: [to_controller()].into_iter().collect(),
        ..FlowMod::default()
    };
    let mut v = vec![flow(qos::PRIO_SERVICE, l4(ip(true), true))];
    if sip {
        v.push(flow(qos::PRIO_SIGNAL, l4(ip(true), true)));
        v.push(flow(qos::PRIO_SIGNAL, l4(ip(false), false)));
    }
    v
}

fn to_controller() -> Instruction<'static> {
    Instruction::ApplyActions {
        actions: [Action::Output {
            port: PortNo::Controller,
            max_len: openflow::CML_NO_BUFFER,
        }]
        .into_iter()
        .collect(),
    }
}

pub fn table_miss() -> FlowMod<'static> {
    FlowMod {
        cookie: cookie::cookie(Kind::Infra, 1),
        priority: PRIO_MISS,
        instructions: [to_controller()].into_iter().collect(),
        ..FlowMod::default()
    }
}

pub fn lldp_to_controller() -> FlowMod<'static> {
    FlowMod {
        cookie: cookie::cookie(Kind::Infra, 2),
        priority: PRIO_LLDP,
        match_: Match::new().with(Oxm::EthType(lldp::ETH_TYPE_LLDP, None)),
        instructions: [to_controller()].into_iter().collect(),
        ..FlowMod::default()
    }
}
