//! Splitting the SFTP subsystem stream into packets: `u32 length | u8 type | body`, the length
//! checked against a limit before waiting for the body; raw bytes kept for verbatim forwarding.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::SftpError;

/// One whole packet as it travelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpPacket {
    /// The packet type byte (see `spec_numbers::packet_type`).
    pub kind: u8,
    /// The complete packet: length, type and body. Forward these bytes verbatim.
    pub raw: Bytes,
}

impl SftpPacket {
    /// Length field plus type byte.
    pub const HEADER_LEN: usize = 5;

    /// The body after the type byte.
    pub fn body(&self) -> Bytes {
        if self.raw.len() >= Self::HEADER_LEN {
            self.raw.slice(Self::HEADER_LEN..)
        } else {
            Bytes::new()
        }
    }

    /// Builds a packet of `kind` whose body is written by `body`.
    pub(crate) fn build(kind: u8, body: impl FnOnce(&mut BytesMut)) -> Self {
        let mut buf = BytesMut::new();
        buf.put_u32(0);
        buf.put_u8(kind);
        body(&mut buf);
        let len = u32::try_from(buf.len().saturating_sub(4)).unwrap_or(u32::MAX);
        if let Some(slot) = buf.get_mut(..4) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
        Self {
            kind,
            raw: buf.freeze(),
        }
    }
}

/// Takes one packet off the front of `buf`; `Ok(None)` means more bytes are needed.
/// `max_len` bounds the length field (type byte and body), checked before the body arrives.
pub fn decode_packet(buf: &mut BytesMut, max_len: usize) -> Result<Option<SftpPacket>, SftpError> {
    let Some(mut header) = buf.get(..SftpPacket::HEADER_LEN) else {
        return Ok(None);
    };
    let len = header.get_u32();
    let kind = header.get_u8();
    if len == 0 {
        return Err(SftpError::EmptyPacket);
    }
    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
    if len_usize > max_len {
        return Err(SftpError::PacketTooLarge { len, max: max_len });
    }
    let total = len_usize.saturating_add(4);
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    Ok(Some(SftpPacket {
        kind,
        raw: buf.split_to(total).freeze(),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_waits() {
        let mut buf = BytesMut::from(&b"\0\0\0\x05\x01\0\0\0"[..]);
        assert_eq!(decode_packet(&mut buf, 1000).unwrap(), None);
        buf.extend_from_slice(b"\x03\0");
        let p = decode_packet(&mut buf, 1000).unwrap().unwrap();
        assert_eq!(p.kind, 1);
        assert_eq!(&p.body()[..], b"\0\0\0\x03");
        assert_eq!(&buf[..], b"\0");
    }

    #[test]
    fn length_lies_are_refused_before_the_body() {
        let mut buf = BytesMut::from(&b"\x80\0\0\0\x06"[..]);
        assert_eq!(
            decode_packet(&mut buf, 256 * 1024).unwrap_err().to_string(),
            "sftp packet declares 2147483648 bytes, over the limit of 262144 bytes"
        );
        let mut buf = BytesMut::from(&b"\0\0\0\0\x06"[..]);
        assert_eq!(
            decode_packet(&mut buf, 100).unwrap_err(),
            SftpError::EmptyPacket
        );
    }
}
