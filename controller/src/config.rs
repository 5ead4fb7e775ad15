//! Run-time configuration: a TOML file, overridden by command-line flags
//! (PRODUCT.md: `tierflow run [--config FILE] [--openflow ADDR] ...`).
//!
//! Plain data: this module imports nothing of the crate, so every other
//! module may read the configuration without an import cycle. Values are
//! range-checked once, at start ([`Config::validate`]), so no task meets
//! an infinite or negative timer later.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Everything `tierflow run` needs. Field names are the TOML keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// OpenFlow listener.
    pub openflow: SocketAddr,
    /// REST API listener.
    pub api: SocketAddr,
    /// Redis URL.
    pub redis: String,
    /// OVSDB endpoints (`unix:/path` or `tcp:host:port`).
    pub ovsdb: Vec<String>,
    /// API bearer token (the environment's `TIERFLOW_API_TOKEN` wins).
    pub api_token: Option<String>,
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
        }
    }
}

impl Limits {
    /// `(name, value)` of every limit, for `/metrics`.
    pub fn named(&self) -> [(&'static str, f64); 9] {
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
        ]
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
            openflow: SocketAddr::from(([0, 0, 0, 0], 6653)),
            api: SocketAddr::from(([127, 0, 0, 1], 8080)),
            redis: "redis://127.0.0.1:6379".into(),
            ovsdb: vec!["unix:/var/run/openvswitch/db.sock".into()],
            api_token: None,
            crm_mode: CrmMode::default(),
            default_country: "US".into(),
            timers: Timers::default(),
            hold: HoldConfig::default(),
            limits: Limits::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are an error naming the key, and
    /// so is a value out of range.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        let c: Config =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
        c.validate()
            .map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
        Ok(c)
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
        Ok(())
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
        assert_eq!(c.openflow.port(), 7000);
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
}
