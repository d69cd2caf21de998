//! The canonical binary encoding of rows: the bytes the journal stores and the hash chain hashes.
//! Strings are a `u32` little-endian length plus UTF-8 bytes, integers little-endian, an
//! `Option` a 0/1 tag byte, a list a `u32` count then its strings. The encoding of a row is a
//! pure function of its field values, so a row rebuilt from Parquet hashes to the same digest.

use crate::record::Ended;
use crate::rows::{ActionOutcome, ActionRow, EntryRow, SessionEnd, SessionStart};

/// Appends canonical values to a byte buffer.
pub(crate) struct Encoder<'a>(pub(crate) &'a mut Vec<u8>);

impl Encoder<'_> {
    pub(crate) fn str(&mut self, s: &str) {
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    pub(crate) fn opt_str(&mut self, s: &Option<String>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                self.i64(v);
            }
        }
    }
    pub(crate) fn list(&mut self, items: &[String]) {
        self.0
            .extend_from_slice(&(items.len() as u32).to_le_bytes());
        for s in items {
            self.str(s);
        }
    }
    pub(crate) fn bytes32(&mut self, b: &[u8; 32]) {
        self.0.extend_from_slice(b);
    }
}

/// Reads canonical values back; every read fails cleanly on short or invalid input.
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
}

/// Why a canonical value could not be read.
#[derive(Debug)]
pub(crate) struct DecodeError(pub(crate) &'static str);

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Decoder { buf }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError("record is shorter than its fields"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError("string is not utf-8"))
    }
    pub(crate) fn opt_str(&mut self) -> Result<Option<String>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(DecodeError("bad option tag")),
        }
    }
    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }
    pub(crate) fn opt_i64(&mut self) -> Result<Option<i64>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.i64()?)),
            _ => Err(DecodeError("bad option tag")),
        }
    }
    pub(crate) fn list(&mut self) -> Result<Vec<String>, DecodeError> {
        let n = self.u32()? as usize;
        // Each string needs at least its 4-byte length: refuse counts the buffer cannot hold.
        if n > self.buf.len() / 4 {
            return Err(DecodeError("list count exceeds record"));
        }
        (0..n).map(|_| self.str()).collect()
    }
    pub(crate) fn bytes32(&mut self) -> Result<[u8; 32], DecodeError> {
        let b = self.take(32)?;
        let mut a = [0u8; 32];
        a.copy_from_slice(b);
        Ok(a)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes after record"))
        }
    }
}

/// A row with a canonical encoding.
pub(crate) trait Canonical: Sized {
    fn encode(&self, e: &mut Encoder<'_>);
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError>;
}

impl Canonical for EntryRow {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.i64(self.time);
        e.str(&self.identity);
        e.str(&self.source);
        e.str(&self.protocol);
        e.str(&self.method);
        e.str(&self.result);
        e.opt_str(&self.reason);
        e.opt_str(&self.session_id);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(EntryRow {
            time: d.i64()?,
            identity: d.str()?,
            source: d.str()?,
            protocol: d.str()?,
            method: d.str()?,
            result: d.str()?,
            reason: d.opt_str()?,
            session_id: d.opt_str()?,
        })
    }
}

impl Canonical for SessionStart {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.str(&self.session_id);
        e.i64(self.time);
        e.str(&self.identity);
        e.str(&self.identity_kind);
        e.str(&self.target);
        e.str(&self.protocol);
        e.str(&self.source);
        e.opt_str(&self.client);
        e.opt_str(&self.recording);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(SessionStart {
            session_id: d.str()?,
            time: d.i64()?,
            identity: d.str()?,
            identity_kind: d.str()?,
            target: d.str()?,
            protocol: d.str()?,
            source: d.str()?,
            client: d.opt_str()?,
            recording: d.opt_str()?,
        })
    }
}

impl Canonical for SessionEnd {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.str(&self.session_id);
        e.i64(self.time);
        e.str(&self.end_reason);
        e.i64(self.bytes_in);
        e.i64(self.bytes_out);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(SessionEnd {
            session_id: d.str()?,
            time: d.i64()?,
            end_reason: d.str()?,
            bytes_in: d.i64()?,
            bytes_out: d.i64()?,
        })
    }
}

/// Schema 1 ends encode as before; a recording is appended only when there is one, so journal
/// segments and rows digests written before schema 2 stay valid.
impl Canonical for Ended {
    fn encode(&self, e: &mut Encoder<'_>) {
        self.row.encode(e);
        if self.recording.is_some() {
            e.opt_str(&self.recording);
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let row = SessionEnd::decode(d)?;
        let recording = if d.is_empty() {
            None
        } else {
            // Absent means none: an explicit "none" tag would give one row two encodings.
            Some(
                d.opt_str()?
                    .ok_or(DecodeError("explicit empty recording in a session end"))?,
            )
        };
        Ok(Ended { row, recording })
    }
}

impl Canonical for ActionRow {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.i64(self.time);
        e.str(&self.session_id);
        e.i64(self.seq);
        e.str(&self.node);
        e.str(&self.identity);
        e.str(&self.identity_kind);
        e.str(&self.target);
        e.str(&self.protocol);
        e.str(&self.kind);
        e.str(&self.text);
        e.opt_str(&self.fingerprint);
        e.opt_str(&self.statement_class);
        e.list(&self.objects);
        e.list(&self.risk_tags);
        e.str(&self.decision);
        e.list(&self.policy_ids);
        e.opt_str(&self.shadow_decision);
        e.opt_str(&self.step_up);
        e.opt_str(&self.approver);
        e.opt_i64(self.approved_at);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(ActionRow {
            time: d.i64()?,
            session_id: d.str()?,
            seq: d.i64()?,
            node: d.str()?,
            identity: d.str()?,
            identity_kind: d.str()?,
            target: d.str()?,
            protocol: d.str()?,
            kind: d.str()?,
            text: d.str()?,
            fingerprint: d.opt_str()?,
            statement_class: d.opt_str()?,
            objects: d.list()?,
            risk_tags: d.list()?,
            decision: d.str()?,
            policy_ids: d.list()?,
            shadow_decision: d.opt_str()?,
            step_up: d.opt_str()?,
            approver: d.opt_str()?,
            approved_at: d.opt_i64()?,
        })
    }
}

impl Canonical for ActionOutcome {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.str(&self.session_id);
        e.i64(self.seq);
        e.i64(self.time);
        e.str(&self.outcome);
        e.opt_i64(self.rows);
        e.opt_str(&self.sqlstate);
        e.opt_i64(self.exit_status.map(i64::from));
        e.opt_i64(self.duration_us);
        e.i64(self.bytes_in);
        e.i64(self.bytes_out);
        e.opt_str(&self.approver);
        e.opt_i64(self.approved_at);
        e.opt_str(&self.message);
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(ActionOutcome {
            session_id: d.str()?,
            seq: d.i64()?,
            time: d.i64()?,
            outcome: d.str()?,
            rows: d.opt_i64()?,
            sqlstate: d.opt_str()?,
            exit_status: d
                .opt_i64()?
                .map(i32::try_from)
                .transpose()
                .map_err(|_| DecodeError("exit status out of range"))?,
            duration_us: d.opt_i64()?,
            bytes_in: d.i64()?,
            bytes_out: d.i64()?,
            approver: d.opt_str()?,
            approved_at: d.opt_i64()?,
            message: d.opt_str()?,
        })
    }
}
