//! Plain forwarding flows: one per switch of a path, matching the pair of
//! Ethernet addresses.

use super::cookie::{self, Kind};
use super::prio;
use openflow::{Action, FlowMod, Instruction, MacAddr, Match, Oxm};

/// Encoded size of a `path_flow`: header 8, fixed part 40, match with
/// eth_src and eth_dst 24, apply-actions with one output 24. Path records
/// keep their flows encoded, this many bytes per hop.
pub const PATH_FLOW_LEN: usize = 96;

/// The flow of path `id` on one switch: `src` to `dst` leaves by
/// `out_port`, idling out after `idle` seconds.
pub fn path_flow(
    id: u64,
    src: MacAddr,
    dst: MacAddr,
    out_port: u32,
    idle: u16,
) -> FlowMod<'static> {
    FlowMod {
        cookie: cookie::cookie(Kind::Path, id),
        priority: prio::PATH,
        idle_timeout: idle,
        match_: Match::new()
            .with(Oxm::EthSrc(src, None))
            .with(Oxm::EthDst(dst, None)),
        instructions: [Instruction::ApplyActions {
            actions: [Action::output(out_port)].into_iter().collect(),
        }]
        .into_iter()
        .collect(),
        ..FlowMod::default()
    }
}

/// Deletes path `id`'s flow from a switch.
pub fn delete_path(id: u64) -> FlowMod<'static> {
    cookie::delete(cookie::cookie(Kind::Path, id), cookie::EXACT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_flow_is_ninety_six_bytes_and_reads_like_ovs() {
        let a = MacAddr([0, 0, 0, 0, 0, 1]);
        let b = MacAddr([0, 0, 0, 0, 0, 2]);
        let f = path_flow(7, a, b, 3, 60);
        let mut v = Vec::new();
        openflow::encode(0, &f, &mut v).expect("encodes");
        assert_eq!(v.len(), PATH_FLOW_LEN);
        let text = serde_json::to_string(&f).expect("json");
        for want in [
            r#""priority":10"#,
            r#""idle_timeout":60"#,
            r#"{"field":"eth_src","value":"00:00:00:00:00:01"}"#,
            r#"{"field":"eth_dst","value":"00:00:00:00:00:02"}"#,
            r#"{"type":"OUTPUT","port":3,"max_len":0}"#,
        ] {
            assert!(text.contains(want), "{want} missing from {text}");
        }
        assert_eq!(cookie::id_of(f.cookie, Kind::Path), Some(7));
        assert_eq!(delete_path(7).cookie_mask, cookie::EXACT);
    }
}
