//! Output buffers the encoder writes into. A `Sink` is a `BufMut` that can
//! also say how much it holds and patch bytes already written, so a TLV's
//! length is filled in after its contents are written instead of being
//! computed first (and recomputed at every nesting level).

use bytes::{BufMut, BytesMut};

/// A growable byte buffer the codec can encode into.
pub trait Sink: BufMut {
    /// Bytes written so far.
    fn written(&self) -> usize;
    /// Overwrites two bytes at `at` (which must already be written).
    fn patch_u16(&mut self, at: usize, v: u16);
    /// Drops everything after the first `len` bytes.
    fn truncate_to(&mut self, len: usize);
}

impl Sink for Vec<u8> {
    #[inline]
    fn written(&self) -> usize {
        self.len()
    }
    #[inline]
    fn patch_u16(&mut self, at: usize, v: u16) {
        if let Some(dst) = self.get_mut(at..at + 2) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
    }
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
}

impl Sink for BytesMut {
    #[inline]
    fn written(&self) -> usize {
        self.len()
    }
    #[inline]
    fn patch_u16(&mut self, at: usize, v: u16) {
        if let Some(dst) = self.get_mut(at..at + 2) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
    }
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
}

/// Fills in the length of a TLV that started at `start`, whose length field
/// sits `len_at` bytes into it. Returns the length.
#[inline]
pub(crate) fn finish<B: Sink>(buf: &mut B, start: usize, len_at: usize) -> usize {
    let len = buf.written().saturating_sub(start);
    // Callers bound messages to 64 KiB; a longer TLV is caught by `encode`.
    buf.patch_u16(start + len_at, len as u16);
    len
}

/// Writes `n` (at most 8) zero bytes of padding. `put_bytes` would call
/// memset for what is a single small copy.
#[inline]
pub(crate) fn put_zeros<B: Sink>(buf: &mut B, n: usize) {
    buf.put_slice([0u8; 8].get(..n).unwrap_or(&[0u8; 8]));
}
