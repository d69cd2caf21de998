//! Splitting a byte stream into typed PostgreSQL messages (`tag | u32 length | body`), keeping
//! each message's exact bytes so the proxy forwards what it audited.

use bytes::{Buf, Bytes, BytesMut};

use super::body_reader::BodyReader;
use super::error::ProtocolError;

/// One whole typed message as it travelled on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message type byte (see `tags`).
    pub tag: u8,
    /// The complete message: type byte, length and body. Forward these bytes verbatim.
    pub raw: Bytes,
}

impl Frame {
    /// Size of the type byte plus the length field.
    pub const HEADER_LEN: usize = 5;

    /// The body (everything after the length field).
    pub fn body(&self) -> Bytes {
        if self.raw.len() >= Self::HEADER_LEN {
            self.raw.slice(Self::HEADER_LEN..)
        } else {
            Bytes::new()
        }
    }

    /// The message type byte as a character, for messages and logs.
    pub fn tag_char(&self) -> char {
        char::from(self.tag)
    }

    /// Builds a frame from bytes holding exactly one encoded message (e.g. from an `encode`).
    pub fn from_encoded(raw: Bytes, max_len: usize) -> Result<Frame, ProtocolError> {
        let mut buf = BytesMut::from(raw.as_ref());
        let frame = decode_frame(&mut buf, max_len)?.ok_or(ProtocolError::Truncated {
            message: "encoded",
            field: "body",
        })?;
        if buf.is_empty() {
            Ok(frame)
        } else {
            Err(ProtocolError::TrailingBytes {
                message: "encoded",
                count: buf.len(),
            })
        }
    }

    /// A reader over the body after checking the type byte is `expected`.
    pub(crate) fn reader(
        &self,
        message: &'static str,
        expected: u8,
    ) -> Result<BodyReader, ProtocolError> {
        if self.tag != expected {
            return Err(ProtocolError::WrongTag {
                message,
                expected: char::from(expected),
                found: self.tag_char(),
            });
        }
        Ok(BodyReader::new(message, self.body()))
    }
}

/// Takes one typed message off the front of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed (nothing is consumed). The declared length is
/// checked against `max_len` (the whole message, type byte included) before waiting for or
/// allocating the body, so a peer announcing 2 GiB is refused at once.
pub fn decode_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Frame>, ProtocolError> {
    let Some(header) = buf.get(..Frame::HEADER_LEN) else {
        return Ok(None);
    };
    let mut header = header;
    let tag = header.get_u8();
    let len = header.get_u32();
    if len < 4 {
        return Err(ProtocolError::LengthTooShort {
            tag: char::from(tag),
            len,
        });
    }
    let total = u64::from(len) + 1;
    let total_usize = usize::try_from(total).unwrap_or(usize::MAX);
    if total_usize > max_len {
        return Err(ProtocolError::MessageTooLarge {
            tag: char::from(tag),
            len: total,
            max: max_len,
        });
    }
    if buf.len() < total_usize {
        buf.reserve(total_usize - buf.len());
        return Ok(None);
    }
    let raw = buf.split_to(total_usize).freeze();
    Ok(Some(Frame { tag, raw }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_header_and_body() {
        let mut buf = BytesMut::from(&b"Q\0\0"[..]);
        assert_eq!(decode_frame(&mut buf, 100).unwrap(), None);
        buf.extend_from_slice(b"\0\x09sel");
        assert_eq!(decode_frame(&mut buf, 100).unwrap(), None);
        assert_eq!(buf.len(), 8, "nothing consumed while incomplete");
        buf.extend_from_slice(b"x\0S\0\0\0\x04");
        let frame = decode_frame(&mut buf, 100).unwrap().unwrap();
        assert_eq!(frame.tag, b'Q');
        assert_eq!(&frame.raw[..], b"Q\0\0\0\x09selx\0");
        assert_eq!(&frame.body()[..], b"selx\0");
        let sync = decode_frame(&mut buf, 100).unwrap().unwrap();
        assert_eq!(sync.tag, b'S');
        assert!(buf.is_empty());
    }

    #[test]
    fn length_below_four_is_rejected() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x03"[..]);
        let err = decode_frame(&mut buf, 100).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message of type 'Q' declares length 3, below the minimum of 4"
        );
    }

    #[test]
    fn length_of_two_gib_is_rejected_before_the_body_arrives() {
        let mut buf = BytesMut::from(&b"Q\x80\0\0\0"[..]);
        let err = decode_frame(&mut buf, 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message of type 'Q' declares 2147483649 bytes, over the limit of 1048576 bytes"
        );
        assert!(
            buf.capacity() < 1 << 20,
            "no allocation for the announced body"
        );
    }

    #[test]
    fn max_length_counts_the_whole_message() {
        let mut buf = BytesMut::from(&b"S\0\0\0\x04"[..]);
        assert!(decode_frame(&mut buf.clone(), 4).is_err());
        assert!(decode_frame(&mut buf, 5).unwrap().is_some());
    }

    #[test]
    fn unknown_tags_still_frame() {
        let mut buf = BytesMut::from(&b"\xff\0\0\0\x05z"[..]);
        let frame = decode_frame(&mut buf, 100).unwrap().unwrap();
        assert_eq!(frame.tag, 0xff);
        assert_eq!(&frame.body()[..], b"z");
    }
}
