//! SASLResponse (F): a later SASL message from the client (SCRAM client-final).

use bytes::{BufMut, Bytes, BytesMut};

use crate::postgres::message_writer::write_message;
use crate::postgres::tags::frontend::AUTHENTICATION_RESPONSE;
use crate::postgres::{Frame, ProtocolError};

/// A SASL continuation. `Debug` shows only the length (it carries the client proof).
#[derive(Clone, PartialEq, Eq)]
pub struct SaslResponse {
    /// Mechanism-specific data.
    pub data: Bytes,
}

impl std::fmt::Debug for SaslResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SaslResponse {{ data_len: {} }}", self.data.len())
    }
}

impl SaslResponse {
    /// Decodes a `p` frame sent in answer to AuthenticationSASLContinue.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("SASLResponse", AUTHENTICATION_RESPONSE)?;
        Ok(Self { data: r.rest() })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, AUTHENTICATION_RESPONSE, |b| b.put_slice(&self.data));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let msg = SaslResponse {
            data: Bytes::from_static(b"c=biws,r=abc,p=xyz"),
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(SaslResponse::decode(&frame).unwrap(), msg);
    }
}
