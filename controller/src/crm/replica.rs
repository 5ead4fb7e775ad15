//! [`Replica`]: an in-memory copy of the CRM, kept current from the
//! `tf:events` channel, so decisions never wait on Redis.
//!
//! A [`Snapshot`] is immutable; the replica swaps in a new one (behind an
//! `Arc`) after every batch of events, so readers take one `Arc` clone and
//! never block the writer or each other. Customers and promotions sit
//! behind their own `Arc`s: a tier change copies nothing of the customer
//! index, and a customer change copies the index once per batch of events.
//!
//! The follower task: subscribe, then load everything (so no event falls
//! between the two); apply each event by re-reading just that record
//! (`reload` re-reads everything); resync fully every `resync_every`, and
//! after every reconnection since events may have been missed. While Redis
//! is down the replica keeps serving its last snapshot and retries with
//! backoff. Every change is announced on a broadcast channel as a
//! [`Change`] so the control plane can re-meter or re-score sessions.

use super::keys;
use super::store::{CrmError, Dump, Store, StoreOptions, parse};
use super::{Lookup, MatchedBy};
use chrono::{DateTime, Utc};
use futures_util::{FutureExt, StreamExt};
use parking_lot::RwLock;
use redis::aio::PubSub;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tierflow_api::model::{CrmFile, Customer, Policy, PortConfig, Promotion, Service, Tier, Vlan};
use tokio::sync::broadcast;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

type Map<K, V> = HashMap<K, V, ahash::RandomState>;

/// More changes than this in one step are announced as one
/// [`ChangeKind::Everything`]: listeners re-evaluate everything anyway.
const MAX_CHANGES: usize = 256;
/// Events applied in one step at most (the rest wait for the next).
const MAX_BATCH: usize = 1024;
/// Retry of a failed resync while the subscription is up.
const RETRY_AFTER: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(100);

/// What a replica holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaScope {
    /// Tiers, policy and services: what every mode needs in memory.
    ConfigOnly,
    /// Also customers and promotions: decisions never wait on Redis.
    Full,
}

#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// Period of the full resync that repairs anything events missed.
    pub resync_every: Duration,
    /// Bound on each Redis call.
    pub op_timeout: Duration,
    /// Period of the subscription's keepalive ping: a connection that
    /// died silently is noticed within this plus `op_timeout`.
    pub ping_every: Duration,
    /// Longest wait between reconnection attempts.
    pub backoff_max: Duration,
    /// Capacity of the change channel; a slower listener gets `Lagged`
    /// and must re-evaluate everything.
    pub changes_capacity: usize,
    /// Where the follower task runs, so that shutdown drains it; `None`:
    /// plain `tokio::spawn`.
    pub tasks: Option<tokio_util::task::TaskTracker>,
    /// Trust and client certificate for a `rediss://` URL.
    pub tls: Option<super::RedisTls>,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        ReplicaOptions {
            resync_every: Duration::from_secs(30),
            op_timeout: Duration::from_secs(2),
            ping_every: Duration::from_secs(5),
            backoff_max: Duration::from_secs(5),
            changes_capacity: 1024,
            tasks: None,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Tier,
    Customer,
    Promotion,
    Service,
    /// `name` is the vid.
    Vlan,
    /// `name` is `{dpid}:{port}` (16 hex digits).
    Port,
    /// `name` is `-`.
    Policy,
    /// Too much changed (or may have, unseen) to list: re-evaluate
    /// everything. `name` is `-`.
    Everything,
}

/// One record that changed (created, replaced or deleted).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Change {
    pub kind: ChangeKind,
    pub name: String,
}

impl Change {
    fn new(kind: ChangeKind, name: impl Into<String>) -> Change {
        Change {
            kind,
            name: name.into(),
        }
    }
}

/// Customers and the indexes that find them.
#[derive(Clone, Default)]
struct People {
    customers: Map<String, Arc<Customer>>,
    phones: Map<String, Arc<Customer>>,
    /// Per prefix length (longest first, /32 included): network bits →
    /// customer.
    v4: Vec<(u8, Map<u32, Arc<Customer>>)>,
    v6: Vec<(u8, Map<u128, Arc<Customer>>)>,
}

impl std::fmt::Debug for People {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("People")
            .field("customers", &self.customers.len())
            .field("phones", &self.phones.len())
            .field("v4_lens", &self.v4.iter().map(|x| x.0).collect::<Vec<_>>())
            .field("v6_lens", &self.v6.iter().map(|x| x.0).collect::<Vec<_>>())
            .finish()
    }
}

fn mask4(bits: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask6(bits: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(len)))
    }
}

/// One IP index slot: family, length, network bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    V4(u8, u32),
    V6(u8, u128),
}

fn slots(c: &Customer) -> impl Iterator<Item = Slot> + '_ {
    c.ips
        .iter()
        .filter_map(|s| keys::canonical_net(s))
        .map(|n| match n {
            ipnet::IpNet::V4(n) => Slot::V4(n.prefix_len(), u32::from(n.network())),
            ipnet::IpNet::V6(n) => Slot::V6(n.prefix_len(), u128::from(n.network())),
        })
}

fn table<K>(v: &mut Vec<(u8, Map<K, Arc<Customer>>)>, len: u8) -> &mut Map<K, Arc<Customer>> {
    let at = match v.binary_search_by(|(l, _)| len.cmp(l)) {
        Ok(i) => i,
        Err(i) => {
            v.insert(i, (len, Map::default()));
            i
        }
    };
    &mut v[at].1
}

fn unindex<K: std::hash::Hash + Eq>(
    v: &mut Vec<(u8, Map<K, Arc<Customer>>)>,
    len: u8,
    key: K,
    id: &str,
) {
    if let Some(i) = v.iter().position(|(l, _)| *l == len) {
        if v[i].1.get(&key).is_some_and(|c| c.id == id) {
            v[i].1.remove(&key);
        }
        if v[i].1.is_empty() {
            v.remove(i);
        }
    }
}

impl People {
    /// Adds a customer's entries; an entry already held by another
    /// customer stays theirs (the store refuses such records, so only a
    /// hand-edited Redis gets here, and then the first loaded wins).
    fn index(&mut self, c: &Arc<Customer>) {
        for p in &c.phones {
            self.phones.entry(p.clone()).or_insert_with(|| c.clone());
        }
        for s in slots(c) {
            match s {
                Slot::V4(len, k) => {
                    table(&mut self.v4, len)
                        .entry(k)
                        .or_insert_with(|| c.clone());
                }
                Slot::V6(len, k) => {
                    table(&mut self.v6, len)
                        .entry(k)
                        .or_insert_with(|| c.clone());
                }
            }
        }
    }

    fn unindex(&mut self, c: &Customer) {
        for p in &c.phones {
            if self.phones.get(p).is_some_and(|o| o.id == c.id) {
                self.phones.remove(p);
            }
        }
        for s in slots(c) {
            match s {
                Slot::V4(len, k) => unindex(&mut self.v4, len, k, &c.id),
                Slot::V6(len, k) => unindex(&mut self.v6, len, k, &c.id),
            }
        }
    }

    fn by_ip(&self, a: IpAddr) -> Option<&Arc<Customer>> {
        match a.to_canonical() {
            IpAddr::V4(v) => {
                let bits = u32::from(v);
                self.v4
                    .iter()
                    .find_map(|(len, m)| m.get(&mask4(bits, *len)))
            }
            IpAddr::V6(v) => {
                let bits = u128::from(v);
                self.v6
                    .iter()
                    .find_map(|(len, m)| m.get(&mask6(bits, *len)))
            }
        }
    }

    fn set(&mut self, id: &str, c: Option<Customer>) -> bool {
        let old = self.customers.get(id).cloned();
        if old.as_deref() == c.as_ref() {
            return false;
        }
        if let Some(o) = &old {
            self.unindex(o);
            self.customers.remove(id);
        }
        if let Some(c) = c {
            let c = Arc::new(c);
            self.index(&c);
            self.customers.insert(id.to_owned(), c);
        }
        true
    }
}

/// The CRM as of one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Sorted by `min_benefit` ascending (then name).
    pub tiers: Vec<Tier>,
    pub policy: Policy,
    /// Sorted by name.
    pub services: Vec<Service>,
    /// Sorted by vid.
    pub vlans: Vec<Vlan>,
    /// Sorted by datapath id and port.
    pub ports: Vec<PortConfig>,
    /// `vlans` and `ports` compiled for the data plane.
    pub net: Arc<crate::vlan::Plan>,
    /// When this snapshot was made.
    pub loaded_at: DateTime<Utc>,
    pub scope: ReplicaScope,
    people: Arc<People>,
    promotions: Arc<Map<String, Arc<Promotion>>>,
}

impl Snapshot {
    /// An empty snapshot (the default policy, nothing else).
    pub fn empty(scope: ReplicaScope) -> Snapshot {
        Snapshot {
            tiers: Vec::new(),
            policy: Policy::default(),
            services: Vec::new(),
            vlans: Vec::new(),
            ports: Vec::new(),
            net: Arc::default(),
            loaded_at: Utc::now(),
            scope,
            people: Arc::default(),
            promotions: Arc::default(),
        }
    }

    /// A full snapshot of the records of a CRM file (no validation: the
    /// caller's data is taken as it is). For tests, benches and tools.
    pub fn from_file(f: &CrmFile) -> Snapshot {
        Snapshot::build(
            Dump {
                tiers: f.tiers.clone(),
                services: f.services.clone(),
                policy: f.policy.clone(),
                customers: f.customers.clone(),
                promotions: f.promotions.clone(),
                vlans: f.vlans.clone(),
                ports: f.ports.iter().cloned().map(PortConfig::canonical).collect(),
                corrupt: Vec::new(),
            },
            ReplicaScope::Full,
        )
    }

    fn build(d: Dump, scope: ReplicaScope) -> Snapshot {
        let mut s = Snapshot::empty(scope);
        s.tiers = d.tiers;
        sort_tiers(&mut s.tiers);
        s.services = d.services;
        s.services.sort_by(|a, b| a.name.cmp(&b.name));
        s.policy = d.policy.unwrap_or_default();
        s.vlans = d.vlans;
        s.ports = d.ports;
        s.compile_net();
        if scope == ReplicaScope::Full {
            let mut people = People::default();
            let mut customers = d.customers;
            customers.sort_by(|a, b| a.id.cmp(&b.id));
            for c in customers {
                let c = Arc::new(c);
                people.index(&c);
                people.customers.insert(c.id.clone(), c);
            }
            s.people = Arc::new(people);
            s.promotions = Arc::new(
                d.promotions
                    .into_iter()
                    .map(|p| (p.code.clone(), Arc::new(p)))
                    .collect(),
            );
        }
        s
    }

    /// Same rules as [`Store::lookup`], from memory: no I/O, no
    /// allocation (the records are shared). A config-only snapshot
    /// matches nobody.
    pub fn lookup(&self, phone: Option<&str>, ip: Option<IpAddr>, promo: Option<&str>) -> Lookup {
        let promotion = promo.and_then(|c| self.promotions.get(c)).cloned();
        let found = phone
            .and_then(|p| self.people.phones.get(p))
            .map(|c| (c, MatchedBy::Phone))
            .or_else(|| {
                ip.and_then(|a| self.people.by_ip(a))
                    .map(|c| (c, MatchedBy::Ip))
            });
        Lookup {
            customer: found.map(|(c, _)| c.clone()),
            matched_by: found.map(|(_, by)| by),
            promotion,
        }
    }

    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.name == name)
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn customer(&self, id: &str) -> Option<&Arc<Customer>> {
        self.people.customers.get(id)
    }

    pub fn customer_count(&self) -> usize {
        self.people.customers.len()
    }

    pub fn promotion(&self, code: &str) -> Option<&Arc<Promotion>> {
        self.promotions.get(code)
    }

    pub fn promotion_count(&self) -> usize {
        self.promotions.len()
    }

    fn set_tier(&mut self, name: &str, t: Option<Tier>) -> bool {
        let at = self.tiers.iter().position(|x| x.name == name);
        let changed = at.map(|i| &self.tiers[i]) != t.as_ref();
        if changed {
            if let Some(i) = at {
                self.tiers.remove(i);
            }
            if let Some(t) = t {
                self.tiers.push(t);
            }
            sort_tiers(&mut self.tiers);
        }
        changed
    }

    fn set_service(&mut self, name: &str, s: Option<Service>) -> bool {
        let at = self.services.iter().position(|x| x.name == name);
        let changed = at.map(|i| &self.services[i]) != s.as_ref();
        if changed {
            if let Some(i) = at {
                self.services.remove(i);
            }
            if let Some(s) = s {
                self.services.push(s);
            }
            self.services.sort_by(|a, b| a.name.cmp(&b.name));
        }
        changed
    }

    /// Sorts VLANs and ports and compiles them into `net`.
    fn compile_net(&mut self) {
        self.vlans.sort_by_key(|v| v.vid);
        self.ports.sort_by_key(|p| (p.dpid_value(), p.port));
        self.net = Arc::new(crate::vlan::Plan::new(&self.vlans, &self.ports));
    }

    /// Whether VLANs or ports are configured (then flows match VLANs).
    pub fn vlans_active(&self) -> bool {
        self.net.is_active()
    }

    fn set_vlan(&mut self, vid: &str, v: Option<Vlan>) -> bool {
        let at = self.vlans.iter().position(|x| x.vid.to_string() == vid);
        let changed = at.map(|i| &self.vlans[i]) != v.as_ref();
        if changed {
            if let Some(i) = at {
                self.vlans.remove(i);
            }
            if let Some(v) = v {
                self.vlans.push(v);
            }
            self.compile_net();
        }
        changed
    }

    fn set_port(&mut self, name: &str, p: Option<PortConfig>) -> bool {
        let at = self
            .ports
            .iter()
            .position(|x| keys::port_name(x.dpid_value().unwrap_or_default(), x.port) == name);
        let changed = at.map(|i| &self.ports[i]) != p.as_ref();
        if changed {
            if let Some(i) = at {
                self.ports.remove(i);
            }
            if let Some(p) = p {
                self.ports.push(p);
            }
            self.compile_net();
        }
        changed
    }

    fn set_promotion(&mut self, code: &str, p: Option<Promotion>) -> bool {
        if self.promotions.get(code).map(|x| &**x) == p.as_ref() {
            return false;
        }
        let m = Arc::make_mut(&mut self.promotions);
        match p {
            Some(p) => m.insert(code.to_owned(), Arc::new(p)),
            None => m.remove(code),
        };
        true
    }

    /// What differs from `old`, as changes (one `Everything` if too many).
    fn diff(&self, old: &Snapshot) -> Vec<Change> {
        let mut out = Vec::new();
        diff_named(
            &old.tiers,
            &self.tiers,
            |t| &t.name,
            ChangeKind::Tier,
            &mut out,
        );
        diff_named(
            &old.services,
            &self.services,
            |s| &s.name,
            ChangeKind::Service,
            &mut out,
        );
        if old.policy != self.policy {
            out.push(Change::new(ChangeKind::Policy, "-"));
        }
        let vid = |v: &Vlan| v.vid.to_string();
        let old_vlans: Vec<(String, &Vlan)> = old.vlans.iter().map(|v| (vid(v), v)).collect();
        let new_vlans: Vec<(String, &Vlan)> = self.vlans.iter().map(|v| (vid(v), v)).collect();
        diff_pairs(&old_vlans, &new_vlans, ChangeKind::Vlan, &mut out);
        let pname = |p: &PortConfig| keys::port_name(p.dpid_value().unwrap_or_default(), p.port);
        let old_ports: Vec<(String, &PortConfig)> =
            old.ports.iter().map(|p| (pname(p), p)).collect();
        let new_ports: Vec<(String, &PortConfig)> =
            self.ports.iter().map(|p| (pname(p), p)).collect();
        diff_pairs(&old_ports, &new_ports, ChangeKind::Port, &mut out);
        if !Arc::ptr_eq(&old.people, &self.people) {
            diff_maps(
                &old.people.customers,
                &self.people.customers,
                ChangeKind::Customer,
                &mut out,
            );
        }
        if !Arc::ptr_eq(&old.promotions, &self.promotions) {
            diff_maps(
                &old.promotions,
                &self.promotions,
                ChangeKind::Promotion,
                &mut out,
            );
        }
        if out.len() > MAX_CHANGES {
            return vec![Change::new(ChangeKind::Everything, "-")];
        }
        out
    }
}

fn sort_tiers(t: &mut [Tier]) {
    t.sort_by(|a, b| {
        a.min_benefit
            .total_cmp(&b.min_benefit)
            .then_with(|| a.name.cmp(&b.name))
    });
}

fn diff_named<T: PartialEq>(
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &String,
    kind: ChangeKind,
    out: &mut Vec<Change>,
) {
    let o: HashMap<&String, &T> = old.iter().map(|x| (name(x), x)).collect();
    let n: HashMap<&String, &T> = new.iter().map(|x| (name(x), x)).collect();
    let mut names: Vec<&String> = o.keys().chain(n.keys()).copied().collect();
    names.sort();
    names.dedup();
    for k in names {
        if o.get(k) != n.get(k) {
            out.push(Change::new(kind, k.as_str()));
        }
    }
}

fn diff_pairs<T: PartialEq>(
    old: &[(String, &T)],
    new: &[(String, &T)],
    kind: ChangeKind,
    out: &mut Vec<Change>,
) {
    let o: HashMap<&String, &T> = old.iter().map(|(k, v)| (k, *v)).collect();
    let n: HashMap<&String, &T> = new.iter().map(|(k, v)| (k, *v)).collect();
    let mut names: Vec<&String> = o.keys().chain(n.keys()).copied().collect();
    names.sort();
    names.dedup();
    for k in names {
        if o.get(k) != n.get(k) {
            out.push(Change::new(kind, k.as_str()));
        }
    }
}

fn diff_maps<T: PartialEq>(
    old: &Map<String, Arc<T>>,
    new: &Map<String, Arc<T>>,
    kind: ChangeKind,
    out: &mut Vec<Change>,
) {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    for k in names {
        let same = match (old.get(k), new.get(k)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (None, None) => true,
            _ => false,
        };
        if !same {
            out.push(Change::new(kind, k.as_str()));
        }
    }
}

/// An in-memory copy of the CRM that follows Redis.
#[derive(Debug)]
pub struct Replica {
    current: RwLock<Arc<Snapshot>>,
    /// The current snapshot's `vlans_active`, readable without the lock:
    /// the packet-in path of a network without VLANs checks only this.
    vlans_active: AtomicBool,
    scope: ReplicaScope,
    healthy: AtomicBool,
    resyncs: AtomicU64,
    events: AtomicU64,
    changes: broadcast::Sender<Change>,
}

/// Why following the subscription stopped.
enum Stop {
    Shutdown,
    Lost(String),
}

impl Replica {
    /// A replica that holds `snapshot` and follows nothing: for tests,
    /// tools and benches that decide without Redis.
    pub fn fixed(snapshot: Snapshot) -> Arc<Replica> {
        let (changes, _) = broadcast::channel(1);
        Arc::new(Replica {
            scope: snapshot.scope,
            vlans_active: AtomicBool::new(snapshot.vlans_active()),
            current: RwLock::new(Arc::new(snapshot)),
            healthy: AtomicBool::new(true),
            resyncs: AtomicU64::new(0),
            events: AtomicU64::new(0),
            changes,
        })
    }

    /// Loads a snapshot and starts following Redis (default options).
    pub async fn start(
        url: &str,
        scope: ReplicaScope,
        shutdown: CancellationToken,
    ) -> Result<Arc<Replica>, CrmError> {
        Replica::start_with(url, scope, ReplicaOptions::default(), shutdown).await
    }

    /// Loads a snapshot and spawns the follower task, which runs until
    /// `shutdown` is cancelled. Fails if Redis cannot be read now.
    pub async fn start_with(
        url: &str,
        scope: ReplicaScope,
        opts: ReplicaOptions,
        shutdown: CancellationToken,
    ) -> Result<Arc<Replica>, CrmError> {
        let store = Store::connect_with(
            url,
            &StoreOptions {
                op_timeout: opts.op_timeout,
                lazy: false,
                tasks: opts.tasks.clone(),
                tls: opts.tls.clone(),
            },
        )
        .await?;
        let client = super::tls::client(url, opts.tls.as_ref())?;
        let pubsub = subscribe(&client, opts.op_timeout).await?;
        let dump = store.dump(scope == ReplicaScope::Full).await?;
        warn_corrupt(&dump);
        let (changes, _) = broadcast::channel(opts.changes_capacity.max(1));
        let first = Snapshot::build(dump, scope);
        let r = Arc::new(Replica {
            vlans_active: AtomicBool::new(first.vlans_active()),
            current: RwLock::new(Arc::new(first)),
            scope,
            healthy: AtomicBool::new(true),
            resyncs: AtomicU64::new(0),
            events: AtomicU64::new(0),
            changes,
        });
        let tasks = opts.tasks.clone();
        let follow = r
            .clone()
            .follow_forever(store, client, Some(pubsub), opts, shutdown);
        match tasks {
            Some(t) => drop(t.spawn(follow)),
            None => drop(tokio::spawn(follow)),
        }
        Ok(r)
    }

    /// A replica that starts empty when Redis cannot be read now (the
    /// controller must come up and forward without its CRM): the follower
    /// keeps trying, and the first subscription loads everything and
    /// announces `Everything`. Fails only on a malformed URL.
    pub async fn start_or_follow(
        url: &str,
        scope: ReplicaScope,
        opts: ReplicaOptions,
        shutdown: CancellationToken,
    ) -> Result<Arc<Replica>, CrmError> {
        match Replica::start_with(url, scope, opts.clone(), shutdown.clone()).await {
            Ok(r) => return Ok(r),
            Err(e) => {
                warn!("CRM replica: Redis not readable at start ({e}); following it from empty")
            }
        }
        let store = Store::connect_with(
            url,
            &StoreOptions {
                op_timeout: opts.op_timeout,
                lazy: true,
                tasks: opts.tasks.clone(),
                tls: opts.tls.clone(),
            },
        )
        .await?;
        let client = super::tls::client(url, opts.tls.as_ref())?;
        let (changes, _) = broadcast::channel(opts.changes_capacity.max(1));
        let r = Arc::new(Replica {
            vlans_active: AtomicBool::new(false),
            current: RwLock::new(Arc::new(Snapshot::empty(scope))),
            scope,
            healthy: AtomicBool::new(false),
            resyncs: AtomicU64::new(0),
            events: AtomicU64::new(0),
            changes,
        });
        let tasks = opts.tasks.clone();
        let follow = r
            .clone()
            .follow_forever(store, client, None, opts, shutdown);
        match tasks {
            Some(t) => drop(t.spawn(follow)),
            None => drop(tokio::spawn(follow)),
        }
        Ok(r)
    }

    /// The current snapshot (one `Arc` clone; never blocks on Redis).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().clone()
    }

    pub fn scope(&self) -> ReplicaScope {
        self.scope
    }

    /// Whether the event subscription is up (the snapshot is current).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Full resyncs done since start (periodic, after reconnecting, and
    /// on `reload` events).
    pub fn resyncs(&self) -> u64 {
        self.resyncs.load(Ordering::Relaxed)
    }

    /// Events received and applied.
    pub fn events_applied(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Announcements of what changed, after the snapshot has it.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Whether VLANs or ports are configured now (one atomic load).
    pub fn vlans_active(&self) -> bool {
        self.vlans_active.load(Ordering::Relaxed)
    }

    /// The current VLAN plan.
    pub fn net(&self) -> Arc<crate::vlan::Plan> {
        self.current.read().net.clone()
    }

    fn publish(&self, next: Snapshot, changes: Vec<Change>) {
        let active = next.vlans_active();
        *self.current.write() = Arc::new(next);
        self.vlans_active.store(active, Ordering::Relaxed);
        for c in changes {
            // No receiver is not an error: nobody is listening yet.
            let _ = self.changes.send(c);
        }
    }

    /// Reloads everything and announces the differences. After a
    /// reconnection, a config-only replica cannot tell which customers or
    /// promotions changed meanwhile, so it announces `Everything`.
    async fn resync(&self, store: &Store, reconnected: bool) -> Result<(), CrmError> {
        let dump = store.dump(self.scope == ReplicaScope::Full).await?;
        warn_corrupt(&dump);
        let next = Snapshot::build(dump, self.scope);
        let old = self.snapshot();
        let mut changes = next.diff(&old);
        if reconnected && self.scope == ReplicaScope::ConfigOnly {
            changes = vec![Change::new(ChangeKind::Everything, "-")];
        }
        self.resyncs.fetch_add(1, Ordering::Relaxed);
        debug!(changes = changes.len(), "CRM replica resynced");
        self.publish(next, changes);
        Ok(())
    }

    /// Applies a batch of events: re-reads each named record once.
    async fn apply(&self, store: &Store, payloads: &[String]) -> Result<(), CrmError> {
        self.events
            .fetch_add(payloads.len() as u64, Ordering::Relaxed);
        let mut todo: Vec<(ChangeKind, String)> = Vec::new();
        let mut seen = HashSet::new();
        for p in payloads {
            let Some((kind, name)) = p.split_once(' ') else {
                debug!(event = %p, "ignoring malformed CRM event");
                continue;
            };
            let kind = match kind {
                "reload" => return self.resync(store, false).await,
                "tier" => ChangeKind::Tier,
                "customer" => ChangeKind::Customer,
                "promotion" => ChangeKind::Promotion,
                "service" => ChangeKind::Service,
                "vlan" => ChangeKind::Vlan,
                "port" => ChangeKind::Port,
                "policy" => ChangeKind::Policy,
                _ => {
                    debug!(event = %p, "ignoring unknown CRM event");
                    continue;
                }
            };
            if seen.insert((kind, name)) {
                todo.push((kind, name.to_owned()));
            }
        }
        let held = |k: ChangeKind| {
            self.scope == ReplicaScope::Full
                || matches!(
                    k,
                    ChangeKind::Tier
                        | ChangeKind::Service
                        | ChangeKind::Policy
                        | ChangeKind::Vlan
                        | ChangeKind::Port
                )
        };
        let reads: Vec<String> = todo
            .iter()
            .filter(|(k, _)| held(*k))
            .map(|(k, n)| match k {
                ChangeKind::Tier => keys::tier(n),
                ChangeKind::Customer => keys::customer(n),
                ChangeKind::Promotion => keys::promo(n),
                ChangeKind::Service => keys::service(n),
                ChangeKind::Vlan => keys::vlan(n),
                ChangeKind::Port => keys::port(n),
                ChangeKind::Policy | ChangeKind::Everything => keys::POLICY.to_owned(),
            })
            .collect();
        let mut raw = store.get_raw_many(&reads).await?.into_iter();
        let old = self.snapshot();
        let mut next = Snapshot::clone(&old);
        let mut changes = Vec::new();
        for (kind, name) in todo {
            if !held(kind) {
                // Not held here, but listeners (remote mode) still care.
                changes.push(Change::new(kind, name));
                continue;
            }
            let json = raw.next().flatten();
            let changed = match kind {
                ChangeKind::Tier => read(json, &keys::tier(&name)).map(|t| next.set_tier(&name, t)),
                ChangeKind::Service => {
                    read(json, &keys::service(&name)).map(|s| next.set_service(&name, s))
                }
                ChangeKind::Promotion => {
                    read(json, &keys::promo(&name)).map(|p| next.set_promotion(&name, p))
                }
                ChangeKind::Vlan => read(json, &keys::vlan(&name)).map(|v| next.set_vlan(&name, v)),
                ChangeKind::Port => read(json, &keys::port(&name)).map(|p| next.set_port(&name, p)),
                ChangeKind::Customer => read(json, &keys::customer(&name))
                    .map(|c| Arc::make_mut(&mut next.people).set(&name, c)),
                ChangeKind::Policy | ChangeKind::Everything => read::<Policy>(json, keys::POLICY)
                    .map(|p| {
                        let p = p.unwrap_or_default();
                        let changed = p != next.policy;
                        next.policy = p;
                        changed
                    }),
            };
            if changed == Some(true) {
                changes.push(Change::new(kind, name));
            }
        }
        if changes.len() > MAX_CHANGES {
            changes = vec![Change::new(ChangeKind::Everything, "-")];
        }
        if !changes.is_empty() {
            next.loaded_at = Utc::now();
            self.publish(next, changes);
        }
        Ok(())
    }

    async fn follow_forever(
        self: Arc<Self>,
        store: Store,
        client: redis::Client,
        first: Option<PubSub>,
        opts: ReplicaOptions,
        shutdown: CancellationToken,
    ) {
        let mut next = first;
        let mut backoff = BACKOFF_MIN;
        loop {
            let (pubsub, needs_resync) = match next.take() {
                Some(p) => (p, false),
                None => {
                    let got = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        r = subscribe(&client, opts.op_timeout) => r,
                    };
                    match got {
                        Ok(p) => (p, true),
                        Err(e) => {
                            debug!(error = %e, ?backoff, "CRM replica: cannot subscribe yet");
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(opts.backoff_max);
                            continue;
                        }
                    }
                }
            };
            backoff = BACKOFF_MIN;
            self.healthy.store(true, Ordering::Relaxed);
            if needs_resync {
                info!("CRM replica: subscription back, resyncing");
            }
            let stop = self
                .follow(&store, pubsub, needs_resync, &opts, &shutdown)
                .await;
            self.healthy.store(false, Ordering::Relaxed);
            match stop {
                Stop::Shutdown => return,
                Stop::Lost(why) => warn!(
                    "CRM replica: lost the Redis subscription ({why}); serving the last snapshot"
                ),
            }
        }
    }

    /// Follows one subscription until it is lost or shutdown.
    async fn follow(
        &self,
        store: &Store,
        pubsub: PubSub,
        reconnected: bool,
        opts: &ReplicaOptions,
        shutdown: &CancellationToken,
    ) -> Stop {
        let (mut sink, mut stream) = pubsub.split();
        let start = Instant::now();
        let mut resync = tokio::time::interval_at(start + opts.resync_every, opts.resync_every);
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut ping = tokio::time::interval_at(start + opts.ping_every, opts.ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // A full resync is owed (after reconnecting, or after a failed
        // read) and is retried until it succeeds; `bool` says whether it
        // follows a reconnection.
        let mut owed: Option<(Instant, bool)> = reconnected.then_some((start, true));
        loop {
            let retry_at = owed.map_or(start, |o| o.0);
            tokio::select! {
                _ = shutdown.cancelled() => return Stop::Shutdown,
                m = stream.next() => {
                    let Some(m) = m else { return Stop::Lost("subscription closed".into()) };
                    let mut payloads = Vec::new();
                    let mut closed = false;
                    let mut push = |m: redis::Msg| match m.get_payload::<String>() {
                        Ok(p) => payloads.push(p),
                        Err(e) => debug!(error = %e, "ignoring a non-text CRM event"),
                    };
                    push(m);
                    for _ in 1..MAX_BATCH {
                        match stream.next().now_or_never() {
                            Some(Some(m)) => push(m),
                            Some(None) => { closed = true; break; }
                            None => break,
                        }
                    }
                    if let Err(e) = self.apply(store, &payloads).await {
                        warn!(error = %e, "CRM replica: cannot apply events; will resync");
                        owed = Some((Instant::now() + RETRY_AFTER, owed.is_some_and(|o| o.1)));
                    }
                    if closed {
                        return Stop::Lost("subscription closed".into());
                    }
                }
                _ = resync.tick() => {
                    match self.resync(store, false).await {
                        Ok(()) => owed = None,
                        Err(e) => warn!(error = %e, "CRM replica: periodic resync failed"),
                    }
                }
                _ = tokio::time::sleep_until(retry_at), if owed.is_some() => {
                    let after_reconnect = owed.is_some_and(|o| o.1);
                    match self.resync(store, after_reconnect).await {
                        Ok(()) => owed = None,
                        Err(e) => {
                            warn!(error = %e, "CRM replica: resync failed; retrying");
                            owed = Some((Instant::now() + RETRY_AFTER, after_reconnect));
                        }
                    }
                }
                _ = ping.tick() => {
                    match tokio::time::timeout(opts.op_timeout, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Stop::Lost(format!("ping failed: {e}")),
                        Err(_) => return Stop::Lost("ping timed out".into()),
                    }
                }
            }
        }
    }
}

async fn subscribe(client: &redis::Client, t: Duration) -> Result<PubSub, CrmError> {
    let go = async {
        let mut p = client.get_async_pubsub().await?;
        p.subscribe(keys::EVENTS).await?;
        Ok::<_, redis::RedisError>(p)
    };
    match tokio::time::timeout(t, go).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(CrmError::Timeout),
    }
}

/// A record re-read for an event: `Some(None)` if it is gone, `None` if it
/// does not parse (the replica keeps its old copy and says so).
fn read<T: serde::de::DeserializeOwned>(json: Option<String>, key: &str) -> Option<Option<T>> {
    match json.map(|j| parse::<T>(key, &j)) {
        None => Some(None),
        Some(Ok(v)) => Some(Some(v)),
        Some(Err(e)) => {
            warn!(error = %e, "CRM replica: keeping the previous copy");
            None
        }
    }
}

fn warn_corrupt(d: &Dump) {
    for k in &d.corrupt {
        warn!(key = %k, "CRM replica: skipping a record that does not parse");
    }
}
