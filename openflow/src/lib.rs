//! `openflow`: the OpenFlow 1.3 (spec 1.3.5) wire codec.
//!
//! Pure encode/decode: this crate knows nothing of sockets, tokio, Redis or
//! HTTP. Decoding never panics on any input: every declared length is
//! checked before use, lists grow only with parsed elements, and every
//! failure is a [`DecodeError`] that maps to the OFPT_ERROR a controller
//! answers with. Unknown and experimenter elements are kept raw so that
//! `encode(decode(bytes)) == bytes`.
//!
//! Layout follows smoltcp's `wire`: one module per protocol structure, each
//! type with `parse`, `buffer_len` and `emit` (into a [`sink::Sink`]: a
//! `Vec<u8>` or `BytesMut`, so hot messages encode straight into a
//! connection's write buffer, lengths patched in once their TLV is written).

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod action;
pub mod consts;
pub mod error;
pub mod framing;
pub mod group;
pub mod instruction;
pub mod json;
#[doc(hidden)]
pub mod macros;
pub mod message;
pub mod meter;
pub mod multipart;
pub mod oxm;
mod parse;
pub mod port;
pub mod queue;
pub mod sink;
pub mod types;

pub use action::{Action, ActionType, Actions};
pub use consts::*;
pub use error::{DecodeError, ErrorKind};
pub use group::{Bucket, GroupMod};
pub use instruction::{Instruction, InstructionType, Instructions};
pub use message::{
    AsyncConfig, Body, EncodeError, ErrorMsg, Experimenter, FeaturesReply, FlowMod, FlowRemoved,
    Header, HelloElem, Message, PacketIn, PacketOut, QueueGetConfigReply, Role, SwitchConfig,
    TableMod, decode, encode, encode_versioned, to_json, to_vec,
};
pub use meter::{MeterBand, MeterBandType, MeterMod};
pub use multipart::{MultipartReply, MultipartRequest};
pub use oxm::{Match, Oxm, RawOxm};
pub use port::{Port, PortMod, PortStatus};
pub use sink::Sink;
pub use types::{FixedStr, MacAddr};
