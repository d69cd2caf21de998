//! CopyData (F/B): a chunk of a COPY stream, in either direction.

use bytes::{BufMut, Bytes, BytesMut};

use crate::postgres::message_writer::write_message;
use crate::postgres::tags::frontend::COPY_DATA;
use crate::postgres::{Frame, ProtocolError};

/// A COPY data chunk; the bytes are opaque (text rows, CSV or binary COPY format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyData {
    /// The chunk.
    pub data: Bytes,
}

impl CopyData {
    /// Decodes a CopyData frame (no copy of the data).
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("CopyData", COPY_DATA)?;
        Ok(Self { data: r.rest() })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, COPY_DATA, |b| b.put_slice(&self.data));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data = CopyData {
            data: Bytes::from_static(b"1\talice\n2\tbob\n"),
        };
        let mut buf = BytesMut::new();
        data.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(CopyData::decode(&frame).unwrap(), data);
    }
}
