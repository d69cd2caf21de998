//! Writing typed messages: a type byte, a length patched in after the body, and field helpers.

use bytes::{BufMut, BytesMut};

/// Appends one complete message `tag | length | body` to `buf`, the body written by `body`.
///
/// The length field is computed after the body is written. Bodies over 2 GiB cannot be expressed
/// by the protocol; the length saturates and the peer rejects the frame rather than mis-framing.
pub(crate) fn write_message(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(tag);
    write_length_prefixed(buf, body);
}

/// Appends `length | body` (the untagged startup-phase form) to `buf`.
pub(crate) fn write_length_prefixed(buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.put_u32(0);
    body(buf);
    let len = u32::try_from(buf.len().saturating_sub(start)).unwrap_or(u32::MAX);
    if let Some(slot) = buf.get_mut(start..start.saturating_add(4)) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

/// Appends `s` NUL-terminated. Interior NUL bytes are dropped: they would end the field early
/// and let text chosen by someone else become the next field.
pub(crate) fn put_cstr(buf: &mut BytesMut, s: &str) {
    for chunk in s.as_bytes().split(|b| *b == 0) {
        buf.put_slice(chunk);
    }
    buf.put_u8(0);
}

/// Appends a count as an i16 (saturating: the protocol cannot express more).
pub(crate) fn put_count_i16(buf: &mut BytesMut, n: usize) {
    buf.put_i16(i16::try_from(n).unwrap_or(i16::MAX));
}

/// Appends a length-prefixed (i32) value, -1 for NULL.
pub(crate) fn put_nullable_value(buf: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => buf.put_i32(-1),
        Some(v) => {
            buf.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
            buf.put_slice(v);
        }
    }
}
