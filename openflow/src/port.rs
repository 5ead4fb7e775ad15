//! Port description (`ofp_port`), PORT_STATUS and PORT_MOD.

use crate::consts::{PortNo, PortReason};
use crate::error::PResult;
use crate::parse::{array, be_u8, be_u32, pad};
use crate::sink::Sink;
use crate::types::{FixedStr, MacAddr};
use serde::Serialize;

/// `ofp_port_config` bits.
pub mod config {
    pub const PORT_DOWN: u32 = 1 << 0;
    pub const NO_RECV: u32 = 1 << 2;
    pub const NO_FWD: u32 = 1 << 5;
    pub const NO_PACKET_IN: u32 = 1 << 6;
}

/// `ofp_port_state` bits.
pub mod state {
    pub const LINK_DOWN: u32 = 1 << 0;
    pub const BLOCKED: u32 = 1 << 1;
    pub const LIVE: u32 = 1 << 2;
}

/// `ofp_port`: 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Port {
    pub port_no: PortNo,
    pub hw_addr: MacAddr,
    pub name: FixedStr<16>,
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    pub curr_speed: u32,
    pub max_speed: u32,
}

impl Port {
    pub const LEN: usize = 64;

    /// Link up and not administratively down.
    pub fn is_up(&self) -> bool {
        self.config & config::PORT_DOWN == 0 && self.state & state::LINK_DOWN == 0
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.port_no.value());
        buf.put_bytes(0, 4);
        buf.put_slice(&self.hw_addr.0);
        buf.put_bytes(0, 2);
        buf.put_slice(&self.name.0);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            buf.put_u32(v);
        }
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, port_no) = be_u32(b)?;
        let (b, ()) = pad(b, 4)?;
        let (b, hw_addr) = array::<6>(b)?;
        let (b, ()) = pad(b, 2)?;
        let (b, name) = array::<16>(b)?;
        let (b, config) = be_u32(b)?;
        let (b, state) = be_u32(b)?;
        let (b, curr) = be_u32(b)?;
        let (b, advertised) = be_u32(b)?;
        let (b, supported) = be_u32(b)?;
        let (b, peer) = be_u32(b)?;
        let (b, curr_speed) = be_u32(b)?;
        let (b, max_speed) = be_u32(b)?;
        let port = Port {
            port_no: port_no.into(),
            hw_addr: MacAddr(hw_addr),
            name: FixedStr(name),
            config,
            state,
            curr,
            advertised,
            supported,
            peer,
            curr_speed,
            max_speed,
        };
        Ok((b, port))
    }
}

/// PORT_STATUS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PortStatus {
    pub reason: PortReason,
    pub desc: Port,
}

impl PortStatus {
    pub const LEN: usize = 8 + Port::LEN;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u8(self.reason.value());
        buf.put_bytes(0, 7);
        self.desc.emit(buf);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, reason) = be_u8(b)?;
        let (b, ()) = pad(b, 7)?;
        let (b, desc) = Port::parse(b)?;
        Ok((
            b,
            PortStatus {
                reason: reason.into(),
                desc,
            },
        ))
    }
}

/// PORT_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PortMod {
    pub port_no: PortNo,
    pub hw_addr: MacAddr,
    pub config: u32,
    pub mask: u32,
    pub advertise: u32,
}

impl PortMod {
    pub const LEN: usize = 32;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.port_no.value());
        buf.put_bytes(0, 4);
        buf.put_slice(&self.hw_addr.0);
        buf.put_bytes(0, 2);
        buf.put_u32(self.config);
        buf.put_u32(self.mask);
        buf.put_u32(self.advertise);
        buf.put_bytes(0, 4);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, port_no) = be_u32(b)?;
        let (b, ()) = pad(b, 4)?;
        let (b, hw_addr) = array::<6>(b)?;
        let (b, ()) = pad(b, 2)?;
        let (b, config) = be_u32(b)?;
        let (b, mask) = be_u32(b)?;
        let (b, advertise) = be_u32(b)?;
        let (b, ()) = pad(b, 4)?;
        let pm = PortMod {
            port_no: port_no.into(),
            hw_addr: MacAddr(hw_addr),
            config,
            mask,
            advertise,
        };
        Ok((b, pm))
    }
}
