//! OVSDB client (RFC 7047 JSON-RPC over `unix:` or `tcp:`) and the
//! `linux-htb` QoS/Queue rows Tierflow keeps on the ports of each bridge.
//!
//! One [`Ovsdb`] is one connection: a reader task splits the byte stream
//! into JSON values (an incomplete value just waits for more bytes),
//! answers the server's `echo` probes and hands each response to the
//! caller waiting on its id; a writer task owns the socket's write half.
//! Anything the server sends that is not JSON-RPC closes the connection
//! with a `Protocol` error; it never panics. A request that is not
//! answered in time also closes the connection, because a late answer to
//! a transaction could still commit and the caller must not mistake the
//! connection for healthy.
//!
//! Tierflow owns the QoS and Queue rows it marks with
//! `external_ids:tierflow=1` and `external_ids:tierflow-dpid=<16 hex>`.
//! Every change is computed from one consistent read of the tables and
//! written in one transaction, so a committed database never holds a
//! half-applied configuration; QoS and Queue are root tables (never
//! garbage-collected by OVSDB), so the same transaction deletes the rows
//! of ours that nothing references any more. Rows of others are never
//! deleted, only detached from the ports Tierflow takes over.
//!
//! [`OvsdbSet`] spreads the work over several endpoints (`--ovsdb` may
//! repeat) and reconnects lazily after a failure.

use bytes::{Buf, BytesMut};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// PRODUCT.md's default for `--ovsdb`.
pub const DEFAULT_ENDPOINT: &str = "unix:/var/run/openvswitch/db.sock";
/// Default deadline for connecting and for each request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The database every request goes to.
const DB: &str = "Open_vSwitch";
/// Port used by `tcp:HOST` without a port (the IANA OVSDB port).
const DEFAULT_TCP_PORT: u16 = 6640;
/// A message larger than this is not something an OVSDB server sends us;
/// refusing it bounds the memory a hostile peer can make us hold.
const MAX_MESSAGE: usize = 32 << 20;
const READ_CHUNK: usize = 64 << 10;
/// Requests queued for the writer; a full queue makes callers wait (and
/// their deadline still applies).
const OUTBOUND_QUEUE: usize = 64;
/// `linux-htb` accepts queue ids below this (OVS `HTB_N_QUEUES`).
pub const MAX_QUEUE_ID: u32 = 0xf000;
const QOS_TYPE: &str = "linux-htb";
const TAG_OWNER: &str = "tierflow";
const TAG_DPID: &str = "tierflow-dpid";

/// One queue of the `linux-htb` QoS Tierflow puts on every port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueSpec {
    /// The OpenFlow `set_queue` id (key of `QoS.queues`).
    pub queue_id: u32,
    /// Guaranteed rate (`other_config:min-rate`, stored in bit/s).
    pub min_kbps: u32,
    /// Ceiling (`other_config:max-rate`, stored in bit/s).
    pub max_kbps: u32,
    /// `Queue.dscp`: DSCP the datapath marks on packets of this queue.
    pub dscp: Option<u8>,
}

/// What one port carries now, as read back from OVSDB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortQueues {
    /// Port name (the bridge's own internal port is never listed).
    pub port: String,
    /// `QoS.type`, `None` when the port has no QoS.
    pub qos_type: Option<String>,
    /// The QoS row is Tierflow's (marked with its external_ids).
    pub tierflow: bool,
    /// `QoS.other_config:max-rate` in bit/s.
    pub max_rate_bps: Option<u64>,
    /// By queue id.
    pub queues: Vec<QueueState>,
}

/// One queue of a port's QoS, as read back from OVSDB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueState {
    /// Key in `QoS.queues` (the OpenFlow `set_queue` id).
    pub queue_id: u32,
    /// `other_config:min-rate` in bit/s (`None` when absent or not a number).
    pub min_rate_bps: Option<u64>,
    /// `other_config:max-rate` in bit/s.
    pub max_rate_bps: Option<u64>,
    /// `Queue.dscp`.
    pub dscp: Option<u8>,
}

/// Everything that can go wrong talking to OVSDB; messages name the
/// endpoint (and the datapath where one is involved).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OvsdbError {
    #[error("invalid OVSDB endpoint {endpoint:?}: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    #[error("cannot connect to OVSDB at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("OVSDB at {endpoint} did not answer {what} within {after:?}")]
    Timeout {
        endpoint: String,
        what: String,
        after: Duration,
    },
    #[error("connection to OVSDB at {endpoint} is closed: {reason}")]
    Disconnected { endpoint: String, reason: String },
    #[error("OVSDB at {endpoint} broke the protocol: {reason}")]
    Protocol { endpoint: String, reason: String },
    #[error("OVSDB at {endpoint} refused {method}: {error}")]
    Rpc {
        endpoint: String,
        method: String,
        error: String,
    },
    #[error("OVSDB transaction at {endpoint} failed: {error}")]
    Transaction { endpoint: String, error: String },
    #[error("no bridge with datapath id {dpid:016x} in OVSDB ({searched})")]
    NoBridge { dpid: u64, searched: String },
    #[error("invalid queues: {0}")]
    InvalidQueues(String),
    #[error("no OVSDB could be asked about datapath {dpid:016x}: {errors}")]
    Unavailable { dpid: u64, errors: String },
    #[error("no OVSDB endpoint is configured")]
    NoEndpoints,
}

impl OvsdbError {
    /// The endpoint could not be talked to (as opposed to answering "no"):
    /// worth trying another endpoint, and reconnecting later.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            OvsdbError::BadEndpoint { .. }
                | OvsdbError::Connect { .. }
                | OvsdbError::Timeout { .. }
                | OvsdbError::Disconnected { .. }
                | OvsdbError::Protocol { .. }
        )
    }
}

// ---------------------------------------------------------------------------
// Endpoints

#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

fn parse_endpoint(s: &str) -> Result<Endpoint, OvsdbError> {
    let bad = |reason: &str| OvsdbError::BadEndpoint {
        endpoint: s.to_string(),
        reason: reason.to_string(),
    };
    if let Some(path) = s.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(bad("unix: needs a socket path"));
        }
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if let Some(addr) = s.strip_prefix("tcp:") {
        if addr.is_empty() {
            return Err(bad("tcp: needs HOST:PORT"));
        }
        // `tcp:[v6]:port`, `tcp:host:port`, or a bare host/`[v6]` taking
        // the OVSDB port.
        let has_port = match addr.rfind(']') {
            Some(close) => addr[close..].contains(':'),
            None => addr.contains(':'),
        };
        if addr.contains(char::is_whitespace) {
            return Err(bad("spaces in the address"));
        }
        return Ok(Endpoint::Tcp(if has_port {
            addr.to_string()
        } else {
            format!("{addr}:{DEFAULT_TCP_PORT}")
        }));
    }
    if s.starts_with("ssl:") {
        return Err(bad(
            "ssl: endpoints are not supported; use unix:PATH or tcp:HOST:PORT",
        ));
    }
    Err(bad("expected unix:PATH or tcp:HOST:PORT"))
}

// ---------------------------------------------------------------------------
// Connection

/// A response: `Ok(result)` or `Err(error)` as the server sent them.
type Reply = Result<Value, Value>;

#[derive(Debug)]
struct Shared {
    endpoint: String,
    state: parking_lot::Mutex<State>,
    /// Cancelled once the connection is unusable; stops both tasks.
    closed: CancellationToken,
}

#[derive(Debug, Default)]
struct State {
    /// Why the connection closed; `true` when the server broke the protocol.
    close_reason: Option<(bool, String)>,
    pending: HashMap<u64, oneshot::Sender<Reply>>,
}

impl Shared {
    /// Marks the connection dead and fails every waiting request (their
    /// senders drop); the first reason given is the one reported.
    fn close(&self, reason: impl Into<String>) {
        self.close_as(false, reason.into());
    }

    fn close_as(&self, protocol: bool, reason: String) {
        let mut st = self.state.lock();
        if st.close_reason.is_none() {
            debug!(endpoint = %self.endpoint, "OVSDB connection closed: {reason}");
            st.close_reason = Some((protocol, reason));
        }
        st.pending.clear();
        drop(st);
        self.closed.cancel();
    }

    /// The error for a request the closed connection could not answer.
    fn disconnected(&self) -> OvsdbError {
        let (protocol, reason) = self
            .state
            .lock()
            .close_reason
            .clone()
            .unwrap_or_else(|| (false, "closed".to_string()));
        let endpoint = self.endpoint.clone();
        if protocol {
            OvsdbError::Protocol { endpoint, reason }
        } else {
            OvsdbError::Disconnected { endpoint, reason }
        }
    }
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    out: mpsc::Sender<Vec<u8>>,
    next_id: AtomicU64,
    timeout: Duration,
    /// Serialises read-modify-write sequences issued through this handle,
    /// so two concurrent `apply_queues` cannot both insert a QoS row.
    txn_lock: tokio::sync::Mutex<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.close("connection dropped by Tierflow");
    }
}

/// One OVSDB connection. Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct Ovsdb {
    inner: Arc<Inner>,
}

impl Ovsdb {
    /// Connects to `unix:PATH` or `tcp:HOST:PORT` and checks that the
    /// server holds the `Open_vSwitch` database. `timeout` bounds the
    /// connect and every later request.
    pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Ovsdb, OvsdbError> {
        let ep = parse_endpoint(endpoint)?;
        let connect_err = |source| OvsdbError::Connect {
            endpoint: endpoint.to_string(),
            source,
        };
        let too_slow = || OvsdbError::Timeout {
            endpoint: endpoint.to_string(),
            what: "the connection".to_string(),
            after: timeout,
        };
        let db = match ep {
            Endpoint::Unix(path) => {
                let s = tokio::time::timeout(timeout, tokio::net::UnixStream::connect(&path))
                    .await
                    .map_err(|_| too_slow())?
                    .map_err(connect_err)?;
                let (rd, wr) = s.into_split();
                Ovsdb::start(endpoint, rd, wr, timeout)
            }
            Endpoint::Tcp(addr) => {
                let s = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr))
                    .await
                    .map_err(|_| too_slow())?
                    .map_err(connect_err)?;
                let _ = s.set_nodelay(true);
                let (rd, wr) = s.into_split();
                Ovsdb::start(endpoint, rd, wr, timeout)
            }
        };
        let dbs = db.call("list_dbs", json!([])).await?;
        let names: Vec<&str> = dbs
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .ok_or_else(|| db.protocol(format!("list_dbs answered {}", brief(&dbs))))?;
        if !names.contains(&DB) {
            let err = db.protocol(format!(
                "the server has no {DB} database (it has {names:?})"
            ));
            db.inner.shared.close("no Open_vSwitch database");
            return Err(err);
        }
        Ok(db)
    }

    fn start<R, W>(endpoint: &str, rd: R, wr: W, timeout: Duration) -> Ovsdb
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            endpoint: endpoint.to_string(),
            state: parking_lot::Mutex::new(State::default()),
            closed: CancellationToken::new(),
        });
        let (out, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
        tokio::spawn(write_loop(wr, out_rx, shared.clone()));
        tokio::spawn(read_loop(rd, shared.clone(), out.clone()));
        Ovsdb {
            inner: Arc::new(Inner {
                shared,
                out,
                next_id: AtomicU64::new(1),
                timeout,
                txn_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The endpoint this connection was made to.
    pub fn endpoint(&self) -> &str {
        &self.inner.shared.endpoint
    }

    /// False once the server closed the connection, sent garbage, or left
    /// a request unanswered past the deadline.
    pub fn is_connected(&self) -> bool {
        !self.inner.shared.closed.is_cancelled()
    }

    fn protocol(&self, reason: impl Into<String>) -> OvsdbError {
        OvsdbError::Protocol {
            endpoint: self.endpoint().to_string(),
            reason: reason.into(),
        }
    }

    /// One JSON-RPC request; the deadline covers queueing and the answer.
    async fn call(&self, method: &str, params: Value) -> Result<Value, OvsdbError> {
        let inner = &self.inner;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut st = inner.shared.state.lock();
            if st.close_reason.is_some() {
                drop(st);
                return Err(inner.shared.disconnected());
            }
            st.pending.insert(id, tx);
        }
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        let exchange = async {
            inner
                .out
                .send(msg.into_bytes())
                .await
                .map_err(|_| inner.shared.disconnected())?;
            rx.await.map_err(|_| inner.shared.disconnected())
        };
        match tokio::time::timeout(inner.timeout, exchange).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(error))) => Err(OvsdbError::Rpc {
                endpoint: self.endpoint().to_string(),
                method: method.to_string(),
                error: brief(&error),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                inner
                    .shared
                    .close(format!("no answer to {method} within {:?}", inner.timeout));
                Err(OvsdbError::Timeout {
                    endpoint: self.endpoint().to_string(),
                    what: method.to_string(),
                    after: inner.timeout,
                })
            }
        }
    }

    /// Runs `ops` as one transaction; the per-operation results, or the
    /// first error the server reported for an operation or the commit.
    async fn transact(&self, ops: Vec<Value>) -> Result<Vec<Value>, OvsdbError> {
        let n_ops = ops.len();
        let mut params = Vec::with_capacity(n_ops + 1);
        params.push(Value::from(DB));
        params.extend(ops);
        let result = self.call("transact", Value::Array(params)).await?;
        let Value::Array(results) = result else {
            return Err(self.protocol(format!("transact answered {}", brief(&result))));
        };
        // RFC 7047 §4.1.3: a failed operation carries "error" (later ones
        // are null); a failed commit appends one more element with "error".
        for r in &results {
            if let Some(err) = r.get("error").filter(|e| !e.is_null()) {
                let mut error = err.as_str().map_or_else(|| brief(err), str::to_string);
                if let Some(d) = r.get("details").and_then(Value::as_str) {
                    error = format!("{error}: {d}");
                }
                return Err(OvsdbError::Transaction {
                    endpoint: self.endpoint().to_string(),
                    error,
                });
            }
        }
        if results.len() < n_ops {
            return Err(self.protocol(format!(
                "transact answered {} results for {n_ops} operations",
                results.len()
            )));
        }
        Ok(results)
    }

    async fn snapshot(&self) -> Result<Snapshot, OvsdbError> {
        let results = self.transact(Snapshot::select_ops()).await?;
        Snapshot::parse(&results).map_err(|r| self.protocol(r))
    }

    /// Finds the Bridge whose `datapath_id` column (16 hex digits, as OVS
    /// reports it) equals `dpid`. `None` if this OVSDB has no such bridge.
    pub async fn bridge_for_dpid(&self, dpid: u64) -> Result<Option<String>, OvsdbError> {
        let results = self
            .transact(vec![select("Bridge", &["name", "datapath_id"])])
            .await?;
        let rows = rows_of(&results, 0).map_err(|r| self.protocol(r))?;
        let mut found = None;
        for row in rows {
            let b = BridgeRow::parse(row, false).map_err(|r| self.protocol(r))?;
            if b.dpid == Some(dpid) && found.as_ref().is_none_or(|f: &String| b.name < *f) {
                found = Some(b.name);
            }
        }
        Ok(found)
    }

    /// Makes every port of the bridge with datapath id `dpid` (except the
    /// bridge's own internal port) carry one `linux-htb` QoS whose queues
    /// are exactly `queues`, in one transaction; returns how many ports
    /// carry it. Already-correct rows are left alone (nothing is written
    /// when everything matches). A foreign QoS on a port is replaced but
    /// its row is kept. Empty `queues` (or a bridge without other ports)
    /// removes Tierflow's QoS instead and returns 0.
    pub async fn apply_queues(&self, dpid: u64, queues: &[QueueSpec]) -> Result<usize, OvsdbError> {
        validate(queues)?;
        let _txn = self.inner.txn_lock.lock().await;
        let snap = self.snapshot().await?;
        let plan = plan_apply(&snap, dpid, queues).ok_or_else(|| self.no_bridge(dpid))?;
        if !plan.ops.is_empty() {
            self.transact(plan.ops).await?;
        }
        Ok(plan.configured)
    }

    /// Removes Tierflow's QoS from the bridge's ports (and from any port
    /// carrying a Tierflow QoS made for `dpid`) and deletes the rows of
    /// ours nothing references. Nothing to do is not an error.
    pub async fn clear_queues(&self, dpid: u64) -> Result<(), OvsdbError> {
        self.clear(dpid).await.map(drop)
    }

    /// `clear_queues`, telling whether this OVSDB has the bridge.
    async fn clear(&self, dpid: u64) -> Result<bool, OvsdbError> {
        let _txn = self.inner.txn_lock.lock().await;
        let snap = self.snapshot().await?;
        let ops = plan_clear(&snap, dpid);
        if !ops.is_empty() {
            self.transact(ops).await?;
        }
        Ok(snap.bridge(dpid).is_some())
    }

    /// What the bridge's ports (except its own internal port) carry now,
    /// by port name; `NoBridge` if this OVSDB has no such bridge.
    pub async fn queues(&self, dpid: u64) -> Result<Vec<PortQueues>, OvsdbError> {
        let snap = self.snapshot().await?;
        port_queues(&snap, dpid).ok_or_else(|| self.no_bridge(dpid))
    }

    fn no_bridge(&self, dpid: u64) -> OvsdbError {
        OvsdbError::NoBridge {
            dpid,
            searched: self.endpoint().to_string(),
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    loop {
        let msg = tokio::select! {
            _ = shared.closed.cancelled() => break,
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
        };
        let written = tokio::select! {
            _ = shared.closed.cancelled() => break,
            r = wr.write_all(&msg) => r,
        };
        if let Err(e) = written {
            shared.close(format!("write failed: {e}"));
            break;
        }
    }
    let _ = wr.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    shared: Arc<Shared>,
    out: mpsc::Sender<Vec<u8>>,
) {
    let mut framer = Framer::default();
    let reason = loop {
        framer.buf.reserve(READ_CHUNK);
        let n = tokio::select! {
            _ = shared.closed.cancelled() => return,
            n = rd.read_buf(&mut framer.buf) => n,
        };
        match n {
            Ok(0) => break (false, "the server closed the connection".to_string()),
            Err(e) => break (false, format!("read failed: {e}")),
            Ok(_) => {}
        }
        let values = match framer.values() {
            Ok(v) => v,
            Err(e) => break (true, format!("invalid JSON: {e}")),
        };
        if framer.buf.len() > MAX_MESSAGE {
            break (true, format!("a message longer than {MAX_MESSAGE} bytes"));
        }
        if let Some(reason) = values
            .into_iter()
            .find_map(|v| dispatch(v, &shared, &out).err())
        {
            break (true, reason);
        }
    };
    let (protocol, reason) = reason;
    if !shared.closed.is_cancelled() {
        warn!(endpoint = %shared.endpoint, "OVSDB connection lost: {reason}");
    }
    shared.close_as(protocol, reason);
}

/// Splits the server's byte stream into JSON values. A cheap scan of each
/// new byte (nesting depth, strings) tells when a top-level value may have
/// ended, so the parser runs once per complete message rather than on
/// every read of a large one (which would be quadratic).
#[derive(Debug, Default)]
struct Framer {
    buf: BytesMut,
    scanned: usize,
    depth: usize,
    in_str: bool,
    escaped: bool,
    /// A value may have ended (or something that is not an object or
    /// array started): worth running the parser.
    ready: bool,
}

impl Framer {
    fn scan(&mut self) {
        for &b in &self.buf[self.scanned..] {
            if self.in_str {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_str = false;
                }
                continue;
            }
            match b {
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 1 => self.depth -= 1,
                b'}' | b']' => {
                    self.depth = 0;
                    self.ready = true;
                }
                b'"' => {
                    self.in_str = true;
                    self.ready |= self.depth == 0;
                }
                b' ' | b'\t' | b'\n' | b'\r' => {}
                _ => self.ready |= self.depth == 0,
            }
        }
        self.scanned = self.buf.len();
    }

    /// The complete values received so far; an incomplete one stays.
    fn values(&mut self) -> Result<Vec<Value>, serde_json::Error> {
        self.scan();
        if !self.ready {
            return Ok(Vec::new());
        }
        let (values, consumed) = split_values(&self.buf)?;
        // Everything complete was consumed, so the scan state now
        // describes the incomplete tail.
        self.buf.advance(consumed);
        self.scanned -= consumed;
        self.ready = false;
        Ok(values)
    }
}

/// The complete JSON values at the front of `buf` and how many bytes they
/// take; an incomplete trailing value is left for the next read.
fn split_values(buf: &[u8]) -> Result<(Vec<Value>, usize), serde_json::Error> {
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    let consumed = loop {
        match stream.next() {
            None => break stream.byte_offset(),
            Some(Ok(v)) => values.push(v),
            // serde_json documents that after an EOF error the unparsed
            // rest starts at byte_offset().
            Some(Err(e)) if e.is_eof() => break stream.byte_offset(),
            Some(Err(e)) => return Err(e),
        }
    };
    Ok((values, consumed))
}

/// Handles one message from the server; `Err` names a protocol breach.
fn dispatch(msg: Value, shared: &Shared, out: &mpsc::Sender<Vec<u8>>) -> Result<(), String> {
    let Value::Object(mut m) = msg else {
        return Err(format!(
            "a message that is not a JSON object: {}",
            brief(&msg)
        ));
    };
    if let Some(method) = m.get("method") {
        let method = method
            .as_str()
            .ok_or_else(|| format!("a request whose method is {}", brief(method)))?
            .to_string();
        let id = m.remove("id").unwrap_or(Value::Null);
        if id.is_null() {
            // Notifications (`update`, `locked`, ...): nothing subscribed.
            return Ok(());
        }
        let reply = if method == "echo" {
            let params = m.remove("params").unwrap_or_else(|| json!([]));
            json!({"id": id, "result": params, "error": null})
        } else {
            json!({"id": id, "result": null, "error": format!("unknown method {method}")})
        };
        // A full outbound queue means we are already busy talking; the
        // server will probe again.
        let _ = out.try_send(reply.to_string().into_bytes());
        return Ok(());
    }
    if !m.contains_key("result") && !m.contains_key("error") {
        return Err(format!(
            "a message that is neither request nor response: {}",
            brief(&Value::Object(m))
        ));
    }
    let Some(id) = m.get("id").and_then(Value::as_u64) else {
        debug!(endpoint = %shared.endpoint, "response with an id we never sent, ignored");
        return Ok(());
    };
    let error = m.remove("error").unwrap_or(Value::Null);
    let reply = if error.is_null() {
        Ok(m.remove("result").unwrap_or(Value::Null))
    } else {
        Err(error)
    };
    let waiter = shared.state.lock().pending.remove(&id);
    match waiter {
        Some(tx) => {
            let _ = tx.send(reply);
        }
        None => debug!(endpoint = %shared.endpoint, id, "response nobody waits for, ignored"),
    }
    Ok(())
}

/// A short rendering of a server value for error messages.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.len() <= 200 {
        return s;
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

// ---------------------------------------------------------------------------
// OVSDB values (RFC 7047 §5.1)

fn str_map_json(m: &BTreeMap<String, String>) -> Value {
    json!([
        "map",
        m.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
    ])
}

fn uuid_json(u: &str) -> Value {
    json!(["uuid", u])
}

fn empty_set() -> Value {
    json!(["set", []])
}

/// The atoms of a set (a lone atom is a one-element set).
fn set_atoms(v: &Value) -> Result<Vec<&Value>, String> {
    if let Some([tag, elems]) = v.as_array().map(Vec::as_slice)
        && tag == "set"
    {
        return elems
            .as_array()
            .map(|a| a.iter().collect())
            .ok_or_else(|| format!("malformed set {}", brief(v)));
    }
    Ok(vec![v])
}

fn map_pairs(v: &Value) -> Result<Vec<(&Value, &Value)>, String> {
    let bad = || format!("malformed map {}", brief(v));
    let Some([tag, pairs]) = v.as_array().map(Vec::as_slice) else {
        return Err(bad());
    };
    if tag != "map" {
        return Err(bad());
    }
    pairs
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|p| match p.as_array().map(Vec::as_slice) {
            Some([k, v]) => Ok((k, v)),
            _ => Err(bad()),
        })
        .collect()
}

fn uuid_of(v: &Value) -> Result<String, String> {
    match v.as_array().map(Vec::as_slice) {
        Some([tag, Value::String(u)]) if tag == "uuid" => Ok(u.clone()),
        _ => Err(format!("expected a uuid, got {}", brief(v))),
    }
}

fn string_map(v: &Value) -> Result<BTreeMap<String, String>, String> {
    map_pairs(v)?
        .into_iter()
        .map(|(k, val)| match (k.as_str(), val.as_str()) {
            (Some(k), Some(val)) => Ok((k.to_string(), val.to_string())),
            _ => Err(format!("expected a string map, got {}", brief(v))),
        })
        .collect()
}

fn optional<'a, T>(
    v: &'a Value,
    what: &str,
    conv: impl Fn(&'a Value) -> Option<T>,
) -> Result<Option<T>, String> {
    match set_atoms(v)?.as_slice() {
        [] => Ok(None),
        [a] => conv(a)
            .map(Some)
            .ok_or_else(|| format!("bad {what}: {}", brief(v))),
        _ => Err(format!("{what} has several values: {}", brief(v))),
    }
}

fn column<'a>(row: &'a Map<String, Value>, table: &str, name: &str) -> Result<&'a Value, String> {
    row.get(name)
        .ok_or_else(|| format!("{table} row without column {name}"))
}

fn column_str(row: &Map<String, Value>, table: &str, name: &str) -> Result<String, String> {
    column(row, table, name)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{table}.{name} is not a string"))
}

fn select(table: &str, columns: &[&str]) -> Value {
    json!({"op": "select", "table": table, "where": [], "columns": columns})
}

fn where_uuid(u: &str) -> Value {
    json!([["_uuid", "==", uuid_json(u)]])
}

fn rows_of(results: &[Value], i: usize) -> Result<&Vec<Value>, String> {
    results
        .get(i)
        .and_then(|r| r.get("rows"))
        .and_then(Value::as_array)
        .ok_or_else(|| format!("select result {i} has no rows"))
}

fn as_row<'a>(v: &'a Value, table: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{table} row is not an object"))
}

// ---------------------------------------------------------------------------
// Snapshot of the tables Tierflow touches

fn dpid_hex(dpid: u64) -> String {
    format!("{dpid:016x}")
}

/// Who marked a row: `Some(dpid)` inside is Tierflow's tag for that
/// datapath; `Some(None)` is Tierflow's with an unreadable dpid tag.
fn owner(external_ids: &BTreeMap<String, String>) -> Option<Option<u64>> {
    (external_ids.get(TAG_OWNER).map(String::as_str) == Some("1")).then(|| {
        external_ids
            .get(TAG_DPID)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
    })
}

fn owner_tag(dpid: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_OWNER.to_string(), "1".to_string()),
        (TAG_DPID.to_string(), dpid_hex(dpid)),
    ])
}

#[derive(Debug, Clone)]
struct BridgeRow {
    name: String,
    dpid: Option<u64>,
    ports: Vec<String>,
}

impl BridgeRow {
    fn parse(row: &Value, with_ports: bool) -> Result<BridgeRow, String> {
        let row = as_row(row, "Bridge")?;
        let dpid = optional(
            column(row, "Bridge", "datapath_id")?,
            "datapath_id",
            Value::as_str,
        )?
        .and_then(|h| u64::from_str_radix(h, 16).ok());
        let ports = if with_ports {
            set_atoms(column(row, "Bridge", "ports")?)?
                .into_iter()
                .map(uuid_of)
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(BridgeRow {
            name: column_str(row, "Bridge", "name")?,
            dpid,
            ports,
        })
    }
}

#[derive(Debug, Clone)]
struct PortRow {
    uuid: String,
    name: String,
    qos: Option<String>,
}

#[derive(Debug, Clone)]
struct QosRow {
    uuid: String,
    kind: String,
    other_config: BTreeMap<String, String>,
    external_ids: BTreeMap<String, String>,
    /// Queue id to Queue row uuid.
    queues: BTreeMap<u32, String>,
}

#[derive(Debug, Clone)]
struct QueueRow {
    uuid: String,
    dscp: Option<u8>,
    other_config: BTreeMap<String, String>,
    external_ids: BTreeMap<String, String>,
}

/// One consistent read (a single transaction) of Bridge, Port, QoS, Queue.
#[derive(Debug, Default)]
struct Snapshot {
    bridges: Vec<BridgeRow>,
    ports: HashMap<String, PortRow>,
    qos: BTreeMap<String, QosRow>,
    queues: HashMap<String, QueueRow>,
}

impl Snapshot {
    fn select_ops() -> Vec<Value> {
        vec![
            select("Bridge", &["name", "datapath_id", "ports"]),
            select("Port", &["_uuid", "name", "qos"]),
            select(
                "QoS",
                &["_uuid", "type", "other_config", "external_ids", "queues"],
            ),
            select("Queue", &["_uuid", "dscp", "other_config", "external_ids"]),
        ]
    }

    fn parse(results: &[Value]) -> Result<Snapshot, String> {
        let mut snap = Snapshot::default();
        for row in rows_of(results, 0)? {
            snap.bridges.push(BridgeRow::parse(row, true)?);
        }
        // Deterministic choice when two bridges report the same dpid.
        snap.bridges.sort_by(|a, b| a.name.cmp(&b.name));
        for row in rows_of(results, 1)? {
            let row = as_row(row, "Port")?;
            let qos = optional(column(row, "Port", "qos")?, "Port.qos", |v| uuid_of(v).ok())?;
            let uuid = uuid_of(column(row, "Port", "_uuid")?)?;
            let name = column_str(row, "Port", "name")?;
            snap.ports.insert(uuid.clone(), PortRow { uuid, name, qos });
        }
        for row in rows_of(results, 2)? {
            let row = as_row(row, "QoS")?;
            let uuid = uuid_of(column(row, "QoS", "_uuid")?)?;
            let queues = map_pairs(column(row, "QoS", "queues")?)?
                .into_iter()
                .map(|(k, v)| {
                    let id = k
                        .as_u64()
                        .and_then(|k| u32::try_from(k).ok())
                        .ok_or_else(|| format!("QoS queue key {}", brief(k)))?;
                    Ok((id, uuid_of(v)?))
                })
                .collect::<Result<_, String>>()?;
            let q = QosRow {
                uuid: uuid.clone(),
                kind: column_str(row, "QoS", "type")?,
                other_config: string_map(column(row, "QoS", "other_config")?)?,
                external_ids: string_map(column(row, "QoS", "external_ids")?)?,
                queues,
            };
            snap.qos.insert(uuid, q);
        }
        for row in rows_of(results, 3)? {
            let row = as_row(row, "Queue")?;
            let uuid = uuid_of(column(row, "Queue", "_uuid")?)?;
            let dscp = optional(column(row, "Queue", "dscp")?, "Queue.dscp", |v| {
                v.as_u64().and_then(|d| u8::try_from(d).ok())
            })?;
            let q = QueueRow {
                uuid: uuid.clone(),
                dscp,
                other_config: string_map(column(row, "Queue", "other_config")?)?,
                external_ids: string_map(column(row, "Queue", "external_ids")?)?,
            };
            snap.queues.insert(uuid, q);
        }
        Ok(snap)
    }

    fn bridge(&self, dpid: u64) -> Option<&BridgeRow> {
        self.bridges.iter().find(|b| b.dpid == Some(dpid))
    }

    /// The bridge's ports other than its own internal port, by name.
    fn target_ports(&self, bridge: &BridgeRow) -> Vec<&PortRow> {
        let mut ports: Vec<&PortRow> = bridge
            .ports
            .iter()
            .filter_map(|u| self.ports.get(u))
            .filter(|p| p.name != bridge.name)
            .collect();
        ports.sort_by(|a, b| a.name.cmp(&b.name));
        ports
    }

    fn qos_owner(&self, uuid: &str) -> Option<Option<u64>> {
        self.qos.get(uuid).and_then(|q| owner(&q.external_ids))
    }
}

// ---------------------------------------------------------------------------
// Planning: snapshot + wish -> operations of one transaction

fn validate(queues: &[QueueSpec]) -> Result<(), OvsdbError> {
    let mut seen = HashSet::new();
    for q in queues {
        let bad = |why: String| {
            Err(OvsdbError::InvalidQueues(format!(
                "queue {}: {why}",
                q.queue_id
            )))
        };
        if !seen.insert(q.queue_id) {
            return bad("listed twice".into());
        }
        if q.queue_id >= MAX_QUEUE_ID {
            return bad(format!("linux-htb queue ids are below {MAX_QUEUE_ID}"));
        }
        if q.max_kbps == 0 {
            return bad("max_kbps must be positive".into());
        }
        if q.min_kbps > q.max_kbps {
            return bad(format!(
                "min_kbps {} exceeds max_kbps {}",
                q.min_kbps, q.max_kbps
            ));
        }
        if let Some(d) = q.dscp
            && d > 63
        {
            return bad(format!("dscp {d} is not 0..=63"));
        }
    }
    Ok(())
}

fn bps(kbps: u32) -> String {
    (u64::from(kbps) * 1000).to_string()
}

fn queue_columns(
    q: &QueueSpec,
    tag: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Value) {
    let other = BTreeMap::from([
        ("min-rate".to_string(), bps(q.min_kbps)),
        ("max-rate".to_string(), bps(q.max_kbps)),
    ]);
    let row = json!({
        "other_config": str_map_json(&other),
        "dscp": q.dscp.map_or_else(empty_set, Value::from),
        "external_ids": str_map_json(tag),
    });
    (other, row)
}

#[derive(Debug)]
struct Plan {
    ops: Vec<Value>,
    configured: usize,
}

/// `None` when no bridge has `dpid`.
fn plan_apply(snap: &Snapshot, dpid: u64, queues: &[QueueSpec]) -> Option<Plan> {
    let bridge = snap.bridge(dpid)?;
    let targets = snap.target_ports(bridge);
    if queues.is_empty() || targets.is_empty() {
        return Some(Plan {
            ops: plan_clear(snap, dpid),
            configured: 0,
        });
    }
    let tag = owner_tag(dpid);
    let mut inserts = Vec::new();
    let mut updates = Vec::new();

    // Reuse one QoS of ours for this dpid, preferring one already on the
    // bridge, so re-applying changes as little as possible.
    let target_qos: HashSet<&str> = targets.iter().filter_map(|p| p.qos.as_deref()).collect();
    let kept = snap
        .qos
        .values()
        .filter(|q| owner(&q.external_ids) == Some(Some(dpid)))
        .min_by_key(|q| (!target_qos.contains(q.uuid.as_str()), q.uuid.as_str()));

    let mut sorted: Vec<&QueueSpec> = queues.iter().collect();
    sorted.sort_by_key(|q| q.queue_id);
    let mut new_map: Vec<(u32, Value)> = Vec::new();
    let mut kept_queue_uuids: HashSet<String> = HashSet::new();
    let mut map_unchanged = kept.is_some_and(|k| k.queues.len() == sorted.len());
    for q in sorted {
        let (other, row) = queue_columns(q, &tag);
        let existing = kept
            .and_then(|k| k.queues.get(&q.queue_id))
            .and_then(|u| snap.queues.get(u))
            .filter(|r| owner(&r.external_ids) == Some(Some(dpid)));
        match existing {
            Some(r) => {
                if r.other_config != other || r.dscp != q.dscp || r.external_ids != tag {
                    updates.push(json!({"op": "update", "table": "Queue", "where": where_uuid(&r.uuid), "row": row}));
                }
                kept_queue_uuids.insert(r.uuid.clone());
                new_map.push((q.queue_id, uuid_json(&r.uuid)));
            }
            None => {
                let name = format!("queue{}", q.queue_id);
                inserts
                    .push(json!({"op": "insert", "table": "Queue", "row": row, "uuid-name": name}));
                new_map.push((q.queue_id, json!(["named-uuid", name])));
                map_unchanged = false;
            }
        }
    }
    // No max-rate on the QoS itself: HTB then takes the link speed as the
    // port's ceiling, so traffic outside every tier (queue 0 unless a tier
    // claims it) is not capped at the largest tier's rate.
    let qos_other: BTreeMap<String, String> = BTreeMap::new();
    let qos_row = json!({
        "type": QOS_TYPE,
        "other_config": str_map_json(&qos_other),
        "external_ids": str_map_json(&tag),
        "queues": ["map", new_map.iter().map(|(id, r)| json!([id, r])).collect::<Vec<_>>()],
    });
    let qos_ref = match kept {
        Some(k) => {
            if !map_unchanged
                || k.kind != QOS_TYPE
                || k.other_config != qos_other
                || k.external_ids != tag
            {
                updates.push(json!({"op": "update", "table": "QoS", "where": where_uuid(&k.uuid), "row": qos_row}));
            }
            uuid_json(&k.uuid)
        }
        None => {
            inserts
                .push(json!({"op": "insert", "table": "QoS", "row": qos_row, "uuid-name": "qos"}));
            json!(["named-uuid", "qos"])
        }
    };

    // Ports: the targets get our QoS; the bridge's own port loses any
    // Tierflow QoS. `after` is what each port references once committed.
    let kept_uuid = kept.map(|k| k.uuid.as_str());
    let mut after: HashMap<&str, Option<&str>> = HashMap::new();
    for p in &targets {
        if kept_uuid.is_none() || p.qos.as_deref() != kept_uuid {
            updates.push(port_qos_update(&p.uuid, qos_ref.clone()));
        }
        after.insert(&p.uuid, kept_uuid);
    }
    for p in bridge.ports.iter().filter_map(|u| snap.ports.get(u)) {
        if p.name == bridge.name
            && let Some(q) = &p.qos
            && snap.qos_owner(q).is_some()
        {
            updates.push(port_qos_update(&p.uuid, empty_set()));
            after.insert(&p.uuid, None);
        }
    }
    let kept_queues = kept.map(|k| (k.uuid.as_str(), kept_queue_uuids));
    let deletes = sweep(snap, &after, kept_queues);

    let mut ops = inserts;
    ops.extend(updates);
    ops.extend(deletes);
    Some(Plan {
        ops,
        configured: targets.len(),
    })
}

fn port_qos_update(port: &str, qos: Value) -> Value {
    json!({"op": "update", "table": "Port", "where": where_uuid(port), "row": {"qos": qos}})
}

/// Detaches Tierflow's QoS from the ports of the bridge with `dpid` and
/// from every port carrying a Tierflow QoS made for `dpid`, then sweeps.
fn plan_clear(snap: &Snapshot, dpid: u64) -> Vec<Value> {
    let bridge_ports: HashSet<&str> = snap
        .bridge(dpid)
        .map(|b| b.ports.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut ops = Vec::new();
    let mut after: HashMap<&str, Option<&str>> = HashMap::new();
    let mut ports: Vec<&PortRow> = snap.ports.values().collect();
    ports.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    for p in ports {
        let Some(q) = &p.qos else { continue };
        let clear = match snap.qos_owner(q) {
            Some(Some(d)) if d == dpid => true,
            Some(_) => bridge_ports.contains(p.uuid.as_str()),
            None => false,
        };
        if clear {
            ops.push(port_qos_update(&p.uuid, empty_set()));
            after.insert(&p.uuid, None);
        }
    }
    ops.extend(sweep(snap, &after, None));
    ops
}

/// Deletes of every Tierflow QoS no port will reference and every
/// Tierflow Queue no surviving QoS will reference, once the transaction
/// has changed the ports in `after` and (if given) set the kept QoS's
/// queues to the given rows. Rows of others are never deleted; rows of
/// ours still referenced by others are kept, so the commit cannot fail on
/// referential integrity.
fn sweep(
    snap: &Snapshot,
    after: &HashMap<&str, Option<&str>>,
    kept: Option<(&str, HashSet<String>)>,
) -> Vec<Value> {
    let referenced_qos: HashSet<&str> = snap
        .ports
        .values()
        .filter_map(|p| match after.get(p.uuid.as_str()) {
            Some(a) => *a,
            None => p.qos.as_deref(),
        })
        .collect();
    let mut ops = Vec::new();
    let mut referenced_queues: HashSet<&str> = HashSet::new();
    for q in snap.qos.values() {
        let is_kept = kept.as_ref().is_some_and(|(k, _)| *k == q.uuid);
        if owner(&q.external_ids).is_some() && !is_kept && !referenced_qos.contains(q.uuid.as_str())
        {
            ops.push(json!({"op": "delete", "table": "QoS", "where": where_uuid(&q.uuid)}));
            continue;
        }
        match (&kept, is_kept) {
            (Some((_, qs)), true) => referenced_queues.extend(qs.iter().map(String::as_str)),
            _ => referenced_queues.extend(q.queues.values().map(String::as_str)),
        }
    }
    let mut queues: Vec<&QueueRow> = snap.queues.values().collect();
    queues.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    for q in queues {
        if owner(&q.external_ids).is_some() && !referenced_queues.contains(q.uuid.as_str()) {
            ops.push(json!({"op": "delete", "table": "Queue", "where": where_uuid(&q.uuid)}));
        }
    }
    ops
}

fn rate(m: &BTreeMap<String, String>, key: &str) -> Option<u64> {
    m.get(key).and_then(|v| v.trim().parse().ok())
}

fn port_queues(snap: &Snapshot, dpid: u64) -> Option<Vec<PortQueues>> {
    let bridge = snap.bridge(dpid)?;
    let ports = snap.target_ports(bridge);
    Some(
        ports
            .into_iter()
            .map(|p| {
                let qos = p.qos.as_ref().and_then(|u| snap.qos.get(u));
                PortQueues {
                    port: p.name.clone(),
                    qos_type: qos.map(|q| q.kind.clone()),
                    tierflow: qos.is_some_and(|q| owner(&q.external_ids).is_some()),
                    max_rate_bps: qos.and_then(|q| rate(&q.other_config, "max-rate")),
                    queues: qos
                        .map(|q| {
                            q.queues
                                .iter()
                                .map(|(id, u)| {
                                    let row = snap.queues.get(u);
                                    QueueState {
                                        queue_id: *id,
                                        min_rate_bps: row
                                            .and_then(|r| rate(&r.other_config, "min-rate")),
                                        max_rate_bps: row
                                            .and_then(|r| rate(&r.other_config, "max-rate")),
                                        dscp: row.and_then(|r| r.dscp),
                                    }
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Several endpoints

/// The OVSDB servers given with `--ovsdb`; each call goes to the one that
/// has the bridge. Connections are made on first use and remade on the
/// next call after they fail.
#[derive(Debug)]
pub struct OvsdbSet {
    timeout: Duration,
    slots: Vec<Slot>,
}

#[derive(Debug)]
struct Slot {
    endpoint: String,
    conn: parking_lot::Mutex<Option<Ovsdb>>,
    /// One connection attempt at a time per endpoint.
    connecting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn live(&self) -> Option<Ovsdb> {
        self.conn
            .lock()
            .as_ref()
            .filter(|c| c.is_connected())
            .cloned()
    }

    async fn get(&self, timeout: Duration) -> Result<Ovsdb, OvsdbError> {
        if let Some(c) = self.live() {
            return Ok(c);
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.live() {
            return Ok(c);
        }
        let c = Ovsdb::connect(&self.endpoint, timeout).await?;
        *self.conn.lock() = Some(c.clone());
        Ok(c)
    }
}

impl OvsdbSet {
    pub fn new(endpoints: Vec<String>, timeout: Duration) -> OvsdbSet {
        OvsdbSet {
            timeout,
            slots: endpoints
                .into_iter()
                .map(|endpoint| Slot {
                    endpoint,
                    conn: parking_lot::Mutex::new(None),
                    connecting: tokio::sync::Mutex::new(()),
                })
                .collect(),
        }
    }

    /// Every endpoint and whether it is connected now (no I/O).
    pub fn status(&self) -> Vec<(String, bool)> {
        self.slots
            .iter()
            .map(|s| (s.endpoint.clone(), s.live().is_some()))
            .collect()
    }

    /// Connects every endpoint not connected yet; the failures.
    pub async fn connect_all(&self) -> Vec<OvsdbError> {
        let mut errors = Vec::new();
        for s in &self.slots {
            if let Err(e) = s.get(self.timeout).await {
                errors.push(e);
            }
        }
        errors
    }

    /// The endpoint and name of the bridge with `dpid`, if any reachable
    /// OVSDB has it. Unreachable endpoints are an error only when no
    /// reachable one has the bridge.
    pub async fn bridge_for_dpid(&self, dpid: u64) -> Result<Option<(String, String)>, OvsdbError> {
        let mut errors = Vec::new();
        for s in &self.slots {
            match s.get(self.timeout).await {
                Ok(c) => match c.bridge_for_dpid(dpid).await {
                    Ok(Some(name)) => return Ok(Some((s.endpoint.clone(), name))),
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(e),
            }
        }
        match self.give_up(dpid, errors) {
            OvsdbError::NoBridge { .. } => Ok(None),
            e => Err(e),
        }
    }

    /// [`Ovsdb::apply_queues`] on the OVSDB that has the bridge.
    pub async fn apply_queues(&self, dpid: u64, queues: &[QueueSpec]) -> Result<usize, OvsdbError> {
        validate(queues)?;
        self.first(dpid, |c| async move { c.apply_queues(dpid, queues).await })
            .await
    }

    /// [`Ovsdb::queues`] on the OVSDB that has the bridge.
    pub async fn queues(&self, dpid: u64) -> Result<Vec<PortQueues>, OvsdbError> {
        self.first(dpid, |c| async move { c.queues(dpid).await })
            .await
    }

    /// [`Ovsdb::clear_queues`] on every reachable endpoint (rows made for
    /// `dpid` are removed wherever they are). Unreachable endpoints are an
    /// error only when no reachable one has the bridge, as elsewhere.
    pub async fn clear_queues(&self, dpid: u64) -> Result<(), OvsdbError> {
        let mut errors = Vec::new();
        let mut found = false;
        for s in &self.slots {
            let r = match s.get(self.timeout).await {
                Ok(c) => c.clear(dpid).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(has_bridge) => found |= has_bridge,
                Err(e) if e.is_connection_error() => errors.push(e),
                Err(e) => return Err(e),
            }
        }
        if found {
            return Ok(());
        }
        match self.give_up(dpid, errors) {
            OvsdbError::NoBridge { .. } => Ok(()),
            e => Err(e),
        }
    }

    /// Runs `f` on each endpoint in turn until one has the bridge.
    async fn first<T, F, Fut>(&self, dpid: u64, f: F) -> Result<T, OvsdbError>
    where
        F: Fn(Ovsdb) -> Fut,
        Fut: Future<Output = Result<T, OvsdbError>>,
    {
        let mut errors = Vec::new();
        for s in &self.slots {
            let c = match s.get(self.timeout).await {
                Ok(c) => c,
                Err(e) => {
                    debug!(endpoint = %s.endpoint, "OVSDB unavailable: {e}");
                    errors.push(e);
                    continue;
                }
            };
            match f(c).await {
                Ok(v) => return Ok(v),
                Err(OvsdbError::NoBridge { .. }) => {}
                Err(e) if e.is_connection_error() => errors.push(e),
                Err(e) => return Err(e),
            }
        }
        Err(self.give_up(dpid, errors))
    }

    fn give_up(&self, dpid: u64, errors: Vec<OvsdbError>) -> OvsdbError {
        if self.slots.is_empty() {
            return OvsdbError::NoEndpoints;
        }
        if errors.is_empty() {
            let searched = self
                .slots
                .iter()
                .map(|s| s.endpoint.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return OvsdbError::NoBridge { dpid, searched };
        }
        OvsdbError::Unavailable {
            dpid,
            errors: join_errors(&errors),
        }
    }
}

fn join_errors(errors: &[OvsdbError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for QueueSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "queue {} {}..{} kbit/s",
            self.queue_id, self.min_kbps, self.max_kbps
        )?;
        if let Some(d) = self.dscp {
            write!(f, " dscp {d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn framer_with(bytes: &[u8]) -> Framer {
        let mut f = Framer::default();
        f.buf.extend_from_slice(bytes);
        f
    }

    #[test]
    fn framer_keeps_incomplete_tail() {
        let mut f = framer_with(b"{\"id\":1,\"result\":[\"}\\\"{\"]} {\"id\":2,\"res");
        let v = f.values().unwrap();
        assert_eq!(v, vec![json!({"id": 1, "result": ["}\"{"]})]);
        assert_eq!(f.buf.trim_ascii_start(), b"{\"id\":2,\"res");
        // Byte by byte: nothing until the closing brace.
        for &b in b"ult\":{\"a\":[1,2]}" {
            f.buf.extend_from_slice(&[b]);
            assert!(f.values().unwrap().is_empty());
        }
        f.buf.extend_from_slice(b"}\n{}");
        let v = f.values().unwrap();
        assert_eq!(
            v,
            vec![json!({"id": 2, "result": {"a": [1, 2]}}), json!({})]
        );
        assert!(f.buf.iter().all(u8::is_ascii_whitespace));
    }

    #[test]
    fn framer_rejects_garbage_and_waits_on_empty() {
        assert!(framer_with(b"{\"a\":1}garbage").values().is_err());
        assert!(framer_with(b"garbage").values().is_err());
        assert!(framer_with(b"}").values().is_err());
        assert!(framer_with(b"").values().unwrap().is_empty());
        assert!(framer_with(b"{\"a\":\"\xff\xfe\"}").values().is_err());
        // Nesting past serde_json's recursion limit is an error, not a crash.
        let mut deep = "[".repeat(100_000);
        deep.push_str(&"]".repeat(100_000));
        assert!(framer_with(deep.as_bytes()).values().is_err());
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("unix:/var/run/openvswitch/db.sock").unwrap(),
            Endpoint::Unix("/var/run/openvswitch/db.sock".into())
        );
        assert_eq!(
            parse_endpoint("tcp:127.0.0.1:6641").unwrap(),
            Endpoint::Tcp("127.0.0.1:6641".into())
        );
        assert_eq!(
            parse_endpoint("tcp:ovs.example").unwrap(),
            Endpoint::Tcp("ovs.example:6640".into())
        );
        assert_eq!(
            parse_endpoint("tcp:[::1]").unwrap(),
            Endpoint::Tcp("[::1]:6640".into())
        );
        assert_eq!(
            parse_endpoint("tcp:[::1]:7000").unwrap(),
            Endpoint::Tcp("[::1]:7000".into())
        );
        for bad in [
            "",
            "unix:",
            "tcp:",
            "ssl:1.2.3.4:6640",
            "/var/run/db.sock",
            "tcp:a b:1",
        ] {
            let e = parse_endpoint(bad).unwrap_err();
            assert!(matches!(e, OvsdbError::BadEndpoint { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn value_decoding_never_panics_on_odd_shapes() {
        assert_eq!(set_atoms(&json!(["set", []])).unwrap().len(), 0);
        assert_eq!(set_atoms(&json!("x")).unwrap(), vec![&json!("x")]);
        assert_eq!(set_atoms(&json!(["uuid", "u"])).unwrap().len(), 1);
        assert!(set_atoms(&json!(["set", 3])).is_err());
        assert!(map_pairs(&json!(["map", [[1]]])).is_err());
        assert!(map_pairs(&json!("map")).is_err());
        assert!(string_map(&json!(["map", [["a", 1]]])).is_err());
        assert_eq!(
            string_map(&json!(["map", [["a", "b"]]])).unwrap(),
            BTreeMap::from([("a".into(), "b".into())])
        );
        assert!(uuid_of(&json!(["uuid", 5])).is_err());
        assert!(Snapshot::parse(&[json!({"rows": [{"name": "br"}]})]).is_err());
        assert!(Snapshot::parse(&[json!(null)]).is_err());
    }

    #[test]
    fn validation() {
        let q = |queue_id, min_kbps, max_kbps, dscp| QueueSpec {
            queue_id,
            min_kbps,
            max_kbps,
            dscp,
        };
        assert!(validate(&[q(1, 10, 20, Some(46)), q(2, 0, 5, None)]).is_ok());
        assert!(validate(&[q(1, 10, 20, None), q(1, 10, 20, None)]).is_err());
        assert!(validate(&[q(1, 30, 20, None)]).is_err());
        assert!(validate(&[q(1, 0, 0, None)]).is_err());
        assert!(validate(&[q(MAX_QUEUE_ID, 0, 1, None)]).is_err());
        assert!(validate(&[q(1, 0, 1, Some(64))]).is_err());
    }

    #[test]
    fn dispatch_answers_echo_and_routes_responses() {
        let shared = Shared {
            endpoint: "test".into(),
            state: parking_lot::Mutex::new(State::default()),
            closed: CancellationToken::new(),
        };
        let (out, mut out_rx) = mpsc::channel(4);
        dispatch(
            json!({"id": "echo", "method": "echo", "params": [1]}),
            &shared,
            &out,
        )
        .unwrap();
        let reply: Value = serde_json::from_slice(&out_rx.try_recv().unwrap()).unwrap();
        assert_eq!(reply, json!({"id": "echo", "result": [1], "error": null}));

        let (tx, mut rx) = oneshot::channel();
        shared.state.lock().pending.insert(7, tx);
        dispatch(
            json!({"id": 7, "result": null, "error": "nope"}),
            &shared,
            &out,
        )
        .unwrap();
        assert_eq!(rx.try_recv().unwrap(), Err(json!("nope")));

        dispatch(json!({"id": 99, "result": 1, "error": null}), &shared, &out).unwrap();
        dispatch(
            json!({"id": null, "method": "update", "params": []}),
            &shared,
            &out,
        )
        .unwrap();
        assert!(dispatch(json!([1, 2]), &shared, &out).is_err());
        assert!(dispatch(json!({"x": 1}), &shared, &out).is_err());
        assert!(dispatch(json!({"method": 3, "id": 1}), &shared, &out).is_err());
    }
}
