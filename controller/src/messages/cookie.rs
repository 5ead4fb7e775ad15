//! The controller's cookie namespace: every flow Tierflow installs carries
//! a cookie whose top 16 bits say "Tierflow" and next 8 bits say what kind
//! of flow it is, so Tierflow can find, replace and delete its own flows
//! without touching anyone else's.

/// `0x7466` ("tf") in the top 16 bits.
pub const NAMESPACE: u64 = 0x7466 << 48;
/// Mask selecting the namespace bits.
pub const NAMESPACE_MASK: u64 = 0xffff << 48;
/// Mask selecting namespace and kind.
pub const KIND_MASK: u64 = 0x00ff_ffff << 40;
/// Mask selecting everything: one exact cookie.
pub const EXACT: u64 = u64::MAX;

/// What a flow is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Table-miss, LLDP-to-controller: installed on connect.
    Infra = 1,
    /// Shortest-path forwarding between two hosts.
    Path = 2,
    /// A session's tier flows.
    Session = 3,
    /// Service catch and SIP signalling flows: traffic to the services
    /// goes to the controller first.
    Service = 4,
    /// A call's media flows to an address its session flows do not cover
    /// (same id as the call's session).
    Media = 5,
    /// A session refused its tier (a switch of its path had no meter
    /// left): plain forwarding for its traffic, above the service catch
    /// so its packets stop coming to the controller until it idles out.
    Untiered = 6,
}

/// The cookie for a flow of `kind` with a 40-bit id.
pub const fn cookie(kind: Kind, id: u64) -> u64 {
    NAMESPACE | ((kind as u64) << 40) | (id & 0xff_ffff_ffff)
}

/// A FLOW_MOD deleting, in every table, the flows whose cookie matches
/// `cookie` under `mask`: the one way Tierflow removes its own flows (all
/// of them, one kind, or one path or session).
pub fn delete(cookie: u64, mask: u64) -> openflow::FlowMod<'static> {
    openflow::FlowMod {
        command: openflow::FlowModCommand::Delete,
        table_id: openflow::TABLE_ALL,
        cookie,
        cookie_mask: mask,
        ..openflow::FlowMod::default()
    }
}

/// The id part of one of our cookies of `kind`, if it is one.
pub fn id_of(cookie: u64, kind: Kind) -> Option<u64> {
    (cookie & KIND_MASK == self::cookie(kind, 0)).then_some(cookie & 0xff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_ids_round_trip_and_stay_in_namespace() {
        let c = cookie(Kind::Path, 42);
        assert_eq!(c & NAMESPACE_MASK, NAMESPACE);
        assert_eq!(id_of(c, Kind::Path), Some(42));
        assert_eq!(id_of(c, Kind::Session), None);
        assert_eq!(id_of(0x1234, Kind::Path), None);
        assert_eq!(id_of(cookie(Kind::Infra, 1 << 41), Kind::Infra), Some(0));
    }
}
