//! One emulated switch of `tierflow bench`: a task owning one TCP
//! connection to the controller. It answers the handshake like Open vSwitch
//! (HELLO, FEATURES, PORT_DESC/DESC/METER_FEATURES, BARRIER, ECHO), hands
//! LLDP probes sent out of a wired port to the peer switch as a PACKET_IN,
//! reveals its hosts with gratuitous ARPs, and during the measurement keeps
//! its window of new-flow PACKET_INs full, matching each PACKET_OUT to its
//! PACKET_IN by the sequence number in the frame.
//!
//! Built to be far cheaper than the controller it loads: every read is
//! framed in place (`openflow::framing::check`, no per-message `Bytes`),
//! messages are dispatched on the header type alone, PACKET_OUTs are read
//! at fixed offsets, and all replies and packet-ins produced by one read
//! go out in one write.

use super::wire::{self, PacketInTemplate};
use super::{BenchError, Phase, Progress, SwitchPlan, SwitchStats};
use bytes::{Buf, Bytes, BytesMut};
use openflow::framing::{Frame, check};
use openflow::{Header, Message, MsgType, MultipartType};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tracing::warn;

const READ_CHUNK: usize = 64 << 10;
/// How long the controller may leave our writes unread.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Gratuitous ARPs repeat this often until every sender has seen its
/// destinations learned (longer than the controller's flood filter window).
const ARP_EVERY: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(100);

/// Everything a switch task needs; built by the coordinator.
pub(super) struct Ctx {
    pub plan: SwitchPlan,
    pub stream: TcpStream,
    pub phase: watch::Receiver<Phase>,
    pub inject_rx: mpsc::UnboundedReceiver<(u32, Bytes)>,
    /// Every switch's LLDP inbox, by switch index.
    pub peers: Arc<[mpsc::UnboundedSender<(u32, Bytes)>]>,
    pub progress: Arc<[Progress]>,
    /// Latency mode: the one permit to have a setup outstanding.
    pub token: Option<Arc<Semaphore>>,
    pub window: usize,
    pub setup_timeout: Duration,
}

/// An outstanding packet-in.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    seq: u64,
    sent: Option<Instant>,
}

/// The switch's protocol state (the I/O handles live in `run`).
struct Emu {
    index: usize,
    dpid: u64,
    plan: SwitchPlan,
    phase: Phase,
    hello_seen: bool,
    features_sent: bool,
    port_desc_sent: bool,
    templates: Vec<PacketInTemplate>,
    next_flow: usize,
    /// MACs whose flooded ARP this switch must see before it may send.
    expect: Vec<([u8; 6], bool)>,
    last_arp: Option<Instant>,
    window: usize,
    latency_mode: bool,
    permit: Option<OwnedSemaphorePermit>,
    slots: Vec<Slot>,
    mask: u64,
    next_seq: u64,
    outstanding: usize,
    completed: u64,
    setup_timeout: Duration,
    stats: SwitchStats,
}

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

enum Event {
    Read(std::io::Result<usize>),
    Inject(Option<(u32, Bytes)>),
    Phase(bool),
    Permit(Option<OwnedSemaphorePermit>),
    Tick,
}

pub(super) async fn run(ctx: Ctx) -> Result<SwitchStats, BenchError> {
    let Ctx {
        plan,
        mut stream,
        phase: mut phase_rx,
        mut inject_rx,
        peers,
        progress,
        token,
        window,
        setup_timeout,
    } = ctx;
    let dpid = plan.dpid;
    let fail = |reason: String| BenchError::Switch { dpid, reason };
    let mut emu = Emu::new(plan, window, token.is_some(), setup_timeout).map_err(fail)?;
    let me = progress
        .get(emu.index)
        .ok_or_else(|| fail("no progress slot".into()))?;

    let mut rbuf = BytesMut::with_capacity(2 * READ_CHUNK);
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK);
    // Open vSwitch greets first, without waiting for the controller.
    wire::push(1, &wire::hello(), &mut wbuf).map_err(fail)?;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut acquiring: Option<Acquire> = None;
    let mut inject_open = true;

    loop {
        if !wbuf.is_empty() {
            match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&wbuf)).await {
                Ok(Ok(())) => wbuf.clear(),
                Ok(Err(e)) => return Err(fail(format!("write to the controller failed: {e}"))),
                Err(_) => {
                    return Err(fail(format!(
                        "the controller has not read for {WRITE_TIMEOUT:?}"
                    )));
                }
            }
        }
        if emu.phase == Phase::Stop {
            break;
        }
        match (&token, emu.wants_permit()) {
            (Some(t), true) if acquiring.is_none() => {
                acquiring = Some(Box::pin(t.clone().acquire_owned()));
            }
            (_, false) => acquiring = None,
            _ => {}
        }
        rbuf.reserve(READ_CHUNK);
        let event = tokio::select! {
            r = stream.read_buf(&mut rbuf) => Event::Read(r),
            i = inject_rx.recv(), if inject_open => Event::Inject(i),
            c = phase_rx.changed() => Event::Phase(c.is_ok()),
            p = async {
                match acquiring.as_mut() {
                    Some(f) => f.await.ok(),
                    None => None,
                }
            }, if acquiring.is_some() => Event::Permit(p),
            _ = tick.tick() => Event::Tick,
        };
        let now = Instant::now();
        match event {
            Event::Read(Ok(0)) => {
                return Err(fail(format!(
                    "the controller closed the connection ({:?} phase)",
                    emu.phase
                )));
            }
            Event::Read(Ok(_)) => loop {
                if !emu.hello_seen
                    && let Some(&v) = rbuf.first()
                    && !(1..=6).contains(&v)
                {
                    let head = rbuf.get(..rbuf.len().min(16)).unwrap_or_default();
                    return Err(fail(format!(
                        "the peer does not speak OpenFlow (it sent {:02x?})",
                        head
                    )));
                }
                match check(&rbuf) {
                    Ok(Frame::Complete(n)) => {
                        let msg = rbuf.get(..n).unwrap_or_default();
                        let r = emu.handle(msg, now, &mut wbuf, &peers);
                        rbuf.advance(n);
                        r.map_err(fail)?;
                    }
                    Ok(Frame::NeedMore(_)) => break,
                    Err(e) => {
                        return Err(fail(format!("unframeable input from the controller: {e}")));
                    }
                }
            },
            Event::Read(Err(e)) => {
                return Err(fail(format!("read from the controller failed: {e}")));
            }
            Event::Inject(Some((port, frame))) => {
                // Before its handshake the controller would drop the
                // PACKET_IN; delivering only afterwards keeps the count honest.
                if emu.handshaken() {
                    wire::push(0, &wire::packet_in(port, &frame), &mut wbuf).map_err(fail)?;
                    if let Some(c) = me.lldp.get(port as usize) {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Event::Inject(None) => inject_open = false,
            Event::Phase(open) => {
                let p = if open {
                    *phase_rx.borrow_and_update()
                } else {
                    Phase::Stop
                };
                emu.enter(p, now, &mut wbuf).map_err(fail)?;
            }
            Event::Permit(p) => {
                acquiring = None;
                emu.permit = p;
            }
            Event::Tick => emu.tick(now, &mut wbuf).map_err(fail)?,
        }
        emu.fill(now, &mut wbuf);
        me.handshaken.store(emu.handshaken(), Ordering::Relaxed);
        me.revealed.store(emu.revealed(), Ordering::Relaxed);
        me.completed.store(emu.completed, Ordering::Relaxed);
        me.outstanding
            .store(emu.outstanding as u64, Ordering::Relaxed);
    }
    emu.stats.lost += emu.outstanding as u64;
    let _ = stream.shutdown().await;
    Ok(emu.stats)
}

impl Emu {
    fn new(
        plan: SwitchPlan,
        window: usize,
        latency_mode: bool,
        setup_timeout: Duration,
    ) -> Result<Self, String> {
        let index = plan.index;
        let templates = plan
            .flows
            .iter()
            .map(|(in_port, src, dst)| {
                let frame = if plan.routed {
                    wire::routed_udp_frame(src, dst, index as u32)
                } else {
                    wire::udp_frame(src, dst, index as u32)
                };
                PacketInTemplate::new(*in_port, &frame, plan.sessions)
                    .map_err(|e| format!("cannot encode a PACKET_IN: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let expect = plan.flows.iter().map(|f| (f.2.mac, false)).collect();
        let window = if latency_mode { 1 } else { window };
        // Room for twice the window, so a slow setup rarely makes the next
        // sequence number skip a slot still in use.
        let cap = (2 * window).next_power_of_two().max(64);
        Ok(Emu {
            index,
            dpid: plan.dpid,
            plan,
            phase: Phase::Connect,
            hello_seen: false,
            features_sent: false,
            port_desc_sent: false,
            templates,
            next_flow: 0,
            expect,
            last_arp: None,
            window,
            latency_mode,
            permit: None,
            slots: vec![Slot::default(); cap],
            mask: cap as u64 - 1,
            next_seq: 0,
            outstanding: 0,
            completed: 0,
            setup_timeout,
            stats: SwitchStats::default(),
        })
    }

    fn handshaken(&self) -> bool {
        self.features_sent && self.port_desc_sent
    }

    fn revealed(&self) -> bool {
        self.expect.iter().all(|e| e.1)
    }

    fn counting(&self) -> bool {
        matches!(self.phase, Phase::Measure | Phase::Drain)
    }

    fn wants_permit(&self) -> bool {
        self.latency_mode
            && self.phase == Phase::Measure
            && !self.templates.is_empty()
            && self.permit.is_none()
            && self.outstanding == 0
    }

    /// One message from the controller.
    fn handle(
        &mut self,
        msg: &[u8],
        now: Instant,
        out: &mut BytesMut,
        peers: &[mpsc::UnboundedSender<(u32, Bytes)>],
    ) -> Result<(), String> {
        let Some(h) = Header::peek(msg) else {
            return Ok(());
        };
        match h.msg_type {
            MsgType::PacketOut => self.packet_out(msg, now, peers),
            MsgType::FlowMod => {
                if self.counting() {
                    self.stats.flow_mods += 1;
                }
            }
            MsgType::BarrierRequest => {
                wire::empty_reply(MsgType::BarrierReply, h.xid, out);
                if self.counting() {
                    self.stats.barriers += 1;
                }
            }
            MsgType::EchoRequest => wire::echo_reply(msg, out),
            MsgType::EchoReply
            | MsgType::SetConfig
            | MsgType::GroupMod
            | MsgType::MeterMod
            | MsgType::PortMod
            | MsgType::TableMod
            | MsgType::SetAsync
            | MsgType::Experimenter => {}
            MsgType::Hello => {
                if !wire::hello_offers_13(msg) {
                    return Err(format!(
                        "the controller's HELLO (version 0x{:02x}) does not offer OpenFlow 1.3",
                        h.version
                    ));
                }
                self.hello_seen = true;
            }
            MsgType::FeaturesRequest => {
                wire::push(h.xid, &wire::features_reply(self.dpid), out)?;
                self.features_sent = true;
            }
            MsgType::MultipartRequest => {
                let t = wire::multipart_reply(h.xid, msg, self.dpid, &self.plan.ports, out)?;
                if t == MultipartType::PortDesc {
                    self.port_desc_sent = true;
                }
            }
            MsgType::GetConfigRequest => {
                let reply = Message::GetConfigReply(openflow::SwitchConfig {
                    flags: 0,
                    miss_send_len: openflow::CML_NO_BUFFER,
                });
                wire::push(h.xid, &reply, out)?;
            }
            MsgType::RoleRequest => match openflow::decode(msg) {
                Ok((_, Message::RoleRequest(r))) => {
                    wire::push(h.xid, &Message::RoleReply(r), out)?;
                }
                _ => wire::bad_type(h.xid, msg, out)?,
            },
            MsgType::Error => {
                self.stats.of_errors += 1;
                let text = match openflow::decode(msg) {
                    Ok((_, Message::Error(e))) => e.to_string(),
                    _ => "undecodable".into(),
                };
                warn!(
                    dpid = format_args!("{:016x}", self.dpid),
                    "controller sent OFPT_ERROR {text}"
                );
            }
            _ => wire::bad_type(h.xid, msg, out)?,
        }
        Ok(())
    }

    fn packet_out(
        &mut self,
        msg: &[u8],
        now: Instant,
        peers: &[mpsc::UnboundedSender<(u32, Bytes)>],
    ) {
        let Some((actions, data)) = wire::packet_out_parts(msg) else {
            return;
        };
        if let Some((sw, seq)) = wire::bench_seq(data) {
            if sw as usize != self.index || !self.complete(seq, now) {
                self.stats.unmatched += 1;
            }
            return;
        }
        if wire::is_lldp(data) {
            for port in wire::output_ports(actions) {
                if let Some(l) = self.plan.links.iter().find(|l| l.port == port)
                    && let Some(tx) = peers.get(l.peer)
                {
                    let _ = tx.send((l.peer_port, Bytes::copy_from_slice(data)));
                }
            }
            return;
        }
        if let Some(mac) = wire::arp_sender(data) {
            for e in self.expect.iter_mut().filter(|e| e.0 == mac) {
                e.1 = true;
            }
        }
    }

    /// The PACKET_OUT of `seq` arrived; false if nothing was waiting for it.
    fn complete(&mut self, seq: u64, now: Instant) -> bool {
        let Some(slot) = self.slots.get_mut((seq & self.mask) as usize) else {
            return false;
        };
        let Some(sent) = slot.sent.filter(|_| slot.seq == seq) else {
            return false;
        };
        slot.sent = None;
        self.stats
            .hist
            .record(now.saturating_duration_since(sent).as_nanos() as u64);
        self.outstanding -= 1;
        self.completed += 1;
        self.permit = None;
        true
    }

    /// Sends new-flow packet-ins while the window (or the permit) allows.
    fn fill(&mut self, now: Instant, out: &mut BytesMut) {
        if self.phase != Phase::Measure || self.templates.is_empty() {
            return;
        }
        let room = if self.latency_mode {
            usize::from(self.permit.is_some() && self.outstanding == 0)
        } else {
            self.window.saturating_sub(self.outstanding)
        };
        for _ in 0..room {
            // Skip sequence numbers whose slot a slow setup still holds;
            // fewer than `window` slots are busy, so one is free.
            let (seq, i) = loop {
                let seq = self.next_seq;
                self.next_seq += 1;
                let i = (seq & self.mask) as usize;
                if self.slots.get(i).is_some_and(|s| s.sent.is_none()) {
                    break (seq, i);
                }
            };
            if let Some(slot) = self.slots.get_mut(i) {
                *slot = Slot {
                    seq,
                    sent: Some(now),
                };
            }
            if let Some(t) = self.templates.get(self.next_flow) {
                t.emit(seq, out);
            }
            self.next_flow = (self.next_flow + 1) % self.templates.len();
            self.outstanding += 1;
        }
    }

    fn enter(&mut self, phase: Phase, now: Instant, out: &mut BytesMut) -> Result<(), String> {
        self.phase = phase;
        if phase == Phase::Reveal {
            self.send_arps(now, out)?;
        }
        Ok(())
    }

    fn send_arps(&mut self, now: Instant, out: &mut BytesMut) -> Result<(), String> {
        for (port, host) in &self.plan.hosts {
            let frame = wire::arp_frame(host);
            wire::push(0, &wire::packet_in(*port, &frame), out)?;
        }
        self.last_arp = Some(now);
        Ok(())
    }

    fn tick(&mut self, now: Instant, out: &mut BytesMut) -> Result<(), String> {
        // Hosts keep announcing until every sender is ready: a peer may
        // still be waiting for ours even when we have seen all we need.
        if self.phase == Phase::Reveal
            && self
                .last_arp
                .is_none_or(|t| now.saturating_duration_since(t) >= ARP_EVERY)
        {
            self.send_arps(now, out)?;
        }
        if self.outstanding > 0 {
            let timeout = self.setup_timeout;
            let mut lost = 0;
            for s in &mut self.slots {
                if s.sent
                    .is_some_and(|t| now.saturating_duration_since(t) >= timeout)
                {
                    s.sent = None;
                    lost += 1;
                }
            }
            if lost > 0 {
                self.outstanding -= lost;
                self.stats.lost += lost as u64;
                self.permit = None;
            }
        }
        Ok(())
    }
}
