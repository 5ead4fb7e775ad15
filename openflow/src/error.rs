//! Decode errors: one typed enum, each variant mapping to the OFPT_ERROR
//! type/code a controller should answer a bad message with.

use crate::consts::{ErrorType, bad_action, bad_instruction, bad_match, bad_request};
use std::fmt;

/// Why a message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ends before the structure it declares.
    Truncated,
    /// The header's `length` is below the 8-byte header.
    LengthBelowHeader { length: u16 },
    /// A declared length is smaller than the fixed part it must contain, or
    /// runs past its enclosing structure.
    BadLength { what: &'static str, length: u32 },
    /// The header's version is not OpenFlow 1.3 (0x04) on a message other than HELLO.
    BadVersion { version: u8 },
    /// The message type is not an OpenFlow 1.3 message.
    BadType { msg_type: u8 },
    /// The multipart type is not one this codec knows.
    BadMultipartType { mp_type: u16 },
    /// An OXM's payload length does not fit its field.
    BadOxmLength { field: u8, length: u8 },
    /// An action's length is malformed.
    BadActionLength { action_type: u16, length: u16 },
    /// An instruction's length is malformed.
    BadInstructionLength { instruction_type: u16, length: u16 },
    /// A match that is not of type OXM (1).
    BadMatchType { match_type: u16 },
    /// Bytes left over where the structure must end.
    TrailingBytes { count: usize },
}

impl ErrorKind {
    /// The OFPT_ERROR (type, code) a controller answers this decode failure with.
    pub fn ofp_error(&self) -> (ErrorType, u16) {
        match *self {
            ErrorKind::Truncated
            | ErrorKind::LengthBelowHeader { .. }
            | ErrorKind::BadLength { .. }
            | ErrorKind::TrailingBytes { .. } => (ErrorType::BadRequest, bad_request::BAD_LEN),
            ErrorKind::BadVersion { .. } => (ErrorType::BadRequest, bad_request::BAD_VERSION),
            ErrorKind::BadType { .. } => (ErrorType::BadRequest, bad_request::BAD_TYPE),
            ErrorKind::BadMultipartType { .. } => {
                (ErrorType::BadRequest, bad_request::BAD_MULTIPART)
            }
            ErrorKind::BadOxmLength { .. } => (ErrorType::BadMatch, bad_match::BAD_LEN),
            ErrorKind::BadMatchType { .. } => (ErrorType::BadMatch, bad_match::BAD_TYPE),
            ErrorKind::BadActionLength { .. } => (ErrorType::BadAction, bad_action::BAD_LEN),
            ErrorKind::BadInstructionLength { .. } => {
                (ErrorType::BadInstruction, bad_instruction::BAD_LEN)
            }
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Truncated => write!(f, "truncated message"),
            ErrorKind::LengthBelowHeader { length } => {
                write!(f, "header length {length} is below the 8-byte header")
            }
            ErrorKind::BadLength { what, length } => write!(f, "bad {what} length {length}"),
            ErrorKind::BadVersion { version } => {
                write!(f, "unsupported OpenFlow version 0x{version:02x}")
            }
            ErrorKind::BadType { msg_type } => write!(f, "unknown message type {msg_type}"),
            ErrorKind::BadMultipartType { mp_type } => {
                write!(f, "unknown multipart type {mp_type}")
            }
            ErrorKind::BadOxmLength { field, length } => {
                write!(f, "bad OXM length {length} for field {field}")
            }
            ErrorKind::BadActionLength {
                action_type,
                length,
            } => {
                write!(f, "bad length {length} for action type {action_type}")
            }
            ErrorKind::BadInstructionLength {
                instruction_type,
                length,
            } => {
                write!(
                    f,
                    "bad length {length} for instruction type {instruction_type}"
                )
            }
            ErrorKind::BadMatchType { match_type } => {
                write!(f, "unsupported match type {match_type}")
            }
            ErrorKind::TrailingBytes { count } => write!(f, "{count} unexpected trailing bytes"),
        }
    }
}

/// A decode failure: what went wrong and the byte offset, from the start of
/// the message, where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: ErrorKind,
    pub offset: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// The error nom carries while parsing a structure: the kind plus the
/// address of the input where it was raised. Nested structures parse
/// sub-slices, so only the address (not the bytes left) locates the error
/// within the whole message; `finish` turns it into an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PErr {
    pub kind: ErrorKind,
    addr: usize,
}

impl PErr {
    pub(crate) fn at(input: &[u8], kind: ErrorKind) -> nom::Err<PErr> {
        nom::Err::Error(PErr {
            kind,
            addr: input.as_ptr() as usize,
        })
    }
}

impl<'a> nom::error::ParseError<&'a [u8]> for PErr {
    fn from_error_kind(input: &'a [u8], _kind: nom::error::ErrorKind) -> Self {
        PErr {
            kind: ErrorKind::Truncated,
            addr: input.as_ptr() as usize,
        }
    }
    fn append(_input: &'a [u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

pub type PResult<'a, T> = nom::IResult<&'a [u8], T, PErr>;

/// Converts a nom error raised while parsing `whole` into an offset-bearing error.
pub(crate) fn finish(whole: &[u8], e: nom::Err<PErr>) -> DecodeError {
    match e {
        nom::Err::Error(p) | nom::Err::Failure(p) => DecodeError {
            kind: p.kind,
            offset: p
                .addr
                .saturating_sub(whole.as_ptr() as usize)
                .min(whole.len()),
        },
        // Only streaming parsers return Incomplete; ours are all `complete`.
        nom::Err::Incomplete(_) => DecodeError {
            kind: ErrorKind::Truncated,
            offset: whole.len(),
        },
    }
}
