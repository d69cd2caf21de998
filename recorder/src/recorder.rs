//! The handle sessions use ([`Recorder`]) and the background task the binary owns
//! ([`RecorderTask`]).

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::error::RecorderError;
use crate::manifest::{load_signing_key, ManifestChain};
use crate::options::{Durability, RecorderOptions};
use crate::record::Ended;
use crate::recovery::recover;
use crate::roll::Roller;
use crate::rows::{ActionOutcome, ActionRow, EntryRow, SessionEnd, SessionStart};
use crate::writer::{run_fsync_writer, run_roller, Command, Incoming, SharedWriter, Writer};

/// A cheap, cloneable handle: every call returns once its row is in the journal (written to the
/// OS, and fsynced in [`crate::Durability::Fsync`] mode), or with an error if it could not be
/// written — the caller must then refuse the action. When the roller (or, in fsync mode, the
/// disk) cannot keep up, calls wait.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<SharedWriter>,
    /// The group-commit writer thread's queue, in fsync mode only.
    fsync_tx: Option<mpsc::Sender<Command>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("fsync", &self.fsync_tx.is_some())
            .finish_non_exhaustive()
    }
}

/// The roller (and in fsync mode the writer thread) behind every [`Recorder`] handle; call
/// [`RecorderTask::shutdown`] last, after the sessions have ended.
#[derive(Debug)]
pub struct RecorderTask {
    recorder: Recorder,
    writer: Option<std::thread::JoinHandle<()>>,
    roller: Option<std::thread::JoinHandle<Result<(), RecorderError>>>,
    ticker: tokio::task::JoinHandle<()>,
}

fn validate(opts: &RecorderOptions) -> Result<(), RecorderError> {
    let node_ok = !opts.node.is_empty()
        && opts
            .node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !opts.node.starts_with('.');
    if !node_ok {
        return Err(RecorderError::Options(format!(
            "node name {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'",
            opts.node
        )));
    }
    if opts.queue_capacity == 0 {
        return Err(RecorderError::Options(
            "queue_capacity must be at least 1".into(),
        ));
    }
    if opts.roll_max_rows == 0 {
        return Err(RecorderError::Options(
            "roll_max_rows must be at least 1".into(),
        ));
    }
    if opts.roll_max_age.is_zero() {
        return Err(RecorderError::Options(
            "roll_max_age must be longer than zero".into(),
        ));
    }
    Ok(())
}

impl Recorder {
    /// Creates the audit directory if needed, recovers what a previous run left in the journal,
    /// then starts the writer. Fails if the directory is not writable.
    pub async fn open(opts: RecorderOptions) -> Result<(Recorder, RecorderTask), RecorderError> {
        validate(&opts)?;
        let journal = opts.dir.join("journal");
        fs::create_dir_all(&journal).map_err(RecorderError::io(&journal))?;
        // Prove the directory is writable now rather than at the first action.
        let probe = journal.join(".write-probe");
        fs::write(&probe, b"ok").map_err(RecorderError::io(&probe))?;
        fs::remove_file(&probe).map_err(RecorderError::io(&probe))?;
        let key = opts
            .signing_key
            .as_deref()
            .map(load_signing_key)
            .transpose()?;
        let dir = opts.dir.clone();
        let node = opts.node.clone();
        let (roller, next_segment) = tokio::task::spawn_blocking(move || {
            let manifest = ManifestChain::load(&dir, key)?;
            let mut roller = Roller {
                dir,
                node,
                manifest,
            };
            let recovered = recover(&mut roller)?;
            Ok::<_, RecorderError>((roller, recovered.next_segment))
        })
        .await
        .map_err(|e| RecorderError::Options(format!("recovery task failed: {e}")))??;

        let (roll_tx, roll_rx) = std::sync::mpsc::channel();
        let retain = opts.retain_days;
        let roller = std::thread::Builder::new()
            .name("recorder-roller".into())
            .spawn(move || run_roller(roller, roll_rx, retain))
            .map_err(|e| RecorderError::Options(format!("cannot start roller thread: {e}")))?;
        let tick = (opts.roll_max_age / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let fsync = opts.durability == Durability::Fsync;
        let queue = opts.queue_capacity;
        let shared = Arc::new(SharedWriter::new(Writer::new(opts, next_segment, roll_tx)));
        let (fsync_tx, writer) = if fsync {
            let (tx, rx) = mpsc::channel(queue);
            let for_thread = shared.clone();
            let writer = std::thread::Builder::new()
                .name("recorder-writer".into())
                .spawn(move || run_fsync_writer(for_thread, rx))
                .map_err(|e| RecorderError::Options(format!("cannot start writer thread: {e}")))?;
            (Some(tx), Some(writer))
        } else {
            (None, None)
        };
        // The ticker holds the state weakly: it ends once every handle is gone.
        let weak = Arc::downgrade(&shared);
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            loop {
                interval.tick().await;
                match weak.upgrade() {
                    Some(shared) => shared.tick(),
                    None => return,
                }
            }
        });
        let recorder = Recorder { shared, fsync_tx };
        Ok((
            recorder.clone(),
            RecorderTask {
                recorder,
                writer,
                roller: Some(roller),
                ticker,
            },
        ))
    }

    async fn send(&self, row: Incoming) -> Result<(), RecorderError> {
        let Some(tx) = &self.fsync_tx else {
            return self.shared.append(row).await;
        };
        let (ack, done) = oneshot::channel();
        tx.send(Command::Row(row, ack))
            .await
            .map_err(|_| RecorderError::Closed)?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(RecorderError::JournalWrite(reason)),
            Err(_) => Err(RecorderError::Closed),
        }
    }

    /// Records an account-entry attempt.
    pub async fn entry(&self, row: EntryRow) -> Result<(), RecorderError> {
        self.send(Incoming::Entry(row)).await
    }

    /// Records that a session started.
    pub async fn session_start(&self, row: SessionStart) -> Result<(), RecorderError> {
        self.send(Incoming::SessionStart(row)).await
    }

    /// Records that a session ended.
    pub async fn session_end(&self, row: SessionEnd) -> Result<(), RecorderError> {
        self.session_end_with_recording(row, None).await
    }

    /// Records that a session ended, with the path of its terminal recording relative to the
    /// audit directory ([`crate::recording_rel_path`]; the first channel's when there are
    /// several — `bastion audit replay` finds the others next to it). It becomes the
    /// `recording` column of the `sessions` view.
    pub async fn session_end_with_recording(
        &self,
        row: SessionEnd,
        recording: Option<String>,
    ) -> Result<(), RecorderError> {
        self.send(Incoming::SessionEnd(Ended { row, recording }))
            .await
    }

    /// Records a decided action; forward the action only after this returns `Ok`.
    pub async fn action(&self, row: ActionRow) -> Result<(), RecorderError> {
        self.send(Incoming::Action(row)).await
    }

    /// Records an action's outcome (joined to the action on `(session_id, seq)`).
    pub async fn outcome(&self, row: ActionOutcome) -> Result<(), RecorderError> {
        self.send(Incoming::Outcome(row)).await
    }
}

impl Drop for RecorderTask {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

impl RecorderTask {
    /// Writes what is queued, closes sessions still open (end reason `bastion_shutdown`), rolls
    /// everything into Parquet and waits for the files to be published. Later calls on
    /// [`Recorder`] handles fail with [`RecorderError::Closed`].
    pub async fn shutdown(mut self) -> Result<(), RecorderError> {
        if let Some(tx) = &self.recorder.fsync_tx {
            let (ack, done) = oneshot::channel();
            if tx.send(Command::Drain(ack)).await.is_ok() {
                let _ = done.await;
            }
        }
        self.ticker.abort();
        self.recorder.shared.shutdown().await?;
        let writer = self.writer.take();
        let roller = self.roller.take();
        tokio::task::spawn_blocking(move || {
            if let Some(w) = writer {
                w.join().map_err(|_| {
                    RecorderError::Options("recorder writer thread panicked".into())
                })?;
            }
            match roller {
                Some(r) => r.join().map_err(|_| {
                    RecorderError::Options("recorder roller thread panicked".into())
                })?,
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| RecorderError::Options(format!("shutdown task failed: {e}")))?
    }
}
