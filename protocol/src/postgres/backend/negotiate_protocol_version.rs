//! NegotiateProtocolVersion (B): the server supports an older minor version or does not know
//! some `_pq_.` startup options.

use bytes::{BufMut, BytesMut};

use crate::postgres::message_writer::{put_cstr, write_message};
use crate::postgres::tags::backend::NEGOTIATE_PROTOCOL_VERSION;
use crate::postgres::{Frame, ProtocolError};

/// A protocol downgrade offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateProtocolVersion {
    /// Newest minor version the server supports for the requested major version.
    pub newest_minor: i32,
    /// Protocol options (`_pq_.*`) the server did not recognise.
    pub unrecognized: Vec<String>,
}

impl NegotiateProtocolVersion {
    /// Decodes a `v` frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("NegotiateProtocolVersion", NEGOTIATE_PROTOCOL_VERSION)?;
        let newest_minor = r.i32("newest minor version")?;
        let n = r.i32("option count")?;
        let n = usize::try_from(n)
            .map_err(|_| r.invalid("option count", format!("negative count {n}")))?;
        let mut unrecognized = Vec::new();
        for _ in 0..n {
            // Each option takes at least one byte, so a huge count fails fast on truncation.
            unrecognized.push(r.cstr("option name")?);
        }
        r.finish()?;
        Ok(Self {
            newest_minor,
            unrecognized,
        })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, NEGOTIATE_PROTOCOL_VERSION, |b| {
            b.put_i32(self.newest_minor);
            b.put_i32(i32::try_from(self.unrecognized.len()).unwrap_or(i32::MAX));
            for o in &self.unrecognized {
                put_cstr(b, o);
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
        let msg = NegotiateProtocolVersion {
            newest_minor: 0,
            unrecognized: vec!["_pq_.x".into()],
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(NegotiateProtocolVersion::decode(&frame).unwrap(), msg);
    }

    #[test]
    fn huge_option_count_fails_without_looping_forever() {
        let frame =
            Frame::from_encoded(b"v\0\0\0\x0c\0\0\0\0\x7f\xff\xff\xff"[..].into(), 100).unwrap();
        assert!(NegotiateProtocolVersion::decode(&frame).is_err());
    }
}
