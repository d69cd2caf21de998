//! Why a SCRAM exchange failed.

use thiserror::Error;

/// A SCRAM failure. Callers answer the client with SQLSTATE 28P01 for `InvalidProof` and 08P01
/// for malformed messages; the text never says whether the user exists.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScramError {
    /// A message does not follow the SCRAM grammar.
    #[error("malformed SCRAM message: {0}")]
    Malformed(String),
    /// The client chose a mechanism the server did not offer.
    #[error("unsupported SASL mechanism {0:?}")]
    UnsupportedMechanism(String),
    /// The client supports channel binding but thinks the server does not (`y` flag while the
    /// server offered SCRAM-SHA-256-PLUS): someone removed PLUS from the offer.
    #[error(
        "channel binding downgrade detected: the client supports it but the server offered it"
    )]
    ChannelBindingDowngrade,
    /// The channel binding data (`c=`) does not match this connection.
    #[error("channel binding data does not match this connection")]
    ChannelBindingMismatch,
    /// Channel binding was requested in a way that cannot be honoured.
    #[error("channel binding not supported: {0}")]
    ChannelBindingUnsupported(String),
    /// The nonce in a later message does not continue the exchange.
    #[error("SCRAM nonce does not match the exchange")]
    NonceMismatch,
    /// The client proof is wrong (wrong password, or unknown user).
    #[error("password authentication failed")]
    InvalidProof,
    /// The server's signature is wrong: it does not hold the verifier for this password.
    #[error("server signature does not match: the server could not prove it knows the password")]
    InvalidServerSignature,
    /// The server ended the exchange with `e=...`.
    #[error("server rejected SCRAM authentication: {0}")]
    ServerError(String),
    /// A stored verifier is not in PostgreSQL's format.
    #[error("invalid SCRAM verifier: {0}")]
    InvalidVerifier(String),
    /// A message arrived in the wrong phase of the exchange.
    #[error("SCRAM message out of order: {0}")]
    OutOfOrder(&'static str),
    /// A hash primitive refused its input (cannot happen with HMAC; kept so nothing panics).
    #[error("SCRAM primitive failed: {0}")]
    Crypto(&'static str),
}
