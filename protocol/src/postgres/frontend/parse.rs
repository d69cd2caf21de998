//! Parse (F): creates a prepared statement (named or unnamed) from SQL text.

use bytes::{BufMut, BytesMut};

use crate::postgres::message_writer::{put_count_i16, put_cstr, write_message};
use crate::postgres::tags::frontend::PARSE;
use crate::postgres::{Frame, ProtocolError};

/// An extended-protocol Parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse {
    /// Statement name; empty for the unnamed statement.
    pub name: String,
    /// The SQL text (a single statement).
    pub query: String,
    /// Parameter type OIDs the client fixes (0 = let the server infer).
    pub param_types: Vec<u32>,
}

impl Parse {
    /// Decodes a Parse frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("Parse", PARSE)?;
        let name = r.cstr("statement name")?;
        let query = r.cstr("query string")?;
        let count = r.count_i16("parameter type count")?;
        let param_types = (0..count)
            .map(|_| r.u32("parameter type"))
            .collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(Self {
            name,
            query,
            param_types,
        })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, PARSE, |b| {
            put_cstr(b, &self.name);
            put_cstr(b, &self.query);
            put_count_i16(b, self.param_types.len());
            for oid in &self.param_types {
                b.put_u32(*oid);
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let parse = Parse {
            name: "s1".into(),
            query: "select $1::int".into(),
            param_types: vec![23],
        };
        let mut buf = BytesMut::new();
        parse.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 1000).unwrap();
        assert_eq!(Parse::decode(&frame).unwrap(), parse);
    }

    #[test]
    fn count_larger_than_the_body_is_an_error() {
        let frame = Frame::from_encoded(b"P\0\0\0\x0c\0q\0\0\x05\0\0\0"[..].into(), 100).unwrap();
        assert_eq!(
            Parse::decode(&frame).unwrap_err().to_string(),
            "truncated Parse message: missing parameter type"
        );
        let frame = Frame::from_encoded(b"P\0\0\0\x09\0q\0\xff\xff"[..].into(), 100).unwrap();
        assert!(Parse::decode(&frame)
            .unwrap_err()
            .to_string()
            .contains("negative count -1"));
    }
}
