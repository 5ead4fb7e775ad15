//! Malformed input always gives a clean `Err` with a sensible kind and byte
//! offset, never a panic: truncated messages (every prefix of every shared
//! vector), bad header lengths, bad OXM, match, action and instruction
//! lengths, unknown message and multipart types, wrong versions; the stream
//! framing (`openflow::framing`) on partial and truncated input; and a
//! deterministic mutation sweep flipping every byte of every vector.

use bytes::BytesMut;
use openflow::consts::{ErrorType, MsgType, bad_request};
use openflow::framing::{self, Frame};
use openflow::{DecodeError, ErrorKind, HelloElem, Message, decode, encode_versioned, to_json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

// ---------------------------------------------------------------------------
// Helpers.

/// The shared OpenFlow 1.3 vectors, sorted by file name. Panics when they
/// are missing: a sweep over nothing must not pass.
fn vectors() -> Vec<(String, Vec<u8>)> {
    let dir = std::env::var_os("TIERFLOW_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/vectors/of13"
            ))
        });
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "OpenFlow 1.3 vectors not found at {} ({e}); set TIERFLOW_VECTORS",
            dir.display()
        )
    });
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "packet"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&p).expect("readable vector");
            (name, bytes)
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 50,
        "only {} *.packet vectors in {}",
        out.len(),
        dir.display()
    );
    out
}

/// A message with an OpenFlow 1.3 header whose length covers `body`.
fn msg(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + body.len()).expect("test message fits");
    let mut v = vec![0x04, msg_type];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&[0x00, 0x00, 0x00, 0x2a]);
    v.extend_from_slice(body);
    v
}

/// `ofp_flow_mod` up to its match: ADD, table 0, no buffer, no filters.
const FLOW_MOD_FIXED: [u8; 40] = [
    0, 0, 0, 0, 0, 0, 0, 0, // cookie
    0, 0, 0, 0, 0, 0, 0, 0, // cookie_mask
    0, 0, 0, 0, 0, 0, 0, 0, // table_id, command, idle, hard, priority
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // buffer_id, out_port
    0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, // out_group, flags, pad
];
/// Where a FLOW_MOD's match starts.
const FM_MATCH: usize = 48;
/// Where a FLOW_MOD's instructions start when its match is `EMPTY_MATCH`.
const FM_INSTR: usize = 56;

const EMPTY_MATCH: [u8; 8] = [0x00, 0x01, 0x00, 0x04, 0, 0, 0, 0];

/// A FLOW_MOD whose match and instructions are `rest`.
fn flow_mod(rest: &[u8]) -> Vec<u8> {
    msg(14, &[&FLOW_MOD_FIXED[..], rest].concat())
}

/// A PACKET_OUT (no buffer, from the controller) declaring `actions_len`,
/// followed by `rest` (actions, then data).
fn packet_out(actions_len: u16, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd];
    body.extend_from_slice(&actions_len.to_be_bytes());
    body.extend_from_slice(&[0; 6]);
    body.extend_from_slice(rest);
    msg(13, &body)
}
/// Where a PACKET_OUT's actions start.
const PO_ACTIONS: usize = 24;

#[track_caller]
fn expect_err(bytes: &[u8], kind: ErrorKind, offset: usize) {
    match decode(bytes) {
        Ok((h, m)) => panic!(
            "{} decoded, expected {kind:?} at {offset}: {h:?} {m:?}",
            hex::encode(bytes)
        ),
        Err(e) => assert_eq!(
            e,
            DecodeError { kind, offset },
            "decoding {}",
            hex::encode(bytes)
        ),
    }
}

/// What became of one input.
#[derive(Debug)]
enum Outcome {
    /// Decoded, and its re-encoding decodes to the same header and message.
    Decoded,
    /// Decoded, but re-encoding it does not give the same message back.
    Unstable(String),
    Failed(DecodeError),
    Panicked(String),
}

/// Decodes without letting a panic escape, so that the failing input can be
/// named. What decodes is re-encoded and decoded again (it must come back
/// the same, padding aside) and printed as JSON when small (printing the
/// 11 KB table-features vectors thousands of times would dominate the run).
fn outcome(bytes: &[u8]) -> Outcome {
    let run = catch_unwind(AssertUnwindSafe(|| {
        // Declared first: the second decode borrows it for as long as the first.
        let mut again = Vec::new();
        let (h, m) = match decode(bytes) {
            Ok(x) => x,
            Err(e) => return Outcome::Failed(e),
        };
        if bytes.len() <= 2048 {
            let _ = to_json(&h, &m);
        }
        if let Err(e) = encode_versioned(h.version, h.xid, &m, &mut again) {
            return Outcome::Unstable(format!("re-encoding failed: {e}"));
        }
        match decode(&again) {
            Ok((h2, m2)) if h2 == h && m2 == m => Outcome::Decoded,
            other => Outcome::Unstable(format!(
                "{m:?} re-encoded as {} which decodes to {other:?}",
                hex::encode(&again)
            )),
        }
    }));
    run.unwrap_or_else(|p| {
        Outcome::Panicked(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default(),
        )
    })
}

// ---------------------------------------------------------------------------
// Truncation and header lengths.

#[test]
fn every_prefix_of_every_vector_is_truncated() {
    let mut prefixes = 0usize;
    for (name, v) in vectors() {
        let (h, _) = decode(&v).unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        let len = usize::from(h.length);
        assert!(len <= v.len(), "{name}: header length past the file");
        for n in 0..len {
            let prefix = &v[..n];
            match outcome(prefix) {
                Outcome::Panicked(p) => {
                    panic!("{name}: decoding the first {n} bytes panicked: {p}")
                }
                Outcome::Decoded | Outcome::Unstable(_) => {
                    panic!("{name}: the first {n} of {len} bytes decoded")
                }
                Outcome::Failed(e) => {
                    // The header is whole from 8 bytes on; before that the
                    // message is simply too short. Either way: "need the rest".
                    assert_eq!(e.kind, ErrorKind::Truncated, "{name}[..{n}]: {e}");
                    assert_eq!(e.offset, n, "{name}[..{n}]: {e}");
                    assert!(e.offset <= prefix.len());
                }
            }
            prefixes += 1;
        }
    }
    println!("{prefixes} truncated prefixes rejected");
}

/// The prefixes again, but with the header's length rewritten to match, so
/// that each body parser meets a structure cut short inside the message.
#[test]
fn every_prefix_with_a_consistent_header_fails_cleanly() {
    let (mut ok, mut err) = (0usize, 0usize);
    for (name, v) in vectors() {
        let (h, _) = decode(&v).unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        for n in 8..usize::from(h.length) {
            let mut cut = v[..n].to_vec();
            cut[2..4].copy_from_slice(&u16::try_from(n).expect("fits").to_be_bytes());
            match outcome(&cut) {
                Outcome::Panicked(p) => {
                    panic!("{name}: decoding {n} bytes (length patched) panicked: {p}")
                }
                Outcome::Unstable(d) => panic!("{name}[..{n}] (length patched): {d}"),
                Outcome::Decoded => ok += 1,
                Outcome::Failed(e) => {
                    assert!(e.offset <= n, "{name}[..{n}]: offset past input: {e}");
                    // A cut body can only look short, badly sized or left over.
                    assert!(
                        matches!(
                            e.kind,
                            ErrorKind::Truncated
                                | ErrorKind::BadLength { .. }
                                | ErrorKind::TrailingBytes { .. }
                                | ErrorKind::BadOxmLength { .. }
                                | ErrorKind::BadActionLength { .. }
                                | ErrorKind::BadInstructionLength { .. }
                        ),
                        "{name}[..{n}]: unexpected kind {e}"
                    );
                    err += 1;
                }
            }
        }
    }
    println!("length-patched prefixes: {ok} decoded, {err} rejected");
    assert!(
        err > ok,
        "most cut bodies must be rejected: {ok} ok, {err} err"
    );
}

#[test]
fn header_length_below_header() {
    for length in 0u16..8 {
        let mut b = msg(20, &[]);
        b[2..4].copy_from_slice(&length.to_be_bytes());
        expect_err(&b, ErrorKind::LengthBelowHeader { length }, 2);
        // Whatever follows does not matter: the length is wrong already.
        let mut longer = b.clone();
        longer.extend_from_slice(&[0; 32]);
        expect_err(&longer, ErrorKind::LengthBelowHeader { length }, 2);
    }
    let (t, c) = ErrorKind::LengthBelowHeader { length: 0 }.ofp_error();
    assert_eq!((t, c), (ErrorType::BadRequest, bad_request::BAD_LEN));
}

#[test]
fn header_length_past_buffer() {
    let mut b = msg(20, &[]);
    b[2..4].copy_from_slice(&16u16.to_be_bytes());
    expect_err(&b, ErrorKind::Truncated, 8);
    b[2..4].copy_from_slice(&0xffffu16.to_be_bytes());
    b.extend_from_slice(&[0; 100]);
    expect_err(&b, ErrorKind::Truncated, 108);
    // Short of a header altogether.
    for n in 0..8 {
        expect_err(&b[..n], ErrorKind::Truncated, n);
    }
}

#[test]
fn bytes_after_a_fixed_size_body() {
    // BARRIER_REQUEST, FEATURES_REQUEST and SET_CONFIG with 4 extra bytes.
    expect_err(
        &msg(20, &[1, 2, 3, 4]),
        ErrorKind::TrailingBytes { count: 4 },
        8,
    );
    expect_err(
        &msg(5, &[1, 2, 3, 4]),
        ErrorKind::TrailingBytes { count: 4 },
        8,
    );
    expect_err(
        &msg(9, &[0, 0, 0xff, 0xff, 9, 9, 9, 9]),
        ErrorKind::TrailingBytes { count: 4 },
        12,
    );
    // Bytes after the declared length belong to the next message: ignored.
    let mut two = msg(20, &[]);
    two.extend_from_slice(&msg(5, &[]));
    let (h, m) = decode(&two).expect("first of two messages");
    assert_eq!(
        (h.msg_type, m),
        (MsgType::BarrierRequest, Message::BarrierRequest)
    );
}

// ---------------------------------------------------------------------------
// Elements nested in a length-delimited parent: an OXM in its match, an
// action in its instruction, bucket or PACKET_OUT action list.

/// A malformed nested element, with the offset of that element.
struct Nested {
    what: &'static str,
    bytes: Vec<u8>,
    kind: ErrorKind,
    offset: usize,
}

fn nested_cases() -> Vec<Nested> {
    let oxm = |what, match_bytes: &[u8], kind, offset| Nested {
        what,
        bytes: flow_mod(match_bytes),
        kind,
        offset,
    };
    vec![
        // ipv4_src (field 11) declaring 3 bytes: match length 4 + 4 + 3 = 11.
        oxm(
            "ipv4_src OXM of length 3",
            &[
                0x00, 0x01, 0x00, 0x0b, 0x80, 0x00, 0x16, 0x03, 10, 0, 0, 0, 0, 0, 0, 0,
            ],
            ErrorKind::BadOxmLength {
                field: 11,
                length: 3,
            },
            FM_MATCH + 4,
        ),
        oxm(
            "ipv4_src OXM of length 5",
            &[
                0x00, 0x01, 0x00, 0x0d, 0x80, 0x00, 0x16, 0x05, 10, 0, 0, 1, 0, 0, 0, 0,
            ],
            ErrorKind::BadOxmLength {
                field: 11,
                length: 5,
            },
            FM_MATCH + 4,
        ),
        oxm(
            "ipv4_src OXM of length 3 after a valid in_port",
            &[
                0x00, 0x01, 0x00, 0x13, // match length 19
                0x80, 0x00, 0x00, 0x04, 0, 0, 0, 1, // in_port 1
                0x80, 0x00, 0x16, 0x03, 10, 0, 0, // ipv4_src, length 3
                0, 0, 0, 0, 0,
            ],
            ErrorKind::BadOxmLength {
                field: 11,
                length: 3,
            },
            FM_MATCH + 12,
        ),
        oxm(
            "masked eth_type of length 2 (needs 4)",
            &[
                0x00, 0x01, 0x00, 0x0a, 0x80, 0x00, 0x0b, 0x02, 0x08, 0x00, 0, 0, 0, 0, 0, 0,
            ],
            ErrorKind::BadOxmLength {
                field: 5,
                length: 2,
            },
            FM_MATCH + 4,
        ),
        oxm(
            "experimenter-class OXM too short for its experimenter id",
            &[
                0x00, 0x01, 0x00, 0x0a, 0xff, 0xff, 0x00, 0x02, 0xab, 0xcd, 0, 0, 0, 0, 0, 0,
            ],
            ErrorKind::BadOxmLength {
                field: 0,
                length: 2,
            },
            FM_MATCH + 4,
        ),
        // Match length 10 leaves 6 bytes for an 8-byte ipv4_src OXM: it
        // must not read on into the match's padding.
        oxm(
            "ipv4_src OXM running past its match",
            &[
                0x00, 0x01, 0x00, 0x0a, 0x80, 0x00, 0x16, 0x04, 10, 0, 0, 1, 0, 0, 0, 0,
            ],
            ErrorKind::BadOxmLength {
                field: 11,
                length: 4,
            },
            FM_MATCH + 4,
        ),
        oxm(
            "three bytes of OXM header at the end of a match",
            &[
                0x00, 0x01, 0x00, 0x07, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            ErrorKind::Truncated,
            FM_MATCH + 4,
        ),
        Nested {
            what: "OUTPUT running past its APPLY_ACTIONS into the next instruction",
            bytes: flow_mod(
                &[
                    &EMPTY_MATCH[..],
                    // APPLY_ACTIONS of 16 bytes holding an OUTPUT claiming 16 ...
                    &[0, 4, 0, 16, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 2],
                    // ... which would otherwise run into this METER.
                    &[0, 6, 0, 8, 0, 0, 0, 7],
                ]
                .concat(),
            ),
            kind: ErrorKind::BadActionLength {
                action_type: 0,
                length: 16,
            },
            offset: FM_INSTR + 8,
        },
        Nested {
            what: "PACKET_OUT actions_len cutting an OUTPUT in half",
            bytes: packet_out(
                8,
                &[
                    &[0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0][..],
                    &[0xff; 14],
                ]
                .concat(),
            ),
            kind: ErrorKind::BadActionLength {
                action_type: 0,
                length: 16,
            },
            offset: PO_ACTIONS,
        },
        Nested {
            what: "OUTPUT of length 4 before a PACKET_OUT's frame",
            bytes: packet_out(
                16,
                &[
                    &[0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0][..],
                    &[0xff; 14],
                ]
                .concat(),
            ),
            kind: ErrorKind::BadActionLength {
                action_type: 0,
                length: 4,
            },
            offset: PO_ACTIONS,
        },
        Nested {
            what: "OUTPUT of length 8 in the first of two buckets",
            bytes: msg(
                15,
                &[
                    // ADD, SELECT, pad, group 1
                    &[0, 0, 1, 0, 0, 0, 0, 1][..],
                    // bucket: len 32, weight 1, watch ANY/ANY, pad
                    &[
                        0, 32, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
                    ],
                    // OUTPUT declaring 8 bytes (needs 16), then 8 more bytes
                    &[0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                    // a valid second bucket with output:2
                    &[
                        0, 32, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
                    ],
                    &[0, 0, 0, 16, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
                ]
                .concat(),
            ),
            kind: ErrorKind::BadActionLength {
                action_type: 0,
                length: 8,
            },
            offset: 8 + 8 + 16,
        },
    ]
}

#[test]
fn nested_errors_have_the_right_kind() {
    for c in nested_cases() {
        let hex = hex::encode(&c.bytes);
        match outcome(&c.bytes) {
            Outcome::Panicked(p) => panic!("{}: decode panicked: {p}", c.what),
            Outcome::Decoded | Outcome::Unstable(_) => panic!("{}: decoded: {hex}", c.what),
            Outcome::Failed(e) => {
                assert_eq!(e.kind, c.kind, "{}: {hex}", c.what);
                assert!(e.offset <= c.bytes.len(), "{}: {e}", c.what);
                // Never before the bad element: everything up to it is valid.
                assert!(e.offset >= c.offset, "{}: {e}", c.what);
            }
        }
    }
}

/// The offset should be where the bad element starts, as for top-level
/// structures. Today it is not: `error::finish` turns the bytes left in the
/// *sub-slice* at the failure into an offset from the end of the whole body,
/// so whatever follows the parent (padding, instructions, frame, buckets) is
/// not counted and the offset lands after the element.
#[test]
fn nested_errors_point_at_the_bad_element() {
    let wrong: Vec<String> = nested_cases()
        .into_iter()
        .filter_map(|c| match decode(&c.bytes) {
            Err(e) if e.offset == c.offset && e.kind == c.kind => None,
            other => Some(format!(
                "{}: expected {:?} at {}, got {other:?}",
                c.what, c.kind, c.offset
            )),
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// Matches.

#[test]
fn match_running_past_the_message() {
    let b = [0x00, 0x01, 0x01, 0x00, 0x80, 0x00, 0x00, 0x04, 0, 0, 0, 1];
    expect_err(
        &flow_mod(&b),
        ErrorKind::BadLength {
            what: "match",
            length: 256,
        },
        FM_MATCH,
    );
    // Length 12 fits the OXM but its padding (to 16) is missing.
    let b = [0x00, 0x01, 0x00, 0x0c, 0x80, 0x00, 0x00, 0x04, 0, 0, 0, 1];
    let e = decode(&flow_mod(&b)).expect_err("match padding missing");
    assert_eq!(e.kind, ErrorKind::Truncated);
    assert!(e.offset <= 8 + 40 + b.len());
    // Below its own 4-byte header.
    let b = [0x00, 0x01, 0x00, 0x02, 0, 0, 0, 0];
    expect_err(
        &flow_mod(&b),
        ErrorKind::BadLength {
            what: "match",
            length: 2,
        },
        FM_MATCH,
    );
}

#[test]
fn match_of_standard_type() {
    // OFPMT_STANDARD (0), the deprecated OpenFlow 1.1 match (88 bytes).
    let mut b = vec![0x00, 0x00, 0x00, 0x58];
    b.resize(88, 0);
    expect_err(
        &flow_mod(&b),
        ErrorKind::BadMatchType { match_type: 0 },
        FM_MATCH,
    );
    let (t, c) = ErrorKind::BadMatchType { match_type: 0 }.ofp_error();
    assert_eq!((t.value(), c), (4, 0)); // OFPET_BAD_MATCH, OFPBMC_BAD_TYPE
}

// ---------------------------------------------------------------------------
// Actions and instructions.

#[test]
fn action_length_zero() {
    let a = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    expect_err(
        &packet_out(16, &a),
        ErrorKind::BadActionLength {
            action_type: 0,
            length: 0,
        },
        PO_ACTIONS,
    );
}

#[test]
fn action_length_below_minimum() {
    let a = [0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    expect_err(
        &packet_out(16, &a),
        ErrorKind::BadActionLength {
            action_type: 0,
            length: 4,
        },
        PO_ACTIONS,
    );
    // 2: below even the type/len header.
    let a = [0, 0x15, 0, 2, 0, 0, 0, 1];
    expect_err(
        &packet_out(8, &a),
        ErrorKind::BadActionLength {
            action_type: 21,
            length: 2,
        },
        PO_ACTIONS,
    );
    let (t, c) = ErrorKind::BadActionLength {
        action_type: 0,
        length: 4,
    }
    .ofp_error();
    assert_eq!((t.value(), c), (2, 1)); // OFPET_BAD_ACTION, OFPBAC_BAD_LEN
}

#[test]
fn action_length_not_its_fixed_size() {
    // OUTPUT is 16 bytes, not 8.
    let a = [0, 0, 0, 8, 0, 0, 0, 1];
    expect_err(
        &packet_out(8, &a),
        ErrorKind::BadActionLength {
            action_type: 0,
            length: 8,
        },
        PO_ACTIONS,
    );
    // SET_QUEUE is 8 bytes, not 16; after a valid OUTPUT.
    let a = [
        0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // output:1
        0, 0x15, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // set_queue, len 16
    ];
    expect_err(
        &packet_out(32, &a),
        ErrorKind::BadActionLength {
            action_type: 21,
            length: 16,
        },
        PO_ACTIONS + 16,
    );
    // SET_FIELD whose length is not the OXM padded to 8 (ip_dscp: 4+5 -> 16).
    let a = [
        0, 0x19, 0, 24, 0x80, 0, 0x10, 1, 46, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    expect_err(
        &packet_out(24, &a),
        ErrorKind::BadActionLength {
            action_type: 25,
            length: 24,
        },
        PO_ACTIONS,
    );
}

#[test]
fn actions_running_past_the_packet_out() {
    let a = [0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    expect_err(
        &packet_out(32, &a),
        ErrorKind::BadLength {
            what: "actions",
            length: 32,
        },
        PO_ACTIONS,
    );
}

#[test]
fn instruction_length_zero() {
    let rest = [&EMPTY_MATCH[..], &[0, 6, 0, 0, 0, 0, 0, 7]].concat();
    expect_err(
        &flow_mod(&rest),
        ErrorKind::BadInstructionLength {
            instruction_type: 6,
            length: 0,
        },
        FM_INSTR,
    );
    let (t, c) = ErrorKind::BadInstructionLength {
        instruction_type: 6,
        length: 0,
    }
    .ofp_error();
    assert_eq!((t.value(), c), (3, 7)); // OFPET_BAD_INSTRUCTION, OFPBIC_BAD_LEN
}

#[test]
fn instruction_length_wrong() {
    // METER is 8 bytes, not 16.
    let rest = [
        &EMPTY_MATCH[..],
        &[0, 6, 0, 16, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    expect_err(
        &flow_mod(&rest),
        ErrorKind::BadInstructionLength {
            instruction_type: 6,
            length: 16,
        },
        FM_INSTR,
    );
    // APPLY_ACTIONS claiming 32 bytes with 8 left in the message.
    let rest = [&EMPTY_MATCH[..], &[0, 4, 0, 32, 0, 0, 0, 0]].concat();
    expect_err(
        &flow_mod(&rest),
        ErrorKind::BadInstructionLength {
            instruction_type: 4,
            length: 32,
        },
        FM_INSTR,
    );
    // GOTO_TABLE of 4 bytes: below its 8.
    let rest = [&EMPTY_MATCH[..], &[0, 1, 0, 4]].concat();
    expect_err(
        &flow_mod(&rest),
        ErrorKind::BadInstructionLength {
            instruction_type: 1,
            length: 4,
        },
        FM_INSTR,
    );
}

#[test]
fn meter_band_and_bucket_lengths() {
    // METER_MOD with a DROP band of length 0.
    let body = [
        0, 0, 0, 1, 0, 0, 0, 7, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0,
    ];
    expect_err(
        &msg(29, &body),
        ErrorKind::BadLength {
            what: "meter band",
            length: 0,
        },
        16,
    );
    // GROUP_MOD with a bucket claiming 8 bytes (below its 16-byte header).
    let body = [0, 0, 1, 0, 0, 0, 0, 1, 0, 8, 0, 1, 0xff, 0xff, 0xff, 0xff];
    expect_err(
        &msg(15, &body),
        ErrorKind::BadLength {
            what: "bucket",
            length: 8,
        },
        16,
    );
}

// ---------------------------------------------------------------------------
// Types and versions.

#[test]
fn unknown_message_type() {
    for t in [30u8, 99, 0xff] {
        expect_err(&msg(t, &[]), ErrorKind::BadType { msg_type: t }, 1);
        expect_err(&msg(t, &[0; 16]), ErrorKind::BadType { msg_type: t }, 1);
    }
    let (t, c) = ErrorKind::BadType { msg_type: 99 }.ofp_error();
    assert_eq!((t, c), (ErrorType::BadRequest, bad_request::BAD_TYPE));
    assert_eq!((t.value(), c), (1, 1)); // OFPET_BAD_REQUEST, OFPBRC_BAD_TYPE
}

#[test]
fn unknown_multipart_type() {
    for mp_type in [14u16, 77, 0xfffe] {
        let mut body = mp_type.to_be_bytes().to_vec();
        body.extend_from_slice(&[0; 6]);
        // Both directions: MULTIPART_REQUEST (18) and MULTIPART_REPLY (19).
        for t in [18, 19] {
            expect_err(&msg(t, &body), ErrorKind::BadMultipartType { mp_type }, 16);
        }
    }
    let (t, c) = ErrorKind::BadMultipartType { mp_type: 77 }.ofp_error();
    assert_eq!((t.value(), c), (1, 2)); // OFPET_BAD_REQUEST, OFPBRC_BAD_MULTIPART
}

#[test]
fn non_13_version() {
    for version in [0x00u8, 0x01, 0x02, 0x03, 0x05, 0x06, 0xff] {
        for t in [20u8, 14, 99] {
            let mut b = msg(t, &[]);
            b[0] = version;
            expect_err(&b, ErrorKind::BadVersion { version }, 0);
        }
    }
    let (t, c) = ErrorKind::BadVersion { version: 1 }.ofp_error();
    assert_eq!((t.value(), c), (1, 0)); // OFPET_BAD_REQUEST, OFPBRC_BAD_VERSION
}

#[test]
fn hello_of_any_version_decodes() {
    // OpenFlow 1.0's HELLO: header only.
    let b = [0x01, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x05];
    let (h, m) = decode(&b).expect("an OF1.0 HELLO decodes");
    assert_eq!(h.version, 1);
    assert_eq!(h.msg_type, MsgType::Hello);
    assert_eq!(h.xid, 5);
    assert_eq!(m, Message::Hello { elements: vec![] });

    // OpenFlow 1.5's HELLO advertising 1.0, 1.3 and 1.5.
    let b = [
        0x06, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x06, 0x00, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00,
        0x52,
    ];
    let (h, m) = decode(&b).expect("an OF1.5 HELLO decodes");
    assert_eq!(h.version, 6);
    let Message::Hello { elements } = m else {
        panic!("not a HELLO: {m:?}");
    };
    let versions: Vec<u8> = elements[0].versions().expect("bitmap").collect();
    assert_eq!(versions, vec![1, 4, 6]);
    assert_eq!(
        elements,
        vec![HelloElem::VersionBitmap {
            bitmaps: vec![0x52]
        }]
    );

    // A HELLO element claiming more than the message holds.
    let b = [
        0x04, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01, 0x00, 0x10, 0x00, 0x00, 0x00,
        0x10,
    ];
    expect_err(
        &b,
        ErrorKind::BadLength {
            what: "hello element",
            length: 16,
        },
        8,
    );
}

// ---------------------------------------------------------------------------
// Framing.

fn three_messages() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let a = msg(20, &[]); // BARRIER_REQUEST, 8 bytes
    let b = msg(2, b"ping ping ping"); // ECHO_REQUEST, 22 bytes
    let c = msg(9, &[0, 0, 0xff, 0xff]); // SET_CONFIG, 12 bytes
    (a, b, c)
}

#[test]
fn check_partial_headers_and_messages() {
    let (_, b, _) = three_messages();
    assert_eq!(b.len(), 22);
    for n in 0..8 {
        assert_eq!(
            framing::check(&b[..n]).expect("partial header"),
            Frame::NeedMore(8 - n),
            "{n} bytes"
        );
    }
    for n in 8..22 {
        assert_eq!(
            framing::check(&b[..n]).expect("partial message"),
            Frame::NeedMore(22 - n),
            "{n} bytes"
        );
    }
    assert_eq!(framing::check(&b).expect("whole"), Frame::Complete(22));
    let mut more = b.clone();
    more.extend_from_slice(&[0x04, 0x14]);
    assert_eq!(
        framing::check(&more).expect("whole + more"),
        Frame::Complete(22)
    );

    let mut bad = b.clone();
    bad[2..4].copy_from_slice(&[0, 7]);
    assert_eq!(
        framing::check(&bad),
        Err(DecodeError {
            kind: ErrorKind::LengthBelowHeader { length: 7 },
            offset: 2
        })
    );
}

#[test]
fn next_frame_yields_whole_messages_and_keeps_the_rest() {
    let (a, b, c) = three_messages();
    let half = c.len() / 2;
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&a);
    buf.extend_from_slice(&b);
    buf.extend_from_slice(&c[..half]);

    let first = framing::next_frame(&mut buf).expect("ok").expect("first");
    assert_eq!(&first[..], &a[..]);
    let second = framing::next_frame(&mut buf).expect("ok").expect("second");
    assert_eq!(&second[..], &b[..]);
    assert_eq!(framing::next_frame(&mut buf).expect("ok"), None);
    // The half message stays for the next read, untouched.
    assert_eq!(&buf[..], &c[..half]);
    assert_eq!(framing::next_frame(&mut buf).expect("ok"), None);
    assert_eq!(&buf[..], &c[..half]);

    buf.extend_from_slice(&c[half..]);
    let third = framing::next_frame(&mut buf).expect("ok").expect("third");
    assert_eq!(&third[..], &c[..]);
    assert!(buf.is_empty());
    assert_eq!(framing::next_frame(&mut buf).expect("ok"), None);

    // Each frame decodes on its own.
    assert_eq!(decode(&first).expect("a").1, Message::BarrierRequest);
    assert!(matches!(
        decode(&second).expect("b").1,
        Message::EchoRequest { .. }
    ));
    assert!(matches!(
        decode(&third).expect("c").1,
        Message::SetConfig(_)
    ));

    // A length below the header is an error, not "need more".
    let mut bad = BytesMut::from(&[0x04, 0x14, 0x00, 0x00, 0, 0, 0, 1][..]);
    assert_eq!(
        framing::next_frame(&mut bad).map_err(|e| e.kind),
        Err(ErrorKind::LengthBelowHeader { length: 0 })
    );
}

#[test]
fn split_stops_at_a_truncated_tail() {
    let (a, b, c) = three_messages();
    let half = c.len() / 2;
    let stream = [&a[..], &b[..], &c[..half]].concat();
    let items: Vec<_> = framing::split(&stream).collect();
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0], Ok((0, &a[..])));
    assert_eq!(items[1], Ok((a.len(), &b[..])));
    assert_eq!(
        items[2],
        Err(DecodeError {
            kind: ErrorKind::Truncated,
            offset: stream.len()
        })
    );

    // A bad length in the middle: one error at that message's length field,
    // then nothing more (the stream cannot be resynchronised).
    let mut bad = b.clone();
    bad[2..4].copy_from_slice(&[0, 3]);
    let stream = [&a[..], &bad[..], &c[..]].concat();
    let items: Vec<_> = framing::split(&stream).collect();
    assert_eq!(
        items,
        vec![
            Ok((0, &a[..])),
            Err(DecodeError {
                kind: ErrorKind::LengthBelowHeader { length: 3 },
                offset: a.len() + 2
            }),
        ]
    );

    // The whole stream, no tail: three messages and nothing else.
    let stream = [&a[..], &b[..], &c[..]].concat();
    let offsets: Vec<usize> = framing::split(&stream)
        .map(|r| r.expect("whole messages").0)
        .collect();
    assert_eq!(offsets, vec![0, a.len(), a.len() + b.len()]);
}

// ---------------------------------------------------------------------------
// Mutation sweep.

/// Flips every byte of every vector (xor 0xff), one at a time, and decodes:
/// no panic, every error lies within the input, and what decodes re-encodes
/// to bytes that decode to the same message.
#[test]
fn mutation_sweep_never_panics() {
    let (mut decoded, mut errored) = (0usize, 0usize);
    let mut problems = Vec::new();
    for (name, v) in vectors() {
        let is_hello = v.get(1) == Some(&0);
        for i in 0..v.len() {
            let mut m = v.clone();
            m[i] ^= 0xff;
            let got = outcome(&m);
            // The header bytes have only one possible reading once flipped.
            let expected = match i {
                0 if !is_hello => Some(ErrorKind::BadVersion { version: m[0] }),
                1 => Some(ErrorKind::BadType { msg_type: m[1] }),
                // Every vector is shorter than 256 bytes or has a length
                // whose high byte flipped is larger: the length runs past.
                2 => Some(ErrorKind::Truncated),
                _ => None,
            };
            match got {
                Outcome::Decoded => decoded += 1,
                Outcome::Failed(e) => {
                    errored += 1;
                    if e.offset > m.len() {
                        problems.push(format!("{name} byte {i}: offset past the input: {e}"));
                    }
                }
                Outcome::Unstable(d) => problems.push(format!("{name} byte {i}: unstable: {d}")),
                Outcome::Panicked(p) => problems.push(format!("{name} byte {i}: PANIC: {p}")),
            }
            if let Some(kind) = expected {
                match decode(&m) {
                    Err(e) if e.kind == kind => {}
                    other => {
                        problems.push(format!("{name} byte {i}: expected {kind:?}, got {other:?}"))
                    }
                }
            }
        }
    }
    println!(
        "mutation sweep: {} mutants, {decoded} decoded, {errored} errored, {} problems",
        decoded + errored + problems.len(),
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Both paths must have been exercised for the sweep to mean anything.
    assert!(
        decoded > 0 && errored > 0,
        "{decoded} decoded, {errored} errored"
    );
}
