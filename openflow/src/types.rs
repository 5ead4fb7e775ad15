//! Small value types shared across messages: MAC addresses and the
//! fixed-size, NUL-padded strings of `ofp_port` and `ofp_desc`.

use serde::{Serialize, Serializer};
use std::fmt;

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The address as the low 48 bits of a `u64`.
    pub fn to_u64(self) -> u64 {
        let [a, b, c, d, e, f] = self.0;
        u64::from_be_bytes([0, 0, a, b, c, d, e, f])
    }
}

/// One `u64` written, where the derived impl writes a length and six
/// bytes: addresses key the controller's host and path tables, looked up
/// several times per packet. Equal addresses hash equally, as `Eq` needs.
impl std::hash::Hash for MacAddr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.to_u64());
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for MacAddr {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts.next().ok_or("MAC address needs six octets")?;
            *b = u8::from_str_radix(p, 16).map_err(|_| "bad hex octet in MAC address")?;
        }
        if parts.next().is_some() {
            return Err("MAC address has more than six octets");
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A fixed-size C char array (`char name[16]`, `char mfr_desc[256]`, ...).
/// The raw bytes are kept so that whatever follows the first NUL re-encodes
/// exactly; it prints as the text before the NUL.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedStr<const N: usize>(pub [u8; N]);

impl<const N: usize> FixedStr<N> {
    /// Builds from text, truncated to leave room for the terminating NUL.
    pub fn new(s: &str) -> Self {
        let mut out = [0u8; N];
        let n = s.len().min(N.saturating_sub(1));
        if let (Some(dst), Some(src)) = (out.get_mut(..n), s.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
        }
        FixedStr(out)
    }

    /// The text before the first NUL (lossy UTF-8).
    pub fn as_string(&self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(N);
        String::from_utf8_lossy(self.0.get(..end).unwrap_or_default()).into_owned()
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        FixedStr([0; N])
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.as_string(), f)
    }
}

impl<const N: usize> Serialize for FixedStr<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::json::cstr(&self.0, s)
    }
}
