//! A tier on the wire for one session on one switch: its meters (one per
//! direction: a tier's rate is per session and per direction) and its
//! flows (both directions), above every other flow for that traffic. The
//! flows apply the meter, set the tier's queue and output along the path;
//! the switch where a direction enters the network also marks the tier's
//! DSCP. The numbers (meter rate, bucket) come from `qos`.

use super::cookie::{self, Kind};
use super::prio;
use openflow::consts::{flow_mod_flags, meter_flags};
use openflow::{
    Action, FlowMod, FlowModCommand, Instruction, Match, MeterBand, MeterMod, MeterModCommand, Oxm,
};
use std::net::Ipv4Addr;
use tierflow_api::model::Tier;

/// What a session's flows match: IPv4 client to server, and for services
/// other than SIP the service's protocol and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub client: Ipv4Addr,
    pub server: Ipv4Addr,
    /// IP protocol and the server's port (0: any port); `None` for SIP
    /// sessions, whose tier covers all traffic between caller and server
    /// (the media) while the signalling is copied to the controller by a
    /// higher flow.
    pub l4: Option<(u8, u16)>,
    /// The client's port, when the session is that one flow (a session an
    /// application server requested with both ends known).
    pub client_port: Option<u16>,
}

impl SessionKey {
    /// The same two hosts and protocol with both ports moved by `by` (a
    /// call's RTCP, next to its RTP).
    pub fn ports_plus(&self, by: u16) -> Option<SessionKey> {
        let (proto, port) = self.l4?;
        let cport = self.client_port?;
        if port == 0 {
            return None;
        }
        Some(SessionKey {
            l4: Some((proto, port.checked_add(by)?)),
            client_port: Some(cport.checked_add(by)?),
            ..*self
        })
    }
}

/// Direction of a session's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    Fwd,
    /// Server to client.
    Rev,
}

fn session_match(key: &SessionKey, dir: Dir) -> Match<'static> {
    let (src, dst) = match dir {
        Dir::Fwd => (key.client, key.server),
        Dir::Rev => (key.server, key.client),
    };
    let m = Match::new()
        .with(Oxm::EthType(0x0800, None))
        .with(Oxm::Ipv4Src(src, None))
        .with(Oxm::Ipv4Dst(dst, None));
    let Some((proto, port)) = key.l4 else {
        return m;
    };
    let mut m = m.with(Oxm::IpProto(proto, None));
    // The server's port is the destination going to the server, the
    // source coming back; the client's the other way round.
    let (dst_port, src_port) = match dir {
        Dir::Fwd => (Some(port).filter(|p| *p != 0), key.client_port),
        Dir::Rev => (key.client_port, Some(port).filter(|p| *p != 0)),
    };
    if let Some(p) = src_port {
        m = match proto {
            6 => m.with(Oxm::TcpSrc(p, None)),
            17 => m.with(Oxm::UdpSrc(p, None)),
            _ => m,
        };
    }
    if let Some(p) = dst_port {
        m = match proto {
            6 => m.with(Oxm::TcpDst(p, None)),
            17 => m.with(Oxm::UdpDst(p, None)),
            _ => m,
        };
    }
    m
}

/// How a session flow is written.
#[derive(Debug, Clone, Copy)]
pub struct FlowSpec<'a> {
    pub session: u64,
    pub key: &'a SessionKey,
    pub tier: &'a Tier,
    pub dir: Dir,
    /// `None` when the switch has no usable meters.
    pub meter: Option<u32>,
    pub out_port: u32,
    /// This switch is where the direction enters the network: mark DSCP.
    pub ingress: bool,
    /// Ask the switch for FLOW_REMOVED (the client-side forward flow: its
    /// idle timeout is the session's).
    pub notify: bool,
    pub idle_timeout: u16,
    /// ADD for installation; MODIFY_STRICT for a tier change, which keeps
    /// the flow's counters and never leaves the traffic without a flow.
    pub command: FlowModCommand,
}

pub fn session_flow(s: &FlowSpec<'_>) -> FlowMod<'static> {
    let mut actions: openflow::Actions<'static> = Default::default();
    if s.ingress {
        actions.push(Action::SetField {
            field: Oxm::IpDscp(s.tier.dscp, None),
        });
    }
    actions.push(Action::SetQueue {
        queue_id: s.tier.queue_id,
    });
    actions.push(Action::output(s.out_port));
    let mut instructions: openflow::Instructions<'static> = Default::default();
    if let Some(meter_id) = s.meter {
        instructions.push(Instruction::Meter { meter_id });
    }
    instructions.push(Instruction::ApplyActions { actions });
    FlowMod {
        cookie: cookie::cookie(Kind::Session, s.session),
        command: s.command,
        priority: prio::SESSION,
        idle_timeout: s.idle_timeout,
        flags: if s.notify {
            flow_mod_flags::SEND_FLOW_REM
        } else {
            0
        },
        match_: session_match(s.key, s.dir),
        instructions,
        ..FlowMod::default()
    }
}

/// A flow of a call's media leg: UDP from `src` to `dst`'s port, with the
/// call's meter, DSCP, queue and output (as `session_flow` would write
/// them), under the media cookie of the call's session id.
pub fn media_flow(
    s: &FlowSpec<'_>,
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
) -> FlowMod<'static> {
    let mut f = session_flow(s);
    f.cookie = cookie::cookie(Kind::Media, s.session);
    f.match_ = Match::new()
        .with(Oxm::EthType(0x0800, None))
        .with(Oxm::Ipv4Src(*src.ip(), None))
        .with(Oxm::Ipv4Dst(*dst.ip(), None))
        .with(Oxm::IpProto(17, None))
        .with(Oxm::UdpDst(dst.port(), None));
    f
}

/// A session without its tier (no meter left on a switch of its path):
/// its traffic forwarded plainly, matched as its tier flows would match
/// it, idling out after `idle` seconds. No meter, no DSCP, no queue: a
/// tier's flows never go out without their meter.
pub fn untiered_flow(
    id: u64,
    key: &SessionKey,
    dir: Dir,
    out_port: u32,
    idle: u16,
) -> FlowMod<'static> {
    FlowMod {
        cookie: cookie::cookie(Kind::Untiered, id),
        priority: prio::SESSION,
        idle_timeout: idle,
        match_: session_match(key, dir),
        instructions: [Instruction::ApplyActions {
            actions: [Action::output(out_port)].into_iter().collect(),
        }]
        .into_iter()
        .collect(),
        ..FlowMod::default()
    }
}

/// A per-session meter: one DROP band at `rate_kbps` whose bucket holds
/// `bucket_kbits` (`qos` sizes it; OVS's userspace datapath enforces DROP
/// bands only).
pub fn meter(
    command: MeterModCommand,
    meter_id: u32,
    rate_kbps: u32,
    bucket_kbits: u32,
) -> MeterMod<'static> {
    MeterMod {
        command,
        flags: meter_flags::KBPS | meter_flags::BURST | meter_flags::STATS,
        meter_id,
        bands: vec![MeterBand::Drop {
            rate: rate_kbps,
            burst_size: bucket_kbits,
        }],
    }
}

pub fn delete_meter(meter_id: u32) -> MeterMod<'static> {
    MeterMod {
        command: MeterModCommand::Delete,
        flags: 0,
        meter_id,
        bands: Vec::new(),
    }
}

/// Deletes session `id`'s tier flows from a switch.
pub fn delete_session(id: u64) -> FlowMod<'static> {
    cookie::delete(cookie::cookie(Kind::Session, id), cookie::EXACT)
}

/// Deletes the media-leg flows of session `id` from a switch.
pub fn delete_media(id: u64) -> FlowMod<'static> {
    cookie::delete(cookie::cookie(Kind::Media, id), cookie::EXACT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gold() -> Tier {
        Tier {
            name: "gold".into(),
            min_benefit: 0.0,
            rate_kbps: 50_000,
            burst_kbits: 5000,
            dscp: 46,
            queue_id: 1,
            queue_min_kbps: 0,
            hold_rate_kbps: 64,
        }
    }

    fn key() -> SessionKey {
        SessionKey {
            client: Ipv4Addr::new(10, 0, 0, 1),
            server: Ipv4Addr::new(10, 0, 0, 101),
            l4: Some((6, 5201)),
            client_port: None,
        }
    }

    #[test]
    fn ingress_forward_flow_reads_as_ovs_would_print_it() {
        let k = key();
        let t = gold();
        let f = session_flow(&FlowSpec {
            session: 9,
            key: &k,
            tier: &t,
            dir: Dir::Fwd,
            meter: Some(3),
            out_port: 2,
            ingress: true,
            notify: true,
            idle_timeout: 30,
            command: FlowModCommand::Add,
        });
        let json = serde_json::to_value(&f).expect("json");
        assert_eq!(json["priority"], 30_000);
        assert_eq!(json["flags"], 1);
        assert_eq!(json["cookie"], cookie::cookie(Kind::Session, 9));
        let text = json.to_string();
        for want in [
            r#"{"field":"ipv4_src","value":"10.0.0.1"}"#,
            r#"{"field":"ipv4_dst","value":"10.0.0.101"}"#,
            r#"{"field":"tcp_dst","value":5201}"#,
            r#"{"type":"METER","meter_id":3}"#,
            r#"{"field":"ip_dscp","value":46}"#,
            r#"{"type":"SET_QUEUE","queue_id":1}"#,
            r#"{"type":"OUTPUT","port":2,"max_len":0}"#,
        ] {
            assert!(text.contains(want), "{want} missing from {text}");
        }
    }

    #[test]
    fn reverse_transit_flow_matches_the_source_port_and_does_not_mark() {
        let k = key();
        let t = gold();
        let f = session_flow(&FlowSpec {
            session: 9,
            key: &k,
            tier: &t,
            dir: Dir::Rev,
            meter: None,
            out_port: 1,
            ingress: false,
            notify: false,
            idle_timeout: 30,
            command: FlowModCommand::ModifyStrict,
        });
        let text = serde_json::to_string(&f).expect("json");
        assert!(
            text.contains(r#"{"field":"tcp_src","value":5201}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{"field":"ipv4_src","value":"10.0.0.101"}"#),
            "{text}"
        );
        assert!(!text.contains("ip_dscp"), "{text}");
        assert!(!text.contains("meter_id"), "{text}");
        assert_eq!(f.flags, 0);
    }

    #[test]
    fn sip_sessions_match_the_address_pair_only() {
        let k = SessionKey { l4: None, ..key() };
        let m = session_match(&k, Dir::Fwd);
        assert_eq!(m.fields.len(), 3);
    }

    #[test]
    fn a_requested_flow_matches_both_ports_and_any_port_matches_none() {
        let k = SessionKey {
            l4: Some((17, 20000)),
            client_port: Some(40000),
            ..key()
        };
        let fwd = serde_json::to_string(&session_match(&k, Dir::Fwd)).expect("json");
        assert!(
            fwd.contains(r#"{"field":"udp_src","value":40000}"#),
            "{fwd}"
        );
        assert!(
            fwd.contains(r#"{"field":"udp_dst","value":20000}"#),
            "{fwd}"
        );
        let rev = serde_json::to_string(&session_match(&k, Dir::Rev)).expect("json");
        assert!(
            rev.contains(r#"{"field":"udp_src","value":20000}"#),
            "{rev}"
        );
        assert!(
            rev.contains(r#"{"field":"udp_dst","value":40000}"#),
            "{rev}"
        );
        let rtcp = k.ports_plus(1).expect("rtcp");
        assert_eq!(
            (rtcp.l4, rtcp.client_port),
            (Some((17, 20001)), Some(40001))
        );
        // Any server port: only the protocol (and the client's port).
        let any = SessionKey {
            l4: Some((6, 0)),
            client_port: None,
            ..key()
        };
        let m = session_match(&any, Dir::Fwd);
        assert_eq!(m.fields.len(), 4);
        assert!(any.ports_plus(1).is_none());
    }

    #[test]
    fn an_untiered_flow_forwards_without_meter_mark_or_queue() {
        let k = key();
        let f = untiered_flow(9, &k, Dir::Fwd, 2, 30);
        let text = serde_json::to_string(&f).expect("json");
        assert_eq!(f.priority, prio::SESSION);
        assert_eq!(cookie::id_of(f.cookie, Kind::Untiered), Some(9));
        assert!(
            text.contains(r#"{"type":"OUTPUT","port":2,"max_len":0}"#),
            "{text}"
        );
        for absent in ["METER", "ip_dscp", "SET_QUEUE"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }

    #[test]
    fn meters_are_drop_bands_in_kbps_with_burst() {
        let m = meter(MeterModCommand::Add, 4, 5000, 500);
        assert_eq!(m.flags & meter_flags::KBPS, meter_flags::KBPS);
        assert_eq!(
            m.bands,
            vec![MeterBand::Drop {
                rate: 5000,
                burst_size: 500
            }]
        );
        let mut v = Vec::new();
        openflow::encode(1, &openflow::Message::MeterMod(m), &mut v).expect("encodes");
        assert_eq!(v.len(), 16 + 16);
    }
}
