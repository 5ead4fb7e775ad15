//! Fuzz target `sip`: `tierflow::sip::parse` on any UDP payload never
//! panics, and what it returns can be used as the controller uses it
//! (Call-ID, SDP, hold cause, media endpoints and RTCP ports) without
//! panicking either. The payload is parsed with two numbering plans, the
//! default one and a region without national prefix rules, as callers'
//! numbers go through `phonenumber`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tierflow::sip::{SipError, SipMessage, parse};

fuzz_target!(|data: &[u8]| {
    for region in ["US", "GB"] {
        match parse(data, region) {
            Ok(msg) => use_message(&msg),
            Err(e) => {
                // Every error names its reason.
                let text = e.to_string();
                assert!(!text.is_empty());
                if let SipError::NotSip(why) = e {
                    assert!(!why.is_empty());
                }
            }
        }
    }
});

fn use_message(msg: &SipMessage) {
    let _ = msg.call_id();
    if let Some(sdp) = msg.sdp() {
        let _ = sdp.is_hold();
        let _ = sdp.hold_cause().map(|h| h.to_string());
        for (ip, port) in sdp.media_endpoints() {
            assert_ne!(port, 0, "an endpoint of a disabled stream ({ip})");
        }
        for m in &sdp.media {
            let _ = m.effective_rtcp_port();
        }
    }
    match msg {
        SipMessage::Request(r) => {
            assert!(!r.method.is_empty());
            if let Some(c) = &r.caller {
                // E.164: '+' and at most 15 digits.
                assert!(c.starts_with('+'), "caller {c:?}");
                assert!(c.len() <= 16 && c[1..].bytes().all(|b| b.is_ascii_digit()), "caller {c:?}");
            }
            let _ = format!("{r:?}");
        }
        SipMessage::Response(r) => {
            assert!((100..=699).contains(&r.status), "status {}", r.status);
            let _ = format!("{r:?}");
        }
    }
}
