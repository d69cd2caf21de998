//! Describe (F): asks for the shape of a prepared statement or portal. Also defines
//! `ObjectKind`, shared with Close.

use bytes::{BufMut, BytesMut};

use crate::postgres::body_reader::BodyReader;
use crate::postgres::message_writer::{put_cstr, write_message};
use crate::postgres::tags::frontend::DESCRIBE;
use crate::postgres::{Frame, ProtocolError};

/// What a Describe or Close refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A prepared statement (`S`).
    Statement,
    /// A portal (`P`).
    Portal,
}

impl ObjectKind {
    /// The wire byte.
    pub fn as_byte(self) -> u8 {
        match self {
            ObjectKind::Statement => b'S',
            ObjectKind::Portal => b'P',
        }
    }

    pub(crate) fn read(r: &mut BodyReader) -> Result<Self, ProtocolError> {
        match r.u8("object kind")? {
            b'S' => Ok(ObjectKind::Statement),
            b'P' => Ok(ObjectKind::Portal),
            other => Err(r.invalid(
                "object kind",
                format!("{:?}, expected 'S' or 'P'", char::from(other)),
            )),
        }
    }
}

/// An extended-protocol Describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Describe {
    /// Statement or portal.
    pub kind: ObjectKind,
    /// Its name; empty for the unnamed one.
    pub name: String,
}

impl Describe {
    /// Decodes a Describe frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("Describe", DESCRIBE)?;
        let kind = ObjectKind::read(&mut r)?;
        let name = r.cstr("name")?;
        r.finish()?;
        Ok(Self { kind, name })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, DESCRIBE, |b| {
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
        for kind in [ObjectKind::Statement, ObjectKind::Portal] {
            let describe = Describe {
                kind,
                name: "s1".into(),
            };
            let mut buf = BytesMut::new();
            describe.encode(&mut buf);
            let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
            assert_eq!(Describe::decode(&frame).unwrap(), describe);
        }
    }

    #[test]
    fn unknown_kind_is_an_error() {
        let frame = Frame::from_encoded(b"D\0\0\0\x07Xs\0"[..].into(), 100).unwrap();
        assert_eq!(
            Describe::decode(&frame).unwrap_err().to_string(),
            "Describe message: invalid object kind: 'X', expected 'S' or 'P'"
        );
    }
}
