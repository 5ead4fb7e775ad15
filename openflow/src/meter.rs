//! Meter bands (`ofp_meter_band_*`) and METER_MOD.

use crate::consts::MeterModCommand;
use crate::enum_with_unknown;
use crate::error::PResult;
use crate::parse::{be_u8, be_u16, be_u32, bounded, many, take};
use crate::sink::Sink;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use std::borrow::Cow;

enum_with_unknown! {
    /// `ofp_meter_band_type`.
    pub enum MeterBandType(u16) {
        Drop = 1 => "DROP",
        DscpRemark = 2 => "DSCP_REMARK",
        Experimenter = 0xffff => "EXPERIMENTER",
    }
}

/// One meter band. `rate` is in kb/s or packets/s per the meter's flags;
/// `burst_size` in kilobits or packets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MeterBand<'a> {
    Drop {
        rate: u32,
        burst_size: u32,
    },
    DscpRemark {
        rate: u32,
        burst_size: u32,
        prec_level: u8,
    },
    /// `data` follows the experimenter id.
    Experimenter {
        rate: u32,
        burst_size: u32,
        experimenter: u32,
        data: Cow<'a, [u8]>,
    },
    /// `data` follows the 12-byte common band header.
    Unknown {
        band_type: u16,
        rate: u32,
        burst_size: u32,
        data: Cow<'a, [u8]>,
    },
}

impl<'a> MeterBand<'a> {
    pub fn band_type(&self) -> MeterBandType {
        match self {
            MeterBand::Drop { .. } => MeterBandType::Drop,
            MeterBand::DscpRemark { .. } => MeterBandType::DscpRemark,
            MeterBand::Experimenter { .. } => MeterBandType::Experimenter,
            MeterBand::Unknown { band_type, .. } => MeterBandType::from(*band_type),
        }
    }

    fn rate_burst(&self) -> (u32, u32) {
        match *self {
            MeterBand::Drop { rate, burst_size }
            | MeterBand::DscpRemark {
                rate, burst_size, ..
            }
            | MeterBand::Experimenter {
                rate, burst_size, ..
            }
            | MeterBand::Unknown {
                rate, burst_size, ..
            } => (rate, burst_size),
        }
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            MeterBand::Drop { .. } | MeterBand::DscpRemark { .. } => 16,
            MeterBand::Experimenter { data, .. } => 16 + data.len(),
            MeterBand::Unknown { data, .. } => 12 + data.len(),
        }
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        let (rate, burst) = self.rate_burst();
        buf.put_u16(self.band_type().value());
        buf.put_u16(self.buffer_len() as u16);
        buf.put_u32(rate);
        buf.put_u32(burst);
        match self {
            MeterBand::Drop { .. } => buf.put_bytes(0, 4),
            MeterBand::DscpRemark { prec_level, .. } => {
                buf.put_u8(*prec_level);
                buf.put_bytes(0, 3);
            }
            MeterBand::Experimenter {
                experimenter, data, ..
            } => {
                buf.put_u32(*experimenter);
                buf.put_slice(data);
            }
            MeterBand::Unknown { data, .. } => buf.put_slice(data),
        }
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (r, band_type) = be_u16(input)?;
        let (_, length) = be_u16(r)?;
        let min = match MeterBandType::from(band_type) {
            MeterBandType::Unknown(_) => 12,
            _ => 16,
        };
        let (rest, whole) = bounded(input, usize::from(length), min, "meter band")?;
        let (b, _) = take(whole, 4)?;
        let (b, rate) = be_u32(b)?;
        let (b, burst_size) = be_u32(b)?;
        let band = match MeterBandType::from(band_type) {
            MeterBandType::Drop => {
                crate::parse::done(take(b, 4)?.0)?;
                MeterBand::Drop { rate, burst_size }
            }
            MeterBandType::DscpRemark => {
                let (b, prec_level) = be_u8(b)?;
                crate::parse::done(take(b, 3)?.0)?;
                MeterBand::DscpRemark {
                    rate,
                    burst_size,
                    prec_level,
                }
            }
            MeterBandType::Experimenter => {
                let (data, experimenter) = be_u32(b)?;
                MeterBand::Experimenter {
                    rate,
                    burst_size,
                    experimenter,
                    data: Cow::Borrowed(data),
                }
            }
            MeterBandType::Unknown(_) => MeterBand::Unknown {
                band_type,
                rate,
                burst_size,
                data: Cow::Borrowed(b),
            },
        };
        Ok((rest, band))
    }

    pub fn into_owned(self) -> MeterBand<'static> {
        match self {
            MeterBand::Drop { rate, burst_size } => MeterBand::Drop { rate, burst_size },
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            } => MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            },
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                data,
            } => MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                data: Cow::Owned(data.into_owned()),
            },
            MeterBand::Unknown {
                band_type,
                rate,
                burst_size,
                data,
            } => MeterBand::Unknown {
                band_type,
                rate,
                burst_size,
                data: Cow::Owned(data.into_owned()),
            },
        }
    }
}

impl Serialize for MeterBand<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (rate, burst) = self.rate_burst();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &self.band_type())?;
        m.serialize_entry("rate", &rate)?;
        m.serialize_entry("burst_size", &burst)?;
        match self {
            MeterBand::Drop { .. } => {}
            MeterBand::DscpRemark { prec_level, .. } => {
                m.serialize_entry("prec_level", prec_level)?
            }
            MeterBand::Experimenter {
                experimenter, data, ..
            } => {
                m.serialize_entry("experimenter", experimenter)?;
                m.serialize_entry("data", &hex::encode(data))?;
            }
            MeterBand::Unknown { data, .. } => m.serialize_entry("data", &hex::encode(data))?,
        }
        m.end()
    }
}

pub fn parse_bands(input: &[u8]) -> Result<Vec<MeterBand<'_>>, nom::Err<crate::error::PErr>> {
    many(input, MeterBand::parse)
}

pub fn bands_len(bands: &[MeterBand<'_>]) -> usize {
    bands.iter().map(MeterBand::buffer_len).sum()
}

/// METER_MOD (`ofp_meter_mod`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MeterMod<'a> {
    pub command: MeterModCommand,
    /// `ofp_meter_flags` bits (KBPS, PKTPS, BURST, STATS).
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand<'a>>,
}

impl<'a> MeterMod<'a> {
    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u16(self.command.value());
        buf.put_u16(self.flags);
        buf.put_u32(self.meter_id);
        for b in &self.bands {
            b.emit(buf);
        }
    }

    pub fn parse(b: &'a [u8]) -> PResult<'a, Self> {
        let (b, command) = be_u16(b)?;
        let (b, flags) = be_u16(b)?;
        let (b, meter_id) = be_u32(b)?;
        let bands = parse_bands(b)?;
        Ok((
            &[],
            MeterMod {
                command: command.into(),
                flags,
                meter_id,
                bands,
            },
        ))
    }

    pub fn into_owned(self) -> MeterMod<'static> {
        MeterMod {
            bands: self.bands.into_iter().map(MeterBand::into_owned).collect(),
            ..self
        }
    }
}
