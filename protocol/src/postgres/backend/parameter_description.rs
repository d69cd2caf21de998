//! ParameterDescription (B): the parameter types of a described statement.

use bytes::{BufMut, BytesMut};

use crate::postgres::message_writer::{put_count_i16, write_message};
use crate::postgres::tags::backend::PARAMETER_DESCRIPTION;
use crate::postgres::{Frame, ProtocolError};

/// Parameter type OIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterDescription {
    /// One OID per parameter.
    pub types: Vec<u32>,
}

impl ParameterDescription {
    /// Decodes a `t` frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("ParameterDescription", PARAMETER_DESCRIPTION)?;
        let n = r.count_i16("parameter count")?;
        let types = (0..n)
            .map(|_| r.u32("parameter type"))
            .collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(Self { types })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, PARAMETER_DESCRIPTION, |b| {
            put_count_i16(b, self.types.len());
            for t in &self.types {
                b.put_u32(*t);
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
        let msg = ParameterDescription {
            types: vec![23, 25],
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(ParameterDescription::decode(&frame).unwrap(), msg);
    }
}
