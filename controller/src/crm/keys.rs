//! The Redis key schema of the CRM: every key name Tierflow reads or
//! writes is built here and nowhere else. `docs/crm.md` holds the same
//! table for operators.
//!
//! | key | type | contents | written by |
//! |---|---|---|---|
//! | `tf:tier:{name}` | string | JSON [`Tier`](tierflow_api::model::Tier) | `Store::put_tier`, `load` |
//! | `tf:tiers` | set | names of the tiers | same |
//! | `tf:customer:{id}` | string | JSON [`Customer`](tierflow_api::model::Customer) | `Store::put_customer`, `load` (Lua) |
//! | `tf:customers` | set | customer ids | same |
//! | `tf:customer-idx:{id}` | hash | index key → length class of every index entry the customer owns | same |
//! | `tf:idx:phone:{e164}` | string | customer id | same |
//! | `tf:idx:ip:{addr}` | string | customer id (an address, or a /32 or /128) | same |
//! | `tf:idx:ip:{net}/{len}` | string | customer id (a shorter prefix, host bits zero) | same |
//! | `tf:idx:ip-lens` | hash | length class (`4/24`, `6/48`) → how many prefix entries have it | same |
//! | `tf:promo:{code}` | string | JSON [`Promotion`](tierflow_api::model::Promotion) | `Store::put_promotion`, `load` |
//! | `tf:promos` | set | promotion codes | same |
//! | `tf:service:{name}` | string | JSON [`Service`](tierflow_api::model::Service) | `Store::put_service`, `load` |
//! | `tf:services` | set | service names | same |
//! | `tf:policy` | string | JSON [`Policy`](tierflow_api::model::Policy); absent means the default policy | `Store::put_policy`, `load` |
//! | `tf:vlan:{vid}` | string | JSON [`Vlan`](tierflow_api::model::Vlan) | `Store::put_vlan`, `load` |
//! | `tf:vlans` | set | vids | same |
//! | `tf:vlan-nets` | hash | vid → its gateways' subnets as `first-last` address numbers, comma separated (the overlap check's index) | same |
//! | `tf:port:{dpid}:{port}` | string | JSON [`PortConfig`](tierflow_api::model::PortConfig) (dpid as 16 hex digits) | `Store::put_port`, `load` |
//! | `tf:ports` | set | `{dpid}:{port}` of every configured port | same |
//! | `tf:session:{id}` | string | JSON [`Session`](tierflow_api::model::Session); expires 1 h after the session ends | the control plane |
//! | `tf:sessions` | set | ids of live sessions | the control plane |
//! | `tf:events` | pub/sub channel | `"<kind> <name>"` after every CRM write | every CRM write |
//! | `tf:cluster:leader` | string | id of the instance that masters the switches; expires with its lease | `Store::heartbeat` (Lua) |
//! | `tf:cluster:term` | counter | grows with every new leader: the OpenFlow `generation_id` | same |
//! | `tf:cluster:members` | sorted set | instance id → end of its lease (ms, Redis's clock) | same |
//! | `tf:cluster:info` | hash | instance id → JSON the instance describes itself with | same |
//!
//! Event kinds: `tier`, `customer`, `promotion`, `service`, `vlan` (name:
//! the vid), `port` (name: `{dpid}:{port}`), `policy` (name `-`) and
//! `reload` (name `-`, after a bulk load: re-read everything).
//!
//! Why a per-customer `customer-idx` hash: the index keys are built from the
//! canonical form of the customer's addresses, which Lua cannot compute, so
//! the write script needs the old entries spelled out to remove them. Why a
//! length-class hash with counts rather than a set: a length stays listed
//! exactly while some prefix of that length is indexed, so lookups never
//! probe lengths nobody uses.

use ipnet::IpNet;
use std::fmt::Write as _;
use std::net::IpAddr;
use tierflow_api::model::{Customer, is_e164, parse_net};

/// Everything Tierflow keeps in Redis starts with this.
pub const PREFIX: &str = "tf:";
pub const TIERS: &str = "tf:tiers";
pub const CUSTOMERS: &str = "tf:customers";
pub const PROMOS: &str = "tf:promos";
pub const SERVICES: &str = "tf:services";
pub const POLICY: &str = "tf:policy";
pub const IP_LENS: &str = "tf:idx:ip-lens";
pub const SESSIONS: &str = "tf:sessions";
pub const VLANS: &str = "tf:vlans";
pub const VLAN_NETS: &str = "tf:vlan-nets";
pub const PORTS: &str = "tf:ports";
/// The pub/sub channel of change events.
pub const EVENTS: &str = "tf:events";
pub const CLUSTER_LEADER: &str = "tf:cluster:leader";
pub const CLUSTER_TERM: &str = "tf:cluster:term";
pub const CLUSTER_MEMBERS: &str = "tf:cluster:members";
pub const CLUSTER_INFO: &str = "tf:cluster:info";

pub fn tier(name: &str) -> String {
    format!("tf:tier:{name}")
}

pub fn customer(id: &str) -> String {
    format!("tf:customer:{id}")
}

/// The hash of index entries a customer owns.
pub fn customer_idx(id: &str) -> String {
    format!("tf:customer-idx:{id}")
}

pub fn promo(code: &str) -> String {
    format!("tf:promo:{code}")
}

pub fn service(name: &str) -> String {
    format!("tf:service:{name}")
}

/// A VLAN's record; `vid` as the decimal number.
pub fn vlan(vid: &str) -> String {
    format!("tf:vlan:{vid}")
}

/// A port's name in `tf:ports` and in events: `{dpid}:{port}`, the dpid
/// as 16 hex digits.
pub fn port_name(dpid: u64, port: u32) -> String {
    format!("{dpid:016x}:{port}")
}

/// A port's record, by its name (`port_name`).
pub fn port(name: &str) -> String {
    format!("tf:port:{name}")
}

/// The subnets of a VLAN's gateways for `tf:vlan-nets`: `first-last` as
/// address numbers, comma separated.
pub fn vlan_ranges(v: &tierflow_api::model::Vlan) -> String {
    v.gateways()
        .iter()
        .map(|g| {
            let (a, b) = g.range();
            format!("{a}-{b}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What a session's key starts with (its id follows).
pub const SESSION_PREFIX: &str = "tf:session:";

pub fn session(id: &str) -> String {
    format!("{SESSION_PREFIX}{id}")
}

pub fn phone_idx(e164: &str) -> String {
    format!("tf:idx:phone:{e164}")
}

/// The index key of an exact address.
pub fn ip_idx(addr: IpAddr) -> String {
    format!("tf:idx:ip:{}", addr.to_canonical())
}

/// The index key of a prefix (host bits must already be zero). A full-length
/// prefix is an address and gets the address's key.
pub fn net_idx(net: IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        ip_idx(net.addr())
    } else {
        let mut k = String::with_capacity(48);
        let _ = write!(k, "tf:idx:ip:{net}");
        k
    }
}

/// The length class of a prefix in `tf:idx:ip-lens`: `4/24`, `6/48`.
/// `None` for full-length prefixes (addresses), which are always probed.
pub fn len_class(net: IpNet) -> Option<String> {
    if net.prefix_len() == net.max_prefix_len() {
        return None;
    }
    Some(match net {
        IpNet::V4(n) => format!("4/{}", n.prefix_len()),
        IpNet::V6(n) => format!("6/{}", n.prefix_len()),
    })
}

/// Parses a length class back: `(is_v6, len)`.
pub fn parse_len_class(s: &str) -> Option<(bool, u8)> {
    let (fam, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    match fam {
        "4" if len < 32 => Some((false, len)),
        "6" if len < 128 => Some((true, len)),
        _ => None,
    }
}

/// The canonical prefix of a customer's `ips` entry: host bits zero and
/// IPv4-mapped IPv6 addresses as IPv4, so it meets a client address
/// (itself canonicalised) on the same key.
pub fn canonical_net(s: &str) -> Option<IpNet> {
    let net = parse_net(s)?;
    if net.prefix_len() == net.max_prefix_len() {
        return Some(IpNet::from(net.addr().to_canonical()));
    }
    Some(net)
}

/// One index entry a customer owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub key: String,
    /// Length class for `tf:idx:ip-lens`, empty for phones and addresses.
    pub class: String,
    /// The record field it comes from (`phones[0]`, `ips[1]`).
    pub field: String,
    /// The field's value as the record gives it.
    pub value: String,
}

/// The index entries of a customer, each key once (a repeated number or
/// an address given twice, as `10.0.0.1` and `10.0.0.1/32`, is one entry).
/// Entries that are not valid numbers or prefixes are skipped: validation
/// rejects such records before they get here.
pub fn index_entries(c: &Customer) -> Vec<IndexEntry> {
    let mut out: Vec<IndexEntry> = Vec::with_capacity(c.phones.len() + c.ips.len());
    let mut push = |key: String, class: String, field: String, value: &str| {
        if !out.iter().any(|e| e.key == key) {
            out.push(IndexEntry {
                key,
                class,
                field,
                value: value.to_owned(),
            });
        }
    };
    for (i, p) in c.phones.iter().enumerate() {
        if is_e164(p) {
            push(phone_idx(p), String::new(), format!("phones[{i}]"), p);
        }
    }
    for (i, ip) in c.ips.iter().enumerate() {
        if let Some(net) = canonical_net(ip) {
            push(
                net_idx(net),
                len_class(net).unwrap_or_default(),
                format!("ips[{i}]"),
                ip,
            );
        }
    }
    out
}

/// An event on [`EVENTS`]: `"<kind> <name>"`.
pub fn event(kind: &str, name: &str) -> String {
    format!("{kind} {name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_are_canonical() {
        let c: Customer = serde_json::from_str(
            r#"{"id":"c-1","phones":["+14155550100","+14155550100"],
                "ips":["10.0.0.1","10.0.0.1/32","10.0.1.7/24","::ffff:10.0.0.9","2001:db8::/48"]}"#,
        )
        .expect("customer");
        let e = index_entries(&c);
        let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "tf:idx:phone:+14155550100",
                "tf:idx:ip:10.0.0.1",
                "tf:idx:ip:10.0.1.0/24",
                "tf:idx:ip:10.0.0.9",
                "tf:idx:ip:2001:db8::/48",
            ]
        );
        let classes: Vec<&str> = e.iter().map(|e| e.class.as_str()).collect();
        assert_eq!(classes, ["", "", "4/24", "", "6/48"]);
        assert_eq!(e[2].field, "ips[2]");
    }

    #[test]
    fn len_classes_round_trip() {
        assert_eq!(parse_len_class("4/24"), Some((false, 24)));
        assert_eq!(parse_len_class("6/48"), Some((true, 48)));
        assert_eq!(parse_len_class("4/32"), None);
        assert_eq!(parse_len_class("4/x"), None);
        assert_eq!(parse_len_class("5/8"), None);
    }
}
