//! `tierflow decode`: prints OpenFlow messages from files as JSON, one
//! object per line, and optionally checks that they re-encode exactly.
//!
//! Exit status: 0 all good, 1 some message re-encoded differently
//! (`--roundtrip`), 2 some file was unreadable or malformed.

use openflow::framing;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The worst outcome seen so far; later files are still processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok = 0,
    Mismatch = 1,
    Malformed = 2,
}

pub fn run(files: &[PathBuf], roundtrip: bool) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut worst = Outcome::Ok;
    for path in files {
        let outcome = decode_file(path, roundtrip, &mut out);
        worst = worst.max(outcome);
    }
    if out.flush().is_err() {
        return ExitCode::from(2);
    }
    ExitCode::from(worst as u8)
}

fn decode_file(path: &Path, roundtrip: bool, out: &mut impl Write) -> Outcome {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: byte 0: cannot read file: {e}", path.display());
            return Outcome::Malformed;
        }
    };
    if bytes.is_empty() {
        eprintln!(
            "{}: byte 0: empty file, no OpenFlow message",
            path.display()
        );
        return Outcome::Malformed;
    }
    let mut outcome = Outcome::Ok;
    for item in framing::split(&bytes) {
        let (offset, raw) = match item {
            Ok(x) => x,
            Err(e) => {
                eprintln!("{}: byte {}: {}", path.display(), e.offset, e.kind);
                return Outcome::Malformed;
            }
        };
        let (header, msg) = match openflow::decode(raw) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("{}: byte {}: {}", path.display(), offset + e.offset, e.kind);
                return Outcome::Malformed;
            }
        };
        let json = openflow::to_json(&header, &msg);
        if writeln!(out, "{json}").is_err() {
            return Outcome::Malformed;
        }
        if roundtrip {
            let mut again = Vec::with_capacity(raw.len());
            let same = openflow::encode_versioned(header.version, header.xid, &msg, &mut again)
                .map(|_| again == raw)
                .unwrap_or(false);
            if !same {
                let at = again
                    .iter()
                    .zip(raw)
                    .position(|(a, b)| a != b)
                    .unwrap_or(again.len().min(raw.len()));
                eprintln!(
                    "{}: byte {}: {} re-encodes differently (first difference at byte {}, {} bytes in, {} out)",
                    path.display(),
                    offset,
                    header.msg_type,
                    offset + at,
                    raw.len(),
                    again.len()
                );
                outcome = Outcome::Mismatch;
            }
        }
    }
    outcome
}
