//! What both directions of a shell channel share: the line tracker fed with the target's output,
//! the asciicast recording, and the allowed command line whose exit status is still to come.
//! One `std::sync::Mutex` guards it and nothing awaits while holding it; a `watch` counter tells
//! the input side that output arrived (an echo, a prompt).
use protocol::terminal::TerminalLineTracker;
use recorder::CastWriter;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::watch;

/// Typed keys held for the recording before they are known not to be a secret.
const MAX_UNRECORDED_INPUT: usize = 64 * 1024;

/// The state of one pty, shared by the output pump and the client input task.
pub(super) struct SharedTerminal {
    state: Mutex<TerminalState>,
    /// Counts output chunks fed to the tracker.
    output_seen: watch::Sender<u64>,
}

/// An allowed command line that was forwarded and has not reported its exit status yet.
#[derive(Debug)]
pub(super) struct RunningLine {
    /// The action's sequence number.
    pub(super) seq: i64,
    /// When its Enter was forwarded.
    pub(super) started: Instant,
    /// What it started, if the session could tell (`nested shell bash`, `interpreter python3`).
    pub(super) started_program: Option<String>,
    /// A full-screen program took the terminal while it ran.
    pub(super) full_screen: bool,
}

impl RunningLine {
    /// The outcome row's message: what the line started, if anything worth noting.
    pub(super) fn note(&self) -> Option<String> {
        match (&self.started_program, self.full_screen) {
            (Some(program), true) => Some(format!("{program}; full-screen program")),
            (Some(program), false) => Some(program.clone()),
            (None, true) => Some("full-screen program".to_string()),
            (None, false) => None,
        }
    }
}

/// Guarded by [`SharedTerminal`].
pub(super) struct TerminalState {
    /// Reads command lines from the screen.
    pub(super) tracker: TerminalLineTracker,
    /// The recording; `None` once writing it failed.
    cast: Option<CastWriter>,
    /// Keys forwarded to the target and not yet in the recording: written when output shows
    /// the terminal echoes, dropped when the line turns out to be a secret (no echo).
    unrecorded_input: Vec<u8>,
    /// The allowed line waiting for its exit status.
    pub(super) running: Option<RunningLine>,
    /// When output last arrived.
    pub(super) last_output: Instant,
}

impl SharedTerminal {
    /// State for a tracker and (optionally) a recording.
    pub(super) fn new(tracker: TerminalLineTracker, cast: Option<CastWriter>) -> SharedTerminal {
        let (output_seen, _) = watch::channel(0);
        SharedTerminal {
            state: Mutex::new(TerminalState {
                tracker,
                cast,
                unrecorded_input: Vec::new(),
                running: None,
                last_output: Instant::now(),
            }),
            output_seen,
        }
    }

    /// Locks the state (a panic elsewhere does not make the state unusable).
    pub(super) fn lock(&self) -> MutexGuard<'_, TerminalState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver that changes each time output was fed.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.output_seen.subscribe()
    }

    /// Tells waiters that output was fed.
    pub(super) fn output_fed(&self) {
        self.output_seen.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl TerminalState {
    /// Feeds target output to the tracker and the recording. Returns the running line and its
    /// exit status when this output carried the shell's prompt marker with a status.
    pub(super) fn on_output(&mut self, bytes: &[u8]) -> Option<(RunningLine, i32)> {
        self.tracker.feed_output(bytes);
        self.last_output = Instant::now();
        // Output after typed keys means the terminal echoes: they are not a secret.
        self.flush_input();
        self.record(|cast| cast.output(bytes));
        if self.tracker.is_alternate_screen() {
            if let Some(running) = self.running.as_mut() {
                running.full_screen = true;
            }
        }
        let status = self.tracker.take_exit_status()?;
        self.running.take().map(|line| (line, status))
    }

    /// Keys forwarded to the target; recorded once they are known to be echoed.
    pub(super) fn typed(&mut self, bytes: &[u8]) {
        if self.unrecorded_input.len() + bytes.len() > MAX_UNRECORDED_INPUT {
            self.flush_input();
        }
        self.unrecorded_input.extend_from_slice(bytes);
    }

    /// The line just submitted was typed without echo: keep it out of the recording.
    pub(super) fn drop_secret_input(&mut self) {
        self.unrecorded_input.clear();
    }

    /// Writes held keys to the recording.
    pub(super) fn flush_input(&mut self) {
        if self.unrecorded_input.is_empty() {
            return;
        }
        let input = std::mem::take(&mut self.unrecorded_input);
        self.record(|cast| cast.input(&input));
    }

    /// Text the bastion printed on the client's terminal (a notice), for the recording.
    pub(super) fn record_notice(&mut self, bytes: &[u8]) {
        self.record(|cast| cast.output(bytes));
    }

    /// The client's window changed size.
    pub(super) fn resize(&mut self, cols: u16, rows: u16) {
        self.tracker.resize(rows, cols);
        self.record(|cast| cast.resize(cols, rows));
    }

    /// Closes the recording.
    pub(super) fn finish_recording(&mut self) {
        self.flush_input();
        if let Some(cast) = self.cast.take() {
            if let Err(e) = cast.finish() {
                tracing::error!(error = %e, "cannot close the terminal recording");
            }
        }
    }

    fn record(
        &mut self,
        write: impl FnOnce(&mut CastWriter) -> Result<(), recorder::RecorderError>,
    ) {
        if let Some(cast) = self.cast.as_mut() {
            if let Err(e) = write(cast) {
                tracing::error!(error = %e, "cannot write the terminal recording; it stops here");
                self.cast = None;
            }
        }
    }
}
