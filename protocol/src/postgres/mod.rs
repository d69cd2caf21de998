//! The PostgreSQL wire protocol, sans-IO: `frame` splits typed messages off a buffer,
//! `startup` reads the untagged first packet, `frontend` and `backend` are the typed messages
//! (one file each), `tags` and `sqlstate` are the spec's tables, `scram` is SCRAM-SHA-256.

mod body_reader;
mod empty_message;
mod error;
mod frame;
mod message_writer;
mod startup;

pub mod backend;
pub mod frontend;
pub mod scram;
pub mod sqlstate;
pub mod tags;

pub use backend::{error_response, BackendMessage, Severity, TransactionStatus};
pub use error::ProtocolError;
pub use frame::{decode_frame, Frame};
pub use frontend::FrontendMessage;
pub use startup::{decode_startup, StartupPacket, MAX_STARTUP_PACKET_LEN};

#[cfg(test)]
mod robustness_tests;
