//! Client-to-server SFTP packets: the requests the bastion decides on before forwarding.

use bytes::{BufMut, Bytes};

use super::attributes::FileAttributes;
use super::error::SftpError;
use super::packet::SftpPacket;
use super::spec_numbers::{open_flag, packet_type as t};
use super::wire::{put_string, WireReader};

/// `pflags` of an OPEN, with readable accessors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFlags(pub u32);

impl OpenFlags {
    /// Opens for reading.
    pub fn read(self) -> bool {
        self.0 & open_flag::READ != 0
    }

    /// Changes the file: write, append, create or truncate (any of them is a write).
    pub fn writes(self) -> bool {
        self.0 & (open_flag::WRITE | open_flag::APPEND | open_flag::CREAT | open_flag::TRUNC) != 0
    }
}

/// A decoded request. Paths and handles are raw bytes (see `path_text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// SSH_FXP_INIT: version negotiation.
    Init {
        /// Client version.
        version: u32,
        /// Extension `(name, data)` pairs.
        extensions: Vec<(Bytes, Bytes)>,
    },
    /// SSH_FXP_OPEN.
    Open {
        /// Request id.
        id: u32,
        /// File path.
        path: Bytes,
        /// Open flags.
        pflags: OpenFlags,
        /// Initial attributes.
        attrs: FileAttributes,
    },
    /// SSH_FXP_CLOSE.
    Close {
        /// Request id.
        id: u32,
        /// File or directory handle.
        handle: Bytes,
    },
    /// SSH_FXP_READ.
    Read {
        /// Request id.
        id: u32,
        /// File handle.
        handle: Bytes,
        /// Offset.
        offset: u64,
        /// Bytes asked for.
        len: u32,
    },
    /// SSH_FXP_WRITE.
    Write {
        /// Request id.
        id: u32,
        /// File handle.
        handle: Bytes,
        /// Offset.
        offset: u64,
        /// Data written.
        data: Bytes,
    },
    /// SSH_FXP_LSTAT.
    Lstat {
        /// Request id.
        id: u32,
        /// Path.
        path: Bytes,
    },
    /// SSH_FXP_FSTAT.
    Fstat {
        /// Request id.
        id: u32,
        /// Handle.
        handle: Bytes,
    },
    /// SSH_FXP_SETSTAT.
    Setstat {
        /// Request id.
        id: u32,
        /// Path.
        path: Bytes,
        /// New attributes.
        attrs: FileAttributes,
    },
    /// SSH_FXP_FSETSTAT.
    Fsetstat {
        /// Request id.
        id: u32,
        /// Handle.
        handle: Bytes,
        /// New attributes.
        attrs: FileAttributes,
    },
    /// SSH_FXP_OPENDIR.
    Opendir {
        /// Request id.
        id: u32,
        /// Directory path.
        path: Bytes,
    },
    /// SSH_FXP_READDIR.
    Readdir {
        /// Request id.
        id: u32,
        /// Directory handle.
        handle: Bytes,
    },
    /// SSH_FXP_REMOVE.
    Remove {
        /// Request id.
        id: u32,
        /// File path.
        path: Bytes,
    },
    /// SSH_FXP_MKDIR.
    Mkdir {
        /// Request id.
        id: u32,
        /// Directory path.
        path: Bytes,
        /// Attributes.
        attrs: FileAttributes,
    },
    /// SSH_FXP_RMDIR.
    Rmdir {
        /// Request id.
        id: u32,
        /// Directory path.
        path: Bytes,
    },
    /// SSH_FXP_REALPATH.
    Realpath {
        /// Request id.
        id: u32,
        /// Path.
        path: Bytes,
    },
    /// SSH_FXP_STAT.
    Stat {
        /// Request id.
        id: u32,
        /// Path.
        path: Bytes,
    },
    /// SSH_FXP_RENAME.
    Rename {
        /// Request id.
        id: u32,
        /// Current path.
        old_path: Bytes,
        /// New path.
        new_path: Bytes,
    },
    /// SSH_FXP_READLINK.
    Readlink {
        /// Request id.
        id: u32,
        /// Link path.
        path: Bytes,
    },
    /// SSH_FXP_SYMLINK. Fields are in wire order. The draft says `linkpath, targetpath`, but
    /// OpenSSH sends `targetpath, linkpath`; a policy must treat both as touched.
    Symlink {
        /// Request id.
        id: u32,
        /// First path on the wire.
        first_path: Bytes,
        /// Second path on the wire.
        second_path: Bytes,
    },
    /// SSH_FXP_EXTENDED (e.g. `posix-rename@openssh.com`, `hardlink@openssh.com`).
    Extended {
        /// Request id.
        id: u32,
        /// Extension name.
        name: String,
        /// Extension-specific data, undecoded.
        data: Bytes,
    },
}

fn read_extensions(r: &mut WireReader) -> Result<Vec<(Bytes, Bytes)>, SftpError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push((r.string("extension name")?, r.string("extension data")?));
    }
    Ok(out)
}

impl Request {
    /// The request id (INIT has none).
    pub fn id(&self) -> Option<u32> {
        match self {
            Self::Init { .. } => None,
            Self::Open { id, .. }
            | Self::Close { id, .. }
            | Self::Read { id, .. }
            | Self::Write { id, .. }
            | Self::Lstat { id, .. }
            | Self::Fstat { id, .. }
            | Self::Setstat { id, .. }
            | Self::Fsetstat { id, .. }
            | Self::Opendir { id, .. }
            | Self::Readdir { id, .. }
            | Self::Remove { id, .. }
            | Self::Mkdir { id, .. }
            | Self::Rmdir { id, .. }
            | Self::Realpath { id, .. }
            | Self::Stat { id, .. }
            | Self::Rename { id, .. }
            | Self::Readlink { id, .. }
            | Self::Symlink { id, .. }
            | Self::Extended { id, .. } => Some(*id),
        }
    }

    /// Decodes a client packet; an unknown type or a reply type is `UnknownPacketType`.
    pub fn decode(packet: &SftpPacket) -> Result<Self, SftpError> {
        let name = match packet.kind {
            t::INIT => "INIT",
            t::OPEN => "OPEN",
            t::CLOSE => "CLOSE",
            t::READ => "READ",
            t::WRITE => "WRITE",
            t::LSTAT => "LSTAT",
            t::FSTAT => "FSTAT",
            t::SETSTAT => "SETSTAT",
            t::FSETSTAT => "FSETSTAT",
            t::OPENDIR => "OPENDIR",
            t::READDIR => "READDIR",
            t::REMOVE => "REMOVE",
            t::MKDIR => "MKDIR",
            t::RMDIR => "RMDIR",
            t::REALPATH => "REALPATH",
            t::STAT => "STAT",
            t::RENAME => "RENAME",
            t::READLINK => "READLINK",
            t::SYMLINK => "SYMLINK",
            t::EXTENDED => "EXTENDED",
            kind => {
                return Err(SftpError::UnknownPacketType {
                    direction: "request",
                    kind,
                })
            }
        };
        let mut r = WireReader::new(name, packet.body());
        if packet.kind == t::INIT {
            let version = r.u32("version")?;
            let extensions = read_extensions(&mut r)?;
            return Ok(Self::Init {
                version,
                extensions,
            });
        }
        let id = r.u32("request id")?;
        let request = match packet.kind {
            t::OPEN => Self::Open {
                id,
                path: r.string("path")?,
                pflags: OpenFlags(r.u32("pflags")?),
                attrs: FileAttributes::read(&mut r)?,
            },
            t::CLOSE => Self::Close {
                id,
                handle: r.string("handle")?,
            },
            t::READ => Self::Read {
                id,
                handle: r.string("handle")?,
                offset: r.u64("offset")?,
                len: r.u32("length")?,
            },
            t::WRITE => Self::Write {
                id,
                handle: r.string("handle")?,
                offset: r.u64("offset")?,
                data: r.string("data")?,
            },
            t::LSTAT => Self::Lstat {
                id,
                path: r.string("path")?,
            },
            t::FSTAT => Self::Fstat {
                id,
                handle: r.string("handle")?,
            },
            t::SETSTAT => Self::Setstat {
                id,
                path: r.string("path")?,
                attrs: FileAttributes::read(&mut r)?,
            },
            t::FSETSTAT => Self::Fsetstat {
                id,
                handle: r.string("handle")?,
                attrs: FileAttributes::read(&mut r)?,
            },
            t::OPENDIR => Self::Opendir {
                id,
                path: r.string("path")?,
            },
            t::READDIR => Self::Readdir {
                id,
                handle: r.string("handle")?,
            },
            t::REMOVE => Self::Remove {
                id,
                path: r.string("path")?,
            },
            t::MKDIR => Self::Mkdir {
                id,
                path: r.string("path")?,
                attrs: FileAttributes::read(&mut r)?,
            },
            t::RMDIR => Self::Rmdir {
                id,
                path: r.string("path")?,
            },
            t::REALPATH => Self::Realpath {
                id,
                path: r.string("path")?,
            },
            t::STAT => Self::Stat {
                id,
                path: r.string("path")?,
            },
            t::RENAME => Self::Rename {
                id,
                old_path: r.string("old path")?,
                new_path: r.string("new path")?,
            },
            t::READLINK => Self::Readlink {
                id,
                path: r.string("path")?,
            },
            t::SYMLINK => Self::Symlink {
                id,
                first_path: r.string("first path")?,
                second_path: r.string("second path")?,
            },
            _ => Self::Extended {
                id,
                name: r.text("extension name")?,
                data: r.rest(),
            },
        };
        r.finish()?;
        Ok(request)
    }

    /// Encodes the request as a packet.
    pub fn encode(&self) -> SftpPacket {
        match self {
            Self::Init {
                version,
                extensions,
            } => SftpPacket::build(t::INIT, |b| {
                b.put_u32(*version);
                for (name, data) in extensions {
                    put_string(b, name);
                    put_string(b, data);
                }
            }),
            Self::Open {
                id,
                path,
                pflags,
                attrs,
            } => SftpPacket::build(t::OPEN, |b| {
                b.put_u32(*id);
                put_string(b, path);
                b.put_u32(pflags.0);
                attrs.write(b);
            }),
            Self::Close { id, handle } => id_and_string(t::CLOSE, *id, handle),
            Self::Read {
                id,
                handle,
                offset,
                len,
            } => SftpPacket::build(t::READ, |b| {
                b.put_u32(*id);
                put_string(b, handle);
                b.put_u64(*offset);
                b.put_u32(*len);
            }),
            Self::Write {
                id,
                handle,
                offset,
                data,
            } => SftpPacket::build(t::WRITE, |b| {
                b.put_u32(*id);
                put_string(b, handle);
                b.put_u64(*offset);
                put_string(b, data);
            }),
            Self::Lstat { id, path } => id_and_string(t::LSTAT, *id, path),
            Self::Fstat { id, handle } => id_and_string(t::FSTAT, *id, handle),
            Self::Setstat { id, path, attrs } => id_string_attrs(t::SETSTAT, *id, path, attrs),
            Self::Fsetstat { id, handle, attrs } => {
                id_string_attrs(t::FSETSTAT, *id, handle, attrs)
            }
            Self::Opendir { id, path } => id_and_string(t::OPENDIR, *id, path),
            Self::Readdir { id, handle } => id_and_string(t::READDIR, *id, handle),
            Self::Remove { id, path } => id_and_string(t::REMOVE, *id, path),
            Self::Mkdir { id, path, attrs } => id_string_attrs(t::MKDIR, *id, path, attrs),
            Self::Rmdir { id, path } => id_and_string(t::RMDIR, *id, path),
            Self::Realpath { id, path } => id_and_string(t::REALPATH, *id, path),
            Self::Stat { id, path } => id_and_string(t::STAT, *id, path),
            Self::Rename {
                id,
                old_path,
                new_path,
            } => id_and_two_strings(t::RENAME, *id, old_path, new_path),
            Self::Readlink { id, path } => id_and_string(t::READLINK, *id, path),
            Self::Symlink {
                id,
                first_path,
                second_path,
            } => id_and_two_strings(t::SYMLINK, *id, first_path, second_path),
            Self::Extended { id, name, data } => SftpPacket::build(t::EXTENDED, |b| {
                b.put_u32(*id);
                put_string(b, name.as_bytes());
                b.put_slice(data);
            }),
        }
    }
}

fn id_and_string(kind: u8, id: u32, s: &[u8]) -> SftpPacket {
    SftpPacket::build(kind, |b| {
        b.put_u32(id);
        put_string(b, s);
    })
}

fn id_and_two_strings(kind: u8, id: u32, a: &[u8], c: &[u8]) -> SftpPacket {
    SftpPacket::build(kind, |b| {
        b.put_u32(id);
        put_string(b, a);
        put_string(b, c);
    })
}

fn id_string_attrs(kind: u8, id: u32, s: &[u8], attrs: &FileAttributes) -> SftpPacket {
    SftpPacket::build(kind, |b| {
        b.put_u32(id);
        put_string(b, s);
        attrs.write(b);
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sftp::decode_packet;
    use bytes::BytesMut;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn every_request() -> Vec<Request> {
        let attrs = FileAttributes {
            size: Some(10),
            uid_gid: Some((1000, 1000)),
            permissions: Some(0o100644),
            times: Some((1, 2)),
            extended: vec![(b("a@x"), b("y"))],
        };
        vec![
            Request::Init {
                version: 3,
                extensions: vec![],
            },
            Request::Open {
                id: 1,
                path: b("/tmp/f"),
                pflags: OpenFlags(open_flag::WRITE | open_flag::CREAT | open_flag::TRUNC),
                attrs: attrs.clone(),
            },
            Request::Close {
                id: 2,
                handle: b("h1"),
            },
            Request::Read {
                id: 3,
                handle: b("h1"),
                offset: 1 << 40,
                len: 32768,
            },
            Request::Write {
                id: 4,
                handle: b("h1"),
                offset: 0,
                data: b("hello"),
            },
            Request::Lstat {
                id: 5,
                path: b("/l"),
            },
            Request::Fstat {
                id: 6,
                handle: b("h"),
            },
            Request::Setstat {
                id: 7,
                path: b("/p"),
                attrs: FileAttributes::default(),
            },
            Request::Fsetstat {
                id: 8,
                handle: b("h"),
                attrs,
            },
            Request::Opendir {
                id: 9,
                path: b("/d"),
            },
            Request::Readdir {
                id: 10,
                handle: b("d"),
            },
            Request::Remove {
                id: 11,
                path: b("/etc/passwd"),
            },
            Request::Mkdir {
                id: 12,
                path: b("/d2"),
                attrs: FileAttributes::default(),
            },
            Request::Rmdir {
                id: 13,
                path: b("/d2"),
            },
            Request::Realpath {
                id: 14,
                path: b("."),
            },
            Request::Stat {
                id: 15,
                path: b("/s"),
            },
            Request::Rename {
                id: 16,
                old_path: b("/a"),
                new_path: b("/b"),
            },
            Request::Readlink {
                id: 17,
                path: b("/ln"),
            },
            Request::Symlink {
                id: 18,
                first_path: b("/t"),
                second_path: b("/ln"),
            },
            Request::Extended {
                id: 19,
                name: "posix-rename@openssh.com".into(),
                data: b("\0\0\0\x01a\0\0\0\x01b"),
            },
        ]
    }

    #[test]
    fn every_request_round_trips_through_the_framer() {
        for request in every_request() {
            let packet = request.encode();
            let mut wire = BytesMut::from(&packet.raw[..]);
            let framed = decode_packet(&mut wire, 1 << 20).unwrap().unwrap();
            assert_eq!(framed, packet);
            assert_eq!(Request::decode(&framed).unwrap(), request);
        }
    }

    #[test]
    fn open_flags_say_whether_it_writes() {
        assert!(OpenFlags(open_flag::READ).read());
        assert!(!OpenFlags(open_flag::READ).writes());
        assert!(OpenFlags(open_flag::APPEND).writes());
        assert!(OpenFlags(open_flag::CREAT).writes());
    }

    #[test]
    fn length_lies_inside_the_body_are_errors() {
        // REMOVE whose path string claims 100 bytes.
        let packet = SftpPacket::build(t::REMOVE, |buf| {
            buf.put_u32(1);
            buf.put_u32(100);
            buf.put_slice(b"/etc");
        });
        assert_eq!(
            Request::decode(&packet).unwrap_err().to_string(),
            "truncated sftp REMOVE packet: missing path"
        );
        // REMOVE with a second path hidden after the first.
        let packet = SftpPacket::build(t::REMOVE, |buf| {
            buf.put_u32(1);
            put_string(buf, b"/tmp/ok");
            put_string(buf, b"/etc/passwd");
        });
        assert_eq!(
            Request::decode(&packet).unwrap_err().to_string(),
            "sftp REMOVE packet has 15 unexpected trailing bytes"
        );
        // Attribute flags with undefined bits.
        let packet = SftpPacket::build(t::MKDIR, |buf| {
            buf.put_u32(1);
            put_string(buf, b"/d");
            buf.put_u32(0x40);
        });
        assert!(Request::decode(&packet)
            .unwrap_err()
            .to_string()
            .contains("undefined bits"));
    }

    #[test]
    fn unknown_and_reply_types_are_not_requests() {
        for kind in [0u8, 21, 101, 255] {
            let packet = SftpPacket::build(kind, |buf| buf.put_u32(1));
            assert_eq!(
                Request::decode(&packet).unwrap_err().to_string(),
                format!("unknown sftp request packet type {kind}")
            );
        }
    }
}
