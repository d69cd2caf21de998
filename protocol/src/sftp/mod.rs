//! SFTP version 3 (draft-ietf-secsh-filexfer-02), sans-IO: `packet` splits the subsystem's
//! byte stream into packets (`u32 length | u8 type | body`, raw bytes kept for verbatim
//! forwarding), `request` and `response` are the typed packets in each direction, `attributes`
//! is the ATTRS structure, `spec_numbers` holds the spec's tables (packet types, status codes,
//! open flags), `wire` the field reader and writer.

mod attributes;
mod error;
mod packet;
mod request;
mod response;
pub mod spec_numbers;
mod wire;

pub use attributes::FileAttributes;
pub use error::SftpError;
pub use packet::{decode_packet, SftpPacket};
pub use request::{OpenFlags, Request};
pub use response::{NameEntry, Response, StatusCode};
pub use wire::path_text;

/// The protocol version this codec speaks.
pub const SFTP_VERSION: u32 = 3;

#[cfg(test)]
mod robustness_tests;
