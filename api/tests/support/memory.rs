//! An in-memory reference `Backend`: the documented semantics of
//! PRODUCT.md and of `tierflow_api::Backend`'s contract (409 rules,
//! references between resources, the expected-benefit score and tier
//! choice, overrides, hold, ending) without Redis or switches.
//!
//! It exists to pin those semantics down in executable form. It is not a
//! mock of the real backend: the same suite (`suite.rs`) runs against
//! the real control plane with real Redis from `controller/tests/`, and
//! both must pass it. Keep it honest: every rule here is one the real
//! backend must follow too.

#![allow(dead_code)]

use super::suite::Fixture;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tierflow_api::model::{
    ClientData, Customer, DEFAULT_VLAN, Explanation, Measured, Policy, PortConfig, Promotion,
    Reason, Service, Session, SessionState, Terms, Tier, Vlan, parse_net,
};
use tierflow_api::views::{
    Alarm, AlarmKind, CustomerFilter, EndpointStatus, FlowView, Health, HealthStatus, HostView,
    LinkView, MeterFeaturesView, MeterView, Page, PortView, QueueView, SessionFilter,
    SessionRequest, Severity, SwitchView, TopologyView, format_dpid,
};
use tierflow_api::{Backend, BackendError};

#[derive(Debug, Clone)]
struct SwitchState {
    view: SwitchView,
    flows: Vec<FlowView>,
    meters: Vec<MeterView>,
    queues: Vec<QueueView>,
}

/// OFPT_ERRORs a switch sent: since when, how many, the last one.
#[derive(Debug, Clone)]
struct SwitchErrors {
    since: DateTime<Utc>,
    count: u64,
    last: String,
}

#[derive(Debug)]
struct State {
    store_up: bool,
    store_down_since: Option<DateTime<Utc>>,
    switch_errors: BTreeMap<u64, SwitchErrors>,
    /// Since when each switch's meter pool is above 80 % (as alarms() saw).
    meter_pool_since: BTreeMap<u64, DateTime<Utc>>,
    tiers: BTreeMap<String, Tier>,
    customers: BTreeMap<String, Customer>,
    promotions: BTreeMap<String, Promotion>,
    services: BTreeMap<String, Service>,
    policy: Policy,
    sessions: BTreeMap<String, Session>,
    /// `external_id` of requested sessions -> session id.
    requested: BTreeMap<String, String>,
    next_session: u64,
    switches: BTreeMap<u64, SwitchState>,
    /// Links and hosts set by `set_topology` (none by default).
    links: Vec<LinkView>,
    hosts: Option<Vec<HostView>>,
    vlans: BTreeMap<u16, Vlan>,
    ports: BTreeMap<(u64, u32), PortConfig>,
}

/// The reference backend.
#[derive(Debug)]
pub struct Memory {
    state: Mutex<State>,
}

type R<T> = Result<T, BackendError>;

impl Default for Memory {
    fn default() -> Self {
        Memory {
            state: Mutex::new(State {
                store_up: true,
                store_down_since: None,
                switch_errors: BTreeMap::new(),
                meter_pool_since: BTreeMap::new(),
                tiers: BTreeMap::new(),
                customers: BTreeMap::new(),
                promotions: BTreeMap::new(),
                services: BTreeMap::new(),
                policy: Policy::default(),
                sessions: BTreeMap::new(),
                requested: BTreeMap::new(),
                next_session: 1,
                switches: BTreeMap::new(),
                links: Vec::new(),
                hosts: None,
                vlans: BTreeMap::new(),
                ports: BTreeMap::new(),
            }),
        }
    }
}

impl Memory {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, when the store is reachable.
    fn store(&self) -> R<MutexGuard<'_, State>> {
        let st = self.lock();
        if st.store_up {
            Ok(st)
        } else {
            Err(BackendError::Unavailable(
                "redis: connection refused".into(),
            ))
        }
    }

    pub fn break_store(&self) {
        let mut st = self.lock();
        st.store_up = false;
        st.store_down_since.get_or_insert_with(Utc::now);
    }

    /// The switch sent an OFPT_ERROR (`what`: its type and code).
    pub fn switch_error(&self, dpid: u64, what: &str) {
        let mut st = self.lock();
        let e = st
            .switch_errors
            .entry(dpid)
            .or_insert_with(|| SwitchErrors {
                since: Utc::now(),
                count: 0,
                last: String::new(),
            });
        e.count += 1;
        e.last = what.to_string();
    }

    /// The switch's meter pool holds `max_meter` meters.
    pub fn set_max_meter(&self, dpid: u64, max_meter: u32) {
        if let Some(f) = self
            .lock()
            .switches
            .get_mut(&dpid)
            .and_then(|s| s.view.meter_features.as_mut())
        {
            f.max_meter = max_meter;
        }
    }

    /// Links between the connected switches and where hosts attach, as
    /// discovery would have found them.
    pub fn set_topology(&self, links: Vec<LinkView>, hosts: Vec<HostView>) {
        let mut st = self.lock();
        st.links = links;
        st.hosts = Some(hosts);
    }

    /// The datapath ids the session crosses.
    pub fn set_path(&self, id: &str, path: Vec<String>) {
        if let Some(s) = self.lock().sessions.get_mut(id) {
            s.path = path;
        }
    }

    /// The switches' counters measured the session at these rates (kbit/s).
    pub fn measure(&self, id: &str, to_server: f64, to_client: f64) {
        if let Some(s) = self.lock().sessions.get_mut(id) {
            s.measured_kbps = Some(Measured {
                to_server,
                to_client,
                at: Utc::now(),
            });
        }
    }

    /// A session of `client_ip` to `service`, scored now.
    pub fn start_session(&self, client_ip: IpAddr, service: &str) -> R<String> {
        let mut st = self.store()?;
        let svc = st
            .services
            .get(service)
            .cloned()
            .ok_or_else(|| BackendError::not_found("service", service))?;
        let id = format!("s-{:08}", st.next_session);
        st.next_session += 1;
        let inputs = ClientData {
            ip: Some(client_ip),
            source: Some("packet-in".into()),
            ..ClientData::default()
        };
        let explanation = decide(&st, &inputs);
        let now = Utc::now();
        let server_ip = svc.net().map_or(client_ip, |n| n.addr());
        let session = Session {
            id: id.clone(),
            service: svc.name,
            client_ip,
            server_ip,
            state: SessionState::Active,
            tier: explanation.tier.clone(),
            override_tier: None,
            customer_id: explanation.customer_id.clone(),
            explanation,
            path: st.switches.keys().map(|d| format_dpid(*d)).collect(),
            state_reason: "new".into(),
            external_id: None,
            measured_kbps: None,
            meters: None,
            created_at: now,
            updated_at: now,
        };
        st.sessions.insert(id.clone(), session);
        Ok(id)
    }

    /// A switch with two ports, a flow, a meter and a queue.
    pub fn connect_switch(&self, dpid: u64) {
        let port = |n: u32| PortView {
            port_no: n,
            name: format!("s1-eth{n}"),
            hw_addr: format!("00:00:00:00:01:{n:02x}"),
            up: true,
            curr_speed_kbps: 10_000_000,
        };
        let view = SwitchView {
            dpid: format_dpid(dpid),
            address: "127.0.0.1:40001".into(),
            n_tables: 254,
            capabilities: vec!["FLOW_STATS".into(), "QUEUE_STATS".into()],
            mfr_desc: "memory".into(),
            hw_desc: "reference".into(),
            sw_desc: "0".into(),
            ports: vec![port(1), port(2)],
            meter_features: Some(MeterFeaturesView {
                max_meter: 262_144,
                band_types: vec!["DROP".into()],
                capabilities: vec!["KBPS".into(), "BURST".into(), "STATS".into()],
                max_bands: 1,
                max_color: 0,
            }),
            connected_at: Utc::now(),
        };
        let flows = vec![FlowView {
            table_id: 0,
            priority: 0,
            cookie: "0x0".into(),
            idle_timeout: 0,
            hard_timeout: 0,
            duration_sec: 1,
            packet_count: 0,
            byte_count: 0,
            match_: serde_json::json!({}),
            instructions: serde_json::json!([{"type": "APPLY_ACTIONS", "actions": [{"type": "OUTPUT", "port": "CONTROLLER"}]}]),
        }];
        let meters = vec![MeterView {
            meter_id: 1,
            flow_count: 0,
            packet_in_count: 0,
            byte_in_count: 0,
            duration_sec: 1,
            rate_kbps: Some(50000),
            bucket_kbits: Some(25000),
            bands: serde_json::json!([{"type": "DROP", "rate": 50000, "burst_size": 25000}]),
        }];
        let queues = vec![QueueView {
            port_no: 1,
            port_name: "s1-eth1".into(),
            queue_id: 1,
            min_kbps: Some(20_000),
            max_kbps: None,
            tx_packets: 0,
            tx_bytes: 0,
        }];
        self.lock().switches.insert(
            dpid,
            SwitchState {
                view,
                flows,
                meters,
                queues,
            },
        );
    }

    fn switch_state(&self, dpid: u64) -> R<SwitchState> {
        self.lock()
            .switches
            .get(&dpid)
            .cloned()
            .ok_or_else(|| BackendError::not_found("switch", format_dpid(dpid)))
    }
}

/// PRODUCT.md's "Expected benefit": match the customer by phone first,
/// then by IP; sum the weighted terms and a valid promotion's boost;
/// take the tier with the highest `min_benefit` not above the benefit,
/// lifted to the promotion's tier floor; no customer and no promotion:
/// the policy's default tier.
fn decide(st: &State, inputs: &ClientData) -> Explanation {
    let by_phone = inputs.phone.as_ref().and_then(|p| {
        st.customers
            .values()
            .find(|c| c.phones.iter().any(|x| x == p))
    });
    let by_ip = || {
        inputs.ip.and_then(|ip| {
            st.customers.values().find(|c| {
                c.ips
                    .iter()
                    .any(|n| parse_net(n).is_some_and(|n| n.contains(&ip)))
            })
        })
    };
    let (customer, matched_by) = match by_phone {
        Some(c) => (Some(c), Some("phone")),
        None => match by_ip() {
            Some(c) => (Some(c), Some("ip")),
            None => (None, None),
        },
    };
    let now = Utc::now();
    let promotion = inputs
        .promo_code
        .as_ref()
        .and_then(|code| st.promotions.get(code))
        .filter(|p| p.valid_at(now));
    let w = st.policy.weights;
    let mut terms = Terms::default();
    if let Some(c) = customer {
        terms.margin = w.margin * c.annual_revenue * c.margin_pct / 100.0;
        terms.opportunity = w.opportunity * c.open_opportunity_value * c.win_probability;
        terms.retention = w.retention * c.lifetime_value * c.churn_risk;
    }
    if let Some(p) = promotion {
        terms.promotion = p.benefit_boost;
    }
    let benefit = terms.margin + terms.opportunity + terms.retention + terms.promotion;
    let default = st.policy.default_tier.clone();
    let (tier, reason, detail) = if customer.is_none() && promotion.is_none() {
        (
            default.clone(),
            Reason::Default,
            "no customer matched: the policy's default tier".to_string(),
        )
    } else {
        let earned = st
            .tiers
            .values()
            .filter(|t| t.min_benefit <= benefit)
            .max_by(|a, b| a.min_benefit.total_cmp(&b.min_benefit));
        let floor = promotion
            .and_then(|p| p.tier.as_ref())
            .and_then(|t| st.tiers.get(t));
        match (earned, floor) {
            (e, Some(f)) if e.is_none_or(|e| f.min_benefit > e.min_benefit) => (
                f.name.clone(),
                Reason::Promotion,
                format!("promotion floor {} above the benefit {benefit}", f.name),
            ),
            (Some(e), _) => (
                e.name.clone(),
                Reason::Automatic,
                format!("benefit {benefit} reaches {} ({})", e.name, e.min_benefit),
            ),
            (None, _) => (
                default.clone(),
                Reason::Default,
                format!("benefit {benefit} below every tier: the default tier"),
            ),
        }
    };
    Explanation {
        inputs: inputs.clone(),
        customer_id: customer.map(|c| c.id.clone()),
        matched_by: matched_by.map(str::to_string),
        promotion: promotion.map(|p| p.code.clone()),
        weights: w,
        terms,
        benefit,
        tier,
        reason,
        detail,
        warnings: Vec::new(),
    }
}

/// Re-decides a session from its inputs, keeping an override and hold.
fn rescore(st: &State, s: &mut Session) {
    let mut e = decide(st, &s.explanation.inputs);
    s.customer_id = e.customer_id.clone();
    match &s.override_tier {
        Some(o) => {
            e.tier = o.clone();
            e.reason = Reason::ManualOverride;
            e.detail = format!("manual override to {o}");
        }
        None if s.state == SessionState::Hold => {
            e.reason = Reason::Hold;
            e.detail = format!("on hold in {}: the hold rate applies", e.tier);
        }
        None => {}
    }
    s.tier = e.tier.clone();
    s.explanation = e;
    s.updated_at = Utc::now();
}

fn live(s: &Session) -> bool {
    s.state != SessionState::Ended
}

fn page<T: Clone>(items: Vec<&T>, offset: usize, limit: usize) -> Page<T> {
    Page {
        total: items.len(),
        items: items
            .into_iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect(),
        offset,
        limit,
    }
}

impl State {
    fn live_session(&mut self, id: &str) -> R<&mut Session> {
        let s = self
            .sessions
            .get_mut(id)
            .ok_or_else(|| BackendError::not_found("session", id))?;
        if !live(s) {
            return Err(BackendError::Conflict(format!("session {id} has ended")));
        }
        Ok(s)
    }

    /// Applies `f` to a live session, then re-scores it.
    fn with_session(&mut self, id: &str, f: impl FnOnce(&mut Session)) -> R<Session> {
        let mut s = self.live_session(id)?.clone();
        f(&mut s);
        rescore(self, &mut s);
        self.sessions.insert(id.to_string(), s.clone());
        Ok(s)
    }

    /// A VLAN's subnets against every other VLAN's.
    fn check_overlaps(&self, v: &Vlan) -> R<()> {
        for other in self.vlans.values().filter(|o| o.vid != v.vid) {
            v.check_overlap(other).map_err(BackendError::Invalid)?;
        }
        Ok(())
    }

    fn check_tier_ref(&self, field: &str, tier: &str) -> R<()> {
        if self.tiers.contains_key(tier) {
            Ok(())
        } else {
            Err(BackendError::invalid(
                field,
                format!("no tier named {tier:?}"),
            ))
        }
    }
}

#[async_trait]
impl Backend for Memory {
    async fn health(&self) -> Health {
        let st = self.lock();
        Health {
            status: if st.store_up {
                HealthStatus::Ok
            } else {
                HealthStatus::Degraded
            },
            redis: st.store_up,
            ovsdb: vec![EndpointStatus {
                endpoint: "memory".into(),
                connected: true,
            }],
            switches: st.switches.len(),
            instance: "memory".into(),
            role: "alone".into(),
        }
    }

    async fn switches(&self) -> Vec<SwitchView> {
        self.lock()
            .switches
            .values()
            .map(|s| s.view.clone())
            .collect()
    }

    async fn switch(&self, dpid: u64) -> Option<SwitchView> {
        self.lock().switches.get(&dpid).map(|s| s.view.clone())
    }

    async fn switch_flows(&self, dpid: u64) -> R<Vec<FlowView>> {
        Ok(self.switch_state(dpid)?.flows)
    }

    async fn switch_meters(&self, dpid: u64) -> R<Vec<MeterView>> {
        Ok(self.switch_state(dpid)?.meters)
    }

    async fn switch_queues(&self, dpid: u64) -> R<Vec<QueueView>> {
        Ok(self.switch_state(dpid)?.queues)
    }

    async fn topology(&self) -> TopologyView {
        let st = self.lock();
        if let Some(hosts) = &st.hosts {
            return TopologyView {
                switches: st.switches.keys().map(|d| format_dpid(*d)).collect(),
                links: st.links.clone(),
                hosts: hosts.clone(),
            };
        }
        TopologyView {
            switches: st.switches.keys().map(|d| format_dpid(*d)).collect(),
            links: vec![],
            hosts: st
                .switches
                .keys()
                .map(|d| HostView {
                    mac: "00:00:00:00:00:01".into(),
                    ip: Some("10.0.0.1".into()),
                    dpid: format_dpid(*d),
                    port: 1,
                    vlan: 1,
                })
                .take(1)
                .collect(),
        }
    }

    async fn list_tiers(&self) -> R<Vec<Tier>> {
        Ok(self.store()?.tiers.values().cloned().collect())
    }

    async fn get_tier(&self, name: &str) -> R<Tier> {
        self.store()?
            .tiers
            .get(name)
            .cloned()
            .ok_or_else(|| BackendError::not_found("tier", name))
    }

    async fn create_tier(&self, t: Tier) -> R<Tier> {
        let mut st = self.store()?;
        if st.tiers.contains_key(&t.name) {
            return Err(BackendError::Conflict(format!("tier {:?} exists", t.name)));
        }
        st.tiers.insert(t.name.clone(), t.clone());
        Ok(t)
    }

    async fn update_tier(&self, name: &str, t: Tier) -> R<Tier> {
        let mut st = self.store()?;
        let slot = st
            .tiers
            .get_mut(name)
            .ok_or_else(|| BackendError::not_found("tier", name))?;
        *slot = t.clone();
        // Live sessions of the tier refer to it by name, so its new rates
        // are theirs at once (the real backend re-programs the switches).
        Ok(t)
    }

    async fn delete_tier(&self, name: &str) -> R<()> {
        let mut st = self.store()?;
        if !st.tiers.contains_key(name) {
            return Err(BackendError::not_found("tier", name));
        }
        if st.policy.default_tier == name {
            return Err(BackendError::Conflict(format!(
                "tier {name:?} is the policy's default tier"
            )));
        }
        if let Some(p) = st
            .promotions
            .values()
            .find(|p| p.tier.as_deref() == Some(name))
        {
            return Err(BackendError::Conflict(format!(
                "tier {name:?} is granted by promotion {:?}",
                p.code
            )));
        }
        if let Some(s) = st
            .sessions
            .values()
            .find(|s| live(s) && (s.tier == name || s.override_tier.as_deref() == Some(name)))
        {
            return Err(BackendError::Conflict(format!(
                "tier {name:?} is in use by live session {}",
                s.id
            )));
        }
        st.tiers.remove(name);
        Ok(())
    }

    async fn list_customers(&self, f: CustomerFilter) -> R<Page<Customer>> {
        let st = self.store()?;
        let items = st
            .customers
            .values()
            .filter(|c| f.segment.as_ref().is_none_or(|s| &c.segment == s))
            .filter(|c| f.phone.as_ref().is_none_or(|p| c.phones.contains(p)))
            .filter(|c| {
                f.ip.is_none_or(|ip| {
                    c.ips
                        .iter()
                        .any(|n| parse_net(n).is_some_and(|n| n.contains(&ip)))
                })
            })
            .collect();
        Ok(page(items, f.offset, f.limit))
    }

    async fn get_customer(&self, id: &str) -> R<Customer> {
        self.store()?
            .customers
            .get(id)
            .cloned()
            .ok_or_else(|| BackendError::not_found("customer", id))
    }

    async fn create_customer(&self, c: Customer) -> R<Customer> {
        let mut st = self.store()?;
        if st.customers.contains_key(&c.id) {
            return Err(BackendError::Conflict(format!(
                "customer {:?} exists",
                c.id
            )));
        }
        st.customers.insert(c.id.clone(), c.clone());
        Ok(c)
    }

    async fn update_customer(&self, id: &str, c: Customer) -> R<Customer> {
        let mut st = self.store()?;
        let slot = st
            .customers
            .get_mut(id)
            .ok_or_else(|| BackendError::not_found("customer", id))?;
        *slot = c.clone();
        Ok(c)
    }

    async fn delete_customer(&self, id: &str) -> R<()> {
        self.store()?
            .customers
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| BackendError::not_found("customer", id))
    }

    async fn list_promotions(&self) -> R<Vec<Promotion>> {
        Ok(self.store()?.promotions.values().cloned().collect())
    }

    async fn get_promotion(&self, code: &str) -> R<Promotion> {
        self.store()?
            .promotions
            .get(code)
            .cloned()
            .ok_or_else(|| BackendError::not_found("promotion", code))
    }

    async fn create_promotion(&self, p: Promotion) -> R<Promotion> {
        let mut st = self.store()?;
        if st.promotions.contains_key(&p.code) {
            return Err(BackendError::Conflict(format!(
                "promotion {:?} exists",
                p.code
            )));
        }
        if let Some(t) = &p.tier {
            st.check_tier_ref("tier", t)?;
        }
        st.promotions.insert(p.code.clone(), p.clone());
        Ok(p)
    }

    async fn update_promotion(&self, code: &str, p: Promotion) -> R<Promotion> {
        let mut st = self.store()?;
        if !st.promotions.contains_key(code) {
            return Err(BackendError::not_found("promotion", code));
        }
        if let Some(t) = &p.tier {
            st.check_tier_ref("tier", t)?;
        }
        st.promotions.insert(code.to_string(), p.clone());
        Ok(p)
    }

    async fn delete_promotion(&self, code: &str) -> R<()> {
        self.store()?
            .promotions
            .remove(code)
            .map(|_| ())
            .ok_or_else(|| BackendError::not_found("promotion", code))
    }

    async fn list_services(&self) -> R<Vec<Service>> {
        Ok(self.store()?.services.values().cloned().collect())
    }

    async fn get_service(&self, name: &str) -> R<Service> {
        self.store()?
            .services
            .get(name)
            .cloned()
            .ok_or_else(|| BackendError::not_found("service", name))
    }

    async fn create_service(&self, s: Service) -> R<Service> {
        let mut st = self.store()?;
        if st.services.contains_key(&s.name) {
            return Err(BackendError::Conflict(format!(
                "service {:?} exists",
                s.name
            )));
        }
        st.services.insert(s.name.clone(), s.clone());
        Ok(s)
    }

    async fn update_service(&self, name: &str, s: Service) -> R<Service> {
        let mut st = self.store()?;
        let slot = st
            .services
            .get_mut(name)
            .ok_or_else(|| BackendError::not_found("service", name))?;
        *slot = s.clone();
        Ok(s)
    }

    async fn delete_service(&self, name: &str) -> R<()> {
        self.store()?
            .services
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| BackendError::not_found("service", name))
    }

    async fn get_policy(&self) -> R<Policy> {
        Ok(self.store()?.policy.clone())
    }

    async fn put_policy(&self, p: Policy) -> R<Policy> {
        let mut st = self.store()?;
        st.check_tier_ref("default_tier", &p.default_tier)?;
        st.policy = p.clone();
        Ok(p)
    }

    async fn list_vlans(&self) -> R<Vec<Vlan>> {
        Ok(self.store()?.vlans.values().cloned().collect())
    }

    async fn get_vlan(&self, vid: u16) -> R<Vlan> {
        self.store()?
            .vlans
            .get(&vid)
            .cloned()
            .ok_or_else(|| BackendError::not_found("vlan", vid.to_string()))
    }

    async fn create_vlan(&self, v: Vlan) -> R<Vlan> {
        let mut st = self.store()?;
        if st.vlans.contains_key(&v.vid) {
            return Err(BackendError::Conflict(format!("VLAN {} exists", v.vid)));
        }
        st.check_overlaps(&v)?;
        st.vlans.insert(v.vid, v.clone());
        Ok(v)
    }

    async fn update_vlan(&self, vid: u16, v: Vlan) -> R<Vlan> {
        let mut st = self.store()?;
        if !st.vlans.contains_key(&vid) {
            return Err(BackendError::not_found("vlan", vid.to_string()));
        }
        st.check_overlaps(&v)?;
        st.vlans.insert(vid, v.clone());
        Ok(v)
    }

    async fn delete_vlan(&self, vid: u16) -> R<()> {
        let mut st = self.store()?;
        if !st.vlans.contains_key(&vid) {
            return Err(BackendError::not_found("vlan", vid.to_string()));
        }
        if vid != DEFAULT_VLAN
            && let Some(p) = st.ports.values().find(|p| p.carries(vid))
        {
            return Err(BackendError::Conflict(format!(
                "VLAN {vid} is carried by port {}:{}",
                p.dpid, p.port
            )));
        }
        st.vlans.remove(&vid);
        Ok(())
    }

    async fn list_ports(&self) -> R<Vec<PortConfig>> {
        Ok(self.store()?.ports.values().cloned().collect())
    }

    async fn get_port(&self, dpid: u64, port: u32) -> R<PortConfig> {
        self.store()?
            .ports
            .get(&(dpid, port))
            .cloned()
            .ok_or_else(|| BackendError::not_found("port", format!("{}:{port}", format_dpid(dpid))))
    }

    async fn put_port(&self, p: PortConfig) -> R<(PortConfig, bool)> {
        let mut st = self.store()?;
        p.check_refs(|v| st.vlans.contains_key(&v))
            .map_err(BackendError::Invalid)?;
        let key = (p.dpid_value().unwrap_or_default(), p.port);
        let made = st.ports.insert(key, p.clone()).is_none();
        Ok((p, made))
    }

    async fn delete_port(&self, dpid: u64, port: u32) -> R<()> {
        self.store()?
            .ports
            .remove(&(dpid, port))
            .map(|_| ())
            .ok_or_else(|| BackendError::not_found("port", format!("{}:{port}", format_dpid(dpid))))
    }

    async fn list_sessions(&self, f: SessionFilter) -> R<Page<Session>> {
        let st = self.store()?;
        let items = st
            .sessions
            .values()
            .filter(|s| f.tier.as_ref().is_none_or(|t| &s.tier == t))
            .filter(|s| {
                f.customer
                    .as_ref()
                    .is_none_or(|c| s.customer_id.as_ref() == Some(c))
            })
            .filter(|s| f.state.is_none_or(|x| s.state == x))
            .collect();
        Ok(page(items, f.offset, f.limit))
    }

    async fn get_session(&self, id: &str) -> R<Session> {
        self.store()?
            .sessions
            .get(id)
            .cloned()
            .ok_or_else(|| BackendError::not_found("session", id))
    }

    async fn delete_session(&self, id: &str) -> R<()> {
        let mut st = self.store()?;
        let s = st
            .sessions
            .get_mut(id)
            .ok_or_else(|| BackendError::not_found("session", id))?;
        if live(s) {
            s.state = SessionState::Ended;
            s.state_reason = "deleted through the API".into();
            s.updated_at = Utc::now();
        }
        Ok(())
    }

    async fn set_session_tier(&self, id: &str, tier: &str) -> R<Session> {
        let mut st = self.store()?;
        st.live_session(id)?;
        st.check_tier_ref("tier", tier)?;
        st.with_session(id, |s| s.override_tier = Some(tier.to_string()))
    }

    async fn clear_session_tier(&self, id: &str) -> R<Session> {
        self.store()?.with_session(id, |s| s.override_tier = None)
    }

    async fn client_data(&self, id: &str, d: ClientData) -> R<Session> {
        self.store()?.with_session(id, |s| {
            let i = &mut s.explanation.inputs;
            let merge = |old: &mut Option<String>, new: Option<String>| {
                if new.is_some() {
                    *old = new;
                }
            };
            merge(&mut i.phone, d.phone);
            merge(&mut i.promo_code, d.promo_code);
            merge(&mut i.account_id, d.account_id);
            merge(&mut i.source, d.source);
        })
    }

    async fn set_session_state(&self, id: &str, state: SessionState) -> R<Session> {
        if state == SessionState::Ended {
            return Err(BackendError::invalid(
                "state",
                "must be \"hold\" or \"active\"",
            ));
        }
        self.store()?.with_session(id, |s| {
            s.state = state;
            s.state_reason = "cti".into();
        })
    }

    async fn request_session(&self, r: SessionRequest) -> R<(Session, bool)> {
        let mut st = self.store()?;
        if let Some(id) = st.requested.get(&r.external_id).cloned() {
            let s =
                st.sessions.get(&id).cloned().ok_or_else(|| {
                    BackendError::Internal(format!("requested session {id} lost"))
                })?;
            if s.client_ip != r.client.ip || s.server_ip != r.server.ip {
                return Err(BackendError::Conflict(format!(
                    "external_id {:?} names session {id} between other endpoints",
                    r.external_id
                )));
            }
            return Ok((s, false));
        }
        let d = r.client_data.clone().unwrap_or_default();
        let inputs = ClientData {
            ip: Some(r.client.ip),
            // The reference backend takes E.164 numbers only.
            phone: d.phone.filter(|p| tierflow_api::model::is_e164(p)),
            promo_code: d.promo_code,
            account_id: d.account_id,
            source: d.source.or_else(|| Some("app-server".into())),
            mac: None,
        };
        let explanation = decide(&st, &inputs);
        let id = format!("s-{:08}", st.next_session);
        st.next_session += 1;
        let now = Utc::now();
        let kind = serde_json::to_value(r.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let session = Session {
            id: id.clone(),
            service: kind,
            client_ip: r.client.ip,
            server_ip: r.server.ip,
            state: SessionState::Active,
            tier: explanation.tier.clone(),
            override_tier: None,
            customer_id: explanation.customer_id.clone(),
            explanation,
            path: st.switches.keys().map(|d| format_dpid(*d)).collect(),
            state_reason: String::new(),
            external_id: Some(r.external_id.clone()),
            measured_kbps: None,
            meters: None,
            created_at: now,
            updated_at: now,
        };
        st.sessions.insert(id.clone(), session.clone());
        st.requested.insert(r.external_id, id);
        Ok((session, true))
    }

    /// Redis down; OFPT_ERRORs per switch; a switch whose meters (one per
    /// live session crossing it) fill more than 80 % of its pool, critical
    /// when full.
    async fn alarms(&self) -> Vec<Alarm> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut out = Vec::new();
        if let Some(since) = st.store_down_since.filter(|_| !st.store_up) {
            out.push(Alarm {
                kind: AlarmKind::RedisDown,
                severity: Severity::Critical,
                message: "redis: connection refused; new sessions get the default tier".into(),
                dpid: None,
                since,
                count: 1,
            });
        }
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
        for (dpid, sw) in &st.switches {
            let Some(max) = sw
                .view
                .meter_features
                .as_ref()
                .map(|f| u64::from(f.max_meter))
            else {
                continue;
            };
            let hex = format_dpid(*dpid);
            let used = st
                .sessions
                .values()
                .filter(|s| live(s) && s.path.contains(&hex))
                .count() as u64;
            if max == 0 || used * 100 <= max * 80 {
                st.meter_pool_since.remove(dpid);
            } else {
                let since = *st.meter_pool_since.entry(*dpid).or_insert_with(Utc::now);
                out.push(Alarm {
                    kind: AlarmKind::MeterPool,
                    severity: if used >= max {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    message: format!("switch {hex}: {used} of {max} meters in use"),
                    dpid: Some(hex),
                    since,
                    count: 1,
                });
            }
        }
        out
    }

    fn metrics(&self) -> String {
        let st = self.lock();
        let live = st.sessions.values().filter(|s| live(s)).count();
        format!(
            "# HELP tierflow_memory_sessions Live sessions of the reference backend.\n\
             # TYPE tierflow_memory_sessions gauge\n\
             tierflow_memory_sessions {live}\n"
        )
    }
}

/// The memory backend as the suite's fixture.
#[derive(Debug, Default)]
pub struct MemoryFixture {
    pub memory: Arc<Memory>,
}

#[async_trait]
impl Fixture for MemoryFixture {
    fn backend(&self) -> Arc<dyn Backend> {
        self.memory.clone()
    }

    async fn start_session(&self, client_ip: IpAddr, service: &str) -> String {
        self.memory
            .start_session(client_ip, service)
            .unwrap_or_else(|e| panic!("start_session({client_ip}, {service}): {e}"))
    }

    async fn connect_switch(&self) -> u64 {
        let dpid = 0x0000_0000_0000_00a1;
        self.memory.connect_switch(dpid);
        dpid
    }

    async fn break_store(&self) {
        self.memory.break_store();
    }
}

pub async fn fixture() -> Box<dyn Fixture> {
    Box::new(MemoryFixture::default())
}
