//! Refusals in PostgreSQL's own terms: `ErrorResponse` with a SQLSTATE and hint, followed where
//! the protocol needs it by `ReadyForQuery` with the right transaction status.
use bytes::{Bytes, BytesMut};
use protocol::postgres::backend::ReadyForQuery;
use protocol::postgres::{error_response, Severity, TransactionStatus};

/// `ERROR` with `code`, `message` and an optional hint.
pub fn error(code: &str, message: &str, hint: Option<&str>) -> Bytes {
    error_response(Severity::Error, code, message, hint)
}

/// `FATAL` with `code` and `message` (the connection ends after it).
pub fn fatal(code: &str, message: &str) -> Bytes {
    error_response(Severity::Fatal, code, message, None)
}

/// `ReadyForQuery` with `status`.
pub fn ready(status: TransactionStatus) -> Bytes {
    let mut b = BytesMut::new();
    ReadyForQuery { status }.encode(&mut b);
    b.freeze()
}

/// An `ERROR` then `ReadyForQuery`.
pub fn error_then_ready(
    code: &str,
    message: &str,
    hint: Option<&str>,
    status: TransactionStatus,
) -> Bytes {
    let mut b = BytesMut::from(&error(code, message, hint)[..]);
    b.extend_from_slice(&ready(status));
    b.freeze()
}
