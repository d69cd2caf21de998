//! The error type of the PostgreSQL codec: every way a frame or a message body can be malformed.

use thiserror::Error;

/// A PostgreSQL frame or message that cannot be accepted; the text names the message and field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The length field of a typed message is below the 4 bytes it must count itself.
    #[error("message of type {tag:?} declares length {len}, below the minimum of 4")]
    LengthTooShort {
        /// The message type byte, as a character.
        tag: char,
        /// The declared length.
        len: u32,
    },
    /// The length field of a typed message exceeds the configured limit.
    #[error("message of type {tag:?} declares {len} bytes, over the limit of {max} bytes")]
    MessageTooLarge {
        /// The message type byte, as a character.
        tag: char,
        /// The declared length.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// The length of a startup-phase packet is outside what PostgreSQL accepts.
    #[error("startup packet declares length {len}, outside the accepted range {min}..={max}")]
    StartupLength {
        /// The declared length.
        len: u32,
        /// The smallest acceptable length.
        min: usize,
        /// The largest acceptable length.
        max: usize,
    },
    /// A startup packet asks for a protocol version the codec does not speak.
    #[error("unsupported frontend protocol version {major}.{minor}")]
    UnsupportedProtocolVersion {
        /// Major version (3 is the only supported one).
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// A startup packet is malformed (parameter list, cancel key, ...).
    #[error("malformed startup packet: {0}")]
    MalformedStartup(String),
    /// A message body ended before a field could be read.
    #[error("truncated {message} message: missing {field}")]
    Truncated {
        /// The message being decoded.
        message: &'static str,
        /// The field that could not be read.
        field: &'static str,
    },
    /// A string field has no terminating NUL byte.
    #[error("{message} message: {field} is not NUL-terminated")]
    MissingNul {
        /// The message being decoded.
        message: &'static str,
        /// The string field.
        field: &'static str,
    },
    /// A string field is not valid UTF-8.
    #[error("{message} message: {field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The message being decoded.
        message: &'static str,
        /// The string field.
        field: &'static str,
    },
    /// A message body has bytes left after its last field.
    #[error("{message} message has {count} unexpected trailing bytes")]
    TrailingBytes {
        /// The message being decoded.
        message: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A field holds a value the protocol does not allow.
    #[error("{message} message: invalid {field}: {detail}")]
    InvalidField {
        /// The message being decoded.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A typed decoder was given a frame of another type.
    #[error("expected a {message} message (type {expected:?}), got type {found:?}")]
    WrongTag {
        /// The message the decoder reads.
        message: &'static str,
        /// Its type byte.
        expected: char,
        /// The type byte of the frame given.
        found: char,
    },
    /// A frame's type byte names no message of this direction.
    #[error("unknown {direction} message type {tag:?} (byte {byte})")]
    UnknownMessageType {
        /// "frontend" or "backend".
        direction: &'static str,
        /// The type byte as a character.
        tag: char,
        /// The type byte.
        byte: u8,
    },
}
