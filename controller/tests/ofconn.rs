//! Integration tests of the switch-connection state machine (`ofconn`,
//! `switch`): the controller runs in-process on 127.0.0.1 and fake switches
//! written here speak OpenFlow to it over real TCP. Covers the handshake and
//! what the controller installs and asks on connect, echo keepalive and the
//! silent-switch timeout, version negotiation failures, request/reply by xid
//! with multipart reassembly, timeouts and switch errors, garbage and
//! hostile switches (including one that stops reading while another must
//! keep being served), and graceful shutdown.
//!
//! Timers are short so the suite is quick; the only time assertions are
//! generous upper bounds that say "this happens at all".

use anyhow::{Context, Result, bail, ensure};
use bytes::{Bytes, BytesMut};
use openflow::framing::next_frame;
use openflow::multipart::{
    Desc, FlowStats, FlowStatsRequest, MeterFeatures, MultipartReplyBody, MultipartRequestBody,
};
use openflow::{
    Action, ErrorMsg, ErrorType, FeaturesReply, FixedStr, FlowModCommand, Header, HelloElem,
    Instruction, Instructions, MacAddr, Match, Message, MsgType, MultipartReply, MultipartRequest,
    Oxm, Port, PortNo, bad_request, hello_failed,
};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierflow::app::{self, Running};
use tierflow::config::{Config, Timers};
use tierflow::control::ControlPlane;
use tierflow::net::RequestError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Upper bound for anything that should happen "soon": generous, so a
/// loaded machine never fails a test that is really passing.
const WAIT: Duration = Duration::from_secs(5);
/// Bound on one echo round trip of a well-behaved switch while another
/// switch misbehaves. The misbehaving one is only dropped after seconds
/// (write timeout) or megabytes (buffer limit), so a controller that let it
/// block anyone else would blow far past this.
const PROMPT: Duration = Duration::from_secs(2);
const COOKIE_NAMESPACE: u64 = 0x7466 << 48;
const COOKIE_NAMESPACE_MASK: u64 = 0xffff << 48;
const OFPT_ERROR: u8 = 1;
/// A large echo payload: few calls fill the controller's outbound buffer.
const BIG: usize = 60_000;

type Received = (Header, Message<'static>);

fn timers(echo_interval: f64, dead_after: f64, request_timeout: f64) -> Timers {
    Timers {
        echo_interval,
        dead_after,
        request_timeout,
        handshake_timeout: 2.0,
        ..Default::default()
    }
}

async fn start(timers: Timers) -> Result<Running> {
    app::start(Config {
        openflow: "127.0.0.1:0".parse()?,
        api: "127.0.0.1:0".parse()?,
        timers,
        ..Default::default()
    })
    .await
}

/// Polls `cond` until it holds, failing after `WAIT`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    let t0 = Instant::now();
    while !cond() {
        ensure!(t0.elapsed() < WAIT, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn port(no: u32) -> Port {
    Port {
        port_no: PortNo::from(no),
        hw_addr: MacAddr([0x02, 0, 0, 0, 0, no as u8]),
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

/// Ports 1-3 up, plus the LOCAL port (which must never get an LLDP probe).
fn ports() -> Vec<Port> {
    let mut local = port(0xffff_fffe);
    local.name = FixedStr::new("br0");
    vec![port(1), port(2), port(3), local]
}

fn desc() -> Desc {
    Desc {
        mfr_desc: FixedStr::new("Fake Networks"),
        hw_desc: FixedStr::new("fake hw"),
        sw_desc: FixedStr::new("fake sw 1.0"),
        serial_num: FixedStr::new("0001"),
        dp_desc: FixedStr::new("fake"),
    }
}

const METER_FEATURES: MeterFeatures = MeterFeatures {
    max_meter: 262_144,
    band_types: 1 << 1,
    capabilities: 0xf,
    max_bands: 1,
    max_color: 0,
};

fn hello_with_bitmap(bitmap: u32) -> Message<'static> {
    Message::Hello {
        elements: vec![HelloElem::VersionBitmap {
            bitmaps: vec![bitmap],
        }],
    }
}

fn echo_request(data: &[u8]) -> Message<'_> {
    Message::EchoRequest {
        data: Cow::Borrowed(data),
    }
}

fn outputs_to_controller(instructions: &Instructions<'_>) -> bool {
    instructions.iter().any(|i| match i {
        Instruction::ApplyActions { actions } => actions.iter().any(|a| {
            matches!(a, Action::Output { port: PortNo::Controller, max_len } if *max_len == openflow::CML_NO_BUFFER)
        }),
        _ => false,
    })
}

fn goes_to_guard(instructions: &Instructions<'_>) -> bool {
    instructions
        .iter()
        .any(|i| matches!(i, Instruction::GotoTable { table_id: 1 }))
}

/// What a fake switch talks over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One fake switch: a TCP (or TLS) connection plus a read buffer framed
/// with `openflow::framing`, as a real switch would read.
struct Fake {
    stream: Box<dyn Io>,
    buf: BytesMut,
    /// Answer the controller's ECHO_REQUESTs while waiting for something
    /// else, as a live switch does.
    answer_echo: bool,
}

impl Fake {
    async fn connect(running: &Running) -> Result<Fake> {
        let stream = TcpStream::connect(running.openflow_addr).await?;
        stream.set_nodelay(true)?;
        Ok(Fake::over(stream))
    }

    fn over(stream: impl Io + 'static) -> Fake {
        Fake {
            stream: Box::new(stream),
            buf: BytesMut::with_capacity(64 << 10),
            answer_echo: true,
        }
    }

    /// Connects and completes the whole connect sequence as switch `dpid`.
    async fn connected(running: &Running, dpid: u64) -> Result<Fake> {
        let mut fake = Fake::connect(running).await?;
        fake.handshake(dpid, &ports()).await?;
        Ok(fake)
    }

    async fn send(&mut self, xid: u32, msg: &Message<'_>) -> Result<()> {
        let bytes = openflow::to_vec(xid, msg)?;
        self.send_raw(&bytes).await
    }

    async fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// The next whole message's bytes; None when the controller closed the
    /// connection (EOF or reset).
    async fn frame(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(f) =
                next_frame(&mut self.buf).context("controller sent unframeable bytes")?
            {
                return Ok(Some(f));
            }
            self.buf.reserve(64 << 10);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) if is_closed(&e) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next message, bounded by `WAIT`; the connection closing is an error.
    async fn recv(&mut self) -> Result<Received> {
        let frame = tokio::time::timeout(WAIT, self.frame())
            .await
            .context("no message from the controller")??
            .context("controller closed the connection")?;
        let (h, m) = openflow::decode(&frame)
            .with_context(|| format!("controller sent an undecodable message {frame:02x?}"))?;
        Ok((h, m.into_owned()))
    }

    /// Waits for the first message `want` accepts, skipping (and, for echo
    /// requests, answering) everything else.
    async fn recv_until<T>(
        &mut self,
        what: &str,
        mut want: impl FnMut(&Header, &Message<'static>) -> Option<T>,
    ) -> Result<T> {
        let t0 = Instant::now();
        loop {
            ensure!(t0.elapsed() < WAIT, "no {what} within {WAIT:?}");
            let (h, m) = self
                .recv()
                .await
                .with_context(|| format!("waiting for {what}"))?;
            if let Some(t) = want(&h, &m) {
                return Ok(t);
            }
            self.auto_answer(&h, &m).await?;
        }
    }

    async fn auto_answer(&mut self, h: &Header, m: &Message<'_>) -> Result<()> {
        if let (true, Message::EchoRequest { data }) = (self.answer_echo, m) {
            self.send(h.xid, &Message::EchoReply { data: data.clone() })
                .await?;
        }
        Ok(())
    }

    /// Reads (and discards) until the controller closes the connection.
    async fn expect_closed(&mut self) -> Result<()> {
        let t0 = Instant::now();
        loop {
            let left = WAIT.saturating_sub(t0.elapsed());
            match tokio::time::timeout(left, self.frame()).await {
                Err(_) => bail!("connection still open after {WAIT:?}"),
                Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(_))) => {}
                // A garbage tail after a partial write is also "closed".
                Ok(Err(_)) => {
                    self.buf.clear();
                }
            }
        }
    }

    /// One echo round trip; returns how long it took.
    async fn ping(&mut self, xid: u32) -> Result<Duration> {
        let t0 = Instant::now();
        let payload = xid.to_be_bytes();
        self.send(xid, &echo_request(&payload)).await?;
        self.recv_until("ECHO_REPLY", |h, m| match m {
            Message::EchoReply { data } if h.xid == xid => Some(data.to_vec()),
            _ => None,
        })
        .await
        .and_then(|data| {
            ensure!(
                data == payload,
                "echo reply carries {data:?}, not {payload:?}"
            );
            Ok(t0.elapsed())
        })
    }

    /// HELLO and FEATURES as switch `dpid`, nothing more.
    async fn introduce(&mut self, dpid: u64) -> Result<()> {
        let (h, hello) = self.recv().await.context("waiting for HELLO")?;
        ensure!(
            h.msg_type == MsgType::Hello,
            "first message is {}",
            h.msg_type
        );
        ensure!(h.version == 4, "HELLO version {}", h.version);
        let Message::Hello { elements } = hello else {
            bail!("not a HELLO");
        };
        let offers_13 = elements
            .iter()
            .filter_map(HelloElem::versions)
            .flatten()
            .any(|v| v == 4);
        ensure!(offers_13, "HELLO bitmap without 1.3: {elements:?}");
        self.send(h.xid, &hello_with_bitmap(1 << 4)).await?;

        let xid = self
            .recv_until("FEATURES_REQUEST", |h, m| {
                matches!(m, Message::FeaturesRequest).then_some(h.xid)
            })
            .await?;
        let features = FeaturesReply {
            datapath_id: dpid,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0x4f,
            reserved: 0,
        };
        self.send(xid, &Message::FeaturesReply(features)).await?;
        Ok(())
    }

    /// Plays a switch's side of the connect sequence: HELLO, FEATURES, then
    /// answers PORT_DESC, DESC and METER_FEATURES. Returns every message the
    /// controller sent after FEATURES_REPLY up to the METER_FEATURES request.
    async fn handshake(&mut self, dpid: u64, ports: &[Port]) -> Result<Vec<Received>> {
        self.introduce(dpid).await?;
        let mut seen = Vec::new();
        loop {
            let (h, m) = self.recv().await.context("during connect sequence")?;
            let reply = match &m {
                Message::MultipartRequest(MultipartRequest { body, .. }) => match body {
                    MultipartRequestBody::PortDesc => {
                        Some(MultipartReplyBody::PortDesc(ports.to_vec()))
                    }
                    MultipartRequestBody::Desc => Some(MultipartReplyBody::Desc(Box::new(desc()))),
                    MultipartRequestBody::MeterFeatures => {
                        Some(MultipartReplyBody::MeterFeatures(METER_FEATURES))
                    }
                    _ => None,
                },
                _ => None,
            };
            self.auto_answer(&h, &m).await?;
            let last = matches!(
                m,
                Message::MultipartRequest(MultipartRequest {
                    body: MultipartRequestBody::MeterFeatures,
                    ..
                })
            );
            seen.push((h, m));
            if let Some(body) = reply {
                let r = Message::MultipartReply(MultipartReply { flags: 0, body });
                self.send(h.xid, &r).await?;
            }
            if last {
                return Ok(seen);
            }
        }
    }
}

fn is_closed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
}

fn is_lldp_probe_from(m: &Message<'_>, dpid: u64) -> Option<u32> {
    let Message::PacketOut(po) = m else {
        return None;
    };
    let [Action::Output { port, .. }] = po.actions.as_slice() else {
        return None;
    };
    let (from_dpid, from_port) = tierflow::lldp::parse(&po.data)?;
    (from_dpid == dpid && from_port == port.value() && po.buffer_id == openflow::NO_BUFFER)
        .then_some(from_port)
}

// ---------------------------------------------------------------------------
// 1. Handshake

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_installs_infra_flows_learns_the_switch_and_probes_its_ports() -> Result<()> {
    let running = start(timers(5.0, 15.0, 2.0)).await?;
    let mut fake = Fake::connect(&running).await?;
    let seen = fake.handshake(1, &ports()).await?;
    let types: Vec<MsgType> = seen.iter().map(|(h, _)| h.msg_type).collect();

    let set_config = seen
        .iter()
        .find_map(|(_, m)| match m {
            Message::SetConfig(c) => Some(*c),
            _ => None,
        })
        .with_context(|| format!("no SET_CONFIG in {types:?}"))?;
    // Forwarding needs whole frames in packet-ins, never switch buffers.
    assert_eq!(set_config.miss_send_len, openflow::CML_NO_BUFFER);

    let flow_mods: Vec<(usize, &openflow::FlowMod<'_>)> = seen
        .iter()
        .enumerate()
        .filter_map(|(i, (_, m))| match m {
            Message::FlowMod(f) => Some((i, &**f)),
            _ => None,
        })
        .collect();
    let (i_delete, delete) = *flow_mods
        .iter()
        .find(|(_, f)| f.command == FlowModCommand::Delete)
        .with_context(|| format!("no FLOW_MOD DELETE in {types:?}"))?;
    assert_eq!(delete.cookie, COOKIE_NAMESPACE);
    assert_eq!(delete.cookie_mask, COOKIE_NAMESPACE_MASK);
    assert_eq!(delete.table_id, openflow::TABLE_ALL);
    assert_eq!(delete.out_port, PortNo::Any);
    assert_eq!(delete.out_group, openflow::GROUP_ANY);
    assert!(delete.match_.fields.is_empty(), "{:?}", delete.match_);

    // Every packet for the controller goes through the guard table (one
    // metered flow per port), whose own miss outputs to the controller.
    let (i_miss, miss) = *flow_mods
        .iter()
        .find(|(_, f)| {
            f.command == FlowModCommand::Add && f.match_.fields.is_empty() && f.table_id == 0
        })
        .with_context(|| format!("no table-miss flow in {types:?}"))?;
    assert_eq!(miss.priority, 0);
    assert_eq!(miss.cookie & COOKIE_NAMESPACE_MASK, COOKIE_NAMESPACE);
    assert!(goes_to_guard(&miss.instructions), "{miss:?}");
    let (_, guard_miss) = *flow_mods
        .iter()
        .find(|(_, f)| {
            f.command == FlowModCommand::Add && f.match_.fields.is_empty() && f.table_id == 1
        })
        .with_context(|| format!("no guard-table miss in {types:?}"))?;
    assert!(
        outputs_to_controller(&guard_miss.instructions),
        "{guard_miss:?}"
    );

    let (i_lldp, lldp) = *flow_mods
        .iter()
        .find(|(_, f)| {
            f.command == FlowModCommand::Add
                && f.match_.fields.as_slice() == [Oxm::EthType(0x88cc, None)]
        })
        .with_context(|| format!("no LLDP flow in {types:?}"))?;
    assert!(lldp.priority > miss.priority);
    assert_eq!(lldp.cookie & COOKIE_NAMESPACE_MASK, COOKIE_NAMESPACE);
    assert!(goes_to_guard(&lldp.instructions), "{lldp:?}");
    // The delete of our namespace must not remove what we just installed.
    assert!(
        i_delete < i_miss && i_delete < i_lldp,
        "DELETE after ADD: {types:?}"
    );

    let multipart: Vec<&MultipartRequestBody<'_>> = seen
        .iter()
        .filter_map(|(_, m)| match m {
            Message::MultipartRequest(r) => Some(&r.body),
            _ => None,
        })
        .collect();
    for want in [
        MultipartRequestBody::PortDesc,
        MultipartRequestBody::Desc,
        MultipartRequestBody::MeterFeatures,
    ] {
        assert!(multipart.contains(&&want), "no {want:?} in {multipart:?}");
    }

    // The first LLDP round goes out of every live port, never LOCAL.
    let mut probed = std::collections::BTreeSet::new();
    while probed.len() < 3 {
        let p = fake
            .recv_until("LLDP PACKET_OUT", |_, m| is_lldp_probe_from(m, 1))
            .await?;
        assert!(p < PortNo::Max.value(), "probe out of reserved port {p:#x}");
        probed.insert(p);
    }
    assert_eq!(probed.into_iter().collect::<Vec<_>>(), [1, 2, 3]);

    let sw = running.ctl.switch(1).context("switch 1 not registered")?;
    assert_eq!(sw.dpid, 1);
    assert!(sw.is_connected());
    {
        let info = sw.info.read();
        let want: Vec<(u32, Port)> = ports()
            .into_iter()
            .map(|p| (p.port_no.value(), p))
            .collect();
        let got: Vec<(u32, Port)> = info.ports.clone().into_iter().collect();
        assert_eq!(got, want);
        assert_eq!(info.mfr_desc, "Fake Networks");
        assert_eq!(info.hw_desc, "fake hw");
        assert_eq!(info.sw_desc, "fake sw 1.0");
        assert_eq!(info.meter_features, Some(METER_FEATURES));
    }
    assert_eq!(
        running
            .ctl
            .switches()
            .iter()
            .map(|s| s.dpid)
            .collect::<Vec<_>>(),
        [1]
    );
    running.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. Echo

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_is_answered_and_a_silent_switch_is_probed_then_dropped() -> Result<()> {
    let running = start(timers(0.1, 0.6, 2.0)).await?;
    let mut fake = Fake::connected(&running, 7).await?;

    fake.send(0x1234_5678, &echo_request(b"are you there?"))
        .await?;
    let (xid, data) = fake
        .recv_until("ECHO_REPLY", |h, m| match m {
            Message::EchoReply { data } => Some((h.xid, data.to_vec())),
            _ => None,
        })
        .await?;
    assert_eq!(xid, 0x1234_5678);
    assert_eq!(data, b"are you there?");
    assert!(running.ctl.switch(7).is_some());

    // From now on the fake reads but never says anything.
    let mut echo_requests = 0;
    let t0 = Instant::now();
    loop {
        ensure!(
            t0.elapsed() < WAIT,
            "silent switch not dropped within {WAIT:?}"
        );
        let left = WAIT.saturating_sub(t0.elapsed());
        let Ok(frame) = tokio::time::timeout(left, fake.frame()).await else {
            bail!("silent switch not dropped within {WAIT:?}");
        };
        let Some(frame) = frame? else { break };
        let (h, m) = openflow::decode(&frame)?;
        if let Message::EchoRequest { .. } = m {
            assert_ne!(h.xid, 0);
            echo_requests += 1;
        }
    }
    assert!(echo_requests >= 1, "dropped without an echo request first");
    eventually("switch 7 forgotten", || running.ctl.switch(7).is_none()).await?;
    assert!(running.ctl.switches().is_empty());
    running.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------
// 3. Version negotiation and handshake deadline

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openflow_1_0_hello_gets_hello_failed_incompatible_and_is_closed() -> Result<()> {
    let running = start(timers(5.0, 15.0, 2.0)).await?;
    let mut fake = Fake::connect(&running).await?;
    let (h, _) = fake.recv().await?;
    assert_eq!(h.msg_type, MsgType::Hello);
    // OF1.0 HELLO: header only, version 1, no bitmap.
    fake.send_raw(&[0x01, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x2a])
        .await?;
    let frame = tokio::time::timeout(WAIT, fake.frame())
        .await??
        .context("closed without an OFPT_ERROR")?;
    // Written in 1.0 so the switch can read it: decode the header by hand.
    let Some(&[version, msg_type, _, _, x0, x1, x2, x3, t0, t1, c0, c1, ..]) = frame.get(..) else {
        bail!("short error message {frame:02x?}");
    };
    assert_eq!(version, 0x01, "error must be in the switch's version");
    assert_eq!(msg_type, OFPT_ERROR);
    assert_eq!(u32::from_be_bytes([x0, x1, x2, x3]), 0x2a);
    assert_eq!(u16::from_be_bytes([t0, t1]), ErrorType::HelloFailed.value());
    assert_eq!(u16::from_be_bytes([c0, c1]), hello_failed::INCOMPATIBLE);
    fake.expect_closed().await?;
    assert!(running.ctl.switches().is_empty());
    running.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitmap_without_1_3_gets_hello_failed_incompatible_and_is_closed() -> Result<()> {
    let running = start(timers(5.0, 15.0, 2.0)).await?;
    let mut fake = Fake::connect(&running).await?;
    let (h, _) = fake.recv().await?;
    assert_eq!(h.msg_type, MsgType::Hello);
    // Claims 1.4 in the header but offers only 1.0, 1.2 and 1.4.
    let mut hello = Vec::new();
    openflow::encode_versioned(
        0x05,
        9,
        &hello_with_bitmap((1 << 1) | (1 << 3) | (1 << 5)),
        &mut hello,
    )?;
    fake.send_raw(&hello).await?;
    let (h, m) = fake.recv().await?;
    assert_eq!(h.xid, 9);
    let Message::Error(e) = m else {
        bail!("expected OFPT_ERROR, got {}", h.msg_type);
    };
    assert_eq!(e.err_type, ErrorType::HelloFailed);
    assert_eq!(e.code, hello_failed::INCOMPATIBLE);
    fake.expect_closed().await?;
    assert!(running.ctl.switches().is_empty());
    running.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_switch_offering_1_3_is_accepted() -> Result<()> {
    let running = start(timers(5.0, 15.0, 2.0)).await?;
    for hello in [
        // 1.4 header with a bitmap that includes 1.3.
        hello_with_bitmap((1 << 4) | (1 << 5)),
        // 1.4 header, no bitmap: negotiates down to 1.3 (spec 7.5.1).
        Message::Hello { elements: vec![] },
    ] {
        let mut fake = Fake::connect(&running).await?;
        fake.recv().await?;
        let mut bytes = Vec::new();
        openflow::encode_versioned(0x05, 3, &hello, &mut bytes)?;
        fake.send_raw(&bytes).await?;
        fake.recv_until("FEATURES_REQUEST", |_, m| {
            matches!(m, Message::FeaturesRequest).then_some(())
        })
        .await?;
    }
    running.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_stalls_the_handshake_is_closed_after_handshake_timeout() -> Result<()> {
    let running = start(Timers {
        handshake_timeout: 0.3,
        ..timers(5.0, 15.0, 2.0)
    })
    .await?;
    // Never says HELLO.
    let mut mute = Fake::connect(&running).await?;
    // Says HELLO, never answers FEATURES_REQUEST.
    let mut half = Fake::connect(&running).await?;
    half.recv().await?;
    half.send(1, &hello_with_bitmap(1 << 4)).await?;
    mute.expect_closed().await?;
    half.expect_closed().await?;
    assert!(running.ctl.switches().is_empty());
    running.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. Requests: multipart reassembly, timeout, switch error

fn flow(n: u16) -> FlowStats<'static> {
    FlowStats {
        table_id: 0,
        duration_sec: u32::from(n),
        duration_nsec: 0,
        priority: n,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie: u64::from(n),
        packet_count: u64::from(n) * 10,
        byte_count: u64::from(n) * 1000,
        match_: Match::new().with(Oxm::InPort(PortNo::from(u32::from(n)), None)),
        instructions: Instructions::new(),
    }
}

fn all_flows() -> FlowStatsRequest<'static> {
    FlowStatsRequest {
        table_id: openflow::TABLE_ALL,
        out_port: PortNo::Any,
        out_group: openflow::GROUP_ANY,
        cookie: 0,
        cookie_mask: 0,
        match_: Match::new(),
    }
}

fn flow_part(more: bool, flows: Vec<FlowStats<'static>>) -> Message<'static> {
    Message::MultipartReply(MultipartReply {
        flags: if more { openflow::MULTIPART_MORE } else { 0 },
        body: MultipartReplyBody::Flow(flows),
    })
}

/// Waits for a FLOW stats request; returns its xid and request.
async fn flow_request(fake: &mut Fake) -> Result<(u32, FlowStatsRequest<'static>)> {
    fake.recv_until("FLOW stats request", |h, m| match m {
        Message::MultipartRequest(MultipartRequest {
            body: MultipartRequestBody::Flow(r),
            ..
        }) => Some((h.xid, r.clone())),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_replies_are_reassembled_per_xid_in_order() -> Result<()> {
    let running = start(timers(5.0, 15.0, 2.0)).await?;
    let mut fake = Fake::connected(&running, 1).await?;
    let sw = running.ctl.switch(1).context("switch 1")?;

    // Two requests in flight at once; their parts arrive interleaved.
    let a = tokio::spawn({
        let sw = sw.clone();
        async move { sw.flow_stats(all_flows()).await }
    });
    let (xa, req) = flow_request(&mut fake).await?;
    assert_eq!(req, all_flows());
    let b = tokio::spawn({
        let sw = sw.clone();
        let mut req = all_flows();
        req.cookie = COOKIE_NAMESPACE;
        req.cookie_mask = COOKIE_NAMESPACE_MASK;
        async move { sw.flow_stats(req).await }
    });
    let (xb, req) = flow_request(&mut fake).await?;
    assert_ne!(xa, xb);
    assert_eq!(req.cookie_mask, COOKIE_NAMESPACE_MASK);

    fake.send(xa, &flow_part(true, vec![flow(1), flow(2)]))
        .await?;
    fake.send(xb, &flow_part(true, vec![flow(100)])).await?;
    fake.send(xa, &flow_part(true, vec![flow(3)])).await?;
    fake.send(7, &echo_request(b"in between")).await?;
    fake.send(xb, &flow_part(false, vec![flow(101), flow(102)]))
        .await?;
    fake.send(xa, &flow_part(false, vec![flow(4), flow(5), flow(6)]))
        .await?;

    let got_a = tokio::time::timeout(WAIT, a).await???;
    let got_b = tokio::time::timeout(WAIT, b).await???;
    assert_eq!(got_a, (1..=6).map(flow).collect::<Vec<_>>());
    assert_eq!(got_b, [flow(100), flow(101), flow(102)]);

    // The raw API hands back the parts themselves.
    let c = tokio::spawn({
        let sw = sw.clone();
        async move { sw.multipart(MultipartRequestBody::Flow(all_flows())).await }
    });
    let (xc, _) = flow_request(&mut fake).await?;
    for (more, flows) in [
        (true, vec![flow(1)]),
        (true, vec![]),
        (false, vec![flow(2)]),
    ] {
        fake.send(xc, &flow_part(more, flows)).await?;
    }
    let parts = tokio::time::timeout(WAIT, c).await???;
    assert_eq!(parts.len(), 3);
    assert_eq!(
        parts.iter().map(|p| p.flags).collect::<Vec<_>>(),
        [openflow::MULTIPART_MORE, openflow::MULTIPART_MORE, 0]
    );
    running.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_request_times_out_and_late_reply_is_harmless() -> Result<()> {
    let running = start(timers(5.0, 15.0, 0.3)).await?;
    let mut fake = Fake::connected(&running, 1).await?;
    let sw = running.ctl.switch(1).context("switch 1")?;
    let call = tokio::spawn({
        let sw = sw.clone();
        async move { sw.flow_stats(all_flows()).await }
    });
    let (xid, _) = flow_request(&mut fake).await?;
    let r = tokio::time::timeout(WAIT, call).await??;
    assert!(
        matches!(r, Err(RequestError::Timeout { dpid: 1, .. })),
        "{r:?}"
    );
    // The answer arrives after the caller gave up: dropped, connection fine.
    fake.send(xid, &flow_part(false, vec![flow(1)])).await?;
    fake.ping(99).await?;
    assert!(running.ctl.switch(1).is_some_and(|s| s.is_connected()));
    running.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_reply_with_the_request_xid_fails_the_request() -> Result<()> {
    let running = start(timers(5.0, 15.0, 2.0)).await?;
    let mut fake = Fake::connected(&running, 1).await?;
    let sw = running.ctl.switch(1).context("switch 1")?;

    // Multipart request refused outright.
    let call = tokio::spawn({
        let sw = sw.clone();
        async move { sw.flow_stats(all_flows()).await }
    });
    let (xid, _) = flow_request(&mut fake).await?;
    let err = ErrorMsg::new(ErrorType::BadRequest, bad_request::EPERM, b"request head");
    fake.send(xid, &Message::Error(err)).await?;
    let r = tokio::time::timeout(WAIT, call).await??;
    match r {
        Err(RequestError::Switch { dpid: 1, error }) => {
            assert!(error.contains("EPERM"), "{error}");
        }
        other => bail!("expected RequestError::Switch, got {other:?}"),
    }

    // Single-reply request (BARRIER) refused.
    let call = tokio::spawn({
        let sw = sw.clone();
        async move { sw.barrier().await }
    });
    let xid = fake
        .recv_until("BARRIER_REQUEST", |h, m| {
            matches!(m, Message::BarrierRequest).then_some(h.xid)
        })
        .await?;
    let err = ErrorMsg::new(ErrorType::BadRequest, bad_request::BAD_TYPE, b"");
    fake.send(xid, &Message::Error(err)).await?;
    let r = tokio::time::timeout(WAIT, call).await??;
    assert!(
        matches!(r, Err(RequestError::Switch { dpid: 1, .. })),
        "{r:?}"
    );
    fake.ping(5).await?;
    assert!(running.ctl.switch(1).is_some());
    running.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------
// 5. Garbage and hostile switches

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_with_length_below_8_drops_the_switch() -> Result<()> {
    let running = start(timers(5.0, 15.0, 2.0)).await?;
    let mut fake = Fake::connected(&running, 1).await?;
    let mut other = Fake::connected(&running, 2).await?;
    fake.send_raw(&[0x04, 0x02, 0x00, 0x04, 0, 0, 0, 1, 0xde, 0xad])
        .await?;
    fake.expect_closed().await?;
    eventually("switch 1 forgotten", || running.ctl.switch(1).is_none()).await?;
    other.ping(1).await?;
    assert!(running.ctl.switch(2).is_some());
    running.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_but_framed_messages_get_an_error_and_the_switch_stays() -> Result<()> {
    let running = start(timers(5.0, 15.0, 2.0)).await?;
    let mut fake = Fake::connected(&running, 1).await?;
    let cases: [(&str, Vec<u8>, u16); 3] = [
        (
            "unknown type 99",
            vec![0x04, 99, 0, 16, 0, 0, 0, 0x51, 1, 2, 3, 4, 5, 6, 7, 8],
            bad_request::BAD_TYPE,
        ),
        (
            "ECHO_REQUEST in OpenFlow 1.0",
            vec![0x01, 2, 0, 8, 0, 0, 0, 0x52],
            bad_request::BAD_VERSION,
        ),
        (
            "truncated PORT_STATUS",
            vec![0x04, 12, 0, 12, 0, 0, 0, 0x53, 0, 0, 0, 0],
            bad_request::BAD_LEN,
        ),
    ];
    for (what, bytes, code) in cases {
        fake.send_raw(&bytes).await?;
        let xid = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let e = fake
            .recv_until("OFPT_ERROR", |h, m| match m {
                Message::Error(e) if h.xid == xid => Some(e.clone()),
                _ => None,
            })
            .await
            .context(what)?;
        assert_eq!(e.err_type, ErrorType::BadRequest, "{what}");
        assert_eq!(e.code, code, "{what}: {e}");
        assert_eq!(&e.data[..], &bytes[..], "{what}: error carries the message");
        fake.ping(xid + 100).await.context(what)?;
        assert!(running.ctl.switch(1).is_some(), "{what}");
    }
    running.stop().await;
    Ok(())
}

/// A well-behaved switch that pings the controller in a loop until
/// cancelled, checking every round trip is prompt and that it stays
/// registered. Returns how many round trips it made, and the switch (still
/// connected).
fn keep_pinging(
    mut fake: Fake,
    ctl: Arc<ControlPlane>,
    dpid: u64,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<(u32, Fake)>> {
    tokio::spawn(async move {
        let mut n = 0u32;
        while !stop.is_cancelled() {
            n += 1;
            let rtt = fake.ping(n).await?;
            ensure!(rtt < PROMPT, "echo {n} took {rtt:?}");
            ensure!(
                ctl.switches().iter().any(|s| s.dpid == dpid),
                "switch {dpid:x} left the registry"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok((n, fake))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_that_stops_reading_is_dropped_at_the_buffer_limit_others_unaffected() -> Result<()>
{
    // Silence and write timeouts far beyond the test: only the outbound
    // buffer limit can drop the stuck switch here.
    let running = start(timers(5.0, 60.0, 2.0)).await?;
    let stuck = Fake::connected(&running, 1).await?;
    let good = Fake::connected(&running, 2).await?;
    let stop = CancellationToken::new();
    let pinger = keep_pinging(good, running.ctl.clone(), 2, stop.clone());

    let sw = running.ctl.switch(1).context("switch 1")?;
    let payload = vec![0xab; BIG];
    let mut queued = 0usize;
    while sw.send_xid(sw.next_xid(), &echo_request(&payload)) {
        queued += BIG;
        ensure!(
            queued < 256 << 20,
            "still accepting after {} MiB to a switch that does not read",
            queued >> 20
        );
        tokio::task::yield_now().await;
    }
    assert!(!sw.is_connected());
    eventually("switch 1 forgotten", || running.ctl.switch(1).is_none()).await?;
    // Requests to the dropped switch fail at once instead of timing out.
    let r = sw.barrier().await;
    assert!(matches!(r, Err(RequestError::Closed { dpid: 1 })), "{r:?}");
    let mut stuck = stuck;
    stuck.answer_echo = false;
    stuck.expect_closed().await?;

    // Keep the good switch going a little past the drop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    let (pings, _good) = tokio::time::timeout(WAIT, pinger).await???;
    assert!(pings >= 2, "only {pings} round trips");
    assert_eq!(
        running
            .ctl
            .switches()
            .iter()
            .map(|s| s.dpid)
            .collect::<Vec<_>>(),
        [2]
    );
    running.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_that_stops_reading_is_dropped_by_the_write_timeout_others_unaffected() -> Result<()>
{
    // Write timeout (= dead_after) 1 s. The stuck switch keeps talking, so
    // it is never silent: only the blocked write can get it dropped.
    let running = start(timers(5.0, 1.0, 2.0)).await?;
    let mut stuck = Fake::connected(&running, 1).await?;
    let good = Fake::connected(&running, 2).await?;
    let stop = CancellationToken::new();
    let pinger = keep_pinging(good, running.ctl.clone(), 2, stop.clone());

    // Far more than socket buffers hold, far less than the buffer limit.
    let sw = running.ctl.switch(1).context("switch 1")?;
    let payload = vec![0xcd; BIG];
    for _ in 0..(12 << 20) / BIG {
        ensure!(sw.send_xid(sw.next_xid(), &echo_request(&payload)));
    }
    let t0 = Instant::now();
    let mut xid = 0;
    while running.ctl.switch(1).is_some() {
        ensure!(t0.elapsed() < WAIT, "stuck switch not dropped in {WAIT:?}");
        xid += 1;
        // Writes may fail once the controller has closed its side.
        if stuck.send(xid, &echo_request(b"still here")).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("switch 1 forgotten", || running.ctl.switch(1).is_none()).await?;
    stuck.answer_echo = false;
    stuck.expect_closed().await?;

    stop.cancel();
    let (pings, _good) = tokio::time::timeout(WAIT, pinger).await???;
    assert!(pings >= 2, "only {pings} round trips");
    assert!(running.ctl.switch(2).is_some());
    running.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------
// 6. Graceful shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_closes_every_connection_and_returns() -> Result<()> {
    let running = start(timers(5.0, 60.0, 2.0)).await?;
    let addr = running.openflow_addr;
    let mut a = Fake::connected(&running, 1).await?;
    let mut b = Fake::connected(&running, 2).await?;
    // Mid-handshake: has the controller's HELLO, has not answered.
    let mut c = Fake::connect(&running).await?;
    c.recv().await?;
    // Not reading, with its connection's writer blocked on a full socket.
    let mut stuck = Fake::connected(&running, 3).await?;
    let sw = running.ctl.switch(3).context("switch 3")?;
    let payload = vec![0xef; BIG];
    for _ in 0..(12 << 20) / BIG {
        ensure!(sw.send_xid(sw.next_xid(), &echo_request(&payload)));
    }
    drop(sw);
    let ctl = running.ctl.clone();
    assert_eq!(ctl.switches().len(), 3);

    let t0 = Instant::now();
    tokio::time::timeout(WAIT, running.stop())
        .await
        .context("stop() hangs")?;
    // stop() gives up waiting after 5 s; getting here through that
    // deadline would mean a connection task outlived the shutdown.
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(4), "stop() took {took:?}");

    for (name, fake) in [
        ("a", &mut a),
        ("b", &mut b),
        ("c", &mut c),
        ("stuck", &mut stuck),
    ] {
        fake.answer_echo = false;
        fake.expect_closed().await.context(name)?;
    }
    assert!(ctl.switches().is_empty());
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still accepting after stop()"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 7. A datapath id is held by one live connection

/// A live switch's side while the test does other things: reads
/// everything the controller sends, answers echo requests, and records
/// what it got. Returns the switch when `stop` is cancelled.
#[allow(clippy::type_complexity)]
fn keep_answering(
    mut fake: Fake,
    stop: CancellationToken,
) -> (
    Arc<std::sync::Mutex<Vec<Received>>>,
    tokio::task::JoinHandle<Result<Fake>>,
) {
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = log.clone();
    let task = tokio::spawn(async move {
        loop {
            let frame = tokio::select! {
                _ = stop.cancelled() => return Ok(fake),
                f = fake.frame() => f?,
            };
            let Some(frame) = frame else {
                bail!("the controller closed the live switch's connection");
            };
            let (h, m) = openflow::decode(&frame)?;
            let m = m.into_owned();
            fake.auto_answer(&h, &m).await?;
            l.lock().expect("log").push((h, m));
        }
    });
    (log, task)
}

/// Everything the controller sends `fake` until it closes the connection.
async fn until_closed(fake: &mut Fake) -> Result<Vec<MsgType>> {
    let t0 = Instant::now();
    let mut got = Vec::new();
    loop {
        let left = WAIT.saturating_sub(t0.elapsed());
        match tokio::time::timeout(left, fake.frame()).await {
            Err(_) => bail!("connection still open after {WAIT:?}; got {got:?}"),
            Ok(Ok(None)) | Ok(Err(_)) => return Ok(got),
            Ok(Ok(Some(f))) => got.push(Header::peek(&f).context("header")?.msg_type),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datapath_id_held_by_a_live_switch_is_refused_and_the_live_switch_keeps_its_flows()
-> Result<()> {
    let running = start(timers(5.0, 60.0, 2.0)).await?;
    let live = Fake::connected(&running, 0x42).await?;
    let sw = running.ctl.switch(0x42).context("switch 0x42")?;
    let stop = CancellationToken::new();
    let (log, task) = keep_answering(live, stop.clone());
    // Quiet for longer than the liveness bound: the controller has to ask
    // the live switch (echo), its traffic alone does not tell.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mark = log.lock().expect("log").len();

    for attempt in 1..=3 {
        let mut impostor = Fake::connect(&running).await?;
        impostor.introduce(0x42).await?;
        let got = until_closed(&mut impostor).await?;
        ensure!(
            got.is_empty(),
            "impostor {attempt} was sent {got:?} before being closed"
        );
        assert_eq!(running.ctl.stats().switches_refused.get(), attempt);
    }

    let now = running.ctl.switch(0x42).context("switch 0x42 left")?;
    assert!(Arc::ptr_eq(&now, &sw), "the live connection was replaced");
    assert!(sw.is_connected());
    assert_eq!(running.ctl.stats().switches_connected.get(), 1);
    let after: Vec<MsgType> = log.lock().expect("log")[mark..]
        .iter()
        .map(|(h, _)| h.msg_type)
        .collect();
    assert!(
        after.contains(&MsgType::EchoRequest),
        "the live switch was not asked whether it is alive: {after:?}"
    );
    // No reconnection storm, nothing wiped or set up again: the live
    // switch got no FLOW_MOD, SET_CONFIG or learning request.
    for bad in [
        MsgType::FlowMod,
        MsgType::SetConfig,
        MsgType::MultipartRequest,
        MsgType::FeaturesRequest,
    ] {
        assert!(
            !after.contains(&bad),
            "live switch was sent {bad}: {after:?}"
        );
    }
    stop.cancel();
    let mut live = tokio::time::timeout(WAIT, task).await???;
    live.ping(7).await?;
    running.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_whose_old_connection_went_silent_reconnects_at_once() -> Result<()> {
    // dead_after far beyond the test: only the liveness check can let the
    // new connection in.
    let running = start(timers(5.0, 60.0, 2.0)).await?;
    let mut old = Fake::connected(&running, 0x43).await?;
    let old_sw = running.ctl.switch(0x43).context("switch 0x43")?;
    // Half-dead: the connection stays open, the switch says nothing.
    old.answer_echo = false;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let t0 = Instant::now();
    let mut new = Fake::connected(&running, 0x43).await?;
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "reconnection took {took:?} (liveness bound 1 s, dead_after 60 s)"
    );
    let sw = running.ctl.switch(0x43).context("switch 0x43")?;
    assert!(!Arc::ptr_eq(&sw, &old_sw), "still the old connection");
    assert!(!old_sw.is_connected());
    old.expect_closed().await?;
    assert_eq!(running.ctl.stats().switches_refused.get(), 0);
    assert_eq!(running.ctl.stats().switches_connected.get(), 2);
    new.ping(1).await?;
    // The old connection's end did not take the new one's registration.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let still = running.ctl.switch(0x43).context("switch 0x43 gone")?;
    assert!(Arc::ptr_eq(&still, &sw));
    running.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------
// 8. OpenFlow over TLS, with certificates made by ovs-pki as for OVS

mod pki {
    use anyhow::{Context, Result, ensure};
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::OnceLock;

    /// A PKI made by `ovs-pki` once per test binary: the controller's
    /// certificate (controllerca), a switch's (switchca), and, to be
    /// refused, a switch certificate of another PKI's switchca, a
    /// controllerca certificate shown by a switch, and a self-signed one.
    #[derive(Debug)]
    pub struct Pki {
        pub dir: PathBuf,
    }

    impl Pki {
        pub fn file(&self, name: &str) -> PathBuf {
            self.dir.join(name)
        }
        pub fn switch_ca(&self) -> PathBuf {
            self.dir.join("pki/switchca/cacert.pem")
        }
        pub fn controller_ca(&self) -> PathBuf {
            self.dir.join("pki/controllerca/cacert.pem")
        }
    }

    fn ovs_pki(dir: &Path, args: &[&str]) -> Result<()> {
        let out = Command::new("ovs-pki")
            .current_dir(dir)
            .arg(format!("--log={}", dir.join("ovs-pki.log").display()))
            .args(args)
            .output();
        let out = match out {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "ovs-pki is not installed: the TLS tests make their certificates with it, \
                 as OVS users do (apt-get install openvswitch-common)"
            ),
            r => r.context("running ovs-pki")?,
        };
        ensure!(
            out.status.success(),
            "ovs-pki {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn make() -> Result<Pki> {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let main = format!("--dir={}", dir.join("pki").display());
        let other = format!("--dir={}", dir.join("other-pki").display());
        ovs_pki(&dir, &[&main, "init"])?;
        ovs_pki(&dir, &[&main, "req+sign", "ctl", "controller"])?;
        ovs_pki(&dir, &[&main, "req+sign", "sc", "switch"])?;
        ovs_pki(&dir, &[&main, "req+sign", "ctlcert", "controller"])?;
        ovs_pki(&dir, &[&other, "init"])?;
        ovs_pki(&dir, &[&other, "req+sign", "rogue", "switch"])?;
        ovs_pki(&dir, &[&main, "req", "selfie"])?;
        ovs_pki(&dir, &[&main, "self-sign", "selfie"])?;
        Ok(Pki { dir })
    }

    pub fn get() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(|| make().expect("ovs-pki could not make the test PKI"))
    }
}

/// A TLS client that checks the controller's certificate against the
/// controller CA but not its name (ovs-pki names certificates `ctl
/// id:<uuid>`, and OVS does not check the name either).
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            r => r,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A fake switch's TLS side: the controller CA trusted, and `identity`
/// (the `NAME` of `NAME-cert.pem` and `NAME-privkey.pem`) shown as the
/// switch's certificate, or none.
fn tls_client(identity: Option<&str>) -> Result<tokio_rustls::TlsConnector> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let pki = pki::get();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.controller_ca())? {
        roots.add(c?)?;
    }
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyName(inner)));
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(name) => {
            let chain = CertificateDer::pem_file_iter(pki.file(&format!("{name}-cert.pem")))?
                .collect::<Result<Vec<_>, _>>()?;
            let key = PrivateKeyDer::from_pem_file(pki.file(&format!("{name}-privkey.pem")))?;
            builder.with_client_auth_cert(chain, key)?
        }
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn start_tls(plain: &str) -> Result<Running> {
    let pki = pki::get();
    app::start(Config {
        openflow: plain.parse()?,
        openflow_tls: Some("127.0.0.1:0".parse()?),
        tls: tierflow::config::TlsFiles {
            cert: Some(pki.file("ctl-cert.pem")),
            key: Some(pki.file("ctl-privkey.pem")),
            ca: Some(pki.switch_ca()),
        },
        api: "127.0.0.1:0".parse()?,
        timers: timers(5.0, 15.0, 2.0),
        ..Default::default()
    })
    .await
}

/// A fake switch over TLS showing `identity`'s certificate.
async fn connect_tls(running: &Running, identity: Option<&str>) -> Result<Fake> {
    let addr = running.openflow_tls_addr.context("no TLS listener")?;
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("tierflow.test")?;
    let tls = tls_client(identity)?.connect(name, tcp).await?;
    Ok(Fake::over(tls))
}

/// The controller's `/metrics` text.
async fn metrics(running: &Running) -> Result<String> {
    let mut s = TcpStream::connect(running.api_addr).await?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: tierflow\r\n\r\n")
        .await?;
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_with_a_certificate_of_the_switch_ca_speaks_openflow_over_tls() -> Result<()> {
    // Plain OpenFlow off: the TLS listener is the only way in.
    let running = start_tls("off").await?;
    assert_eq!(running.openflow_tls_addr, Some(running.openflow_addr));
    let mut fake = connect_tls(&running, Some("sc")).await?;
    let seen = fake.handshake(0x5, &ports()).await?;
    assert!(
        seen.iter()
            .any(|(_, m)| matches!(m, Message::FlowMod(f) if f.command == FlowModCommand::Delete)),
        "the usual connect sequence"
    );
    fake.ping(1).await?;
    let sw = running.ctl.switch(0x5).context("switch 5 registered")?;
    assert!(sw.is_connected());
    // Requests and replies work through TLS as through TCP.
    let barrier = {
        let sw = sw.clone();
        tokio::spawn(async move { sw.barrier().await })
    };
    let xid = fake
        .recv_until("BARRIER_REQUEST", |h, m| {
            matches!(m, Message::BarrierRequest).then_some(h.xid)
        })
        .await?;
    fake.send(xid, &Message::BarrierReply).await?;
    tokio::time::timeout(WAIT, barrier).await???;
    assert_eq!(running.ctl.stats().tls_unverified.get(), 0);
    assert_eq!(running.ctl.stats().tls_handshake_failures.get(), 0);
    running.stop().await;
    fake.answer_echo = false;
    fake.expect_closed().await?;
    Ok(())
}

/// The peer got no OpenFlow at all: the TLS handshake failed, or the
/// connection closed before the controller's HELLO.
async fn refused_before_openflow(connected: Result<Fake>) -> Result<()> {
    let Ok(mut fake) = connected else {
        return Ok(());
    };
    let got = until_closed(&mut fake).await?;
    ensure!(got.is_empty(), "a refused peer was sent {got:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_peers_without_a_certificate_of_the_switch_ca_are_refused_and_counted() -> Result<()> {
    let running = start_tls("127.0.0.1:0").await?;
    let stats = running.ctl.stats();
    // No certificate; one of another PKI's switch CA; one of our own
    // controller CA (not the switch CA); a self-signed one.
    for (n, identity) in [None, Some("rogue"), Some("ctlcert"), Some("selfie")]
        .into_iter()
        .enumerate()
    {
        refused_before_openflow(connect_tls(&running, identity).await)
            .await
            .with_context(|| format!("{identity:?}"))?;
        eventually("the refusal counted", || {
            stats.tls_unverified.get() == n as u64 + 1
        })
        .await
        .with_context(|| format!("{identity:?}"))?;
    }
    // Plain OpenFlow on the TLS port: not a TLS handshake.
    let tls_addr = running.openflow_tls_addr.context("TLS listener")?;
    let mut plain = Fake::over(TcpStream::connect(tls_addr).await?);
    plain.send(1, &hello_with_bitmap(1 << 4)).await?;
    refused_before_openflow(Ok(plain)).await?;
    eventually("the failed handshake counted", || {
        stats.tls_handshake_failures.get() == 1
    })
    .await?;
    assert_eq!(stats.tls_unverified.get(), 4);
    assert_eq!(stats.switches_connected.get(), 0);
    assert!(running.ctl.switches().is_empty());
    let text = metrics(&running).await?;
    assert!(
        text.contains("\ntierflow_tls_unverified_total 4\n"),
        "{text}"
    );
    assert!(
        text.contains("\ntierflow_tls_handshake_failures_total 1\n"),
        "{text}"
    );
    assert!(
        text.contains("\ntierflow_switches_refused_total 0\n"),
        "{text}"
    );

    // Nothing of that hurt the listeners: a real switch connects over
    // TLS, and a lab switch over plain TCP.
    let mut good = connect_tls(&running, Some("sc")).await?;
    good.handshake(0x6, &ports()).await?;
    good.ping(1).await?;
    let mut lab = Fake::connected(&running, 0x7).await?;
    lab.ping(2).await?;
    assert_eq!(stats.switches_connected.get(), 2);
    running.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_configuration_errors_are_clear_at_start() -> Result<()> {
    let pki = pki::get();
    let base = || Config {
        openflow: "127.0.0.1:0".parse().expect("addr"),
        openflow_tls: Some("127.0.0.1:0".parse().expect("addr")),
        tls: tierflow::config::TlsFiles {
            cert: Some(pki.file("ctl-cert.pem")),
            key: Some(pki.file("ctl-privkey.pem")),
            ca: Some(pki.switch_ca()),
        },
        api: "127.0.0.1:0".parse().expect("addr"),
        ..Default::default()
    };
    let mut missing = base();
    missing.tls.ca = Some(pki.file("no-such-ca.pem"));
    let e = app::start(missing)
        .await
        .expect_err("unreadable CA")
        .to_string();
    assert!(e.contains("tls.ca") && e.contains("no-such-ca.pem"), "{e}");
    // A key that is not the certificate's.
    let mut mismatched = base();
    mismatched.tls.key = Some(pki.file("sc-privkey.pem"));
    let e = app::start(mismatched)
        .await
        .expect_err("wrong key")
        .to_string();
    assert!(e.contains("tls.cert"), "{e}");
    // A file that holds no certificate.
    let mut not_pem = base();
    not_pem.tls.ca = Some(pki.file("ovs-pki.log"));
    let e = app::start(not_pem).await.expect_err("not PEM").to_string();
    assert!(e.contains("tls.ca"), "{e}");
    let mut no_key = base();
    no_key.tls.key = None;
    let e = app::start(no_key).await.expect_err("no key").to_string();
    assert!(e.contains("tls.key"), "{e}");
    Ok(())
}
