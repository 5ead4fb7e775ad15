//! LLDP probes for link discovery: the frame Tierflow sends out of every
//! port (chassis id = datapath id, port id = port number) and its parser.
//! LLDP is not among the protocols etherparse reads, and only three TLVs
//! matter here, so the few lines are written out.

use openflow::MacAddr;

/// Nearest-bridge LLDP multicast address.
pub const LLDP_DST: MacAddr = MacAddr([0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e]);
pub const ETH_TYPE_LLDP: u16 = 0x88cc;

const TLV_END: u8 = 0;
const TLV_CHASSIS_ID: u8 = 1;
const TLV_PORT_ID: u8 = 2;
const TLV_TTL: u8 = 3;
/// Chassis id subtype "locally assigned": we put `tierflow:` + the dpid.
const CHASSIS_LOCAL: u8 = 7;
/// Port id subtype "port component": the 32-bit OpenFlow port number.
const PORT_COMPONENT: u8 = 2;
const CHASSIS_PREFIX: &[u8] = b"tierflow:";

/// Length of a probe frame.
pub const FRAME_LEN: usize = 14 + (2 + 1 + 9 + 8) + (2 + 1 + 4) + (2 + 2) + 2;

fn tlv_header(t: u8, len: usize) -> [u8; 2] {
    let v = (u16::from(t) << 9) | (len as u16 & 0x1ff);
    v.to_be_bytes()
}

/// The probe sent out of `port` of switch `dpid`, from `src`.
pub fn probe(dpid: u64, port: u32, src: MacAddr) -> [u8; FRAME_LEN] {
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

/// The (dpid, port) a Tierflow probe was sent from, or None for any other
/// frame (including other controllers' LLDP).
pub fn parse(frame: &[u8]) -> Option<(u64, u32)> {
    if frame.get(12..14)? != ETH_TYPE_LLDP.to_be_bytes() {
        return None;
    }
    let mut rest = frame.get(14..)?;
    let (mut dpid, mut port) = (None, None);
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
            _ => {}
        }
        rest = rest.get(2 + len..)?;
    }
    Some((dpid?, port?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_parses_back_and_foreign_frames_do_not() {
        let f = probe(0x0000_0000_0000_00ab, 7, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(parse(&f), Some((0xab, 7)));
        assert_eq!(&f[..6], &LLDP_DST.0);
        // Someone else's chassis id.
        let mut other = f;
        other[17] = b'X';
        assert_eq!(parse(&other), None);
        // Cutting into the chassis or port TLV never yields a link (and
        // never panics); the TTL and end TLVs carry nothing we need.
        let through_port_tlv = 14 + (2 + 1 + 9 + 8) + (2 + 1 + 4);
        for n in 0..through_port_tlv {
            assert_eq!(parse(&f[..n]), None, "prefix {n}");
        }
        assert_eq!(parse(&f[..through_port_tlv]), Some((0xab, 7)));
        let ipv4 = [0u8; 60];
        assert_eq!(parse(&ipv4), None);
    }
}
