//! Journal records: every fact the recorder stores, with its type byte and payload encoding.

use crate::canonical::{Canonical, DecodeError, Decoder, Encoder};
use crate::rows::{ActionOutcome, ActionRow, EntryRow, SessionEnd, SessionStart};

/// A row with its place in its session's hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chained<T> {
    pub(crate) row: T,
    pub(crate) prev_hash: [u8; 32],
    pub(crate) hash: [u8; 32],
}

/// A session end as stored: the caller's row plus the path of the session's terminal recording
/// (relative to the audit directory), a column added in schema version 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ended {
    pub(crate) row: SessionEnd,
    pub(crate) recording: Option<String>,
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
// Actions dominate the stream; boxing them would add an allocation per row for no memory gain.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Record {
    Entry(EntryRow),
    SessionStart(SessionStart),
    SessionEnd(Ended),
    Action(Chained<ActionRow>),
    Outcome(Chained<ActionOutcome>),
    /// First record of every segment: the sessions open when the segment began, so recovery
    /// knows which sessions to close even when their start was rolled long ago.
    Checkpoint(Vec<String>),
}

const TYPE_ENTRY: u8 = 1;
const TYPE_SESSION_START: u8 = 2;
const TYPE_SESSION_END: u8 = 3;
pub(crate) const TYPE_ACTION: u8 = 4;
pub(crate) const TYPE_OUTCOME: u8 = 5;
const TYPE_CHECKPOINT: u8 = 6;

impl Record {
    /// Appends the type byte and payload.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let mut e = Encoder(out);
        match self {
            Record::Entry(r) => {
                e.0.push(TYPE_ENTRY);
                r.encode(&mut e);
            }
            Record::SessionStart(r) => {
                e.0.push(TYPE_SESSION_START);
                r.encode(&mut e);
            }
            Record::SessionEnd(r) => {
                e.0.push(TYPE_SESSION_END);
                r.encode(&mut e);
            }
            Record::Action(c) => {
                e.0.push(TYPE_ACTION);
                c.row.encode(&mut e);
                e.bytes32(&c.prev_hash);
                e.bytes32(&c.hash);
            }
            Record::Outcome(c) => {
                e.0.push(TYPE_OUTCOME);
                c.row.encode(&mut e);
                e.bytes32(&c.prev_hash);
                e.bytes32(&c.hash);
            }
            Record::Checkpoint(open) => {
                e.0.push(TYPE_CHECKPOINT);
                e.list(open);
            }
        }
    }

    /// Decodes a type byte plus payload.
    pub(crate) fn decode(buf: &[u8]) -> Result<Record, DecodeError> {
        let mut d = Decoder::new(buf);
        let record = match d.u8()? {
            TYPE_ENTRY => Record::Entry(EntryRow::decode(&mut d)?),
            TYPE_SESSION_START => Record::SessionStart(SessionStart::decode(&mut d)?),
            TYPE_SESSION_END => Record::SessionEnd(Ended::decode(&mut d)?),
            TYPE_ACTION => Record::Action(Chained {
                row: ActionRow::decode(&mut d)?,
                prev_hash: d.bytes32()?,
                hash: d.bytes32()?,
            }),
            TYPE_OUTCOME => Record::Outcome(Chained {
                row: ActionOutcome::decode(&mut d)?,
                prev_hash: d.bytes32()?,
                hash: d.bytes32()?,
            }),
            TYPE_CHECKPOINT => Record::Checkpoint(d.list()?),
            _ => return Err(DecodeError("unknown record type")),
        };
        d.finish()?;
        Ok(record)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn end() -> SessionEnd {
        SessionEnd {
            session_id: "s1".into(),
            time: 7,
            end_reason: "client_closed".into(),
            bytes_in: 1,
            bytes_out: 2,
        }
    }

    #[test]
    fn a_session_end_without_recording_encodes_as_schema_1_did() {
        // Journal segments and rows digests written before schema 2 must stay valid.
        let mut v1 = Vec::new();
        end().encode(&mut Encoder(&mut v1));
        let mut v2 = Vec::new();
        Ended {
            row: end(),
            recording: None,
        }
        .encode(&mut Encoder(&mut v2));
        assert_eq!(v1, v2);
        let mut framed = vec![TYPE_SESSION_END];
        framed.extend(&v1);
        assert_eq!(
            Record::decode(&framed).unwrap(),
            Record::SessionEnd(Ended {
                row: end(),
                recording: None
            })
        );
    }

    #[test]
    fn a_chained_row_framed_in_one_pass_is_the_record_with_its_chain_hash() {
        use crate::chain::row_hash;
        use crate::journal::{frame, frame_chained, read_segment};
        let action = ActionRow {
            session_id: "s1".into(),
            seq: 3,
            text: "SELECT 1".into(),
            objects: vec!["t".into()],
            ..Default::default()
        };
        let prev = [7u8; 32];
        let mut one_pass = Vec::new();
        let hash = frame_chained(&action, &prev, &mut one_pass);
        assert_eq!(hash, row_hash(&action, &prev, &mut Vec::new()));
        let mut two_pass = Vec::new();
        let rec = Record::Action(Chained {
            row: action,
            prev_hash: prev,
            hash,
        });
        frame(&rec, &mut two_pass);
        assert_eq!(one_pass, two_pass);
        let outcome = ActionOutcome {
            session_id: "s1".into(),
            seq: 3,
            outcome: "ok".into(),
            ..Default::default()
        };
        let mut buf = Vec::new();
        let hash = frame_chained(&outcome, &prev, &mut buf);
        assert_eq!(hash, row_hash(&outcome, &prev, &mut Vec::new()));
        // And it reads back as a journal record.
        let dir = tempfile::tempdir().unwrap();
        let mut seg = crate::journal::ActiveSegment::create(dir.path(), 1).unwrap();
        seg.append(&buf, false).unwrap();
        let path = seg.seal().unwrap();
        let read = read_segment(&path).unwrap();
        assert_eq!(
            read.records,
            [Record::Outcome(Chained {
                row: outcome,
                prev_hash: prev,
                hash
            })]
        );
    }

    #[test]
    fn a_session_end_with_recording_round_trips_and_has_one_encoding() {
        let r = Record::SessionEnd(Ended {
            row: end(),
            recording: Some("recordings/date=2026-09-21/s1-0.cast".into()),
        });
        let mut buf = Vec::new();
        r.encode(&mut buf);
        assert_eq!(Record::decode(&buf).unwrap(), r);
        // An explicit "no recording" tag is a second encoding of the schema 1 row: refused.
        let mut buf = vec![TYPE_SESSION_END];
        end().encode(&mut Encoder(&mut buf));
        buf.push(0);
        assert!(Record::decode(&buf).is_err());
    }
}
