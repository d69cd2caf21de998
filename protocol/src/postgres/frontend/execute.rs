//! Execute (F): runs a bound portal, optionally limited to a number of rows.

use bytes::{BufMut, BytesMut};

use crate::postgres::message_writer::{put_cstr, write_message};
use crate::postgres::tags::frontend::EXECUTE;
use crate::postgres::{Frame, ProtocolError};

/// An extended-protocol Execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execute {
    /// Portal name; empty for the unnamed portal.
    pub portal: String,
    /// Row limit; 0 means no limit.
    pub max_rows: i32,
}

impl Execute {
    /// Decodes an Execute frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("Execute", EXECUTE)?;
        let portal = r.cstr("portal name")?;
        let max_rows = r.i32("row limit")?;
        r.finish()?;
        Ok(Self { portal, max_rows })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, EXECUTE, |b| {
            put_cstr(b, &self.portal);
            b.put_i32(self.max_rows);
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let execute = Execute {
            portal: "p".into(),
            max_rows: 50,
        };
        let mut buf = BytesMut::new();
        execute.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(Execute::decode(&frame).unwrap(), execute);
    }

    #[test]
    fn missing_row_limit_is_an_error() {
        let frame = Frame::from_encoded(b"E\0\0\0\x06p\0"[..].into(), 100).unwrap();
        assert_eq!(
            Execute::decode(&frame).unwrap_err().to_string(),
            "truncated Execute message: missing row limit"
        );
    }
}
