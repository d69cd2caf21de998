//! FunctionCall (F): the fast-path interface, calling a function by OID without SQL.

use bytes::{BufMut, Bytes, BytesMut};

use crate::postgres::message_writer::{put_count_i16, put_nullable_value, write_message};
use crate::postgres::tags::frontend::FUNCTION_CALL;
use crate::postgres::{Frame, ProtocolError};

/// A fast-path function call. Arguments may be secrets: `Debug` shows only their count.
#[derive(Clone, PartialEq, Eq)]
pub struct FunctionCall {
    /// OID of the function called.
    pub function_oid: u32,
    /// Argument format codes.
    pub arg_formats: Vec<i16>,
    /// Argument values; `None` is SQL NULL.
    pub args: Vec<Option<Bytes>>,
    /// Result format code.
    pub result_format: i16,
}

impl std::fmt::Debug for FunctionCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionCall")
            .field("function_oid", &self.function_oid)
            .field("args", &format_args!("<{} values>", self.args.len()))
            .finish_non_exhaustive()
    }
}

impl FunctionCall {
    /// Decodes a FunctionCall frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("FunctionCall", FUNCTION_CALL)?;
        let function_oid = r.u32("function oid")?;
        let n = r.count_i16("argument format count")?;
        let arg_formats = (0..n)
            .map(|_| r.i16("argument format"))
            .collect::<Result<Vec<_>, _>>()?;
        let n = r.count_i16("argument count")?;
        let args = (0..n)
            .map(|_| r.nullable_value("argument value"))
            .collect::<Result<Vec<_>, _>>()?;
        let result_format = r.i16("result format")?;
        r.finish()?;
        Ok(Self {
            function_oid,
            arg_formats,
            args,
            result_format,
        })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, FUNCTION_CALL, |b| {
            b.put_u32(self.function_oid);
            put_count_i16(b, self.arg_formats.len());
            for f in &self.arg_formats {
                b.put_i16(*f);
            }
            put_count_i16(b, self.args.len());
            for a in &self.args {
                put_nullable_value(b, a.as_deref());
            }
            b.put_i16(self.result_format);
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let call = FunctionCall {
            function_oid: 1247,
            arg_formats: vec![1],
            args: vec![Some(Bytes::from_static(&[0, 0, 0, 1])), None],
            result_format: 1,
        };
        let mut buf = BytesMut::new();
        call.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(FunctionCall::decode(&frame).unwrap(), call);
    }
}
