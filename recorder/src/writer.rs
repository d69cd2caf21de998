//! The single journal writer (a dedicated thread fed by the bounded queue) and the roller
//! thread behind it. The writer drains everything queued, appends it with one `write(2)`, syncs
//! once in fsync mode, then acknowledges each caller: group commit. Full segments go to the
//! roller thread, which publishes them as Parquet and deletes the segment, so encoding Parquet
//! never delays an acknowledgement.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::chain::genesis;
use crate::error::RecorderError;
use crate::journal::{frame, frame_chained, sync_dir, ActiveSegment};
use crate::options::{Durability, RecorderOptions};
use crate::record::{Chained, Ended, Record};
use crate::retention;
use crate::roll::Roller;
use crate::rows::{now_micros, ActionOutcome, ActionRow, EntryRow, SessionEnd, SessionStart};

/// Most rows written by one `write(2)`.
const MAX_BATCH: usize = 8192;
/// Most journal records reserved at once for a segment's rows.
const MAX_RESERVED_ROWS: usize = 262_144;
/// Ended sessions whose chain head is kept, so late outcomes still extend their chain.
const ENDED_CHAINS_KEPT: usize = 65_536;

/// A row sent to the writer.
// Actions dominate the stream; boxing them would add an allocation per row for no memory gain.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Incoming {
    Entry(EntryRow),
    SessionStart(SessionStart),
    SessionEnd(Ended),
    Action(ActionRow),
    Outcome(ActionOutcome),
}

/// Acknowledgement of one row: `Err` carries the reason the write failed.
pub(crate) type Ack = oneshot::Sender<Result<(), String>>;

/// What the queue carries.
#[allow(clippy::large_enum_variant)] // see `Incoming`
pub(crate) enum Command {
    Row(Incoming, Ack),
    /// Wakes the writer so age-based rolls happen on an idle bastion.
    Tick,
    Shutdown(Ack),
}

/// A sealed segment for the roller.
pub(crate) struct RollJob {
    pub(crate) segment: u64,
    pub(crate) path: PathBuf,
    pub(crate) records: Vec<Record>,
}

/// How to take back what a batch changed when its write fails.
enum Undo {
    /// The session of `records[i]` of the batch had this chain head before it.
    Chain(usize, Option<[u8; 32]>),
    /// The session was (`true`) or was not open before.
    Open(String, bool),
}

/// The writer thread's state.
pub(crate) struct Writer {
    opts: RecorderOptions,
    journal_dir: PathBuf,
    active: Option<ActiveSegment>,
    next_segment: u64,
    pending: Vec<Record>,
    started: Option<Instant>,
    chains: HashMap<String, [u8; 32]>,
    ended: VecDeque<String>,
    open: HashSet<String>,
    roll_tx: std_mpsc::SyncSender<RollJob>,
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(
        opts: RecorderOptions,
        next_segment: u64,
        roll_tx: std_mpsc::SyncSender<RollJob>,
    ) -> Writer {
        Writer {
            journal_dir: opts.dir.join("journal"),
            opts,
            active: None,
            next_segment,
            pending: Vec::new(),
            started: None,
            chains: HashMap::new(),
            ended: VecDeque::new(),
            open: HashSet::new(),
            roll_tx,
            buf: Vec::with_capacity(1 << 20),
        }
    }

    /// Runs until shutdown or until every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let Some(first) = rx.blocking_recv() else {
                self.finish(None);
                return;
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            let mut shutdown = None;
            let mut rows = Vec::with_capacity(batch.len());
            for cmd in batch.drain(..) {
                match cmd {
                    Command::Row(r, ack) => rows.push((r, ack)),
                    Command::Tick => {}
                    Command::Shutdown(ack) => shutdown = Some(ack),
                }
            }
            if !rows.is_empty() {
                self.write_batch(rows);
            }
            if shutdown.is_some() {
                rx.close();
                // Rows queued behind the shutdown request are still written.
                let mut late = Vec::new();
                while let Ok(c) = rx.try_recv() {
                    if let Command::Row(r, ack) = c {
                        late.push((r, ack));
                    }
                }
                if !late.is_empty() {
                    self.write_batch(late);
                }
                self.finish(shutdown);
                return;
            }
            if self.roll_due() {
                self.roll();
            }
        }
    }

    fn roll_due(&self) -> bool {
        self.active.is_some()
            // `pending` starts with the segment's checkpoint record, which is not a row.
            && (self.pending.len().saturating_sub(1) >= self.opts.roll_max_rows
                || self.started.is_some_and(|t| t.elapsed() >= self.opts.roll_max_age))
    }

    /// Turns a row into its journal record, appending the record's frame to `self.buf`.
    /// `index` is the record's place in the batch (for `Undo::Chain`).
    fn make_record(&mut self, row: Incoming, index: usize, undo: &mut Vec<Undo>) -> Record {
        let rec = match row {
            Incoming::Entry(e) => Record::Entry(e),
            Incoming::SessionStart(s) => {
                undo.push(Undo::Open(
                    s.session_id.clone(),
                    !self.open.insert(s.session_id.clone()),
                ));
                Record::SessionStart(s)
            }
            Incoming::SessionEnd(s) => {
                undo.push(Undo::Open(
                    s.row.session_id.clone(),
                    self.open.remove(&s.row.session_id),
                ));
                Record::SessionEnd(s)
            }
            Incoming::Action(mut a) => {
                if a.node.is_empty() {
                    a.node.clone_from(&self.opts.node);
                }
                let (prev, hash) = self.extend_chain(&a, index, undo);
                return Record::Action(Chained {
                    row: a,
                    prev_hash: prev,
                    hash,
                });
            }
            Incoming::Outcome(o) => {
                let (prev, hash) = self.extend_chain(&o, index, undo);
                return Record::Outcome(Chained {
                    row: o,
                    prev_hash: prev,
                    hash,
                });
            }
        };
        frame(&rec, &mut self.buf);
        rec
    }

    /// Frames a chained row into `self.buf` and moves its session's chain head to it.
    fn extend_chain<T: crate::chain::ChainRow>(
        &mut self,
        row: &T,
        index: usize,
        undo: &mut Vec<Undo>,
    ) -> ([u8; 32], [u8; 32]) {
        let sid = row.session_id();
        let old = self.chains.get(sid).copied();
        let prev = old.unwrap_or_else(|| genesis(sid));
        let hash = frame_chained(row, &prev, &mut self.buf);
        undo.push(Undo::Chain(index, old));
        match self.chains.get_mut(sid) {
            Some(head) => *head = hash,
            None => {
                self.chains.insert(sid.to_string(), hash);
            }
        }
        (prev, hash)
    }

    fn write_batch(&mut self, rows: Vec<(Incoming, Ack)>) {
        self.buf.clear();
        let mut records = Vec::with_capacity(rows.len() + 1);
        if self.active.is_none() {
            match ActiveSegment::create(&self.journal_dir, self.next_segment) {
                Ok(seg) => {
                    self.next_segment += 1;
                    self.active = Some(seg);
                    // The segment's rows, reserved once rather than regrown (and copied) as
                    // they arrive; capped so a huge `roll_max_rows` does not reserve upfront.
                    self.pending
                        .reserve((self.opts.roll_max_rows + 1).min(MAX_RESERVED_ROWS));
                    self.started = Some(Instant::now());
                    let mut open: Vec<String> = self.open.iter().cloned().collect();
                    open.sort();
                    let cp = Record::Checkpoint(open);
                    frame(&cp, &mut self.buf);
                    records.push(cp);
                }
                Err(e) => {
                    let msg = e.to_string();
                    tracing::error!(error = %msg, "cannot create journal segment; refusing rows");
                    for (_, ack) in rows {
                        let _ = ack.send(Err(msg.clone()));
                    }
                    return;
                }
            }
        }
        let mut undo = Vec::new();
        let mut acks = Vec::with_capacity(rows.len());
        let mut ended = Vec::new();
        for (row, ack) in rows {
            if let Incoming::SessionEnd(s) = &row {
                ended.push(s.row.session_id.clone());
            }
            let rec = self.make_record(row, records.len(), &mut undo);
            records.push(rec);
            acks.push(ack);
        }
        let sync = self.opts.durability == Durability::Fsync;
        let result = match self.active.as_mut() {
            Some(seg) => seg.append(&self.buf, sync),
            None => Err(RecorderError::Closed),
        };
        match result {
            Ok(()) => {
                self.pending.extend(records);
                for ack in acks {
                    let _ = ack.send(Ok(()));
                }
                for sid in ended {
                    self.ended.push_back(sid);
                    if self.ended.len() > ENDED_CHAINS_KEPT {
                        if let Some(old) = self.ended.pop_front() {
                            if !self.open.contains(&old) {
                                self.chains.remove(&old);
                            }
                        }
                    }
                }
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(error = %msg, rows = acks.len(), "journal write failed; refusing rows");
                for u in undo.into_iter().rev() {
                    match u {
                        Undo::Chain(i, old) => {
                            let sid = match records.get(i) {
                                Some(Record::Action(a)) => a.row.session_id.as_str(),
                                Some(Record::Outcome(o)) => o.row.session_id.as_str(),
                                _ => continue,
                            };
                            match old {
                                Some(h) => {
                                    self.chains.insert(sid.to_string(), h);
                                }
                                None => {
                                    self.chains.remove(sid);
                                }
                            }
                        }
                        Undo::Open(sid, true) => {
                            self.open.insert(sid);
                        }
                        Undo::Open(sid, false) => {
                            self.open.remove(&sid);
                        }
                    }
                }
                for ack in acks {
                    let _ = ack.send(Err(msg.clone()));
                }
                // Start a fresh segment next time; what this one holds so far is intact.
                self.roll();
            }
        }
    }

    /// Seals the active segment and hands it to the roller. Waits while the roller is still
    /// publishing the previous one: at most one sealed segment waits in memory, and when
    /// Parquet cannot keep up, callers wait on the queue rather than memory growing.
    fn roll(&mut self) {
        let Some(seg) = self.active.take() else {
            return;
        };
        self.started = None;
        let segment = seg.id;
        let records = std::mem::take(&mut self.pending);
        let path = match seg.seal() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot fsync sealed journal segment");
                crate::journal::segment_path(&self.journal_dir, segment)
            }
        };
        if records.is_empty() {
            let _ = std::fs::remove_file(&path);
            return;
        }
        if self
            .roll_tx
            .send(RollJob {
                segment,
                path,
                records,
            })
            .is_err()
        {
            tracing::error!(
                segment,
                "roller is gone; segment stays in the journal for recovery"
            );
        }
    }

    fn finish(mut self, ack: Option<Ack>) {
        if !self.open.is_empty() {
            let mut open: Vec<String> = self.open.iter().cloned().collect();
            open.sort();
            let time = now_micros();
            let rows = open
                .into_iter()
                .map(|session_id| {
                    let (tx, _rx) = oneshot::channel();
                    let end = SessionEnd {
                        session_id,
                        time,
                        end_reason: "bastion_shutdown".into(),
                        bytes_in: 0,
                        bytes_out: 0,
                    };
                    let end = Ended {
                        row: end,
                        recording: None,
                    };
                    (Incoming::SessionEnd(end), tx)
                })
                .collect();
            self.write_batch(rows);
        }
        self.roll();
        let Writer { roll_tx, .. } = self;
        drop(roll_tx);
        if let Some(ack) = ack {
            let _ = ack.send(Ok(()));
        }
    }
}

/// The roller thread: publishes sealed segments, retires them, applies retention.
pub(crate) fn run_roller(
    mut roller: Roller,
    jobs: std_mpsc::Receiver<RollJob>,
    retain_days: Option<u32>,
) -> Result<(), RecorderError> {
    let mut first_error = None;
    for job in jobs {
        match roller.roll(job.segment, &job.records) {
            Ok(_) => {
                if let Err(e) = std::fs::remove_file(&job.path) {
                    tracing::error!(segment = %job.path.display(), error = %e, "cannot retire rolled journal segment");
                } else if let Some(parent) = job.path.parent() {
                    if let Err(e) = sync_dir(parent) {
                        tracing::warn!(error = %e, "cannot fsync journal directory");
                    }
                }
            }
            Err(e) => {
                tracing::error!(segment = %job.path.display(), error = %e, "rolling journal segment into parquet failed; it stays in the journal and is retried at the next start");
                first_error.get_or_insert(e);
            }
        }
        // Checked after every roll (a directory listing): rows that arrive late for an expired
        // day are removed with it rather than lingering until the next day.
        if let Some(days) = retain_days {
            let today = crate::roll::day_of(now_micros());
            if let Err(e) = retention::apply(&mut roller, days, &today) {
                tracing::error!(error = %e, "retention failed");
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
