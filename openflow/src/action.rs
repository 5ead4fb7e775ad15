//! Actions (`ofp_action_*`): every OpenFlow 1.3 action, experimenter and
//! unknown ones kept raw.

use crate::consts::PortNo;
use crate::enum_with_unknown;
use crate::error::{ErrorKind, PErr, PResult};
use crate::oxm::Oxm;
use crate::parse::{be_u8, be_u16, be_u32, bounded, pad, pad8, take};
use crate::sink::Sink;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use smallvec::SmallVec;
use std::borrow::Cow;

enum_with_unknown! {
    /// `ofp_action_type`.
    pub enum ActionType(u16) {
        Output = 0 => "OUTPUT",
        CopyTtlOut = 11 => "COPY_TTL_OUT",
        CopyTtlIn = 12 => "COPY_TTL_IN",
        SetMplsTtl = 15 => "SET_MPLS_TTL",
        DecMplsTtl = 16 => "DEC_MPLS_TTL",
        PushVlan = 17 => "PUSH_VLAN",
        PopVlan = 18 => "POP_VLAN",
        PushMpls = 19 => "PUSH_MPLS",
        PopMpls = 20 => "POP_MPLS",
        SetQueue = 21 => "SET_QUEUE",
        Group = 22 => "GROUP",
        SetNwTtl = 23 => "SET_NW_TTL",
        DecNwTtl = 24 => "DEC_NW_TTL",
        SetField = 25 => "SET_FIELD",
        PushPbb = 26 => "PUSH_PBB",
        PopPbb = 27 => "POP_PBB",
        Experimenter = 0xffff => "EXPERIMENTER",
    }
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action<'a> {
    Output {
        port: PortNo,
        max_len: u16,
    },
    CopyTtlOut,
    CopyTtlIn,
    SetMplsTtl {
        mpls_ttl: u8,
    },
    DecMplsTtl,
    PushVlan {
        ethertype: u16,
    },
    PopVlan,
    PushMpls {
        ethertype: u16,
    },
    PopMpls {
        ethertype: u16,
    },
    SetQueue {
        queue_id: u32,
    },
    Group {
        group_id: u32,
    },
    SetNwTtl {
        nw_ttl: u8,
    },
    DecNwTtl,
    SetField {
        field: Oxm<'a>,
    },
    PushPbb {
        ethertype: u16,
    },
    PopPbb,
    /// `data` is everything after the experimenter id.
    Experimenter {
        experimenter: u32,
        data: Cow<'a, [u8]>,
    },
    /// `data` is everything after the 4-byte type/len header.
    Unknown {
        action_type: u16,
        data: Cow<'a, [u8]>,
    },
}

/// Inline capacity for action lists: a tier flow's apply-actions
/// (set_field, set_queue, output) fit without a heap allocation.
pub type Actions<'a> = SmallVec<[Action<'a>; 4]>;

impl<'a> Action<'a> {
    pub fn output(port: u32) -> Self {
        Action::Output {
            port: PortNo::from(port),
            max_len: 0,
        }
    }

    pub fn action_type(&self) -> ActionType {
        match self {
            Action::Output { .. } => ActionType::Output,
            Action::CopyTtlOut => ActionType::CopyTtlOut,
            Action::CopyTtlIn => ActionType::CopyTtlIn,
            Action::SetMplsTtl { .. } => ActionType::SetMplsTtl,
            Action::DecMplsTtl => ActionType::DecMplsTtl,
            Action::PushVlan { .. } => ActionType::PushVlan,
            Action::PopVlan => ActionType::PopVlan,
            Action::PushMpls { .. } => ActionType::PushMpls,
            Action::PopMpls { .. } => ActionType::PopMpls,
            Action::SetQueue { .. } => ActionType::SetQueue,
            Action::Group { .. } => ActionType::Group,
            Action::SetNwTtl { .. } => ActionType::SetNwTtl,
            Action::DecNwTtl => ActionType::DecNwTtl,
            Action::SetField { .. } => ActionType::SetField,
            Action::PushPbb { .. } => ActionType::PushPbb,
            Action::PopPbb => ActionType::PopPbb,
            Action::Experimenter { .. } => ActionType::Experimenter,
            Action::Unknown { action_type, .. } => ActionType::from(*action_type),
        }
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Action::Output { .. } => 16,
            Action::SetField { field } => {
                let n = 4 + field.buffer_len();
                n + pad8(n)
            }
            Action::Experimenter { data, .. } => 8 + data.len(),
            Action::Unknown { data, .. } => 4 + data.len(),
            _ => 8,
        }
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        // Fixed-size actions go out as one array: one bounds check and one
        // copy instead of a write per field (this is the FLOW_MOD hot path).
        let t = self.action_type().value().to_be_bytes();
        match self {
            Action::Output { port, max_len } => {
                let [p0, p1, p2, p3] = port.value().to_be_bytes();
                let [m0, m1] = max_len.to_be_bytes();
                buf.put_slice(&[t[0], t[1], 0, 16, p0, p1, p2, p3, m0, m1, 0, 0, 0, 0, 0, 0]);
            }
            Action::CopyTtlOut
            | Action::CopyTtlIn
            | Action::DecMplsTtl
            | Action::PopVlan
            | Action::DecNwTtl
            | Action::PopPbb => buf.put_slice(&[t[0], t[1], 0, 8, 0, 0, 0, 0]),
            Action::SetMplsTtl { mpls_ttl: v } | Action::SetNwTtl { nw_ttl: v } => {
                buf.put_slice(&[t[0], t[1], 0, 8, *v, 0, 0, 0]);
            }
            Action::PushVlan { ethertype }
            | Action::PushMpls { ethertype }
            | Action::PopMpls { ethertype }
            | Action::PushPbb { ethertype } => {
                let [e0, e1] = ethertype.to_be_bytes();
                buf.put_slice(&[t[0], t[1], 0, 8, e0, e1, 0, 0]);
            }
            Action::SetQueue { queue_id: v } | Action::Group { group_id: v } => {
                let [v0, v1, v2, v3] = v.to_be_bytes();
                buf.put_slice(&[t[0], t[1], 0, 8, v0, v1, v2, v3]);
            }
            Action::SetField { field } => {
                let start = buf.written();
                buf.put_slice(&[t[0], t[1], 0, 0]);
                field.emit(buf);
                crate::sink::put_zeros(buf, pad8(buf.written().saturating_sub(start)));
                crate::sink::finish(buf, start, 2);
            }
            Action::Experimenter { experimenter, data } => {
                let start = buf.written();
                buf.put_slice(&[t[0], t[1], 0, 0]);
                buf.put_u32(*experimenter);
                buf.put_slice(data);
                // Lengths above 64 KiB are rejected when the message is encoded.
                crate::sink::finish(buf, start, 2);
            }
            Action::Unknown { data, .. } => {
                let start = buf.written();
                buf.put_slice(&[t[0], t[1], 0, 0]);
                buf.put_slice(data);
                crate::sink::finish(buf, start, 2);
            }
        }
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (r, action_type) = be_u16(input)?;
        let (_, length) = be_u16(r)?;
        let bad = || {
            PErr::at(
                input,
                ErrorKind::BadActionLength {
                    action_type,
                    length,
                },
            )
        };
        let (rest, whole) = bounded(input, usize::from(length), 4, "action").map_err(|_| bad())?;
        let (body, _) = take(whole, 4)?;
        let fixed = |n: usize| {
            if usize::from(length) == n {
                Ok(())
            } else {
                Err(bad())
            }
        };
        let action = match ActionType::from(action_type) {
            ActionType::Output => {
                fixed(16)?;
                let (b, port) = be_u32(body)?;
                let (b, max_len) = be_u16(b)?;
                pad(b, 6)?;
                Action::Output {
                    port: PortNo::from(port),
                    max_len,
                }
            }
            t @ (ActionType::CopyTtlOut
            | ActionType::CopyTtlIn
            | ActionType::DecMplsTtl
            | ActionType::PopVlan
            | ActionType::DecNwTtl
            | ActionType::PopPbb) => {
                fixed(8)?;
                match t {
                    ActionType::CopyTtlOut => Action::CopyTtlOut,
                    ActionType::CopyTtlIn => Action::CopyTtlIn,
                    ActionType::DecMplsTtl => Action::DecMplsTtl,
                    ActionType::PopVlan => Action::PopVlan,
                    ActionType::DecNwTtl => Action::DecNwTtl,
                    _ => Action::PopPbb,
                }
            }
            t @ (ActionType::SetMplsTtl | ActionType::SetNwTtl) => {
                fixed(8)?;
                let (_, v) = be_u8(body)?;
                if t == ActionType::SetMplsTtl {
                    Action::SetMplsTtl { mpls_ttl: v }
                } else {
                    Action::SetNwTtl { nw_ttl: v }
                }
            }
            t @ (ActionType::PushVlan
            | ActionType::PushMpls
            | ActionType::PopMpls
            | ActionType::PushPbb) => {
                fixed(8)?;
                let (_, ethertype) = be_u16(body)?;
                match t {
                    ActionType::PushVlan => Action::PushVlan { ethertype },
                    ActionType::PushMpls => Action::PushMpls { ethertype },
                    ActionType::PopMpls => Action::PopMpls { ethertype },
                    _ => Action::PushPbb { ethertype },
                }
            }
            t @ (ActionType::SetQueue | ActionType::Group) => {
                fixed(8)?;
                let (_, v) = be_u32(body)?;
                if t == ActionType::SetQueue {
                    Action::SetQueue { queue_id: v }
                } else {
                    Action::Group { group_id: v }
                }
            }
            ActionType::SetField => {
                let (padding, field) = Oxm::parse(body)?;
                // The OXM plus padding must make exactly the declared length,
                // padded to 8 as the spec requires.
                if padding.len() != pad8(4 + field.buffer_len()) {
                    return Err(bad());
                }
                Action::SetField { field }
            }
            ActionType::Experimenter => {
                if length < 8 {
                    return Err(bad());
                }
                let (data, experimenter) = be_u32(body)?;
                Action::Experimenter {
                    experimenter,
                    data: Cow::Borrowed(data),
                }
            }
            ActionType::Unknown(_) => Action::Unknown {
                action_type,
                data: Cow::Borrowed(body),
            },
        };
        Ok((rest, action))
    }

    pub fn into_owned(self) -> Action<'static> {
        match self {
            Action::Output { port, max_len } => Action::Output { port, max_len },
            Action::CopyTtlOut => Action::CopyTtlOut,
            Action::CopyTtlIn => Action::CopyTtlIn,
            Action::SetMplsTtl { mpls_ttl } => Action::SetMplsTtl { mpls_ttl },
            Action::DecMplsTtl => Action::DecMplsTtl,
            Action::PushVlan { ethertype } => Action::PushVlan { ethertype },
            Action::PopVlan => Action::PopVlan,
            Action::PushMpls { ethertype } => Action::PushMpls { ethertype },
            Action::PopMpls { ethertype } => Action::PopMpls { ethertype },
            Action::SetQueue { queue_id } => Action::SetQueue { queue_id },
            Action::Group { group_id } => Action::Group { group_id },
            Action::SetNwTtl { nw_ttl } => Action::SetNwTtl { nw_ttl },
            Action::DecNwTtl => Action::DecNwTtl,
            Action::SetField { field } => Action::SetField {
                field: field.into_owned(),
            },
            Action::PushPbb { ethertype } => Action::PushPbb { ethertype },
            Action::PopPbb => Action::PopPbb,
            Action::Experimenter { experimenter, data } => Action::Experimenter {
                experimenter,
                data: Cow::Owned(data.into_owned()),
            },
            Action::Unknown { action_type, data } => Action::Unknown {
                action_type,
                data: Cow::Owned(data.into_owned()),
            },
        }
    }
}

impl Serialize for Action<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &self.action_type())?;
        match self {
            Action::Output { port, max_len } => {
                m.serialize_entry("port", port)?;
                m.serialize_entry("max_len", max_len)?;
            }
            Action::SetMplsTtl { mpls_ttl } => m.serialize_entry("mpls_ttl", mpls_ttl)?,
            Action::SetNwTtl { nw_ttl } => m.serialize_entry("nw_ttl", nw_ttl)?,
            Action::PushVlan { ethertype }
            | Action::PushMpls { ethertype }
            | Action::PopMpls { ethertype }
            | Action::PushPbb { ethertype } => m.serialize_entry("ethertype", ethertype)?,
            Action::SetQueue { queue_id } => m.serialize_entry("queue_id", queue_id)?,
            Action::Group { group_id } => m.serialize_entry("group_id", group_id)?,
            Action::SetField { field } => m.serialize_entry("field", field)?,
            Action::Experimenter { experimenter, data } => {
                m.serialize_entry("experimenter", experimenter)?;
                m.serialize_entry("data", &hex::encode(data))?;
            }
            Action::Unknown { data, .. } => m.serialize_entry("data", &hex::encode(data))?,
            _ => {}
        }
        m.end()
    }
}

/// Parses actions until `input` ends.
pub fn parse_actions(mut input: &[u8]) -> Result<Actions<'_>, nom::Err<PErr>> {
    let mut out = Actions::new();
    while !input.is_empty() {
        let (r, a) = Action::parse(input)?;
        out.push(a);
        input = r;
    }
    Ok(out)
}

pub fn actions_len(actions: &[Action<'_>]) -> usize {
    actions.iter().map(Action::buffer_len).sum()
}

pub fn emit_actions<B: Sink>(actions: &[Action<'_>], buf: &mut B) {
    for a in actions {
        a.emit(buf);
    }
}

pub fn actions_into_owned(a: Actions<'_>) -> Actions<'static> {
    a.into_iter().map(Action::into_owned).collect()
}
