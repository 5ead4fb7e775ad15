//! The REST API's shared behaviour suite (`api/tests/support/suite.rs`)
//! against the real control plane: `ControlBackend` over a controller
//! started with `app::start`, a private `redis-server` per test, and an
//! emulated OpenFlow 1.3 switch over TCP that answers the controller's
//! requests and sends the packet-ins that start sessions. Plus checks of
//! what only the real backend has: the control plane's metrics, the API
//! served by `app::start`, and meters moving to the hold rate on the
//! switch.

#[allow(dead_code)]
mod support;

#[path = "../../api/tests/support/suite.rs"]
mod suite;

use async_trait::async_trait;
use bytes::BytesMut;
use openflow::framing::next_frame;
use openflow::multipart::{Desc, MeterFeatures, MultipartReplyBody, MultipartRequestBody};
use openflow::{
    FeaturesReply, FixedStr, FlowModCommand, HelloElem, MacAddr, Match, Message, MeterModCommand,
    MultipartReply, MultipartRequest, Oxm, PacketIn, PacketInReason, Port, PortNo,
};
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::redis::RedisServer;
use tierflow::app::{self, Running};
use tierflow::backend::ControlBackend;
use tierflow::config::Config;
use tierflow_api::Backend;
use tierflow_api::model::{ServiceKind, SessionState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);
const DPID: u64 = 0x00_00_00_00_00_00_0a_01;
const CLIENT_PORT: u32 = 1;
const SERVER_PORT: u32 = 2;
const SERVER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xaa]);
/// Where a third host (a media gateway) attaches.
const MEDIA_PORT: u32 = 3;

/// Frames the emulated switch sends as PACKET_INs: `(in_port, frame)`.
type Frames = mpsc::UnboundedSender<(u32, Vec<u8>)>;

/// What the emulated switch saw of the controller's meter mods.
type MeterLog = Arc<parking_lot::Mutex<Vec<(MeterModCommand, u32, u32)>>>;

/// The byte count the emulated switch reports for every flow it holds
/// (what the idle-media monitor reads).
type FlowBytes = Arc<std::sync::atomic::AtomicU64>;

/// The cookies of the flows one emulated switch holds: added by
/// FLOW_MOD add, removed by a delete whose cookie and mask select them
/// (the one way Tierflow deletes its flows), read back by flow stats
/// requests with the same cookie/mask rule.
type FlowCookies = std::collections::HashSet<u64>;

fn port(no: u32) -> Port {
    Port {
        port_no: PortNo::from(no),
        hw_addr: MacAddr([0x02, 0, 0, 0, 1, no as u8]),
        name: FixedStr::new(&format!("s1-eth{no}")),
        config: 0,
        state: openflow::port::state::LIVE,
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 10_000_000,
    }
}

/// Answers one controller message the way OVS would; `None` for the
/// messages a switch only applies.
fn answer(
    m: &Message<'_>,
    dpid: u64,
    meters: &MeterLog,
    bytes: &FlowBytes,
    flows: &mut FlowCookies,
) -> Option<Message<'static>> {
    let mp = |body| Some(Message::MultipartReply(MultipartReply { flags: 0, body }));
    match m {
        Message::Hello { .. } => Some(Message::Hello {
            elements: vec![HelloElem::VersionBitmap {
                bitmaps: vec![1 << 4],
            }],
        }),
        Message::FeaturesRequest => Some(Message::FeaturesReply(FeaturesReply {
            datapath_id: dpid,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0x4f,
            reserved: 0,
        })),
        Message::EchoRequest { data } => Some(Message::EchoReply {
            data: Cow::Owned(data.to_vec()),
        }),
        Message::BarrierRequest => Some(Message::BarrierReply),
        Message::FlowMod(fm) => {
            match fm.command {
                FlowModCommand::Add => {
                    flows.insert(fm.cookie);
                }
                FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                    flows.retain(|c| c & fm.cookie_mask != fm.cookie & fm.cookie_mask);
                }
                _ => {}
            }
            None
        }
        Message::MeterMod(mm) => {
            let rate = mm.bands.first().map_or(0, |b| match b {
                openflow::MeterBand::Drop { rate, .. } => *rate,
                _ => 0,
            });
            meters.lock().push((mm.command, mm.meter_id, rate));
            None
        }
        Message::MultipartRequest(MultipartRequest { body, .. }) => match body {
            MultipartRequestBody::PortDesc => mp(MultipartReplyBody::PortDesc(vec![
                port(CLIENT_PORT),
                port(SERVER_PORT),
                port(MEDIA_PORT),
            ])),
            MultipartRequestBody::Desc => mp(MultipartReplyBody::Desc(Box::new(Desc {
                mfr_desc: FixedStr::new("Emulated"),
                hw_desc: FixedStr::new("api test switch"),
                sw_desc: FixedStr::new("0.1"),
                serial_num: FixedStr::new("1"),
                dp_desc: FixedStr::new("emulated"),
            }))),
            MultipartRequestBody::MeterFeatures => {
                mp(MultipartReplyBody::MeterFeatures(MeterFeatures {
                    max_meter: 1024,
                    band_types: 1 << 1,
                    capabilities: 0xf,
                    max_bands: 1,
                    max_color: 0,
                }))
            }
            MultipartRequestBody::Flow(r) => mp(MultipartReplyBody::Flow(
                flows
                    .iter()
                    .filter(|&&c| c & r.cookie_mask == r.cookie & r.cookie_mask)
                    .map(|&cookie| openflow::multipart::FlowStats {
                        table_id: 0,
                        duration_sec: 1,
                        duration_nsec: 0,
                        priority: 30_000,
                        idle_timeout: 0,
                        hard_timeout: 0,
                        flags: 0,
                        cookie,
                        packet_count: 1,
                        byte_count: bytes.load(std::sync::atomic::Ordering::Relaxed),
                        match_: Match::new(),
                        instructions: Default::default(),
                    })
                    .collect(),
            )),
            // Every meter added so far let through the bytes the flows
            // counted (no band dropped any).
            MultipartRequestBody::Meter(_) => {
                let mut ids: Vec<u32> = meters
                    .lock()
                    .iter()
                    .filter(|(c, _, _)| *c == MeterModCommand::Add)
                    .map(|(_, id, _)| *id)
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                let b = bytes.load(std::sync::atomic::Ordering::Relaxed);
                mp(MultipartReplyBody::Meter(
                    ids.into_iter()
                        .map(|meter_id| openflow::multipart::MeterStats {
                            meter_id,
                            flow_count: 1,
                            packet_in_count: 1,
                            byte_in_count: b,
                            duration_sec: 1,
                            duration_nsec: 0,
                            band_stats: Vec::new(),
                        })
                        .collect(),
                ))
            }
            MultipartRequestBody::MeterConfig(_) => mp(MultipartReplyBody::MeterConfig(Vec::new())),
            MultipartRequestBody::Queue(_) => mp(MultipartReplyBody::Queue(Vec::new())),
            _ => None,
        },
        _ => None,
    }
}

/// Runs the switch side of one connection until either end closes:
/// answers the controller, and sends the frames given on `frames` as
/// PACKET_INs (`(in_port, ethernet frame)`).
async fn run_switch(
    mut stream: TcpStream,
    dpid: u64,
    mut frames: mpsc::UnboundedReceiver<(u32, Vec<u8>)>,
    meters: MeterLog,
    bytes: FlowBytes,
) {
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut flows = FlowCookies::new();
    loop {
        loop {
            let frame = match next_frame(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => return,
            };
            let Ok((h, m)) = openflow::decode(&frame) else {
                continue;
            };
            if let Some(reply) = answer(&m, dpid, &meters, &bytes, &mut flows) {
                let Ok(bytes) = openflow::to_vec(h.xid, &reply) else {
                    return;
                };
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
        buf.reserve(64 << 10);
        tokio::select! {
            r = stream.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            f = frames.recv() => {
                let Some((in_port, data)) = f else { return };
                let pi = Message::PacketIn(PacketIn {
                    buffer_id: openflow::NO_BUFFER,
                    total_len: data.len() as u16,
                    reason: PacketInReason::NoMatch,
                    table_id: 0,
                    cookie: 0,
                    match_: Match::new().with(Oxm::InPort(PortNo::from(in_port), None)),
                    data: Cow::Owned(data),
                });
                let Ok(bytes) = openflow::to_vec(0, &pi) else { return };
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn mac_of(ip: Ipv4Addr) -> MacAddr {
    let o = ip.octets();
    MacAddr([0x02, 0x01, o[0], o[1], o[2], o[3]])
}

fn udp(src: (MacAddr, Ipv4Addr, u16), dst: (MacAddr, Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(src.0.0, dst.0.0)
        .ipv4(src.1.octets(), dst.1.octets(), 64)
        .udp(src.2, dst.2)
        .write(&mut out, payload)
        .expect("build UDP frame");
    out
}

fn tcp_syn(src: (MacAddr, Ipv4Addr, u16), dst: (MacAddr, Ipv4Addr, u16)) -> Vec<u8> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(src.0.0, dst.0.0)
        .ipv4(src.1.octets(), dst.1.octets(), 64)
        .tcp(src.2, dst.2, 1, 64_240)
        .syn()
        .write(&mut out, &[])
        .expect("build TCP frame");
    out
}

/// An INVITE whose caller has no number: the client is known by address
/// only until client data says more.
fn invite(client: Ipv4Addr, server: Ipv4Addr) -> Vec<u8> {
    format!(
        "INVITE sip:support@{server} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {client}:5060;branch=z9hG4bK-{client}\r\n\
         From: <sip:anonymous@anonymous.invalid>;tag=t1\r\n\
         To: <sip:support@{server}>\r\n\
         Call-ID: call-{client}@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:anonymous@{client}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// One controller, its Redis and (once asked) its switch.
struct Fx {
    redis: tokio::sync::Mutex<RedisServer>,
    running: Running,
    backend: Arc<ControlBackend>,
    switch: tokio::sync::Mutex<Option<Frames>>,
    meters: MeterLog,
    bytes: FlowBytes,
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < WAIT, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start_fx() -> Fx {
    start_fx_with(Default::default()).await
}

async fn start_fx_with(hold: tierflow::config::HoldConfig) -> Fx {
    start_fx_on(RedisServer::start(), hold).await
}

async fn start_fx_on(redis: RedisServer, hold: tierflow::config::HoldConfig) -> Fx {
    let running = app::start(Config {
        openflow: "127.0.0.1:0".parse().expect("addr"),
        api: "127.0.0.1:0".parse().expect("addr"),
        redis: redis.url(),
        ovsdb: Vec::new(),
        hold,
        ..Default::default()
    })
    .await
    .expect("controller starts");
    let backend = Arc::new(ControlBackend::new(running.ctl.clone()));
    Fx {
        redis: tokio::sync::Mutex::new(redis),
        running,
        backend,
        switch: tokio::sync::Mutex::new(None),
        meters: MeterLog::default(),
        bytes: FlowBytes::default(),
    }
}

async fn fixture() -> Box<dyn suite::Fixture> {
    Box::new(start_fx().await)
}

impl Fx {
    /// Connects the emulated switch once; later calls reuse it.
    async fn ensure_switch(&self) -> Frames {
        let mut g = self.switch.lock().await;
        if let Some(tx) = &*g {
            return tx.clone();
        }
        let stream = TcpStream::connect(self.running.openflow_addr)
            .await
            .expect("connect to the OpenFlow listener");
        stream.set_nodelay(true).expect("nodelay");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_switch(
            stream,
            DPID,
            rx,
            self.meters.clone(),
            self.bytes.clone(),
        ));
        let ctl = self.running.ctl.clone();
        eventually("switch connected and learnt", || {
            ctl.switch(DPID)
                .is_some_and(|s| s.info.read().meter_features.is_some())
        })
        .await;
        *g = Some(tx.clone());
        tx
    }

    fn meter_log(&self) -> Vec<(MeterModCommand, u32, u32)> {
        self.meters.lock().clone()
    }
}

#[async_trait]
impl suite::Fixture for Fx {
    fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    async fn start_session(&self, client_ip: IpAddr, service: &str) -> String {
        let frames = self.ensure_switch().await;
        let svc = self
            .backend
            .get_service(service)
            .await
            .unwrap_or_else(|e| panic!("service {service}: {e}"));
        let IpAddr::V4(client) = client_ip else {
            panic!("sessions are IPv4");
        };
        let server: Ipv4Addr = svc
            .ip
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .expect("service address");
        // The replica (which session detection reads) follows Redis by
        // pub/sub: wait until it has the service.
        let replica = self.running.ctl.sessions().crm().replica.clone();
        eventually("replica has the service", || {
            let s = replica.snapshot();
            !s.tiers.is_empty() && s.services().iter().any(|x| x.name == service)
        })
        .await;
        let cmac = mac_of(client);
        // The server speaks first so the controller knows where it is.
        let hello = udp(
            (SERVER_MAC, server, 9),
            (MacAddr([0xff; 6]), Ipv4Addr::BROADCAST, 9),
            b"here",
        );
        let request = match (svc.kind, svc.proto) {
            (ServiceKind::Sip, _) => udp(
                (cmac, client, 5060),
                (SERVER_MAC, server, svc.port),
                &invite(client, server),
            ),
            (_, tierflow_api::model::Proto::Tcp) => {
                tcp_syn((cmac, client, 40_000), (SERVER_MAC, server, svc.port))
            }
            _ => udp((cmac, client, 40_000), (SERVER_MAC, server, svc.port), b""),
        };
        let t0 = Instant::now();
        loop {
            frames.send((SERVER_PORT, hello.clone())).expect("switch");
            frames.send((CLIENT_PORT, request.clone())).expect("switch");
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                if let Some(s) = self
                    .running
                    .ctl
                    .sessions()
                    .list(None, None, None)
                    .into_iter()
                    .filter(|s| s.client_ip == client_ip && s.service == service)
                    .collect::<Vec<_>>()
                    .pop()
                {
                    return s.id;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(
                t0.elapsed() < WAIT,
                "no session of {client_ip} to {service} within {WAIT:?}"
            );
        }
    }

    async fn connect_switch(&self) -> u64 {
        self.ensure_switch().await;
        DPID
    }

    async fn break_store(&self) {
        self.redis.lock().await.kill();
    }
}

tierflow_api_suite!(suite, fixture());

// ------------------------------------------------- real-backend only

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_metrics_are_exported() {
    let fx = start_fx().await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    use suite::Fixture as _;
    fx.start_session("10.0.0.1".parse().expect("ip"), "sip")
        .await;
    let text = c.get("/metrics").await.text();
    for want in [
        "# TYPE tierflow_packet_ins_total counter\n",
        "# TYPE tierflow_sessions_admitted_total counter\n",
        "tierflow_sessions_admitted_total 1\n",
        "tierflow_switches_connected 1\n",
        "tierflow_sessions{tier=\"gold\",state=\"active\"} 1\n",
        &format!("tierflow_meters_in_use{{dpid=\"{DPID:016x}\"}} 2\n"),
        "# TYPE tierflow_packet_in_duration_seconds histogram\n",
        "tierflow_packet_in_duration_seconds_bucket{le=\"+Inf\"} ",
    ] {
        assert!(text.contains(want), "no {want:?} in\n{text}");
    }
    let count: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tierflow_packet_in_duration_seconds_count "))
        .and_then(|v| v.parse().ok())
        .expect("histogram count");
    // One packet-in in 16 is timed (the first of each 16).
    let total: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tierflow_packet_ins_total "))
        .and_then(|v| v.parse().ok())
        .expect("packet-in count");
    assert!(total >= 2, "{total} packet-ins");
    assert_eq!(
        count,
        total.div_ceil(16),
        "{count} of {total} packet-ins timed"
    );
    fx.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_moves_the_meters_to_the_hold_rate_and_back() {
    let fx = start_fx().await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    use suite::Fixture as _;
    let id = fx
        .start_session("10.0.0.1".parse().expect("ip"), "sip")
        .await;
    // gold: 50000 kb/s; hold 64 kb/s (suite::tier).
    let modifies = |log: &[(MeterModCommand, u32, u32)], rate: u32| {
        log.iter()
            .filter(|(c, _, r)| *c == MeterModCommand::Modify && *r == rate)
            .count()
    };
    let s = c
        .put(
            &format!("/api/v1/sessions/{id}/state"),
            &serde_json::json!({"state": "hold"}),
        )
        .await
        .expect(axum::http::StatusCode::OK);
    assert_eq!(s["explanation"]["reason"], "hold", "{s}");
    assert_eq!(s["state_reason"], "cti");
    eventually("both meters modified to the hold rate", || {
        modifies(&fx.meter_log(), 64) >= 2
    })
    .await;
    let s = c
        .put(
            &format!("/api/v1/sessions/{id}/state"),
            &serde_json::json!({"state": "active"}),
        )
        .await
        .expect(axum::http::StatusCode::OK);
    assert_eq!(s["explanation"]["reason"], "automatic", "{s}");
    eventually("both meters back at the tier rate", || {
        modifies(&fx.meter_log(), 50_000) >= 2
    })
    .await;
    assert_eq!(
        fx.running.ctl.sessions().get(&id).map(|s| s.state),
        Some(SessionState::Active)
    );
    fx.running.stop().await;
}

/// A session ended and then re-admitted (same client and service, so the
/// same id) is listed once, as the live one: the ended record of its id
/// is hidden, whatever the filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readmitted_session_hides_its_ended_record() {
    let fx = start_fx().await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    use suite::Fixture as _;
    let client: IpAddr = "10.0.0.1".parse().expect("ip");
    let id = fx.start_session(client, "sip").await;
    c.delete(&format!("/api/v1/sessions/{id}"))
        .await
        .expect(axum::http::StatusCode::NO_CONTENT);
    let ended = c
        .get("/api/v1/sessions?state=ended")
        .await
        .expect(axum::http::StatusCode::OK);
    assert_eq!(ended["total"], 1, "{ended}");
    assert_eq!(fx.start_session(client, "sip").await, id);
    let all = c
        .get("/api/v1/sessions")
        .await
        .expect(axum::http::StatusCode::OK);
    assert_eq!(all["total"], 1, "{all}");
    assert_eq!(all["items"][0]["id"], id.as_str(), "{all}");
    assert_eq!(all["items"][0]["state"], "active", "{all}");
    let ended = c
        .get("/api/v1/sessions?state=ended")
        .await
        .expect(axum::http::StatusCode::OK);
    assert_eq!(ended["total"], 0, "{ended}");
    fx.running.stop().await;
}

/// A SIP request from `from` to `to` (5060 both ends) on the call that
/// `invite` started, with an SDP body.
fn sip_with_sdp(method: &str, from: Ipv4Addr, to: Ipv4Addr, call: Ipv4Addr, sdp: &str) -> Vec<u8> {
    format!(
        "{method} sip:anyone@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from}:5060;branch=z9hG4bK-{method}-{n}\r\n\
         From: <sip:support@{from}>;tag=t2\r\n\
         To: <sip:anyone@{to}>;tag=t1\r\n\
         Call-ID: call-{call}@test\r\n\
         CSeq: {n} {method}\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{sdp}",
        n = sdp.len(),
        len = sdp.len()
    )
    .into_bytes()
}

fn sdp_body(addr: Ipv4Addr, attrs: &str) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n\
         m=audio 6000 RTP/AVP 0\r\n{attrs}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_reinvite_from_either_side_holds_and_resumes_the_call() {
    let fx = start_fx_with(tierflow::config::HoldConfig {
        idle_media: false,
        ..Default::default()
    })
    .await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    use suite::Fixture as _;
    let client: Ipv4Addr = "10.0.0.1".parse().expect("ip");
    let server: Ipv4Addr = "10.0.0.100".parse().expect("ip");
    let id = fx.start_session(IpAddr::V4(client), "sip").await;
    let frames = fx.ensure_switch().await;
    let ctl = fx.running.ctl.clone();
    let state = |ctl: &tierflow::control::ControlPlane| {
        ctl.sessions()
            .get(&id)
            .map(|s| (s.state, s.state_reason, s.explanation.reason))
    };
    let modifies = |rate: u32| {
        fx.meter_log()
            .iter()
            .filter(|(c, _, r)| *c == MeterModCommand::Modify && *r == rate)
            .count()
    };
    let cmac = mac_of(client);
    let from_agent = |attrs: &str| {
        udp(
            (SERVER_MAC, server, 5060),
            (cmac, client, 5060),
            &sip_with_sdp("INVITE", server, client, client, &sdp_body(server, attrs)),
        )
    };
    let from_caller = |method: &str, addr: &str, attrs: &str| {
        let body = sdp_body(client, attrs).replace(&format!("c=IN IP4 {client}"), addr);
        udp(
            (cmac, client, 5060),
            (SERVER_MAC, server, 5060),
            &sip_with_sdp(method, client, server, client, &body),
        )
    };

    // The agent's side holds with a=sendonly.
    frames
        .send((SERVER_PORT, from_agent("a=sendonly\r\n")))
        .expect("switch");
    eventually("hold by the agent's re-INVITE", || {
        state(&ctl).is_some_and(|s| s.0 == SessionState::Hold)
    })
    .await;
    let (_, why, reason) = state(&ctl).expect("live");
    assert_eq!(why, "sip re-INVITE sendonly");
    assert_eq!(reason, tierflow_api::model::Reason::Hold);
    // Music on hold: the agent's side still sends (to the caller) at what
    // its G.711 needs on the wire; the caller's silent side is at the hold
    // rate.
    eventually(
        "one meter at the hold rate, the other at the codec's",
        || modifies(64) >= 1 && modifies(88) >= 1,
    )
    .await;
    let meters = |ctl: &tierflow::control::ControlPlane| {
        ctl.sessions()
            .get(&id)
            .and_then(|s| s.meters)
            .map(|m| (m.to_server.rate_kbps, m.to_client.rate_kbps, m.need_kbps))
    };
    assert_eq!(meters(&ctl), Some((64, 88, Some(88))));
    // The tier's hold rate (64) is below what G.711 needs: said, counted.
    let warnings = ctl
        .sessions()
        .get(&id)
        .map(|s| s.explanation.warnings)
        .unwrap_or_default();
    assert!(
        warnings.len() == 1
            && warnings[0].contains("hold_rate_kbps 64 is below the 88 kbit/s (PCMU on the wire)"),
        "{warnings:?}"
    );
    assert_eq!(ctl.stats().calls_codec_above_hold_rate.get(), 1);
    assert_eq!(ctl.stats().calls_codec_above_rate.get(), 0);

    // A re-INVITE whose SDP cannot be read changes nothing.
    let broken = udp(
        (cmac, client, 5060),
        (SERVER_MAC, server, 5060),
        &sip_with_sdp(
            "INVITE",
            client,
            server,
            client,
            "v=0\r\nm=audio x RTP/AVP 0\r\n",
        ),
    );
    frames.send((CLIENT_PORT, broken)).expect("switch");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state(&ctl).map(|s| s.0), Some(SessionState::Hold));

    // The agent resumes (no direction attribute means sendrecv).
    frames.send((SERVER_PORT, from_agent(""))).expect("switch");
    eventually("resumed", || {
        state(&ctl).is_some_and(|s| s.0 == SessionState::Active)
    })
    .await;
    let (_, why, reason) = state(&ctl).expect("live");
    assert_eq!(why, "sip re-INVITE sendrecv");
    assert_eq!(reason, tierflow_api::model::Reason::Automatic);
    eventually("both meters back at the tier rate", || {
        modifies(50_000) >= 2
    })
    .await;

    // The caller's side: an UPDATE with c=0.0.0.0, then a=inactive, each
    // hold; a re-INVITE with a=sendrecv resumes.
    frames
        .send((CLIENT_PORT, from_caller("UPDATE", "c=IN IP4 0.0.0.0", "")))
        .expect("switch");
    eventually("hold by the caller's UPDATE", || {
        state(&ctl).is_some_and(|s| s.1 == "sip UPDATE c=0.0.0.0")
    })
    .await;
    frames
        .send((
            CLIENT_PORT,
            from_caller("INVITE", &format!("c=IN IP4 {client}"), "a=inactive\r\n"),
        ))
        .expect("switch");
    eventually("still held, now inactive", || {
        state(&ctl).is_some_and(|s| s.0 == SessionState::Hold && s.1 == "sip re-INVITE inactive")
    })
    .await;
    assert_eq!(
        meters(&ctl),
        Some((64, 64, Some(88))),
        "inactive holds both ways"
    );
    frames
        .send((
            CLIENT_PORT,
            from_caller("INVITE", &format!("c=IN IP4 {client}"), "a=sendonly\r\n"),
        ))
        .expect("switch");
    eventually("the caller's own music on hold runs to the server", || {
        meters(&ctl) == Some((88, 64, Some(88)))
    })
    .await;
    frames
        .send((
            CLIENT_PORT,
            from_caller("INVITE", &format!("c=IN IP4 {client}"), "a=sendrecv\r\n"),
        ))
        .expect("switch");
    eventually("resumed by the caller", || {
        state(&ctl).is_some_and(|s| s.0 == SessionState::Active)
    })
    .await;

    // A CTI hold is not undone by a session-refresh re-INVITE (sendrecv).
    c.put(
        &format!("/api/v1/sessions/{id}/state"),
        &serde_json::json!({"state": "hold"}),
    )
    .await
    .expect(axum::http::StatusCode::OK);
    frames
        .send((SERVER_PORT, from_agent("a=sendrecv\r\n")))
        .expect("switch");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        state(&ctl).map(|s| (s.0, s.1)),
        Some((SessionState::Hold, "cti".to_string()))
    );
    assert_eq!(
        ctl.sessions().session_media(&id),
        vec![
            "10.0.0.100:6000".parse().expect("addr"),
            "10.0.0.1:6000".parse().expect("addr")
        ]
    );

    let text = c.get("/metrics").await.text();
    for want in [
        "tierflow_hold_transitions_total{cause=\"sip\",to=\"hold\"} 2\n",
        "tierflow_hold_transitions_total{cause=\"sip\",to=\"active\"} 2\n",
        "tierflow_hold_transitions_total{cause=\"cti\",to=\"hold\"} 1\n",
        "tierflow_sessions{tier=\"gold\",state=\"hold\"} 1\n",
    ] {
        assert!(text.contains(want), "no {want:?} in\n{text}");
    }
    fx.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_stays_held_through_rescoring_and_overrides() {
    let fx = start_fx_with(tierflow::config::HoldConfig {
        idle_media: false,
        ..Default::default()
    })
    .await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    use suite::Fixture as _;
    let client: Ipv4Addr = "10.0.0.1".parse().expect("ip");
    let server: Ipv4Addr = "10.0.0.100".parse().expect("ip");
    let id = fx.start_session(IpAddr::V4(client), "sip").await;
    let frames = fx.ensure_switch().await;
    let ctl = fx.running.ctl.clone();
    let view = || ctl.sessions().get(&id).expect("live");
    let reinvite = |attrs: &str| {
        udp(
            (SERVER_MAC, server, 5060),
            (mac_of(client), client, 5060),
            &sip_with_sdp("INVITE", server, client, client, &sdp_body(server, attrs)),
        )
    };
    frames
        .send((SERVER_PORT, reinvite("a=inactive\r\n")))
        .expect("switch");
    eventually("held", || view().state == SessionState::Hold).await;
    // The customer's value grows: re-scored to platinum, still on hold.
    let mut acme = suite::acme();
    acme["lifetime_value"] = serde_json::json!(700_000.0);
    c.put("/api/v1/customers/c-1001", &acme)
        .await
        .expect(axum::http::StatusCode::OK);
    eventually("re-scored to platinum", || view().tier == "platinum").await;
    let s = view();
    assert_eq!(
        (s.state, s.explanation.reason, s.state_reason.as_str()),
        (
            SessionState::Hold,
            tierflow_api::model::Reason::Hold,
            "sip re-INVITE inactive"
        )
    );
    // An override while held: its tier, still held at that tier's hold rate.
    c.put(
        &format!("/api/v1/sessions/{id}/tier"),
        &serde_json::json!({"tier": "silver"}),
    )
    .await
    .expect(axum::http::StatusCode::OK);
    let s = view();
    assert_eq!(
        (s.state, s.tier.as_str(), s.explanation.reason),
        (
            SessionState::Hold,
            "silver",
            tierflow_api::model::Reason::ManualOverride
        )
    );
    // Back to automatic: platinum, on hold, the reason says hold.
    c.delete(&format!("/api/v1/sessions/{id}/tier"))
        .await
        .expect(axum::http::StatusCode::OK);
    let s = view();
    assert_eq!(
        (s.state, s.tier.as_str(), s.explanation.reason),
        (
            SessionState::Hold,
            "platinum",
            tierflow_api::model::Reason::Hold
        )
    );
    // Resumed: platinum's rate, the automatic reason back.
    let log_len = fx.meter_log().len();
    frames
        .send((SERVER_PORT, reinvite("a=sendrecv\r\n")))
        .expect("switch");
    eventually("resumed", || view().state == SessionState::Active).await;
    assert_eq!(
        view().explanation.reason,
        tierflow_api::model::Reason::Automatic
    );
    eventually("meters at platinum's rate", || {
        fx.meter_log()[log_len..]
            .iter()
            .filter(|(c, _, r)| *c == MeterModCommand::Modify && *r == 100_000)
            .count()
            >= 2
    })
    .await;
    fx.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cti_hold_survives_a_controller_restart() {
    let fx = start_fx().await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    c.post(
        "/api/v1/services",
        &serde_json::json!({"name": "web", "ip": "10.0.0.100", "proto": "tcp", "port": 80, "kind": "web"}),
    )
    .await
    .expect(axum::http::StatusCode::CREATED);
    use suite::Fixture as _;
    let id = fx
        .start_session("10.0.0.1".parse().expect("ip"), "web")
        .await;
    c.put(
        &format!("/api/v1/sessions/{id}/state"),
        &serde_json::json!({"state": "hold"}),
    )
    .await
    .expect(axum::http::StatusCode::OK);
    let store = fx.running.ctl.sessions().crm().store.clone();
    let t0 = Instant::now();
    while store.get_session(&id).await.map(|s| s.state).ok() != Some(SessionState::Hold) {
        assert!(t0.elapsed() < WAIT, "hold not written to Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Fx { redis, running, .. } = fx;
    running.stop().await;
    let redis = redis.into_inner();
    // A new controller on the same Redis: the session's next packet
    // re-admits it with the same id, still held, meters at the hold rate.
    let running = app::start(Config {
        openflow: "127.0.0.1:0".parse().expect("addr"),
        api: "127.0.0.1:0".parse().expect("addr"),
        redis: redis.url(),
        ovsdb: Vec::new(),
        ..Default::default()
    })
    .await
    .expect("controller restarts");
    let fx2 = Fx {
        backend: Arc::new(ControlBackend::new(running.ctl.clone())),
        redis: tokio::sync::Mutex::new(redis),
        running,
        switch: tokio::sync::Mutex::new(None),
        meters: MeterLog::default(),
        bytes: FlowBytes::default(),
    };
    let again = fx2
        .start_session("10.0.0.1".parse().expect("ip"), "web")
        .await;
    assert_eq!(again, id);
    // The list shows parked sessions too: wait for the re-admission.
    let ctl2 = fx2.running.ctl.clone();
    eventually("re-admitted", || ctl2.sessions().get(&id).is_some()).await;
    let s = ctl2.sessions().get(&id).expect("live");
    assert_eq!(
        (s.state, s.state_reason.as_str(), s.explanation.reason),
        (SessionState::Hold, "cti", tierflow_api::model::Reason::Hold)
    );
    eventually("meters added at the hold rate", || {
        fx2.meter_log()
            .iter()
            .filter(|(c, _, r)| *c == MeterModCommand::Add && *r == 64)
            .count()
            >= 2
    })
    .await;
    // Still resumable through CTI.
    let s = fx2
        .running
        .ctl
        .set_hold(
            &id,
            false,
            tierflow::sessions::HoldCause::Cti,
            tierflow::sessions::record::StateReason::Cti,
        )
        .expect("resume");
    assert_eq!(s.state, SessionState::Active);
    fx2.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_that_holds_admits_the_call_on_hold() {
    let fx = start_fx().await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    let frames = fx.ensure_switch().await;
    let replica = fx.running.ctl.sessions().crm().replica.clone();
    eventually("replica has the sip service", || {
        replica
            .snapshot()
            .services()
            .iter()
            .any(|x| x.name == "sip")
    })
    .await;
    let client: Ipv4Addr = "10.0.0.1".parse().expect("ip");
    let server: Ipv4Addr = "10.0.0.100".parse().expect("ip");
    let hello = udp(
        (SERVER_MAC, server, 9),
        (MacAddr([0xff; 6]), Ipv4Addr::BROADCAST, 9),
        b"here",
    );
    // A re-INVITE holding a call whose session this controller does not
    // have (it restarted): the call is admitted on hold.
    let invite = udp(
        (mac_of(client), client, 5060),
        (SERVER_MAC, server, 5060),
        &sip_with_sdp(
            "INVITE",
            client,
            server,
            client,
            &sdp_body(client, "a=inactive\r\n"),
        ),
    );
    let ctl = fx.running.ctl.clone();
    let t0 = Instant::now();
    let s = loop {
        frames.send((SERVER_PORT, hello.clone())).expect("switch");
        frames.send((CLIENT_PORT, invite.clone())).expect("switch");
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(s) = ctl.sessions().list(None, None, None).into_iter().next() {
            break s;
        }
        assert!(t0.elapsed() < WAIT, "no session");
    };
    assert_eq!(
        (s.state, s.state_reason.as_str(), s.explanation.reason),
        (
            SessionState::Hold,
            "sip INVITE inactive",
            tierflow_api::model::Reason::Hold
        )
    );
    eventually("meters added at the hold rate", || {
        fx.meter_log()
            .iter()
            .any(|(c, _, r)| *c == MeterModCommand::Add && *r == 64)
    })
    .await;
    fx.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_to_a_third_host_gets_a_leg_that_holds_and_ends_with_the_call() {
    let fx = start_fx_with(tierflow::config::HoldConfig {
        idle_media: false,
        ..Default::default()
    })
    .await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    use suite::Fixture as _;
    let client: Ipv4Addr = "10.0.0.1".parse().expect("ip");
    let server: Ipv4Addr = "10.0.0.100".parse().expect("ip");
    let gateway: Ipv4Addr = "10.0.0.200".parse().expect("ip");
    let id = fx.start_session(IpAddr::V4(client), "sip").await;
    let frames = fx.ensure_switch().await;
    let gmac = mac_of(gateway);
    frames
        .send((
            MEDIA_PORT,
            udp(
                (gmac, gateway, 9),
                (MacAddr([0xff; 6]), Ipv4Addr::BROADCAST, 9),
                b"here",
            ),
        ))
        .expect("switch");
    let count = |cmd: MeterModCommand, rate: Option<u32>| {
        fx.meter_log()
            .iter()
            .filter(|(c, _, r)| *c == cmd && rate.is_none_or(|x| x == *r))
            .count()
    };
    let adds = count(MeterModCommand::Add, Some(50_000));
    // The caller offers its own address; the server answers with the
    // gateway's: the media bypasses the call's IP pair.
    let cmac = mac_of(client);
    let offer = udp(
        (cmac, client, 5060),
        (SERVER_MAC, server, 5060),
        &sip_with_sdp("INVITE", client, server, client, &sdp_body(client, "")),
    );
    let body = sdp_body(gateway, "");
    let answer = format!(
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/UDP {client}:5060;branch=z9hG4bK-x\r\n\
         From: <sip:anonymous@anonymous.invalid>;tag=t1\r\n\
         To: <sip:support@{server}>;tag=t2\r\n\
         Call-ID: call-{client}@test\r\n\
         CSeq: 2 INVITE\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let other_call = udp(
        (SERVER_MAC, server, 5060),
        (cmac, client, 5060),
        answer
            .replace("Call-ID: call-", "Call-ID: other-")
            .as_bytes(),
    );
    let answer = udp(
        (SERVER_MAC, server, 5060),
        (cmac, client, 5060),
        answer.as_bytes(),
    );
    frames.send((CLIENT_PORT, offer)).expect("switch");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // An answer of another call (another Call-ID) pairs with nothing.
    frames.send((SERVER_PORT, other_call)).expect("switch");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(MeterModCommand::Add, Some(50_000)), adds);
    frames.send((SERVER_PORT, answer)).expect("switch");
    eventually("the media leg's two meters at the tier rate", || {
        count(MeterModCommand::Add, Some(50_000)) >= adds + 2
    })
    .await;
    let ctl = fx.running.ctl.clone();
    assert!(
        ctl.sessions()
            .session_media(&id)
            .contains(&"10.0.0.200:6000".parse().expect("addr")),
        "{:?}",
        ctl.sessions().session_media(&id)
    );
    // Hold moves the leg's meters too: four meters to the hold rate.
    c.put(
        &format!("/api/v1/sessions/{id}/state"),
        &serde_json::json!({"state": "hold"}),
    )
    .await
    .expect(axum::http::StatusCode::OK);
    eventually("call and leg meters at the hold rate", || {
        count(MeterModCommand::Modify, Some(64)) >= 4
    })
    .await;
    // BYE ends the call: its four meters are deleted.
    let deletes = count(MeterModCommand::Delete, None);
    let bye = format!(
        "BYE sip:support@{server} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {client}:5060;branch=z9hG4bK-bye\r\n\
         From: <sip:anonymous@anonymous.invalid>;tag=t1\r\n\
         To: <sip:support@{server}>;tag=t2\r\n\
         Call-ID: call-{client}@test\r\n\
         CSeq: 3 BYE\r\n\
         Content-Length: 0\r\n\r\n"
    );
    frames
        .send((
            CLIENT_PORT,
            udp(
                (cmac, client, 5060),
                (SERVER_MAC, server, 5060),
                bye.as_bytes(),
            ),
        ))
        .expect("switch");
    eventually("call ended, its and its leg's meters deleted", || {
        ctl.sessions().get(&id).is_none() && count(MeterModCommand::Delete, None) >= deletes + 4
    })
    .await;
    fx.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_media_holds_a_quiet_call_and_resumes_it_when_media_returns() {
    let fx = start_fx_with(tierflow::config::HoldConfig {
        idle_media: true,
        idle_poll_ms: 100,
        idle_below_kbps: 8,
        idle_after_ms: 600,
    })
    .await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    use suite::Fixture as _;
    let id = fx
        .start_session("10.0.0.1".parse().expect("ip"), "sip")
        .await;
    let ctl = fx.running.ctl.clone();
    let state = || ctl.sessions().get(&id).map(|s| (s.state, s.state_reason));
    // Media flowing at ~800 kb/s: stays active well past idle_after_ms.
    let bytes = fx.bytes.clone();
    let pump = |on: Arc<std::sync::atomic::AtomicBool>| {
        let bytes = bytes.clone();
        tokio::spawn(async move {
            while on.load(std::sync::atomic::Ordering::Relaxed) {
                bytes.fetch_add(5_000, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let on = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let task = pump(on.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(state().map(|s| s.0), Some(SessionState::Active));
    // Media stops: hold, reason idle media.
    on.store(false, std::sync::atomic::Ordering::Relaxed);
    task.await.expect("pump");
    let t0 = Instant::now();
    eventually("idle media puts the call on hold", || {
        state().is_some_and(|s| s.0 == SessionState::Hold)
    })
    .await;
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(state().map(|s| s.1), Some("idle media".to_string()));
    eventually("meters at the hold rate", || {
        fx.meter_log()
            .iter()
            .any(|(c, _, r)| *c == MeterModCommand::Modify && *r == 64)
    })
    .await;
    // Media back: resumed.
    let on = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let task = pump(on.clone());
    eventually("media back resumes the call", || {
        state().is_some_and(|s| s.0 == SessionState::Active)
    })
    .await;
    assert_eq!(state().map(|s| s.1), Some("media resumed".to_string()));
    // An explicit CTI hold is not resumed by the media.
    c.put(
        &format!("/api/v1/sessions/{id}/state"),
        &serde_json::json!({"state": "hold"}),
    )
    .await
    .expect(axum::http::StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state(), Some((SessionState::Hold, "cti".to_string())));
    on.store(false, std::sync::atomic::Ordering::Relaxed);
    task.await.expect("pump");
    fx.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_serves_the_api_over_tcp() {
    let fx = start_fx().await;
    let mut s = TcpStream::connect(fx.running.api_addr)
        .await
        .expect("connect to the API");
    s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"redis\":true"), "{out}");
    // Binding an address in use is a startup error naming it.
    let taken = fx.running.api_addr;
    let err = app::start(Config {
        openflow: "127.0.0.1:0".parse().expect("addr"),
        api: taken,
        redis: fx.redis.lock().await.url(),
        ovsdb: Vec::new(),
        ..Default::default()
    })
    .await
    .expect_err("the API address is taken");
    assert!(err.to_string().contains(&taken.to_string()), "{err}");
    fx.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_server_session_is_on_the_switch_before_the_answer_and_waits_for_unknown_hosts() {
    let fx = start_fx().await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    let frames = fx.ensure_switch().await;
    let replica = fx.running.ctl.sessions().crm().replica.clone();
    eventually("replica has the tiers", || {
        !replica.snapshot().tiers.is_empty()
    })
    .await;
    let (client, server) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 100));
    let hello = |ip: Ipv4Addr, mac: MacAddr| {
        udp(
            (mac, ip, 9),
            (MacAddr([0xff; 6]), Ipv4Addr::BROADCAST, 9),
            b"here",
        )
    };
    frames
        .send((CLIENT_PORT, hello(client, mac_of(client))))
        .expect("switch");
    frames
        .send((SERVER_PORT, hello(server, SERVER_MAC)))
        .expect("switch");
    let ctl = fx.running.ctl.clone();
    eventually("both hosts located", || {
        let (_, hosts) = ctl.topology_view();
        hosts.len() >= 2
    })
    .await;
    let adds = |fx: &Fx| {
        fx.meter_log()
            .iter()
            .filter(|(c, _, _)| *c == MeterModCommand::Add)
            .count()
    };
    let before = adds(&fx);
    let s = c
        .post(
            "/api/v1/sessions",
            &suite::request("call-1@sbc", "10.0.0.1", "10.0.0.100"),
        )
        .await
        .expect(axum::http::StatusCode::CREATED);
    // The answer came after the switch confirmed: its meters are in.
    assert_eq!(adds(&fx), before + 2, "{s}");
    assert_eq!(s["path"], serde_json::json!([format!("{DPID:016x}")]));
    assert_eq!(s["external_id"], "call-1@sbc");
    assert_eq!(
        s["customer_id"], "c-1001",
        "scored on the phone it gave: {s}"
    );
    assert_eq!(s["service"], "voice");
    let id = s["id"].as_str().expect("id").to_string();

    // A client no switch has seen: the session waits, then goes on the
    // network when the host appears.
    let w = c
        .post(
            "/api/v1/sessions",
            &suite::request("call-2@sbc", "10.0.0.50", "10.0.0.100"),
        )
        .await
        .expect(axum::http::StatusCode::CREATED);
    assert_eq!(w["path"], serde_json::json!([]));
    assert!(
        w["state_reason"]
            .as_str()
            .is_some_and(|r| r.contains("waiting")),
        "{w}"
    );
    let wid = w["id"].as_str().expect("id").to_string();
    // Held while waiting: it comes on the network held.
    c.put(
        &format!("/api/v1/sessions/{wid}/state"),
        &serde_json::json!({"state": "hold"}),
    )
    .await
    .expect(axum::http::StatusCode::OK);
    let before = adds(&fx);
    let stranger = Ipv4Addr::new(10, 0, 0, 50);
    frames
        .send((MEDIA_PORT, hello(stranger, mac_of(stranger))))
        .expect("switch");
    eventually("the waiting session is on the network", || {
        ctl.sessions()
            .get(&wid)
            .is_some_and(|s| !s.path.is_empty() && s.state == SessionState::Hold)
    })
    .await;
    eventually("its meters are in", || adds(&fx) >= before + 2).await;
    // Its meters are at the hold rate.
    let hold_rate = fx
        .meter_log()
        .iter()
        .rev()
        .find(|(c, _, _)| *c == MeterModCommand::Add)
        .map(|(_, _, r)| *r);
    assert!(hold_rate.is_some_and(|r| r <= 64), "{hold_rate:?}");
    // Ending it frees its meters.
    let deletes = fx
        .meter_log()
        .iter()
        .filter(|(c, _, _)| *c == MeterModCommand::Delete)
        .count();
    c.delete(&format!("/api/v1/sessions/{id}"))
        .await
        .expect(axum::http::StatusCode::NO_CONTENT);
    eventually("meters deleted", || {
        fx.meter_log()
            .iter()
            .filter(|(c, _, _)| *c == MeterModCommand::Delete)
            .count()
            >= deletes + 2
    })
    .await;
    // The same external_id after the end: a new session.
    c.post(
        "/api/v1/sessions",
        &suite::request("call-1@sbc", "10.0.0.1", "10.0.0.100"),
    )
    .await
    .expect(axum::http::StatusCode::CREATED);
    fx.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_show_the_rate_their_meters_let_through_and_redis_down_is_an_alarm() {
    let fx = start_fx().await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    use suite::Fixture as _;
    let id = fx
        .start_session("10.0.0.1".parse().expect("ip"), "sip")
        .await;
    // 10 kB every 100 ms through every meter: 800 kbit/s each way.
    let bytes = fx.bytes.clone();
    let pump = tokio::spawn(async move {
        loop {
            bytes.fetch_add(10_000, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let t0 = Instant::now();
    let measured = loop {
        let s = c
            .get(&format!("/api/v1/sessions/{id}"))
            .await
            .expect(axum::http::StatusCode::OK);
        let m = &s["measured_kbps"];
        if m["to_server"].as_f64().is_some_and(|v| v > 0.0) {
            break m.clone();
        }
        assert!(t0.elapsed() < WAIT, "never measured: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    pump.abort();
    let to_server = measured["to_server"].as_f64().expect("rate");
    assert!((500.0..1200.0).contains(&to_server), "{measured}");
    let at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(measured["at"].clone()).expect("at");
    assert!(
        chrono::Utc::now() - at < chrono::TimeDelta::seconds(2),
        "{measured}"
    );
    // No alarm on a healthy controller; Redis gone is a critical one.
    let alarms = c
        .get("/api/v1/alarms")
        .await
        .expect(axum::http::StatusCode::OK);
    assert_eq!(alarms, serde_json::json!([]));
    fx.break_store().await;
    let alarms = c
        .get("/api/v1/alarms")
        .await
        .expect(axum::http::StatusCode::OK);
    assert_eq!(alarms[0]["kind"], "redis_down", "{alarms}");
    assert_eq!(alarms[0]["severity"], "critical", "{alarms}");
    fx.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_rescoring_edits_answer_503_and_change_nothing() {
    let fx = start_fx().await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    use suite::Fixture as _;
    let id = fx
        .start_session("10.0.0.1".parse().expect("ip"), "sip")
        .await;
    let at = |p: &str| format!("/api/v1/sessions/{id}{p}");
    c.put(&at("/tier"), &serde_json::json!({"tier": "silver"}))
        .await
        .expect(axum::http::StatusCode::OK);
    let before = c.get(&at("")).await.expect(axum::http::StatusCode::OK);
    fx.break_store().await;
    // Remote mode: the CRM cannot be read, so nothing can be re-scored.
    c.delete(&at("/tier"))
        .await
        .expect_error(axum::http::StatusCode::SERVICE_UNAVAILABLE, None);
    c.post(
        &at("/client-data"),
        &serde_json::json!({"promo_code": "SPRING"}),
    )
    .await
    .expect_error(axum::http::StatusCode::SERVICE_UNAVAILABLE, None);
    let after = fx.running.ctl.sessions().get(&id).expect("still live");
    assert_eq!(after.tier, "silver");
    assert_eq!(after.override_tier.as_deref(), Some("silver"));
    assert_eq!(
        serde_json::to_value(&after.explanation).expect("json"),
        before["explanation"]
    );
    fx.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_brings_back_every_readable_session_with_its_override_and_hold() {
    let fx = start_fx().await;
    let c = suite::client(&fx);
    suite::seed(&c).await;
    c.post(
        "/api/v1/services",
        &serde_json::json!({"name": "web", "ip": "10.0.0.101", "proto": "tcp", "port": 80, "kind": "web"}),
    )
    .await
    .expect(axum::http::StatusCode::CREATED);
    use suite::Fixture as _;
    let held = fx
        .start_session("10.0.0.1".parse().expect("ip"), "web")
        .await;
    let plain = fx
        .start_session("10.0.0.2".parse().expect("ip"), "web")
        .await;
    let at = |id: &str, p: &str| format!("/api/v1/sessions/{id}{p}");
    c.put(&at(&held, "/tier"), &serde_json::json!({"tier": "silver"}))
        .await
        .expect(axum::http::StatusCode::OK);
    c.put(&at(&held, "/state"), &serde_json::json!({"state": "hold"}))
        .await
        .expect(axum::http::StatusCode::OK);
    // The writer has put both in Redis as they are now.
    let store = fx.running.ctl.sessions().crm().store.clone();
    let t0 = Instant::now();
    loop {
        let a = store.get_session(&held).await;
        let b = store.get_session(&plain).await;
        if a.as_ref().is_ok_and(|s| {
            s.state == SessionState::Hold && s.override_tier.as_deref() == Some("silver")
        }) && b.is_ok()
        {
            break;
        }
        assert!(t0.elapsed() < WAIT, "not written: {a:?} {b:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Fx { redis, running, .. } = fx;
    running.stop().await;
    let redis = redis.into_inner();
    // One record nobody can read.
    {
        let client = redis::Client::open(redis.url()).expect("url");
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let _: () = redis::cmd("SET")
            .arg("tf:session:s-00000000ff")
            .arg("{not json")
            .query_async(&mut con)
            .await
            .expect("set");
        let _: () = redis::cmd("SADD")
            .arg("tf:sessions")
            .arg("s-00000000ff")
            .query_async(&mut con)
            .await
            .expect("sadd");
    }
    let fx = start_fx_on(redis, Default::default()).await;
    let ctl = fx.running.ctl.clone();
    eventually("both remembered, the corrupt one skipped", || {
        ctl.sessions().find(&held).is_some() && ctl.sessions().find(&plain).is_some()
    })
    .await;
    assert_eq!(ctl.stats().sessions_unreadable.get(), 1);
    let s = ctl.sessions().find(&held).expect("held");
    assert_eq!(s.override_tier.as_deref(), Some("silver"));
    assert_eq!(s.state, SessionState::Hold);
    assert!(s.path.is_empty(), "parked until its next packet: {s:?}");
    // Its next packet puts it back: still silver, still held, its meters
    // at the hold rate.
    fx.start_session("10.0.0.1".parse().expect("ip"), "web")
        .await;
    eventually("back on the network", || {
        ctl.sessions()
            .get(&held)
            .is_some_and(|s| !s.path.is_empty())
    })
    .await;
    let s = ctl.sessions().get(&held).expect("live");
    assert_eq!((s.tier.as_str(), s.state), ("silver", SessionState::Hold));
    let hold_rate = fx
        .meter_log()
        .iter()
        .rev()
        .find(|(c, _, _)| *c == MeterModCommand::Add)
        .map(|(_, _, r)| *r);
    assert!(hold_rate.is_some_and(|r| r <= 64), "{hold_rate:?}");
    fx.running.stop().await;
}
