//! SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL speaks it: `verifier` parses and creates
//! stored verifiers (`SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`), `server` checks a
//! client against one (with a decoy exchange for unknown users), `client` logs the bastion in to
//! an upstream, `messages` parses the attribute lists, `primitives` holds the hash functions.
//! Channel binding `tls-server-end-point` gives `SCRAM-SHA-256-PLUS`.

mod client;
mod error;
mod messages;
mod primitives;
mod server;
mod verifier;

pub use client::{ChannelBinding, ScramClient};
pub use error::ScramError;
pub use server::{DecoySecret, ScramServer};
pub use verifier::{make_verifier, Verifier};

/// The mechanism name without channel binding.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// The mechanism name with `tls-server-end-point` channel binding.
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";
/// The only channel-binding type supported (RFC 5929: hash of the server certificate).
pub const TLS_SERVER_END_POINT: &str = "tls-server-end-point";
/// PostgreSQL's default iteration count (`scram_iterations`).
pub const DEFAULT_ITERATIONS: u32 = 4096;
