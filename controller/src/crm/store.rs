//! [`Store`]: the CRM's Redis client. It owns every write to the CRM keys
//! (validated first, applied atomically by Lua scripts that also keep the
//! phone/IP indexes and publish the change event), the reads the API and
//! the replica need, session records, and the decision-time
//! [`Store::lookup`].
//!
//! One multiplexed connection (`ConnectionManager`) carries every call and
//! reconnects by itself after Redis comes back; every call is bounded by
//! the operation timeout, so a dead Redis costs a caller that long and
//! then an error, never a hang.

use super::batch::{IpLens, Pending};
pub use super::error::{CrmError, Result};
use super::keys::{self, IndexEntry};
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, RedisResult, Script};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;
use tierflow_api::model::{
    CrmFile, Customer, DEFAULT_VLAN, FieldError, Policy, PortConfig, Promotion, Service, Session,
    SessionState, Tier, Vlan,
};
use tokio::sync::mpsc;

/// How long an ended session's record is kept for inspection.
pub const ENDED_SESSION_TTL_SECS: u64 = 3600;

/// Records per MGET when reading whole collections: bounds one reply's size.
const MGET_CHUNK: usize = 1000;

static APPLY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/apply.lua")));
static DELETE_CUSTOMER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/delete_customer.lua")));
static DELETE_RECORD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/delete_record.lua")));
static DELETE_VLAN: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/delete_vlan.lua")));

/// How a [`Store`] talks to Redis.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bound on every call, connecting included.
    pub op_timeout: Duration,
    /// Return at once and connect on first use (a controller that must
    /// start while Redis is down), instead of failing when Redis is
    /// unreachable.
    pub lazy: bool,
    /// Where the store's own tasks (the lookup batcher) run, so that
    /// shutdown drains them; `None`: plain `tokio::spawn`.
    pub tasks: Option<tokio_util::task::TaskTracker>,
    /// Trust and client certificate for a `rediss://` URL; `None`: the
    /// system's roots, no client certificate.
    pub tls: Option<super::RedisTls>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            op_timeout: Duration::from_secs(1),
            lazy: false,
            tasks: None,
            tls: None,
        }
    }
}

/// A filter of [`Store::list_customers`]; unset fields match everything.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub segment: Option<String>,
    /// Customers owning this number.
    pub phone: Option<String>,
    /// Customers a client at this address would match (exact or prefix).
    pub ip: Option<IpAddr>,
    pub offset: usize,
    pub limit: Option<usize>,
}

/// What [`Store::load`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadSummary {
    pub tiers: usize,
    pub customers: usize,
    pub promotions: usize,
    pub services: usize,
    pub policy: bool,
    pub vlans: usize,
    pub ports: usize,
}

/// A record kept as JSON under a key of its own and listed in a set.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// The word used in events, errors and messages.
    const KIND: &'static str;
    const SET: &'static str;
    fn key(name: &str) -> String;
    fn ident(&self) -> Cow<'_, str>;
    fn check(&self) -> Result<(), FieldError>;
}

impl Record for Tier {
    const KIND: &'static str = "tier";
    const SET: &'static str = keys::TIERS;
    fn key(name: &str) -> String {
        keys::tier(name)
    }
    fn ident(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.name)
    }
    fn check(&self) -> Result<(), FieldError> {
        self.validate()
    }
}

impl Record for Customer {
    const KIND: &'static str = "customer";
    const SET: &'static str = keys::CUSTOMERS;
    fn key(name: &str) -> String {
        keys::customer(name)
    }
    fn ident(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.id)
    }
    fn check(&self) -> Result<(), FieldError> {
        self.validate()
    }
}

impl Record for Promotion {
    const KIND: &'static str = "promotion";
    const SET: &'static str = keys::PROMOS;
    fn key(name: &str) -> String {
        keys::promo(name)
    }
    fn ident(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.code)
    }
    fn check(&self) -> Result<(), FieldError> {
        self.validate()
    }
}

impl Record for Service {
    const KIND: &'static str = "service";
    const SET: &'static str = keys::SERVICES;
    fn key(name: &str) -> String {
        keys::service(name)
    }
    fn ident(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.name)
    }
    fn check(&self) -> Result<(), FieldError> {
        self.validate()
    }
}

impl Record for Vlan {
    const KIND: &'static str = "vlan";
    const SET: &'static str = keys::VLANS;
    fn key(name: &str) -> String {
        keys::vlan(name)
    }
    fn ident(&self) -> Cow<'_, str> {
        Cow::Owned(self.vid.to_string())
    }
    fn check(&self) -> Result<(), FieldError> {
        self.validate()
    }
}

impl Record for PortConfig {
    const KIND: &'static str = "port";
    const SET: &'static str = keys::PORTS;
    fn key(name: &str) -> String {
        keys::port(name)
    }
    fn ident(&self) -> Cow<'_, str> {
        Cow::Owned(keys::port_name(
            self.dpid_value().unwrap_or_default(),
            self.port,
        ))
    }
    fn check(&self) -> Result<(), FieldError> {
        self.validate()
    }
}

pub(crate) fn parse<T: DeserializeOwned>(key: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| CrmError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| {
        RedisError::from((
            ErrorKind::Client,
            "cannot encode a record as JSON",
            e.to_string(),
        ))
        .into()
    })
}

/// A batch of writes for `lua/apply.lua`: checked whole, then applied
/// whole, in one script call (so atomically).
#[derive(Debug, Default, Serialize)]
struct Batch {
    /// `[key, set, member, json]`.
    puts: Vec<(String, &'static str, String, String)>,
    /// `[field, tier key, tier name]`: tiers that must exist.
    needs: Vec<(String, String, String)>,
    customers: Vec<CustomerOp>,
    events: Vec<String>,
    /// `[key, must exist, kind, id]`: checked before anything is written,
    /// so create-if-absent and update-if-present are atomic.
    must: Vec<(String, bool, &'static str, String)>,
    /// `[field, VLAN key, vid]`: VLANs that must exist.
    vlan_needs: Vec<(String, String, u16)>,
    /// VLANs written: their subnets are checked against every other's.
    vlan_nets: Vec<VlanNets>,
}

#[derive(Debug, Serialize)]
struct VlanNets {
    vid: String,
    /// Prefix of the field names in errors (`vlans[2].`).
    field: String,
    /// What `tf:vlan-nets` keeps.
    ranges: String,
    /// `[first, last, subnet, gateway index]`.
    nets: Vec<(u32, u32, String, usize)>,
}

#[derive(Debug, Serialize)]
struct CustomerOp {
    id: String,
    key: String,
    owned: String,
    /// Prefix of the field names in conflict messages (`customers[3].`).
    field: String,
    json: String,
    /// `[key, length class, field, value]`.
    idx: Vec<(String, String, String, String)>,
}

impl Batch {
    fn put<T: Record>(&mut self, r: &T) -> Result<()> {
        let id = r.ident();
        self.puts
            .push((T::key(&id), T::SET, id.into_owned(), to_json(r)?));
        Ok(())
    }

    /// A VLAN written: its subnets join the overlap check.
    fn vlan_nets(&mut self, v: &Vlan, field: String) {
        let nets = v
            .gateways
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let gw = tierflow_api::model::Gateway::parse(g).ok()?;
                let (a, b) = gw.range();
                Some((a, b, gw.net.to_string(), i))
            })
            .collect();
        self.vlan_nets.push(VlanNets {
            vid: v.vid.to_string(),
            field,
            ranges: keys::vlan_ranges(v),
            nets,
        });
    }

    /// The VLANs a port names must exist (VLAN 1 always does).
    fn port_needs(&mut self, p: &PortConfig, field: &str) {
        for (f, vid) in p.vlan_refs() {
            if vid != DEFAULT_VLAN {
                self.vlan_needs
                    .push((format!("{field}{f}"), keys::vlan(&vid.to_string()), vid));
            }
        }
    }

    fn need_tier(&mut self, field: String, tier: &str) {
        self.needs.push((field, keys::tier(tier), tier.to_owned()));
    }

    fn customer(&mut self, c: &Customer, field: String) -> Result<()> {
        let idx = keys::index_entries(c)
            .into_iter()
            .map(
                |IndexEntry {
                     key,
                     class,
                     field,
                     value,
                 }| (key, class, field, value),
            )
            .collect();
        self.customers.push(CustomerOp {
            id: c.id.clone(),
            key: keys::customer(&c.id),
            owned: keys::customer_idx(&c.id),
            field,
            json: to_json(c)?,
            idx,
        });
        Ok(())
    }
}

/// What a write requires of the record already stored under its key; the
/// check runs inside the write's script, so two concurrent creates of one
/// name cannot both succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Write {
    /// Create or replace (`crm load`, tests).
    #[default]
    Upsert,
    /// `Conflict` when the record exists.
    Create,
    /// `NotFound` unless the record exists.
    Update,
}

/// The CRM in Redis. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct Store {
    con: ConnectionManager,
    op_timeout: Duration,
    /// What a `put_*` requires of the record it replaces.
    mode: Write,
    /// Cached `tf:idx:ip-lens`, checked against Redis by every batch of
    /// lookups.
    pub(super) lens: Arc<Mutex<IpLens>>,
    /// The lookup batcher's queue, started by the first lookup.
    pub(super) lookups: Arc<OnceLock<mpsc::Sender<Pending>>>,
    tasks: Option<tokio_util::task::TaskTracker>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects with the default options (1 s per call).
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with(url, &StoreOptions::default()).await
    }

    pub async fn connect_with(url: &str, opts: &StoreOptions) -> Result<Store> {
        let client = super::tls::client(url, opts.tls.as_ref())?;
        let t = opts.op_timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(t))
            .set_response_timeout(Some(t))
            // Few, quick retries: a caller waits at most `op_timeout`
            // anyway, and the next call starts a new reconnection.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            // Many concurrent lookups share the connection.
            .set_pipeline_buffer_size(1024);
        let con = if opts.lazy {
            ConnectionManager::new_lazy_with_config(client, config)?
        } else {
            tokio::time::timeout(t, ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| CrmError::Timeout)??
        };
        Ok(Store {
            con,
            op_timeout: t,
            mode: Write::Upsert,
            lens: Arc::default(),
            lookups: Arc::default(),
            tasks: opts.tasks.clone(),
        })
    }

    /// This store (same connection and cache) with a batcher slot of its
    /// own, for the batcher itself: holding a clone of the queue it
    /// serves would keep that queue open for good.
    pub(super) fn detached(&self) -> Store {
        Store {
            lookups: Arc::default(),
            ..self.clone()
        }
    }

    pub fn op_timeout(&self) -> Duration {
        self.op_timeout
    }

    /// This store (same connection) with `put_*` requiring `mode` of the
    /// record they replace.
    pub fn writing(&self, mode: Write) -> Store {
        Store {
            mode,
            ..self.clone()
        }
    }

    /// The existence check `self.mode` asks of `key`, if any.
    fn must(&self, b: &mut Batch, key: String, kind: &'static str, id: &str) {
        match self.mode {
            Write::Upsert => {}
            Write::Create => b.must.push((key, false, kind, id.to_owned())),
            Write::Update => b.must.push((key, true, kind, id.to_owned())),
        }
    }

    /// Runs one Redis call under the operation timeout.
    pub(super) async fn run<T>(&self, f: impl Future<Output = RedisResult<T>>) -> Result<T> {
        match tokio::time::timeout(self.op_timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_timeout() => Err(CrmError::Timeout),
            Ok(Err(e)) => Err(CrmError::Redis(e)),
            Err(_) => Err(CrmError::Timeout),
        }
    }

    pub(super) fn con(&self) -> ConnectionManager {
        self.con.clone()
    }

    /// Runs one of the store's own tasks, tracked when a tracker was given.
    pub(super) fn spawn<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.tasks {
            Some(t) => {
                t.spawn(f);
            }
            None => {
                tokio::spawn(f);
            }
        }
    }

    pub async fn ping(&self) -> Result<()> {
        let mut con = self.con();
        self.run(redis::cmd("PING").query_async::<String>(&mut con))
            .await
            .map(drop)
    }

    // ---- generic record access ----

    pub(crate) async fn get_raw(&self, key: &str) -> Result<Option<String>> {
        let mut con = self.con();
        self.run(redis::cmd("GET").arg(key).query_async(&mut con))
            .await
    }

    /// MGET in bounded chunks.
    pub(crate) async fn get_raw_many(&self, keys: &[String]) -> Result<Vec<Option<String>>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MGET_CHUNK) {
            let mut con = self.con();
            let part: Vec<Option<String>> = self
                .run(redis::cmd("MGET").arg(chunk).query_async(&mut con))
                .await?;
            out.extend(part);
        }
        Ok(out)
    }

    async fn members(&self, set: &str) -> Result<Vec<String>> {
        let mut con = self.con();
        let mut v: Vec<String> = self
            .run(redis::cmd("SMEMBERS").arg(set).query_async(&mut con))
            .await?;
        v.sort_unstable();
        Ok(v)
    }

    pub(crate) async fn fetch<T: Record>(&self, name: &str) -> Result<Option<T>> {
        let key = T::key(name);
        match self.get_raw(&key).await? {
            Some(j) => parse(&key, &j).map(Some),
            None => Ok(None),
        }
    }

    async fn get<T: Record>(&self, name: &str) -> Result<T> {
        self.fetch(name).await?.ok_or_else(|| CrmError::NotFound {
            kind: T::KIND,
            id: name.to_owned(),
        })
    }

    /// Every record of a kind, sorted by name. A name listed whose record
    /// is gone is skipped; a record that does not parse is an error.
    async fn list<T: Record>(&self) -> Result<Vec<T>> {
        let names = self.members(T::SET).await?;
        self.records(&names).await
    }

    async fn records<T: Record>(&self, names: &[String]) -> Result<Vec<T>> {
        let keys: Vec<String> = names.iter().map(|n| T::key(n)).collect();
        let raw = self.get_raw_many(&keys).await?;
        let mut out = Vec::with_capacity(raw.len());
        for (key, json) in keys.iter().zip(raw) {
            if let Some(j) = json {
                out.push(parse(key, &j)?);
            }
        }
        Ok(out)
    }

    /// Applies a batch; returns how many of its plain records were new.
    async fn apply(&self, batch: &Batch) -> Result<usize> {
        let json = to_json(batch)?;
        let mut con = self.con();
        let mut inv = APPLY.prepare_invoke();
        inv.arg(json)
            .arg(keys::CUSTOMERS)
            .arg(keys::IP_LENS)
            .arg(keys::EVENTS)
            .arg(keys::VLAN_NETS);
        let reply: Vec<String> = self.run(inv.invoke_async(&mut con)).await?;
        match reply.as_slice() {
            [ok, fresh] if ok == "ok" => Ok(fresh.parse().unwrap_or(0)),
            [c, msg] if c == "conflict" => Err(CrmError::Conflict(msg.clone())),
            [m, kind, id] if m == "missing" => Err(CrmError::NotFound {
                kind: batch
                    .must
                    .iter()
                    .find(|x| x.2 == kind)
                    .map_or("record", |x| x.2),
                id: id.clone(),
            }),
            [i, field, reason] if i == "invalid" => {
                Err(CrmError::Invalid(FieldError::new(field, reason)))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn put<T: Record>(&self, r: &T, needs: Option<(&str, &str)>) -> Result<()> {
        r.check()?;
        let mut b = Batch::default();
        let id = r.ident();
        self.must(&mut b, T::key(&id), T::KIND, &id);
        b.put(r)?;
        if let Some((field, tier)) = needs {
            b.need_tier(field.to_owned(), tier);
        }
        b.events.push(keys::event(T::KIND, &id));
        self.apply(&b).await.map(drop)
    }

    /// Deletes a tier, promotion or service; `tier_refs` makes the script
    /// refuse a tier that the policy or a promotion names.
    async fn delete<T: Record>(&self, name: &str, tier_refs: bool) -> Result<bool> {
        let mut con = self.con();
        let mut inv = DELETE_RECORD.prepare_invoke();
        inv.arg(T::key(name))
            .arg(T::SET)
            .arg(name)
            .arg(keys::EVENTS)
            .arg(keys::event(T::KIND, name));
        if tier_refs {
            inv.arg(keys::POLICY)
                .arg(Policy::default().default_tier)
                .arg(keys::PROMOS)
                .arg(keys::promo(""));
        }
        let reply: (String, String) = self.run(inv.invoke_async(&mut con)).await?;
        match (reply.0.as_str(), reply.1.as_str()) {
            ("ok", n) => Ok(n == "1"),
            ("conflict", msg) => Err(CrmError::Conflict(msg.to_owned())),
            (a, b) => Err(unexpected(&[a.to_owned(), b.to_owned()])),
        }
    }

    // ---- tiers ----

    /// Every tier, sorted by name.
    pub async fn list_tiers(&self) -> Result<Vec<Tier>> {
        self.list().await
    }

    pub async fn get_tier(&self, name: &str) -> Result<Tier> {
        self.get(name).await
    }

    /// Creates or replaces a tier.
    pub async fn put_tier(&self, t: &Tier) -> Result<()> {
        self.put(t, None).await
    }

    /// `Conflict` while the policy's default tier or a promotion names it.
    pub async fn delete_tier(&self, name: &str) -> Result<bool> {
        self.delete::<Tier>(name, true).await
    }

    // ---- customers ----

    pub async fn list_customers(&self, f: &CustomerFilter) -> Result<Vec<Customer>> {
        let mut out: Vec<Customer> = if f.phone.is_some() || f.ip.is_some() {
            // Both given: the customer must own the number and match the
            // address.
            let mut hit: Option<Arc<Customer>> = None;
            let mut miss = false;
            if let Some(p) = &f.phone {
                hit = self.lookup(Some(p), None, None).await?.customer;
                miss = hit.is_none();
            }
            if let (Some(ip), false) = (f.ip, miss) {
                let by_ip = self.lookup(None, Some(ip), None).await?.customer;
                miss = match (&hit, &by_ip) {
                    (Some(a), Some(b)) => a.id != b.id,
                    (_, None) => true,
                    (None, Some(_)) => false,
                };
                hit = by_ip;
            }
            match hit {
                Some(c) if !miss => vec![Customer::clone(&c)],
                _ => Vec::new(),
            }
        } else {
            self.list().await?
        };
        if let Some(s) = &f.segment {
            out.retain(|c| &c.segment == s);
        }
        Ok(out
            .into_iter()
            .skip(f.offset)
            .take(f.limit.unwrap_or(usize::MAX))
            .collect())
    }

    pub async fn get_customer(&self, id: &str) -> Result<Customer> {
        self.get(id).await
    }

    /// Creates or replaces a customer and its phone/IP index entries.
    /// `Conflict`, with nothing written, when a number or address is
    /// already indexed to another customer.
    pub async fn put_customer(&self, c: &Customer) -> Result<()> {
        c.validate()?;
        let mut b = Batch::default();
        self.must(&mut b, keys::customer(&c.id), "customer", &c.id);
        b.customer(c, String::new())?;
        b.events.push(keys::event("customer", &c.id));
        self.apply(&b).await.map(drop)
    }

    /// Deletes a customer and its index entries.
    pub async fn delete_customer(&self, id: &str) -> Result<bool> {
        let mut con = self.con();
        let mut inv = DELETE_CUSTOMER.prepare_invoke();
        inv.arg(keys::customer(id))
            .arg(keys::customer_idx(id))
            .arg(keys::CUSTOMERS)
            .arg(keys::IP_LENS)
            .arg(keys::EVENTS)
            .arg(id)
            .arg(keys::event("customer", id));
        let n: i64 = self.run(inv.invoke_async(&mut con)).await?;
        Ok(n == 1)
    }

    // ---- promotions ----

    pub async fn list_promotions(&self) -> Result<Vec<Promotion>> {
        self.list().await
    }

    pub async fn get_promotion(&self, code: &str) -> Result<Promotion> {
        self.get(code).await
    }

    /// Creates or replaces a promotion; its `tier`, if set, must exist.
    pub async fn put_promotion(&self, p: &Promotion) -> Result<()> {
        self.put(p, p.tier.as_deref().map(|t| ("tier", t))).await
    }

    pub async fn delete_promotion(&self, code: &str) -> Result<bool> {
        self.delete::<Promotion>(code, false).await
    }

    // ---- services ----

    pub async fn list_services(&self) -> Result<Vec<Service>> {
        self.list().await
    }

    pub async fn get_service(&self, name: &str) -> Result<Service> {
        self.get(name).await
    }

    pub async fn put_service(&self, s: &Service) -> Result<()> {
        self.put(s, None).await
    }

    pub async fn delete_service(&self, name: &str) -> Result<bool> {
        self.delete::<Service>(name, false).await
    }

    // ---- policy ----

    /// The stored policy, or the default one when none is stored.
    pub async fn get_policy(&self) -> Result<Policy> {
        Ok(self.fetch_policy().await?.unwrap_or_default())
    }

    pub(crate) async fn fetch_policy(&self) -> Result<Option<Policy>> {
        match self.get_raw(keys::POLICY).await? {
            Some(j) => parse(keys::POLICY, &j).map(Some),
            None => Ok(None),
        }
    }

    /// Replaces the policy; its `default_tier` must exist.
    pub async fn put_policy(&self, p: &Policy) -> Result<()> {
        p.validate()?;
        let mut b = Batch::default();
        b.puts
            .push((keys::POLICY.into(), "", String::new(), to_json(p)?));
        b.need_tier("default_tier".into(), &p.default_tier);
        b.events.push(keys::event("policy", "-"));
        self.apply(&b).await.map(drop)
    }

    // ---- VLANs and ports ----

    /// Every VLAN with a record, by vid.
    pub async fn list_vlans(&self) -> Result<Vec<Vlan>> {
        let mut v: Vec<Vlan> = self.list().await?;
        v.sort_by_key(|x| x.vid);
        Ok(v)
    }

    pub async fn get_vlan(&self, vid: u16) -> Result<Vlan> {
        self.get(&vid.to_string()).await
    }

    /// Creates or replaces a VLAN; `Invalid` naming the gateway when its
    /// subnet overlaps another VLAN's.
    pub async fn put_vlan(&self, v: &Vlan) -> Result<()> {
        v.validate()?;
        let mut b = Batch::default();
        let id = v.vid.to_string();
        self.must(&mut b, keys::vlan(&id), "vlan", &id);
        b.put(v)?;
        b.vlan_nets(v, String::new());
        b.events.push(keys::event("vlan", &id));
        self.apply(&b).await.map(drop)
    }

    /// `Conflict` while a port carries it (never for VLAN 1, which
    /// exists without its record).
    pub async fn delete_vlan(&self, vid: u16) -> Result<bool> {
        let id = vid.to_string();
        let mut con = self.con();
        let mut inv = DELETE_VLAN.prepare_invoke();
        inv.arg(keys::vlan(&id))
            .arg(keys::VLANS)
            .arg(&id)
            .arg(keys::EVENTS)
            .arg(keys::event("vlan", &id))
            .arg(keys::PORTS)
            .arg(keys::port(""))
            .arg(keys::VLAN_NETS)
            .arg(if vid == DEFAULT_VLAN { "0" } else { "1" });
        let reply: (String, String) = self.run(inv.invoke_async(&mut con)).await?;
        match (reply.0.as_str(), reply.1.as_str()) {
            ("ok", n) => Ok(n == "1"),
            ("conflict", msg) => Err(CrmError::Conflict(msg.to_owned())),
            (a, b) => Err(unexpected(&[a.to_owned(), b.to_owned()])),
        }
    }

    /// Every configured port, by datapath id and port.
    pub async fn list_ports(&self) -> Result<Vec<PortConfig>> {
        let mut v: Vec<PortConfig> = self.list().await?;
        v.sort_by_key(|p| (p.dpid_value(), p.port));
        Ok(v)
    }

    pub async fn get_port(&self, dpid: u64, port: u32) -> Result<PortConfig> {
        self.get(&keys::port_name(dpid, port)).await
    }

    /// Creates or replaces a port's VLANs (its dpid made canonical); every
    /// VLAN it names must exist. `true`: the port had no record.
    pub async fn put_port(&self, p: &PortConfig) -> Result<bool> {
        p.validate()?;
        let p = p.clone().canonical();
        let mut b = Batch::default();
        let id = p.ident();
        self.must(&mut b, keys::port(&id), "port", &id);
        b.put(&p)?;
        b.port_needs(&p, "");
        b.events.push(keys::event("port", &id));
        Ok(self.apply(&b).await? == 1)
    }

    pub async fn delete_port(&self, dpid: u64, port: u32) -> Result<bool> {
        self.delete::<PortConfig>(&keys::port_name(dpid, port), false)
            .await
    }

    // ---- bulk load ----

    /// Creates or replaces everything in `file` in one atomic step (other
    /// records stay), then publishes one `reload` event. The whole file is
    /// validated first, against the tiers already stored too; if anything
    /// is wrong nothing is written.
    pub async fn load(&self, file: &CrmFile) -> Result<LoadSummary> {
        let known = self.members(keys::TIERS).await?;
        file.validate(&known)?;
        check_duplicates(file)?;
        let mut b = Batch::default();
        for t in &file.tiers {
            b.put(t)?;
        }
        for (i, p) in file.promotions.iter().enumerate() {
            b.put(p)?;
            if let Some(t) = &p.tier {
                b.need_tier(format!("promotions[{i}].tier"), t);
            }
        }
        for s in &file.services {
            b.put(s)?;
        }
        if let Some(p) = &file.policy {
            b.puts
                .push((keys::POLICY.into(), "", String::new(), to_json(p)?));
            b.need_tier("policy.default_tier".into(), &p.default_tier);
        }
        for (i, c) in file.customers.iter().enumerate() {
            b.customer(c, format!("customers[{i}]."))?;
        }
        for (i, v) in file.vlans.iter().enumerate() {
            b.put(v)?;
            b.vlan_nets(v, format!("vlans[{i}]."));
        }
        for (i, p) in file.ports.iter().enumerate() {
            let p = p.clone().canonical();
            b.put(&p)?;
            b.port_needs(&p, &format!("ports[{i}]."));
        }
        b.events.push(keys::event("reload", "-"));
        self.apply(&b).await?;
        Ok(LoadSummary {
            tiers: file.tiers.len(),
            customers: file.customers.len(),
            promotions: file.promotions.len(),
            services: file.services.len(),
            policy: file.policy.is_some(),
            vlans: file.vlans.len(),
            ports: file.ports.len(),
        })
    }

    // ---- sessions ----

    /// Stores a session. A session in state `ended` leaves the live set
    /// and expires after an hour; any other is live and kept.
    pub async fn put_session(&self, s: &Session) -> Result<()> {
        self.put_session_record(&s.id, s.state == SessionState::Ended, s)
            .await
    }

    /// Stores the record of session `id` (the API's view and whatever the
    /// controller keeps beside it): an ended one leaves the live set and
    /// expires after an hour, any other is live and kept.
    pub async fn put_session_record<T: Serialize>(
        &self,
        id: &str,
        ended: bool,
        record: &T,
    ) -> Result<()> {
        let key = keys::session(id);
        let json = to_json(record)?;
        let mut p = redis::pipe();
        p.atomic();
        push_session_record(&mut p, &key, id, json.as_bytes(), ended);
        let mut con = self.con();
        self.run(p.query_async::<()>(&mut con)).await
    }

    /// Stores many sessions' records (`(id, JSON)`, already encoded) in
    /// one transaction: one round trip and one MULTI/EXEC for the lot
    /// instead of one each. Every record keeps the pairing a reader
    /// relies on (its key written with its membership of the live set:
    /// SET and SADD, or for an ended one SET with expiry and SREM), and
    /// the whole lot applies or none of it does.
    pub async fn put_session_records<'a>(
        &self,
        records: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        ended: bool,
    ) -> Result<()> {
        let mut p = redis::pipe();
        p.atomic();
        // One key buffer for the lot: the pipeline copies each argument.
        let mut key = String::with_capacity(32);
        for (id, json) in records {
            key.clear();
            key.push_str(keys::SESSION_PREFIX);
            key.push_str(id);
            push_session_record(&mut p, &key, id, json, ended);
        }
        let mut con = self.con();
        self.run(p.query_async::<()>(&mut con)).await
    }

    pub async fn get_session(&self, id: &str) -> Result<Session> {
        let key = keys::session(id);
        match self.get_raw(&key).await? {
            Some(j) => parse(&key, &j),
            None => Err(CrmError::NotFound {
                kind: "session",
                id: id.to_owned(),
            }),
        }
    }

    /// The live sessions, sorted by id.
    pub async fn list_sessions(&self) -> Result<Vec<Session>> {
        let (ok, bad) = self.list_session_records::<Session>().await?;
        match bad.into_iter().next() {
            Some((key, e)) => Err(CrmError::Corrupt { key, reason: e }),
            None => Ok(ok),
        }
    }

    /// The live sessions' records, sorted by id; those that do not parse
    /// are returned apart (key, reason), so one bad record cannot hide
    /// the others.
    pub async fn list_session_records<T: DeserializeOwned>(
        &self,
    ) -> Result<(Vec<T>, Vec<(String, String)>)> {
        let ids = self.members(keys::SESSIONS).await?;
        let keys: Vec<String> = ids.iter().map(|i| keys::session(i)).collect();
        let raw = self.get_raw_many(&keys).await?;
        let mut out = Vec::with_capacity(raw.len());
        let mut bad = Vec::new();
        for (key, json) in keys.iter().zip(raw) {
            if let Some(j) = json {
                match serde_json::from_str::<T>(&j) {
                    Ok(v) => out.push(v),
                    Err(e) => bad.push((key.clone(), e.to_string())),
                }
            }
        }
        Ok((out, bad))
    }

    // ---- for the replica ----

    /// Everything a replica holds, read in a handful of pipelined calls.
    /// Records that do not parse are skipped and their keys returned, so
    /// one bad record cannot stop a replica from loading.
    pub(crate) async fn dump(&self, full: bool) -> Result<Dump> {
        let mut con = self.con();
        let (tiers, services, policy, customers, promos, vlans, ports): DumpNames = self
            .run(
                redis::pipe()
                    .cmd("SMEMBERS")
                    .arg(keys::TIERS)
                    .cmd("SMEMBERS")
                    .arg(keys::SERVICES)
                    .cmd("GET")
                    .arg(keys::POLICY)
                    // A config-only replica reads the empty name: no key
                    // has it, so the set is empty and no record is read.
                    .cmd("SMEMBERS")
                    .arg(if full { keys::CUSTOMERS } else { "" })
                    .cmd("SMEMBERS")
                    .arg(if full { keys::PROMOS } else { "" })
                    .cmd("SMEMBERS")
                    .arg(keys::VLANS)
                    .cmd("SMEMBERS")
                    .arg(keys::PORTS)
                    .query_async(&mut con),
            )
            .await?;
        let mut d = Dump::default();
        d.tiers = self.records_lenient(&tiers, &mut d.corrupt).await?;
        d.services = self.records_lenient(&services, &mut d.corrupt).await?;
        d.customers = self.records_lenient(&customers, &mut d.corrupt).await?;
        d.promotions = self.records_lenient(&promos, &mut d.corrupt).await?;
        d.vlans = self.records_lenient(&vlans, &mut d.corrupt).await?;
        d.ports = self.records_lenient(&ports, &mut d.corrupt).await?;
        d.policy = match policy.map(|j| parse::<Policy>(keys::POLICY, &j)) {
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                d.corrupt.push(keys::POLICY.to_owned());
                None
            }
            None => None,
        };
        Ok(d)
    }

    async fn records_lenient<T: Record>(
        &self,
        names: &[String],
        corrupt: &mut Vec<String>,
    ) -> Result<Vec<T>> {
        let keys: Vec<String> = names.iter().map(|n| T::key(n)).collect();
        let raw = self.get_raw_many(&keys).await?;
        let mut out = Vec::with_capacity(raw.len());
        for (key, json) in keys.into_iter().zip(raw) {
            match json.map(|j| parse::<T>(&key, &j)) {
                Some(Ok(r)) => out.push(r),
                Some(Err(_)) => corrupt.push(key),
                None => {}
            }
        }
        Ok(out)
    }
}

/// The name sets and policy read first by [`Store::dump`].
type DumpNames = (
    Vec<String>,
    Vec<String>,
    Option<String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
);

/// The records a replica loads.
#[derive(Debug, Default)]
pub(crate) struct Dump {
    pub tiers: Vec<Tier>,
    pub services: Vec<Service>,
    pub policy: Option<Policy>,
    pub customers: Vec<Customer>,
    pub promotions: Vec<Promotion>,
    pub vlans: Vec<Vlan>,
    pub ports: Vec<PortConfig>,
    /// Keys skipped because their record did not parse.
    pub corrupt: Vec<String>,
}

fn unexpected(reply: &[String]) -> CrmError {
    CrmError::Redis(RedisError::from((
        ErrorKind::UnexpectedReturnType,
        "unexpected reply from a Tierflow CRM script",
        format!("{reply:?}"),
    )))
}

/// A file naming a record twice would have its later copy silently win:
/// reject it, naming the second copy.
fn check_duplicates(f: &CrmFile) -> Result<(), FieldError> {
    fn dups<'a>(
        list: &str,
        field: &str,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<(), FieldError> {
        let mut seen = HashSet::new();
        for (i, n) in names.enumerate() {
            if !seen.insert(n) {
                return Err(FieldError::new(
                    format!("{list}[{i}].{field}"),
                    format!("{n:?} appears more than once"),
                ));
            }
        }
        Ok(())
    }
    dups("tiers", "name", f.tiers.iter().map(|t| t.name.as_str()))?;
    dups("customers", "id", f.customers.iter().map(|c| c.id.as_str()))?;
    dups(
        "promotions",
        "code",
        f.promotions.iter().map(|p| p.code.as_str()),
    )?;
    dups(
        "services",
        "name",
        f.services.iter().map(|s| s.name.as_str()),
    )?;
    let vids: Vec<String> = f.vlans.iter().map(|v| v.vid.to_string()).collect();
    dups("vlans", "vid", vids.iter().map(String::as_str))?;
    let ports: Vec<String> = f
        .ports
        .iter()
        .map(|p| keys::port_name(p.dpid_value().unwrap_or_default(), p.port))
        .collect();
    dups("ports", "port", ports.iter().map(String::as_str))
}

/// One session record's commands: its key written with its membership of
/// the live set (SET and SADD), or for an ended session SET with expiry
/// and SREM; a reader relies on the pair going together.
fn push_session_record(p: &mut redis::Pipeline, key: &str, id: &str, json: &[u8], ended: bool) {
    if ended {
        p.cmd("SET")
            .arg(key)
            .arg(json)
            .arg("EX")
            .arg(ENDED_SESSION_TTL_SECS)
            .ignore()
            .cmd("SREM")
            .arg(keys::SESSIONS)
            .arg(id)
            .ignore();
    } else {
        p.cmd("SET")
            .arg(key)
            .arg(json)
            .ignore()
            .cmd("SADD")
            .arg(keys::SESSIONS)
            .arg(id)
            .ignore();
    }
}
