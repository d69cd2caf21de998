//! PasswordMessage (F): a cleartext or MD5 password answering an authentication request.

use bytes::BytesMut;

use crate::postgres::message_writer::{put_cstr, write_message};
use crate::postgres::tags::frontend::AUTHENTICATION_RESPONSE;
use crate::postgres::{Frame, ProtocolError};

/// A password response. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordMessage {
    /// The password (cleartext) or `md5...` hash.
    pub password: String,
}

impl std::fmt::Debug for PasswordMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordMessage { password: <redacted> }")
    }
}

impl PasswordMessage {
    /// Decodes a `p` frame sent in answer to a cleartext or MD5 request.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("PasswordMessage", AUTHENTICATION_RESPONSE)?;
        let password = r.cstr("password")?;
        r.finish()?;
        Ok(Self { password })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, AUTHENTICATION_RESPONSE, |b| {
            put_cstr(b, &self.password)
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_debug_hides_the_password() {
        let msg = PasswordMessage {
            password: "s3cret".into(),
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        let decoded = PasswordMessage::decode(&frame).unwrap();
        assert_eq!(decoded, msg);
        assert!(!format!("{decoded:?}").contains("s3cret"));
    }
}
