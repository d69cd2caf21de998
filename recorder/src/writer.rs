//! The journal writer: the state every row goes through (chain heads, open sessions, the active
//! segment), kept under one lock in [`crate::Recorder`]. In `os` durability the session's own
//! task appends its row with one `write(2)` while holding the lock — no thread hand-off, so a
//! row costs a lock, its encoding and a system call. In `fsync` durability a dedicated thread
//! ([`run_fsync_writer`]) drains everything queued, appends it with one `write(2)`, syncs once
//! and acknowledges each caller: group commit, since one `fdatasync(2)` per row would cap the
//! bastion at the disk's sync rate. Full segments go to the roller thread ([`run_roller`]),
//! which fsyncs and publishes them as Parquet and deletes the segment, so neither sealing nor
//! encoding Parquet delays a row. One sealed segment may be in the roller's hands at a time
//! (a semaphore permit travels with it); while it is, the active segment keeps growing up to
//! twice `roll_max_rows`, then callers wait for the permit — memory stays bounded and rows are
//! never dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::chain::genesis;
use crate::error::RecorderError;
use crate::journal::{frame, frame_chained, sync_dir, ActiveSegment};
use crate::options::RecorderOptions;
use crate::record::{Chained, Ended, Record};
use crate::retention;
use crate::roll::Roller;
use crate::rows::{now_micros, ActionOutcome, ActionRow, EntryRow, SessionEnd, SessionStart};

/// Most rows written by one `write(2)` in fsync mode.
const MAX_BATCH: usize = 8192;
/// Most journal records reserved at once for a segment's rows.
const MAX_RESERVED_ROWS: usize = 262_144;
/// Ended sessions whose chain head is kept, so late outcomes still extend their chain.
const ENDED_CHAINS_KEPT: usize = 65_536;

/// A row to record.
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

/// What the fsync writer's queue carries.
#[allow(clippy::large_enum_variant)] // see `Incoming`
pub(crate) enum Command {
    Row(Incoming, Ack),
    /// Write what is queued, then stop; the acknowledgement says the queue is drained.
    Drain(oneshot::Sender<()>),
}

/// A sealed segment for the roller, with the permit that lets it be in flight.
pub(crate) struct RollJob {
    pub(crate) segment: ActiveSegment,
    pub(crate) records: Vec<Record>,
    /// Released once the segment is published (or its roll failed).
    pub(crate) permit: OwnedSemaphorePermit,
}

/// How to take back what a batch changed when its write fails.
enum Undo {
    /// The session of `pending[i]` had this chain head before.
    Chain(usize, Option<[u8; 32]>),
    /// The session was (`true`) or was not open before.
    Open(String, bool),
}

/// The writer's state, shared by every [`crate::Recorder`] handle; `None` once shut down.
pub(crate) struct SharedWriter {
    state: Mutex<Option<Writer>>,
    /// One permit: a sealed segment in the roller's hands.
    rolls: Arc<Semaphore>,
}

impl SharedWriter {
    pub(crate) fn new(writer: Writer) -> SharedWriter {
        SharedWriter {
            state: Mutex::new(Some(writer)),
            rolls: Arc::new(Semaphore::new(1)),
        }
    }

    /// The state, or `Closed` after shutdown or after a panic while it was held (fail closed:
    /// a half-updated chain must not be extended).
    fn lock(&self) -> Result<MutexGuard<'_, Option<Writer>>, RecorderError> {
        self.state.lock().map_err(|_| RecorderError::Closed)
    }

    /// Appends one row now, from the caller's task (`os` durability).
    pub(crate) async fn append(&self, row: Incoming) -> Result<(), RecorderError> {
        // The write below never waits, so a task recording in a loop would never yield and
        // could starve the other tasks of its worker thread: count it against tokio's
        // cooperative budget like any I/O.
        tokio::task::consume_budget().await;
        loop {
            {
                let mut guard = self.lock()?;
                let w = guard.as_mut().ok_or(RecorderError::Closed)?;
                if !w.must_roll_first() {
                    let written = w.write(std::iter::once(row), false);
                    self.roll_if_due(w);
                    return written.map_err(RecorderError::JournalWrite);
                }
            }
            // The roller is behind and the active segment is full: wait for it, outside the lock.
            let permit = self
                .rolls
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| RecorderError::Closed)?;
            let mut guard = self.lock()?;
            if let Some(w) = guard.as_mut() {
                if w.must_roll_first() {
                    w.roll(permit);
                }
            }
        }
    }

    /// Writes a batch and syncs it (`fsync` durability, on the writer thread): the result for
    /// every row of the batch.
    fn append_synced(&self, rows: Vec<Incoming>) -> Result<(), String> {
        if self
            .lock()
            .map_err(|e| e.to_string())?
            .as_ref()
            .is_some_and(Writer::must_roll_first)
        {
            if let Ok(permit) = block_on_roll_permit(&self.rolls) {
                let mut guard = self.lock().map_err(|e| e.to_string())?;
                if let Some(w) = guard.as_mut() {
                    if w.must_roll_first() {
                        w.roll(permit);
                    }
                }
            }
        }
        let mut guard = self.lock().map_err(|e| e.to_string())?;
        let w = guard
            .as_mut()
            .ok_or_else(|| RecorderError::Closed.to_string())?;
        let written = w.write(rows, true);
        self.roll_if_due(w);
        written
    }

    /// Hands the active segment to the roller when it is due and the roller is free.
    fn roll_if_due(&self, w: &mut Writer) {
        if w.roll_due() {
            if let Ok(permit) = self.rolls.clone().try_acquire_owned() {
                w.roll(permit);
            }
        }
    }

    /// Rolls an aged segment on an idle bastion (called by the ticker).
    pub(crate) fn tick(&self) {
        if let Ok(mut guard) = self.lock() {
            if let Some(w) = guard.as_mut() {
                self.roll_if_due(w);
            }
        }
    }

    /// Closes sessions still open, rolls what is left, and refuses rows from now on.
    pub(crate) async fn shutdown(&self) -> Result<(), RecorderError> {
        let permit = self
            .rolls
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RecorderError::Closed)?;
        let writer = self.lock()?.take();
        if let Some(w) = writer {
            w.finish(permit);
        }
        Ok(())
    }
}

/// Waits for the roll permit from a thread outside the runtime.
fn block_on_roll_permit(rolls: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit, ()> {
    let sem = rolls.clone();
    futures::executor::block_on(sem.acquire_owned()).map_err(|_| ())
}

/// The fsync writer thread: runs until a drain request or until every sender is gone.
pub(crate) fn run_fsync_writer(shared: Arc<SharedWriter>, mut rx: mpsc::Receiver<Command>) {
    let mut rows = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::with_capacity(MAX_BATCH);
    loop {
        let Some(first) = rx.blocking_recv() else {
            return;
        };
        let mut drained = None;
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Row(r, ack) => {
                    rows.push(r);
                    acks.push(ack);
                }
                Command::Drain(ack) => drained = Some(ack),
            }
            if rows.len() < MAX_BATCH && drained.is_none() {
                next = rx.try_recv().ok();
            }
        }
        if drained.is_some() {
            rx.close();
            while let Ok(c) = rx.try_recv() {
                if let Command::Row(r, ack) = c {
                    rows.push(r);
                    acks.push(ack);
                }
            }
        }
        if !rows.is_empty() {
            let result = shared.append_synced(std::mem::take(&mut rows));
            for ack in acks.drain(..) {
                let _ = ack.send(result.clone());
            }
        }
        if let Some(ack) = drained {
            let _ = ack.send(());
            return;
        }
    }
}

/// The writer's state.
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
    /// The last write failed: start a fresh segment before the next.
    broken: bool,
    roll_tx: std_mpsc::Sender<RollJob>,
    buf: Vec<u8>,
    undo: Vec<Undo>,
}

impl Writer {
    pub(crate) fn new(
        opts: RecorderOptions,
        next_segment: u64,
        roll_tx: std_mpsc::Sender<RollJob>,
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
            broken: false,
            roll_tx,
            buf: Vec::with_capacity(1 << 16),
            undo: Vec::new(),
        }
    }

    fn roll_due(&self) -> bool {
        self.active.is_some()
            // `pending` starts with the segment's checkpoint record, which is not a row.
            && (self.broken
                || self.pending.len().saturating_sub(1) >= self.opts.roll_max_rows
                || self.started.is_some_and(|t| t.elapsed() >= self.opts.roll_max_age))
    }

    /// The active segment must go to the roller before another row is written: the last
    /// write failed, or the segment holds twice its rows because the roller is behind.
    fn must_roll_first(&self) -> bool {
        self.active.is_some()
            && (self.broken
                || self.pending.len().saturating_sub(1)
                    >= self.opts.roll_max_rows.saturating_mul(2))
    }

    /// Turns a row into its journal record, appending the record's frame to `self.buf`.
    /// `index` is the record's place in `pending` (for `Undo::Chain`).
    fn make_record(&mut self, row: Incoming, index: usize) -> Record {
        let rec = match row {
            Incoming::Entry(e) => Record::Entry(e),
            Incoming::SessionStart(s) => {
                let was_open = !self.open.insert(s.session_id.clone());
                self.undo.push(Undo::Open(s.session_id.clone(), was_open));
                Record::SessionStart(s)
            }
            Incoming::SessionEnd(s) => {
                let was_open = self.open.remove(&s.row.session_id);
                self.undo
                    .push(Undo::Open(s.row.session_id.clone(), was_open));
                Record::SessionEnd(s)
            }
            Incoming::Action(mut a) => {
                if a.node.is_empty() {
                    a.node.clone_from(&self.opts.node);
                }
                let (prev, hash) = self.extend_chain(&a, index);
                return Record::Action(Chained {
                    row: a,
                    prev_hash: prev,
                    hash,
                });
            }
            Incoming::Outcome(o) => {
                let (prev, hash) = self.extend_chain(&o, index);
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
    ) -> ([u8; 32], [u8; 32]) {
        let sid = row.session_id();
        let old = self.chains.get(sid).copied();
        let prev = old.unwrap_or_else(|| genesis(sid));
        let hash = frame_chained(row, &prev, &mut self.buf);
        self.undo.push(Undo::Chain(index, old));
        match self.chains.get_mut(sid) {
            Some(head) => *head = hash,
            None => {
                self.chains.insert(sid.to_string(), hash);
            }
        }
        (prev, hash)
    }

    /// Starts a segment when none is active: its first record is the checkpoint of the
    /// sessions open at that point.
    fn ensure_segment(&mut self) -> Result<(), String> {
        if self.active.is_some() {
            return Ok(());
        }
        let seg = ActiveSegment::create(&self.journal_dir, self.next_segment).map_err(|e| {
            let msg = e.to_string();
            tracing::error!(error = %msg, "cannot create journal segment; refusing rows");
            msg
        })?;
        self.next_segment += 1;
        self.active = Some(seg);
        // The segment's rows, reserved once rather than regrown (and copied) as they arrive;
        // capped so a huge `roll_max_rows` does not reserve upfront.
        self.pending
            .reserve((self.opts.roll_max_rows + 1).min(MAX_RESERVED_ROWS));
        self.started = Some(Instant::now());
        let mut open: Vec<String> = self.open.iter().cloned().collect();
        open.sort();
        let cp = Record::Checkpoint(open);
        frame(&cp, &mut self.buf);
        self.pending.push(cp);
        Ok(())
    }

    /// Appends rows to the active segment with one `write(2)` (and one `fdatasync(2)` when
    /// `sync`). On failure nothing of the batch counts: chain heads and open sessions are put
    /// back, and the next row starts a fresh segment.
    fn write(
        &mut self,
        rows: impl IntoIterator<Item = Incoming>,
        sync: bool,
    ) -> Result<(), String> {
        self.buf.clear();
        self.undo.clear();
        let before = self.pending.len();
        self.ensure_segment()?;
        let mut ended = 0;
        for row in rows {
            if let Incoming::SessionEnd(s) = &row {
                self.ended.push_back(s.row.session_id.clone());
                ended += 1;
            }
            let rec = self.make_record(row, self.pending.len());
            self.pending.push(rec);
        }
        let result = match self.active.as_mut() {
            Some(seg) => seg.append(&self.buf, sync),
            None => Err(RecorderError::Closed),
        };
        match result {
            Ok(()) => {
                while self.ended.len() > ENDED_CHAINS_KEPT {
                    if let Some(old) = self.ended.pop_front() {
                        if !self.open.contains(&old) {
                            self.chains.remove(&old);
                        }
                    }
                }
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(error = %msg, rows = self.pending.len() - before, "journal write failed; refusing rows");
                for _ in 0..ended {
                    self.ended.pop_back();
                }
                let undo = std::mem::take(&mut self.undo);
                for u in undo.into_iter().rev() {
                    match u {
                        Undo::Chain(i, old) => {
                            let sid = match self.pending.get(i) {
                                Some(Record::Action(a)) => a.row.session_id.clone(),
                                Some(Record::Outcome(o)) => o.row.session_id.clone(),
                                _ => continue,
                            };
                            match old {
                                Some(h) => {
                                    self.chains.insert(sid, h);
                                }
                                None => {
                                    self.chains.remove(&sid);
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
                // A segment created for this batch holds only its checkpoint: keep that.
                self.pending.truncate(before.max(1));
                // Start a fresh segment next time; what this one holds so far is intact.
                self.broken = true;
                Err(msg)
            }
        }
    }

    /// Hands the active segment to the roller, which seals (fsyncs) and publishes it.
    fn roll(&mut self, permit: OwnedSemaphorePermit) {
        let Some(segment) = self.active.take() else {
            return;
        };
        self.started = None;
        self.broken = false;
        let records = std::mem::take(&mut self.pending);
        if records.iter().all(|r| matches!(r, Record::Checkpoint(_))) {
            let _ = std::fs::remove_file(&segment.path);
            return;
        }
        let id = segment.id;
        if self
            .roll_tx
            .send(RollJob {
                segment,
                records,
                permit,
            })
            .is_err()
        {
            tracing::error!(
                segment = id,
                "roller is gone; segment stays in the journal for recovery"
            );
        }
    }

    /// Ends the sessions still open (`bastion_shutdown`) and rolls what is left.
    fn finish(mut self, permit: OwnedSemaphorePermit) {
        if !self.open.is_empty() {
            let mut open: Vec<String> = self.open.iter().cloned().collect();
            open.sort();
            let time = now_micros();
            let rows: Vec<Incoming> = open
                .into_iter()
                .map(|session_id| {
                    Incoming::SessionEnd(Ended {
                        row: SessionEnd {
                            session_id,
                            time,
                            end_reason: "bastion_shutdown".into(),
                            bytes_in: 0,
                            bytes_out: 0,
                        },
                        recording: None,
                    })
                })
                .collect();
            let sync = self.opts.durability == crate::options::Durability::Fsync;
            let _ = self.write(rows, sync);
        }
        self.roll(permit);
        // Dropping `self` drops the roller's sender: it ends after the last job.
    }
}

/// The roller thread: seals and publishes segments, retires them, applies retention.
pub(crate) fn run_roller(
    mut roller: Roller,
    jobs: std_mpsc::Receiver<RollJob>,
    retain_days: Option<u32>,
) -> Result<(), RecorderError> {
    let mut first_error = None;
    for job in jobs {
        let id = job.segment.id;
        let path = job.segment.path.clone();
        if let Err(e) = job.segment.seal() {
            tracing::error!(error = %e, "cannot fsync sealed journal segment");
        }
        match roller.roll(id, &job.records) {
            Ok(_) => {
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::error!(segment = %path.display(), error = %e, "cannot retire rolled journal segment");
                } else if let Some(parent) = path.parent() {
                    if let Err(e) = sync_dir(parent) {
                        tracing::warn!(error = %e, "cannot fsync journal directory");
                    }
                }
            }
            Err(e) => {
                tracing::error!(segment = %path.display(), error = %e, "rolling journal segment into parquet failed; it stays in the journal and is retried at the next start");
                first_error.get_or_insert(e);
            }
        }
        drop(job.permit);
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
