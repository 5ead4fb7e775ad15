//! CRM lookup costs: `Snapshot::lookup` (replica mode, in memory) over a
//! large CRM, and `Store::lookup` (remote mode) against a real
//! redis-server started here, one at a time and many concurrently over the
//! one multiplexed connection.

// Shared with the tests, which use all of it.
#[allow(dead_code)]
#[path = "../tests/support/redis.rs"]
mod redis_server;

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use redis_server::RedisServer;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tierflow::crm::{Snapshot, Store};
use tierflow_api::model::{CrmFile, Customer, Promotion};

/// Customer `i`: phone +1415{i:07}, address 10.x.y.z from `i`.
fn customer(i: u32, ips: Vec<String>) -> Customer {
    Customer {
        id: format!("c-{i}"),
        name: format!("Customer {i}"),
        phones: vec![format!("+1415{i:07}")],
        ips,
        lifetime_value: 1000.0,
        annual_revenue: 1000.0,
        margin_pct: 10.0,
        open_opportunity_value: 100.0,
        win_probability: 0.5,
        churn_risk: 0.1,
        segment: "smb".into(),
    }
}

fn addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | i)
}

/// `n` customers with one number and one address each, plus 1000 with a
/// /24 in 172.16.0.0/12 and one /16 there, and a promotion.
fn crm(n: u32) -> CrmFile {
    let mut customers: Vec<Customer> = (1..=n)
        .map(|i| customer(i, vec![addr(i).to_string()]))
        .collect();
    for j in 0..1000u32 {
        let net = Ipv4Addr::from(0xac10_0000 | (j << 8));
        customers.push(customer(n + 1 + j, vec![format!("{net}/24")]));
    }
    customers.push(customer(n + 2000, vec!["172.31.0.0/16".into()]));
    CrmFile {
        customers,
        promotions: vec![Promotion {
            code: "SPRING".into(),
            benefit_boost: 2500.0,
            tier: None,
            expires_at: None,
        }],
        ..CrmFile::default()
    }
}

fn snapshot_lookup(c: &mut Criterion) {
    let snap = Snapshot::from_file(&crm(100_000));
    let mut g = c.benchmark_group("snapshot_lookup_100k");
    g.throughput(Throughput::Elements(1));
    let known = IpAddr::V4(addr(54_321));
    let in_prefix = IpAddr::V4(Ipv4Addr::new(172, 16, 77, 9));
    let in_16 = IpAddr::V4(Ipv4Addr::new(172, 31, 200, 9));
    let unknown = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1));
    g.bench_function("phone", |b| {
        b.iter(|| snap.lookup(black_box(Some("+14150054321")), None, None))
    });
    g.bench_function("ip_exact", |b| {
        b.iter(|| snap.lookup(None, black_box(Some(known)), None))
    });
    g.bench_function("ip_prefix_24", |b| {
        b.iter(|| snap.lookup(None, black_box(Some(in_prefix)), None))
    });
    g.bench_function("ip_prefix_16", |b| {
        b.iter(|| snap.lookup(None, black_box(Some(in_16)), None))
    });
    g.bench_function("unknown_with_promo", |b| {
        b.iter(|| snap.lookup(None, black_box(Some(unknown)), Some("SPRING")))
    });
    g.finish();
}

fn store_lookup(c: &mut Criterion) {
    let server = RedisServer::start();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let n = 10_000u32;
    let store = rt.block_on(async {
        let s = match Store::connect(&server.url()).await {
            Ok(s) => s,
            Err(e) => panic!("connect: {e}"),
        };
        if let Err(e) = s.load(&crm(n)).await {
            panic!("load: {e}");
        }
        s
    });
    let mut g = c.benchmark_group("store_lookup_10k");
    g.measurement_time(Duration::from_secs(4));
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    g.bench_function("ip_exact_sequential", |b| {
        let mut i = 0u32;
        b.iter(|| {
            i = i % n + 1;
            rt.block_on(store.lookup(None, Some(IpAddr::V4(addr(i))), Some("SPRING")))
        })
    });
    // Lookups in flight at once: 256 as in issue 4's first figure, and
    // 1024 (16 switches' worth of new sessions) to show what batching
    // does with more to gather.
    const LOOKUPS: u64 = 10_240;
    for concurrent in [256u64, 1024] {
        let per_task = LOOKUPS / concurrent;
        g.throughput(Throughput::Elements(concurrent * per_task));
        g.bench_function(format!("ip_exact_{concurrent}_concurrent"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    rt.block_on(async {
                        let mut tasks = Vec::new();
                        for t in 0..concurrent {
                            let s = store.clone();
                            tasks.push(tokio::spawn(async move {
                                for k in 0..per_task {
                                    let i = ((t * per_task + k) % u64::from(n)) as u32 + 1;
                                    let l = s.lookup(None, Some(IpAddr::V4(addr(i))), None).await;
                                    assert!(matches!(l, Ok(ref l) if l.customer.is_some()));
                                }
                            }));
                        }
                        for t in tasks {
                            let _ = t.await;
                        }
                    });
                    total += t0.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, snapshot_lookup, store_lookup);
criterion_main!(benches);
