//! Arrow schemas of the stored tables and the conversions between rows and record batches.
//! Facts are appended, never updated: session ends and action outcomes are tables of their own
//! that the query views join (`sessions`, `actions`). Column additions bump [`SCHEMA_VERSION`];
//! readers fill columns an older file lacks with nulls.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, Int32Array, Int32Builder, Int64Array, Int64Builder, ListArray, ListBuilder,
    RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::RecorderError;
use crate::record::{Chained, Ended};
use crate::rows::{ActionOutcome, ActionRow, EntryRow, SessionEnd, SessionStart};

/// Version of the stored schema, written to every Parquet file's key-value metadata under
/// [`SCHEMA_VERSION_KEY`].
///
/// | version | change |
/// |---|---|
/// | 1 | first version |
/// | 2 | `session_ends.recording` (nullable): path of the session's terminal recording |
pub const SCHEMA_VERSION: u32 = 2;
/// Metadata key holding the schema version.
pub const SCHEMA_VERSION_KEY: &str = "bastion.schema_version";

/// The stored tables, each a directory of day partitions under the audit directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoredTable {
    /// Account-entry attempts.
    Entries,
    /// Session starts.
    Sessions,
    /// Session ends.
    SessionEnds,
    /// Actions as decided (hash-chained).
    Actions,
    /// Outcomes of actions (hash-chained).
    Outcomes,
}

impl StoredTable {
    /// Every stored table.
    pub const ALL: [StoredTable; 5] = [
        StoredTable::Entries,
        StoredTable::Sessions,
        StoredTable::SessionEnds,
        StoredTable::Actions,
        StoredTable::Outcomes,
    ];

    /// Directory name under the audit directory (and raw table name in queries).
    pub fn dir_name(self) -> &'static str {
        match self {
            StoredTable::Entries => "entries",
            StoredTable::Sessions => "sessions",
            StoredTable::SessionEnds => "session_ends",
            StoredTable::Actions => "actions",
            StoredTable::Outcomes => "outcomes",
        }
    }

    /// Parses a directory name.
    pub fn from_dir_name(name: &str) -> Option<StoredTable> {
        StoredTable::ALL.into_iter().find(|t| t.dir_name() == name)
    }

    /// The Arrow schema of the table's files (without the `date` partition column).
    pub fn schema(self) -> SchemaRef {
        static SCHEMAS: OnceLock<[SchemaRef; 5]> = OnceLock::new();
        let all = SCHEMAS.get_or_init(|| {
            [
                entries_schema(),
                sessions_schema(),
                session_ends_schema(),
                actions_schema(),
                outcomes_schema(),
            ]
        });
        let i = match self {
            StoredTable::Entries => 0,
            StoredTable::Sessions => 1,
            StoredTable::SessionEnds => 2,
            StoredTable::Actions => 3,
            StoredTable::Outcomes => 4,
        };
        Arc::clone(&all[i])
    }
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}
fn list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}
fn f(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

fn entries_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("time", ts(), false),
        f("identity", DataType::Utf8, false),
        f("source", DataType::Utf8, false),
        f("protocol", DataType::Utf8, false),
        f("method", DataType::Utf8, false),
        f("result", DataType::Utf8, false),
        f("reason", DataType::Utf8, true),
        f("session_id", DataType::Utf8, true),
    ]))
}

fn sessions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("session_id", DataType::Utf8, false),
        f("start_time", ts(), false),
        f("identity", DataType::Utf8, false),
        f("identity_kind", DataType::Utf8, false),
        f("target", DataType::Utf8, false),
        f("protocol", DataType::Utf8, false),
        f("source", DataType::Utf8, false),
        f("client", DataType::Utf8, true),
        f("recording", DataType::Utf8, true),
    ]))
}

fn session_ends_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("session_id", DataType::Utf8, false),
        f("end_time", ts(), false),
        f("end_reason", DataType::Utf8, false),
        f("bytes_in", DataType::Int64, false),
        f("bytes_out", DataType::Int64, false),
        f("recording", DataType::Utf8, true),
    ]))
}

fn actions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("time", ts(), false),
        f("session_id", DataType::Utf8, false),
        f("seq", DataType::Int64, false),
        f("node", DataType::Utf8, false),
        f("identity", DataType::Utf8, false),
        f("identity_kind", DataType::Utf8, false),
        f("target", DataType::Utf8, false),
        f("protocol", DataType::Utf8, false),
        f("kind", DataType::Utf8, false),
        f("text", DataType::Utf8, false),
        f("fingerprint", DataType::Utf8, true),
        f("statement_class", DataType::Utf8, true),
        f("objects", list(), false),
        f("risk_tags", list(), false),
        f("decision", DataType::Utf8, false),
        f("policy_ids", list(), false),
        f("shadow_decision", DataType::Utf8, true),
        f("step_up", DataType::Utf8, true),
        f("approver", DataType::Utf8, true),
        f("approved_at", ts(), true),
        f("prev_hash", DataType::Utf8, false),
        f("hash", DataType::Utf8, false),
    ]))
}

fn outcomes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("session_id", DataType::Utf8, false),
        f("seq", DataType::Int64, false),
        f("outcome_time", ts(), false),
        f("outcome", DataType::Utf8, false),
        f("rows", DataType::Int64, true),
        f("sqlstate", DataType::Utf8, true),
        f("exit_status", DataType::Int32, true),
        f("duration_us", DataType::Int64, true),
        f("bytes_in", DataType::Int64, false),
        f("bytes_out", DataType::Int64, false),
        f("approver", DataType::Utf8, true),
        f("approved_at", ts(), true),
        f("message", DataType::Utf8, true),
        f("prev_hash", DataType::Utf8, false),
        f("hash", DataType::Utf8, false),
    ]))
}

fn tsb(cap: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(cap).with_timezone("UTC")
}
fn listb() -> ListBuilder<StringBuilder> {
    ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        true,
    )))
}
fn push_list(b: &mut ListBuilder<StringBuilder>, items: &[String]) {
    for s in items {
        b.values().append_value(s);
    }
    b.append(true);
}
/// Lower-case hex of a chain hash, without allocating.
fn hex32<'a>(hash: &[u8; 32], buf: &'a mut [u8; 64]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in hash.iter().enumerate() {
        buf[2 * i] = DIGITS[usize::from(b >> 4)];
        buf[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
    // Only ASCII hex digits were written.
    std::str::from_utf8(buf).unwrap_or_default()
}
fn batch(table: StoredTable, cols: Vec<ArrayRef>) -> Result<RecordBatch, RecorderError> {
    Ok(RecordBatch::try_new(table.schema(), cols)?)
}

/// Builds an `entries` batch.
pub(crate) fn entries_batch(rows: &[&EntryRow]) -> Result<RecordBatch, RecorderError> {
    let n = rows.len();
    let mut time = tsb(n);
    let mut s: Vec<StringBuilder> = (0..7).map(|_| StringBuilder::new()).collect();
    for r in rows {
        time.append_value(r.time);
        s[0].append_value(&r.identity);
        s[1].append_value(&r.source);
        s[2].append_value(&r.protocol);
        s[3].append_value(&r.method);
        s[4].append_value(&r.result);
        s[5].append_option(r.reason.as_deref());
        s[6].append_option(r.session_id.as_deref());
    }
    let mut cols: Vec<ArrayRef> = vec![Arc::new(time.finish())];
    cols.extend(s.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    batch(StoredTable::Entries, cols)
}

/// Builds a `sessions` (starts) batch.
pub(crate) fn sessions_batch(rows: &[&SessionStart]) -> Result<RecordBatch, RecorderError> {
    let mut id = StringBuilder::new();
    let mut time = tsb(rows.len());
    let mut s: Vec<StringBuilder> = (0..7).map(|_| StringBuilder::new()).collect();
    for r in rows {
        id.append_value(&r.session_id);
        time.append_value(r.time);
        s[0].append_value(&r.identity);
        s[1].append_value(&r.identity_kind);
        s[2].append_value(&r.target);
        s[3].append_value(&r.protocol);
        s[4].append_value(&r.source);
        s[5].append_option(r.client.as_deref());
        s[6].append_option(r.recording.as_deref());
    }
    let mut cols: Vec<ArrayRef> = vec![Arc::new(id.finish()), Arc::new(time.finish())];
    cols.extend(s.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    batch(StoredTable::Sessions, cols)
}

/// Builds a `session_ends` batch.
pub(crate) fn session_ends_batch(rows: &[&Ended]) -> Result<RecordBatch, RecorderError> {
    let mut id = StringBuilder::new();
    let mut time = tsb(rows.len());
    let mut reason = StringBuilder::new();
    let mut bin = Int64Builder::new();
    let mut bout = Int64Builder::new();
    let mut recording = StringBuilder::new();
    for Ended {
        row: r,
        recording: rec,
    } in rows.iter().copied()
    {
        id.append_value(&r.session_id);
        time.append_value(r.time);
        reason.append_value(&r.end_reason);
        bin.append_value(r.bytes_in);
        bout.append_value(r.bytes_out);
        recording.append_option(rec.as_deref());
    }
    batch(
        StoredTable::SessionEnds,
        vec![
            Arc::new(id.finish()),
            Arc::new(time.finish()),
            Arc::new(reason.finish()),
            Arc::new(bin.finish()),
            Arc::new(bout.finish()),
            Arc::new(recording.finish()),
        ],
    )
}

/// Builds an `actions` batch.
pub(crate) fn actions_batch(rows: &[&Chained<ActionRow>]) -> Result<RecordBatch, RecorderError> {
    let n = rows.len();
    let mut time = tsb(n);
    let mut seq = Int64Builder::with_capacity(n);
    let mut approved_at = tsb(n);
    // Utf8 columns in schema order, skipping non-string ones.
    let mut s: Vec<StringBuilder> = (0..14).map(|_| StringBuilder::new()).collect();
    let (mut objects, mut risk, mut policies) = (listb(), listb(), listb());
    for c in rows {
        let r = &c.row;
        time.append_value(r.time);
        s[0].append_value(&r.session_id);
        seq.append_value(r.seq);
        s[1].append_value(&r.node);
        s[2].append_value(&r.identity);
        s[3].append_value(&r.identity_kind);
        s[4].append_value(&r.target);
        s[5].append_value(&r.protocol);
        s[6].append_value(&r.kind);
        s[7].append_value(&r.text);
        s[8].append_option(r.fingerprint.as_deref());
        s[9].append_option(r.statement_class.as_deref());
        push_list(&mut objects, &r.objects);
        push_list(&mut risk, &r.risk_tags);
        s[10].append_value(&r.decision);
        push_list(&mut policies, &r.policy_ids);
        s[11].append_option(r.shadow_decision.as_deref());
        s[12].append_option(r.step_up.as_deref());
        s[13].append_option(r.approver.as_deref());
        approved_at.append_option(r.approved_at);
    }
    let mut prev = StringBuilder::with_capacity(n, 64 * n);
    let mut hash = StringBuilder::with_capacity(n, 64 * n);
    let mut buf = [0u8; 64];
    for c in rows {
        prev.append_value(hex32(&c.prev_hash, &mut buf));
        hash.append_value(hex32(&c.hash, &mut buf));
    }
    let mut st = s.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut next = || {
        st.next()
            .unwrap_or_else(|| Arc::new(StringArray::from(Vec::<String>::new())))
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(time.finish()),
        next(),
        Arc::new(seq.finish()),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        Arc::new(objects.finish()),
        Arc::new(risk.finish()),
        next(),
        Arc::new(policies.finish()),
        next(),
        next(),
        next(),
        Arc::new(approved_at.finish()),
        Arc::new(prev.finish()),
        Arc::new(hash.finish()),
    ];
    batch(StoredTable::Actions, cols)
}

/// Builds an `outcomes` batch.
pub(crate) fn outcomes_batch(
    rows: &[&Chained<ActionOutcome>],
) -> Result<RecordBatch, RecorderError> {
    let n = rows.len();
    let mut id = StringBuilder::new();
    let mut seq = Int64Builder::with_capacity(n);
    let mut time = tsb(n);
    let mut outcome = StringBuilder::new();
    let mut nrows = Int64Builder::with_capacity(n);
    let mut sqlstate = StringBuilder::new();
    let mut exit = Int32Builder::with_capacity(n);
    let mut dur = Int64Builder::with_capacity(n);
    let mut bin = Int64Builder::with_capacity(n);
    let mut bout = Int64Builder::with_capacity(n);
    let mut approver = StringBuilder::new();
    let mut approved_at = tsb(n);
    let mut message = StringBuilder::new();
    let mut prev = StringBuilder::with_capacity(n, 64 * n);
    let mut hash = StringBuilder::with_capacity(n, 64 * n);
    let mut buf = [0u8; 64];
    for c in rows {
        let r = &c.row;
        id.append_value(&r.session_id);
        seq.append_value(r.seq);
        time.append_value(r.time);
        outcome.append_value(&r.outcome);
        nrows.append_option(r.rows);
        sqlstate.append_option(r.sqlstate.as_deref());
        exit.append_option(r.exit_status);
        dur.append_option(r.duration_us);
        bin.append_value(r.bytes_in);
        bout.append_value(r.bytes_out);
        approver.append_option(r.approver.as_deref());
        approved_at.append_option(r.approved_at);
        message.append_option(r.message.as_deref());
        prev.append_value(hex32(&c.prev_hash, &mut buf));
        hash.append_value(hex32(&c.hash, &mut buf));
    }
    batch(
        StoredTable::Outcomes,
        vec![
            Arc::new(id.finish()),
            Arc::new(seq.finish()),
            Arc::new(time.finish()),
            Arc::new(outcome.finish()),
            Arc::new(nrows.finish()),
            Arc::new(sqlstate.finish()),
            Arc::new(exit.finish()),
            Arc::new(dur.finish()),
            Arc::new(bin.finish()),
            Arc::new(bout.finish()),
            Arc::new(approver.finish()),
            Arc::new(approved_at.finish()),
            Arc::new(message.finish()),
            Arc::new(prev.finish()),
            Arc::new(hash.finish()),
        ],
    )
}

/// Typed access to a batch read from a file, tolerant of older schema versions: a column the
/// file lacks reads as null, a column stored with another compatible type is cast.
pub(crate) struct Columns<'a> {
    batch: &'a RecordBatch,
    origin: &'a std::path::Path,
}

impl<'a> Columns<'a> {
    pub(crate) fn new(batch: &'a RecordBatch, origin: &'a std::path::Path) -> Self {
        Columns { batch, origin }
    }

    fn get(&self, name: &str, dt: &DataType) -> Result<Option<ArrayRef>, RecorderError> {
        let Some(col) = self.batch.column_by_name(name) else {
            return Ok(None);
        };
        if col.data_type() == dt {
            return Ok(Some(Arc::clone(col)));
        }
        arrow::compute::cast(col, dt)
            .map(Some)
            .map_err(|e| RecorderError::Schema {
                path: self.origin.to_path_buf(),
                reason: format!("column {name}: {e}"),
            })
    }

    fn required(&self, name: &str, dt: &DataType) -> Result<ArrayRef, RecorderError> {
        self.get(name, dt)?.ok_or_else(|| RecorderError::Schema {
            path: self.origin.to_path_buf(),
            reason: format!("missing column {name}"),
        })
    }

    /// A string column; `None` when an optional column is absent.
    pub(crate) fn strs(
        &self,
        name: &str,
        required: bool,
    ) -> Result<Option<StringArray>, RecorderError> {
        let col = if required {
            Some(self.required(name, &DataType::Utf8)?)
        } else {
            self.get(name, &DataType::Utf8)?
        };
        Ok(col.and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned()))
    }

    /// An `Int64` column.
    pub(crate) fn i64s(
        &self,
        name: &str,
        required: bool,
    ) -> Result<Option<Int64Array>, RecorderError> {
        let col = if required {
            Some(self.required(name, &DataType::Int64)?)
        } else {
            self.get(name, &DataType::Int64)?
        };
        Ok(col.and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned()))
    }

    /// An `Int32` column.
    pub(crate) fn i32s(&self, name: &str) -> Result<Option<Int32Array>, RecorderError> {
        let col = self.get(name, &DataType::Int32)?;
        Ok(col.and_then(|c| c.as_any().downcast_ref::<Int32Array>().cloned()))
    }

    /// A timestamp column as microseconds.
    pub(crate) fn times(
        &self,
        name: &str,
        required: bool,
    ) -> Result<Option<TimestampMicrosecondArray>, RecorderError> {
        let col = if required {
            Some(self.required(name, &ts())?)
        } else {
            self.get(name, &ts())?
        };
        Ok(col.and_then(|c| {
            c.as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .cloned()
        }))
    }

    /// A list-of-strings column.
    pub(crate) fn lists(&self, name: &str) -> Result<Option<ListArray>, RecorderError> {
        let col = self.get(name, &list())?;
        Ok(col.and_then(|c| c.as_any().downcast_ref::<ListArray>().cloned()))
    }

    /// Rows in the batch.
    pub(crate) fn len(&self) -> usize {
        self.batch.num_rows()
    }
}

fn s(a: &Option<StringArray>, i: usize) -> String {
    os(a, i).unwrap_or_default()
}
fn os(a: &Option<StringArray>, i: usize) -> Option<String> {
    a.as_ref()
        .filter(|a| a.is_valid(i))
        .map(|a| a.value(i).to_string())
}
fn n(a: &Option<Int64Array>, i: usize) -> i64 {
    on(a, i).unwrap_or_default()
}
fn on(a: &Option<Int64Array>, i: usize) -> Option<i64> {
    a.as_ref().filter(|a| a.is_valid(i)).map(|a| a.value(i))
}
fn t(a: &Option<TimestampMicrosecondArray>, i: usize) -> Option<i64> {
    a.as_ref().filter(|a| a.is_valid(i)).map(|a| a.value(i))
}
fn l(a: &Option<ListArray>, i: usize) -> Vec<String> {
    let Some(a) = a.as_ref().filter(|a| a.is_valid(i)) else {
        return Vec::new();
    };
    let v = a.value(i);
    let Some(v) = v.as_any().downcast_ref::<StringArray>() else {
        return Vec::new();
    };
    v.iter()
        .map(|x| x.unwrap_or_default().to_string())
        .collect()
}
fn h(a: &Option<StringArray>, i: usize, c: &Columns<'_>) -> Result<[u8; 32], RecorderError> {
    let text = s(a, i);
    let mut out = [0u8; 32];
    hex::decode_to_slice(&text, &mut out).map_err(|_| RecorderError::Schema {
        path: c.origin.to_path_buf(),
        reason: format!("row {i}: hash column is not 32 hex bytes"),
    })?;
    Ok(out)
}

/// Reads `entries` rows.
pub(crate) fn entries_rows(c: &Columns<'_>) -> Result<Vec<EntryRow>, RecorderError> {
    let time = c.times("time", true)?;
    let [identity, source, protocol, method, result] =
        ["identity", "source", "protocol", "method", "result"].map(|k| c.strs(k, true));
    let (identity, source, protocol, method, result) =
        (identity?, source?, protocol?, method?, result?);
    let reason = c.strs("reason", false)?;
    let sid = c.strs("session_id", false)?;
    Ok((0..c.len())
        .map(|i| EntryRow {
            time: t(&time, i).unwrap_or_default(),
            identity: s(&identity, i),
            source: s(&source, i),
            protocol: s(&protocol, i),
            method: s(&method, i),
            result: s(&result, i),
            reason: os(&reason, i),
            session_id: os(&sid, i),
        })
        .collect())
}

/// Reads `sessions` (start) rows.
pub(crate) fn sessions_rows(c: &Columns<'_>) -> Result<Vec<SessionStart>, RecorderError> {
    let id = c.strs("session_id", true)?;
    let time = c.times("start_time", true)?;
    let identity = c.strs("identity", true)?;
    let kind = c.strs("identity_kind", false)?;
    let target = c.strs("target", true)?;
    let protocol = c.strs("protocol", true)?;
    let source = c.strs("source", false)?;
    let client = c.strs("client", false)?;
    let recording = c.strs("recording", false)?;
    Ok((0..c.len())
        .map(|i| SessionStart {
            session_id: s(&id, i),
            time: t(&time, i).unwrap_or_default(),
            identity: s(&identity, i),
            identity_kind: s(&kind, i),
            target: s(&target, i),
            protocol: s(&protocol, i),
            source: s(&source, i),
            client: os(&client, i),
            recording: os(&recording, i),
        })
        .collect())
}

/// Reads `session_ends` rows.
pub(crate) fn session_ends_rows(c: &Columns<'_>) -> Result<Vec<Ended>, RecorderError> {
    let id = c.strs("session_id", true)?;
    let time = c.times("end_time", true)?;
    let reason = c.strs("end_reason", true)?;
    let bin = c.i64s("bytes_in", false)?;
    let bout = c.i64s("bytes_out", false)?;
    // Absent in schema 1 files.
    let recording = c.strs("recording", false)?;
    Ok((0..c.len())
        .map(|i| Ended {
            row: SessionEnd {
                session_id: s(&id, i),
                time: t(&time, i).unwrap_or_default(),
                end_reason: s(&reason, i),
                bytes_in: n(&bin, i),
                bytes_out: n(&bout, i),
            },
            recording: os(&recording, i),
        })
        .collect())
}

/// Reads `actions` rows with their chain hashes.
pub(crate) fn actions_rows(c: &Columns<'_>) -> Result<Vec<Chained<ActionRow>>, RecorderError> {
    let time = c.times("time", true)?;
    let sid = c.strs("session_id", true)?;
    let seq = c.i64s("seq", true)?;
    let strs = [
        "node",
        "identity",
        "identity_kind",
        "target",
        "protocol",
        "kind",
        "text",
        "decision",
    ]
    .map(|k| c.strs(k, true));
    let [node, identity, ikind, target, protocol, kind, text, decision] = strs;
    let (node, identity, ikind, target, protocol, kind, text, decision) = (
        node?, identity?, ikind?, target?, protocol?, kind?, text?, decision?,
    );
    let [fp, class, shadow, step_up, approver] = [
        "fingerprint",
        "statement_class",
        "shadow_decision",
        "step_up",
        "approver",
    ]
    .map(|k| c.strs(k, false));
    let (fp, class, shadow, step_up, approver) = (fp?, class?, shadow?, step_up?, approver?);
    let objects = c.lists("objects")?;
    let risk = c.lists("risk_tags")?;
    let policies = c.lists("policy_ids")?;
    let approved_at = c.times("approved_at", false)?;
    let prev = c.strs("prev_hash", true)?;
    let hash = c.strs("hash", true)?;
    (0..c.len())
        .map(|i| {
            Ok(Chained {
                row: ActionRow {
                    time: t(&time, i).unwrap_or_default(),
                    session_id: s(&sid, i),
                    seq: n(&seq, i),
                    node: s(&node, i),
                    identity: s(&identity, i),
                    identity_kind: s(&ikind, i),
                    target: s(&target, i),
                    protocol: s(&protocol, i),
                    kind: s(&kind, i),
                    text: s(&text, i),
                    fingerprint: os(&fp, i),
                    statement_class: os(&class, i),
                    objects: l(&objects, i),
                    risk_tags: l(&risk, i),
                    decision: s(&decision, i),
                    policy_ids: l(&policies, i),
                    shadow_decision: os(&shadow, i),
                    step_up: os(&step_up, i),
                    approver: os(&approver, i),
                    approved_at: t(&approved_at, i),
                },
                prev_hash: h(&prev, i, c)?,
                hash: h(&hash, i, c)?,
            })
        })
        .collect()
}

/// Reads `outcomes` rows with their chain hashes.
pub(crate) fn outcomes_rows(c: &Columns<'_>) -> Result<Vec<Chained<ActionOutcome>>, RecorderError> {
    let sid = c.strs("session_id", true)?;
    let seq = c.i64s("seq", true)?;
    let time = c.times("outcome_time", true)?;
    let outcome = c.strs("outcome", true)?;
    let rows = c.i64s("rows", false)?;
    let sqlstate = c.strs("sqlstate", false)?;
    let exit = c.i32s("exit_status")?;
    let dur = c.i64s("duration_us", false)?;
    let bin = c.i64s("bytes_in", false)?;
    let bout = c.i64s("bytes_out", false)?;
    let approver = c.strs("approver", false)?;
    let approved_at = c.times("approved_at", false)?;
    let message = c.strs("message", false)?;
    let prev = c.strs("prev_hash", true)?;
    let hash = c.strs("hash", true)?;
    (0..c.len())
        .map(|i| {
            Ok(Chained {
                row: ActionOutcome {
                    session_id: s(&sid, i),
                    seq: n(&seq, i),
                    time: t(&time, i).unwrap_or_default(),
                    outcome: s(&outcome, i),
                    rows: on(&rows, i),
                    sqlstate: os(&sqlstate, i),
                    exit_status: exit.as_ref().filter(|a| a.is_valid(i)).map(|a| a.value(i)),
                    duration_us: on(&dur, i),
                    bytes_in: n(&bin, i),
                    bytes_out: n(&bout, i),
                    approver: os(&approver, i),
                    approved_at: t(&approved_at, i),
                    message: os(&message, i),
                },
                prev_hash: h(&prev, i, c)?,
                hash: h(&hash, i, c)?,
            })
        })
        .collect()
}
