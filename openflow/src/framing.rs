//! Framing over a byte stream: splits whole OpenFlow messages off a
//! `BytesMut` read buffer. A partial message is "need more", not an error.

use crate::consts::HEADER_LEN;
use crate::error::{DecodeError, ErrorKind};
use bytes::{Bytes, BytesMut};

/// Upper bound on one message: the 16-bit length field.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// Outcome of looking for a message at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole message of this many bytes is at the front.
    Complete(usize),
    /// At least this many more bytes are needed.
    NeedMore(usize),
}

/// Checks whether `buf` starts with a complete message. Fails only when the
/// header's length is below the header size: the stream cannot be
/// resynchronised after that and the connection should be dropped.
pub fn check(buf: &[u8]) -> Result<Frame, DecodeError> {
    let Some(&[_, _, l0, l1, ..]) = buf.get(..HEADER_LEN) else {
        return Ok(Frame::NeedMore(HEADER_LEN - buf.len()));
    };
    let length = u16::from_be_bytes([l0, l1]);
    let len = usize::from(length);
    if len < HEADER_LEN {
        return Err(DecodeError {
            kind: ErrorKind::LengthBelowHeader { length },
            offset: 2,
        });
    }
    if buf.len() >= len {
        Ok(Frame::Complete(len))
    } else {
        Ok(Frame::NeedMore(len - buf.len()))
    }
}

/// Splits the next complete message off the front of `buf`, if there is one.
/// The returned `Bytes` shares `buf`'s allocation: no copy.
pub fn next_frame(buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
    match check(buf)? {
        Frame::Complete(n) => Ok(Some(buf.split_to(n).freeze())),
        Frame::NeedMore(_) => Ok(None),
    }
}

/// Iterates over the messages in a byte slice holding several back to back
/// (a capture file, a batch). Yields `(offset, message bytes)`; a truncated
/// tail or a bad length yields one error and stops.
pub fn split(buf: &[u8]) -> Split<'_> {
    Split {
        buf,
        off: 0,
        failed: false,
    }
}

/// Iterator returned by [`split`].
#[derive(Debug)]
pub struct Split<'a> {
    buf: &'a [u8],
    off: usize,
    failed: bool,
}

impl<'a> Iterator for Split<'a> {
    type Item = Result<(usize, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self
            .buf
            .get(self.off..)
            .filter(|r| !r.is_empty() && !self.failed)?;
        let start = self.off;
        let item = match check(rest) {
            Ok(Frame::Complete(n)) => {
                self.off += n;
                Ok((start, rest.get(..n).unwrap_or_default()))
            }
            Ok(Frame::NeedMore(_)) => Err(DecodeError {
                kind: ErrorKind::Truncated,
                offset: start + rest.len(),
            }),
            Err(e) => Err(DecodeError {
                offset: start + e.offset,
                ..e
            }),
        };
        self.failed = item.is_err();
        Some(item)
    }
}
