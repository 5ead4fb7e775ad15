//! Redis over TLS (`rediss://`) against a real `redis-server` started
//! with TLS on a free port, with throwaway certificates made by `openssl`
//! in a temporary directory: the store writes and reads through it with
//! the CA trusted (and with a client certificate for a Redis that asks
//! for one), refuses a server its CA did not sign, the controller starts
//! its CRM on it; and passwords in Redis URLs never reach an error or a
//! log line. A missing `redis-server` or `openssl` fails the tests: they
//! never skip.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tierflow::app;
use tierflow::config::{Config, RedisTlsFiles};
use tierflow::crm::{RedisTls, Store, StoreOptions, load_file_with};
use tierflow_api::model::Tier;

const PASSWORD: &str = "s3cret-Pa55word";

/// Every log line of this test binary, whatever task wrote it.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = buf.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(w.clone()))
            .try_init()
            .expect("the only subscriber of this binary");
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_no_password_logged() {
    let text = String::from_utf8_lossy(&logs().lock().expect("logs")).into_owned();
    assert!(
        !text.contains(PASSWORD),
        "a password reached the logs:\n{text}"
    );
}

fn tier(name: &str) -> Tier {
    Tier {
        name: name.into(),
        min_benefit: 10.0,
        rate_kbps: 10_000,
        burst_kbits: 1000,
        dscp: 10,
        queue_id: 1,
        queue_min_kbps: 1000,
        hold_rate_kbps: 64,
    }
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("tierflow-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = match Command::new("openssl").current_dir(dir).args(args).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("openssl is not installed: the Redis TLS tests make their certificates with it")
        }
        r => r.expect("run openssl"),
    };
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`), a server certificate for 127.0.0.1 (`server.pem`,
/// `server.key`) and a client certificate (`client.pem`, `client.key`)
/// it signed; and another CA (`other-ca.pem`) that signed nothing here.
fn certificates() -> TempDir {
    let d = TempDir::new("redis-tls");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    for ca in ["ca", "other-ca"] {
        let (key, pem, subj) = (
            format!("{ca}.key"),
            format!("{ca}.pem"),
            format!("/CN=Tierflow test {ca}"),
        );
        let mut args = vec!["req", "-x509", "-nodes", "-days", "2", "-subj", &subj];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &pem]);
        args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
        args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        openssl(&d.0, &args);
    }
    for (name, ext) in [
        (
            "server",
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        let (key, csr, pem, extf) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(d.file(&extf), ext).expect("extensions file");
        let subj = format!("/CN=tierflow-test-{name}");
        let mut args = vec!["req", "-new", "-nodes", "-subj", &subj];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &csr]);
        openssl(&d.0, &args);
        openssl(
            &d.0,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extf,
                "-out",
                &pem,
            ],
        );
    }
    d
}

/// A `redis-server` listening with TLS only, with a password; killed on drop.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    fn start(certs: &TempDir, auth_clients: bool) -> TlsRedis {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let path = |f: &str| certs.file(f).display().to_string();
            let child = Command::new("redis-server")
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--dir", &certs.0.display().to_string()])
                .args(["--tls-cert-file", &path("server.pem")])
                .args(["--tls-key-file", &path("server.key")])
                .args(["--tls-ca-cert-file", &path("ca.pem")])
                .args([
                    "--tls-auth-clients",
                    if auth_clients { "yes" } else { "no" },
                ])
                .args(["--requirepass", PASSWORD])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let mut child = match child {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "redis-server is not installed: these tests need a real Redis with TLS \
                     (apt-get install redis-server)"
                ),
                Err(e) => panic!("cannot run redis-server: {e}"),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return TlsRedis { child, port };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(
                        status.code() == Some(1),
                        "redis-server exited with {status}: does it support TLS (--tls-port)?"
                    );
                    break; // most likely the port was taken meanwhile
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server with TLS did not start on any of 5 free ports");
    }

    fn url(&self) -> String {
        format!("rediss://:{PASSWORD}@127.0.0.1:{}/", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn trust(certs: &TempDir, ca: &str, client: bool) -> RedisTls {
    let files = RedisTlsFiles {
        ca: Some(certs.file(ca)),
        cert: client.then(|| certs.file("client.pem")),
        key: client.then(|| certs.file("client.key")),
    };
    RedisTls::load(&files)
        .expect("readable files")
        .expect("configured")
}

async fn store(url: &str, tls: Option<RedisTls>) -> Result<Store, tierflow::crm::CrmError> {
    Store::connect_with(
        url,
        &StoreOptions {
            op_timeout: Duration::from_secs(3),
            tls,
            ..StoreOptions::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_writes_and_reads_through_rediss_with_the_ca_trusted() {
    logs();
    let certs = certificates();
    let redis = TlsRedis::start(&certs, false);
    let s = store(&redis.url(), Some(trust(&certs, "ca.pem", false)))
        .await
        .expect("rediss:// with our CA");
    s.put_tier(&tier("gold")).await.expect("write over TLS");
    assert_eq!(
        s.get_tier("gold").await.expect("read over TLS"),
        tier("gold")
    );

    // The same data is not reachable without TLS: the port speaks TLS only.
    let plain = format!("redis://:{PASSWORD}@127.0.0.1:{}/", redis.port);
    let r = match store(&plain, None).await {
        Ok(s) => s.get_tier("gold").await.map(|_| ()),
        Err(e) => Err(e),
    };
    let e = r.expect_err("plain Redis protocol on a TLS port");
    assert!(!e.to_string().contains(PASSWORD), "{e}");

    // A server certificate the trusted CA did not sign is refused.
    let e = store(&redis.url(), Some(trust(&certs, "other-ca.pem", false)))
        .await
        .expect_err("a CA that signed nothing here");
    let text = e.to_string();
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(
        text.to_lowercase().contains("certificate") || text.contains("TLS") || text.contains("SSL"),
        "{text}"
    );
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_asks_for_a_client_certificate_gets_redis_tls_cert() {
    logs();
    let certs = certificates();
    let redis = TlsRedis::start(&certs, true);
    let r = match store(&redis.url(), Some(trust(&certs, "ca.pem", false))).await {
        Ok(s) => s.put_tier(&tier("gold")).await,
        Err(e) => Err(e),
    };
    r.expect_err("no client certificate");
    let s = store(&redis.url(), Some(trust(&certs, "ca.pem", true)))
        .await
        .expect("with the client certificate");
    s.put_tier(&tier("silver")).await.expect("write");
    assert_eq!(s.get_tier("silver").await.expect("read"), tier("silver"));
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_and_crm_load_use_rediss_with_redis_tls() {
    logs();
    let certs = certificates();
    let redis = TlsRedis::start(&certs, true);
    let files = RedisTlsFiles {
        ca: Some(certs.file("ca.pem")),
        cert: Some(certs.file("client.pem")),
        key: Some(certs.file("client.key")),
    };
    // crm load over TLS.
    let crm = certs.file("crm.json");
    let mut f = std::fs::File::create(&crm).expect("crm file");
    write!(
        f,
        r#"{{"tiers": [{{"name": "gold", "min_benefit": 10.0, "rate_kbps": 10000, "burst_kbits": 1000,
             "dscp": 10, "queue_id": 1, "queue_min_kbps": 1000, "hold_rate_kbps": 64}}]}}"#
    )
    .expect("write crm file");
    let tls = RedisTls::load(&files).expect("files").expect("configured");
    load_file_with(&redis.url(), Some(&tls), &crm)
        .await
        .expect("crm load over rediss://");

    // The controller's replica reads it over TLS.
    let running = app::start(Config {
        openflow: "127.0.0.1:0".parse().expect("addr"),
        api: "127.0.0.1:0".parse().expect("addr"),
        redis: redis.url(),
        redis_tls: files,
        crm_mode: tierflow::config::CrmMode::Replica,
        ..Config::default()
    })
    .await
    .expect("controller on a rediss:// CRM");
    let t0 = Instant::now();
    loop {
        let snap = running.ctl.sessions().crm().replica.snapshot();
        if snap.tiers.iter().any(|t| t.name == "gold") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the replica did not read the CRM over TLS"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_in_redis_urls_never_reach_errors_or_logs() {
    logs();
    // A URL the client cannot use (database "x"): the start fails, and
    // says which Redis without its password.
    let e = app::start(Config {
        openflow: "127.0.0.1:0".parse().expect("addr"),
        api: "127.0.0.1:0".parse().expect("addr"),
        redis: format!("redis://admin:{PASSWORD}@127.0.0.1:1/x"),
        ..Config::default()
    })
    .await
    .expect_err("unusable Redis URL");
    let text = format!("{e:#}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains("redis://***@127.0.0.1:1/x"), "{text}");

    // rediss:// to nothing, the controller starting anyway (Redis may come
    // later): whatever it logs while trying hides the password.
    let running = app::start(Config {
        openflow: "127.0.0.1:0".parse().expect("addr"),
        api: "127.0.0.1:0".parse().expect("addr"),
        redis: format!("rediss://:{PASSWORD}@127.0.0.1:1/"),
        ..Config::default()
    })
    .await
    .expect("starts without Redis");
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;

    // crm load to a Redis that is not there.
    let dir = TempDir::new("crm-load");
    std::fs::write(dir.file("crm.json"), "{}").expect("crm file");
    let e = load_file_with(
        &format!("redis://:{PASSWORD}@127.0.0.1:1/"),
        None,
        &dir.file("crm.json"),
    )
    .await
    .expect_err("no Redis there");
    let text = format!("{e:#}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains("redis://***@127.0.0.1:1/"), "{text}");
    // The logs were captured (the replica's start warning is there), and
    // hold no password.
    let logged = String::from_utf8_lossy(&logs().lock().expect("logs")).into_owned();
    assert!(logged.contains("Redis not readable at start"), "{logged}");
    assert_no_password_logged();
}
