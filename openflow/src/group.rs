//! Group buckets (`ofp_bucket`) and GROUP_MOD.

use crate::action::{Actions, actions_into_owned, actions_len, emit_actions, parse_actions};
use crate::consts::{GroupModCommand, GroupType, PortNo};
use crate::error::PResult;
use crate::parse::{be_u8, be_u16, be_u32, bounded, many, pad};
use crate::sink::Sink;
use serde::Serialize;

/// One bucket of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Bucket<'a> {
    pub weight: u16,
    pub watch_port: PortNo,
    pub watch_group: u32,
    pub actions: Actions<'a>,
}

impl<'a> Bucket<'a> {
    pub fn buffer_len(&self) -> usize {
        16 + actions_len(&self.actions)
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u16(self.buffer_len() as u16);
        buf.put_u16(self.weight);
        buf.put_u32(self.watch_port.value());
        buf.put_u32(self.watch_group);
        buf.put_bytes(0, 4);
        emit_actions(&self.actions, buf);
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (_, len) = be_u16(input)?;
        let (rest, whole) = bounded(input, usize::from(len), 16, "bucket")?;
        let (b, _) = be_u16(whole)?;
        let (b, weight) = be_u16(b)?;
        let (b, watch_port) = be_u32(b)?;
        let (b, watch_group) = be_u32(b)?;
        let (b, ()) = pad(b, 4)?;
        let actions = parse_actions(b)?;
        Ok((
            rest,
            Bucket {
                weight,
                watch_port: watch_port.into(),
                watch_group,
                actions,
            },
        ))
    }

    pub fn into_owned(self) -> Bucket<'static> {
        Bucket {
            actions: actions_into_owned(self.actions),
            ..self
        }
    }
}

pub fn parse_buckets(b: &[u8]) -> Result<Vec<Bucket<'_>>, nom::Err<crate::error::PErr>> {
    many(b, Bucket::parse)
}

pub fn buckets_len(b: &[Bucket<'_>]) -> usize {
    b.iter().map(Bucket::buffer_len).sum()
}

pub fn buckets_into_owned(b: Vec<Bucket<'_>>) -> Vec<Bucket<'static>> {
    b.into_iter().map(Bucket::into_owned).collect()
}

/// GROUP_MOD (`ofp_group_mod`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct GroupMod<'a> {
    pub command: GroupModCommand,
    #[serde(rename = "group_type")]
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket<'a>>,
}

impl<'a> GroupMod<'a> {
    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u16(self.command.value());
        buf.put_u8(self.group_type.value());
        buf.put_u8(0);
        buf.put_u32(self.group_id);
        for b in &self.buckets {
            b.emit(buf);
        }
    }

    pub fn parse(b: &'a [u8]) -> PResult<'a, Self> {
        let (b, command) = be_u16(b)?;
        let (b, group_type) = be_u8(b)?;
        let (b, ()) = pad(b, 1)?;
        let (b, group_id) = be_u32(b)?;
        let buckets = parse_buckets(b)?;
        Ok((
            &[],
            GroupMod {
                command: command.into(),
                group_type: group_type.into(),
                group_id,
                buckets,
            },
        ))
    }

    pub fn into_owned(self) -> GroupMod<'static> {
        GroupMod {
            buckets: buckets_into_owned(self.buckets),
            ..self
        }
    }
}
