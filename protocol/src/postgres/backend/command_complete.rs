//! CommandComplete (B): a statement finished; its tag carries the row count.

use bytes::BytesMut;

use crate::postgres::message_writer::{put_cstr, write_message};
use crate::postgres::tags::backend::COMMAND_COMPLETE;
use crate::postgres::{Frame, ProtocolError};

/// The command tag, e.g. `INSERT 0 5`, `UPDATE 3`, `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandComplete {
    /// The tag text.
    pub tag: String,
}

/// Tags whose last word is the number of rows processed.
const COUNTED_TAGS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "MERGE", "SELECT", "FETCH", "MOVE", "COPY",
];

impl CommandComplete {
    /// A tag.
    pub fn new(tag: impl Into<String>) -> Self {
        Self { tag: tag.into() }
    }

    /// Rows processed, for tags that carry a count (`INSERT 0 5` → 5, `SELECT 2` → 2,
    /// `COPY 7` → 7); `None` for tags without one (`BEGIN`, `CREATE TABLE`) or `CREATE TABLE AS`
    /// style tags that name a verb but no number.
    pub fn rows(&self) -> Option<u64> {
        let mut words = self.tag.split(' ');
        let verb = words.next()?;
        if !COUNTED_TAGS.contains(&verb) {
            return None;
        }
        let rest: Vec<&str> = words.collect();
        let expected_words = if verb == "INSERT" { 2 } else { 1 };
        if rest.len() != expected_words {
            return None;
        }
        rest.last()?.parse().ok()
    }

    /// The command verb (first word), e.g. `INSERT`.
    pub fn verb(&self) -> &str {
        self.tag.split(' ').next().unwrap_or_default()
    }

    /// Decodes a `C` frame from the server.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("CommandComplete", COMMAND_COMPLETE)?;
        let tag = r.cstr("command tag")?;
        r.finish()?;
        Ok(Self { tag })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, COMMAND_COMPLETE, |b| put_cstr(b, &self.tag));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn row_counts_from_tags() {
        for (tag, rows) in [
            ("INSERT 0 5", Some(5)),
            ("UPDATE 3", Some(3)),
            ("DELETE 0", Some(0)),
            ("SELECT 2", Some(2)),
            ("COPY 7", Some(7)),
            ("MERGE 4", Some(4)),
            ("FETCH 10", Some(10)),
            ("MOVE 1", Some(1)),
            ("BEGIN", None),
            ("CREATE TABLE", None),
            ("SELECT", None),
            ("INSERT 5", None),
            ("UPDATE x", None),
        ] {
            assert_eq!(CommandComplete::new(tag).rows(), rows, "{tag}");
        }
        assert_eq!(CommandComplete::new("INSERT 0 5").verb(), "INSERT");
    }

    #[test]
    fn round_trip() {
        let msg = CommandComplete::new("UPDATE 3");
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(CommandComplete::decode(&frame).unwrap(), msg);
    }
}
