//! LLDP probes for link discovery: the frame Tierflow sends out of every
//! port (chassis id = datapath id, port id = port number) and its parser.
//! Each probe is signed: an organisationally specific TLV carries the time
//! it was sent and an HMAC-SHA256 (truncated to 128 bits) of the datapath
//! id, the port and that time, under a key only the controller knows. A
//! host can neither forge a probe nor rewrite where one came from, and a
//! captured probe is good for a few seconds only. LLDP is not among the
//! protocols etherparse reads, and only four TLVs matter here, so the few
//! lines are written out.

use hmac::{Hmac, Mac};
use openflow::MacAddr;
use sha2::Sha256;

/// Nearest-bridge LLDP multicast address.
pub const LLDP_DST: MacAddr = MacAddr([0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e]);
pub const ETH_TYPE_LLDP: u16 = 0x88cc;

const TLV_END: u8 = 0;
const TLV_CHASSIS_ID: u8 = 1;
const TLV_PORT_ID: u8 = 2;
const TLV_TTL: u8 = 3;
const TLV_ORG: u8 = 127;
/// Chassis id subtype "locally assigned": we put `tierflow:` + the dpid.
const CHASSIS_LOCAL: u8 = 7;
/// Port id subtype "port component": the 32-bit OpenFlow port number.
const PORT_COMPONENT: u8 = 2;
const CHASSIS_PREFIX: &[u8] = b"tierflow:";
/// The organisationally specific TLV's OUI (locally administered, "tf")
/// and subtype: the probe's signature.
const ORG_OUI: [u8; 3] = [0x02, 0x74, 0x66];
const ORG_SIGNATURE: u8 = 1;
const MAC_LEN: usize = 16;
/// OUI, subtype, the send time (ms since the Unix epoch), the MAC.
const ORG_LEN: usize = 3 + 1 + 8 + MAC_LEN;

/// Length of a probe frame.
pub const FRAME_LEN: usize = 14 + (2 + 1 + 9 + 8) + (2 + 1 + 4) + (2 + 2) + (2 + ORG_LEN) + 2;

/// The controller's probe key.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A fresh random key (the operating system's generator).
    pub fn random() -> Key {
        let mut k = [0u8; 32];
        if getrandom::fill(&mut k).is_err() {
            // No OS randomness at all: still unpredictable to a host, which
            // cannot read the controller's clock to the nanosecond.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            k[..16].copy_from_slice(&t.as_nanos().to_be_bytes());
        }
        Key(k)
    }

    pub fn from_bytes(k: [u8; 32]) -> Key {
        Key(k)
    }

    fn mac(&self, dpid: u64, port: u32, sent_ms: u64) -> [u8; MAC_LEN] {
        let mut out = [0u8; MAC_LEN];
        // Cannot fail: HMAC takes keys of any length.
        if let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.0) {
            m.update(&dpid.to_be_bytes());
            m.update(&port.to_be_bytes());
            m.update(&sent_ms.to_be_bytes());
            let tag = m.finalize().into_bytes();
            out.copy_from_slice(&tag[..MAC_LEN]);
        }
        out
    }
}

fn tlv_header(t: u8, len: usize) -> [u8; 2] {
    let v = (u16::from(t) << 9) | (len as u16 & 0x1ff);
    v.to_be_bytes()
}

/// The probe sent out of `port` of switch `dpid`, from `src`, at
/// `now_ms` (ms since the Unix epoch), signed with `key`.
pub fn probe(key: &Key, dpid: u64, port: u32, src: MacAddr, now_ms: u64) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    let mut w = Writer { buf: &mut f, at: 0 };
    w.put(&LLDP_DST.0);
    w.put(&src.0);
    w.put(&ETH_TYPE_LLDP.to_be_bytes());
    w.put(&tlv_header(TLV_CHASSIS_ID, 1 + CHASSIS_PREFIX.len() + 8));
    w.put(&[CHASSIS_LOCAL]);
    w.put(CHASSIS_PREFIX);
    w.put(&dpid.to_be_bytes());
    w.put(&tlv_header(TLV_PORT_ID, 5));
    w.put(&[PORT_COMPONENT]);
    w.put(&port.to_be_bytes());
    w.put(&tlv_header(TLV_TTL, 2));
    w.put(&120u16.to_be_bytes());
    w.put(&tlv_header(TLV_ORG, ORG_LEN));
    w.put(&ORG_OUI);
    w.put(&[ORG_SIGNATURE]);
    w.put(&now_ms.to_be_bytes());
    w.put(&key.mac(dpid, port, now_ms));
    w.put(&tlv_header(TLV_END, 0));
    f
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.at..self.at + b.len()) {
            dst.copy_from_slice(b);
        }
        self.at += b.len();
    }
}

/// What a Tierflow probe claims: where it was sent from, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub dpid: u64,
    pub port: u32,
    sent_ms: Option<u64>,
    mac: Option<[u8; MAC_LEN]>,
}

impl Probe {
    /// Signed with `key`, and sent at most `max_age_ms` ago (and not
    /// later than a second from now: the clocks are the same one).
    pub fn verify(&self, key: &Key, now_ms: u64, max_age_ms: u64) -> bool {
        let (Some(sent), Some(mac)) = (self.sent_ms, self.mac) else {
            return false;
        };
        let fresh =
            sent <= now_ms.saturating_add(1000) && now_ms.saturating_sub(sent) <= max_age_ms;
        // Compared in constant time: the MAC is the secret's witness.
        let want = key.mac(self.dpid, self.port, sent);
        let same = want.iter().zip(mac).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        fresh && same
    }
}

/// The probe a frame carries, if it is a Tierflow probe (signature not
/// checked: [`Probe::verify`]); None for any other frame (including other
/// controllers' LLDP).
pub fn parse_probe(frame: &[u8]) -> Option<Probe> {
    if frame.get(12..14)? != ETH_TYPE_LLDP.to_be_bytes() {
        return None;
    }
    let mut rest = frame.get(14..)?;
    let (mut dpid, mut port, mut sent_ms, mut mac) = (None, None, None, None);
    while rest.len() >= 2 {
        let h = u16::from_be_bytes([rest[0], rest[1]]);
        let (t, len) = ((h >> 9) as u8, usize::from(h & 0x1ff));
        let value = rest.get(2..2 + len)?;
        match t {
            TLV_END => break,
            TLV_CHASSIS_ID => {
                let id = value
                    .strip_prefix(&[CHASSIS_LOCAL])?
                    .strip_prefix(CHASSIS_PREFIX)?;
                dpid = Some(u64::from_be_bytes(id.try_into().ok()?));
            }
            TLV_PORT_ID => {
                let id = value.strip_prefix(&[PORT_COMPONENT])?;
                port = Some(u32::from_be_bytes(id.try_into().ok()?));
            }
            TLV_ORG if value.len() == ORG_LEN => {
                if let Some(sig) = value
                    .strip_prefix(&ORG_OUI[..])
                    .and_then(|v| v.strip_prefix(&[ORG_SIGNATURE]))
                {
                    let (ts, m) = sig.split_at(8);
                    sent_ms = ts.try_into().ok().map(u64::from_be_bytes);
                    mac = m.try_into().ok();
                }
            }
            _ => {}
        }
        rest = rest.get(2 + len..)?;
    }
    Some(Probe {
        dpid: dpid?,
        port: port?,
        sent_ms,
        mac,
    })
}

/// The (dpid, port) a Tierflow probe claims it was sent from (signature
/// not checked).
pub fn parse(frame: &[u8]) -> Option<(u64, u32)> {
    parse_probe(frame).map(|p| (p.dpid, p.port))
}

/// Milliseconds since the Unix epoch, the time probes are stamped with.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000_000;

    #[test]
    fn probe_parses_back_and_foreign_frames_do_not() {
        let key = Key::from_bytes([7; 32]);
        let f = probe(
            &key,
            0x0000_0000_0000_00ab,
            7,
            MacAddr([2, 0, 0, 0, 0, 1]),
            T,
        );
        assert_eq!(parse(&f), Some((0xab, 7)));
        assert_eq!(&f[..6], &LLDP_DST.0);
        // Someone else's chassis id.
        let mut other = f;
        other[17] = b'X';
        assert_eq!(parse(&other), None);
        // Cutting into the chassis or port TLV never yields a link (and
        // never panics).
        let through_port_tlv = 14 + (2 + 1 + 9 + 8) + (2 + 1 + 4);
        for n in 0..through_port_tlv {
            assert_eq!(parse(&f[..n]), None, "prefix {n}");
        }
        for n in through_port_tlv..FRAME_LEN {
            // A cut signature never verifies.
            if let Some(p) = parse_probe(&f[..n])
                && n < FRAME_LEN - 2
            {
                assert!(!p.verify(&key, T, 5000), "prefix {n}");
            }
        }
        let ipv4 = [0u8; 60];
        assert_eq!(parse(&ipv4), None);
    }

    #[test]
    fn only_fresh_probes_signed_with_the_key_verify() {
        let key = Key::from_bytes([7; 32]);
        let f = probe(&key, 0xab, 7, MacAddr([2, 0, 0, 0, 0, 1]), T);
        let p = parse_probe(&f).expect("probe");
        assert!(p.verify(&key, T + 100, 5000));
        assert!(!p.verify(&key, T + 5001, 5000), "too old");
        assert!(!p.verify(&key, T - 2000, 5000), "from the future");
        assert!(!p.verify(&Key::from_bytes([8; 32]), T, 5000), "another key");
        // A host rewriting where it came from (the port) breaks the MAC.
        let mut forged = f;
        let port_at = 14 + (2 + 1 + 9 + 8) + 3;
        forged[port_at] ^= 1;
        let q = parse_probe(&forged).expect("still parses");
        assert_ne!(q.port, 7);
        assert!(!q.verify(&key, T, 5000));
        // Unsigned probes (the old format, another controller's) do not.
        let unsigned = &f[..FRAME_LEN - (2 + ORG_LEN) - 2];
        let mut u = unsigned.to_vec();
        u.extend_from_slice(&[0, 0]);
        let p = parse_probe(&u).expect("parses");
        assert!(!p.verify(&key, T, 5000));
        assert_ne!(Key::random().mac(1, 1, 1), Key::random().mac(1, 1, 1));
    }
}
