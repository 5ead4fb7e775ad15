//! JSON helpers for the decoded form printed by `tierflow decode`: byte
//! payloads as hex, and a switch that prints enumerated values as numbers
//! (used to compare against other implementations' numeric dumps).

use serde::Serializer;
use std::cell::Cell;

thread_local! {
    static NUMERIC: Cell<bool> = const { Cell::new(false) };
}

/// Whether enums currently serialize as numbers.
pub fn numeric() -> bool {
    NUMERIC.with(Cell::get)
}

/// While alive, enumerated values on this thread serialize as their wire
/// numbers instead of their spec names.
#[derive(Debug)]
pub struct NumericEnums {
    prev: bool,
}

impl NumericEnums {
    pub fn enter() -> Self {
        NumericEnums {
            prev: NUMERIC.with(|c| c.replace(true)),
        }
    }
}

impl Drop for NumericEnums {
    fn drop(&mut self) {
        let prev = self.prev;
        NUMERIC.with(|c| c.set(prev));
    }
}

/// Serializes bytes as a lower-case hex string.
pub fn hex<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&::hex::encode(bytes))
}

/// Serializes a NUL-padded C char array as text up to its first NUL.
pub fn cstr<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    s.serialize_str(&String::from_utf8_lossy(
        bytes.get(..end).unwrap_or_default(),
    ))
}
