//! Tests of the CRM (`tierflow::crm`) against a real `redis-server` that
//! each test starts on its own free port: CRUD round trips, index
//! maintenance and conflicts, the lookup rules, bulk loads (valid and
//! invalid), sessions, the replica following writes and surviving a Redis
//! restart, and bounded calls while Redis is down.
//!
//! Waits poll with a deadline; the deadlines are generous upper bounds
//! that only say "this happens at all".

mod support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::redis::RedisServer;
use tierflow::crm::{
    Change, ChangeKind, CrmError, CustomerFilter, LoadSummary, MatchedBy, Replica, ReplicaOptions,
    ReplicaScope, Snapshot, Store, StoreOptions, Write, load_file,
};
use tierflow_api::model::{
    ClientData, CrmFile, Customer, Explanation, Policy, PortConfig, Promotion, Proto, Reason,
    Service, ServiceKind, Session, SessionState, Terms, Tier, Vlan, Weights,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn tier(name: &str, min: f64) -> Tier {
    Tier {
        name: name.into(),
        min_benefit: min,
        rate_kbps: 10_000,
        burst_kbits: 1000,
        dscp: 10,
        queue_id: 1,
        queue_min_kbps: 1000,
        hold_rate_kbps: 64,
    }
}

fn customer(id: &str, phones: &[&str], ips: &[&str]) -> Customer {
    Customer {
        id: id.into(),
        name: format!("Customer {id}"),
        phones: phones.iter().map(|s| s.to_string()).collect(),
        ips: ips.iter().map(|s| s.to_string()).collect(),
        lifetime_value: 1000.0,
        annual_revenue: 1000.0,
        margin_pct: 10.0,
        open_opportunity_value: 0.0,
        win_probability: 0.0,
        churn_risk: 0.0,
        segment: "smb".into(),
    }
}

fn promo(code: &str, tier: Option<&str>) -> Promotion {
    Promotion {
        code: code.into(),
        benefit_boost: 100.0,
        tier: tier.map(Into::into),
        expires_at: None,
    }
}

fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crm/contact-center.json")
}

fn sample() -> CrmFile {
    let text = std::fs::read_to_string(sample_path()).expect("sample file");
    serde_json::from_str(&text).expect("sample file parses")
}

async fn store(r: &RedisServer) -> Store {
    Store::connect(&r.url()).await.expect("connect to redis")
}

async fn raw(r: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(r.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

async fn dbsize(r: &RedisServer) -> i64 {
    let mut c = raw(r).await;
    redis::cmd("DBSIZE")
        .query_async(&mut c)
        .await
        .expect("DBSIZE")
}

async fn get_raw(r: &RedisServer, key: &str) -> Option<String> {
    let mut c = raw(r).await;
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("GET")
}

/// Polls `f` until it is true or the deadline passes.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Receives changes until one equals `want`.
async fn expect_change(rx: &mut broadcast::Receiver<Change>, want: Change) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(c)) if c == want => return,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("change channel: {e}"),
            Err(_) => panic!("no change {want:?} within {WAIT:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier_crud_round_trip() {
    let r = RedisServer::start();
    let s = store(&r).await;
    assert!(s.list_tiers().await.expect("list").is_empty());
    let gold = tier("gold", 5000.0);
    s.put_tier(&gold).await.expect("put gold");
    s.put_tier(&tier("bronze", 0.0)).await.expect("put bronze");
    assert_eq!(s.get_tier("gold").await.expect("get"), gold);
    let names: Vec<String> = s
        .list_tiers()
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["bronze", "gold"]);

    let faster = Tier {
        rate_kbps: 60_000,
        ..gold.clone()
    };
    s.put_tier(&faster).await.expect("replace gold");
    assert_eq!(s.get_tier("gold").await.expect("get"), faster);

    let bad = Tier {
        dscp: 64,
        ..gold.clone()
    };
    match s.put_tier(&bad).await {
        Err(CrmError::Invalid(f)) => assert_eq!(f.field, "dscp"),
        other => panic!("expected Invalid(dscp), got {other:?}"),
    }
    assert_eq!(
        s.get_tier("gold").await.expect("get"),
        faster,
        "bad write changed nothing"
    );

    assert!(s.delete_tier("gold").await.expect("delete"));
    assert!(!s.delete_tier("gold").await.expect("delete again"));
    match s.get_tier("gold").await {
        Err(CrmError::NotFound { kind, id }) => assert_eq!((kind, id.as_str()), ("tier", "gold")),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_services_policy_and_tier_references() {
    let r = RedisServer::start();
    let s = store(&r).await;

    // No policy stored: the default one.
    assert_eq!(s.get_policy().await.expect("policy"), Policy::default());
    let p = Policy {
        weights: Weights {
            margin: 2.0,
            ..Weights::default()
        },
        default_tier: "bronze".into(),
    };
    match s.put_policy(&p).await {
        Err(CrmError::Invalid(f)) => {
            assert_eq!(f.field, "default_tier");
            assert!(f.reason.contains("bronze"), "{f}");
        }
        other => panic!("expected Invalid(default_tier), got {other:?}"),
    }
    s.put_tier(&tier("bronze", 0.0)).await.expect("tier");
    s.put_tier(&tier("gold", 5000.0)).await.expect("tier");
    s.put_policy(&p).await.expect("policy");
    assert_eq!(s.get_policy().await.expect("policy"), p);

    match s.put_promotion(&promo("VIP", Some("platinum"))).await {
        Err(CrmError::Invalid(f)) => assert_eq!(f.field, "tier"),
        other => panic!("expected Invalid(tier), got {other:?}"),
    }
    let vip = promo("VIP", Some("gold"));
    s.put_promotion(&vip).await.expect("promotion");
    assert_eq!(s.get_promotion("VIP").await.expect("get"), vip);
    assert_eq!(s.list_promotions().await.expect("list"), vec![vip]);

    // Tiers named by the policy or a promotion stay.
    match s.delete_tier("bronze").await {
        Err(CrmError::Conflict(m)) => assert!(m.contains("default_tier"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    match s.delete_tier("gold").await {
        Err(CrmError::Conflict(m)) => assert!(m.contains("VIP"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(s.delete_promotion("VIP").await.expect("delete"));
    assert!(s.delete_tier("gold").await.expect("delete gold now"));

    let sip = Service {
        name: "sip".into(),
        ip: "10.0.0.100".into(),
        proto: Proto::Udp,
        port: 5060,
        kind: ServiceKind::Sip,
    };
    s.put_service(&sip).await.expect("service");
    assert_eq!(s.get_service("sip").await.expect("get"), sip);
    assert_eq!(s.list_services().await.expect("list"), vec![sip.clone()]);
    match s.put_service(&Service { port: 0, ..sip }).await {
        Err(CrmError::Invalid(f)) => assert_eq!(f.field, "port"),
        other => panic!("expected Invalid(port), got {other:?}"),
    }
    assert!(s.delete_service("sip").await.expect("delete"));
    assert!(s.list_services().await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_publishes_its_event() {
    let r = RedisServer::start();
    let s = store(&r).await;
    let mut ps = redis::Client::open(r.url())
        .expect("client")
        .get_async_pubsub()
        .await
        .expect("pubsub");
    ps.subscribe("tf:events").await.expect("subscribe");
    s.put_tier(&tier("gold", 1.0)).await.expect("tier");
    s.put_customer(&customer("c-1", &[], &[]))
        .await
        .expect("customer");
    s.put_promotion(&promo("SPRING", None))
        .await
        .expect("promo");
    s.put_service(&Service {
        name: "web".into(),
        ip: "10.0.0.101".into(),
        proto: Proto::Tcp,
        port: 80,
        kind: ServiceKind::Web,
    })
    .await
    .expect("service");
    s.put_policy(&Policy {
        default_tier: "gold".into(),
        ..Policy::default()
    })
    .await
    .expect("policy");
    s.delete_customer("c-1").await.expect("delete");
    s.load(&CrmFile::default()).await.expect("load");
    let want = [
        "tier gold",
        "customer c-1",
        "promotion SPRING",
        "service web",
        "policy -",
        "customer c-1",
        "reload -",
    ];
    let mut stream = ps.on_message();
    for w in want {
        use futures_util::StreamExt;
        let m = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("event in time")
            .expect("subscription open");
        assert_eq!(m.get_payload::<String>().expect("text"), w);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_update_moves_its_index_entries() {
    let r = RedisServer::start();
    let s = store(&r).await;
    let c1 = customer("c-1", &["+14155550101"], &["10.0.0.1", "10.9.0.0/16"]);
    s.put_customer(&c1).await.expect("put");
    assert_eq!(s.get_customer("c-1").await.expect("get"), c1);
    let l = s
        .lookup(Some("+14155550101"), None, None)
        .await
        .expect("lookup");
    assert_eq!(l.customer.as_deref(), Some(&c1));
    assert_eq!(l.matched_by, Some(MatchedBy::Phone));

    let c1b = customer("c-1", &["+14155550199"], &["10.0.0.7"]);
    s.put_customer(&c1b).await.expect("update");
    let by_old_phone = s
        .lookup(Some("+14155550101"), None, None)
        .await
        .expect("lookup");
    assert_eq!(by_old_phone.customer, None, "old phone no longer matches");
    let by_old_ip = s
        .lookup(None, Some(ip("10.0.0.1")), None)
        .await
        .expect("lookup");
    assert_eq!(by_old_ip.customer, None, "old address no longer matches");
    let by_old_prefix = s
        .lookup(None, Some(ip("10.9.3.3")), None)
        .await
        .expect("lookup");
    assert_eq!(by_old_prefix.customer, None, "old prefix no longer matches");
    let by_new = s
        .lookup(Some("+14155550199"), None, None)
        .await
        .expect("lookup");
    assert_eq!(by_new.customer.as_deref(), Some(&c1b));
    let by_new_ip = s
        .lookup(None, Some(ip("10.0.0.7")), None)
        .await
        .expect("lookup");
    assert_eq!(by_new_ip.customer.as_deref(), Some(&c1b));

    assert_eq!(get_raw(&r, "tf:idx:phone:+14155550101").await, None);
    assert_eq!(get_raw(&r, "tf:idx:ip:10.9.0.0/16").await, None);
    let mut c = raw(&r).await;
    let lens: Vec<String> = redis::cmd("HKEYS")
        .arg("tf:idx:ip-lens")
        .query_async(&mut c)
        .await
        .expect("HKEYS");
    assert!(lens.is_empty(), "no prefix left, no length left: {lens:?}");

    assert!(s.delete_customer("c-1").await.expect("delete"));
    assert!(!s.delete_customer("c-1").await.expect("delete again"));
    assert_eq!(
        dbsize(&r).await,
        0,
        "a deleted customer leaves no key behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_of_another_customer_is_a_conflict_and_writes_nothing() {
    let r = RedisServer::start();
    let s = store(&r).await;
    s.put_customer(&customer("c-1", &["+14155550101"], &["10.0.0.1"]))
        .await
        .expect("c-1");
    let before = dbsize(&r).await;
    let c2 = customer("c-2", &["+14155550102", "+14155550101"], &["10.0.0.2"]);
    match s.put_customer(&c2).await {
        Err(CrmError::Conflict(m)) => {
            assert!(m.contains("phones[1]"), "{m}");
            assert!(m.contains("+14155550101"), "{m}");
            assert!(m.contains("c-1"), "{m}");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(matches!(
        s.get_customer("c-2").await,
        Err(CrmError::NotFound { .. })
    ));
    assert_eq!(get_raw(&r, "tf:idx:phone:+14155550102").await, None);
    assert_eq!(get_raw(&r, "tf:idx:ip:10.0.0.2").await, None);
    assert_eq!(dbsize(&r).await, before);

    // The same for an address, given as an equivalent /32.
    let c3 = customer("c-3", &[], &["10.0.0.1/32"]);
    match s.put_customer(&c3).await {
        Err(CrmError::Conflict(m)) => assert!(m.contains("ips[0]") && m.contains("c-1"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Re-putting c-1 with its own entries is no conflict.
    s.put_customer(&customer("c-1", &["+14155550101"], &["10.0.0.1"]))
        .await
        .expect("c-1 again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_rules() {
    let r = RedisServer::start();
    let s = store(&r).await;
    let put = |c: Customer| {
        let s = s.clone();
        async move { s.put_customer(&c).await.expect("put") }
    };
    put(customer("c-phone", &["+14155550101"], &["10.0.0.1"])).await;
    put(customer("c-ip", &[], &["10.0.0.2"])).await;
    put(customer("c-16", &[], &["10.1.0.0/16"])).await;
    put(customer("c-24", &[], &["10.1.2.0/24"])).await;
    put(customer("c-exact", &[], &["10.1.2.5"])).await;
    put(customer("c-v6", &[], &["2001:db8::/48"])).await;
    s.put_promotion(&promo("SPRING", None))
        .await
        .expect("promo");

    let who = |l: tierflow::crm::Lookup| (l.customer.map(|c| c.id.clone()), l.matched_by);
    // Phone before IP.
    let l = s
        .lookup(Some("+14155550101"), Some(ip("10.0.0.2")), None)
        .await
        .expect("lookup");
    assert_eq!(who(l), (Some("c-phone".into()), Some(MatchedBy::Phone)));
    // An unknown phone falls back to the IP.
    let l = s
        .lookup(Some("+14155559999"), Some(ip("10.0.0.2")), None)
        .await
        .expect("lookup");
    assert_eq!(who(l), (Some("c-ip".into()), Some(MatchedBy::Ip)));
    // Exact, then the longest prefix.
    for (addr, want) in [
        ("10.1.2.5", "c-exact"),
        ("10.1.2.6", "c-24"),
        ("10.1.9.9", "c-16"),
        ("2001:db8:0:1::7", "c-v6"),
        ("::ffff:10.0.0.2", "c-ip"),
    ] {
        let l = s.lookup(None, Some(ip(addr)), None).await.expect("lookup");
        assert_eq!(who(l), (Some(want.into()), Some(MatchedBy::Ip)), "{addr}");
    }
    // Nobody.
    for addr in ["10.2.0.1", "192.168.1.1", "2001:db9::1"] {
        let l = s.lookup(None, Some(ip(addr)), None).await.expect("lookup");
        assert_eq!(who(l), (None, None), "{addr}");
    }
    let l = s
        .lookup(Some("not-a-number"), None, None)
        .await
        .expect("lookup");
    assert_eq!(l, tierflow::crm::Lookup::default());
    let l = s.lookup(None, None, None).await.expect("lookup");
    assert_eq!(l, tierflow::crm::Lookup::default());
    // The promotion comes with any match, or none.
    let l = s
        .lookup(None, Some(ip("10.2.0.1")), Some("SPRING"))
        .await
        .expect("lookup");
    assert_eq!(l.promotion.map(|p| p.code.clone()), Some("SPRING".into()));
    assert_eq!(l.customer, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_finds_prefix_lengths_added_by_another_writer() {
    let r = RedisServer::start();
    let reader = store(&r).await;
    let writer = store(&r).await;
    writer
        .put_customer(&customer("c-24", &[], &["10.1.2.0/24"]))
        .await
        .expect("put");
    let l = reader
        .lookup(None, Some(ip("10.1.2.3")), None)
        .await
        .expect("lookup");
    assert_eq!(l.customer.map(|c| c.id.clone()).as_deref(), Some("c-24"));
    // The reader has cached {24}; a /8 appears through another Store.
    writer
        .put_customer(&customer("c-8", &[], &["11.0.0.0/8"]))
        .await
        .expect("put");
    let l = reader
        .lookup(None, Some(ip("11.7.7.7")), None)
        .await
        .expect("lookup");
    assert_eq!(l.customer.map(|c| c.id.clone()).as_deref(), Some("c-8"));
    // And the /24 still wins where both could.
    writer
        .put_customer(&customer("c-10", &[], &["10.0.0.0/8"]))
        .await
        .expect("put");
    let l = reader
        .lookup(None, Some(ip("10.1.2.3")), None)
        .await
        .expect("lookup");
    assert_eq!(l.customer.map(|c| c.id.clone()).as_deref(), Some("c-24"));
    let l = reader
        .lookup(None, Some(ip("10.200.0.1")), None)
        .await
        .expect("lookup");
    assert_eq!(l.customer.map(|c| c.id.clone()).as_deref(), Some("c-10"));
}

/// Lookups in flight at once are answered in shared batches: each still
/// gets its own answer, a corrupt record fails only the lookup that
/// matched it, and a prefix length added by another writer between two
/// bursts is probed for every lookup in the next burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_each_get_their_own_answer() {
    let r = RedisServer::start();
    let s = store(&r).await;
    const N: u32 = 600;
    let mut file = CrmFile::default();
    for i in 0..N {
        file.customers.push(customer(
            &format!("c-{i}"),
            &[&format!("+1415600{i:04}")],
            &[&format!("10.9.{}.{}", i / 200, i % 200)],
        ));
    }
    file.promotions.push(promo("SPRING", None));
    s.load(&file).await.expect("load");
    // c-13's record is garbage (a writer that bypassed validation).
    let mut c = raw(&r).await;
    let _: () = redis::cmd("SET")
        .arg("tf:customer:c-13")
        .arg("{not json")
        .query_async(&mut c)
        .await
        .expect("raw write");

    // Phone for the even ones, address for the odd ones, a promotion for
    // every third, and strangers in between: all at once.
    let burst = |s: Store| async move {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..N + 100 {
            let s = s.clone();
            tasks.spawn(async move {
                let phone = format!("+1415600{i:04}");
                let addr = ip(&format!("10.9.{}.{}", i / 200, i % 200));
                let promo = (i % 3 == 0).then_some("SPRING");
                let l = if i % 2 == 0 {
                    s.lookup(Some(&phone), None, promo).await
                } else {
                    s.lookup(None, Some(addr), promo).await
                };
                (i, l)
            });
        }
        let mut out = Vec::new();
        while let Some(r) = tasks.join_next().await {
            out.push(r.expect("lookup task"));
        }
        out.sort_by_key(|(i, _)| *i);
        out
    };
    for (i, l) in burst(s.clone()).await {
        if i == 13 {
            assert!(matches!(l, Err(CrmError::Corrupt { .. })), "{l:?}");
            continue;
        }
        let l = l.expect("lookup");
        let want = (i < N).then(|| format!("c-{i}"));
        let by = (i < N).then_some(if i % 2 == 0 {
            MatchedBy::Phone
        } else {
            MatchedBy::Ip
        });
        assert_eq!(l.customer.map(|c| c.id.clone()), want, "lookup {i}");
        assert_eq!(l.matched_by, by, "lookup {i}");
        assert_eq!(
            l.promotion.map(|p| p.code.clone()),
            (i % 3 == 0).then(|| "SPRING".to_owned()),
            "lookup {i}"
        );
    }

    // Another writer gives 10.9.0.0/16 to one customer: every stranger
    // in 10.9/16 of the next burst (odd ones, looked up by address)
    // matches it through the new length.
    let writer = store(&r).await;
    writer
        .put_customer(&customer("c-net", &[], &["10.9.0.0/16"]))
        .await
        .expect("put");
    for (i, l) in burst(s.clone()).await {
        if i == 13 {
            continue;
        }
        let id = l.expect("lookup").customer.map(|c| c.id.clone());
        let want = if i < N {
            Some(format!("c-{i}"))
        } else if i % 2 == 1 {
            Some("c-net".to_owned())
        } else {
            None
        };
        assert_eq!(id, want, "lookup {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_codes_expired_unknown_and_malformed() {
    let r = RedisServer::start();
    let s = store(&r).await;
    s.load(&sample()).await.expect("load sample");
    let now = chrono::Utc::now();
    // Expired: the record comes back; it says it is no longer valid.
    let l = s
        .lookup(None, None, Some("WINTER25"))
        .await
        .expect("lookup");
    let p = l.promotion.expect("expired code still returned");
    assert!(!p.valid_at(now));
    let l = s.lookup(None, None, Some("SPRING")).await.expect("lookup");
    assert!(l.promotion.expect("SPRING").valid_at(now));
    // Unknown or malformed: none. Codes are case-sensitive.
    for code in ["AUTUMN", "spring", "bad code!", ""] {
        let l = s.lookup(None, None, Some(code)).await.expect("lookup");
        assert_eq!(l.promotion, None, "{code:?}");
    }
    // The same from a replica snapshot.
    let snap = Snapshot::from_file(&sample());
    let p = snap
        .lookup(None, None, Some("WINTER25"))
        .promotion
        .expect("expired");
    assert!(!p.valid_at(now));
    assert_eq!(snap.lookup(None, None, Some("AUTUMN")).promotion, None);
}

/// Benefit with the policy's weights, as PRODUCT.md defines it.
fn benefit(c: &Customer, w: &Weights) -> f64 {
    w.margin * c.annual_revenue * c.margin_pct / 100.0
        + w.opportunity * c.open_opportunity_value * c.win_probability
        + w.retention * c.lifetime_value * c.churn_risk
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_file_loads_and_matches_the_documented_tiers() {
    let r = RedisServer::start();
    let summary = load_file(&r.url(), &sample_path()).await.expect("load");
    assert_eq!(
        summary,
        LoadSummary {
            tiers: 4,
            customers: 4,
            promotions: 3,
            services: 4,
            policy: true,
            vlans: 0,
            ports: 0,
        }
    );
    let s = store(&r).await;
    let policy = s.get_policy().await.expect("policy");
    assert_eq!(policy.default_tier, "best-effort");
    let tiers = s.list_tiers().await.expect("tiers");
    let tier_for = |b: f64| {
        tiers
            .iter()
            .filter(|t| t.min_benefit <= b)
            .max_by(|a, b| a.min_benefit.total_cmp(&b.min_benefit))
            .map(|t| t.name.clone())
            .expect("some tier")
    };
    for (addr, id, want_benefit, want_tier) in [
        ("10.0.0.1", "c-1001", 57000.0, "gold"),
        ("10.0.0.2", "c-1002", 3300.0, "bronze"),
        ("10.0.0.3", "c-1003", 12000.0, "silver"),
        ("10.0.1.9", "c-1004", 25000.0, "gold"),
    ] {
        let l = s.lookup(None, Some(ip(addr)), None).await.expect("lookup");
        let c = l.customer.expect("a customer");
        assert_eq!(c.id, id, "{addr}");
        let b = benefit(&c, &policy.weights);
        assert!((b - want_benefit).abs() < 1e-6, "{id}: benefit {b}");
        assert_eq!(tier_for(b), want_tier, "{id}");
    }
    // Bolt Bikes with SPRING: 5800, silver.
    let spring = s.get_promotion("SPRING").await.expect("SPRING");
    let bolt = s.get_customer("c-1002").await.expect("bolt");
    assert_eq!(
        tier_for(benefit(&bolt, &policy.weights) + spring.benefit_boost),
        "silver"
    );
    // 10.0.0.4 is nobody; with Delta's number it is Delta, by phone.
    let l = s
        .lookup(None, Some(ip("10.0.0.4")), None)
        .await
        .expect("lookup");
    assert_eq!(l.customer, None);
    let l = s
        .lookup(Some("+14155550104"), Some(ip("10.0.0.4")), None)
        .await
        .expect("lookup");
    assert_eq!(l.customer.map(|c| c.id.clone()).as_deref(), Some("c-1004"));
    assert_eq!(l.matched_by, Some(MatchedBy::Phone));
    // Services as the topology has them.
    let svc = s.list_services().await.expect("services");
    let names: Vec<&str> = svc.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["iperf", "iperf-udp", "sip", "web"]);
    // Loading it again is idempotent.
    let n = dbsize(&r).await;
    load_file(&r.url(), &sample_path()).await.expect("reload");
    assert_eq!(dbsize(&r).await, n);
}

fn write_temp(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("tierflow-crm-test-{}-{name}", std::process::id()));
    std::fs::write(&p, text).expect("write temp file");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_writes_nothing_and_names_the_field() {
    let r = RedisServer::start();
    let mut f = sample();
    f.customers.push(customer("c-2000", &["+14155550200"], &[]));
    f.customers[3].phones = vec!["555-0100".into()];
    let path = write_temp("bad-phone.json", &serde_json::to_string(&f).expect("json"));
    let e = load_file(&r.url(), &path).await.expect_err("invalid");
    let msg = format!("{e:#}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("customers[3].phones[0]"), "{msg}");
    assert!(msg.contains("E.164"), "{msg}");
    assert_eq!(dbsize(&r).await, 0, "nothing written");

    // A promotion naming a tier neither in the file nor in Redis.
    let mut f = sample();
    f.promotions[1].tier = Some("platinum".into());
    let path = write_temp("bad-tier.json", &serde_json::to_string(&f).expect("json"));
    let msg = format!(
        "{:#}",
        load_file(&r.url(), &path).await.expect_err("invalid")
    );
    assert!(msg.contains("promotions[1].tier"), "{msg}");
    assert_eq!(dbsize(&r).await, 0);

    // Two customers sharing a number: a conflict, nothing written.
    let mut f = sample();
    f.customers[2].phones = vec!["+14155550101".into()];
    let path = write_temp("dup-phone.json", &serde_json::to_string(&f).expect("json"));
    let msg = format!(
        "{:#}",
        load_file(&r.url(), &path).await.expect_err("conflict")
    );
    assert!(
        msg.contains("+14155550101") && msg.contains("c-100"),
        "{msg}"
    );
    assert_eq!(dbsize(&r).await, 0);

    // The same id twice.
    let mut f = sample();
    f.customers[1].id = "c-1001".into();
    let path = write_temp("dup-id.json", &serde_json::to_string(&f).expect("json"));
    let msg = format!("{:#}", load_file(&r.url(), &path).await.expect_err("dup"));
    assert!(msg.contains("customers[1].id"), "{msg}");
    assert_eq!(dbsize(&r).await, 0);

    // Not even the file's shape: the JSON path and position are named.
    let path = write_temp(
        "bad-shape.json",
        r#"{"customers": [{"id": "c-1"}, {"id": "c-2", "margin_pct": "high"}]}"#,
    );
    let msg = format!("{:#}", load_file(&r.url(), &path).await.expect_err("shape"));
    assert!(msg.contains("customers[1].margin_pct"), "{msg}");
    let path = write_temp("unknown-field.json", r#"{"tiers": [], "colour": 1}"#);
    let msg = format!("{:#}", load_file(&r.url(), &path).await.expect_err("field"));
    assert!(msg.contains("colour"), "{msg}");
    let missing = std::env::temp_dir().join("tierflow-no-such-file.json");
    let msg = format!(
        "{:#}",
        load_file(&r.url(), &missing).await.expect_err("missing")
    );
    assert!(msg.contains("tierflow-no-such-file.json"), "{msg}");
    assert_eq!(dbsize(&r).await, 0);

    // A load into a CRM that already holds a customer owning a number.
    let s = store(&r).await;
    s.put_customer(&customer("c-9", &["+14155550103"], &[]))
        .await
        .expect("c-9");
    let before = dbsize(&r).await;
    match s.load(&sample()).await {
        Err(CrmError::Conflict(m)) => {
            assert!(
                m.contains("customers[2].phones[0]") && m.contains("c-9"),
                "{m}"
            )
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(dbsize(&r).await, before);
    assert!(s.list_tiers().await.expect("tiers").is_empty());
}

fn session(id: &str, state: SessionState) -> Session {
    let now = chrono::Utc::now();
    Session {
        id: id.into(),
        service: "sip".into(),
        client_ip: ip("10.0.0.1"),
        server_ip: ip("10.0.0.100"),
        state,
        tier: "gold".into(),
        override_tier: None,
        customer_id: Some("c-1001".into()),
        explanation: Explanation {
            inputs: ClientData::default(),
            customer_id: Some("c-1001".into()),
            matched_by: Some("ip".into()),
            promotion: None,
            weights: Weights::default(),
            terms: Terms::default(),
            benefit: 57000.0,
            tier: "gold".into(),
            reason: Reason::Automatic,
            detail: "test".into(),
            warnings: Vec::new(),
        },
        path: vec!["0000000000000001".into()],
        state_reason: String::new(),
        measured_kbps: None,
        meters: None,
        external_id: None,
        created_at: now,
        updated_at: now,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions() {
    let r = RedisServer::start();
    let s = store(&r).await;
    // Ids come from the control plane (a hash of the session's flow key).
    let a = tierflow::sessions::SessionId(1).to_string();
    let b = tierflow::sessions::SessionId(2).to_string();
    let sa = session(&a, SessionState::Active);
    let sb = session(&b, SessionState::Hold);
    s.put_session(&sa).await.expect("put");
    s.put_session(&sb).await.expect("put");
    assert_eq!(s.get_session(&a).await.expect("get"), sa);
    assert_eq!(s.list_sessions().await.expect("list"), vec![sa.clone(), sb]);

    // The control plane ends a session by writing its final view.
    let mut gone = sa.clone();
    gone.state = SessionState::Ended;
    gone.state_reason = "SIP BYE".into();
    s.put_session(&gone).await.expect("end");
    let ended = s.get_session(&a).await.expect("kept for inspection");
    assert_eq!(ended.state, SessionState::Ended);
    assert_eq!(ended.state_reason, "SIP BYE");
    let ids: Vec<String> = s
        .list_sessions()
        .await
        .expect("list")
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(ids, std::slice::from_ref(&b));
    let mut c = raw(&r).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("tf:session:{a}"))
        .query_async(&mut c)
        .await
        .expect("TTL");
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");
    let ttl_live: i64 = redis::cmd("TTL")
        .arg(format!("tf:session:{b}"))
        .query_async(&mut c)
        .await
        .expect("TTL");
    assert_eq!(ttl_live, -1, "a live session does not expire");
    assert!(matches!(
        s.get_session("s-ffffffff").await,
        Err(CrmError::NotFound {
            kind: "session",
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_listing_filters() {
    let r = RedisServer::start();
    let s = store(&r).await;
    s.load(&sample()).await.expect("load");
    let ids = |v: Vec<Customer>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let all = s
        .list_customers(&CustomerFilter::default())
        .await
        .expect("all");
    assert_eq!(ids(all), ["c-1001", "c-1002", "c-1003", "c-1004"]);
    let f = CustomerFilter {
        segment: Some("enterprise".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_customers(&f).await.expect("seg")),
        ["c-1001", "c-1004"]
    );
    let f = CustomerFilter {
        offset: 1,
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_customers(&f).await.expect("page")),
        ["c-1002", "c-1003"]
    );
    let f = CustomerFilter {
        phone: Some("+14155550103".into()),
        ..Default::default()
    };
    assert_eq!(ids(s.list_customers(&f).await.expect("phone")), ["c-1003"]);
    let f = CustomerFilter {
        ip: Some(ip("10.0.1.77")),
        ..Default::default()
    };
    assert_eq!(ids(s.list_customers(&f).await.expect("ip")), ["c-1004"]);
    let f = CustomerFilter {
        phone: Some("+14155550103".into()),
        ip: Some(ip("10.0.0.1")),
        ..Default::default()
    };
    assert!(s.list_customers(&f).await.expect("both").is_empty());
    let f = CustomerFilter {
        phone: Some("+14155550101".into()),
        ip: Some(ip("10.0.0.1")),
        segment: Some("smb".into()),
        ..Default::default()
    };
    assert!(
        s.list_customers(&f)
            .await
            .expect("both + segment")
            .is_empty()
    );
}

fn quick() -> ReplicaOptions {
    ReplicaOptions {
        resync_every: Duration::from_secs(600),
        op_timeout: Duration::from_millis(500),
        ping_every: Duration::from_millis(200),
        backoff_max: Duration::from_millis(200),
        ..ReplicaOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_follows_writes() {
    let r = RedisServer::start();
    let s = store(&r).await;
    s.load(&sample()).await.expect("load");
    let stop = CancellationToken::new();
    let rep = Replica::start_with(&r.url(), ReplicaScope::Full, quick(), stop.clone())
        .await
        .expect("replica");
    let cfg = Replica::start_with(&r.url(), ReplicaScope::ConfigOnly, quick(), stop.clone())
        .await
        .expect("config replica");
    let snap = rep.snapshot();
    assert!(rep.healthy());
    let tiers: Vec<&str> = snap.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        tiers,
        ["best-effort", "bronze", "silver", "gold"],
        "by min_benefit"
    );
    assert_eq!(snap.customer_count(), 4);
    assert_eq!(snap.services().len(), 4);
    assert_eq!(
        snap.lookup(None, Some(ip("10.0.0.1")), None)
            .customer
            .map(|c| c.id.clone())
            .as_deref(),
        Some("c-1001")
    );
    let c = cfg.snapshot();
    assert_eq!(c.customer_count(), 0);
    assert_eq!(c.tier("gold").map(|t| t.rate_kbps), Some(50_000));
    assert_eq!(c.lookup(None, Some(ip("10.0.0.1")), None).customer, None);

    let mut changes = rep.subscribe_changes();
    let mut cfg_changes = cfg.subscribe_changes();

    // A new customer.
    s.put_customer(&customer("c-7", &["+14155550177"], &["10.0.0.7"]))
        .await
        .expect("put");
    eventually("replica sees c-7", || {
        rep.snapshot()
            .lookup(None, Some(ip("10.0.0.7")), None)
            .customer
            .is_some()
    })
    .await;
    expect_change(
        &mut changes,
        Change {
            kind: ChangeKind::Customer,
            name: "c-7".into(),
        },
    )
    .await;
    // The config-only replica does not hold it but announces it.
    expect_change(
        &mut cfg_changes,
        Change {
            kind: ChangeKind::Customer,
            name: "c-7".into(),
        },
    )
    .await;

    // A tier change reaches both.
    let gold = Tier {
        rate_kbps: 40_000,
        queue_min_kbps: 10_000,
        ..s.get_tier("gold").await.expect("gold")
    };
    s.put_tier(&gold).await.expect("put tier");
    let want = Change {
        kind: ChangeKind::Tier,
        name: "gold".into(),
    };
    expect_change(&mut changes, want.clone()).await;
    expect_change(&mut cfg_changes, want).await;
    assert_eq!(rep.snapshot().tier("gold"), Some(&gold));
    assert_eq!(cfg.snapshot().tier("gold"), Some(&gold));

    // Moving an address from one customer to another.
    s.put_customer(&customer("c-7", &["+14155550177"], &[]))
        .await
        .expect("drop address");
    s.put_customer(&customer("c-8", &[], &["10.0.0.7"]))
        .await
        .expect("take address");
    expect_change(
        &mut changes,
        Change {
            kind: ChangeKind::Customer,
            name: "c-8".into(),
        },
    )
    .await;
    let l = rep
        .snapshot()
        .lookup(Some("+14155550177"), Some(ip("10.0.0.7")), None);
    assert_eq!(l.customer.map(|c| c.id.clone()).as_deref(), Some("c-7"));
    let l = rep.snapshot().lookup(None, Some(ip("10.0.0.7")), None);
    assert_eq!(l.customer.map(|c| c.id.clone()).as_deref(), Some("c-8"));

    // Deletes, promotions, policy.
    s.delete_customer("c-8").await.expect("delete");
    s.put_promotion(&promo("FALL", Some("silver")))
        .await
        .expect("promo");
    s.put_policy(&Policy {
        default_tier: "bronze".into(),
        ..Policy::default()
    })
    .await
    .expect("policy");
    expect_change(
        &mut changes,
        Change {
            kind: ChangeKind::Policy,
            name: "-".into(),
        },
    )
    .await;
    let snap = rep.snapshot();
    assert_eq!(snap.lookup(None, Some(ip("10.0.0.7")), None).customer, None);
    assert_eq!(
        snap.promotion("FALL")
            .and_then(|p| p.tier.clone())
            .as_deref(),
        Some("silver")
    );
    assert_eq!(snap.policy.default_tier, "bronze");
    assert!(rep.events_applied() >= 7);
    // Keepalive pings (every 200 ms here) on the subscribed connection
    // work: no reconnection, so no resync, happened meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rep.healthy());
    assert_eq!(rep.resyncs(), 0);
    // Shutdown ends the follower; the last snapshot stays readable.
    stop.cancel();
    eventually("follower stops", || !rep.healthy() && !cfg.healthy()).await;
    assert_eq!(rep.snapshot().policy.default_tier, "bronze");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_reload_and_periodic_resync() {
    let r = RedisServer::start();
    let stop = CancellationToken::new();
    let opts = ReplicaOptions {
        resync_every: Duration::from_millis(300),
        ..quick()
    };
    let rep = Replica::start_with(&r.url(), ReplicaScope::Full, opts, stop.clone())
        .await
        .expect("replica on an empty CRM");
    assert_eq!(rep.snapshot().customer_count(), 0);
    let mut changes = rep.subscribe_changes();
    // A bulk load publishes one `reload`: everything shows up.
    let s = store(&r).await;
    s.load(&sample()).await.expect("load");
    eventually("replica loaded the sample", || {
        rep.snapshot().customer_count() == 4
    })
    .await;
    expect_change(
        &mut changes,
        Change {
            kind: ChangeKind::Tier,
            name: "gold".into(),
        },
    )
    .await;
    // A write that bypassed the events is repaired by the periodic resync.
    let mut c = raw(&r).await;
    let t = serde_json::to_string(&tier("platinum", 90_000.0)).expect("json");
    let _: () = redis::pipe()
        .cmd("SET")
        .arg("tf:tier:platinum")
        .arg(t)
        .ignore()
        .cmd("SADD")
        .arg("tf:tiers")
        .arg("platinum")
        .ignore()
        .query_async(&mut c)
        .await
        .expect("raw write");
    eventually("periodic resync finds platinum", || {
        rep.snapshot().tier("platinum").is_some()
    })
    .await;
    expect_change(
        &mut changes,
        Change {
            kind: ChangeKind::Tier,
            name: "platinum".into(),
        },
    )
    .await;
    assert_eq!(
        rep.snapshot().tiers.last().map(|t| t.name.as_str()),
        Some("platinum")
    );
    // A resync that finds nothing new announces nothing.
    let n = rep.resyncs();
    eventually("two more resyncs", || rep.resyncs() >= n + 2).await;
    assert!(
        matches!(
            changes.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ),
        "quiet resyncs announce nothing"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_serves_while_redis_is_down_and_resyncs_after() {
    let mut r = RedisServer::start();
    let port = r.port;
    let s = store(&r).await;
    s.load(&sample()).await.expect("load");
    let stop = CancellationToken::new();
    let rep = Replica::start_with(&r.url(), ReplicaScope::Full, quick(), stop.clone())
        .await
        .expect("replica");
    let mut changes = rep.subscribe_changes();
    let acme = |snap: &Snapshot| {
        snap.lookup(None, Some(ip("10.0.0.1")), None)
            .customer
            .map(|c| c.id.clone())
    };
    assert_eq!(acme(&rep.snapshot()).as_deref(), Some("c-1001"));

    r.kill();
    eventually("replica notices Redis is gone", || !rep.healthy()).await;
    // Still serving, several times over while Redis stays down.
    for _ in 0..5 {
        assert_eq!(acme(&rep.snapshot()).as_deref(), Some("c-1001"));
        assert_eq!(rep.snapshot().tier("gold").map(|t| t.dscp), Some(46));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resyncs = rep.resyncs();

    // A new, different Redis on the same port.
    let r2 = RedisServer::start_on(port);
    let s2 = store(&r2).await;
    let mut f = sample();
    f.customers[0].ips = vec!["10.0.0.9".into()];
    f.customers.truncate(2);
    s2.load(&f).await.expect("load into the new redis");
    eventually("replica resubscribes", || rep.healthy()).await;
    eventually("replica resyncs from the new Redis", || {
        rep.resyncs() > resyncs && rep.snapshot().customer_count() == 2
    })
    .await;
    let snap = rep.snapshot();
    assert_eq!(acme(&snap), None, "10.0.0.1 is nobody now");
    assert_eq!(
        snap.lookup(None, Some(ip("10.0.0.9")), None)
            .customer
            .map(|c| c.id.clone())
            .as_deref(),
        Some("c-1001")
    );
    expect_change(
        &mut changes,
        Change {
            kind: ChangeKind::Customer,
            name: "c-1003".into(),
        },
    )
    .await;
    // And it follows events again.
    s2.put_customer(&customer("c-5", &[], &["10.0.0.5"]))
        .await
        .expect("put");
    eventually("replica follows events after the restart", || {
        rep.snapshot()
            .lookup(None, Some(ip("10.0.0.5")), None)
            .customer
            .is_some()
    })
    .await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_calls_fail_fast_while_redis_is_down_and_work_after() {
    let mut r = RedisServer::start();
    let port = r.port;
    let timeout = Duration::from_millis(300);
    let s = Store::connect_with(
        &r.url(),
        &StoreOptions {
            op_timeout: timeout,
            lazy: false,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("connect");
    s.put_tier(&tier("gold", 1.0)).await.expect("put");
    r.kill();
    // Bounded: the operation timeout plus scheduling slack, never a hang.
    let bound = timeout + Duration::from_secs(1);
    for _ in 0..3 {
        let t0 = Instant::now();
        let e = s.get_tier("gold").await.expect_err("redis is down");
        assert!(t0.elapsed() < bound, "took {:?}", t0.elapsed());
        assert!(e.is_unavailable(), "{e}");
        let t0 = Instant::now();
        s.lookup(Some("+14155550101"), Some(ip("10.0.0.1")), None)
            .await
            .expect_err("redis is down");
        assert!(t0.elapsed() < bound, "took {:?}", t0.elapsed());
    }
    // Connecting to a dead Redis is bounded too; a lazy store starts anyway.
    let t0 = Instant::now();
    Store::connect_with(
        &r.url(),
        &StoreOptions {
            op_timeout: timeout,
            lazy: false,
            ..StoreOptions::default()
        },
    )
    .await
    .expect_err("nothing listens");
    assert!(t0.elapsed() < bound, "took {:?}", t0.elapsed());
    let lazy = Store::connect_with(
        &r.url(),
        &StoreOptions {
            op_timeout: timeout,
            lazy: true,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("lazy store starts without Redis");

    let _r2 = RedisServer::start_on(port);
    let deadline = Instant::now() + WAIT;
    while s.ping().await.is_err() {
        assert!(Instant::now() < deadline, "store did not reconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.put_tier(&tier("silver", 1.0)).await.expect("works again");
    assert_eq!(s.get_tier("silver").await.expect("get").name, "silver");
    lazy.ping().await.expect("lazy store connects on first use");
}

#[test]
fn snapshot_lookup_matches_store_rules() {
    let mut f = sample();
    f.customers.push(customer("c-16", &[], &["10.1.0.0/16"]));
    f.customers.push(customer("c-24", &[], &["10.1.2.0/24"]));
    f.customers.push(customer("c-all", &[], &["0.0.0.0/0"]));
    f.customers
        .push(customer("c-v6", &["+4930123456"], &["2001:db8::/32"]));
    let s = Snapshot::from_file(&f);
    let id = |l: tierflow::crm::Lookup| l.customer.map(|c| c.id.clone());
    assert_eq!(
        id(s.lookup(Some("+14155550102"), Some(ip("10.0.0.1")), None)).as_deref(),
        Some("c-1002")
    );
    assert_eq!(
        id(s.lookup(None, Some(ip("10.1.2.3")), None)).as_deref(),
        Some("c-24")
    );
    assert_eq!(
        id(s.lookup(None, Some(ip("10.1.3.3")), None)).as_deref(),
        Some("c-16")
    );
    assert_eq!(
        id(s.lookup(None, Some(ip("8.8.8.8")), None)).as_deref(),
        Some("c-all")
    );
    assert_eq!(
        id(s.lookup(None, Some(ip("2001:db8:1::1")), None)).as_deref(),
        Some("c-v6")
    );
    assert_eq!(id(s.lookup(None, Some(ip("2001:db9::1")), None)), None);
    assert_eq!(
        id(s.lookup(Some("+4930123456"), None, None)).as_deref(),
        Some("c-v6")
    );
    let l = s.lookup(None, Some(ip("10.0.0.3")), Some("GOLDPASS"));
    assert_eq!(l.matched_by, Some(MatchedBy::Ip));
    assert_eq!(
        l.promotion.and_then(|p| p.tier.clone()).as_deref(),
        Some("gold")
    );
    // Shared records, not copies.
    let a = s
        .lookup(None, Some(ip("10.0.0.1")), None)
        .customer
        .expect("a");
    let b = s
        .lookup(Some("+14155550101"), None, None)
        .customer
        .expect("b");
    assert!(Arc::ptr_eq(&a, &b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_name_let_exactly_one_through() {
    let r = RedisServer::start();
    let s = store(&r).await;
    let creates = (0..16u32).map(|i| {
        let s = s.writing(Write::Create);
        tokio::spawn(async move {
            let t = Tier {
                rate_kbps: 1000 + i,
                ..tier("gold", 5000.0)
            };
            (i, s.put_tier(&t).await)
        })
    });
    let mut won = Vec::new();
    for h in creates {
        match h.await.expect("task") {
            (i, Ok(())) => won.push(i),
            (_, Err(CrmError::Conflict(m))) => assert_eq!(m, "tier \"gold\" exists"),
            (_, Err(e)) => panic!("expected Conflict, got {e:?}"),
        }
    }
    assert_eq!(won.len(), 1, "one create wins: {won:?}");
    let stored = s.get_tier("gold").await.expect("get");
    assert_eq!(
        stored.rate_kbps,
        1000 + won[0],
        "the winner's record is stored"
    );

    // A customer create is checked the same way.
    let c = customer("c-1", &["+14155550100"], &["10.0.0.1"]);
    s.writing(Write::Create)
        .put_customer(&c)
        .await
        .expect("create");
    match s.writing(Write::Create).put_customer(&c).await {
        Err(CrmError::Conflict(m)) => assert_eq!(m, "customer \"c-1\" exists"),
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_of_a_missing_record_writes_nothing() {
    let r = RedisServer::start();
    let s = store(&r).await;
    let up = s.writing(Write::Update);
    match up.put_tier(&tier("gold", 5000.0)).await {
        Err(CrmError::NotFound { kind, id }) => assert_eq!((kind, id.as_str()), ("tier", "gold")),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let c = customer("c-1", &["+14155550100"], &["10.0.0.1"]);
    match up.put_customer(&c).await {
        Err(CrmError::NotFound { kind, id }) => {
            assert_eq!((kind, id.as_str()), ("customer", "c-1"))
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(s.list_tiers().await.expect("list").is_empty());
    assert!(
        s.lookup(None, Some("10.0.0.1".parse().expect("ip")), None)
            .await
            .expect("lookup")
            .customer
            .is_none(),
        "no index entry was written"
    );
    // And an update of a record that exists goes through.
    s.put_tier(&tier("gold", 5000.0)).await.expect("put");
    up.put_tier(&Tier {
        dscp: 7,
        ..tier("gold", 5000.0)
    })
    .await
    .expect("update");
    assert_eq!(s.get_tier("gold").await.expect("get").dscp, 7);
}

fn vlan(vid: u16, gateways: &[&str]) -> Vlan {
    Vlan {
        vid,
        name: format!("v{vid}"),
        gateways: gateways.iter().map(|s| s.to_string()).collect(),
    }
}

fn port_cfg(dpid: &str, port: u32, native: Option<u16>, tagged: &[u16]) -> PortConfig {
    PortConfig {
        dpid: dpid.into(),
        port,
        native_vlan: native,
        tagged_vlans: tagged.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlans_and_ports_round_trip_with_their_rules_checked_in_the_write() {
    let r = RedisServer::start();
    let s = store(&r).await;
    let create = s.writing(Write::Create);
    create
        .put_vlan(&vlan(20, &["10.20.0.1/24"]))
        .await
        .expect("vlan 20");
    assert!(matches!(
        create.put_vlan(&vlan(20, &[])).await,
        Err(CrmError::Conflict(_))
    ));
    // Overlapping another VLAN's subnet: invalid, naming the gateway, and
    // nothing written.
    let keys_before = dbsize(&r).await;
    match create
        .put_vlan(&vlan(30, &["10.30.0.1/24", "10.20.0.130/25"]))
        .await
    {
        Err(CrmError::Invalid(f)) => {
            assert_eq!(f.field, "gateways[1]");
            assert!(f.reason.contains("VLAN 20"), "{f}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(dbsize(&r).await, keys_before);
    create
        .put_vlan(&vlan(30, &["10.30.0.1/24"]))
        .await
        .expect("vlan 30");
    // A VLAN's own old subnets do not count against it.
    s.writing(Write::Update)
        .put_vlan(&vlan(30, &["10.30.0.254/24", "10.31.0.1/24"]))
        .await
        .expect("vlan 30 replaced");
    assert!(matches!(
        s.writing(Write::Update).put_vlan(&vlan(40, &[])).await,
        Err(CrmError::NotFound { kind: "vlan", .. })
    ));
    let vids: Vec<u16> = s
        .list_vlans()
        .await
        .expect("list")
        .iter()
        .map(|v| v.vid)
        .collect();
    assert_eq!(vids, [20, 30]);
    assert_eq!(
        s.get_vlan(30).await.expect("get").gateways,
        ["10.30.0.254/24", "10.31.0.1/24"]
    );

    // Ports name existing VLANs only (1 always exists).
    match s.put_port(&port_cfg("0x101", 3, Some(20), &[40])).await {
        Err(CrmError::Invalid(f)) => assert_eq!(f.field, "tagged_vlans[0]"),
        other => panic!("{other:?}"),
    }
    assert!(
        s.put_port(&port_cfg("0x101", 3, Some(20), &[30]))
            .await
            .expect("created")
    );
    assert!(
        !s.put_port(&port_cfg("257", 3, None, &[20, 30]))
            .await
            .expect("replaced")
    );
    assert!(
        s.put_port(&port_cfg("0000000000000102", 1, Some(1), &[20]))
            .await
            .expect("vlan 1 native")
    );
    let p = s.get_port(0x101, 3).await.expect("get port");
    assert_eq!(p, port_cfg("0000000000000101", 3, None, &[20, 30]));
    assert_eq!(s.list_ports().await.expect("ports").len(), 2);
    // A VLAN a port carries stays; VLAN 1's record may always go.
    match s.delete_vlan(30).await {
        Err(CrmError::Conflict(m)) => assert!(m.contains("0000000000000101:3"), "{m}"),
        other => panic!("{other:?}"),
    }
    s.put_vlan(&vlan(1, &["192.168.1.1/24"]))
        .await
        .expect("vlan 1");
    assert!(s.delete_vlan(1).await.expect("vlan 1 goes"));
    assert!(s.delete_port(0x101, 3).await.expect("port goes"));
    assert!(!s.delete_port(0x101, 3).await.expect("already gone"));
    assert!(s.delete_vlan(30).await.expect("vlan 30 goes"));
    // Its subnets are free again.
    create
        .put_vlan(&vlan(40, &["10.31.0.2/24"]))
        .await
        .expect("vlan 40 takes 30's old subnet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlans_and_ports_load_from_a_file_and_the_replica_compiles_them() {
    let r = RedisServer::start();
    let s = store(&r).await;
    let mut file = CrmFile {
        vlans: vec![vlan(20, &["10.20.0.1/24"]), vlan(30, &["10.20.0.2/16"])],
        ports: vec![port_cfg("0x1", 1, Some(20), &[99])],
        ..CrmFile::default()
    };
    // Overlap between two VLANs of the file: invalid, nothing written.
    match s.load(&file).await {
        Err(CrmError::Invalid(f)) => assert_eq!(f.field, "vlans[1].gateways[0]"),
        other => panic!("{other:?}"),
    }
    file.vlans[1] = vlan(30, &["10.30.0.1/24"]);
    match s.load(&file).await {
        Err(CrmError::Invalid(f)) => assert_eq!(f.field, "ports[0].tagged_vlans[0]"),
        other => panic!("{other:?}"),
    }
    assert_eq!(dbsize(&r).await, 0);
    file.ports[0].tagged_vlans = vec![30];
    file.ports.push(port_cfg("2", 4, None, &[20]));
    let summary = s.load(&file).await.expect("loads");
    assert_eq!((summary.vlans, summary.ports), (2, 2));
    let stop = CancellationToken::new();
    let rep = Replica::start_with(&r.url(), ReplicaScope::ConfigOnly, quick(), stop.clone())
        .await
        .expect("replica");
    let snap = rep.snapshot();
    assert!(rep.vlans_active() && snap.vlans_active());
    assert_eq!(snap.net.classify((1, 1), None), Some(20));
    assert_eq!(snap.net.classify((2, 4), Some(20)), Some(20));
    assert_eq!(
        snap.net
            .subnet_of("10.30.0.9".parse().expect("ip"))
            .map(|s| s.vid),
        Some(30)
    );
    // A port change reaches the replica as its own change.
    let mut changes = rep.subscribe_changes();
    s.put_port(&port_cfg("0x1", 1, Some(30), &[]))
        .await
        .expect("moved");
    expect_change(
        &mut changes,
        Change {
            kind: ChangeKind::Port,
            name: "0000000000000001:1".into(),
        },
    )
    .await;
    assert_eq!(rep.net().classify((1, 1), None), Some(30));
    s.delete_port(1, 1).await.expect("gone");
    s.delete_port(2, 4).await.expect("gone");
    s.delete_vlan(20).await.expect("gone");
    s.delete_vlan(30).await.expect("gone");
    eventually("no VLAN configured", || !rep.vlans_active()).await;
    stop.cancel();
}
