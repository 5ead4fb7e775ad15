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
use crate::sessions::request::{AppRequest, Outcome, Refused};
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
use tierflow_api::views::Alarm;
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
/// How long a switch has to confirm this instance's MASTER role.
const ROLE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a requested session was not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Refused(Refused),
    #[error("a switch of the path did not confirm the session's tier in time")]
    NotConfirmed,
}

/// How long an OFPT_ERROR keeps its switch's alarm up after the last one.
const ERROR_ALARM_FOR: Duration = Duration::from_secs(600);

/// OFPT_ERRORs of one switch, for its alarm.
#[derive(Debug)]
struct Errors {
    since: chrono::DateTime<chrono::Utc>,
    last_seen: Instant,
    count: u64,
    last: String,
}

/// What the alarms remember between reads.
#[derive(Debug, Default)]
struct AlarmState {
    switch_errors: ahash::AHashMap<u64, Errors>,
    redis_down_since: Option<chrono::DateTime<chrono::Utc>>,
    meter_pool_since: ahash::AHashMap<u64, chrono::DateTime<chrono::Utc>>,
}

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
    /// The IP router's wait queue.
    router: crate::routing::Router,
    ovsdb: Arc<OvsdbSet>,
    lookups: mpsc::Sender<Box<Pending>>,
    queue_jobs: Mutex<QueueJobs>,
    queue_wake: Notify,
    alarms: Mutex<AlarmState>,
    /// Signs this controller's LLDP probes.
    lldp_key: crate::lldp::Key,
    /// Whether the flows in place match VLANs (VLANs or ports were
    /// configured when they were made).
    vlans_active: std::sync::atomic::AtomicBool,
    /// The VLANs and ports the network was last set up for.
    net_seen: Mutex<NetSeen>,
    /// This instance's name and role among the instances sharing Redis.
    cluster: crate::cluster::Cluster,
}

/// VLAN and port records.
type NetSeen = (
    Vec<tierflow_api::model::Vlan>,
    Vec<tierflow_api::model::PortConfig>,
);

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
        )
        .with_limits(crate::sessions::SessionLimits {
            per_client: config.limits.sessions_per_client,
            per_port: config.limits.sessions_per_port,
            admissions_per_port: config.limits.admissions_per_port,
        });
        let ovsdb = Arc::new(OvsdbSet::new(
            config.ovsdb.clone(),
            crate::ovsdb::DEFAULT_TIMEOUT,
        ));
        let (lookups, lookups_rx) = mpsc::channel(LOOKUP_QUEUE);
        let port = config
            .openflow
            .0
            .or(config.openflow_tls)
            .map_or(6653, |a| a.port());
        let instance = config
            .instance
            .clone()
            .unwrap_or_else(|| crate::cluster::default_id(port));
        let ctl = ControlPlane {
            cluster: crate::cluster::Cluster::new(instance),
            installer: Installer::new(stats.clone()),
            forwarding: crate::forwarding::Forwarding::with_cap(
                config.timers.flow_idle_timeout,
                config.limits.paths,
            ),
            topology: Mutex::new(Topology::with_limits(crate::topology::HostLimits {
                per_port: config.limits.hosts_per_port,
                total: config.limits.hosts,
            })),
            sessions,
            router: crate::routing::Router::default(),
            ovsdb,
            stats,
            config,
            lookups,
            queue_jobs: Mutex::default(),
            queue_wake: Notify::new(),
            alarms: Mutex::default(),
            lldp_key: crate::lldp::Key::random(),
            vlans_active: std::sync::atomic::AtomicBool::new(false),
            net_seen: Mutex::default(),
        };
        {
            let snap = ctl.sessions.snapshot();
            ctl.vlans_active
                .store(snap.vlans_active(), std::sync::atomic::Ordering::Relaxed);
            *ctl.net_seen.lock() = (snap.vlans.clone(), snap.ports.clone());
        }
        (
            Arc::new(ctl),
            Workers {
                lookups: lookups_rx,
            },
        )
    }

    // ---- the cluster ----

    pub fn cluster(&self) -> &crate::cluster::Cluster {
        &self.cluster
    }

    /// Redis did not answer the first heartbeat: this instance acts as
    /// the one controller (switches keep the EQUAL role).
    pub fn act_alone(&self) {
        self.cluster.set_role(crate::cluster::Role::Alone);
        self.installer.set_writable(true);
    }

    /// This leader has not renewed its lease for longer than the lease
    /// while other instances were alive: one of them may lead by now. It
    /// stops writing (to switches and to Redis) until a heartbeat says
    /// who leads.
    pub fn fence(&self, term: u64) {
        self.installer.set_writable(false);
        self.cluster.set_role(crate::cluster::Role::Fenced { term });
        warn!(
            "instance {}: Redis unreachable for more than the lease, other instances alive: \
             no longer acting as leader until Redis answers",
            self.cluster.id
        );
    }

    /// Another instance leads: this one never writes to a switch, takes
    /// the SLAVE role on every switch and forwards API calls to `api`.
    pub fn follow(&self, leader: String, term: u64, api: Option<String>) {
        let first = !matches!(self.cluster.role(), crate::cluster::Role::Follower { .. });
        self.installer.set_writable(false);
        self.cluster.set_leader_api(api);
        self.cluster
            .set_role(crate::cluster::Role::Follower { leader, term });
        if first {
            for sw in self.installer.switches() {
                sw.send(&messages::role_request(false, term));
            }
        }
    }

    /// This instance leads with `term`: MASTER of every switch (awaited,
    /// so that nothing is written before the switch takes the role). On a
    /// `takeover` the switches hold the former leader's flows and meters:
    /// its sessions (`records`, read from Redis) are adopted where they
    /// are, the switches get their base flows, guards and service flows
    /// again (nothing of ours is deleted), and discovery starts at once.
    pub async fn lead(&self, term: u64, takeover: bool, records: Vec<Stored>) {
        self.cluster.set_leader_api(None);
        let switches = self.installer.switches();
        let asks = switches.iter().map(|sw| async move {
            let r = sw
                .request_within(&messages::role_request(true, term), ROLE_TIMEOUT)
                .await;
            if let Err(e) = r {
                warn!(
                    dpid = format_args!("{:016x}", sw.dpid),
                    "MASTER role not confirmed: {e}"
                );
            }
        });
        futures_util::future::join_all(asks).await;
        self.installer.set_writable(true);
        if !takeover {
            self.cluster.set_role(crate::cluster::Role::Leader { term });
            return;
        }
        self.stats.cluster_takeovers.inc();
        // Adopted before this instance acts on a packet-in: a packet of an
        // adopted session must find it live, not admit it again.
        let (adopted, parked) = self.sessions.adopt(records);
        self.cluster.set_role(crate::cluster::Role::Leader { term });
        tracing::info!(
            "took over {} switches (term {term}): {adopted} sessions adopted where they are, \
             {parked} parked",
            switches.len()
        );
        for sw in &switches {
            let mut plan = Plan::new();
            plan.push(sw.dpid, &messages::set_config());
            push_base_flows(&mut plan, sw.dpid);
            self.installer.execute(&mut plan);
            self.prepare_switch(sw, false);
        }
    }

    // ---- reads ----

    /// The datapath ids of the switches connected now.
    pub fn switch_ids(&self) -> Vec<u64> {
        self.installer.switches().iter().map(|s| s.dpid).collect()
    }

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

    pub fn limits(&self) -> crate::config::Limits {
        self.config.limits
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

    /// How full the bounded tables are: `(name, entries)` for learned
    /// hosts, path records, live and parked sessions, and frames waiting
    /// for a next hop's ARP answer.
    pub fn table_sizes(&self) -> [(&'static str, usize); 5] {
        let hosts = self.topology.lock().host_count();
        [
            ("hosts", hosts),
            ("paths", self.forwarding.path_count()),
            ("sessions", self.sessions.live_count()),
            ("parked_sessions", self.sessions.parked_count()),
            ("routing_waiting", self.router.waiting()),
        ]
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
            router: &self.router,
            stats: &self.stats,
            lldp_key: &self.lldp_key,
            lldp_max_age_ms: (self.config.timers.link_timeout * 1000.0) as u64,
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
                sw.info.write().ports = ports
                    .into_iter()
                    .take(crate::net::switch::MAX_PORTS)
                    .map(|p| (p.port_no.value(), p))
                    .collect();
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
        self.sessions.set_meter_max(sw.dpid, max_meter(&sw));
        if self.cluster.acts() {
            self.prepare_switch(&sw, true);
        }
    }

    /// What goes on a switch this instance masters once its features are
    /// known: the controller and guard meters, the guard flows, queues,
    /// service flows, the sessions crossing it (`reinstall`: after a
    /// reconnect; a takeover adopts them where they are), and a probe.
    fn prepare_switch(&self, sw: &Arc<Switch>, reinstall: bool) {
        let pps = self.config.limits.switch_packet_ins;
        if pps > 0 {
            // Replaced, not added twice: a DELETE of a meter the switch
            // lacks is harmless.
            let mut plan = Plan::new();
            plan.push(
                sw.dpid,
                &Message::MeterMod(messages::delete_meter(openflow::METER_CONTROLLER)),
            );
            plan.push(sw.dpid, &messages::controller_meter(pps));
            self.installer.execute(&mut plan);
        }
        let ports: Vec<u32> = sw.info.read().ports.keys().copied().collect();
        let mut plan = Plan::new();
        for port in ports {
            self.push_guard(&mut plan, sw, port);
        }
        self.installer.execute(&mut plan);
        self.sync_queues(Some(sw.dpid));
        self.installer
            .execute(&mut self.sessions.service_flows(sw.dpid));
        if reinstall {
            self.sessions
                .switch_ready(&self.installer, sw.dpid, max_meter(sw));
        }
        self.probe_switch(sw);
    }

    /// A port's guards in the switch's guard table: its LLDP frames and
    /// its other packets to the controller, each through a packet meter
    /// of the port's own (replaced, never added twice), or unmetered when
    /// the switch has no meters or no per-port limit is set. The
    /// controller keeps its own count per port too.
    fn push_guard(&self, plan: &mut Plan, sw: &Switch, port: u32) {
        if port >= PortNo::Max.value() {
            return;
        }
        let pps = self.config.limits.packet_ins_per_port;
        let metered = sw.info.read().meter_features.is_some() && pps > 0;
        let guards = [
            (messages::guard_meter_id(port), pps, false),
            (
                messages::lldp_guard_meter_id(port),
                messages::LLDP_PPS_PER_PORT,
                true,
            ),
        ];
        for (id, rate, lldp) in guards {
            let meter = id.filter(|_| metered);
            if let Some(id) = meter {
                plan.push(sw.dpid, &Message::MeterMod(messages::delete_meter(id)));
                plan.push(sw.dpid, &messages::port_meter(id, rate));
            }
            let flow = if lldp {
                messages::guard_lldp_port(port, meter)
            } else {
                messages::guard_port(port, meter)
            };
            plan.push(sw.dpid, &flow);
        }
    }

    /// Sends one LLDP probe out of every live port of every switch,
    /// expires links whose probes stopped arriving, and drops setups
    /// whose barriers never came back.
    pub fn lldp_round(&self) {
        for sw in self.switches() {
            self.probe_switch(&sw);
        }
        let now = Instant::now();
        let timeout = Timers::secs(self.config.timers.link_timeout);
        let change = self.topology.lock().expire_links(now, timeout);
        pipeline::topology_changed(&self.ctx(), &change);
        let idle = Timers::secs(self.config.limits.host_idle);
        let change = self.topology.lock().expire_hosts(now, idle);
        pipeline::topology_changed(&self.ctx(), &change);
        self.forwarding.expire(
            &self.installer,
            Timers::secs(self.config.limits.path_idle),
            now,
        );
        self.installer
            .sweep(Timers::secs(self.config.timers.request_timeout));
        let lost = self.router.expire(now);
        self.stats.routed_dropped.add(lost as u64);
        self.sessions
            .retry_requested(&self.installer, &self.topology);
        self.sessions
            .expire_parked(Timers::secs(self.config.timers.parked_timeout));
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
        let now = crate::lldp::now_ms();
        for (port, mac) in ports {
            plan.push(
                sw.dpid,
                &Message::PacketOut(messages::probe_out(&self.lldp_key, sw.dpid, port, mac, now)),
            );
        }
        self.installer.execute(&mut plan);
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

    /// Clears a manual override and re-scores the session, in one change:
    /// with the CRM unreadable, nothing changes.
    pub async fn clear_override(&self, id: &str) -> Result<Session, SessionError> {
        let inputs = self.sessions.rescore_inputs(id, None)?;
        let lookup = self.strict_lookup(&inputs.to_client()).await?;
        self.sessions
            .apply_rescore(&self.installer, id, inputs, &lookup, true)
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
        let lookup = self.strict_lookup(&inputs.to_client()).await?;
        self.sessions
            .apply_rescore(&self.installer, id, inputs, &lookup, false)
    }

    /// The CRM's answer, or an error when Redis cannot be read (remote
    /// mode): a change made on the strength of an empty answer would drop
    /// a customer to the default tier while saying all went well.
    async fn strict_lookup(&self, client: &ClientData) -> Result<Lookup, SessionError> {
        match self.sessions.crm().mode {
            CrmMode::Replica => Ok(self.sessions.snapshot().lookup(
                client.phone.as_deref(),
                client.ip,
                client.promo_code.as_deref(),
            )),
            CrmMode::Remote => self
                .sessions
                .crm()
                .store
                .lookup(
                    client.phone.as_deref(),
                    client.ip,
                    client.promo_code.as_deref(),
                )
                .await
                .map_err(|e| {
                    self.stats.redis_errors.inc();
                    SessionError::Unavailable(e.to_string())
                }),
        }
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

    /// A session an application server requests: scored like any other;
    /// answered once every switch of its path confirmed its tier (or at
    /// once when its hosts are not located yet: it waits for them). A
    /// path that is not confirmed within the request timeout is taken
    /// down again and refused.
    pub async fn request_session(&self, req: AppRequest) -> Result<(Session, bool), AppError> {
        if let Some(v) = self
            .sessions
            .by_external(&req.external_id, &req.key)
            .map_err(AppError::Refused)?
        {
            return Ok((v, false));
        }
        let lookup = self.lookup(&req.inputs.to_client()).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let outcome = self
            .sessions
            .request_app(
                &self.installer,
                &self.topology,
                req,
                &lookup,
                Box::new(move |ok| {
                    let _ = tx.send(ok);
                }),
            )
            .map_err(AppError::Refused)?;
        match outcome {
            Outcome::Existing(v) => Ok((v, false)),
            Outcome::Waiting(v) => Ok((v, true)),
            Outcome::Admitted(id, v) => {
                let wait = Timers::secs(self.config.timers.request_timeout);
                match tokio::time::timeout(wait, rx).await {
                    Ok(Ok(true)) => Ok((v, true)),
                    _ => {
                        self.sessions
                            .end(&self.installer, id, "a switch did not confirm its tier");
                        Err(AppError::NotConfirmed)
                    }
                }
            }
        }
    }

    /// The conditions an operator should look at now: Redis unreachable
    /// (`redis_up` false), OFPT_ERRORs of the last ten minutes per switch,
    /// meter pools above 80 % (critical when full).
    pub fn alarms(&self, redis_up: bool) -> Vec<Alarm> {
        use tierflow_api::views::{AlarmKind, Severity, format_dpid};
        let now = chrono::Utc::now();
        let mut st = self.alarms.lock();
        let mut out = Vec::new();
        if redis_up {
            st.redis_down_since = None;
        } else {
            let since = *st.redis_down_since.get_or_insert(now);
            out.push(Alarm {
                kind: AlarmKind::RedisDown,
                severity: Severity::Critical,
                message: "Redis does not answer: new sessions get the default tier and session \
                          records wait to be written"
                    .into(),
                dpid: None,
                since,
                count: 1,
            });
        }
        st.switch_errors
            .retain(|_, e| e.last_seen.elapsed() < ERROR_ALARM_FOR);
        for (dpid, e) in &st.switch_errors {
            out.push(Alarm {
                kind: AlarmKind::SwitchError,
                severity: Severity::Warning,
                message: format!("switch {} sent OFPT_ERROR {}", format_dpid(*dpid), e.last),
                dpid: Some(format_dpid(*dpid)),
                since: e.since,
                count: e.count,
            });
        }
        let mut full = Vec::new();
        for sw in self.switches() {
            let (used, max) = self.sessions.meter_pool(sw.dpid);
            let (used, max) = (used as u64, u64::from(max));
            if max > 0 && used * 100 > max * 80 {
                full.push((sw.dpid, used, max));
            }
        }
        st.meter_pool_since
            .retain(|d, _| full.iter().any(|(f, _, _)| f == d));
        for (dpid, used, max) in full {
            let since = *st.meter_pool_since.entry(dpid).or_insert(now);
            out.push(Alarm {
                kind: AlarmKind::MeterPool,
                severity: if used >= max {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                message: format!(
                    "switch {}: {used} of {max} meters in use",
                    format_dpid(dpid)
                ),
                dpid: Some(format_dpid(dpid)),
                since,
                count: 1,
            });
        }
        out
    }

    /// A caller's number in E.164, with the configured default country
    /// for national numbers.
    pub fn normalize_phone(&self, raw: &str) -> Option<String> {
        crate::sip::normalize_e164(raw, &self.config.default_country)
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
            ChangeKind::Vlan | ChangeKind::Port => self.net_changed(),
            ChangeKind::Everything => {
                let snap = self.sessions.snapshot();
                for t in &snap.tiers {
                    self.sessions.tier_changed(&self.installer, &t.name);
                }
                self.sync_queues(None);
                self.services_changed();
                self.net_changed();
                self.rescore_all().await;
            }
        }
    }

    /// VLANs or ports changed (or may have: the replica resynced): the
    /// flows the differences made wrong leave the switches. A changed
    /// port's hosts are forgotten (their next frame learns them in their
    /// new VLAN) with their paths and sessions; a changed VLAN's carried
    /// paths, sessions and waiting packets go (its gateways may route
    /// otherwise now). The first VLAN or port configured, or the last one
    /// removed, changes every flow's shape: every path and session goes.
    /// Untiered flows (which nothing tracks) go too; they come back with
    /// their next packet.
    pub fn net_changed(&self) {
        use std::sync::atomic::Ordering;
        let snap = self.sessions.snapshot();
        let (ports, vlans) = {
            let mut seen = self.net_seen.lock();
            let ports: Vec<PortRef> = changed(&seen.1, &snap.ports, |p| {
                (p.dpid_value().unwrap_or_default(), p.port)
            });
            let vlans: Vec<u16> = changed(&seen.0, &snap.vlans, |v| v.vid);
            *seen = (snap.vlans.clone(), snap.ports.clone());
            (ports, vlans)
        };
        let active = snap.vlans_active();
        let flipped = self.vlans_active.swap(active, Ordering::Relaxed) != active;
        if !flipped && ports.is_empty() && vlans.is_empty() {
            return;
        }
        let untiered = cookie::delete(cookie::cookie(cookie::Kind::Untiered, 0), cookie::KIND_MASK);
        let mut plan = Plan::new();
        for sw in self.switches() {
            plan.push(sw.dpid, &untiered);
        }
        self.installer.execute(&mut plan);
        if flipped {
            tracing::info!(
                "VLANs {}: every path and session is set up again",
                if active { "configured" } else { "all gone" }
            );
            self.forwarding.clear(&self.installer);
            self.sessions.park_where(&self.installer, |_| true);
            return;
        }
        for port in ports {
            tracing::info!("port {:016x}:{} changed VLANs", port.0, port.1);
            let change = self.topology.lock().forget_port(port);
            pipeline::topology_changed(&self.ctx(), &change);
            self.sessions.park_where(&self.installer, |r| {
                let ends = |h: &[crate::sessions::record::SessionHop]| {
                    h.first().is_some_and(|h| (h.dpid, h.in_port) == port)
                        || h.last().is_some_and(|h| (h.dpid, h.out_port) == port)
                };
                ends(&r.hops) || r.legs().iter().any(|g| ends(&g.hops))
            });
        }
        for vid in vlans {
            tracing::info!("VLAN {vid} changed");
            self.forwarding.vlan_changed(&self.installer, vid);
            self.router.vlan_changed(vid);
            self.sessions.park_where(&self.installer, |r| {
                let touches = |c: &Option<Box<crate::vlan::Carry>>| {
                    c.as_deref().is_some_and(|c| c.touches(vid))
                };
                touches(&r.carry) || r.legs().iter().any(|g| touches(&g.carry))
            });
        }
    }

    fn services_changed(&self) {
        for sw in self.switches() {
            self.installer
                .execute(&mut self.sessions.service_flows(sw.dpid));
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
        self.sessions
            .run_writer(shutdown, &|| self.cluster.acts())
            .await;
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

    /// The rate every live session gets, from its meters: one meter
    /// statistics request per switch per `every`, whatever the number of
    /// sessions.
    pub async fn run_measure(&self, every: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rates = crate::sessions::measure::Rates::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            // The switches are asked first, the sessions walked after,
            // and only if some switch answered: the walk (every live
            // session, under the table's lock that admissions take) is
            // not paid for nothing where switches keep no meter stats.
            if self.sessions.live_count() == 0 {
                continue;
            }
            let mut passed = crate::sessions::measure::Passed::default();
            for sw in self.installer.switches() {
                let dpid = &sw.dpid;
                let parts = match sw
                    .multipart(MultipartRequestBody::Meter(
                        openflow::multipart::MeterMultipartRequest {
                            meter_id: openflow::METER_ALL,
                        },
                    ))
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        debug!("meter stats of {dpid:#x} not read: {e}");
                        continue;
                    }
                };
                for p in &parts {
                    crate::sessions::measure::add_passed(*dpid, &p.body, &mut passed);
                }
            }
            if passed.is_empty() {
                continue;
            }
            let targets = self.sessions.meter_targets();
            let r = rates.poll(&targets, &passed, Instant::now());
            self.sessions.set_measured(&r, chrono::Utc::now());
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

/// The flows every switch starts with (after our old ones are deleted, or
/// as they are on a switch taken over): misses to the guard table, LLDP
/// to the controller.
fn push_base_flows(plan: &mut Plan, dpid: u64) {
    plan.push(dpid, &messages::table_miss());
    plan.push(dpid, &messages::guard_miss());
    plan.push(dpid, &messages::lldp_to_controller());
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

/// The keys of the records that differ between `old` and `new` (added,
/// removed or changed).
fn changed<T: PartialEq, K: PartialEq + Copy>(
    old: &[T],
    new: &[T],
    key: impl Fn(&T) -> K,
) -> Vec<K> {
    let mut out: Vec<K> = Vec::new();
    for (a, b) in [(old, new), (new, old)] {
        for x in a {
            let k = key(x);
            if b.iter().find(|y| key(y) == k) != Some(x) && !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

/// The IPv4 source a removed flow matched.
fn ipv4_src(fr: &FlowRemoved<'_>) -> Option<std::net::Ipv4Addr> {
    fr.match_.fields.iter().find_map(|f| match f {
        openflow::Oxm::Ipv4Src(a, _) => Some(*a),
        _ => None,
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
        // The role goes first: the switch takes this connection's writes
        // (or refuses them) by it.
        match self.cluster.role() {
            crate::cluster::Role::Follower { term, .. } | crate::cluster::Role::Fenced { term } => {
                sw.send(&messages::role_request(false, term));
                return Ok(());
            }
            crate::cluster::Role::Leader { term } => {
                sw.send(&messages::role_request(true, term));
            }
            crate::cluster::Role::Starting | crate::cluster::Role::Alone => {}
        }
        let mut plan = Plan::new();
        plan.push(sw.dpid, &messages::set_config());
        plan.push(sw.dpid, &messages::delete_ours());
        push_base_flows(&mut plan, sw.dpid);
        self.installer.execute(&mut plan);
        Ok(())
    }

    fn switch_learn<'a>(
        &'a self,
        sw: Arc<Switch>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.learn_switch(sw))
    }

    /// A switch's connection ended. Its sessions stay: the switch keeps
    /// forwarding with what it has, and when it connects again its meters
    /// and flows are put back (`switch_ready`); its links go, and the
    /// sessions crossing them move, only when their probes time out.
    /// Plain paths through it go now (their next packet finds another way).
    fn switch_disconnected(&self, sw: &Arc<Switch>) {
        // A newer connection of the same datapath may have replaced it.
        if !self.installer.remove(sw) {
            return;
        }
        let change = self.topology.lock().switch_down(sw.dpid);
        pipeline::topology_changed(&self.ctx(), &change);
        self.forwarding.switch_gone(&self.installer, sw.dpid);
    }

    /// Every PACKET_IN. One in `LATENCY_SAMPLE` is timed into the latency
    /// histogram.
    fn packet_in(&self, sw: &Arc<Switch>, frame: &Bytes, pi: &PacketIn<'_>) {
        let Some(in_port) = pi.match_.in_port() else {
            return;
        };
        // A follower decides nothing (a switch may send a few before it
        // takes the SLAVE role).
        if !self.cluster.acts() {
            return;
        }
        let now = Instant::now();
        let timed = self
            .stats
            .packet_ins
            .inc_get()
            .is_multiple_of(LATENCY_SAMPLE)
            .then_some(now);
        // A flood from one port costs that port: its packet-ins beyond
        // the rate are dropped here, before any work. Its LLDP frames
        // count apart (the guard table meters them apart too).
        let limit = self.config.limits.packet_ins_per_port;
        let lldp = pi.data.get(12..14) == Some(&crate::lldp::ETH_TYPE_LLDP.to_be_bytes()[..]);
        let rate = if lldp {
            messages::LLDP_PPS_PER_PORT
        } else {
            limit
        };
        if limit > 0 && !sw.admit_packet_in(in_port, lldp, rate, now) {
            self.stats.packet_ins_dropped.inc();
            return;
        }
        let pending = pipeline::packet_in(&self.ctx(), sw.dpid, in_port, frame, &pi.data, now);
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
            } else if info.ports.len() < crate::net::switch::MAX_PORTS
                || info.ports.contains_key(&port)
            {
                info.ports.insert(port, ps.desc.clone());
            } else {
                debug!(
                    "switch {:016x} describes more than {} ports: port {port} ignored",
                    sw.dpid,
                    crate::net::switch::MAX_PORTS
                );
                return;
            }
        }
        debug!(
            "port {port} {} ({})",
            if up { "up" } else { "down" },
            ps.reason
        );
        if ps.reason == PortReason::Add {
            let mut plan = Plan::new();
            self.push_guard(&mut plan, sw, port);
            self.installer.execute(&mut plan);
        } else if ps.reason == PortReason::Delete && port < PortNo::Max.value() {
            let mut plan = Plan::new();
            for flow in messages::delete_guard(port) {
                plan.push(sw.dpid, &flow);
            }
            let ids = [
                messages::guard_meter_id(port),
                messages::lldp_guard_meter_id(port),
            ];
            for id in ids.into_iter().flatten() {
                plan.push(sw.dpid, &Message::MeterMod(messages::delete_meter(id)));
            }
            self.installer.execute(&mut plan);
        }
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
            self.sessions.flow_removed(
                &self.installer,
                sw.dpid,
                id,
                false,
                ipv4_src(fr),
                fr.reason,
            );
        } else if let Some(id) = cookie::id_of(fr.cookie, cookie::Kind::Media) {
            self.sessions
                .flow_removed(&self.installer, sw.dpid, id, true, ipv4_src(fr), fr.reason);
        }
    }

    /// OFPT_ERROR from a switch: counted and logged with what it refers to.
    fn switch_error(&self, sw: &Switch, xid: u32, e: &ErrorMsg<'_>) {
        if let Ok((_, Message::MeterMod(m))) = openflow::decode(&e.data)
            && m.meter_id == openflow::METER_CONTROLLER
        {
            tracing::info!(
                dpid = format_args!("{:016x}", sw.dpid),
                "switch has no controller meter ({e}): packet-ins are limited by the controller only"
            );
            return;
        }
        self.stats.switch_errors.inc();
        {
            let mut st = self.alarms.lock();
            let seen = st.switch_errors.entry(sw.dpid).or_insert_with(|| Errors {
                since: chrono::Utc::now(),
                last_seen: Instant::now(),
                count: 0,
                last: String::new(),
            });
            seen.count += 1;
            seen.last_seen = Instant::now();
            seen.last = e.to_string();
        }
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
