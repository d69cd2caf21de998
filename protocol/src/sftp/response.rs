//! Server-to-client SFTP packets: the replies whose outcome the bastion records, and the
//! STATUS it sends itself when a policy refuses a request.

use bytes::{BufMut, Bytes};

use super::attributes::FileAttributes;
use super::error::SftpError;
use super::packet::SftpPacket;
use super::spec_numbers::{packet_type as t, status_code};
use super::wire::{put_string, WireReader};

/// A STATUS code (see `spec_numbers::status_code`), kept as a number so codes from newer
/// servers pass through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCode(pub u32);

impl StatusCode {
    /// SSH_FX_OK.
    pub const OK: Self = Self(status_code::OK);
    /// SSH_FX_EOF.
    pub const EOF: Self = Self(status_code::EOF);
    /// SSH_FX_PERMISSION_DENIED: what the bastion answers to a denied request.
    pub const PERMISSION_DENIED: Self = Self(status_code::PERMISSION_DENIED);
    /// SSH_FX_FAILURE.
    pub const FAILURE: Self = Self(status_code::FAILURE);
    /// SSH_FX_BAD_MESSAGE: answer to a malformed request.
    pub const BAD_MESSAGE: Self = Self(status_code::BAD_MESSAGE);
    /// SSH_FX_OP_UNSUPPORTED.
    pub const OP_UNSUPPORTED: Self = Self(status_code::OP_UNSUPPORTED);

    /// The spec's name, for audit rows (`SSH_FX_...`).
    pub fn name(self) -> &'static str {
        match self.0 {
            status_code::OK => "SSH_FX_OK",
            status_code::EOF => "SSH_FX_EOF",
            status_code::NO_SUCH_FILE => "SSH_FX_NO_SUCH_FILE",
            status_code::PERMISSION_DENIED => "SSH_FX_PERMISSION_DENIED",
            status_code::FAILURE => "SSH_FX_FAILURE",
            status_code::BAD_MESSAGE => "SSH_FX_BAD_MESSAGE",
            status_code::NO_CONNECTION => "SSH_FX_NO_CONNECTION",
            status_code::CONNECTION_LOST => "SSH_FX_CONNECTION_LOST",
            status_code::OP_UNSUPPORTED => "SSH_FX_OP_UNSUPPORTED",
            _ => "SSH_FX_UNKNOWN",
        }
    }
}

/// One entry of a NAME reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    /// File name (or the resolved path for REALPATH / READLINK).
    pub filename: Bytes,
    /// `ls -l` style line.
    pub longname: Bytes,
    /// Attributes.
    pub attrs: FileAttributes,
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// SSH_FXP_VERSION.
    Version {
        /// Server version.
        version: u32,
        /// Extension `(name, data)` pairs.
        extensions: Vec<(Bytes, Bytes)>,
    },
    /// SSH_FXP_STATUS.
    Status {
        /// Request id answered.
        id: u32,
        /// Status code.
        code: StatusCode,
        /// Human-readable message.
        message: String,
        /// Language tag.
        lang: String,
    },
    /// SSH_FXP_HANDLE.
    Handle {
        /// Request id answered.
        id: u32,
        /// Opaque handle.
        handle: Bytes,
    },
    /// SSH_FXP_DATA.
    Data {
        /// Request id answered.
        id: u32,
        /// Data read.
        data: Bytes,
    },
    /// SSH_FXP_NAME.
    Name {
        /// Request id answered.
        id: u32,
        /// Entries.
        entries: Vec<NameEntry>,
    },
    /// SSH_FXP_ATTRS.
    Attrs {
        /// Request id answered.
        id: u32,
        /// Attributes.
        attrs: FileAttributes,
    },
    /// SSH_FXP_EXTENDED_REPLY.
    ExtendedReply {
        /// Request id answered.
        id: u32,
        /// Extension-specific data.
        data: Bytes,
    },
}

impl Response {
    /// The STATUS packet the bastion sends for a denied request: SSH_FX_PERMISSION_DENIED with
    /// the policy's message.
    pub fn permission_denied(id: u32, message: &str) -> SftpPacket {
        Self::Status {
            id,
            code: StatusCode::PERMISSION_DENIED,
            message: message.to_owned(),
            lang: "en".to_owned(),
        }
        .encode()
    }

    /// The request id answered (VERSION has none).
    pub fn id(&self) -> Option<u32> {
        match self {
            Self::Version { .. } => None,
            Self::Status { id, .. }
            | Self::Handle { id, .. }
            | Self::Data { id, .. }
            | Self::Name { id, .. }
            | Self::Attrs { id, .. }
            | Self::ExtendedReply { id, .. } => Some(*id),
        }
    }

    /// Decodes a server packet; an unknown type or a request type is `UnknownPacketType`.
    pub fn decode(packet: &SftpPacket) -> Result<Self, SftpError> {
        let name = match packet.kind {
            t::VERSION => "VERSION",
            t::STATUS => "STATUS",
            t::HANDLE => "HANDLE",
            t::DATA => "DATA",
            t::NAME => "NAME",
            t::ATTRS => "ATTRS",
            t::EXTENDED_REPLY => "EXTENDED_REPLY",
            kind => {
                return Err(SftpError::UnknownPacketType {
                    direction: "response",
                    kind,
                })
            }
        };
        let mut r = WireReader::new(name, packet.body());
        if packet.kind == t::VERSION {
            let version = r.u32("version")?;
            let mut extensions = Vec::new();
            while !r.is_empty() {
                extensions.push((r.string("extension name")?, r.string("extension data")?));
            }
            return Ok(Self::Version {
                version,
                extensions,
            });
        }
        let id = r.u32("request id")?;
        let response = match packet.kind {
            t::STATUS => {
                let code = StatusCode(r.u32("status code")?);
                // Some old servers omit message and language; accept their absence.
                let message = if r.is_empty() {
                    String::new()
                } else {
                    r.text("message")?
                };
                let lang = if r.is_empty() {
                    String::new()
                } else {
                    r.text("language tag")?
                };
                Self::Status {
                    id,
                    code,
                    message,
                    lang,
                }
            }
            t::HANDLE => Self::Handle {
                id,
                handle: r.string("handle")?,
            },
            t::DATA => Self::Data {
                id,
                data: r.string("data")?,
            },
            t::NAME => {
                let count = r.u32("entry count")?;
                let mut entries = Vec::new();
                for _ in 0..count {
                    entries.push(NameEntry {
                        filename: r.string("file name")?,
                        longname: r.string("long name")?,
                        attrs: FileAttributes::read(&mut r)?,
                    });
                }
                Self::Name { id, entries }
            }
            t::ATTRS => Self::Attrs {
                id,
                attrs: FileAttributes::read(&mut r)?,
            },
            _ => Self::ExtendedReply { id, data: r.rest() },
        };
        r.finish()?;
        Ok(response)
    }

    /// Encodes the reply as a packet.
    pub fn encode(&self) -> SftpPacket {
        match self {
            Self::Version {
                version,
                extensions,
            } => SftpPacket::build(t::VERSION, |b| {
                b.put_u32(*version);
                for (name, data) in extensions {
                    put_string(b, name);
                    put_string(b, data);
                }
            }),
            Self::Status {
                id,
                code,
                message,
                lang,
            } => SftpPacket::build(t::STATUS, |b| {
                b.put_u32(*id);
                b.put_u32(code.0);
                put_string(b, message.as_bytes());
                put_string(b, lang.as_bytes());
            }),
            Self::Handle { id, handle } => SftpPacket::build(t::HANDLE, |b| {
                b.put_u32(*id);
                put_string(b, handle);
            }),
            Self::Data { id, data } => SftpPacket::build(t::DATA, |b| {
                b.put_u32(*id);
                put_string(b, data);
            }),
            Self::Name { id, entries } => SftpPacket::build(t::NAME, |b| {
                b.put_u32(*id);
                b.put_u32(u32::try_from(entries.len()).unwrap_or(u32::MAX));
                for e in entries {
                    put_string(b, &e.filename);
                    put_string(b, &e.longname);
                    e.attrs.write(b);
                }
            }),
            Self::Attrs { id, attrs } => SftpPacket::build(t::ATTRS, |b| {
                b.put_u32(*id);
                attrs.write(b);
            }),
            Self::ExtendedReply { id, data } => SftpPacket::build(t::EXTENDED_REPLY, |b| {
                b.put_u32(*id);
                b.put_slice(data);
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::sftp::decode_packet;
    use bytes::BytesMut;

    #[test]
    fn every_response_round_trips() {
        let responses = vec![
            Response::Version {
                version: 3,
                extensions: vec![(
                    Bytes::from_static(b"posix-rename@openssh.com"),
                    Bytes::from_static(b"1"),
                )],
            },
            Response::Status {
                id: 1,
                code: StatusCode::EOF,
                message: "End of file".into(),
                lang: "".into(),
            },
            Response::Handle {
                id: 2,
                handle: Bytes::from_static(b"\0\0\0\x01"),
            },
            Response::Data {
                id: 3,
                data: Bytes::from_static(b"contents"),
            },
            Response::Name {
                id: 4,
                entries: vec![NameEntry {
                    filename: Bytes::from_static(b"f"),
                    longname: Bytes::from_static(b"-rw-r--r-- 1 a a 0 Jan 1 f"),
                    attrs: FileAttributes {
                        size: Some(0),
                        ..Default::default()
                    },
                }],
            },
            Response::Attrs {
                id: 5,
                attrs: FileAttributes {
                    permissions: Some(0o755),
                    ..Default::default()
                },
            },
            Response::ExtendedReply {
                id: 6,
                data: Bytes::from_static(b"xyz"),
            },
        ];
        for response in responses {
            let packet = response.encode();
            let mut wire = BytesMut::from(&packet.raw[..]);
            let framed = decode_packet(&mut wire, 1 << 20).unwrap().unwrap();
            assert_eq!(Response::decode(&framed).unwrap(), response);
        }
    }

    #[test]
    fn permission_denied_is_what_sftp_prints() {
        let packet = Response::permission_denied(11, "rm on prod denied by policy prod-readonly");
        match Response::decode(&packet).unwrap() {
            Response::Status {
                id, code, message, ..
            } => {
                assert_eq!(id, 11);
                assert_eq!(code, StatusCode::PERMISSION_DENIED);
                assert_eq!(code.name(), "SSH_FX_PERMISSION_DENIED");
                assert_eq!(message, "rm on prod denied by policy prod-readonly");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn name_count_lie_is_an_error() {
        let packet = SftpPacket::build(t::NAME, |b| {
            b.put_u32(1);
            b.put_u32(u32::MAX);
        });
        assert_eq!(
            Response::decode(&packet).unwrap_err().to_string(),
            "truncated sftp NAME packet: missing file name"
        );
        let packet = SftpPacket::build(t::OPEN, |b| b.put_u32(1));
        assert!(Response::decode(&packet).is_err());
    }

    #[test]
    fn status_without_message_from_old_servers() {
        let packet = SftpPacket::build(t::STATUS, |b| {
            b.put_u32(1);
            b.put_u32(0);
        });
        assert!(matches!(
            Response::decode(&packet).unwrap(),
            Response::Status {
                code: StatusCode::OK,
                ..
            }
        ));
    }
}
