//! Query (F): a simple-protocol query string, possibly several statements.

use bytes::BytesMut;

use crate::postgres::message_writer::{put_cstr, write_message};
use crate::postgres::tags::frontend::QUERY;
use crate::postgres::{Frame, ProtocolError};

/// A simple-protocol query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The SQL text, as sent (may hold several `;`-separated statements).
    pub query: String,
}

impl Query {
    /// A query for `query`.
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
        }
    }

    /// Decodes a Query frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("Query", QUERY)?;
        let query = r.cstr("query string")?;
        r.finish()?;
        Ok(Self { query })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, QUERY, |b| put_cstr(b, &self.query));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = BytesMut::new();
        Query::new("select 1; delete from t").encode(&mut buf);
        assert_eq!(&buf[..], b"Q\0\0\0\x1cselect 1; delete from t\0");
        let frame = Frame::from_encoded(buf.freeze(), 1000).unwrap();
        assert_eq!(
            Query::decode(&frame).unwrap().query,
            "select 1; delete from t"
        );
    }

    #[test]
    fn text_hidden_after_the_nul_is_an_error() {
        // A proxy reading only up to the NUL would audit "select 1" while bytes follow.
        let frame = Frame::from_encoded(b"Q\0\0\0\x14select 1\0delete\0"[..].into(), 100).unwrap();
        assert_eq!(
            Query::decode(&frame).unwrap_err().to_string(),
            "Query message has 7 unexpected trailing bytes"
        );
        let frame = Frame::from_encoded(b"Q\0\0\0\x0cselect 1"[..].into(), 100).unwrap();
        assert_eq!(
            Query::decode(&frame).unwrap_err().to_string(),
            "Query message: query string is not NUL-terminated"
        );
    }
}
