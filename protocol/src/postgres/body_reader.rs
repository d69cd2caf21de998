//! A checked cursor over a message body: every read names the message and field it was for, so
//! a short or malformed body becomes a precise `ProtocolError` instead of a panic.

use bytes::Bytes;

use super::error::ProtocolError;

/// Reads the fields of one message body in order; `finish` insists the body was consumed exactly.
#[derive(Debug, Clone)]
pub(crate) struct BodyReader {
    message: &'static str,
    body: Bytes,
    pos: usize,
}

impl BodyReader {
    /// Starts reading `body`, a message called `message` in errors.
    pub(crate) fn new(message: &'static str, body: Bytes) -> Self {
        Self {
            message,
            body,
            pos: 0,
        }
    }

    fn truncated(&self, field: &'static str) -> ProtocolError {
        ProtocolError::Truncated {
            message: self.message,
            field,
        }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.body.len().saturating_sub(self.pos)
    }

    /// Reads `n` bytes without copying.
    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<Bytes, ProtocolError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.body.len())
            .ok_or_else(|| self.truncated(field))?;
        let out = self.body.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ProtocolError> {
        let bytes = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, ProtocolError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian i16.
    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, ProtocolError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian i32.
    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian u32 (object ids).
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a count field (i16) that must not be negative.
    pub(crate) fn count_i16(&mut self, field: &'static str) -> Result<usize, ProtocolError> {
        let n = self.i16(field)?;
        usize::try_from(n).map_err(|_| self.invalid(field, format!("negative count {n}")))
    }

    /// Reads a NUL-terminated UTF-8 string.
    pub(crate) fn cstr(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        let rest = self.body.get(self.pos..).unwrap_or_default();
        let nul = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(ProtocolError::MissingNul {
                message: self.message,
                field,
            })?;
        let raw = self.bytes(nul, field)?;
        self.pos = self.pos.saturating_add(1);
        String::from_utf8(raw.to_vec()).map_err(|_| ProtocolError::InvalidUtf8 {
            message: self.message,
            field,
        })
    }

    /// Reads a length-prefixed (i32) value where -1 means NULL.
    pub(crate) fn nullable_value(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Bytes>, ProtocolError> {
        let len = self.i32(field)?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| self.invalid(field, format!("length {len}")))?;
        self.bytes(len, field).map(Some)
    }

    /// Reads everything left.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.body.slice(self.pos.min(self.body.len())..);
        self.pos = self.body.len();
        out
    }

    /// An `InvalidField` error for this message.
    pub(crate) fn invalid(&self, field: &'static str, detail: String) -> ProtocolError {
        ProtocolError::InvalidField {
            message: self.message,
            field,
            detail,
        }
    }

    /// Ends decoding: the body must have been consumed exactly.
    pub(crate) fn finish(self) -> Result<(), ProtocolError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(ProtocolError::TrailingBytes {
                message: self.message,
                count,
            }),
        }
    }
}
