//! SASLInitialResponse (F): the mechanism the client picked and its first message.

use bytes::{Bytes, BytesMut};

use crate::postgres::message_writer::{put_cstr, put_nullable_value, write_message};
use crate::postgres::tags::frontend::AUTHENTICATION_RESPONSE;
use crate::postgres::{Frame, ProtocolError};

/// The first SASL message. `Debug` shows only the mechanism and data length.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslInitialResponse {
    /// The selected mechanism, e.g. `SCRAM-SHA-256` or `SCRAM-SHA-256-PLUS`.
    pub mechanism: String,
    /// The mechanism's initial response (SCRAM client-first); `None` when absent (length -1).
    pub data: Option<Bytes>,
}

impl std::fmt::Debug for SaslInitialResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslInitialResponse")
            .field("mechanism", &self.mechanism)
            .field("data_len", &self.data.as_ref().map(Bytes::len))
            .finish()
    }
}

impl SaslInitialResponse {
    /// Decodes a `p` frame sent in answer to AuthenticationSASL.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("SASLInitialResponse", AUTHENTICATION_RESPONSE)?;
        let mechanism = r.cstr("mechanism")?;
        let data = r.nullable_value("initial response")?;
        r.finish()?;
        Ok(Self { mechanism, data })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, AUTHENTICATION_RESPONSE, |b| {
            put_cstr(b, &self.mechanism);
            put_nullable_value(b, self.data.as_deref());
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let msg = SaslInitialResponse {
            mechanism: "SCRAM-SHA-256".into(),
            data: Some(Bytes::from_static(b"n,,n=,r=abc")),
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(SaslInitialResponse::decode(&frame).unwrap(), msg);
    }

    #[test]
    fn data_length_lie_is_an_error() {
        let frame = Frame::from_encoded(b"p\0\0\0\x0cM\0\0\0\0\x09ab"[..].into(), 100).unwrap();
        assert_eq!(
            SaslInitialResponse::decode(&frame).unwrap_err().to_string(),
            "truncated SASLInitialResponse message: missing initial response"
        );
    }
}
