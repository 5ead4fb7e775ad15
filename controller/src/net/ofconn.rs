//! Switch connections: the OpenFlow listeners (plain TCP, and TLS with
//! switch certificates checked against a CA) and one task per switch.
//!
//! Each connection reads into a `BytesMut` and splits whole messages off it
//! with `openflow::framing` (a partial message just waits for more bytes);
//! the same task's writer half flushes everything the controller queued
//! for that switch in one write call. While the switch is being learned
//! (ports, description, meter features) the task also drives that, so a
//! connection is one task, whatever it is doing, over TCP or TLS alike (the
//! halves are generic over `AsyncRead`/`AsyncWrite`; a TLS handshake runs
//! in that task too, under the handshake deadline). A slow, silent or
//! hostile switch only ever blocks its own task: it is dropped after
//! `dead_after` of silence, when it stops reading (outbound buffer or
//! write timeout), or on a framing error, and its state is cleaned up.
//!
//! A datapath id is held by one connection at a time: a newcomer claiming
//! the id of a registered switch is refused while that switch is alive
//! (heard from, or answering an echo, within [`LIVENESS_BOUND`]); a holder
//! that does not answer is closed and the newcomer takes its place, so a
//! switch whose old connection went half-dead reconnects at once.
//!
//! What a connection reports goes to an [`Events`]; this module knows
//! nothing of what the controller does with it.

use super::Events;
use super::switch::{SETUP_XID_BIT, Switch};
use super::tls::{TlsAcceptor, TlsRefusal};
use crate::config::Timers;
use bytes::BytesMut;
use openflow::framing::next_frame;
use openflow::message::{HelloElem, encode_versioned};
use openflow::{ErrorMsg, ErrorType, Header, Message, MsgType, OFP_VERSION, hello_failed};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

/// Read buffer size; OVS batches many packet-ins per segment.
const READ_CHUNK: usize = 64 << 10;
/// How long the final flush of a closing connection may wait for the switch.
const CLOSING_FLUSH: Duration = Duration::from_secs(1);
/// A registered switch heard from (or answering an echo) within this is
/// alive: a newcomer claiming its datapath id is refused.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(1);

/// Accepts switches until `shutdown` is cancelled; every connection runs in
/// its own task tracked by `tracker`, so shutdown can wait for them all.
/// With `tls`, every connection must complete a TLS handshake with a
/// certificate the acceptor's CA signed before it speaks OpenFlow.
pub async fn serve<E: Events>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    events: Arc<E>,
    timers: Timers,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let events = events.clone();
                let shutdown = shutdown.clone();
                let tls = tls.clone();
                let span = info_span!(
                    "switch",
                    %peer,
                    tls = tls.is_some(),
                    dpid = tracing::field::Empty
                );
                tracker.spawn(
                    async move {
                        let r = match tls {
                            None => {
                                let (rd, wr) = stream.into_split();
                                handle(rd, wr, peer, events, timers, shutdown).await
                            }
                            Some(tls) => {
                                handle_tls(stream, tls, peer, events, timers, shutdown).await
                            }
                        };
                        if let Err(e) = r {
                            info!("connection ended: {e}");
                        }
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The TLS handshake (certificate checked), then the connection as usual.
async fn handle_tls<E: Events>(
    stream: TcpStream,
    tls: TlsAcceptor,
    peer: SocketAddr,
    events: Arc<E>,
    timers: Timers,
    shutdown: CancellationToken,
) -> Result<(), ConnError> {
    let deadline = Timers::secs(timers.handshake_timeout);
    let accepted = tokio::select! {
        _ = shutdown.cancelled() => return Err(ConnError::Shutdown),
        r = tokio::time::timeout(deadline, tls.accept(stream)) => r,
    };
    let stream = match accepted {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let why = TlsRefusal::from_io(&e);
            warn!("TLS connection refused: {why}");
            events.tls_refused(peer, &why);
            return Err(ConnError::Tls(why));
        }
        Err(_) => {
            let why = TlsRefusal::Handshake(format!("no TLS handshake within {deadline:?}"));
            warn!("TLS connection refused: {why}");
            events.tls_refused(peer, &why);
            return Err(ConnError::Tls(why));
        }
    };
    debug!("TLS established, switch certificate verified");
    let (rd, wr) = tokio::io::split(stream);
    handle(rd, wr, peer, events, timers, shutdown).await
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("switch closed the connection")]
    Eof,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("handshake: {0}")]
    Handshake(String),
    #[error("unframeable input: {0}")]
    Framing(openflow::DecodeError),
    #[error("silent for {0:?}")]
    Silent(Duration),
    #[error("shutting down")]
    Shutdown,
    #[error("dropped: not reading what we send")]
    Stuck,
    #[error("not answering; a newer connection of the same datapath took its place")]
    Replaced,
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Tls(TlsRefusal),
}

struct Reader<R> {
    rd: R,
    /// The connection's switch once the handshake named it: told when
    /// bytes arrive, so a newcomer claiming its datapath id can see it
    /// is alive.
    sw: Option<Arc<Switch>>,
    buf: BytesMut,
    /// When bytes last arrived: one clock read per socket read, not per
    /// message (a read carries hundreds of packet-ins under load).
    last_read: Instant,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Next whole message, reading as needed; partial input is not an error.
    async fn next(&mut self) -> Result<bytes::Bytes, ConnError> {
        loop {
            if let Some(frame) = self.buffered()? {
                return Ok(frame);
            }
            self.fill().await?;
        }
    }

    /// The next whole message already in the buffer, if any.
    fn buffered(&mut self) -> Result<Option<bytes::Bytes>, ConnError> {
        next_frame(&mut self.buf).map_err(ConnError::Framing)
    }

    /// Reads whatever the socket has.
    async fn fill(&mut self) -> Result<(), ConnError> {
        self.buf.reserve(READ_CHUNK);
        if self.rd.read_buf(&mut self.buf).await? == 0 {
            return Err(ConnError::Eof);
        }
        self.last_read = Instant::now();
        if let Some(sw) = &self.sw {
            sw.heard();
        }
        Ok(())
    }
}

async fn handle<E, R, W>(
    rd: R,
    mut wr: W,
    peer: SocketAddr,
    events: Arc<E>,
    timers: Timers,
    shutdown: CancellationToken,
) -> Result<(), ConnError>
where
    E: Events,
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut reader = Reader {
        rd,
        sw: None,
        buf: BytesMut::with_capacity(READ_CHUNK),
        last_read: Instant::now(),
    };
    let deadline = Timers::secs(timers.handshake_timeout);
    let features = tokio::select! {
        _ = shutdown.cancelled() => return Err(ConnError::Shutdown),
        r = tokio::time::timeout(deadline, handshake(&mut reader, &mut wr)) => match r {
            Ok(r) => r?,
            Err(_) => return Err(ConnError::Handshake(format!("no answer within {deadline:?}"))),
        },
    };
    let sw = Arc::new(Switch::new(
        features,
        peer,
        Timers::secs(timers.request_timeout),
    ));
    let dpid = sw.dpid;
    tracing::Span::current().record("dpid", format_args!("{dpid:016x}"));
    // A datapath id held by another connection: that one keeps it if it
    // is alive; one that does not answer is closed for this one.
    if let Some(holder) = events.holder(dpid)
        && holder.is_connected()
    {
        let alive = tokio::select! {
            _ = shutdown.cancelled() => return Err(ConnError::Shutdown),
            a = holder.is_alive(LIVENESS_BOUND) => a,
        };
        if alive {
            // switch_connected refuses (and counts) below.
            debug!(
                "datapath {dpid:016x} is held by {}, which answers",
                holder.peer
            );
        } else {
            warn!(
                "datapath {dpid:016x}: its connection from {} has not answered for {:?}; \
                 replaced by this one from {peer}",
                holder.peer,
                holder.silent_for()
            );
            holder.replace();
        }
    }
    if let Err(why) = events.switch_connected(&sw) {
        warn!(
            dpid = format_args!("{dpid:016x}"),
            "switch from {peer} refused: {why}"
        );
        let _ = tokio::time::timeout(CLOSING_FLUSH, wr.shutdown()).await;
        return Err(ConnError::Refused(why));
    }
    info!(dpid = format_args!("{dpid:016x}"), "switch connected");
    reader.sw = Some(sw.clone());

    // Reads (with learning alongside) and writes, joined in this task.
    let reads = async {
        let mut learn = events.switch_learn(sw.clone());
        let mut learned = false;
        let read = read_loop(&mut reader, &sw, &*events, &shutdown, &timers);
        tokio::pin!(read);
        let result = loop {
            tokio::select! {
                r = &mut read => break r,
                () = &mut learn, if !learned => learned = true,
            }
        };
        sw.close();
        result
    };
    let (result, ()) = tokio::join!(reads, write_loop(&sw, wr, Timers::secs(timers.dead_after)));
    events.switch_disconnected(&sw);
    info!(dpid = format_args!("{dpid:016x}"), "switch disconnected");
    result
}

/// HELLO both ways (with version bitmaps), then FEATURES. A switch that
/// cannot speak 1.3 gets HELLO_FAILED/INCOMPATIBLE and is closed.
async fn handshake<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    reader: &mut Reader<R>,
    wr: &mut W,
) -> Result<openflow::FeaturesReply, ConnError> {
    let mut out = Vec::with_capacity(64);
    let hello = Message::Hello {
        elements: vec![HelloElem::of13_only()],
    };
    encode_versioned(OFP_VERSION, 1, &hello, &mut out)
        .map_err(|e| ConnError::Handshake(e.to_string()))?;
    wr.write_all(&out).await?;

    let frame = reader.next().await?;
    let (header, msg) =
        openflow::decode(&frame).map_err(|e| ConnError::Handshake(format!("bad HELLO: {e}")))?;
    let Message::Hello { elements } = msg else {
        return Err(ConnError::Handshake(format!(
            "expected HELLO, got {}",
            header.msg_type
        )));
    };
    if !speaks_13(&header, &elements) {
        let text = b"tierflow speaks OpenFlow 1.3 (0x04) only";
        let err = Message::Error(ErrorMsg::new(
            ErrorType::HelloFailed,
            hello_failed::INCOMPATIBLE,
            text,
        ));
        out.clear();
        // Answer in the switch's own version so it can read the error.
        let _ = encode_versioned(header.version.min(OFP_VERSION), header.xid, &err, &mut out);
        wr.write_all(&out).await?;
        return Err(ConnError::Handshake(format!(
            "switch offers no OpenFlow 1.3 (version 0x{:02x})",
            header.version
        )));
    }

    out.clear();
    let _ = openflow::encode(2, &Message::FeaturesRequest, &mut out);
    wr.write_all(&out).await?;
    loop {
        let frame = reader.next().await?;
        let Ok((h, msg)) = openflow::decode(&frame) else {
            continue;
        };
        match msg {
            Message::FeaturesReply(f) => return Ok(f),
            Message::EchoRequest { data } => {
                out.clear();
                let _ = openflow::encode(h.xid, &Message::EchoReply { data }, &mut out);
                wr.write_all(&out).await?;
            }
            Message::Error(e) => return Err(ConnError::Handshake(format!("switch error {e}"))),
            _ => debug!("ignoring {} before FEATURES_REPLY", h.msg_type),
        }
    }
}

/// Version negotiation (spec 7.5.1): with a bitmap, 1.3 must be in it;
/// without one, the switch's highest version must be at least 1.3.
fn speaks_13(header: &Header, elements: &[HelloElem<'_>]) -> bool {
    let bitmap = elements.iter().find_map(|e| match e {
        HelloElem::VersionBitmap { bitmaps } => Some(bitmaps),
        HelloElem::Unknown { .. } => None,
    });
    match bitmap {
        Some(words) => words.first().is_some_and(|w| w & (1 << OFP_VERSION) != 0),
        None => header.version >= OFP_VERSION,
    }
}

async fn read_loop<E: Events, R: AsyncRead + Unpin>(
    reader: &mut Reader<R>,
    sw: &Arc<Switch>,
    events: &E,
    shutdown: &CancellationToken,
    timers: &Timers,
) -> Result<(), ConnError> {
    let echo_every = Timers::secs(timers.echo_interval);
    let dead_after = Timers::secs(timers.dead_after);
    let mut tick = tokio::time::interval(echo_every.min(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut echo_sent: Option<Instant> = None;
    loop {
        // Every whole message already read is handled before waiting again:
        // one pass through `select!` (and its cancellation and timer
        // futures) per socket read instead of per message; under load a read
        // carries hundreds of messages.
        while let Some(frame) = reader.buffered()? {
            dispatch(sw, events, &frame);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(ConnError::Shutdown),
            _ = sw.closed().cancelled() => {
                return Err(if sw.was_replaced() { ConnError::Replaced } else { ConnError::Stuck });
            }
            _ = tick.tick() => {
                let idle = reader.last_read.elapsed();
                if idle > dead_after {
                    return Err(ConnError::Silent(idle));
                }
                if idle >= echo_every && echo_sent.is_none_or(|t| t.elapsed() >= echo_every) {
                    sw.send(&Message::EchoRequest { data: b"tierflow"[..].into() });
                    echo_sent = Some(Instant::now());
                }
            }
            r = reader.fill() => r?,
        }
    }
}

/// Handles one message from a switch.
fn dispatch<E: Events>(sw: &Arc<Switch>, events: &E, frame: &bytes::Bytes) {
    // A path setup's barrier reply (half of all messages under load) is
    // routed from its header alone: it has no body to decode.
    if let Some(h) = openflow::Header::peek(frame)
        && h.msg_type == MsgType::BarrierReply
        && h.version == OFP_VERSION
        && usize::from(h.length) == openflow::HEADER_LEN
        && h.xid & SETUP_XID_BIT != 0
    {
        events.setup_barrier(sw, h.xid);
        return;
    }
    let (h, msg) = match openflow::decode(frame) {
        Ok(x) => x,
        Err(e) => {
            events.decode_error(sw);
            warn!(
                "undecodable {} from switch: {e}",
                openflow::Header::peek(frame).map_or(MsgType::Unknown(0), |h| h.msg_type)
            );
            // Tell the switch, with the start of the offending message, as
            // the spec asks; the stream stays in sync so the connection lives.
            let (t, code) = e.kind.ofp_error();
            let data = frame.get(..frame.len().min(64)).unwrap_or_default();
            let xid = openflow::Header::peek(frame).map_or(0, |h| h.xid);
            sw.send_xid(xid, &Message::Error(ErrorMsg::new(t, code, data)));
            return;
        }
    };
    match msg {
        Message::PacketIn(pi) => events.packet_in(sw, frame, &pi),
        Message::BarrierReply if h.xid & SETUP_XID_BIT != 0 => events.setup_barrier(sw, h.xid),
        Message::EchoRequest { data } => {
            sw.send_xid(h.xid, &Message::EchoReply { data });
        }
        // An echo the controller asked as a request (liveness) waits for
        // it; the keepalive's echoes have no pending entry.
        m @ Message::EchoReply { .. } => {
            sw.complete(h.xid, m);
        }
        Message::Hello { .. } => {}
        Message::PortStatus(ps) => events.port_status(sw, &ps),
        Message::FlowRemoved(fr) => events.flow_removed(sw, &fr),
        Message::Error(e) => {
            events.switch_error(sw, h.xid, &e);
            sw.complete(h.xid, Message::Error(e));
        }
        other => {
            let t = other.msg_type();
            if !sw.complete(h.xid, other) {
                debug!("unsolicited {t} xid {}", h.xid);
            }
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(sw: &Switch, mut wr: W, write_timeout: Duration) {
    let mut spare = BytesMut::with_capacity(64 << 10);
    loop {
        let closing = tokio::select! {
            _ = sw.wait_for_output() => false,
            _ = sw.closed().cancelled() => true,
        };
        sw.take_out(&mut spare);
        if !spare.is_empty() {
            // Once the connection is being closed (dropped, or shutdown), a
            // switch that does not read must not hold this task, and with it
            // `handle` and `Running::stop`, for a whole write timeout: a
            // write in progress is abandoned, the last flush gets a grace.
            let limit = if closing {
                write_timeout.min(CLOSING_FLUSH)
            } else {
                write_timeout
            };
            let written = tokio::select! {
                r = tokio::time::timeout(limit, wr.write_all(&spare)) => r,
                _ = sw.closed().cancelled(), if !closing => {
                    debug!("closing with {} bytes unwritten", spare.len());
                    break;
                }
            };
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    debug!("write failed: {e}");
                    sw.shut();
                    break;
                }
                Err(_) => {
                    warn!("switch has not read for {write_timeout:?}; dropping it");
                    sw.shut();
                    break;
                }
            }
        }
        if closing {
            break;
        }
    }
    let _ = wr.shutdown().await;
}
