//! [`ControlBackend`]: the REST API's view of the control plane
//! (`tierflow_api::Backend`). CRM records go through the [`Store`] (its
//! change events then reach the replica and the live network through
//! `ControlPlane::crm_changed`); sessions are the control plane's session
//! table; switch state is read live from the switches and OVSDB. Owns the
//! rules that need state (see the trait's doc) and the Prometheus text of
//! the control plane's counters and gauges.

use crate::control::{AppError, ControlPlane};
use crate::crm::{self, CrmError, Store, Write};
use crate::net::{RequestError, Switch};
use crate::sessions::record::StateReason;
use crate::sessions::request::Refused;
use crate::sessions::{HoldCause, SessionError};
use openflow::multipart::{
    FlowStatsRequest, MeterFeatures, MeterMultipartRequest, MultipartReplyBody,
    MultipartRequestBody, QueueStatsRequest,
};
use openflow::{Match, PortNo};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tierflow_api::backend::{Backend, BackendError};
use tierflow_api::model::{
    ClientData, Customer, Policy, PortConfig, Promotion, Service, Session, SessionState, Tier, Vlan,
};
use tierflow_api::views::{
    Alarm, ClusterView, CustomerFilter, EndpointStatus, FlowView, Health, HealthStatus, HostView,
    InstanceView, LinkView, MeterFeaturesView, MeterView, Page, PortView, QueueView, SessionFilter,
    SessionRequest, SwitchView, TopologyView, format_dpid,
};

/// How long a session action waits for a tier the store has but the
/// replica has not applied yet (a tier created a moment ago).
const REPLICA_WAIT: Duration = Duration::from_secs(2);

/// How long `/health` waits for OVSDB endpoints not connected yet.
const HEALTH_OVSDB_WAIT: Duration = Duration::from_millis(300);

type R<T> = Result<T, BackendError>;

/// The control plane behind the REST API.
#[derive(Debug)]
pub struct ControlBackend {
    ctl: Arc<ControlPlane>,
    metrics: crate::metrics::Metrics,
}

impl ControlBackend {
    pub fn new(ctl: Arc<ControlPlane>) -> Self {
        ControlBackend {
            metrics: crate::metrics::Metrics::new(ctl.clone()),
            ctl,
        }
    }

    fn store(&self) -> &Store {
        &self.ctl.sessions().crm().store
    }

    /// A session that is not live: ended (in memory or in Redis) or
    /// unknown.
    async fn not_live(&self, id: &str) -> BackendError {
        if self.ended_session(id).await.is_some() {
            BackendError::Conflict(format!("session {id} has ended"))
        } else {
            BackendError::not_found("session", id)
        }
    }

    async fn ended_session(&self, id: &str) -> Option<Session> {
        if let Some(s) = self.ctl.sessions().find_ended(id) {
            return Some(s);
        }
        match self.store().get_session(id).await {
            Ok(mut s) => {
                // A record still marked live while no controller holds it
                // (the writer lags, or it is from before a restart) is
                // shown as it was last written.
                if !self.ctl.sessions().is_current(id) && s.state != SessionState::Ended {
                    s.state_reason = format!("{} (not live on this controller)", s.state_reason);
                }
                Some(s)
            }
            Err(_) => None,
        }
    }

    fn session_error(&self, id: &str, e: SessionError, field: &str) -> BackendError {
        match e {
            SessionError::NotFound => BackendError::not_found("session", id),
            SessionError::UnknownTier(t) => {
                BackendError::invalid(field, format!("no tier named {t:?}"))
            }
            SessionError::Unavailable(e) => BackendError::Unavailable(e),
        }
    }

    /// Waits (bounded) until the replica knows `tier`, when the store has
    /// it: a tier created a moment ago through the API.
    async fn tier_in_replica(&self, tier: &str) -> R<()> {
        let known = || {
            self.ctl
                .sessions()
                .crm()
                .replica
                .snapshot()
                .tier(tier)
                .is_some()
        };
        if known() {
            return Ok(());
        }
        match self.store().get_tier(tier).await {
            Ok(_) => {}
            Err(CrmError::NotFound { .. }) => {
                return Err(BackendError::invalid(
                    "tier",
                    format!("no tier named {tier:?}"),
                ));
            }
            Err(e) => return Err(crm_err(e)),
        }
        let t0 = std::time::Instant::now();
        while !known() {
            if t0.elapsed() > REPLICA_WAIT {
                return Err(BackendError::Unavailable(format!(
                    "tier {tier:?} is stored but not applied yet; retry"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The store, with `put_*` refusing to overwrite (409): POST.
    fn creating(&self) -> Store {
        self.store().writing(Write::Create)
    }

    /// The store, with `put_*` refusing to create (404): PUT (the API
    /// layer checked the body names the path's record).
    fn updating(&self) -> Store {
        self.store().writing(Write::Update)
    }

    /// Waits (bounded) until the replica's snapshot satisfies `applied`:
    /// a VLAN or port change is in force on the data plane when its
    /// write is answered.
    async fn net_applied(&self, applied: impl Fn(&crm::Snapshot) -> bool) {
        let t0 = std::time::Instant::now();
        while !applied(&self.ctl.sessions().snapshot()) && t0.elapsed() < REPLICA_WAIT {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn switch_or_404(&self, dpid: u64) -> R<Arc<Switch>> {
        self.ctl
            .switch(dpid)
            .ok_or_else(|| BackendError::not_found("switch", format_dpid(dpid)))
    }
}

fn crm_err(e: CrmError) -> BackendError {
    match e {
        CrmError::NotFound { kind, id } => BackendError::NotFound { kind, id },
        CrmError::Conflict(m) => BackendError::Conflict(m),
        CrmError::Invalid(f) => BackendError::Invalid(f),
        CrmError::Redis(_) | CrmError::Timeout => BackendError::Unavailable(e.to_string()),
        CrmError::Corrupt { .. } => BackendError::Internal(e.to_string()),
    }
}

fn switch_err(e: RequestError) -> BackendError {
    match e {
        RequestError::Switch { .. } => BackendError::Internal(e.to_string()),
        _ => BackendError::Unavailable(e.to_string()),
    }
}

fn deleted(kind: &'static str, id: &str, r: Result<bool, CrmError>) -> R<()> {
    match r {
        Ok(true) => Ok(()),
        Ok(false) => Err(BackendError::not_found(kind, id)),
        Err(e) => Err(crm_err(e)),
    }
}

fn page<T>(items: Vec<T>, offset: usize, limit: usize) -> Page<T> {
    let total = items.len();
    Page {
        items: items.into_iter().skip(offset).take(limit).collect(),
        total,
        offset,
        limit,
    }
}

fn bit_names(bits: u32, names: &[(u32, &str)]) -> Vec<String> {
    names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| (*n).to_string())
        .collect()
}

fn meter_features_view(m: &MeterFeatures) -> MeterFeaturesView {
    MeterFeaturesView {
        max_meter: m.max_meter,
        band_types: bit_names(m.band_types, &[(1 << 1, "DROP"), (1 << 2, "DSCP_REMARK")]),
        capabilities: bit_names(
            m.capabilities,
            &[(1, "KBPS"), (2, "PKTPS"), (4, "BURST"), (8, "STATS")],
        ),
        max_bands: m.max_bands,
        max_color: m.max_color,
    }
}

fn switch_view(sw: &Switch) -> SwitchView {
    let info = sw.info.read();
    SwitchView {
        dpid: format_dpid(sw.dpid),
        address: sw.peer.to_string(),
        n_tables: sw.features.n_tables,
        capabilities: bit_names(
            sw.features.capabilities,
            &[
                (1, "FLOW_STATS"),
                (2, "TABLE_STATS"),
                (4, "PORT_STATS"),
                (8, "GROUP_STATS"),
                (32, "IP_REASM"),
                (64, "QUEUE_STATS"),
                (256, "PORT_BLOCKED"),
            ],
        ),
        mfr_desc: info.mfr_desc.clone(),
        hw_desc: info.hw_desc.clone(),
        sw_desc: info.sw_desc.clone(),
        ports: info
            .ports
            .values()
            .map(|p| PortView {
                port_no: p.port_no.value(),
                name: p.name.as_string(),
                hw_addr: p.hw_addr.to_string(),
                up: p.is_up(),
                curr_speed_kbps: p.curr_speed,
            })
            .collect(),
        meter_features: info.meter_features.as_ref().map(meter_features_view),
        connected_at: sw.connected_at,
    }
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

#[async_trait::async_trait]
impl Backend for ControlBackend {
    async fn health(&self) -> Health {
        let redis = self.store().ping().await.is_ok();
        // Endpoints not connected yet get one short attempt, so a
        // controller that never needed OVSDB does not look degraded. Short:
        // a refused connection fails at once, and a probe polling /health
        // must not wait out the OVSDB timeout of an unreachable endpoint
        // (it shows as not connected).
        let _ = tokio::time::timeout(HEALTH_OVSDB_WAIT, self.ctl.ovsdb().connect_all()).await;
        let ovsdb: Vec<EndpointStatus> = self
            .ctl
            .ovsdb()
            .status()
            .into_iter()
            .map(|(endpoint, connected)| EndpointStatus {
                endpoint,
                connected,
            })
            .collect();
        let ok = redis && ovsdb.iter().all(|e| e.connected);
        Health {
            status: if ok {
                HealthStatus::Ok
            } else {
                HealthStatus::Degraded
            },
            redis,
            ovsdb,
            switches: self.ctl.switches().len(),
            instance: self.ctl.cluster().id.clone(),
            role: self.ctl.cluster().role().name().to_owned(),
        }
    }

    async fn cluster(&self) -> Result<ClusterView, BackendError> {
        let (leader, term, members) = self.store().cluster().await.map_err(crm_err)?;
        let instances = members
            .into_iter()
            .map(|m| {
                let info: crate::cluster::Info = serde_json::from_str(&m.info).unwrap_or_default();
                let leads = leader.as_deref() == Some(m.id.as_str());
                InstanceView {
                    lease_expires_at: chrono::DateTime::from_timestamp_millis(
                        i64::try_from(m.lease_until_ms).unwrap_or(i64::MAX),
                    )
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default(),
                    role: if info.role.is_empty() {
                        "unknown".into()
                    } else {
                        info.role
                    },
                    api: info.api,
                    openflow: info.openflow,
                    started_at: info.started_at,
                    master_of: if leads {
                        info.switches.clone()
                    } else {
                        Vec::new()
                    },
                    switches: info.switches,
                    id: m.id,
                }
            })
            .collect();
        Ok(ClusterView {
            instance: self.ctl.cluster().id.clone(),
            leader,
            term,
            instances,
        })
    }

    fn forward_to(&self) -> Option<String> {
        if self.ctl.cluster().acts() {
            None
        } else {
            self.ctl.cluster().leader_api()
        }
    }

    async fn switches(&self) -> Vec<SwitchView> {
        self.ctl.switches().iter().map(|s| switch_view(s)).collect()
    }

    async fn switch(&self, dpid: u64) -> Option<SwitchView> {
        self.ctl.switch(dpid).map(|s| switch_view(&s))
    }

    async fn switch_flows(&self, dpid: u64) -> R<Vec<FlowView>> {
        let sw = self.switch_or_404(dpid)?;
        let flows = sw
            .flow_stats(FlowStatsRequest {
                table_id: openflow::TABLE_ALL,
                out_port: PortNo::Any,
                out_group: openflow::GROUP_ANY,
                cookie: 0,
                cookie_mask: 0,
                match_: Match::new(),
            })
            .await
            .map_err(switch_err)?;
        Ok(flows
            .iter()
            .map(|f| FlowView {
                table_id: f.table_id,
                priority: f.priority,
                cookie: format!("0x{:016x}", f.cookie),
                idle_timeout: f.idle_timeout,
                hard_timeout: f.hard_timeout,
                duration_sec: f.duration_sec,
                packet_count: f.packet_count,
                byte_count: f.byte_count,
                match_: json(&f.match_),
                instructions: json(&f.instructions),
            })
            .collect())
    }

    async fn switch_meters(&self, dpid: u64) -> R<Vec<MeterView>> {
        let sw = self.switch_or_404(dpid)?;
        if sw.info.read().meter_features.is_none() {
            // A switch without meters has none to show (and may answer
            // the requests with an error).
            return Ok(Vec::new());
        }
        let all = MeterMultipartRequest {
            meter_id: openflow::METER_ALL,
        };
        let (config, stats) = tokio::join!(
            sw.multipart(MultipartRequestBody::MeterConfig(all)),
            sw.multipart(MultipartRequestBody::Meter(all)),
        );
        type Bands = (serde_json::Value, Option<(u32, u32)>);
        let mut bands: BTreeMap<u32, Bands> = BTreeMap::new();
        for part in config.map_err(switch_err)? {
            if let MultipartReplyBody::MeterConfig(v) = part.body {
                for m in v {
                    let first = (m.flags & openflow::meter_flags::KBPS != 0)
                        .then(|| m.bands.first())
                        .flatten()
                        .and_then(|b| match *b {
                            openflow::MeterBand::Drop { rate, burst_size }
                            | openflow::MeterBand::DscpRemark {
                                rate, burst_size, ..
                            }
                            | openflow::MeterBand::Experimenter {
                                rate, burst_size, ..
                            } => Some((rate, burst_size)),
                            openflow::MeterBand::Unknown { .. } => None,
                        });
                    bands.insert(m.meter_id, (json(&m.bands), first));
                }
            }
        }
        let mut out = Vec::new();
        for part in stats.map_err(switch_err)? {
            if let MultipartReplyBody::Meter(v) = part.body {
                for m in v {
                    let (b, first) = bands
                        .remove(&m.meter_id)
                        .unwrap_or((serde_json::Value::Array(Vec::new()), None));
                    out.push(MeterView {
                        meter_id: m.meter_id,
                        flow_count: m.flow_count,
                        packet_in_count: m.packet_in_count,
                        byte_in_count: m.byte_in_count,
                        duration_sec: m.duration_sec,
                        rate_kbps: first.map(|f| f.0),
                        bucket_kbits: first.map(|f| f.1),
                        bands: b,
                    });
                }
            }
        }
        // Configured meters the stats reply missed still show.
        for (meter_id, (b, first)) in bands {
            out.push(MeterView {
                meter_id,
                flow_count: 0,
                packet_in_count: 0,
                byte_in_count: 0,
                duration_sec: 0,
                rate_kbps: first.map(|f| f.0),
                bucket_kbits: first.map(|f| f.1),
                bands: b,
            });
        }
        out.sort_by_key(|m| m.meter_id);
        Ok(out)
    }

    async fn switch_queues(&self, dpid: u64) -> R<Vec<QueueView>> {
        let sw = self.switch_or_404(dpid)?;
        let names: BTreeMap<u32, String> = sw
            .info
            .read()
            .ports
            .values()
            .map(|p| (p.port_no.value(), p.name.as_string()))
            .collect();
        let (stats, ovs) = tokio::join!(
            sw.multipart(MultipartRequestBody::Queue(QueueStatsRequest {
                port_no: PortNo::Any,
                queue_id: openflow::QUEUE_ALL,
            })),
            self.ctl.ovsdb().queues(dpid),
        );
        let mut rows: BTreeMap<(u32, u32), QueueView> = BTreeMap::new();
        let stats_err = match stats {
            Ok(parts) => {
                for part in parts {
                    if let MultipartReplyBody::Queue(v) = part.body {
                        for q in v {
                            let port_no = q.port_no.value();
                            rows.insert(
                                (port_no, q.queue_id),
                                QueueView {
                                    port_no,
                                    port_name: names.get(&port_no).cloned().unwrap_or_default(),
                                    queue_id: q.queue_id,
                                    min_kbps: None,
                                    max_kbps: None,
                                    tx_packets: q.tx_packets,
                                    tx_bytes: q.tx_bytes,
                                },
                            );
                        }
                    }
                }
                None
            }
            Err(e) => Some(e),
        };
        let kbps = |bps: Option<u64>| bps.map(|b| u32::try_from(b / 1000).unwrap_or(u32::MAX));
        match ovs {
            Ok(ports) => {
                for p in ports {
                    let Some(port_no) =
                        names.iter().find(|(_, n)| **n == p.port).map(|(no, _)| *no)
                    else {
                        continue;
                    };
                    for q in p.queues {
                        let row = rows.entry((port_no, q.queue_id)).or_insert(QueueView {
                            port_no,
                            port_name: p.port.clone(),
                            queue_id: q.queue_id,
                            min_kbps: None,
                            max_kbps: None,
                            tx_packets: 0,
                            tx_bytes: 0,
                        });
                        row.min_kbps = kbps(q.min_rate_bps);
                        row.max_kbps = kbps(q.max_rate_bps);
                    }
                }
            }
            Err(e) => {
                if let Some(se) = stats_err {
                    return Err(BackendError::Unavailable(format!(
                        "queue stats: {se}; OVSDB: {e}"
                    )));
                }
                tracing::debug!("queues of {dpid:016x} without OVSDB rates: {e}");
            }
        }
        Ok(rows.into_values().collect())
    }

    async fn topology(&self) -> TopologyView {
        let switches = self
            .ctl
            .switches()
            .iter()
            .map(|s| format_dpid(s.dpid))
            .collect();
        let (links, hosts) = self.ctl.topology_view();
        let mut links: Vec<LinkView> = links
            .into_iter()
            .map(|(a, b)| LinkView {
                src_dpid: format_dpid(a.0),
                src_port: a.1,
                dst_dpid: format_dpid(b.0),
                dst_port: b.1,
            })
            .collect();
        links.sort_by(|a, b| (&a.src_dpid, a.src_port).cmp(&(&b.src_dpid, b.src_port)));
        let mut hosts: Vec<HostView> = hosts
            .iter()
            .map(|h| HostView {
                mac: h.mac.to_string(),
                ip: h.ips.first().map(ToString::to_string),
                dpid: format_dpid(h.at.0),
                port: h.at.1,
                vlan: h.vlan,
            })
            .collect();
        hosts.sort_by(|a, b| (&a.mac, a.vlan).cmp(&(&b.mac, b.vlan)));
        TopologyView {
            switches,
            links,
            hosts,
        }
    }

    // ---- tiers ----

    async fn list_tiers(&self) -> R<Vec<Tier>> {
        self.store().list_tiers().await.map_err(crm_err)
    }

    async fn get_tier(&self, name: &str) -> R<Tier> {
        self.store().get_tier(name).await.map_err(crm_err)
    }

    async fn create_tier(&self, t: Tier) -> R<Tier> {
        self.creating().put_tier(&t).await.map_err(crm_err)?;
        Ok(t)
    }

    async fn update_tier(&self, _name: &str, t: Tier) -> R<Tier> {
        self.updating().put_tier(&t).await.map_err(crm_err)?;
        Ok(t)
    }

    async fn delete_tier(&self, name: &str) -> R<()> {
        if let Some(id) = self.ctl.sessions().tier_in_use(name) {
            return Err(BackendError::Conflict(format!(
                "tier {name:?} is in use by live session {id}"
            )));
        }
        deleted("tier", name, self.store().delete_tier(name).await)
    }

    // ---- VLANs and ports ----

    async fn list_vlans(&self) -> R<Vec<Vlan>> {
        self.store().list_vlans().await.map_err(crm_err)
    }

    async fn get_vlan(&self, vid: u16) -> R<Vlan> {
        self.store().get_vlan(vid).await.map_err(crm_err)
    }

    async fn create_vlan(&self, v: Vlan) -> R<Vlan> {
        self.creating().put_vlan(&v).await.map_err(crm_err)?;
        self.net_applied(|s| s.vlans.contains(&v)).await;
        Ok(v)
    }

    async fn update_vlan(&self, _vid: u16, v: Vlan) -> R<Vlan> {
        self.updating().put_vlan(&v).await.map_err(crm_err)?;
        self.net_applied(|s| s.vlans.contains(&v)).await;
        Ok(v)
    }

    async fn delete_vlan(&self, vid: u16) -> R<()> {
        deleted(
            "vlan",
            &vid.to_string(),
            self.store().delete_vlan(vid).await,
        )?;
        self.net_applied(|s| s.vlans.iter().all(|x| x.vid != vid))
            .await;
        Ok(())
    }

    async fn list_ports(&self) -> R<Vec<PortConfig>> {
        self.store().list_ports().await.map_err(crm_err)
    }

    async fn get_port(&self, dpid: u64, port: u32) -> R<PortConfig> {
        self.store().get_port(dpid, port).await.map_err(crm_err)
    }

    async fn put_port(&self, p: PortConfig) -> R<(PortConfig, bool)> {
        let p = p.canonical();
        let made = self.store().put_port(&p).await.map_err(crm_err)?;
        self.net_applied(|s| s.ports.contains(&p)).await;
        Ok((p, made))
    }

    async fn delete_port(&self, dpid: u64, port: u32) -> R<()> {
        let name = crm::keys::port_name(dpid, port);
        deleted("port", &name, self.store().delete_port(dpid, port).await)?;
        self.net_applied(|s| {
            s.ports
                .iter()
                .all(|p| (p.dpid_value(), p.port) != (Some(dpid), port))
        })
        .await;
        Ok(())
    }

    // ---- customers ----

    async fn list_customers(&self, f: CustomerFilter) -> R<Page<Customer>> {
        let all = self
            .store()
            .list_customers(&crm::CustomerFilter {
                segment: f.segment,
                phone: f.phone,
                ip: f.ip,
                offset: 0,
                limit: None,
            })
            .await
            .map_err(crm_err)?;
        Ok(page(all, f.offset, f.limit))
    }

    async fn get_customer(&self, id: &str) -> R<Customer> {
        self.store().get_customer(id).await.map_err(crm_err)
    }

    async fn create_customer(&self, c: Customer) -> R<Customer> {
        self.creating().put_customer(&c).await.map_err(crm_err)?;
        Ok(c)
    }

    async fn update_customer(&self, _id: &str, c: Customer) -> R<Customer> {
        self.updating().put_customer(&c).await.map_err(crm_err)?;
        Ok(c)
    }

    async fn delete_customer(&self, id: &str) -> R<()> {
        deleted("customer", id, self.store().delete_customer(id).await)
    }

    // ---- promotions ----

    async fn list_promotions(&self) -> R<Vec<Promotion>> {
        self.store().list_promotions().await.map_err(crm_err)
    }

    async fn get_promotion(&self, code: &str) -> R<Promotion> {
        self.store().get_promotion(code).await.map_err(crm_err)
    }

    async fn create_promotion(&self, p: Promotion) -> R<Promotion> {
        self.creating().put_promotion(&p).await.map_err(crm_err)?;
        Ok(p)
    }

    async fn update_promotion(&self, _code: &str, p: Promotion) -> R<Promotion> {
        self.updating().put_promotion(&p).await.map_err(crm_err)?;
        Ok(p)
    }

    async fn delete_promotion(&self, code: &str) -> R<()> {
        deleted("promotion", code, self.store().delete_promotion(code).await)
    }

    // ---- services ----

    async fn list_services(&self) -> R<Vec<Service>> {
        self.store().list_services().await.map_err(crm_err)
    }

    async fn get_service(&self, name: &str) -> R<Service> {
        self.store().get_service(name).await.map_err(crm_err)
    }

    async fn create_service(&self, sv: Service) -> R<Service> {
        self.creating().put_service(&sv).await.map_err(crm_err)?;
        Ok(sv)
    }

    async fn update_service(&self, _name: &str, sv: Service) -> R<Service> {
        self.updating().put_service(&sv).await.map_err(crm_err)?;
        Ok(sv)
    }

    async fn delete_service(&self, name: &str) -> R<()> {
        deleted("service", name, self.store().delete_service(name).await)
    }

    // ---- policy ----

    async fn get_policy(&self) -> R<Policy> {
        self.store().get_policy().await.map_err(crm_err)
    }

    async fn put_policy(&self, p: Policy) -> R<Policy> {
        self.store().put_policy(&p).await.map_err(crm_err)?;
        Ok(p)
    }

    // ---- sessions ----

    async fn list_sessions(&self, f: SessionFilter) -> R<Page<Session>> {
        let keep = |s: &Session| {
            f.tier.as_ref().is_none_or(|t| &s.tier == t)
                && f.customer
                    .as_ref()
                    .is_none_or(|c| s.customer_id.as_ref() == Some(c))
                && f.state.is_none_or(|st| s.state == st)
        };
        let mut all: BTreeMap<String, Session> = self
            .ctl
            .sessions()
            .ended_where(keep)
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        for s in self
            .ctl
            .sessions()
            .list(f.tier.as_deref(), f.customer.as_deref(), f.state)
        {
            all.insert(s.id.clone(), s);
        }
        let items: Vec<Session> = all.into_values().collect();
        Ok(page(items, f.offset, f.limit))
    }

    async fn get_session(&self, id: &str) -> R<Session> {
        if let Some(s) = self.ctl.sessions().find(id) {
            return Ok(s);
        }
        if let Some(s) = self.ctl.sessions().find_ended(id) {
            return Ok(s);
        }
        self.store().get_session(id).await.map_err(crm_err)
    }

    async fn delete_session(&self, id: &str) -> R<()> {
        // Ended meanwhile (idle, BYE) is the same outcome as ended now.
        if self.ctl.end_session(id, "deleted through the API")
            || self.ended_session(id).await.is_some()
        {
            Ok(())
        } else {
            Err(BackendError::not_found("session", id))
        }
    }

    async fn set_session_tier(&self, id: &str, tier: &str) -> R<Session> {
        if !self.ctl.sessions().is_current(id) {
            return Err(self.not_live(id).await);
        }
        self.tier_in_replica(tier).await?;
        self.ctl
            .set_override(id, tier)
            .map_err(|e| self.session_error(id, e, "tier"))
    }

    async fn clear_session_tier(&self, id: &str) -> R<Session> {
        if !self.ctl.sessions().is_current(id) {
            return Err(self.not_live(id).await);
        }
        self.ctl
            .clear_override(id)
            .await
            .map_err(|e| self.session_error(id, e, "tier"))
    }

    async fn client_data(&self, id: &str, d: ClientData) -> R<Session> {
        if !self.ctl.sessions().is_current(id) {
            return Err(self.not_live(id).await);
        }
        self.ctl
            .rescore(id, Some(d))
            .await
            .map_err(|e| self.session_error(id, e, "tier"))
    }

    async fn set_session_state(&self, id: &str, state: SessionState) -> R<Session> {
        if state == SessionState::Ended {
            return Err(BackendError::invalid(
                "state",
                "must be \"hold\" or \"active\"",
            ));
        }
        if !self.ctl.sessions().is_current(id) {
            return Err(self.not_live(id).await);
        }
        self.ctl
            .set_hold(
                id,
                state == SessionState::Hold,
                HoldCause::Cti,
                StateReason::Cti,
            )
            .map_err(|e| self.session_error(id, e, "tier"))
    }

    async fn alarms(&self) -> Vec<Alarm> {
        let redis = self.store().ping().await.is_ok();
        self.ctl.alarms(redis)
    }

    async fn request_session(&self, r: SessionRequest) -> R<(Session, bool)> {
        let ip4 = |field: &str, ip: std::net::IpAddr| match ip {
            std::net::IpAddr::V4(v4) => Ok(v4),
            std::net::IpAddr::V6(_) => Err(BackendError::invalid(
                field,
                "must be an IPv4 unicast address of a host",
            )),
        };
        let key = crate::messages::SessionKey {
            client: ip4("client.ip", r.client.ip)?,
            server: ip4("server.ip", r.server.ip)?,
            l4: Some((r.proto.ip_proto(), r.server.port.unwrap_or(0))),
            client_port: r.client.port,
        };
        let d = r.client_data.unwrap_or_default();
        let phone = match d.phone.as_deref() {
            Some(raw) => Some(self.ctl.normalize_phone(raw).ok_or_else(|| {
                BackendError::invalid("client_data.phone", "is not a phone number")
            })?),
            None => None,
        };
        let inputs = crate::sessions::record::Inputs::from_client(&ClientData {
            ip: Some(r.client.ip),
            mac: None,
            phone,
            promo_code: d.promo_code,
            account_id: d.account_id,
            source: Some(d.source.unwrap_or_else(|| "app-server".into())),
        });
        let req = crate::sessions::request::AppRequest {
            key,
            external_id: r.external_id,
            kind: r.kind,
            inputs,
        };
        self.ctl.request_session(req).await.map_err(|e| match e {
            AppError::Refused(Refused::Conflict(..)) => BackendError::Conflict(e.to_string()),
            AppError::Refused(Refused::NoTier) => {
                BackendError::Unavailable("no tier is configured yet".into())
            }
            AppError::Refused(Refused::TooManyWaiting | Refused::NoMeters)
            | AppError::NotConfirmed => BackendError::Unavailable(e.to_string()),
        })
    }

    fn metrics(&self) -> String {
        self.metrics.render()
    }
}
