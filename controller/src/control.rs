//! The control plane: the one owner of the controller's state (the
//! installer and its switch registry, the topology, forwarding, sessions,
//! OVSDB, the counters) and what happens on every event: a switch
//! connecting, learnt, gone; a packet-in (handed to the pipeline); a port
//! changing; a flow removed; an OFPT_ERROR; the periodic rounds; a CRM
//! change; an operator's action through the API.
//!
//! Its fields are private: the API backend and the tests read through
//! methods. It knows nothing of HTTP (the backend translates) and nothing
//! of sockets (a connection reports through [`Events`]). The long-lived
//! tasks that do its background work (remote lookups, OVSDB queues, the
//! Redis writer, idle media, discovery) are `run_*` methods that `app`
//! spawns and drains.

use crate::config::{Config, CrmMode, HoldConfig, Timers};
use crate::crm::{ChangeKind, Lookup};
use crate::messages::{self, cookie};
use crate::net::{Events, Installer, Switch};
use crate::ovsdb::{OvsdbSet, QueueSpec};
use crate::pipeline::{self, Ctx};
use crate::plan::{Execute, Plan};
use crate::sessions::idle::FlowBytes;
use crate::sessions::record::StateReason;
use crate::sessions::writer::Stored;
use crate::sessions::{
    Crm, HoldCause, Monitor, Pending, SessionError, SessionId, Sessions, Verdict,
};
use crate::stats::Stats;
use crate::topology::{Host, PortRef, Topology};
use bytes::Bytes;
use futures_util::StreamExt;
use openflow::multipart::{FlowStatsRequest, MultipartReplyBody, MultipartRequestBody};
use openflow::{ErrorMsg, FlowRemoved, Match, Message, PacketIn, PortNo, PortReason, PortStatus};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierflow_api::model::{ClientData, Session};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Packet-ins per latency sample: two clock reads and a histogram shared
/// by every switch task on each packet-in cost a tenth of setup
/// throughput (perf).
const LATENCY_SAMPLE: u64 = 16;
/// Admissions waiting for a remote lookup; beyond it, requests are shed
/// (their next packet asks again).
const LOOKUP_QUEUE: usize = 16_384;
/// Remote lookups in flight at once (the store batches them).
const LOOKUPS_IN_FLIGHT: usize = 2048;

/// Switches whose tier queues OVSDB should (re)configure.
#[derive(Debug, Default)]
struct QueueJobs {
    all: bool,
    dpids: BTreeSet<u64>,
}

/// The receiving ends of the control plane's work queues, for `app` to
/// run.
#[derive(Debug)]
pub struct Workers {
    pub lookups: mpsc::Receiver<Box<Pending>>,
}

/// Shared by every connection task and the API.
pub struct ControlPlane {
    config: Config,
    stats: Arc<Stats>,
    installer: Installer,
    topology: Mutex<Topology>,
    forwarding: crate::forwarding::Forwarding,
    sessions: Sessions,
    ovsdb: Arc<OvsdbSet>,
    lookups: mpsc::Sender<Box<Pending>>,
    queue_jobs: Mutex<QueueJobs>,
    queue_wake: Notify,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("switches", &self.installer.count())
            .finish()
    }
}

impl ControlPlane {
    pub fn new(config: Config, crm: Crm) -> (Arc<Self>, Workers) {
        let stats = Arc::new(Stats::default());
        let sessions = Sessions::new(
            crm,
            config.default_country.clone(),
            config.timers.session_idle_timeout,
            stats.clone(),
        );
        let ovsdb = Arc::new(OvsdbSet::new(
            config.ovsdb.clone(),
            crate::ovsdb::DEFAULT_TIMEOUT,
        ));
        let (lookups, lookups_rx) = mpsc::channel(LOOKUP_QUEUE);
        let ctl = ControlPlane {
            installer: Installer::new(stats.clone()),
            forwarding: crate::forwarding::Forwarding::new(config.timers.flow_idle_timeout),
            topology: Mutex::new(Topology::default()),
            sessions,
            ovsdb,
            stats,
            config,
            lookups,
            queue_jobs: Mutex::default(),
            queue_wake: Notify::new(),
        };
        (
            Arc::new(ctl),
            Workers {
                lookups: lookups_rx,
            },
        )
    }

    // ---- reads ----

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// One JSON line of counters.
    pub fn stats_json(&self) -> String {
        serde_json::to_string(&*self.stats).unwrap_or_default()
    }

    pub fn timers(&self) -> Timers {
        self.config.timers
    }

    /// The session table (the API and tests read it).
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn ovsdb(&self) -> &OvsdbSet {
        &self.ovsdb
    }

    pub fn switch(&self, dpid: u64) -> Option<Arc<Switch>> {
        self.installer.switch(dpid)
    }

    pub fn switches(&self) -> Vec<Arc<Switch>> {
        self.installer.switches()
    }

    /// Links (one entry per direction seen) and hosts, as the topology
    /// knows them now.
    pub fn topology_view(&self) -> (Vec<(PortRef, PortRef)>, Vec<Host>) {
        let t = self.topology.lock();
        (t.links().collect(), t.hosts().cloned().collect())
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            exec: &self.installer,
            topology: &self.topology,
            forwarding: &self.forwarding,
            sessions: &self.sessions,
            stats: &self.stats,
        }
    }

    // ---- switches ----

    /// PORT_DESC, DESC and METER_FEATURES, then what goes on the switch
    /// (service flows, sessions crossing it, tier queues) and the first
    /// LLDP round.
    async fn learn_switch(&self, sw: Arc<Switch>) {
        match sw.port_desc().await {
            Ok(ports) => {
                let up: Vec<u32> = ports
                    .iter()
                    .filter(|p| p.port_no.value() < PortNo::Max.value() && p.is_up())
                    .map(|p| p.port_no.value())
                    .collect();
                sw.info.write().ports = ports.into_iter().map(|p| (p.port_no.value(), p)).collect();
                self.topology.lock().set_ports(sw.dpid, up);
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
        if !sw.is_connected() {
            return;
        }
        self.sync_queues(Some(sw.dpid));
        self.installer.execute(self.sessions.service_flows(sw.dpid));
        self.sessions
            .switch_ready(&self.installer, sw.dpid, max_meter(&sw));
        self.probe_switch(&sw);
    }

    /// Sends one LLDP probe out of every live port of every switch,
    /// expires links whose probes stopped arriving, and drops setups
    /// whose barriers never came back.
    pub fn lldp_round(&self) {
        for sw in self.switches() {
            self.probe_switch(&sw);
        }
        let timeout = Timers::secs(self.config.timers.link_timeout);
        let change = self.topology.lock().expire_links(Instant::now(), timeout);
        pipeline::topology_changed(&self.ctx(), &change);
        self.installer
            .sweep(Timers::secs(self.config.timers.request_timeout));
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
        let mut plan = Plan::new();
        for (port, mac) in ports {
            plan.push(
                sw.dpid,
                &Message::PacketOut(messages::probe_out(sw.dpid, port, mac)),
            );
        }
        self.installer.execute(plan);
    }

    // ---- sessions: what the API and the monitors do ----

    /// Ends a session (the API). False if it is not live.
    pub fn end_session(&self, id: &str, why: &str) -> bool {
        self.sessions.end_by_name(&self.installer, id, why)
    }

    /// Manual override of a live session's tier.
    pub fn set_override(&self, id: &str, tier: &str) -> Result<Session, SessionError> {
        self.sessions.set_override(&self.installer, id, tier)
    }

    /// Clears a manual override and re-scores the session.
    pub async fn clear_override(&self, id: &str) -> Result<Session, SessionError> {
        self.sessions.clear_override(&self.installer, id)?;
        self.rescore(id, None).await
    }

    /// Puts a live session on hold or resumes it.
    pub fn set_hold(
        &self,
        id: &str,
        hold: bool,
        cause: HoldCause,
        why: StateReason,
    ) -> Result<Session, SessionError> {
        let id = SessionId::parse(id).ok_or(SessionError::NotFound)?;
        self.sessions
            .set_hold(&self.installer, id, hold, cause, why)
    }

    /// Re-scores a live session from its (possibly enriched) client data;
    /// a manual override still wins.
    pub async fn rescore(
        &self,
        id: &str,
        more: Option<ClientData>,
    ) -> Result<Session, SessionError> {
        let inputs = self.sessions.rescore_inputs(id, more.as_ref())?;
        let lookup = self.lookup(&inputs.to_client()).await;
        self.sessions
            .apply_rescore(&self.installer, id, inputs, &lookup)
    }

    async fn remote_lookup(&self, client: &ClientData) -> Lookup {
        match self
            .sessions
            .crm()
            .store
            .lookup(
                client.phone.as_deref(),
                client.ip,
                client.promo_code.as_deref(),
            )
            .await
        {
            Ok(l) => l,
            Err(e) => {
                self.stats.redis_errors.inc();
                self.stats.decisions_fallback.inc();
                warn!("CRM lookup failed, default tier: {e}");
                Lookup::default()
            }
        }
    }

    /// Looks up the client with the CRM mode in force.
    pub async fn lookup(&self, client: &ClientData) -> Lookup {
        match self.sessions.crm().mode {
            CrmMode::Replica => self.sessions.snapshot().lookup(
                client.phone.as_deref(),
                client.ip,
                client.promo_code.as_deref(),
            ),
            CrmMode::Remote => self.remote_lookup(client).await,
        }
    }

    /// Sessions Redis remembers (a restart): parked, re-admitted by their
    /// next packet with the same id, override and hold.
    pub fn park_remembered(&self, stored: Vec<Stored>) -> usize {
        self.sessions.park_remembered(stored)
    }

    /// The CRM changed (through the API, `crm load`, or another
    /// controller): the live network follows.
    pub async fn crm_changed(&self, kind: ChangeKind, name: &str) {
        match kind {
            ChangeKind::Tier => {
                self.sessions.tier_changed(&self.installer, name);
                self.sync_queues(None);
            }
            ChangeKind::Service => self.services_changed(),
            // A promotion change counts for new decisions only.
            ChangeKind::Promotion => {}
            ChangeKind::Customer | ChangeKind::Policy => self.rescore_all().await,
            ChangeKind::Everything => {
                let snap = self.sessions.snapshot();
                for t in &snap.tiers {
                    self.sessions.tier_changed(&self.installer, &t.name);
                }
                self.sync_queues(None);
                self.services_changed();
                self.rescore_all().await;
            }
        }
    }

    fn services_changed(&self) {
        for sw in self.switches() {
            self.installer.execute(self.sessions.service_flows(sw.dpid));
        }
    }

    async fn rescore_all(&self) {
        for id in self.sessions.ids() {
            if let Err(e) = self.rescore(&id.to_string(), None).await {
                debug!("session {id} not re-scored: {e}");
            }
        }
    }

    /// Asks the OVSDB worker to put the tiers' queues on the ports of
    /// `dpid` (or of every connected switch).
    pub fn sync_queues(&self, dpid: Option<u64>) {
        {
            let mut j = self.queue_jobs.lock();
            match dpid {
                Some(d) => {
                    j.dpids.insert(d);
                }
                None => j.all = true,
            }
        }
        self.queue_wake.notify_one();
    }

    // ---- the background work `app` runs ----

    /// Remote-mode admissions: looks each pending session's client up in
    /// Redis (many at once: the store batches them) and admits it.
    pub async fn run_lookups(
        &self,
        mut rx: mpsc::Receiver<Box<Pending>>,
        shutdown: CancellationToken,
    ) {
        let mut inflight = futures_util::stream::FuturesUnordered::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(()) = inflight.next(), if !inflight.is_empty() => {}
                p = rx.recv(), if inflight.len() < LOOKUPS_IN_FLIGHT => match p {
                    Some(p) => inflight.push(async move {
                        let lookup = self.remote_lookup(&p.client()).await;
                        self.sessions.admit(&self.installer, *p, &lookup);
                    }),
                    None => break,
                },
            }
        }
    }

    /// The tiers' queues through OVSDB, as `sync_queues` asks.
    pub async fn run_queue_sync(&self, shutdown: CancellationToken) {
        loop {
            let job = std::mem::take(&mut *self.queue_jobs.lock());
            if !job.all && job.dpids.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.queue_wake.notified() => continue,
                }
            }
            let specs = queue_specs(&self.sessions.snapshot().tiers);
            // A switch connecting to a CRM without shaped tiers needs
            // nothing; after a tier change, no shaped tier left means
            // clear our QoS (apply_queues with nothing does).
            if specs.is_empty() && !job.all {
                continue;
            }
            let dpids: Vec<u64> = if job.all {
                self.switches().iter().map(|s| s.dpid).collect()
            } else {
                job.dpids.into_iter().collect()
            };
            for dpid in dpids {
                let r = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = self.ovsdb.apply_queues(dpid, &specs) => r,
                };
                match r {
                    Ok(n) => debug!(
                        dpid = format_args!("{dpid:016x}"),
                        "tier queues on {n} ports"
                    ),
                    Err(e) => {
                        self.stats.ovsdb_errors.inc();
                        warn!(
                            dpid = format_args!("{dpid:016x}"),
                            "tier queues not configured: {e}"
                        );
                    }
                }
            }
        }
    }

    /// Writes sessions to Redis until shutdown.
    pub async fn run_writer(&self, shutdown: CancellationToken) {
        self.sessions.run_writer(shutdown).await;
    }

    /// LLDP probes, link expiry and the setup sweep, every `lldp_interval`.
    pub async fn run_discovery(&self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Timers::secs(self.config.timers.lldp_interval));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.lldp_round(),
            }
        }
    }

    /// Idle-media hold: polls the voice sessions' flow counters (one
    /// request per switch and flow kind) until `shutdown`; does nothing
    /// when `cfg.idle_media` is off.
    pub async fn run_idle_monitor(&self, cfg: HoldConfig, shutdown: CancellationToken) {
        if !cfg.idle_media {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.idle_poll_ms.max(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut monitor = Monitor::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let probes = self.sessions.voice_probes();
            let mut counted = FlowBytes::default();
            for (kind, dpid) in Monitor::wanted(&probes) {
                self.count_flow_bytes(kind, dpid, &mut counted).await;
            }
            for (id, v) in monitor.poll(&cfg, &probes, &counted, Instant::now()) {
                let r = match v {
                    Verdict::Hold => self.sessions.set_hold(
                        &self.installer,
                        id,
                        true,
                        HoldCause::IdleMedia,
                        StateReason::IdleMedia,
                    ),
                    Verdict::Resume => self.sessions.set_hold(
                        &self.installer,
                        id,
                        false,
                        HoldCause::IdleMedia,
                        StateReason::MediaResumed,
                    ),
                    Verdict::Nothing => continue,
                };
                if let Err(e) = r {
                    debug!("session {id}: idle-media change not applied: {e}");
                }
            }
        }
    }

    /// Adds to `out` the bytes every flow of `kind` on `dpid` matched so
    /// far, by session id. Flow counters count every packet a flow
    /// matched, before its meter drops any, so a held call's media is
    /// measured at the rate it is sent.
    async fn count_flow_bytes(&self, kind: cookie::Kind, dpid: u64, out: &mut FlowBytes) {
        let Some(sw) = self.switch(dpid) else {
            return;
        };
        let flows = match sw
            .flow_stats(FlowStatsRequest {
                table_id: openflow::TABLE_ALL,
                out_port: PortNo::Any,
                out_group: openflow::GROUP_ANY,
                cookie: cookie::cookie(kind, 0),
                cookie_mask: cookie::KIND_MASK,
                match_: Match::new(),
            })
            .await
        {
            Ok(f) => f,
            Err(e) => {
                debug!("flow stats of {kind:?} flows on {dpid:#x} not read: {e}");
                return;
            }
        };
        for f in &flows {
            if let Some(id) = cookie::id_of(f.cookie, kind) {
                *out.entry((kind, dpid, id)).or_default() += f.byte_count;
            }
        }
    }
}

/// The tiers' OVSDB queues. Queue 0 is every port's default queue: traffic
/// outside the tiers uses it, and so does all traffic on the userspace
/// datapath, which ignores set_queue. Shaping it would cap everything at
/// one tier's rate, so a tier on queue 0 (best effort) leaves it
/// unshaped. Tiers sharing a queue share its row: the largest rates win.
fn queue_specs(tiers: &[tierflow_api::model::Tier]) -> Vec<QueueSpec> {
    let mut specs: Vec<QueueSpec> = Vec::new();
    for t in tiers.iter().filter(|t| t.queue_id != 0) {
        match specs.iter_mut().find(|q| q.queue_id == t.queue_id) {
            Some(q) => {
                q.min_kbps = q.min_kbps.max(t.queue_min_kbps);
                q.max_kbps = q.max_kbps.max(t.rate_kbps);
            }
            None => specs.push(QueueSpec {
                queue_id: t.queue_id,
                min_kbps: t.queue_min_kbps,
                max_kbps: t.rate_kbps,
                dscp: None,
            }),
        }
    }
    specs
}

/// The meters a switch offers sessions: DROP bands are what tiers use; a
/// switch without them gets the tier's DSCP and queue but no meter.
fn max_meter(sw: &Switch) -> u32 {
    sw.info.read().meter_features.as_ref().map_or(0, |m| {
        if m.band_types & (1 << openflow::MeterBandType::Drop.value()) != 0 {
            m.max_meter
        } else {
            0
        }
    })
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(16).map(|x| format!("{x:02x}")).collect()
}

impl Events for ControlPlane {
    fn holder(&self, dpid: u64) -> Option<Arc<Switch>> {
        self.installer.switch(dpid)
    }

    /// A switch finished its handshake: clean out our stale flows,
    /// install table-miss and LLDP-to-controller. A datapath id that a
    /// live connection holds is refused (counted): the live switch keeps
    /// it, its flows untouched (`ofconn` has already closed a holder that
    /// stopped answering).
    fn switch_connected(&self, sw: &Arc<Switch>) -> Result<(), String> {
        if let Err(live) = self.installer.add(sw.clone()) {
            self.stats.switches_refused.inc();
            return Err(format!(
                "datapath {:016x} is held by a live connection from {}",
                sw.dpid, live.peer
            ));
        }
        self.stats.switches_connected.inc();
        let mut plan = Plan::new();
        plan.push(sw.dpid, &messages::set_config());
        plan.push(sw.dpid, &messages::delete_ours());
        plan.push(sw.dpid, &messages::table_miss());
        plan.push(sw.dpid, &messages::lldp_to_controller());
        self.installer.execute(plan);
        Ok(())
    }

    fn switch_learn<'a>(
        &'a self,
        sw: Arc<Switch>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.learn_switch(sw))
    }

    /// A switch's connection ended.
    fn switch_disconnected(&self, sw: &Arc<Switch>) {
        // A newer connection of the same datapath may have replaced it.
        if !self.installer.remove(sw) {
            return;
        }
        let change = self.topology.lock().switch_gone(sw.dpid);
        pipeline::topology_changed(&self.ctx(), &change);
        self.forwarding.switch_gone(&self.installer, sw.dpid);
    }

    /// Every PACKET_IN. One in `LATENCY_SAMPLE` is timed into the latency
    /// histogram.
    fn packet_in(&self, sw: &Arc<Switch>, frame: &Bytes, pi: &PacketIn<'_>) {
        let Some(in_port) = pi.match_.in_port() else {
            return;
        };
        let timed = self
            .stats
            .packet_ins
            .inc_get()
            .is_multiple_of(LATENCY_SAMPLE)
            .then(Instant::now);
        let pending = pipeline::packet_in(&self.ctx(), sw.dpid, in_port, frame, &pi.data);
        if let Some(p) = pending
            && let Err(e) = self.lookups.try_send(p)
        {
            // Never wait on the switch's task: the request is dropped and
            // its next packet asks again.
            let p = match e {
                mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => p,
            };
            self.sessions.abandon(&p);
            self.stats.admissions_shed.inc();
        }
        if let Some(t0) = timed {
            self.stats.packet_in_latency.observe(t0.elapsed());
        }
    }

    fn setup_barrier(&self, sw: &Switch, xid: u32) {
        self.installer.barrier_reply(sw.dpid, xid);
    }

    fn port_status(&self, sw: &Switch, ps: &PortStatus) {
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
            if port < PortNo::Max.value() {
                self.topology.lock().port_up((sw.dpid, port));
            }
            self.probe_switch(sw);
        } else {
            let change = self.topology.lock().port_down((sw.dpid, port));
            pipeline::topology_changed(&self.ctx(), &change);
        }
    }

    /// A flow we asked to hear about left a switch: only a session's
    /// reporting flow asks (path flows idle out on their own and are set
    /// up again by the next packet).
    fn flow_removed(&self, sw: &Switch, fr: &FlowRemoved<'_>) {
        if let Some(id) = cookie::id_of(fr.cookie, cookie::Kind::Session) {
            self.sessions
                .flow_removed(&self.installer, sw.dpid, id, false, fr.reason);
        } else if let Some(id) = cookie::id_of(fr.cookie, cookie::Kind::Media) {
            self.sessions
                .flow_removed(&self.installer, sw.dpid, id, true, fr.reason);
        }
    }

    /// OFPT_ERROR from a switch: counted and logged with what it refers to.
    fn switch_error(&self, sw: &Switch, xid: u32, e: &ErrorMsg<'_>) {
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

    fn decode_error(&self, _sw: &Switch) {
        self.stats.decode_errors.inc();
    }

    fn tls_refused(&self, _peer: std::net::SocketAddr, why: &crate::net::tls::TlsRefusal) {
        match why {
            crate::net::tls::TlsRefusal::Unverified(_) => self.stats.tls_unverified.inc(),
            crate::net::tls::TlsRefusal::Handshake(_) => self.stats.tls_handshake_failures.inc(),
        }
    }
}
