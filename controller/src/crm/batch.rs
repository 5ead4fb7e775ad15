//! What the lookup batcher and the store share: the cached prefix lengths
//! of the IP index, and a lookup's question and reply slot. Types only,
//! so the store (which holds them) and the batcher (which fills them) do
//! not import each other.

use super::Lookup;
use super::error::Result;
use super::keys;
use ipnet::IpNet;
use std::net::IpAddr;
use tierflow_api::model::{check_name, is_e164};
use tokio::sync::oneshot;

/// The prefix lengths (other than full addresses) the IP index uses, per
/// family, longest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct IpLens {
    pub(super) v4: Vec<u8>,
    pub(super) v6: Vec<u8>,
}

impl IpLens {
    pub(super) fn from_classes(classes: &[String]) -> IpLens {
        let mut l = IpLens::default();
        for (v6, len) in classes.iter().filter_map(|c| keys::parse_len_class(c)) {
            if v6 { &mut l.v6 } else { &mut l.v4 }.push(len);
        }
        for v in [&mut l.v4, &mut l.v6] {
            v.sort_unstable_by(|a, b| b.cmp(a));
            v.dedup();
        }
        l
    }

    pub(super) fn for_addr(&self, ip: IpAddr) -> &[u8] {
        if ip.is_ipv4() { &self.v4 } else { &self.v6 }
    }
}

/// The prefix index keys of `ip` for `lens`, in that order.
pub(super) fn prefix_keys(ip: IpAddr, lens: &[u8]) -> impl Iterator<Item = String> + '_ {
    lens.iter()
        .filter_map(move |&len| IpNet::new(ip, len).ok())
        .map(|n| keys::net_idx(n.trunc()))
}

/// One lookup's question, checked: a number that is not E.164 or a code
/// that is not a valid name cannot be in the CRM, so it is not asked.
#[derive(Debug)]
pub(super) struct Query {
    pub(super) phone: Option<String>,
    pub(super) ip: Option<IpAddr>,
    pub(super) promo: Option<String>,
}

impl Query {
    pub(super) fn new(phone: Option<&str>, ip: Option<IpAddr>, promo: Option<&str>) -> Query {
        Query {
            phone: phone.filter(|p| is_e164(p)).map(str::to_owned),
            ip: ip.map(|a| a.to_canonical()),
            promo: promo
                .filter(|c| check_name("promo_code", c).is_ok())
                .map(str::to_owned),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.phone.is_none() && self.ip.is_none() && self.promo.is_none()
    }
}

/// A lookup waiting for its batch.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) query: Query,
    pub(super) reply: oneshot::Sender<Result<Lookup>>,
}
