//! Writes to stdout the FLOW_MOD a tier installs for one session direction
//! (see `support/tier_flow.rs`). Used by the demo to show Open vSwitch
//! decoding Tierflow's bytes.

use std::io::Write;

#[path = "support/tier_flow.rs"]
mod tier_flow;

fn main() -> std::io::Result<()> {
    let bytes = openflow::to_vec(7, &tier_flow::tier_flow_mod()).map_err(std::io::Error::other)?;
    std::io::stdout().write_all(&bytes)
}
