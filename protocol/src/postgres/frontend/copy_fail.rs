//! CopyFail (F): the client aborts a COPY FROM STDIN with a reason.

use bytes::BytesMut;

use crate::postgres::message_writer::{put_cstr, write_message};
use crate::postgres::tags::frontend::COPY_FAIL;
use crate::postgres::{Frame, ProtocolError};

/// A COPY abort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFail {
    /// Why the client gave up; the server reports it in its error.
    pub message: String,
}

impl CopyFail {
    /// Decodes a CopyFail frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("CopyFail", COPY_FAIL)?;
        let message = r.cstr("error message")?;
        r.finish()?;
        Ok(Self { message })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, COPY_FAIL, |b| put_cstr(b, &self.message));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let fail = CopyFail {
            message: "denied by bastion".into(),
        };
        let mut buf = BytesMut::new();
        fail.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(CopyFail::decode(&frame).unwrap(), fail);
    }
}
