//! ReadyForQuery (B): the server is idle again and reports the transaction status.

use bytes::{BufMut, BytesMut};

use crate::postgres::message_writer::write_message;
use crate::postgres::tags::backend::READY_FOR_QUERY;
use crate::postgres::{Frame, ProtocolError};

/// The transaction status carried by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block (statements rejected until it ends).
    Failed,
}

impl TransactionStatus {
    /// The wire byte (`I`, `T` or `E`).
    pub fn as_byte(self) -> u8 {
        match self {
            Self::Idle => b'I',
            Self::InTransaction => b'T',
            Self::Failed => b'E',
        }
    }
}

/// The end of a query cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyForQuery {
    /// Transaction status.
    pub status: TransactionStatus,
}

impl ReadyForQuery {
    /// Decodes a `Z` frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("ReadyForQuery", READY_FOR_QUERY)?;
        let status = match r.u8("transaction status")? {
            b'I' => TransactionStatus::Idle,
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            other => {
                return Err(r.invalid(
                    "transaction status",
                    format!("{:?}, expected 'I', 'T' or 'E'", char::from(other)),
                ))
            }
        };
        r.finish()?;
        Ok(Self { status })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, READY_FOR_QUERY, |b| b.put_u8(self.status.as_byte()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for status in [
            TransactionStatus::Idle,
            TransactionStatus::InTransaction,
            TransactionStatus::Failed,
        ] {
            let msg = ReadyForQuery { status };
            let mut buf = BytesMut::new();
            msg.encode(&mut buf);
            let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
            assert_eq!(ReadyForQuery::decode(&frame).unwrap(), msg);
        }
        let mut buf = BytesMut::new();
        ReadyForQuery {
            status: TransactionStatus::Failed,
        }
        .encode(&mut buf);
        assert_eq!(&buf[..], b"Z\0\0\0\x05E");
    }

    #[test]
    fn unknown_status_is_an_error() {
        let frame = Frame::from_encoded(b"Z\0\0\0\x05X"[..].into(), 100).unwrap();
        assert!(ReadyForQuery::decode(&frame).is_err());
    }
}
