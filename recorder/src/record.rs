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

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
// Actions dominate the stream; boxing them would add an allocation per row for no memory gain.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Record {
    Entry(EntryRow),
    SessionStart(SessionStart),
    SessionEnd(SessionEnd),
    Action(Chained<ActionRow>),
    Outcome(Chained<ActionOutcome>),
    /// First record of every segment: the sessions open when the segment began, so recovery
    /// knows which sessions to close even when their start was rolled long ago.
    Checkpoint(Vec<String>),
}

const TYPE_ENTRY: u8 = 1;
const TYPE_SESSION_START: u8 = 2;
const TYPE_SESSION_END: u8 = 3;
const TYPE_ACTION: u8 = 4;
const TYPE_OUTCOME: u8 = 5;
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
            TYPE_SESSION_END => Record::SessionEnd(SessionEnd::decode(&mut d)?),
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
