//! BackendKeyData (B): the process id and secret key a client needs to cancel a query.

use bytes::{BufMut, BytesMut};

use crate::postgres::message_writer::write_message;
use crate::postgres::tags::backend::BACKEND_KEY_DATA;
use crate::postgres::{Frame, ProtocolError};

/// Cancel credentials. `Debug` hides the secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct BackendKeyData {
    /// Backend process id.
    pub pid: i32,
    /// Secret key: 4 bytes in protocol 3.0, up to 256 in 3.2.
    pub secret_key: Vec<u8>,
}

impl std::fmt::Debug for BackendKeyData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BackendKeyData {{ pid: {}, secret_key: <{} bytes> }}",
            self.pid,
            self.secret_key.len()
        )
    }
}

impl BackendKeyData {
    /// Decodes a `K` frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("BackendKeyData", BACKEND_KEY_DATA)?;
        let pid = r.i32("process id")?;
        let key = r.rest();
        if !(4..=256).contains(&key.len()) {
            return Err(r.invalid(
                "secret key",
                format!("{} bytes, expected 4 to 256", key.len()),
            ));
        }
        Ok(Self {
            pid,
            secret_key: key.to_vec(),
        })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, BACKEND_KEY_DATA, |b| {
            b.put_i32(self.pid);
            b.put_slice(&self.secret_key);
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_debug_hides_the_key() {
        let msg = BackendKeyData {
            pid: 77,
            secret_key: vec![0xde, 0xad, 0xbe, 0xef],
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        let decoded = BackendKeyData::decode(&frame).unwrap();
        assert_eq!(decoded, msg);
        assert_eq!(
            format!("{decoded:?}"),
            "BackendKeyData { pid: 77, secret_key: <4 bytes> }"
        );
    }

    #[test]
    fn short_key_is_an_error() {
        let frame = Frame::from_encoded(b"K\0\0\0\x0a\0\0\0\x01\0\0"[..].into(), 100).unwrap();
        assert!(BackendKeyData::decode(&frame).is_err());
    }
}
