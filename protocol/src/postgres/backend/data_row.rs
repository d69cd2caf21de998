//! DataRow (B): one result row.

use bytes::{Bytes, BytesMut};

use crate::postgres::message_writer::{put_count_i16, put_nullable_value, write_message};
use crate::postgres::tags::backend::DATA_ROW;
use crate::postgres::{Frame, ProtocolError};

/// A row; values are slices of the frame (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRow {
    /// Column values; `None` is SQL NULL.
    pub values: Vec<Option<Bytes>>,
}

impl DataRow {
    /// Decodes a `D` frame from the server.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("DataRow", DATA_ROW)?;
        let n = r.count_i16("column count")?;
        let values = (0..n)
            .map(|_| r.nullable_value("column value"))
            .collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(Self { values })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, DATA_ROW, |b| {
            put_count_i16(b, self.values.len());
            for v in &self.values {
                put_nullable_value(b, v.as_deref());
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
        let msg = DataRow {
            values: vec![Some(Bytes::from_static(b"42")), None, Some(Bytes::new())],
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(DataRow::decode(&frame).unwrap(), msg);
    }

    #[test]
    fn column_count_lie_is_an_error() {
        let frame = Frame::from_encoded(b"D\0\0\0\x06\0\x02"[..].into(), 100).unwrap();
        assert!(DataRow::decode(&frame).is_err());
    }
}
