//! Close (F): releases a prepared statement or portal.

use bytes::{BufMut, BytesMut};

use super::describe::ObjectKind;
use crate::postgres::message_writer::{put_cstr, write_message};
use crate::postgres::tags::frontend::CLOSE;
use crate::postgres::{Frame, ProtocolError};

/// An extended-protocol Close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// Statement or portal.
    pub kind: ObjectKind,
    /// Its name; empty for the unnamed one.
    pub name: String,
}

impl Close {
    /// Decodes a Close frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("Close", CLOSE)?;
        let kind = ObjectKind::read(&mut r)?;
        let name = r.cstr("name")?;
        r.finish()?;
        Ok(Self { kind, name })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, CLOSE, |b| {
            b.put_u8(self.kind.as_byte());
            put_cstr(b, &self.name);
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let close = Close {
            kind: ObjectKind::Portal,
            name: String::new(),
        };
        let mut buf = BytesMut::new();
        close.encode(&mut buf);
        assert_eq!(&buf[..], b"C\0\0\0\x06P\0");
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(Close::decode(&frame).unwrap(), close);
    }
}
