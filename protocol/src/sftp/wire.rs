//! SFTP field encoding (RFC 4251 types): u32, u64 and length-prefixed strings, read with checks
//! that name the packet and field, and written into a `BytesMut`.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::SftpError;

/// A path or file name as text for policies and logs; bytes that are not UTF-8 become U+FFFD
/// (they cannot turn one path into another that a prefix rule would treat differently).
pub fn path_text(path: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(path)
}

/// Reads the fields of one packet body in order.
pub(crate) struct WireReader {
    packet: &'static str,
    body: Bytes,
    pos: usize,
}

impl WireReader {
    /// Starts reading the body of packet `packet`.
    pub(crate) fn new(packet: &'static str, body: Bytes) -> Self {
        Self {
            packet,
            body,
            pos: 0,
        }
    }

    /// Reads `n` bytes without copying.
    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<Bytes, SftpError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.body.len())
            .ok_or(SftpError::Truncated {
                packet: self.packet,
                field,
            })?;
        let out = self.body.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }

    /// Reads a big-endian u32.
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, SftpError> {
        let b = self.bytes(4, field)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(&b);
        Ok(u32::from_be_bytes(a))
    }

    /// Reads a big-endian u64.
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, SftpError> {
        let b = self.bytes(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_be_bytes(a))
    }

    /// Reads a `string` (u32 length + bytes) without copying.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<Bytes, SftpError> {
        let len = self.u32(field)?;
        let len = usize::try_from(len).map_err(|_| SftpError::Truncated {
            packet: self.packet,
            field,
        })?;
        self.bytes(len, field)
    }

    /// Reads a `string` that must be UTF-8 (extension names, messages).
    pub(crate) fn text(&mut self, field: &'static str) -> Result<String, SftpError> {
        let raw = self.string(field)?;
        String::from_utf8(raw.to_vec()).map_err(|_| SftpError::InvalidUtf8 {
            packet: self.packet,
            field,
        })
    }

    /// The packet name, for errors raised by callers.
    pub(crate) fn packet(&self) -> &'static str {
        self.packet
    }

    /// Whether the body is fully read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.body.len()
    }

    /// Reads everything left.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.body.slice(self.pos.min(self.body.len())..);
        self.pos = self.body.len();
        out
    }

    /// Ends decoding: the body must have been consumed exactly.
    pub(crate) fn finish(self) -> Result<(), SftpError> {
        match self.body.len().saturating_sub(self.pos) {
            0 => Ok(()),
            count => Err(SftpError::TrailingBytes {
                packet: self.packet,
                count,
            }),
        }
    }
}

/// Appends a `string`.
pub(crate) fn put_string(buf: &mut BytesMut, s: &[u8]) {
    buf.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
    buf.put_slice(s);
}
