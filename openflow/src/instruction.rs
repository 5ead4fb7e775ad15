//! Instructions (`ofp_instruction_*`).

use crate::action::{Actions, actions_into_owned, actions_len, emit_actions, parse_actions};
use crate::enum_with_unknown;
use crate::error::{ErrorKind, PErr, PResult};
use crate::parse::{be_u8, be_u16, be_u32, be_u64, bounded, take};
use crate::sink::Sink;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use smallvec::SmallVec;
use std::borrow::Cow;

enum_with_unknown! {
    /// `ofp_instruction_type`.
    pub enum InstructionType(u16) {
        GotoTable = 1 => "GOTO_TABLE",
        WriteMetadata = 2 => "WRITE_METADATA",
        WriteActions = 3 => "WRITE_ACTIONS",
        ApplyActions = 4 => "APPLY_ACTIONS",
        ClearActions = 5 => "CLEAR_ACTIONS",
        Meter = 6 => "METER",
        Experimenter = 0xffff => "EXPERIMENTER",
    }
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Instruction<'a> {
    GotoTable {
        table_id: u8,
    },
    WriteMetadata {
        metadata: u64,
        metadata_mask: u64,
    },
    WriteActions {
        actions: Actions<'a>,
    },
    ApplyActions {
        actions: Actions<'a>,
    },
    ClearActions,
    Meter {
        meter_id: u32,
    },
    /// `data` is everything after the experimenter id.
    Experimenter {
        experimenter: u32,
        data: Cow<'a, [u8]>,
    },
    /// `data` is everything after the 4-byte type/len header.
    Unknown {
        instruction_type: u16,
        data: Cow<'a, [u8]>,
    },
}

/// Inline capacity: meter + apply-actions without allocating (every
/// FLOW_MOD moves its instruction list by value, so kept small).
pub type Instructions<'a> = SmallVec<[Instruction<'a>; 2]>;

impl<'a> Instruction<'a> {
    pub fn instruction_type(&self) -> InstructionType {
        match self {
            Instruction::GotoTable { .. } => InstructionType::GotoTable,
            Instruction::WriteMetadata { .. } => InstructionType::WriteMetadata,
            Instruction::WriteActions { .. } => InstructionType::WriteActions,
            Instruction::ApplyActions { .. } => InstructionType::ApplyActions,
            Instruction::ClearActions => InstructionType::ClearActions,
            Instruction::Meter { .. } => InstructionType::Meter,
            Instruction::Experimenter { .. } => InstructionType::Experimenter,
            Instruction::Unknown {
                instruction_type, ..
            } => InstructionType::from(*instruction_type),
        }
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Instruction::WriteMetadata { .. } => 24,
            Instruction::WriteActions { actions } | Instruction::ApplyActions { actions } => {
                8 + actions_len(actions)
            }
            Instruction::Experimenter { data, .. } => 8 + data.len(),
            Instruction::Unknown { data, .. } => 4 + data.len(),
            _ => 8,
        }
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        let start = buf.written();
        buf.put_u16(self.instruction_type().value());
        buf.put_u16(0);
        match self {
            Instruction::GotoTable { table_id } => {
                buf.put_u8(*table_id);
                buf.put_bytes(0, 3);
            }
            Instruction::WriteMetadata {
                metadata,
                metadata_mask,
            } => {
                buf.put_bytes(0, 4);
                buf.put_u64(*metadata);
                buf.put_u64(*metadata_mask);
            }
            Instruction::WriteActions { actions } | Instruction::ApplyActions { actions } => {
                buf.put_bytes(0, 4);
                emit_actions(actions, buf);
            }
            Instruction::ClearActions => buf.put_bytes(0, 4),
            Instruction::Meter { meter_id } => buf.put_slice(&meter_id.to_be_bytes()),
            Instruction::Experimenter { experimenter, data } => {
                buf.put_u32(*experimenter);
                buf.put_slice(data);
            }
            Instruction::Unknown { data, .. } => buf.put_slice(data),
        }
        crate::sink::finish(buf, start, 2);
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (r, instruction_type) = be_u16(input)?;
        let (_, length) = be_u16(r)?;
        let bad = || {
            PErr::at(
                input,
                ErrorKind::BadInstructionLength {
                    instruction_type,
                    length,
                },
            )
        };
        let (rest, whole) =
            bounded(input, usize::from(length), 4, "instruction").map_err(|_| bad())?;
        let (body, _) = take(whole, 4)?;
        let fixed = |n: usize| {
            if usize::from(length) == n {
                Ok(())
            } else {
                Err(bad())
            }
        };
        let ins = match InstructionType::from(instruction_type) {
            InstructionType::GotoTable => {
                fixed(8)?;
                let (_, table_id) = be_u8(body)?;
                Instruction::GotoTable { table_id }
            }
            InstructionType::WriteMetadata => {
                fixed(24)?;
                let (b, _) = take(body, 4)?;
                let (b, metadata) = be_u64(b)?;
                let (_, metadata_mask) = be_u64(b)?;
                Instruction::WriteMetadata {
                    metadata,
                    metadata_mask,
                }
            }
            t @ (InstructionType::WriteActions | InstructionType::ApplyActions) => {
                if length < 8 {
                    return Err(bad());
                }
                let (b, _) = take(body, 4)?;
                let actions = parse_actions(b)?;
                if t == InstructionType::WriteActions {
                    Instruction::WriteActions { actions }
                } else {
                    Instruction::ApplyActions { actions }
                }
            }
            InstructionType::ClearActions => {
                fixed(8)?;
                Instruction::ClearActions
            }
            InstructionType::Meter => {
                fixed(8)?;
                let (_, meter_id) = be_u32(body)?;
                Instruction::Meter { meter_id }
            }
            InstructionType::Experimenter => {
                if length < 8 {
                    return Err(bad());
                }
                let (data, experimenter) = be_u32(body)?;
                Instruction::Experimenter {
                    experimenter,
                    data: Cow::Borrowed(data),
                }
            }
            InstructionType::Unknown(_) => Instruction::Unknown {
                instruction_type,
                data: Cow::Borrowed(body),
            },
        };
        Ok((rest, ins))
    }

    pub fn into_owned(self) -> Instruction<'static> {
        match self {
            Instruction::GotoTable { table_id } => Instruction::GotoTable { table_id },
            Instruction::WriteMetadata {
                metadata,
                metadata_mask,
            } => Instruction::WriteMetadata {
                metadata,
                metadata_mask,
            },
            Instruction::WriteActions { actions } => Instruction::WriteActions {
                actions: actions_into_owned(actions),
            },
            Instruction::ApplyActions { actions } => Instruction::ApplyActions {
                actions: actions_into_owned(actions),
            },
            Instruction::ClearActions => Instruction::ClearActions,
            Instruction::Meter { meter_id } => Instruction::Meter { meter_id },
            Instruction::Experimenter { experimenter, data } => Instruction::Experimenter {
                experimenter,
                data: Cow::Owned(data.into_owned()),
            },
            Instruction::Unknown {
                instruction_type,
                data,
            } => Instruction::Unknown {
                instruction_type,
                data: Cow::Owned(data.into_owned()),
            },
        }
    }
}

impl Serialize for Instruction<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &self.instruction_type())?;
        match self {
            Instruction::GotoTable { table_id } => m.serialize_entry("table_id", table_id)?,
            Instruction::WriteMetadata {
                metadata,
                metadata_mask,
            } => {
                m.serialize_entry("metadata", metadata)?;
                m.serialize_entry("metadata_mask", metadata_mask)?;
            }
            Instruction::WriteActions { actions } | Instruction::ApplyActions { actions } => {
                m.serialize_entry("actions", &actions[..])?;
            }
            Instruction::ClearActions => {}
            Instruction::Meter { meter_id } => m.serialize_entry("meter_id", meter_id)?,
            Instruction::Experimenter { experimenter, data } => {
                m.serialize_entry("experimenter", experimenter)?;
                m.serialize_entry("data", &hex::encode(data))?;
            }
            Instruction::Unknown { data, .. } => m.serialize_entry("data", &hex::encode(data))?,
        }
        m.end()
    }
}

pub fn parse_instructions(mut input: &[u8]) -> Result<Instructions<'_>, nom::Err<PErr>> {
    let mut out = Instructions::new();
    while !input.is_empty() {
        let (r, i) = Instruction::parse(input)?;
        out.push(i);
        input = r;
    }
    Ok(out)
}

pub fn instructions_len(ins: &[Instruction<'_>]) -> usize {
    ins.iter().map(Instruction::buffer_len).sum()
}

pub fn emit_instructions<B: Sink>(ins: &[Instruction<'_>], buf: &mut B) {
    for i in ins {
        i.emit(buf);
    }
}

pub fn instructions_into_owned(i: Instructions<'_>) -> Instructions<'static> {
    i.into_iter().map(Instruction::into_owned).collect()
}
