//! Fuzz target `sdp`: `tierflow::sip::Sdp::parse` on any body never
//! panics, and a parsed description answers the hold and media questions
//! without panicking (and never names a stream whose port is 0).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tierflow::sip::Sdp;

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = Sdp::parse(data) else {
        return;
    };
    let _ = sdp.is_hold();
    assert_eq!(sdp.is_hold(), sdp.hold_cause().is_some());
    for (_, port) in sdp.media_endpoints() {
        assert_ne!(port, 0);
    }
    for m in &sdp.media {
        if let Some(p) = m.effective_rtcp_port() {
            assert_ne!(p, 0, "{m:?}");
        }
    }
});
