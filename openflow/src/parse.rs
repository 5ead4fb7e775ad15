//! Small nom helpers shared by every structure: fixed-width integers,
//! padding, and length-delimited sub-slices whose declared length is checked
//! before it is used.

use crate::error::{ErrorKind, PErr, PResult};

pub(crate) use nom::number::complete::{be_u8, be_u16, be_u32, be_u64};

/// Takes exactly `n` bytes. The same result and error as nom's
/// `bytes::complete::take`, which stays an out-of-line generic call on the
/// decode path (9% of a PACKET_IN decode under callgrind).
#[inline]
pub(crate) fn take(input: &[u8], n: usize) -> PResult<'_, &[u8]> {
    match input.split_at_checked(n) {
        Some((taken, rest)) => Ok((rest, taken)),
        None => Err(PErr::at(input, ErrorKind::Truncated)),
    }
}

/// Skips `n` padding bytes (their value is not checked: switches differ).
pub(crate) fn pad(input: &[u8], n: usize) -> PResult<'_, ()> {
    let (rest, _) = take(input, n)?;
    Ok((rest, ()))
}

/// Takes `N` bytes as an array.
pub(crate) fn array<const N: usize>(input: &[u8]) -> PResult<'_, [u8; N]> {
    let (rest, bytes) = take(input, N)?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok((rest, out))
}

/// Splits off a TLV body whose declared total `length` (header included)
/// must be at least `min` and fit in `input` (which still holds the
/// `header_len` bytes already read, counted from `start`).
pub(crate) fn bounded<'a>(
    start: &'a [u8],
    length: usize,
    min: usize,
    what: &'static str,
) -> PResult<'a, &'a [u8]> {
    if length < min || length > start.len() {
        return Err(PErr::at(
            start,
            ErrorKind::BadLength {
                what,
                length: length as u32,
            },
        ));
    }
    let (rest, body) = take(start, length)?;
    Ok((rest, body))
}

/// Parses a list of elements until `input` is exhausted.
pub(crate) fn many<'a, T>(
    mut input: &'a [u8],
    mut f: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> Result<Vec<T>, nom::Err<PErr>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (rest, item) = f(input)?;
        // Every element parser consumes at least its header; guard anyway so a
        // bug can never turn into an endless loop.
        if rest.len() >= input.len() {
            return Err(PErr::at(
                input,
                ErrorKind::BadLength {
                    what: "element",
                    length: 0,
                },
            ));
        }
        out.push(item);
        input = rest;
    }
    Ok(out)
}

/// Fails unless `input` is fully consumed.
pub(crate) fn done(input: &[u8]) -> Result<(), nom::Err<PErr>> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(PErr::at(
            input,
            ErrorKind::TrailingBytes { count: input.len() },
        ))
    }
}

/// Number of padding bytes that round `len` up to a multiple of 8.
pub(crate) const fn pad8(len: usize) -> usize {
    (8 - len % 8) % 8
}
