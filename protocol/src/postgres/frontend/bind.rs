//! Bind (F): binds parameter values to a prepared statement, creating a portal.

use bytes::{BufMut, Bytes, BytesMut};

use crate::postgres::message_writer::{put_count_i16, put_cstr, put_nullable_value, write_message};
use crate::postgres::tags::frontend::BIND;
use crate::postgres::{Frame, ProtocolError};

/// An extended-protocol Bind. Parameter values may be secrets: `Debug` shows only their count.
#[derive(Clone, PartialEq, Eq)]
pub struct Bind {
    /// Destination portal; empty for the unnamed portal.
    pub portal: String,
    /// Source prepared statement; empty for the unnamed statement.
    pub statement: String,
    /// Format codes of the parameters (0 text, 1 binary; none = all text, one = applies to all).
    pub param_formats: Vec<i16>,
    /// Parameter values; `None` is SQL NULL.
    pub params: Vec<Option<Bytes>>,
    /// Format codes requested for result columns.
    pub result_formats: Vec<i16>,
}

impl std::fmt::Debug for Bind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bind")
            .field("portal", &self.portal)
            .field("statement", &self.statement)
            .field("param_formats", &self.param_formats)
            .field("params", &format_args!("<{} values>", self.params.len()))
            .field("result_formats", &self.result_formats)
            .finish()
    }
}

impl Bind {
    /// Decodes a Bind frame, checking the whole structure.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("Bind", BIND)?;
        let portal = r.cstr("portal name")?;
        let statement = r.cstr("statement name")?;
        let n = r.count_i16("parameter format count")?;
        let param_formats = (0..n)
            .map(|_| r.i16("parameter format"))
            .collect::<Result<Vec<_>, _>>()?;
        let n = r.count_i16("parameter count")?;
        let params = (0..n)
            .map(|_| r.nullable_value("parameter value"))
            .collect::<Result<Vec<_>, _>>()?;
        let n = r.count_i16("result format count")?;
        let result_formats = (0..n)
            .map(|_| r.i16("result format"))
            .collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(Self {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, BIND, |b| {
            put_cstr(b, &self.portal);
            put_cstr(b, &self.statement);
            put_count_i16(b, self.param_formats.len());
            for f in &self.param_formats {
                b.put_i16(*f);
            }
            put_count_i16(b, self.params.len());
            for p in &self.params {
                put_nullable_value(b, p.as_deref());
            }
            put_count_i16(b, self.result_formats.len());
            for f in &self.result_formats {
                b.put_i16(*f);
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_debug_hides_values() {
        let bind = Bind {
            portal: "".into(),
            statement: "s1".into(),
            param_formats: vec![0],
            params: vec![Some(Bytes::from_static(b"hunter2")), None],
            result_formats: vec![1],
        };
        let mut buf = BytesMut::new();
        bind.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 1000).unwrap();
        let decoded = Bind::decode(&frame).unwrap();
        assert_eq!(decoded, bind);
        let debug = format!("{decoded:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<2 values>"));
    }

    #[test]
    fn value_length_lies_are_errors() {
        // One parameter claiming 100 bytes with 1 present.
        let frame =
            Frame::from_encoded(b"B\0\0\0\x10\0s\0\0\0\0\x01\0\0\0\x64x"[..].into(), 100).unwrap();
        assert_eq!(
            Bind::decode(&frame).unwrap_err().to_string(),
            "truncated Bind message: missing parameter value"
        );
        // A negative length other than -1.
        let frame = Frame::from_encoded(
            b"B\0\0\0\x11\0s\0\0\0\0\x01\xff\xff\xff\xfe\0\0"[..].into(),
            100,
        )
        .unwrap();
        assert!(Bind::decode(&frame)
            .unwrap_err()
            .to_string()
            .contains("length -2"));
    }
}
