//! Queue descriptions (`ofp_packet_queue` and its properties) for
//! QUEUE_GET_CONFIG_REPLY.

use crate::consts::PortNo;
use crate::enum_with_unknown;
use crate::error::PResult;
use crate::parse::{be_u16, be_u32, bounded, many, pad, take};
use crate::sink::Sink;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use std::borrow::Cow;

enum_with_unknown! {
    /// `ofp_queue_properties`.
    pub enum QueuePropType(u16) {
        MinRate = 1 => "MIN_RATE",
        MaxRate = 2 => "MAX_RATE",
        Experimenter = 0xffff => "EXPERIMENTER",
    }
}

/// One queue property.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QueueProp<'a> {
    /// Rate in 1/10 of a percent; > 1000 means disabled.
    MinRate {
        rate: u16,
    },
    MaxRate {
        rate: u16,
    },
    /// `data` follows the experimenter id and its 4 pad bytes.
    Experimenter {
        experimenter: u32,
        data: Cow<'a, [u8]>,
    },
    /// `data` follows the 8-byte property header.
    Unknown {
        property: u16,
        data: Cow<'a, [u8]>,
    },
}

impl<'a> QueueProp<'a> {
    pub fn prop_type(&self) -> QueuePropType {
        match self {
            QueueProp::MinRate { .. } => QueuePropType::MinRate,
            QueueProp::MaxRate { .. } => QueuePropType::MaxRate,
            QueueProp::Experimenter { .. } => QueuePropType::Experimenter,
            QueueProp::Unknown { property, .. } => QueuePropType::from(*property),
        }
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            QueueProp::MinRate { .. } | QueueProp::MaxRate { .. } => 16,
            QueueProp::Experimenter { data, .. } => 16 + data.len(),
            QueueProp::Unknown { data, .. } => 8 + data.len(),
        }
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u16(self.prop_type().value());
        buf.put_u16(self.buffer_len() as u16);
        buf.put_bytes(0, 4);
        match self {
            QueueProp::MinRate { rate } | QueueProp::MaxRate { rate } => {
                buf.put_u16(*rate);
                buf.put_bytes(0, 6);
            }
            QueueProp::Experimenter { experimenter, data } => {
                buf.put_u32(*experimenter);
                buf.put_bytes(0, 4);
                buf.put_slice(data);
            }
            QueueProp::Unknown { data, .. } => buf.put_slice(data),
        }
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (r, property) = be_u16(input)?;
        let (_, len) = be_u16(r)?;
        let min = match QueuePropType::from(property) {
            QueuePropType::Unknown(_) => 8,
            _ => 16,
        };
        let (rest, whole) = bounded(input, usize::from(len), min, "queue property")?;
        let (b, _) = take(whole, 8)?;
        let prop = match QueuePropType::from(property) {
            t @ (QueuePropType::MinRate | QueuePropType::MaxRate) => {
                let (b, rate) = be_u16(b)?;
                crate::parse::done(take(b, 6)?.0)?;
                if t == QueuePropType::MinRate {
                    QueueProp::MinRate { rate }
                } else {
                    QueueProp::MaxRate { rate }
                }
            }
            QueuePropType::Experimenter => {
                let (b, experimenter) = be_u32(b)?;
                let (data, ()) = pad(b, 4)?;
                QueueProp::Experimenter {
                    experimenter,
                    data: Cow::Borrowed(data),
                }
            }
            QueuePropType::Unknown(_) => QueueProp::Unknown {
                property,
                data: Cow::Borrowed(b),
            },
        };
        Ok((rest, prop))
    }

    pub fn into_owned(self) -> QueueProp<'static> {
        match self {
            QueueProp::MinRate { rate } => QueueProp::MinRate { rate },
            QueueProp::MaxRate { rate } => QueueProp::MaxRate { rate },
            QueueProp::Experimenter { experimenter, data } => QueueProp::Experimenter {
                experimenter,
                data: Cow::Owned(data.into_owned()),
            },
            QueueProp::Unknown { property, data } => QueueProp::Unknown {
                property,
                data: Cow::Owned(data.into_owned()),
            },
        }
    }
}

impl Serialize for QueueProp<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("property", &self.prop_type())?;
        match self {
            QueueProp::MinRate { rate } | QueueProp::MaxRate { rate } => {
                m.serialize_entry("rate", rate)?
            }
            QueueProp::Experimenter { experimenter, data } => {
                m.serialize_entry("experimenter", experimenter)?;
                m.serialize_entry("data", &hex::encode(data))?;
            }
            QueueProp::Unknown { data, .. } => m.serialize_entry("data", &hex::encode(data))?,
        }
        m.end()
    }
}

/// `ofp_packet_queue`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PacketQueue<'a> {
    pub queue_id: u32,
    pub port: PortNo,
    pub properties: Vec<QueueProp<'a>>,
}

impl<'a> PacketQueue<'a> {
    pub fn buffer_len(&self) -> usize {
        16 + self
            .properties
            .iter()
            .map(QueueProp::buffer_len)
            .sum::<usize>()
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.queue_id);
        buf.put_u32(self.port.value());
        buf.put_u16(self.buffer_len() as u16);
        buf.put_bytes(0, 6);
        for p in &self.properties {
            p.emit(buf);
        }
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (b, queue_id) = be_u32(input)?;
        let (b, port) = be_u32(b)?;
        let (_, len) = be_u16(b)?;
        let (rest, whole) = bounded(input, usize::from(len), 16, "queue")?;
        let (b, _) = take(whole, 16)?;
        let properties = many(b, QueueProp::parse)?;
        Ok((
            rest,
            PacketQueue {
                queue_id,
                port: port.into(),
                properties,
            },
        ))
    }

    pub fn into_owned(self) -> PacketQueue<'static> {
        PacketQueue {
            queue_id: self.queue_id,
            port: self.port,
            properties: self
                .properties
                .into_iter()
                .map(QueueProp::into_owned)
                .collect(),
        }
    }
}
