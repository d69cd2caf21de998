//! The error type of the SFTP codec.

use thiserror::Error;

/// An SFTP packet that cannot be accepted; the text names the packet and field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SftpError {
    /// The length field is 0 (no room for the type byte).
    #[error("sftp packet declares length 0, below the minimum of 1")]
    EmptyPacket,
    /// The length field exceeds the configured limit.
    #[error("sftp packet declares {len} bytes, over the limit of {max} bytes")]
    PacketTooLarge {
        /// Declared length (type byte and body).
        len: u32,
        /// Configured limit.
        max: usize,
    },
    /// The type byte names no SFTP v3 packet of the expected direction.
    #[error("unknown sftp {direction} packet type {kind}")]
    UnknownPacketType {
        /// "request" or "response".
        direction: &'static str,
        /// The type byte.
        kind: u8,
    },
    /// A body ended before a field (or a length field claims more than is there).
    #[error("truncated sftp {packet} packet: missing {field}")]
    Truncated {
        /// Packet name.
        packet: &'static str,
        /// Field that could not be read.
        field: &'static str,
    },
    /// A body has bytes after its last field.
    #[error("sftp {packet} packet has {count} unexpected trailing bytes")]
    TrailingBytes {
        /// Packet name.
        packet: &'static str,
        /// Bytes left over.
        count: usize,
    },
    /// A text field is not UTF-8.
    #[error("sftp {packet} packet: {field} is not valid UTF-8")]
    InvalidUtf8 {
        /// Packet name.
        packet: &'static str,
        /// Field.
        field: &'static str,
    },
    /// An ATTRS structure sets flag bits version 3 does not define.
    #[error("sftp {packet} packet: attribute flags {flags:#010x} include undefined bits")]
    UnknownAttributeFlags {
        /// Packet name.
        packet: &'static str,
        /// The flags.
        flags: u32,
    },
}
