//! Which packets are about sessions: the services compiled for matching,
//! and the classification of an IPv4 packet against them. Pure: no table,
//! no topology.

use super::record::{Name, Names};
use crate::frame::Ip4;
use crate::messages::SessionKey;
use ipnet::Ipv4Net;
use smallvec::SmallVec;
use tierflow_api::model::{Service, ServiceKind};

/// A service, compiled for matching packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Svc {
    pub name: Name,
    pub net: Ipv4Net,
    pub proto: u8,
    pub port: u16,
    pub kind: ServiceKind,
}

impl Svc {
    /// None for an IPv6 service: sessions are IPv4 (the match fields the
    /// tier flows use).
    pub fn compile(s: &Service, names: &Names) -> Option<Svc> {
        let net = match s.net()? {
            ipnet::IpNet::V4(n) => n,
            ipnet::IpNet::V6(_) => return None,
        };
        Some(Svc {
            name: names.intern(&s.name),
            net,
            proto: s.proto.ip_proto(),
            port: s.port,
            kind: s.kind,
        })
    }

    fn is_sip(&self) -> bool {
        self.kind == ServiceKind::Sip && self.proto == 17
    }

    /// `(address, port)` is this service.
    fn is(&self, proto: u8, ip: std::net::Ipv4Addr, port: u16) -> bool {
        self.proto == proto && self.port == port && self.net.contains(&ip)
    }
}

/// What a TCP or UDP packet is to the sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// SIP signalling to or from a SIP service; `key` is the call's
    /// (caller, server) pair.
    Sip {
        svc: Svc,
        to_server: bool,
        key: SessionKey,
    },
    /// A packet towards a service: a session request (or a packet of a
    /// session whose flows idled out).
    Request { svc: Svc, key: SessionKey },
    /// Not towards a service: maybe the server's side of a live session,
    /// or a call's media. The keys to try, in order.
    Maybe(SmallVec<[SessionKey; 3]>),
}

/// Classifies `p` against `services`.
pub fn classify(services: &[Svc], p: &Ip4<'_>) -> Class {
    if p.proto == 17
        && let Some(svc) = services
            .iter()
            .find(|s| s.is_sip() && (s.is(17, p.dst, p.dport) || s.is(17, p.src, p.sport)))
    {
        let to_server = svc.is(17, p.dst, p.dport);
        let (client, server) = if to_server {
            (p.src, p.dst)
        } else {
            (p.dst, p.src)
        };
        return Class::Sip {
            svc: *svc,
            to_server,
            key: SessionKey {
                client,
                server,
                l4: None,
                client_port: None,
            },
        };
    }
    if let Some(svc) = services.iter().find(|s| s.is(p.proto, p.dst, p.dport)) {
        return Class::Request {
            svc: *svc,
            key: SessionKey {
                client: p.src,
                server: p.dst,
                l4: Some((p.proto, p.dport)),
                client_port: None,
            },
        };
    }
    let mut keys = SmallVec::new();
    if services.iter().any(|s| s.is(p.proto, p.src, p.sport)) {
        keys.push(SessionKey {
            client: p.dst,
            server: p.src,
            l4: Some((p.proto, p.sport)),
            client_port: None,
        });
    }
    for (client, server) in [(p.src, p.dst), (p.dst, p.src)] {
        keys.push(SessionKey {
            client,
            server,
            l4: None,
            client_port: None,
        });
    }
    Class::Maybe(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use tierflow_api::model::Proto;

    fn services(names: &Names) -> Vec<Svc> {
        [
            ("sip", "10.0.0.100", Proto::Udp, 5060, ServiceKind::Sip),
            ("web", "10.0.1.0/24", Proto::Tcp, 80, ServiceKind::Web),
        ]
        .into_iter()
        .filter_map(|(name, ip, proto, port, kind)| {
            Svc::compile(
                &Service {
                    name: name.into(),
                    ip: ip.into(),
                    proto,
                    port,
                    kind,
                },
                names,
            )
        })
        .collect()
    }

    fn ip4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, proto: u8) -> Ip4<'static> {
        Ip4 {
            src: Ipv4Addr::from(src),
            dst: Ipv4Addr::from(dst),
            proto,
            sport,
            dport,
            payload: &[],
        }
    }

    #[test]
    fn requests_sip_both_ways_and_the_server_side() {
        let names = Names::default();
        let s = services(&names);
        match classify(&s, &ip4([10, 0, 0, 1], 40000, [10, 0, 1, 7], 80, 6)) {
            Class::Request { key, .. } => {
                assert_eq!(key.l4, Some((6, 80)));
                assert_eq!(key.server, Ipv4Addr::new(10, 0, 1, 7));
            }
            other => panic!("{other:?}"),
        }
        for (p, to_server) in [
            (ip4([10, 0, 0, 1], 5060, [10, 0, 0, 100], 5060, 17), true),
            (ip4([10, 0, 0, 100], 5060, [10, 0, 0, 1], 5060, 17), false),
        ] {
            match classify(&s, &p) {
                Class::Sip {
                    to_server: t, key, ..
                } => {
                    assert_eq!(t, to_server);
                    assert_eq!(key.client, Ipv4Addr::new(10, 0, 0, 1));
                    assert_eq!(key.l4, None);
                }
                other => panic!("{other:?}"),
            }
        }
        match classify(&s, &ip4([10, 0, 1, 7], 80, [10, 0, 0, 1], 40000, 6)) {
            Class::Maybe(keys) => {
                assert_eq!(keys.len(), 3);
                assert_eq!(keys[0].client, Ipv4Addr::new(10, 0, 0, 1));
                assert_eq!(keys[0].l4, Some((6, 80)));
            }
            other => panic!("{other:?}"),
        }
        // TCP to the SIP server's address is not SIP.
        assert!(matches!(
            classify(&s, &ip4([10, 0, 0, 1], 1, [10, 0, 0, 100], 5060, 6)),
            Class::Maybe(_)
        ));
    }
}
