//! Interactive shells (issue 8): a `shell` request with a pty is relayed here instead of blindly.
//! The target's output feeds a [`TerminalLineTracker`] (resized on window-change) and an
//! asciicast recording; the user's keys pass through until Enter, which is held while the
//! command line is read from the screen and decided — allowed lines go on, denied ones are
//! erased with a red notice, step-ups wait for approval (see `client_input`). Each decided line
//! is an `actions` row of kind `shell`; its exit status comes from the prompt marker the bastion
//! asks bash to print (`PROMPT_COMMAND`, see [`shell_env`]), when the target accepts it.
//!
//! Parts: `terminal_state` (tracker, recording and the running line, shared by both directions),
//! `output_pump` (target → client), `client_input` (client → target, decisions), `line_rules`
//! (what to do with each kind of reading), `notices` (what the user is told).
//!
//! The recording is `<audit_dir>/recordings/date=YYYY-MM-DD/<session_id>-<channel>.cast`:
//! output, and input except keys typed while the terminal does not echo.
mod client_input;
mod line_rules;
mod notices;
mod output_pump;
mod terminal_state;

use super::action_gate::{Finished, SessionGate};
use output_pump::CLIENT_CLOSED_FIRST;
use protocol::terminal::{TerminalLineTracker, BASH_PROMPT_COMMAND};
use russh::{client, server, ChannelReadHalf, ChannelWriteHalf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use terminal_state::SharedTerminal;
use tokio_util::sync::CancellationToken;

/// Notices waiting for the output pump.
const NOTICE_QUEUE: usize = 16;
/// Largest screen emulated; a client asking for more is emulated at this size (memory bound).
const MAX_ROWS: u16 = 500;
const MAX_COLS: u16 = 1000;

/// The terminal the client asked for in `pty-req` (and its size at the time of `shell`).
#[derive(Debug, Clone)]
pub(super) struct PtySize {
    /// `TERM`.
    pub(super) term: String,
    /// Columns.
    pub(super) cols: u32,
    /// Rows.
    pub(super) rows: u32,
}

/// The environment to request on the upstream shell channel: the client's, with the bastion's
/// `PROMPT_COMMAND` (which prints the prompt marker) in place of any the client sent.
pub(super) fn shell_env(mut env: Vec<(String, String)>) -> Vec<(String, String)> {
    env.retain(|(name, _)| name != "PROMPT_COMMAND");
    env.push((
        "PROMPT_COMMAND".to_string(),
        BASH_PROMPT_COMMAND.to_string(),
    ));
    env
}

/// A window size as the emulator and the recording take it: at most [`MAX_COLS`]×[`MAX_ROWS`];
/// a side of 0 (a client whose terminal nobody sized, or whose input is not a terminal, sends
/// `0x0`) is what shells then assume, 80×24.
fn clamp_size(cols: u32, rows: u32) -> (u16, u16) {
    let clamp = |v: u32, unknown: u16, max: u16| match v {
        0 => unknown,
        v => u16::try_from(v).unwrap_or(max).clamp(1, max),
    };
    (clamp(cols, 80, MAX_COLS), clamp(rows, 24, MAX_ROWS))
}

/// Relays a pty shell whose upstream channel is open and running; returns what happened to the
/// shell (the session's `shell` action).
pub(super) async fn run(
    down_rx: ChannelReadHalf,
    down_tx: ChannelWriteHalf<server::Msg>,
    up_rx: ChannelReadHalf,
    up_tx: ChannelWriteHalf<client::Msg>,
    handle: server::Handle,
    gate: Arc<SessionGate>,
    pty: PtySize,
) -> Finished {
    let (cols, rows) = clamp_size(pty.cols, pty.rows);
    let channel = u32::from(down_tx.id());
    let cast = match open_recording(&gate, channel, cols, rows, &pty.term) {
        Ok(cast) => Some(cast),
        Err(e) if gate.config().recorder.allow_on_error => {
            tracing::error!(error = %e, session = %gate.session_id, "cannot record the terminal: allowed by on_recorder_error");
            None
        }
        Err(e) => {
            let message = format!("the terminal cannot be recorded ({e}); refused");
            tracing::error!(session = %gate.session_id, "{message}");
            let _ = up_tx.close().await;
            super::session_channel::refuse(&down_tx, &message).await;
            return Finished {
                outcome: "error",
                message: Some(message),
                ..Default::default()
            };
        }
    };
    let term = Arc::new(SharedTerminal::new(
        TerminalLineTracker::new(rows, cols),
        cast,
    ));
    let (notices_tx, notices_rx) = tokio::sync::mpsc::channel(NOTICE_QUEUE);
    let bytes_in = Arc::new(AtomicU64::new(0));
    let client_closed = CancellationToken::new();
    let input = client_input::ClientInput::new(
        down_rx,
        up_tx,
        term.clone(),
        notices_tx,
        gate.clone(),
        bytes_in.clone(),
        client_closed.clone(),
    );
    let input_task = tokio::spawn(input.run());
    let mut done = output_pump::run(
        up_rx,
        Arc::new(down_tx),
        handle,
        term.clone(),
        gate.clone(),
        notices_rx,
        client_closed,
    )
    .await;
    // The target is done: whatever the client still sends has nowhere to go.
    input_task.abort();
    let last = {
        let mut state = term.lock();
        state.finish_recording();
        state.running.take()
    };
    if let Some(line) = last {
        // The shell ended while this line ran (typically `exit`): its status is the shell's. A
        // client that closed the channel first hung up on it (the target's shell got SIGHUP).
        let (outcome, message) = match done.exit_status {
            Some(_) => (done.outcome, line.note()),
            None if done.message.as_deref() == Some(output_pump::CLIENT_CLOSED_FIRST) => {
                let note = line.note().map_or(String::new(), |n| format!("{n}; "));
                ("cancelled", Some(format!("{note}{CLIENT_CLOSED_FIRST}")))
            }
            None => ("unknown", line.note()),
        };
        gate.finish(
            line.seq,
            line.started,
            Finished {
                outcome,
                exit_status: done.exit_status,
                message,
                ..Default::default()
            },
        )
        .await;
    }
    done.bytes_in = bytes_in.load(Ordering::Relaxed);
    done
}

/// Creates the channel's asciicast file under the audit directory.
fn open_recording(
    gate: &SessionGate,
    channel: u32,
    cols: u16,
    rows: u16,
    term: &str,
) -> Result<recorder::CastWriter, recorder::RecorderError> {
    let relative =
        recorder::recording_rel_path(&gate.session_id, channel, chrono::Utc::now().date_naive());
    let path = gate.config().server.audit_dir.join(&relative);
    let cast =
        recorder::CastWriter::new(&path, cols, rows, &[("TERM".to_string(), term.to_string())])?;
    gate.note_recording(relative.display().to_string());
    Ok(cast)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_command_replaces_the_clients() {
        let env = shell_env(vec![
            ("LANG".into(), "C.UTF-8".into()),
            ("PROMPT_COMMAND".into(), "echo hidden".into()),
        ]);
        assert_eq!(env.len(), 2);
        assert_eq!(env[0].0, "LANG");
        assert_eq!(
            env[1],
            ("PROMPT_COMMAND".into(), BASH_PROMPT_COMMAND.into())
        );
    }

    #[test]
    fn window_sizes_are_bounded() {
        assert_eq!(clamp_size(80, 24), (80, 24));
        assert_eq!(clamp_size(0, 0), (80, 24));
        assert_eq!(clamp_size(1, 1), (1, 1));
        assert_eq!(clamp_size(u32::MAX, 100_000), (MAX_COLS, MAX_ROWS));
    }
}
