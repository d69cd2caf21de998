//! NoticeResponse (B): a warning or informational message that does not end the statement.

use bytes::BytesMut;

use super::error_fields::ErrorFields;
use crate::postgres::message_writer::write_message;
use crate::postgres::tags::backend::NOTICE_RESPONSE;
use crate::postgres::{Frame, ProtocolError};

/// A notice (the bastion uses one to say a statement waits for approval).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeResponse {
    /// Its fields.
    pub fields: ErrorFields,
}

impl NoticeResponse {
    /// Decodes an `N` frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("NoticeResponse", NOTICE_RESPONSE)?;
        let fields = ErrorFields::read(&mut r)?;
        r.finish()?;
        Ok(Self { fields })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, NOTICE_RESPONSE, |b| self.fields.write(b));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::postgres::backend::Severity;

    #[test]
    fn round_trip() {
        let msg = NoticeResponse {
            fields: ErrorFields::new(Severity::Notice, "00000", "approval required, request 7f3a")
                .hint("waiting up to 5m"),
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 1000).unwrap();
        let decoded = NoticeResponse::decode(&frame).unwrap();
        assert_eq!(decoded, msg);
        assert_eq!(decoded.fields.severity(), Some("NOTICE"));
    }
}
