//! Fuzz target `decode`: splits the input into OpenFlow messages and checks,
//! for every message that decodes, that the codec is self-consistent:
//! re-encoding gives `buffer_len()` bytes, the re-encoding decodes again,
//! re-encoding that is a fixed point (same bytes), and `to_json` does not
//! panic. Decoding itself must never panic on any input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::framing::{MAX_MESSAGE_LEN, split};
use openflow::{decode, encode_versioned, to_json};

fuzz_target!(|data: &[u8]| {
    for frame in split(data) {
        // Declared before the decoded message, which must not outlive it.
        let mut first = Vec::new();
        // A truncated tail or a length below the header ends the stream;
        // that is the framing's documented behaviour, not a failure.
        let Ok((_, bytes)) = frame else { break };
        let Ok((header, msg)) = decode(bytes) else {
            continue;
        };
        let json = to_json(&header, &msg);
        assert!(json.is_object());

        let written = match encode_versioned(header.version, header.xid, &msg, &mut first) {
            Ok(n) => n,
            Err(e) => {
                // Only a HELLO whose last element's padding was cut short can
                // grow on re-encoding (the full padding is written back); a
                // message within 7 bytes of the limit may then not fit.
                assert!(
                    bytes.len() > MAX_MESSAGE_LEN - 8,
                    "re-encoding a decoded {}-byte message failed: {e}",
                    bytes.len()
                );
                continue;
            }
        };
        assert_eq!(written, first.len(), "encode's count vs bytes written");
        assert_eq!(first.len(), msg.buffer_len(), "buffer_len vs bytes written");

        let (header2, msg2) = match decode(&first) {
            Ok(d) => d,
            Err(e) => panic!(
                "re-encoding of a decoded message does not decode: {e}\n\
                 message: {msg:?}\nre-encoded: {first:02x?}"
            ),
        };
        assert_eq!(header2.version, header.version);
        assert_eq!(header2.xid, header.xid);
        assert_eq!(header2.msg_type, header.msg_type);
        // Decoding is canonical once padding and lengths are normalised, so
        // the second decode gives back the same value.
        assert_eq!(msg2, msg, "decode(encode(m)) != m");

        let mut second = Vec::new();
        let again = encode_versioned(header2.version, header2.xid, &msg2, &mut second);
        assert_eq!(again, Ok(first.len()));
        assert_eq!(second, first, "re-encoding is not a fixed point");
        let _ = to_json(&header2, &msg2);
    }
});
