//! The API and its console on the in-memory reference backend
//! (`api/tests/support/memory.rs`), with no network and no Redis: the
//! sample CRM (`crm/contact-center.json`), the contact-center topology of
//! `mininet/tierflow_mn.py` (edge1, edge2, core1..3, site) and a few live
//! sessions whose measured rates follow their tier's rate (its hold rate
//! on hold), as the switches' counters would. For working on the console
//! and for the browser test that needs no Mininet
//! (`tests/e2e/test_console.py`):
//!
//! ```sh
//! cargo run -p tierflow-api --example console_demo -- 127.0.0.1:18080 [TOKEN]
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::memory::Memory;
use tierflow_api::model::{ClientData, CrmFile, SessionState};
use tierflow_api::views::{HostView, LinkView, SessionFilter, format_dpid};
use tierflow_api::{ApiConfig, Backend};
use tokio_util::sync::CancellationToken;

const CRM: &str = include_str!("../../crm/contact-center.json");

const EDGE1: u64 = 0x101;
const EDGE2: u64 = 0x102;
const CORE1: u64 = 0x201;
const CORE2: u64 = 0x202;
const CORE3: u64 = 0x203;
const SITE: u64 = 0x301;

fn mac_of(ip: &str) -> String {
    let last: u8 = ip
        .rsplit('.')
        .next()
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    format!("00:00:00:00:00:{last:02x}")
}

fn host(ip: &str, dpid: u64, port: u32) -> HostView {
    HostView {
        mac: mac_of(ip),
        ip: Some(ip.into()),
        dpid: format_dpid(dpid),
        port,
        vlan: 1,
    }
}

/// Both directions of a link, as LLDP finds it.
fn link(a: u64, pa: u32, b: u64, pb: u32) -> [LinkView; 2] {
    let one = |s: u64, sp: u32, d: u64, dp: u32| LinkView {
        src_dpid: format_dpid(s),
        src_port: sp,
        dst_dpid: format_dpid(d),
        dst_port: dp,
    };
    [one(a, pa, b, pb), one(b, pb, a, pa)]
}

async fn seed(m: &Memory) -> anyhow_free::Result<()> {
    let crm: CrmFile = serde_json::from_str(CRM)?;
    for t in crm.tiers {
        m.create_tier(t).await?;
    }
    for c in crm.customers {
        m.create_customer(c).await?;
    }
    for p in crm.promotions {
        m.create_promotion(p).await?;
    }
    for s in crm.services {
        m.create_service(s).await?;
    }
    if let Some(p) = crm.policy {
        m.put_policy(p).await?;
    }
    for d in [EDGE1, EDGE2, CORE1, CORE2, CORE3, SITE] {
        m.connect_switch(d);
    }
    let links = [
        link(CORE1, 1, CORE2, 1),
        link(CORE2, 2, CORE3, 1),
        link(CORE3, 2, CORE1, 2),
        link(EDGE1, 1, CORE1, 3),
        link(EDGE2, 1, CORE2, 3),
        link(SITE, 1, CORE3, 3),
    ];
    let hosts = vec![
        host("10.0.0.1", EDGE1, 2),
        host("10.0.0.3", EDGE1, 3),
        host("10.0.0.2", EDGE2, 2),
        host("10.0.0.4", EDGE2, 3),
        host("10.0.0.100", SITE, 2),
        host("10.0.0.101", SITE, 3),
        host("10.0.0.200", SITE, 4),
    ];
    m.set_topology(links.into_iter().flatten().collect(), hosts);
    let path = |ds: &[u64]| ds.iter().map(|d| format_dpid(*d)).collect::<Vec<_>>();
    let sessions = [
        ("10.0.0.1", "sip", path(&[EDGE1, CORE1, CORE3, SITE])),
        ("10.0.0.2", "web", path(&[EDGE2, CORE2, CORE3, SITE])),
        ("10.0.0.3", "web", path(&[EDGE1, CORE1, CORE3, SITE])),
        ("10.0.0.4", "sip", path(&[EDGE2, CORE2, CORE3, SITE])),
    ];
    for (client, service, p) in sessions {
        let id = m
            .start_session(client.parse()?, service)
            .map_err(|e| anyhow_free::Error(e.to_string()))?;
        m.set_path(&id, p);
        if client == "10.0.0.4" {
            // An IVR learnt a promotion code for this caller.
            let d = ClientData {
                promo_code: Some("GOLDPASS".into()),
                source: Some("ivr".into()),
                ..ClientData::default()
            };
            m.client_data(&id, d).await?;
        }
    }
    m.switch_error(CORE2, "BAD_MATCH/BAD_PREREQ");
    Ok(())
}

/// Every second, each live session's measured rate: about its tier's
/// rate toward the server (its hold rate on hold), a little back.
async fn measure(m: Arc<Memory>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n = 0u32;
    while !stop.is_cancelled() {
        tick.tick().await;
        n += 1;
        let Ok(page) = m.list_sessions(SessionFilter::default()).await else {
            continue;
        };
        for (i, s) in page.items.iter().enumerate() {
            if s.state == SessionState::Ended {
                continue;
            }
            let Ok(t) = m.get_tier(&s.tier).await else {
                continue;
            };
            let rate = f64::from(if s.state == SessionState::Hold {
                t.hold_rate_kbps
            } else {
                t.rate_kbps
            });
            let wobble = 0.95 + 0.03 * (f64::from(n) * 0.7 + i as f64).sin();
            let (up, down) = if s.service == "sip" {
                let voice = rate.min(87.0) * wobble;
                (voice, voice)
            } else {
                (rate * wobble, rate * wobble * 0.03)
            };
            m.measure(&s.id, up, down);
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .as_deref()
        .unwrap_or("127.0.0.1:18080")
        .parse()?;
    let token = args.next();
    let m = Arc::new(Memory::default());
    seed(&m).await.map_err(|e| e.0)?;
    let stop = CancellationToken::new();
    tokio::spawn(measure(m.clone(), stop.clone()));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "console demo on http://{addr}/ (token: {})",
        token.as_deref().unwrap_or("none")
    );
    let router = tierflow_api::router(
        m,
        ApiConfig {
            token,
            ..ApiConfig::default()
        },
    );
    let ctrl_c = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });
    tierflow_api::serve(listener, router, stop).await?;
    Ok(())
}

/// The seed's one error type (the example has no anyhow).
mod anyhow_free {
    #[derive(Debug)]
    pub struct Error(pub String);
    pub type Result<T> = std::result::Result<T, Error>;
    impl<E: std::fmt::Display> From<E> for Error {
        fn from(e: E) -> Self {
            Error(e.to_string())
        }
    }
}
