//! The untagged startup phase: StartupMessage, SSLRequest, GSSENCRequest and CancelRequest, each
//! `u32 length | u32 code | body`, decoded and encoded.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::ProtocolError;
use super::message_writer::{put_cstr, write_length_prefixed};
use super::tags::startup as codes;

/// PostgreSQL refuses startup packets longer than this (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_PACKET_LEN: usize = 10_000;

/// Shortest cancel key (protocol 3.0 uses exactly 4 bytes).
const MIN_CANCEL_KEY_LEN: usize = 4;
/// Longest cancel key protocol 3.2 allows.
const MAX_CANCEL_KEY_LEN: usize = 256;

/// The first packet a client sends, before any typed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    /// A StartupMessage: protocol version and connection parameters.
    Startup {
        /// Requested protocol version, `major << 16 | minor` (major is always 3).
        version: u32,
        /// Parameters in the order sent (`user`, `database`, `options`, GUCs, `_pq_.` options).
        params: Vec<(String, String)>,
        /// The whole packet as received.
        raw: Bytes,
    },
    /// SSLRequest: the client asks for TLS.
    SslRequest,
    /// GSSENCRequest: the client asks for GSSAPI encryption.
    GssEncRequest,
    /// CancelRequest for the backend identified by `pid` and `secret_key`.
    Cancel {
        /// Process id from BackendKeyData.
        pid: i32,
        /// Secret key from BackendKeyData: 4 bytes in 3.0, up to 256 in 3.2.
        secret_key: Vec<u8>,
    },
}

impl StartupPacket {
    /// The value of a startup parameter, if sent.
    pub fn param(&self, name: &str) -> Option<&str> {
        match self {
            StartupPacket::Startup { params, .. } => params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str()),
            _ => None,
        }
    }

    /// Appends a StartupMessage with `version` and `params` to `buf`.
    pub fn encode_startup(buf: &mut BytesMut, version: u32, params: &[(String, String)]) {
        write_length_prefixed(buf, |b| {
            b.put_u32(version);
            for (key, value) in params {
                put_cstr(b, key);
                put_cstr(b, value);
            }
            b.put_u8(0);
        });
    }

    /// Appends an SSLRequest to `buf`.
    pub fn encode_ssl_request(buf: &mut BytesMut) {
        write_length_prefixed(buf, |b| b.put_u32(codes::SSL_REQUEST));
    }

    /// Appends a CancelRequest to `buf`.
    pub fn encode_cancel(buf: &mut BytesMut, pid: i32, secret_key: &[u8]) {
        write_length_prefixed(buf, |b| {
            b.put_u32(codes::CANCEL_REQUEST);
            b.put_i32(pid);
            b.put_slice(secret_key);
        });
    }
}

fn malformed(detail: impl Into<String>) -> ProtocolError {
    ProtocolError::MalformedStartup(detail.into())
}

/// Takes one startup-phase packet off the front of `buf`; `Ok(None)` means more bytes are needed.
///
/// The limit is the lower of `max_len` and PostgreSQL's own 10 000 bytes; it is checked before
/// waiting for the body.
pub fn decode_startup(
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<StartupPacket>, ProtocolError> {
    let Some(mut header) = buf.get(..4) else {
        return Ok(None);
    };
    let len = header.get_u32();
    let max = max_len.min(MAX_STARTUP_PACKET_LEN);
    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
    if !(8..=max).contains(&len_usize) {
        return Err(ProtocolError::StartupLength { len, min: 8, max });
    }
    if buf.len() < len_usize {
        buf.reserve(len_usize - buf.len());
        return Ok(None);
    }
    let raw = buf.split_to(len_usize).freeze();
    let mut body = raw.slice(4..);
    let code = body.get_u32();
    let packet = match code {
        codes::SSL_REQUEST | codes::GSSENC_REQUEST => {
            if body.has_remaining() {
                return Err(malformed(format!(
                    "encryption request carries {} unexpected bytes",
                    body.remaining()
                )));
            }
            if code == codes::SSL_REQUEST {
                StartupPacket::SslRequest
            } else {
                StartupPacket::GssEncRequest
            }
        }
        codes::CANCEL_REQUEST => {
            if body.remaining() < 4 {
                return Err(malformed("cancel request without a process id"));
            }
            let pid = body.get_i32();
            let key_len = body.remaining();
            if !(MIN_CANCEL_KEY_LEN..=MAX_CANCEL_KEY_LEN).contains(&key_len) {
                return Err(malformed(format!(
                    "cancel key of {key_len} bytes, expected 4 to 256"
                )));
            }
            StartupPacket::Cancel {
                pid,
                secret_key: body.to_vec(),
            }
        }
        version => {
            let (major, minor) = (version >> 16, version & 0xffff);
            if major != 3 {
                return Err(ProtocolError::UnsupportedProtocolVersion {
                    major: u16::try_from(major).unwrap_or(u16::MAX),
                    minor: u16::try_from(minor).unwrap_or(u16::MAX),
                });
            }
            StartupPacket::Startup {
                version,
                params: decode_params(&body)?,
                raw,
            }
        }
    };
    Ok(Some(packet))
}

/// Parses `key\0value\0 ... \0`; rejects a missing terminator, a key without value, bad UTF-8
/// and repeated keys (two `user` values could be read differently by the bastion and the server).
fn decode_params(body: &[u8]) -> Result<Vec<(String, String)>, ProtocolError> {
    let Some((terminator, list)) = body.split_last() else {
        return Err(malformed("parameter list is empty, missing its terminator"));
    };
    if *terminator != 0 {
        return Err(malformed("parameter list is not NUL-terminated"));
    }
    let Some(list) = list.strip_suffix(b"\0") else {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        return Err(malformed("last parameter value is not NUL-terminated"));
    };
    let mut fields = list.split(|b| *b == 0);
    let mut params: Vec<(String, String)> = Vec::new();
    while let Some(key) = fields.next() {
        if key.is_empty() {
            return Err(malformed("empty parameter name before the end of the list"));
        }
        let value = fields
            .next()
            .ok_or_else(|| malformed("parameter without a value"))?;
        let key = String::from_utf8(key.to_vec())
            .map_err(|_| malformed("parameter name is not valid UTF-8"))?;
        let value = String::from_utf8(value.to_vec())
            .map_err(|_| malformed(format!("value of parameter {key:?} is not valid UTF-8")))?;
        if params.iter().any(|(k, _)| *k == key) {
            return Err(malformed(format!("parameter {key:?} is sent twice")));
        }
        params.push((key, value));
    }
    Ok(params)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn startup_bytes(version: u32, body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        write_length_prefixed(&mut buf, |b| {
            b.put_u32(version);
            b.put_slice(body);
        });
        buf
    }

    #[test]
    fn startup_round_trip_keeps_order_and_raw_bytes() {
        let sent = params(&[
            ("user", "alice@prod-db"),
            ("database", "shop"),
            ("application_name", ""),
        ]);
        let mut buf = BytesMut::new();
        StartupPacket::encode_startup(&mut buf, codes::PROTOCOL_3_0, &sent);
        let wire = buf.clone().freeze();
        let packet = decode_startup(&mut buf, 10_000).unwrap().unwrap();
        assert_eq!(
            packet,
            StartupPacket::Startup {
                version: codes::PROTOCOL_3_0,
                params: sent,
                raw: wire
            }
        );
        assert_eq!(packet.param("user"), Some("alice@prod-db"));
        assert_eq!(packet.param("options"), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn ssl_gss_and_cancel_requests() {
        let mut buf = BytesMut::new();
        StartupPacket::encode_ssl_request(&mut buf);
        assert_eq!(&buf[..], b"\0\0\0\x08\x04\xd2\x16\x2f");
        assert_eq!(
            decode_startup(&mut buf, 100).unwrap(),
            Some(StartupPacket::SslRequest)
        );

        let mut buf = startup_bytes(codes::GSSENC_REQUEST, b"");
        assert_eq!(
            decode_startup(&mut buf, 100).unwrap(),
            Some(StartupPacket::GssEncRequest)
        );

        let mut buf = BytesMut::new();
        StartupPacket::encode_cancel(&mut buf, 4242, &[1, 2, 3, 4]);
        assert_eq!(
            decode_startup(&mut buf, 100).unwrap(),
            Some(StartupPacket::Cancel {
                pid: 4242,
                secret_key: vec![1, 2, 3, 4]
            })
        );
        // Protocol 3.2 keys are longer.
        let mut buf = BytesMut::new();
        StartupPacket::encode_cancel(&mut buf, 7, &[9; 32]);
        assert!(matches!(
            decode_startup(&mut buf, 1000).unwrap(),
            Some(StartupPacket::Cancel { pid: 7, secret_key }) if secret_key.len() == 32
        ));
    }

    #[test]
    fn waits_for_more_bytes() {
        let mut full = BytesMut::new();
        StartupPacket::encode_startup(&mut full, codes::PROTOCOL_3_0, &params(&[("user", "u")]));
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert_eq!(
                decode_startup(&mut part, 10_000).unwrap(),
                None,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn rejects_bad_versions_and_lengths() {
        let err = decode_startup(&mut startup_bytes(2 << 16, b"\0"), 100).unwrap_err();
        assert_eq!(err.to_string(), "unsupported frontend protocol version 2.0");
        let err = decode_startup(&mut BytesMut::from(&b"\x80\0\0\0"[..]), 1 << 30).unwrap_err();
        assert_eq!(
            err.to_string(),
            "startup packet declares length 2147483648, outside the accepted range 8..=10000"
        );
        let err = decode_startup(&mut BytesMut::from(&b"\0\0\0\x04"[..]), 100).unwrap_err();
        assert!(err.to_string().contains("length 4"));
        // 10 001 bytes is refused even when the caller's limit is larger.
        let mut big = BytesMut::new();
        StartupPacket::encode_startup(
            &mut big,
            codes::PROTOCOL_3_0,
            &params(&[("user", "x".repeat(9_986).as_str())]),
        );
        assert_eq!(big.len(), 10_001);
        assert!(decode_startup(&mut big, 1 << 20).is_err());
    }

    #[test]
    fn rejects_malformed_parameter_lists() {
        for (body, why) in [
            (&b""[..], "empty"),
            (&b"user\0alice"[..], "not NUL-terminated"),
            (&b"user\0alice\0"[..], "last parameter"),
            (&b"user\0\0"[..], "without a value"),
            (&b"user\0a\0user\0b\0\0"[..], "sent twice"),
            (&b"\0x\0y\0\0"[..], "empty parameter name"),
            (&b"us\xffer\0a\0\0"[..], "UTF-8"),
            (&b"ssl\0\x08\0\x04\xd2\0\0"[..], "without a value"),
        ] {
            let err = decode_startup(&mut startup_bytes(codes::PROTOCOL_3_0, body), 100)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{body:?}: {err}");
        }
        // An empty list is fine (just the terminator).
        assert!(decode_startup(&mut startup_bytes(codes::PROTOCOL_3_0, b"\0"), 100).is_ok());
    }

    #[test]
    fn rejects_bad_cancel_and_ssl_bodies() {
        assert!(decode_startup(
            &mut startup_bytes(codes::CANCEL_REQUEST, b"\0\0\0\x01\0\0"),
            100
        )
        .is_err());
        assert!(decode_startup(&mut startup_bytes(codes::SSL_REQUEST, b"x"), 100).is_err());
    }
}
