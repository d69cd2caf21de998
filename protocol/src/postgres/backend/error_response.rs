//! ErrorResponse (B): a statement or session failed; also the helper that builds the bastion's
//! own error replies.

use bytes::{Bytes, BytesMut};

use super::error_fields::{ErrorFields, Severity};
use crate::postgres::message_writer::write_message;
use crate::postgres::tags::backend::ERROR_RESPONSE;
use crate::postgres::{Frame, ProtocolError};

/// An error report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// Its fields.
    pub fields: ErrorFields,
}

impl ErrorResponse {
    /// Decodes an `E` frame from the server.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("ErrorResponse", ERROR_RESPONSE)?;
        let fields = ErrorFields::read(&mut r)?;
        r.finish()?;
        Ok(Self { fields })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, ERROR_RESPONSE, |b| self.fields.write(b));
    }
}

/// The encoded ErrorResponse the bastion sends when it refuses something, e.g.
/// `error_response(Severity::Error, sqlstate::INSUFFICIENT_PRIVILEGE, "delete denied", Some("policy prod-no-delete"))`.
/// Follow it with ReadyForQuery (or, in extended mode, skip to Sync first).
pub fn error_response(severity: Severity, code: &str, message: &str, hint: Option<&str>) -> Bytes {
    let mut fields = ErrorFields::new(severity, code, message);
    if let Some(hint) = hint {
        fields = fields.hint(hint);
    }
    let mut buf = BytesMut::new();
    ErrorResponse { fields }.encode(&mut buf);
    buf.freeze()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::postgres::sqlstate;

    #[test]
    fn helper_builds_what_psql_shows() {
        let raw = error_response(
            Severity::Error,
            sqlstate::INSUFFICIENT_PRIVILEGE,
            "DELETE on prod-db denied",
            Some("policy prod-no-delete"),
        );
        let frame = Frame::from_encoded(raw, 1000).unwrap();
        let err = ErrorResponse::decode(&frame).unwrap();
        assert_eq!(err.fields.severity(), Some("ERROR"));
        assert_eq!(err.fields.code(), Some("42501"));
        assert_eq!(err.fields.message(), Some("DELETE on prod-db denied"));
        assert_eq!(err.fields.hint_text(), Some("policy prod-no-delete"));
        assert_eq!(err.fields.detail_text(), None);
    }

    #[test]
    fn round_trip_with_detail_and_nul_injection_stripped() {
        let msg = ErrorResponse {
            fields: ErrorFields::new(Severity::Fatal, sqlstate::ADMIN_SHUTDOWN, "killed")
                .detail("by admin"),
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 1000).unwrap();
        assert_eq!(ErrorResponse::decode(&frame).unwrap(), msg);

        // A message with a NUL cannot smuggle a second field.
        let raw = error_response(Severity::Error, "42501", "a\0Hforged", None);
        let err = ErrorResponse::decode(&Frame::from_encoded(raw, 1000).unwrap()).unwrap();
        assert_eq!(err.fields.message(), Some("aHforged"));
        assert_eq!(err.fields.hint_text(), None);
    }

    #[test]
    fn missing_list_terminator_is_an_error() {
        let frame = Frame::from_encoded(b"E\0\0\0\x08Mab\0"[..].into(), 100).unwrap();
        assert_eq!(
            ErrorResponse::decode(&frame).unwrap_err().to_string(),
            "truncated ErrorResponse message: missing field code"
        );
    }
}
