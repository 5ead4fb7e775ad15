//! A connected switch as the rest of the controller sees it: identity,
//! features and ports, an outbound buffer that its connection task flushes
//! in batches, and a request/reply API keyed by xid (barrier, multipart with
//! MORE-flag reassembly, timeouts), so callers can write
//! `switch.flow_stats(req).await`.

use bytes::BytesMut;
use openflow::message::encode;
use openflow::multipart::{
    FlowStats, FlowStatsRequest, MeterFeatures, MultipartReplyBody, MultipartRequestBody,
};
use openflow::{Body, FeaturesReply, Message, MultipartReply, MultipartRequest, Port};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

/// Parts of one multipart reply at most (each part is at most 64 KiB).
pub const MAX_MULTIPART_PARTS: usize = 4096;

/// Ports one switch may describe at most (PORT_DESC, PORT_STATUS).
pub const MAX_PORTS: usize = 4096;

/// Ports of one switch whose packet-in rate is tracked at most (a switch
/// claiming more ports gets no more buckets: the rest share none, and are
/// refused).
const MAX_PORT_BUCKETS: usize = 2 * MAX_PORTS;

/// One port's packet-in allowance: a token bucket of `rate` per second,
/// holding `rate` at most.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f32,
    at: std::time::Instant,
}

/// Outbound bytes a switch may leave unread before it is dropped: a switch
/// that stops reading must not make the controller buffer without bound.
pub const MAX_PENDING_OUT: usize = 16 << 20;

/// Controller-chosen xids use the low 31 bits; xids with the top bit set
/// belong to the barriers of plans (see `installer`), whose replies are
/// routed without a pending-request entry.
pub const SETUP_XID_BIT: u32 = 1 << 31;

/// Why a request to a switch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("switch {dpid:016x} did not answer within {timeout:?}")]
    Timeout { dpid: u64, timeout: Duration },
    #[error("switch {dpid:016x} disconnected")]
    Closed { dpid: u64 },
    #[error("switch {dpid:016x} answered with error {error}")]
    Switch { dpid: u64, error: String },
    #[error("switch {dpid:016x} answered with an unexpected {got}")]
    Unexpected { dpid: u64, got: String },
    #[error("request could not be encoded: {0}")]
    Encode(String),
}

type Reply<T> = oneshot::Sender<Result<T, RequestError>>;

enum Pending {
    One(Reply<Message<'static>>),
    Multipart {
        parts: Vec<MultipartReply<'static>>,
        tx: Reply<Vec<MultipartReply<'static>>>,
    },
}

/// What the handshake learned about the switch.
#[derive(Debug, Clone, Default)]
pub struct SwitchInfo {
    pub ports: BTreeMap<u32, Port>,
    pub mfr_desc: String,
    pub hw_desc: String,
    pub sw_desc: String,
    pub meter_features: Option<MeterFeatures>,
}

/// A connected switch. Shared (`Arc`) between its connection task, the
/// control plane and API readers.
pub struct Switch {
    pub dpid: u64,
    pub features: FeaturesReply,
    pub peer: SocketAddr,
    pub info: RwLock<SwitchInfo>,
    /// When the handshake finished (the API shows it).
    pub connected_at: chrono::DateTime<chrono::Utc>,
    out: Mutex<BytesMut>,
    wake: Notify,
    next_xid: AtomicU32,
    pending: Mutex<HashMap<u32, Pending>>,
    closed: CancellationToken,
    /// Set with `closed` (by `shut`): what `batch` checks on every send,
    /// one atomic load where the token's check takes its mutex.
    is_closed: AtomicBool,
    /// Set when a newer connection of the same datapath took its place.
    replaced: AtomicBool,
    /// Packet-in allowances per port (only this switch's task uses it).
    /// By port and whether it is the port's LLDP allowance.
    buckets: Mutex<HashMap<(u32, bool), Bucket>>,
    request_timeout: Duration,
    /// `last_heard_ms` counts from here.
    born: Instant,
    /// When bytes last arrived from the switch, in ms since `born`.
    last_heard_ms: AtomicU64,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switch")
            .field("dpid", &format_args!("{:016x}", self.dpid))
            .field("peer", &self.peer)
            .finish()
    }
}

impl Switch {
    pub fn new(features: FeaturesReply, peer: SocketAddr, request_timeout: Duration) -> Self {
        Switch {
            dpid: features.datapath_id,
            features,
            peer,
            info: RwLock::new(SwitchInfo::default()),
            connected_at: chrono::Utc::now(),
            out: Mutex::new(BytesMut::with_capacity(64 << 10)),
            wake: Notify::new(),
            next_xid: AtomicU32::new(1),
            pending: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
            is_closed: AtomicBool::new(false),
            replaced: AtomicBool::new(false),
            buckets: Mutex::new(HashMap::new()),
            request_timeout,
            born: Instant::now(),
            last_heard_ms: AtomicU64::new(0),
        }
    }

    /// Bytes just arrived from the switch (its connection task says so
    /// once per socket read).
    pub(crate) fn heard(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_heard_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since the switch last sent anything (since the handshake
    /// finished, if it has sent nothing since).
    pub fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_heard_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }

    /// Whether the switch is alive: connected, and heard from within
    /// `bound`, or answering an ECHO_REQUEST within `bound`.
    pub async fn is_alive(&self, bound: Duration) -> bool {
        if !self.is_connected() {
            return false;
        }
        if self.silent_for() < bound {
            return true;
        }
        let echo = Message::EchoRequest {
            data: b"tierflow liveness"[..].into(),
        };
        matches!(
            self.request_within(&echo, bound).await,
            Ok(Message::EchoReply { .. })
        ) || (self.is_connected() && self.silent_for() < bound)
    }

    /// A fresh controller xid (never 0, never with the setup bit).
    pub fn next_xid(&self) -> u32 {
        fresh_xid(&self.next_xid)
    }

    /// Closes this connection because it stopped answering and a newer
    /// one of the same datapath takes its place.
    pub fn replace(&self) {
        self.replaced.store(true, Ordering::Relaxed);
        self.shut();
    }

    pub fn was_replaced(&self) -> bool {
        self.replaced.load(Ordering::Relaxed)
    }

    /// Whether a packet-in from `port` at `now` is within `rate` per
    /// second (a burst of `rate` allowed); takes one token if so. A port's
    /// LLDP frames (`lldp`) have an allowance of their own: a link port
    /// carrying a flood keeps its probes.
    pub fn admit_packet_in(
        &self,
        port: u32,
        lldp: bool,
        rate: u32,
        now: std::time::Instant,
    ) -> bool {
        let rate = rate as f32;
        let mut b = self.buckets.lock();
        let full = b.len() >= MAX_PORT_BUCKETS;
        let bucket = match b.get_mut(&(port, lldp)) {
            Some(x) => x,
            None if full => return false,
            None => b.entry((port, lldp)).or_insert(Bucket {
                tokens: rate,
                at: now,
            }),
        };
        let dt = now.saturating_duration_since(bucket.at).as_secs_f32();
        bucket.tokens = (bucket.tokens + dt * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Queues `msg` with a fresh xid; returns the xid.
    pub fn send<M: Body + ?Sized>(&self, msg: &M) -> u32 {
        let xid = self.next_xid();
        self.send_xid(xid, msg);
        xid
    }

    /// Queues `msg` with `xid`. Encodes straight into the outbound buffer
    /// (no intermediate allocation); the connection task writes everything
    /// queued in one call. Returns false if the switch is gone or stuck.
    pub fn send_xid<M: Body + ?Sized>(&self, xid: u32, msg: &M) -> bool {
        self.batch(|b| b.push(xid, msg))
    }

    /// Queues several messages under one lock and one wake-up.
    pub fn batch<R>(&self, f: impl FnOnce(&mut Batch<'_>) -> R) -> R
    where
        R: BatchResult,
    {
        if self.is_closed.load(Ordering::Acquire) {
            return R::failed();
        }
        let mut out = self.out.lock();
        if out.len() > MAX_PENDING_OUT {
            drop(out);
            tracing::warn!(
                dpid = format_args!("{:016x}", self.dpid),
                "switch is not reading; dropping it"
            );
            self.shut();
            return R::failed();
        }
        let before = out.len();
        let r = f(&mut Batch {
            out: &mut out,
            dpid: self.dpid,
            xids: &self.next_xid,
        });
        let wrote = out.len() > before;
        drop(out);
        if wrote {
            self.wake.notify_one();
        }
        r
    }

    /// Takes everything queued so far, swapping in `spare` (cleared, with
    /// its capacity kept) so steady-state writing allocates nothing.
    pub(crate) fn take_out(&self, spare: &mut BytesMut) {
        spare.clear();
        std::mem::swap(&mut *self.out.lock(), spare);
    }

    pub(crate) async fn wait_for_output(&self) {
        self.wake.notified().await;
    }

    /// Cancelled when the connection closes (to wait on; `shut` closes).
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    pub fn is_connected(&self) -> bool {
        !self.is_closed.load(Ordering::Acquire)
    }

    /// Closes the connection: nothing more is queued, its tasks stop.
    pub fn shut(&self) {
        self.is_closed.store(true, Ordering::Release);
        self.closed.cancel();
    }

    /// Fails every outstanding request; called when the connection ends.
    pub(crate) fn close(&self) {
        self.shut();
        self.pending.lock().clear();
    }

    /// Sends a request and waits for the reply with the same xid.
    pub async fn request(&self, msg: &Message<'_>) -> Result<Message<'static>, RequestError> {
        self.request_within(msg, self.request_timeout).await
    }

    /// `request` with its own timeout.
    pub async fn request_within(
        &self,
        msg: &Message<'_>,
        timeout: Duration,
    ) -> Result<Message<'static>, RequestError> {
        let (tx, rx) = oneshot::channel();
        let xid = self.next_xid();
        self.pending.lock().insert(xid, Pending::One(tx));
        self.finish_request(xid, msg, rx, timeout).await
    }

    /// Sends a multipart request and waits for every part of the reply.
    pub async fn multipart(
        &self,
        body: MultipartRequestBody<'_>,
    ) -> Result<Vec<MultipartReply<'static>>, RequestError> {
        let (tx, rx) = oneshot::channel();
        let xid = self.next_xid();
        self.pending.lock().insert(
            xid,
            Pending::Multipart {
                parts: Vec::new(),
                tx,
            },
        );
        let msg = Message::MultipartRequest(MultipartRequest { flags: 0, body });
        self.finish_request(xid, &msg, rx, self.request_timeout)
            .await
    }

    async fn finish_request<T>(
        &self,
        xid: u32,
        msg: &Message<'_>,
        rx: oneshot::Receiver<Result<T, RequestError>>,
        timeout: Duration,
    ) -> Result<T, RequestError> {
        if !self.send_xid(xid, msg) {
            self.pending.lock().remove(&xid);
            return Err(RequestError::Closed { dpid: self.dpid });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(RequestError::Closed { dpid: self.dpid }),
            Err(_) => {
                self.pending.lock().remove(&xid);
                Err(RequestError::Timeout {
                    dpid: self.dpid,
                    timeout,
                })
            }
        }
    }

    /// BARRIER: returns once the switch has processed everything sent before.
    pub async fn barrier(&self) -> Result<(), RequestError> {
        match self.request(&Message::BarrierRequest).await? {
            Message::BarrierReply => Ok(()),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Flow statistics (all parts).
    pub async fn flow_stats(
        &self,
        req: FlowStatsRequest<'_>,
    ) -> Result<Vec<FlowStats<'static>>, RequestError> {
        let mut out = Vec::new();
        for part in self.multipart(MultipartRequestBody::Flow(req)).await? {
            match part.body {
                MultipartReplyBody::Flow(f) => out.extend(f),
                other => return Err(self.unexpected_mp(&other)),
            }
        }
        Ok(out)
    }

    /// The switch's ports (PORT_DESC).
    pub async fn port_desc(&self) -> Result<Vec<Port>, RequestError> {
        let mut out = Vec::new();
        for part in self.multipart(MultipartRequestBody::PortDesc).await? {
            match part.body {
                MultipartReplyBody::PortDesc(p) => out.extend(p),
                other => return Err(self.unexpected_mp(&other)),
            }
        }
        Ok(out)
    }

    fn unexpected(&self, got: &Message<'_>) -> RequestError {
        RequestError::Unexpected {
            dpid: self.dpid,
            got: got.msg_type().to_string(),
        }
    }

    fn unexpected_mp(&self, got: &MultipartReplyBody<'_>) -> RequestError {
        RequestError::Unexpected {
            dpid: self.dpid,
            got: format!("{} reply", got.multipart_type()),
        }
    }

    /// Routes a reply (or an error) to the request waiting for `xid`.
    /// Returns false when nothing was waiting for it.
    pub(crate) fn complete(&self, xid: u32, msg: Message<'_>) -> bool {
        let mut pending = self.pending.lock();
        let Some(entry) = pending.remove(&xid) else {
            return false;
        };
        match (entry, msg) {
            (Pending::One(tx), Message::Error(e)) => {
                let _ = tx.send(Err(RequestError::Switch {
                    dpid: self.dpid,
                    error: e.to_string(),
                }));
            }
            (Pending::Multipart { tx, .. }, Message::Error(e)) => {
                let _ = tx.send(Err(RequestError::Switch {
                    dpid: self.dpid,
                    error: e.to_string(),
                }));
            }
            (Pending::One(tx), m) => {
                let _ = tx.send(Ok(m.into_owned()));
            }
            (Pending::Multipart { mut parts, tx }, Message::MultipartReply(r)) => {
                let more = r.flags & openflow::MULTIPART_MORE != 0;
                parts.push(r.into_owned());
                if more && parts.len() >= MAX_MULTIPART_PARTS {
                    // A switch that never ends a reply must not grow it
                    // without bound.
                    let _ = tx.send(Err(RequestError::Unexpected {
                        dpid: self.dpid,
                        got: format!("a multipart reply of more than {MAX_MULTIPART_PARTS} parts"),
                    }));
                } else if more {
                    pending.insert(xid, Pending::Multipart { parts, tx });
                } else {
                    let _ = tx.send(Ok(parts));
                }
            }
            (Pending::Multipart { tx, .. }, other) => {
                let _ = tx.send(Err(self.unexpected(&other)));
            }
        }
        true
    }

    /// The port's record, if the switch has it.
    pub fn port(&self, port_no: u32) -> Option<Port> {
        self.info.read().ports.get(&port_no).cloned()
    }
}

fn fresh_xid(counter: &AtomicU32) -> u32 {
    loop {
        let x = counter.fetch_add(1, Ordering::Relaxed) & !SETUP_XID_BIT;
        if x != 0 {
            return x;
        }
    }
}

/// Messages queued under one lock of a switch's outbound buffer.
#[derive(Debug)]
pub struct Batch<'b> {
    out: &'b mut BytesMut,
    dpid: u64,
    xids: &'b AtomicU32,
}

impl Batch<'_> {
    /// Encodes one message into the buffer. Returns false (and logs) if the
    /// message cannot be encoded, which only an over-long message causes.
    pub fn push<M: Body + ?Sized>(&mut self, xid: u32, msg: &M) -> bool {
        match encode(xid, msg, self.out) {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(dpid = format_args!("{:016x}", self.dpid), "not sent: {e}");
                false
            }
        }
    }
}

impl Batch<'_> {
    /// A fresh xid of this switch.
    pub fn next_xid(&self) -> u32 {
        fresh_xid(self.xids)
    }

    /// Queues bytes that hold whole encoded messages, giving each a fresh
    /// xid (so an OFPT_ERROR names the message it refers to). Counts the
    /// FLOW_MODs and METER_MODs among them into `counts`.
    pub fn push_encoded(&mut self, encoded: &[u8], counts: &mut MsgCounts) {
        let start = self.out.len();
        self.out.extend_from_slice(encoded);
        let mut at = start;
        while let Some(h) = self.out.get(at..).and_then(openflow::Header::peek) {
            let len = usize::from(h.length);
            if len < openflow::HEADER_LEN {
                break;
            }
            match h.msg_type {
                openflow::MsgType::FlowMod => counts.flow_mods += 1,
                openflow::MsgType::MeterMod => counts.meter_mods += 1,
                _ => {}
            }
            let xid = fresh_xid(self.xids).to_be_bytes();
            if let Some(x) = self.out.get_mut(at + 4..at + 8) {
                x.copy_from_slice(&xid);
            }
            at += len;
        }
    }
}

impl Batch<'_> {
    /// Queues one message given as its encoded head (xid included) and
    /// the rest of its bytes (a packet-out's frame).
    pub fn push_head_and_body(&mut self, head: &[u8], body: &[u8]) {
        self.out.extend_from_slice(head);
        self.out.extend_from_slice(body);
    }

    /// Queues one whole encoded message with xid `xid` (a prebuilt
    /// message, such as `messages::BARRIER_REQUEST`).
    pub fn push_encoded_xid(&mut self, encoded: &[u8], xid: u32) {
        let start = self.out.len();
        self.out.extend_from_slice(encoded);
        if let Some(x) = self.out.get_mut(start + 4..start + 8) {
            x.copy_from_slice(&xid.to_be_bytes());
        }
    }
}

/// Messages of interest counted while queueing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MsgCounts {
    pub flow_mods: u64,
    pub meter_mods: u64,
}

/// Lets `Switch::batch` report "not queued" in the caller's result type.
pub trait BatchResult {
    fn failed() -> Self;
}

impl BatchResult for bool {
    fn failed() -> Self {
        false
    }
}

impl BatchResult for () {
    fn failed() -> Self {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn switch() -> Switch {
        Switch::new(
            FeaturesReply {
                datapath_id: 1,
                n_buffers: 0,
                n_tables: 1,
                auxiliary_id: 0,
                capabilities: 0,
                reserved: 0,
            },
            "127.0.0.1:1".parse().expect("addr"),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn a_port_gets_its_rate_of_packet_ins_and_other_ports_theirs() {
        let sw = switch();
        let t0 = Instant::now();
        let passed = (0..50)
            .filter(|_| sw.admit_packet_in(1, false, 10, t0))
            .count();
        assert_eq!(passed, 10, "a burst of the rate, then nothing");
        assert!(
            sw.admit_packet_in(2, false, 10, t0),
            "another port is not affected"
        );
        assert!(
            sw.admit_packet_in(1, true, 10, t0),
            "the flooded port's LLDP is not affected"
        );
        // A tenth of a second later: one more token.
        let later = t0 + Duration::from_millis(100);
        assert!(sw.admit_packet_in(1, false, 10, later));
        assert!(!sw.admit_packet_in(1, false, 10, later));
        // Buckets are bounded: a switch inventing ports gets no more.
        for p in 10..(10 + MAX_PORT_BUCKETS as u32) {
            sw.admit_packet_in(p, false, 10, t0);
        }
        assert!(!sw.admit_packet_in(u32::MAX - 1, false, 10, t0));
    }
}
