//! Integration tests of `tierflow::ovsdb` against real Open vSwitch: the
//! system ovsdb-server and ovs-vswitchd (`unix:/var/run/openvswitch/db.sock`)
//! with throw-away netdev bridges, and private ovsdb-server processes on
//! TCP (for `tcp:` endpoints, the server's echo probes, and reconnecting).
//! What the client wrote is checked with `ovs-vsctl`, independently of the
//! client's own read-back. Hostile servers are small unix-socket servers
//! written here.
//!
//! Every test makes its own uniquely named bridge and removes it (and any
//! row it left) in a `Drop` guard, so parallel and failed runs leave the
//! shared OVS clean. Without a reachable ovsdb-server the tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tierflow::ovsdb::{Ovsdb, OvsdbError, OvsdbSet, PortQueues, QueueSpec, QueueState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const SYSTEM: &str = "unix:/var/run/openvswitch/db.sock";
const TIMEOUT: Duration = Duration::from_secs(5);

async fn system() -> Ovsdb {
    Ovsdb::connect(SYSTEM, TIMEOUT).await.unwrap_or_else(|e| {
        panic!(
            "these tests need the system ovsdb-server at {SYSTEM} (is Open vSwitch running? \
             `ovs-vsctl show` must work): {e}"
        )
    })
}

fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one((
        std::process::id(),
        SystemTime::now(),
        N.fetch_add(1, Ordering::Relaxed),
    ))
}

fn qs(queue_id: u32, min_kbps: u32, max_kbps: u32, dscp: Option<u8>) -> QueueSpec {
    QueueSpec {
        queue_id,
        min_kbps,
        max_kbps,
        dscp,
    }
}

// ---------------------------------------------------------------------------
// ovs-vsctl

/// Runs ovs-vsctl against `db` (the system database when `None`); panics
/// with its stderr on failure.
fn vsctl(db: Option<&str>, args: &[&str]) -> String {
    try_vsctl(db, args).unwrap_or_else(|e| panic!("ovs-vsctl {args:?}: {e}"))
}

fn try_vsctl(db: Option<&str>, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("ovs-vsctl");
    cmd.arg("--timeout=20");
    if let Some(db) = db {
        // Private servers have no ovs-vswitchd to wait for.
        cmd.arg(format!("--db={db}")).arg("--no-wait");
    }
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ovs-vsctl (is Open vSwitch installed?): {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[derive(Debug, Clone)]
struct QosRec {
    uuid: String,
    kind: String,
    other: BTreeMap<String, String>,
    ext: BTreeMap<String, String>,
    queues: BTreeMap<u32, String>,
}

#[derive(Debug, Clone)]
struct QueueRec {
    uuid: String,
    other: BTreeMap<String, String>,
    ext: BTreeMap<String, String>,
    dscp: Option<u64>,
}

fn uuid(v: &Value) -> String {
    assert_eq!(v[0], "uuid", "not a uuid: {v}");
    v[1].as_str().unwrap().to_string()
}

fn pairs(v: &Value) -> Vec<(Value, Value)> {
    assert_eq!(v[0], "map", "not a map: {v}");
    v[1].as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}

fn smap(v: &Value) -> BTreeMap<String, String> {
    pairs(v)
        .into_iter()
        .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
        .collect()
}

/// `ovs-vsctl --format=json list TABLE` as rows of column name -> value.
fn list(db: Option<&str>, table: &str, columns: &str) -> Vec<BTreeMap<String, Value>> {
    let out = vsctl(
        db,
        &[
            "--format=json",
            &format!("--columns={columns}"),
            "list",
            table,
        ],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let headings: Vec<String> = v["headings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            headings
                .iter()
                .cloned()
                .zip(row.as_array().unwrap().iter().cloned())
                .collect()
        })
        .collect()
}

fn list_qos(db: Option<&str>) -> Vec<QosRec> {
    list(db, "qos", "_uuid,type,other_config,external_ids,queues")
        .into_iter()
        .map(|r| QosRec {
            uuid: uuid(&r["_uuid"]),
            kind: r["type"].as_str().unwrap().to_string(),
            other: smap(&r["other_config"]),
            ext: smap(&r["external_ids"]),
            queues: pairs(&r["queues"])
                .into_iter()
                .map(|(k, v)| (k.as_u64().unwrap() as u32, uuid(&v)))
                .collect(),
        })
        .collect()
}

fn list_queue(db: Option<&str>) -> Vec<QueueRec> {
    list(db, "queue", "_uuid,other_config,external_ids,dscp")
        .into_iter()
        .map(|r| QueueRec {
            uuid: uuid(&r["_uuid"]),
            other: smap(&r["other_config"]),
            ext: smap(&r["external_ids"]),
            dscp: r["dscp"].as_u64(),
        })
        .collect()
}

/// `ovs-vsctl get port P qos`: the uuid, or `None` for `[]`.
fn port_qos(db: Option<&str>, port: &str) -> Option<String> {
    let out = vsctl(db, &["get", "port", port, "qos"]);
    (out != "[]").then_some(out)
}

fn tagged(ext: &BTreeMap<String, String>, dpid: u64) -> bool {
    ext.get("tierflow").map(String::as_str) == Some("1")
        && ext.get("tierflow-dpid") == Some(&format!("{dpid:016x}"))
}

fn tag(dpid: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("tierflow".to_string(), "1".to_string()),
        ("tierflow-dpid".to_string(), format!("{dpid:016x}")),
    ])
}

// ---------------------------------------------------------------------------
// Test bridges

/// A netdev bridge with internal ports on an OVSDB (the system one when
/// `db` is `None`); removed with everything tagged with its dpid on drop.
struct TestBridge {
    db: Option<String>,
    name: String,
    dpid: u64,
    ports: Vec<String>,
    /// Rows the test made itself (table, uuid), destroyed on drop.
    foreign: Mutex<Vec<(&'static str, String)>>,
}

impl TestBridge {
    fn new(db: Option<&str>, n_ports: usize) -> TestBridge {
        let r = unique();
        let name = format!("tfq{:08x}", r as u32);
        // A marker in the top bits keeps test dpids apart from Mininet's
        // small ones; the low bits are random.
        let dpid = 0x00f1_0000_0000_0000 | (r >> 16);
        let br = TestBridge {
            db: db.map(str::to_string),
            ports: (1..=n_ports).map(|i| format!("{name}p{i}")).collect(),
            name,
            dpid,
            foreign: Mutex::new(Vec::new()),
        };
        let hex = br.hex();
        let dpid_setting = if db.is_none() {
            format!("other-config:datapath-id={hex}")
        } else {
            // No vswitchd behind a private server: write what it would.
            format!("datapath_id={hex}")
        };
        vsctl(
            db,
            &[
                "add-br",
                &br.name,
                "--",
                "set",
                "bridge",
                &br.name,
                "datapath_type=netdev",
                &dpid_setting,
            ],
        );
        for p in &br.ports {
            vsctl(
                db,
                &[
                    "add-port",
                    &br.name,
                    p,
                    "--",
                    "set",
                    "interface",
                    p,
                    "type=internal",
                ],
            );
        }
        let want = format!("\"{hex}\"");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = vsctl(db, &["get", "bridge", &br.name, "datapath_id"]);
            if got == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "bridge {} reports datapath_id {got}, want {want}",
                br.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        br
    }

    fn hex(&self) -> String {
        format!("{:016x}", self.dpid)
    }

    fn db(&self) -> Option<&str> {
        self.db.as_deref()
    }

    fn our_qos(&self) -> Vec<QosRec> {
        list_qos(self.db())
            .into_iter()
            .filter(|q| tagged(&q.ext, self.dpid))
            .collect()
    }

    fn our_queues(&self) -> Vec<QueueRec> {
        list_queue(self.db())
            .into_iter()
            .filter(|q| tagged(&q.ext, self.dpid))
            .collect()
    }

    /// Checks with ovs-vsctl that the bridge carries exactly `tiers`;
    /// returns our QoS uuid and the Queue uuid of each queue id.
    fn assert_configured(&self, tiers: &[QueueSpec]) -> (String, BTreeMap<u32, String>) {
        let qos = self.our_qos();
        assert_eq!(qos.len(), 1, "exactly one QoS of ours: {qos:#?}");
        let qos = &qos[0];
        assert_eq!(qos.kind, "linux-htb");
        assert_eq!(
            qos.other.get("max-rate"),
            None,
            "no port ceiling: traffic outside the tiers is not capped: {qos:?}"
        );
        assert_eq!(qos.ext, tag(self.dpid));
        let ids: Vec<u32> = qos.queues.keys().copied().collect();
        let mut want_ids: Vec<u32> = tiers.iter().map(|t| t.queue_id).collect();
        want_ids.sort_unstable();
        assert_eq!(ids, want_ids, "queue ids of {qos:?}");

        let queues = self.our_queues();
        assert_eq!(
            queues.len(),
            tiers.len(),
            "no stale Queue rows of ours: {queues:#?}"
        );
        for t in tiers {
            let u = &qos.queues[&t.queue_id];
            let q = queues
                .iter()
                .find(|q| &q.uuid == u)
                .unwrap_or_else(|| panic!("queue {} row {u} is missing or not ours", t.queue_id));
            assert_eq!(
                q.other.get("min-rate"),
                Some(&(u64::from(t.min_kbps) * 1000).to_string()),
                "{t}: {q:?}"
            );
            assert_eq!(
                q.other.get("max-rate"),
                Some(&(u64::from(t.max_kbps) * 1000).to_string()),
                "{t}: {q:?}"
            );
            assert_eq!(q.dscp, t.dscp.map(u64::from), "{t}: {q:?}");
            assert_eq!(q.ext, tag(self.dpid));
        }
        for p in &self.ports {
            assert_eq!(
                port_qos(self.db(), p).as_deref(),
                Some(qos.uuid.as_str()),
                "port {p}"
            );
        }
        assert_eq!(
            port_qos(self.db(), &self.name),
            None,
            "the bridge's own port is left alone"
        );
        (qos.uuid.clone(), qos.queues.clone())
    }

    fn assert_cleared(&self) {
        for p in &self.ports {
            assert_eq!(port_qos(self.db(), p), None, "port {p} still has a QoS");
        }
        assert!(
            self.our_qos().is_empty(),
            "QoS rows left: {:#?}",
            self.our_qos()
        );
        assert!(
            self.our_queues().is_empty(),
            "Queue rows left: {:#?}",
            self.our_queues()
        );
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        // Best effort and never a panic: this runs while a failed test
        // unwinds.
        let db = self.db.clone();
        let db = db.as_deref();
        if let Err(e) = try_vsctl(db, &["--if-exists", "del-br", &self.name]) {
            eprintln!("cleanup: del-br {}: {e}", self.name);
        }
        let sel = format!("external_ids:tierflow-dpid={}", self.hex());
        let mut rows: Vec<(&str, String)> = Vec::new();
        for table in ["qos", "queue"] {
            if let Ok(out) = try_vsctl(db, &["--bare", "--columns=_uuid", "find", table, &sel]) {
                rows.extend(out.split_whitespace().map(|u| (table, u.to_string())));
            }
        }
        if let Ok(mut foreign) = self.foreign.lock() {
            rows.append(&mut foreign);
        }
        // QoS rows first: they reference the queues.
        rows.sort_by_key(|(t, _)| *t != "qos");
        for (table, u) in rows {
            if let Err(e) = try_vsctl(db, &["--if-exists", "destroy", table, &u]) {
                eprintln!("cleanup: destroy {table} {u}: {e}");
            }
        }
    }
}

fn expected_readback(br: &TestBridge, tiers: &[QueueSpec]) -> Vec<PortQueues> {
    let mut sorted = tiers.to_vec();
    sorted.sort_by_key(|t| t.queue_id);
    let mut ports = br.ports.clone();
    ports.sort();
    ports
        .into_iter()
        .map(|port| PortQueues {
            port,
            qos_type: Some("linux-htb".into()),
            tierflow: true,
            max_rate_bps: None,
            queues: sorted
                .iter()
                .map(|t| QueueState {
                    queue_id: t.queue_id,
                    min_rate_bps: Some(u64::from(t.min_kbps) * 1000),
                    max_rate_bps: Some(u64::from(t.max_kbps) * 1000),
                    dscp: t.dscp,
                })
                .collect(),
        })
        .collect()
}

fn tc(args: &[&str]) -> String {
    match Command::new("tc").args(args).output() {
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => format!("cannot run tc: {e}"),
    }
}

// ---------------------------------------------------------------------------
// System OVS

#[tokio::test]
async fn apply_change_and_clear_on_the_system_ovs() {
    let br = TestBridge::new(None, 3);
    let db = system().await;
    assert!(db.is_connected());
    assert_eq!(
        db.bridge_for_dpid(br.dpid).await.unwrap(),
        Some(br.name.clone())
    );

    // A leftover Queue of ours (as after a crash between two versions):
    // nothing references it, so the first apply must delete it.
    let stale = vsctl(
        None,
        &[
            "create",
            "queue",
            "other-config:max-rate=1000",
            "external_ids:tierflow=1",
            &format!("external_ids:tierflow-dpid={}", br.hex()),
        ],
    );

    let tiers = [qs(1, 20_000, 50_000, Some(46)), qs(2, 1_000, 10_000, None)];
    assert_eq!(db.apply_queues(br.dpid, &tiers).await.unwrap(), 3);
    let (qos1, queues1) = br.assert_configured(&tiers);
    assert!(
        !list_queue(None).iter().any(|q| q.uuid == stale),
        "the stale Queue row of ours was not deleted"
    );
    assert_eq!(
        db.queues(br.dpid).await.unwrap(),
        expected_readback(&br, &tiers)
    );

    // Whether the userspace datapath programs HTB on internal (tap) ports.
    let dev = &br.ports[0];
    eprintln!(
        "tc qdisc show dev {dev}:\n{}tc class show dev {dev}:\n{}",
        tc(&["qdisc", "show", "dev", dev]),
        tc(&["class", "show", "dev", dev])
    );

    // Idempotent: the same wish changes no row.
    assert_eq!(db.apply_queues(br.dpid, &tiers).await.unwrap(), 3);
    assert_eq!(
        br.assert_configured(&tiers),
        (qos1.clone(), queues1.clone())
    );

    // Queue 1's rates and DSCP change, queue 2 goes, queue 3 comes.
    let tiers2 = [qs(3, 500, 2_000, Some(10)), qs(1, 30_000, 60_000, Some(34))];
    assert_eq!(db.apply_queues(br.dpid, &tiers2).await.unwrap(), 3);
    let (qos2, queues2) = br.assert_configured(&tiers2);
    assert_eq!(qos2, qos1, "the QoS row is updated in place");
    assert_eq!(
        queues2[&1], queues1[&1],
        "queue 1's row is updated in place"
    );
    assert!(
        !list_queue(None).iter().any(|q| q.uuid == queues1[&2]),
        "queue 2's row was not deleted"
    );
    assert_eq!(
        db.queues(br.dpid).await.unwrap(),
        expected_readback(&br, &tiers2)
    );
    eprintln!(
        "after the change, tc class show dev {dev}:\n{}",
        tc(&["class", "show", "dev", dev])
    );

    // A port added later is picked up by the next apply.
    let late = format!("{}p9", br.name);
    vsctl(
        None,
        &[
            "add-port",
            &br.name,
            &late,
            "--",
            "set",
            "interface",
            &late,
            "type=internal",
        ],
    );
    assert_eq!(db.apply_queues(br.dpid, &tiers2).await.unwrap(), 4);
    assert_eq!(port_qos(None, &late), Some(qos1.clone()));

    db.clear_queues(br.dpid).await.unwrap();
    br.assert_cleared();
    assert_eq!(port_qos(None, &late), None);
    let after = db.queues(br.dpid).await.unwrap();
    assert_eq!(after.len(), 4);
    assert!(
        after
            .iter()
            .all(|p| p.qos_type.is_none() && !p.tierflow && p.queues.is_empty()),
        "{after:?}"
    );
    // Clearing twice is fine.
    db.clear_queues(br.dpid).await.unwrap();
    br.assert_cleared();
}

#[tokio::test]
async fn foreign_qos_is_replaced_but_kept() {
    let br = TestBridge::new(None, 2);
    let db = system().await;
    let p1 = &br.ports[0];
    let out = vsctl(
        None,
        &[
            "--",
            "set",
            "port",
            p1,
            "qos=@q",
            "--",
            "--id=@q",
            "create",
            "qos",
            "type=linux-htb",
            "other-config:max-rate=1000000",
            "queues:0=@q0",
            "--",
            "--id=@q0",
            "create",
            "queue",
            "other-config:max-rate=1000000",
        ],
    );
    let created: Vec<String> = out.split_whitespace().map(str::to_string).collect();
    assert_eq!(created.len(), 2, "ovs-vsctl printed {out:?}");
    let (fqos, fqueue) = (created[0].clone(), created[1].clone());
    br.foreign
        .lock()
        .unwrap()
        .extend([("qos", fqos.clone()), ("queue", fqueue.clone())]);
    assert_eq!(port_qos(None, p1), Some(fqos.clone()));
    let before = db.queues(br.dpid).await.unwrap();
    assert_eq!(before[0].port, *p1);
    assert_eq!(before[0].qos_type.as_deref(), Some("linux-htb"));
    assert!(!before[0].tierflow);
    assert_eq!(before[0].max_rate_bps, Some(1_000_000));
    assert_eq!(before[0].queues[0].queue_id, 0);

    let tiers = [qs(5, 100, 900, None)];
    assert_eq!(db.apply_queues(br.dpid, &tiers).await.unwrap(), 2);
    let (ours, _) = br.assert_configured(&tiers);
    assert_ne!(ours, fqos);
    let foreign = list_qos(None).into_iter().find(|q| q.uuid == fqos);
    let foreign = foreign.expect("the foreign QoS row was deleted");
    assert_eq!(
        foreign.queues.get(&0),
        Some(&fqueue),
        "the foreign QoS row was changed"
    );
    assert_eq!(
        foreign.other.get("max-rate").map(String::as_str),
        Some("1000000")
    );
    assert!(list_queue(None).iter().any(|q| q.uuid == fqueue));

    // Empty tiers remove ours (like clear); the foreign rows stay.
    assert_eq!(db.apply_queues(br.dpid, &[]).await.unwrap(), 0);
    br.assert_cleared();
    assert!(list_qos(None).iter().any(|q| q.uuid == fqos));
    assert!(list_queue(None).iter().any(|q| q.uuid == fqueue));
}

#[tokio::test]
async fn unknown_dpid_and_invalid_queues() {
    let br = TestBridge::new(None, 1);
    let db = system().await;
    let nobody = 0x00f2_0000_0000_0000 | (unique() >> 16);
    assert_eq!(db.bridge_for_dpid(nobody).await.unwrap(), None);
    let e = db
        .apply_queues(nobody, &[qs(1, 1, 2, None)])
        .await
        .unwrap_err();
    assert!(
        matches!(e, OvsdbError::NoBridge { dpid, .. } if dpid == nobody),
        "{e}"
    );
    assert!(e.to_string().contains(&format!("{nobody:016x}")), "{e}");
    assert!(matches!(
        db.queues(nobody).await.unwrap_err(),
        OvsdbError::NoBridge { .. }
    ));
    db.clear_queues(nobody).await.unwrap();

    for bad in [
        vec![qs(1, 1, 2, None), qs(1, 1, 2, None)],
        vec![qs(1, 3, 2, None)],
        vec![qs(1, 0, 0, None)],
        vec![qs(0xf000, 0, 1, None)],
        vec![qs(1, 0, 1, Some(64))],
    ] {
        let e = db.apply_queues(br.dpid, &bad).await.unwrap_err();
        assert!(matches!(e, OvsdbError::InvalidQueues(_)), "{bad:?}: {e}");
    }
    // Nothing was written for the invalid wishes.
    assert!(br.our_qos().is_empty());
    assert!(db.is_connected());
}

#[tokio::test]
async fn bad_endpoints_give_clear_errors() {
    let e = Ovsdb::connect("unix:/nonexistent/tierflow/db.sock", TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(e, OvsdbError::Connect { .. }), "{e}");
    assert!(
        e.to_string().contains("/nonexistent/tierflow/db.sock"),
        "{e}"
    );

    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = Ovsdb::connect(&format!("tcp:127.0.0.1:{port}"), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(e, OvsdbError::Connect { .. }), "{e}");

    for bad in [
        "/var/run/openvswitch/db.sock",
        "ssl:127.0.0.1:6640",
        "unix:",
        "tcp:",
    ] {
        let e = Ovsdb::connect(bad, TIMEOUT).await.unwrap_err();
        assert!(matches!(e, OvsdbError::BadEndpoint { .. }), "{bad}: {e}");
        assert!(e.to_string().contains("endpoint"), "{e}");
    }

    let empty = OvsdbSet::new(vec![], TIMEOUT);
    assert!(matches!(
        empty
            .apply_queues(1, &[qs(1, 1, 2, None)])
            .await
            .unwrap_err(),
        OvsdbError::NoEndpoints
    ));
}

// ---------------------------------------------------------------------------
// Hostile servers

struct SocketPath(PathBuf);

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves one connection with `script` on a fresh unix socket.
fn serve<F, Fut>(script: F) -> (SocketPath, String)
where
    F: FnOnce(UnixStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let path = std::env::temp_dir().join(format!("tfq-{:016x}.sock", unique()));
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        if let Ok((s, _)) = listener.accept().await {
            script(s).await;
        }
    });
    let endpoint = format!("unix:{}", path.display());
    (SocketPath(path), endpoint)
}

/// Reads one JSON request from the client.
async fn request(s: &mut UnixStream, buf: &mut Vec<u8>) -> Value {
    loop {
        let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
        if let Some(Ok(v)) = stream.next() {
            let used = stream.byte_offset();
            buf.drain(..used);
            return v;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client closed before sending a request");
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn answer_list_dbs(s: &mut UnixStream, buf: &mut Vec<u8>) {
    let req = request(s, buf).await;
    assert_eq!(req["method"], "list_dbs");
    let reply = serde_json::json!({"id": req["id"], "result": ["Open_vSwitch"], "error": null});
    s.write_all(reply.to_string().as_bytes()).await.unwrap();
}

/// Waits for the client to hang up, so the server side never closes first.
async fn hold(mut s: UnixStream) {
    let mut sink = [0u8; 4096];
    while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
}

#[tokio::test]
async fn garbage_servers_give_errors_not_panics() {
    let short = Duration::from_millis(500);

    let (_p, ep) = serve(|mut s| async move {
        s.write_all(b"\x00\x01this is not JSON {{{").await.unwrap();
        hold(s).await;
    });
    let e = Ovsdb::connect(&ep, TIMEOUT).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("invalid JSON"), "{e}");

    let (_p, ep) = serve(hold);
    let t0 = Instant::now();
    let e = Ovsdb::connect(&ep, short).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Timeout { .. }), "{e}");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );

    let (_p, ep) = serve(|s| async move { drop(s) });
    let e = Ovsdb::connect(&ep, TIMEOUT).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Disconnected { .. }), "{e}");

    let (_p, ep) = serve(|mut s| async move {
        let mut buf = Vec::new();
        request(&mut s, &mut buf).await;
        s.write_all(br#"{"id":1,"result":"not a list","error":null}"#)
            .await
            .unwrap();
        hold(s).await;
    });
    let e = Ovsdb::connect(&ep, TIMEOUT).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Protocol { .. }), "{e}");

    let (_p, ep) = serve(|mut s| async move {
        let mut buf = Vec::new();
        request(&mut s, &mut buf).await;
        s.write_all(br#"{"id":1,"result":["OVN_Northbound"],"error":null}"#)
            .await
            .unwrap();
        hold(s).await;
    });
    let e = Ovsdb::connect(&ep, TIMEOUT).await.unwrap_err();
    assert!(e.to_string().contains("no Open_vSwitch database"), "{e}");

    // A JSON-RPC error answer.
    let (_p, ep) = serve(|mut s| async move {
        let mut buf = Vec::new();
        request(&mut s, &mut buf).await;
        s.write_all(br#"{"id":1,"result":null,"error":{"error":"go away"}}"#)
            .await
            .unwrap();
        hold(s).await;
    });
    let e = Ovsdb::connect(&ep, TIMEOUT).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Rpc { .. }), "{e}");
    assert!(e.to_string().contains("go away"), "{e}");

    // Connected, then nonsense in answer to a transaction: a JSON array
    // instead of an object, split over two writes.
    let (_p, ep) = serve(|mut s| async move {
        let mut buf = Vec::new();
        answer_list_dbs(&mut s, &mut buf).await;
        request(&mut s, &mut buf).await;
        s.write_all(b"[1, 2,").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.write_all(b" 3]").await.unwrap();
        hold(s).await;
    });
    let db = Ovsdb::connect(&ep, TIMEOUT).await.unwrap();
    assert!(db.is_connected());
    let e = db.apply_queues(1, &[qs(1, 1, 2, None)]).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Protocol { .. }), "{e}");
    assert!(!db.is_connected());
    // Later calls fail at once, naming why the connection was given up.
    let e = db.queues(1).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("not a JSON object"), "{e}");

    // Well-formed JSON-RPC whose rows are not OVSDB rows.
    let (_p, ep) = serve(|mut s| async move {
        let mut buf = Vec::new();
        answer_list_dbs(&mut s, &mut buf).await;
        let req = request(&mut s, &mut buf).await;
        let reply = serde_json::json!({"id": req["id"], "error": null, "result": [
            {"rows": [{"name": 5, "datapath_id": ["set", "x"], "ports": 7}]},
            {"rows": []}, {"rows": []}, {"rows": []}]});
        s.write_all(reply.to_string().as_bytes()).await.unwrap();
        hold(s).await;
    });
    let db = Ovsdb::connect(&ep, TIMEOUT).await.unwrap();
    let e = db.queues(1).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Protocol { .. }), "{e}");

    // An endless message: cut off at the size limit, not read forever.
    let (_p, ep) = serve(|mut s| async move {
        let mut buf = Vec::new();
        answer_list_dbs(&mut s, &mut buf).await;
        request(&mut s, &mut buf).await;
        let _ = s.write_all(br#"{"id":2,"result":""#).await;
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..40 {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
        }
        hold(s).await;
    });
    let db = Ovsdb::connect(&ep, Duration::from_secs(20)).await.unwrap();
    let e = db.queues(1).await.unwrap_err();
    assert!(e.to_string().contains("longer than"), "{e}");
    assert!(!db.is_connected());

    // A silent server after connect: the request times out and the
    // connection is given up.
    let (_p, ep) = serve(|mut s| async move {
        let mut buf = Vec::new();
        answer_list_dbs(&mut s, &mut buf).await;
        hold(s).await;
    });
    let db = Ovsdb::connect(&ep, short).await.unwrap();
    let e = db.bridge_for_dpid(1).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Timeout { .. }), "{e}");
    assert!(!db.is_connected());
}

// ---------------------------------------------------------------------------
// Private ovsdb-server on TCP

/// An ovsdb-server of our own with a fresh Open_vSwitch database, on a
/// TCP port on 127.0.0.1; killed and removed on drop.
struct PrivateServer {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PrivateServer {
    fn new() -> PrivateServer {
        let dir = std::env::temp_dir().join(format!("tfq-ovsdb-{:016x}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("ovsdb-tool")
            .arg("create")
            .arg(dir.join("conf.db"))
            .arg("/usr/share/openvswitch/vswitch.ovsschema")
            .status()
            .unwrap_or_else(|e| panic!("cannot run ovsdb-tool (is Open vSwitch installed?): {e}"));
        assert!(status.success(), "ovsdb-tool create failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = PrivateServer {
            dir,
            port,
            child: None,
        };
        s.start();
        vsctl(Some(&s.endpoint()), &["init"]);
        s
    }

    fn endpoint(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let child = Command::new("ovsdb-server")
            .arg(self.dir.join("conf.db"))
            .arg(format!("--remote=ptcp:{}:127.0.0.1", self.port))
            .arg(format!("--unixctl={}", self.dir.join("ctl").display()))
            .arg(format!("--log-file={}", self.dir.join("log").display()))
            .arg("--no-chdir")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start ovsdb-server: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "private ovsdb-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn tcp_endpoint_echo_and_lazy_reconnect() {
    let mut server = PrivateServer::new();
    let ep = server.endpoint();
    let br = TestBridge::new(Some(&ep), 2);
    let missing = "unix:/nonexistent/tierflow/db.sock".to_string();
    let set = OvsdbSet::new(vec![missing.clone(), ep.clone()], Duration::from_secs(2));
    assert_eq!(
        set.status(),
        vec![(missing.clone(), false), (ep.clone(), false)]
    );

    let tiers = [qs(1, 1_000, 8_000, Some(46)), qs(7, 0, 2_000, None)];
    assert_eq!(set.apply_queues(br.dpid, &tiers).await.unwrap(), 2);
    br.assert_configured(&tiers);
    assert_eq!(
        set.status(),
        vec![(missing.clone(), false), (ep.clone(), true)]
    );
    assert_eq!(
        set.bridge_for_dpid(br.dpid).await.unwrap(),
        Some((ep.clone(), br.name.clone()))
    );
    assert_eq!(
        set.queues(br.dpid).await.unwrap(),
        expected_readback(&br, &tiers)
    );

    // ovsdb-server probes a TCP client idle for 5 s with an echo request
    // and drops it 5 s later without an answer. Stay idle past that.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(set.status()[1], (ep.clone(), true), "{}", server.log());
    assert_eq!(
        set.queues(br.dpid).await.unwrap(),
        expected_readback(&br, &tiers)
    );
    assert!(
        !server.log().contains("no response to inactivity probe"),
        "{}",
        server.log()
    );

    // The server dies: the connection notices, calls fail clearly.
    server.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while set.status()[1].1 {
        assert!(
            Instant::now() < deadline,
            "the lost connection went unnoticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = set.queues(br.dpid).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Unavailable { .. }), "{e}");
    assert!(e.to_string().contains(&ep), "{e}");
    assert!(
        e.to_string().contains("/nonexistent/tierflow/db.sock"),
        "{e}"
    );

    // It comes back: the next call reconnects by itself.
    server.start();
    // datapath_id is ephemeral (not stored on disk); vswitchd would write
    // it again after a restart.
    vsctl(
        Some(&ep),
        &[
            "set",
            "bridge",
            &br.name,
            &format!("datapath_id={}", br.hex()),
        ],
    );
    let tiers2 = [qs(1, 1_000, 9_000, None)];
    assert_eq!(set.apply_queues(br.dpid, &tiers2).await.unwrap(), 2);
    br.assert_configured(&tiers2);
    assert_eq!(set.status()[1], (ep.clone(), true));

    // Clearing works though one endpoint is down, because the reachable
    // one has the bridge.
    set.clear_queues(br.dpid).await.unwrap();
    br.assert_cleared();
    // An unknown dpid with an endpoint down: cannot tell, so an error.
    let e = set.clear_queues(br.dpid ^ 1).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Unavailable { .. }), "{e}");
    let only = OvsdbSet::new(vec![ep.clone()], TIMEOUT);
    only.clear_queues(br.dpid ^ 1).await.unwrap();
    assert!(matches!(
        only.queues(br.dpid ^ 1).await.unwrap_err(),
        OvsdbError::NoBridge { .. }
    ));

    // A plain Ovsdb on tcp: works too.
    let db = Ovsdb::connect(&ep, TIMEOUT).await.unwrap();
    assert_eq!(
        db.bridge_for_dpid(br.dpid).await.unwrap(),
        Some(br.name.clone())
    );
    drop(br);
}
