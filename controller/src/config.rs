//! Run-time configuration: a TOML file, overridden by command-line flags
//! (PRODUCT.md: `tierflow run [--config FILE] [--openflow ADDR] ...`).
//!
//! Plain data: this module imports nothing of the crate, so every other
//! module may read the configuration without an import cycle. Values are
//! range-checked once, at start ([`Config::validate`]), so no task meets
//! an infinite or negative timer later.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything `tierflow run` needs. Field names are the TOML keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Plain-TCP OpenFlow listener, or `off`.
    pub openflow: Listen,
    /// OpenFlow-over-TLS listener (needs `[tls]`); none by default.
    pub openflow_tls: Option<SocketAddr>,
    /// The TLS listener's certificate, key and switch CA (`[tls]`).
    pub tls: TlsFiles,
    /// REST API listener.
    pub api: SocketAddr,
    /// Redis URL (`redis://`, or `rediss://` for TLS).
    pub redis: String,
    /// Trust and client certificate for a `rediss://` Redis (`[redis_tls]`).
    pub redis_tls: RedisTlsFiles,
    /// OVSDB endpoints (`unix:/path` or `tcp:host:port`).
    pub ovsdb: Vec<String>,
    /// API bearer token (the environment's `TIERFLOW_API_TOKEN` wins).
    pub api_token: Option<String>,
    /// API token for reading customer data (`/customers`, `/promotions`,
    /// `/sessions`); the environment's `TIERFLOW_API_READ_TOKEN` wins.
    pub api_read_token: Option<String>,
    /// Where decisions read customers: `remote` (Redis per decision) or
    /// `replica` (an in-memory copy kept current by pub/sub).
    pub crm_mode: CrmMode,
    /// ISO region for caller numbers given without a country code.
    pub default_country: String,
    /// Timers of the switch connections and of topology discovery.
    pub timers: Timers,
    /// Hold detection from idle media (`[hold]`).
    pub hold: HoldConfig,
    /// Bounds on what the data plane can make the controller hold or do
    /// (`[limits]`).
    pub limits: Limits,
    /// This instance's name in the cluster of instances sharing Redis
    /// [default: the host's name and the OpenFlow port].
    pub instance: Option<String>,
    /// Where the other instances reach this one's REST API (they forward
    /// API calls to the leader) [default: the API listener's address, its
    /// loopback when it listens on every address].
    pub advertise_api: Option<String>,
}

/// Bounds on what switches and hosts can make the controller hold or do:
/// a flood from one port slows that port alone, and memory stays bounded.
/// Every value is exported on `/metrics` (`tierflow_limit{name=...}`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Hosts learnt at one switch port at most; frames from more are
    /// dropped.
    pub hosts_per_port: u32,
    /// Hosts learnt in all at most.
    pub hosts: usize,
    /// A host not heard from this long (seconds) is forgotten.
    pub host_idle: f64,
    /// Plain forwarding paths remembered at most; beyond it packets are
    /// forwarded without installing a path.
    pub paths: usize,
    /// A path whose flows were not set up again for this long (seconds)
    /// is forgotten, and its flows deleted.
    pub path_idle: f64,
    /// Packet-ins handled per second from one switch port (and as many
    /// at once); the rest are dropped. 0: no limit.
    pub packet_ins_per_port: u32,
    /// Packets per second a switch may send to the controller in all,
    /// enforced by the switch itself with the OpenFlow controller meter
    /// (`OFPM_CONTROLLER`) where it has one. 0: none installed.
    pub switch_packet_ins: u32,
    /// Live sessions of one client address at most.
    pub sessions_per_client: usize,
    /// Live sessions entering the network at one switch port at most.
    pub sessions_per_port: usize,
    /// New sessions a second from one switch port (twice as many at
    /// once); beyond it requests are plain traffic. 0: no limit.
    pub admissions_per_port: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hosts_per_port: 256,
            hosts: 100_000,
            host_idle: 300.0,
            paths: 200_000,
            path_idle: 600.0,
            packet_ins_per_port: 1000,
            switch_packet_ins: 10_000,
            // A carrier's SBC or a NAT can put many calls behind one
            // address or one port: generous, but bounded.
            sessions_per_client: 256,
            sessions_per_port: 8192,
            // A busy site's SIP proxy sends a few new calls a second
            // (20 a second is 72,000 an hour); each session costs flows
            // and meters on every switch of its path.
            admissions_per_port: 20,
        }
    }
}

impl Limits {
    /// `(name, value)` of every limit, for `/metrics`.
    pub fn named(&self) -> [(&'static str, f64); 10] {
        [
            ("hosts_per_port", f64::from(self.hosts_per_port)),
            ("hosts", self.hosts as f64),
            ("host_idle_seconds", self.host_idle),
            ("paths", self.paths as f64),
            ("path_idle_seconds", self.path_idle),
            ("packet_ins_per_port", f64::from(self.packet_ins_per_port)),
            ("switch_packet_ins", f64::from(self.switch_packet_ins)),
            ("sessions_per_client", self.sessions_per_client as f64),
            ("sessions_per_port", self.sessions_per_port as f64),
            ("admissions_per_port", f64::from(self.admissions_per_port)),
        ]
    }
}

/// A listener's address, or `off` for none: `"0.0.0.0:6653".parse()`,
/// `"off".parse()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl std::str::FromStr for Listen {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            Ok(Listen(None))
        } else {
            s.parse().map(|a| Listen(Some(a)))
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(a) => a.fmt(f),
            None => f.write_str("off"),
        }
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e} (an address, or \"off\")")))
    }
}

/// OpenFlow over TLS (`[tls]`), as `ovs-pki` makes the files: the
/// controller's certificate and key (`ovs-pki req+sign ctl controller`:
/// `ctl-cert.pem`, `ctl-privkey.pem`) and the CA that signs the switches'
/// certificates (`switchca/cacert.pem`). A switch must present a
/// certificate of that CA.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsFiles {
    /// The controller's certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// The controller's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// The CA certificate(s) switches' certificates must chain to (PEM).
    pub ca: Option<PathBuf>,
}

/// TLS to Redis (`[redis_tls]`), for `rediss://` URLs. Every key is
/// optional: without `ca` the system's trusted roots are used; `cert`
/// and `key` (together) are the client certificate Redis asks for when
/// it runs with `tls-auth-clients yes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisTlsFiles {
    /// CA certificate(s) the Redis server's certificate must chain to (PEM).
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    pub key: Option<PathBuf>,
}

impl RedisTlsFiles {
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }
}

/// Where customer data is read at decision time (PRODUCT.md's "CRM at the
/// communication center" versus "CRM at the control node").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrmMode {
    /// Read Redis per decision (batched, off the switch's task).
    #[default]
    Remote,
    /// Decide from the in-memory replica; never wait on the network.
    Replica,
}

/// Idle-media hold detection for voice (SIP) sessions: the switches' flow
/// statistics are polled, and a call whose media rate stays below
/// `idle_below_kbps` for `idle_after_ms` is put on hold; traffic above it
/// again resumes a hold this put in place. Sessions of other services are
/// never polled.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoldConfig {
    /// Whether idle media puts calls on hold at all.
    pub idle_media: bool,
    /// How often the voice sessions' flow statistics are read.
    pub idle_poll_ms: u64,
    /// Media below this rate (both directions together) counts as idle.
    pub idle_below_kbps: u32,
    /// Idle this long (and this long since the last state change) means hold.
    pub idle_after_ms: u64,
}

impl Default for HoldConfig {
    fn default() -> Self {
        HoldConfig {
            idle_media: true,
            idle_poll_ms: 1000,
            // G.711 at 20 ms is 80 kb/s each way on the wire; comfort noise
            // and RTCP stay well below 8.
            idle_below_kbps: 8,
            idle_after_ms: 10_000,
        }
    }
}

/// Connection and discovery timers, in seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timers {
    /// Send an echo request after this long without hearing from a switch.
    pub echo_interval: f64,
    /// Drop a switch that has been silent this long.
    pub dead_after: f64,
    /// How long to wait for a reply to a request (barrier, multipart, ...).
    pub request_timeout: f64,
    /// Handshake (HELLO, FEATURES) deadline.
    pub handshake_timeout: f64,
    /// LLDP probe period on every port.
    pub lldp_interval: f64,
    /// A link not seen for this long is gone.
    pub link_timeout: f64,
    /// Idle timeout of forwarding flows.
    pub flow_idle_timeout: u16,
    /// A session whose client-side flow sees no packet this long ends.
    pub session_idle_timeout: u16,
    /// A session parked this long (its path broke, or Redis remembered it
    /// after a restart, and no packet brought it back) ends.
    pub parked_timeout: f64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            echo_interval: 5.0,
            dead_after: 15.0,
            request_timeout: 5.0,
            handshake_timeout: 10.0,
            lldp_interval: 1.0,
            link_timeout: 3.5,
            flow_idle_timeout: 60,
            session_idle_timeout: 30,
            parked_timeout: 600.0,
        }
    }
}

impl Timers {
    pub fn secs(v: f64) -> Duration {
        Duration::from_secs_f64(v.max(0.001))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            openflow: Listen(Some(SocketAddr::from(([0, 0, 0, 0], 6653)))),
            openflow_tls: None,
            tls: TlsFiles::default(),
            api: SocketAddr::from(([127, 0, 0, 1], 8080)),
            redis: "redis://127.0.0.1:6379".into(),
            redis_tls: RedisTlsFiles::default(),
            ovsdb: vec!["unix:/var/run/openvswitch/db.sock".into()],
            api_token: None,
            api_read_token: None,
            crm_mode: CrmMode::default(),
            default_country: "US".into(),
            timers: Timers::default(),
            hold: HoldConfig::default(),
            limits: Limits::default(),
            instance: None,
            advertise_api: None,
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are an error naming the key, and
    /// so is a value out of range.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let c = Config::read(path)?;
        c.validate()
            .map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
        Ok(c)
    }

    /// Reads a TOML file without [`Config::validate`]: for flags still to
    /// be applied (`--openflow-tls` to a file's `[tls]`, a `rediss://`
    /// `--redis` to its `[redis_tls]`); validate the result.
    pub fn read(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }

    /// Checks every value a task will use: timers finite and within a
    /// day (`Duration::from_secs_f64` panics on infinity), polls above
    /// zero. The error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.timers;
        for (key, v, min) in [
            ("timers.echo_interval", t.echo_interval, 0.01),
            ("timers.dead_after", t.dead_after, 0.01),
            ("timers.request_timeout", t.request_timeout, 0.01),
            ("timers.handshake_timeout", t.handshake_timeout, 0.01),
            ("timers.lldp_interval", t.lldp_interval, 0.01),
            ("timers.link_timeout", t.link_timeout, 0.01),
            ("timers.parked_timeout", t.parked_timeout, 1.0),
        ] {
            if !v.is_finite() || v < min || v > MAX_TIMER_SECS {
                return Err(format!(
                    "{key} = {v}: must be between {min} and {MAX_TIMER_SECS} seconds"
                ));
            }
        }
        if t.session_idle_timeout == 0 {
            return Err("timers.session_idle_timeout must be at least 1 second".into());
        }
        let l = &self.limits;
        for (key, v) in [
            ("limits.host_idle", l.host_idle),
            ("limits.path_idle", l.path_idle),
        ] {
            if !v.is_finite() || !(1.0..=MAX_TIMER_SECS).contains(&v) {
                return Err(format!(
                    "{key} = {v}: must be between 1 and {MAX_TIMER_SECS} seconds"
                ));
            }
        }
        for (key, v) in [
            ("limits.hosts_per_port", l.hosts_per_port as usize),
            ("limits.hosts", l.hosts),
            ("limits.paths", l.paths),
            ("limits.sessions_per_client", l.sessions_per_client),
            ("limits.sessions_per_port", l.sessions_per_port),
        ] {
            if v == 0 {
                return Err(format!("{key} must be at least 1"));
            }
        }
        let h = &self.hold;
        if h.idle_poll_ms == 0 || h.idle_poll_ms > 3_600_000 {
            return Err(format!(
                "hold.idle_poll_ms = {}: must be between 1 and 3600000",
                h.idle_poll_ms
            ));
        }
        if h.idle_after_ms > 86_400_000 {
            return Err(format!(
                "hold.idle_after_ms = {}: at most a day",
                h.idle_after_ms
            ));
        }
        self.validate_listeners()?;
        self.validate_redis_tls()?;
        for (key, token) in [
            ("api_token", &self.api_token),
            ("api_read_token", &self.api_read_token),
        ] {
            if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
                return Err(format!("{key} is empty: set a token, or leave it unset"));
            }
        }
        Ok(())
    }

    /// At least one OpenFlow listener; TLS keys exactly when there is a
    /// TLS listener (a `[tls]` without `openflow_tls` would leave the
    /// operator believing switches must show certificates), every file
    /// readable.
    fn validate_listeners(&self) -> Result<(), String> {
        if self.openflow.0.is_none() && self.openflow_tls.is_none() {
            return Err("openflow = off and no openflow_tls: no OpenFlow listener at all".into());
        }
        if let (Some(plain), Some(tls)) = (self.openflow.0, self.openflow_tls)
            && plain == tls
            && plain.port() != 0
        {
            return Err(format!(
                "openflow and openflow_tls are both {plain}: give TLS its own port, \
                 or set openflow = \"off\""
            ));
        }
        let t = &self.tls;
        let files = [
            ("tls.cert", &t.cert),
            ("tls.key", &t.key),
            ("tls.ca", &t.ca),
        ];
        match self.openflow_tls {
            Some(addr) => {
                for (key, path) in files {
                    let Some(path) = path else {
                        return Err(format!(
                            "openflow_tls = {addr} needs {key} (tls.cert, tls.key and tls.ca \
                             are the controller's certificate, its key, and the CA of the \
                             switches' certificates)"
                        ));
                    };
                    readable(key, path)?;
                }
            }
            None => {
                if let Some((key, _)) = files.iter().find(|(_, p)| p.is_some()) {
                    return Err(format!(
                        "{key} is set but openflow_tls is not: no TLS listener would use it"
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_redis_tls(&self) -> Result<(), String> {
        let r = &self.redis_tls;
        if r.is_empty() {
            return Ok(());
        }
        let tls_url = ["rediss://", "valkeys://"].iter().any(|s| {
            self.redis
                .get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
        });
        if !tls_url {
            return Err(
                "redis_tls is set but the Redis URL is not rediss://: TLS would not be used".into(),
            );
        }
        if r.cert.is_some() != r.key.is_some() {
            return Err("redis_tls.cert and redis_tls.key go together".into());
        }
        for (key, path) in [
            ("redis_tls.ca", &r.ca),
            ("redis_tls.cert", &r.cert),
            ("redis_tls.key", &r.key),
        ] {
            if let Some(p) = path {
                readable(key, p)?;
            }
        }
        Ok(())
    }
}

/// The file `key` names can be opened and read (a PEM file is small).
fn readable(key: &str, path: &Path) -> Result<(), String> {
    match std::fs::read(path) {
        Ok(b) if b.is_empty() => Err(format!("{key} = {}: the file is empty", path.display())),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{key} = {}: cannot read it: {e}", path.display())),
    }
}

/// Longest timer accepted: a day.
const MAX_TIMER_SECS: f64 = 86_400.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let c: Config =
            toml::from_str("openflow = \"127.0.0.1:7000\"\n[timers]\necho_interval = 2.5\n")
                .expect("valid config");
        assert_eq!(
            c.openflow,
            Listen(Some("127.0.0.1:7000".parse().expect("addr")))
        );
        assert_eq!(c.api.port(), 8080);
        assert!((c.timers.echo_interval - 2.5).abs() < f64::EPSILON);
        assert!((c.timers.dead_after - 15.0).abs() < f64::EPSILON);
        assert!(c.hold.idle_media);
        let h: Config = toml::from_str("[hold]\nidle_media = false\nidle_after_ms = 3000\n")
            .expect("valid hold config");
        assert!(!h.hold.idle_media);
        assert_eq!((h.hold.idle_after_ms, h.hold.idle_poll_ms), (3000, 1000));
        assert!(toml::from_str::<Config>("[hold]\nidle = 1\n").is_err());
        let err = toml::from_str::<Config>("openflw = \"x\"").expect_err("unknown key");
        assert!(err.to_string().contains("openflw"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_key() {
        assert_eq!(Config::default().validate(), Ok(()));
        let c: Config = toml::from_str("[timers]\ndead_after = inf\n").expect("parses");
        let e = c.validate().expect_err("infinite timer");
        assert!(e.contains("timers.dead_after"), "{e}");
        let c: Config = toml::from_str("[timers]\nlldp_interval = -1.0\n").expect("parses");
        assert!(c.validate().is_err());
        let c: Config = toml::from_str("[hold]\nidle_poll_ms = 0\n").expect("parses");
        assert!(
            c.validate()
                .expect_err("zero poll")
                .contains("hold.idle_poll_ms")
        );
    }

    #[test]
    fn listeners_tls_files_and_tokens_are_checked_naming_the_key() {
        // A file that exists wherever the tests run.
        let f = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let parse = |t: &str| toml::from_str::<Config>(t).expect("parses");
        let err = |t: &str| parse(t).validate().expect_err(t);
        assert_eq!("off".parse::<Listen>(), Ok(Listen(None)));
        assert!("nowhere".parse::<Listen>().is_err());
        assert!(toml::from_str::<Config>("openflow = \"nowhere\"").is_err());
        assert!(err("openflow = \"off\"").contains("no OpenFlow listener"));
        let e = err("openflow_tls = \"0.0.0.0:6654\"");
        assert!(e.contains("tls.cert"), "{e}");
        let e = err(&format!("[tls]\nca = \"{f}\"\n"));
        assert!(e.contains("tls.ca") && e.contains("openflow_tls"), "{e}");
        let e = err(&format!(
            "openflow_tls = \"0.0.0.0:6654\"\n[tls]\ncert = \"{f}\"\n\
             key = \"{f}\"\nca = \"/no/such/ca.pem\"\n"
        ));
        assert!(e.contains("tls.ca = /no/such/ca.pem"), "{e}");
        let e = err("openflow = \"0.0.0.0:6653\"\nopenflow_tls = \"0.0.0.0:6653\"\n");
        assert!(e.contains("both"), "{e}");
        let e = err(&format!("[redis_tls]\nca = \"{f}\"\n"));
        assert!(e.contains("rediss://"), "{e}");
        let e = err(&format!(
            "redis = \"rediss://h:6380\"\n[redis_tls]\ncert = \"{f}\"\n"
        ));
        assert!(e.contains("go together"), "{e}");
        let e = err("redis = \"rediss://h:6380\"\n[redis_tls]\nca = \"/no/ca.pem\"\n");
        assert!(e.contains("redis_tls.ca"), "{e}");
        assert_eq!(
            parse(&format!(
                "redis = \"rediss://h:6380\"\n[redis_tls]\nca = \"{f}\"\n"
            ))
            .validate(),
            Ok(())
        );
        assert!(err("api_read_token = \" \"").contains("api_read_token"));
        assert!(err("api_token = \"\"").contains("api_token"));
        assert!(toml::from_str::<Config>("[tls]\ncrt = \"x\"\n").is_err());
    }
}
