//! The client → target direction of a shell channel. Keys pass through as they are typed until
//! Enter; Enter is held while the line is read from the screen (once the shell's echo of the
//! keys before it has arrived) and decided through the session gate. Allowed: the Enter goes
//! on. Denied: the line is erased on the target with the line-kill keys, the user is told why,
//! and the shell gets an empty Enter for a fresh prompt once the line is seen to be empty.
//! Step-up: the user is told the request id and can cancel with Ctrl-C. Keys typed while a line
//! is held wait, in order, and are sent after it. A multi-line bracketed paste is held and sent
//! one line at a time, each decided at its own prompt.
use super::line_rules::{rule_for, LineRule};
use super::notices;
use super::terminal_state::{RunningLine, SharedTerminal};
use crate::ssh::action_gate::{Admission, Finished, SessionGate, SshAction};
use protocol::terminal::{
    line_kill_sequence, started_program, InputEvent, LineReading, ProgramKind, UnknownReason,
};
use russh::{client, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Longest wait for the echo of the keys typed before Enter (a secret prompt never echoes).
const ECHO_WAIT: Duration = Duration::from_millis(500);
/// Output must pause this long before the echo counts as complete.
const ECHO_QUIET: Duration = Duration::from_millis(20);
/// Longest wait for the shell to redraw a killed line.
const KILL_ECHO_WAIT: Duration = Duration::from_millis(300);
/// Output must pause this long before a prompt without marker counts as shown.
const PROMPT_QUIET: Duration = Duration::from_millis(50);
/// Reads of one submitted line: an allowed line whose screen text changed before its Enter was
/// sent (a late redraw) is read and decided again, this many times at most.
const MAX_READS: usize = 3;
/// Client bytes held while a line is decided; beyond it the client is not read (flow control).
const MAX_HELD_BYTES: usize = 64 * 1024;
/// Ctrl-C.
const CTRL_C: u8 = 0x03;
/// The terminal's bracketed paste markers.
const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

/// An interpreter the session believes reads the lines typed now.
#[derive(Debug)]
struct Interpreter {
    /// Its name (`python3`).
    name: String,
    /// The shell prompt it was started from; seeing it again means the interpreter ended (used
    /// when the shell prints no markers).
    started_at_prompt: Option<String>,
}

/// What became of a submitted line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Submitted {
    /// Its Enter went to the target.
    Forwarded,
    /// It was refused and erased; `fresh_prompt` when an empty Enter brought a new prompt.
    Killed { fresh_prompt: bool },
    /// The user cancelled it with Ctrl-C while it was held.
    Interrupted,
    /// It was allowed, but the screen no longer shows the text that was decided: read it again.
    Changed,
    /// The client or the target went away.
    Gone,
}

/// What a client message did.
enum Received {
    /// Keys arrived; `interrupt` when they include Ctrl-C.
    Keys { interrupt: bool },
    /// Anything else (resize, signal, EOF).
    Other,
    /// The client closed the channel.
    Closed,
}

/// The client → target side of one shell channel.
pub(super) struct ClientInput {
    pub(super) down_rx: ChannelReadHalf,
    pub(super) up_tx: ChannelWriteHalf<client::Msg>,
    pub(super) term: Arc<SharedTerminal>,
    /// Changes when output was fed to the tracker.
    pub(super) output: watch::Receiver<u64>,
    /// Notices for the output pump to print.
    pub(super) notices: mpsc::Sender<Vec<u8>>,
    pub(super) gate: Arc<SessionGate>,
    /// Bytes the client sent, for the session's counters.
    pub(super) bytes_in: Arc<AtomicU64>,
    /// Fired when the client closes the channel, so the output side ends too.
    client_closed: CancellationToken,
    /// Client bytes not classified yet, in order.
    pub(super) held: Vec<u8>,
    /// The client closed its side or the target is gone: nothing more is forwarded.
    pub(super) closed: bool,
    /// The client ended its input (EOF); passed on once the keys before it are.
    eof_pending: bool,
    /// The interpreter reading the lines, when the session knows of one.
    interpreter: Option<Interpreter>,
    /// Inside a paste too large to check, whose notice was printed.
    dropping_paste: bool,
}

impl ClientInput {
    /// The input side of a channel.
    pub(super) fn new(
        down_rx: ChannelReadHalf,
        up_tx: ChannelWriteHalf<client::Msg>,
        term: Arc<SharedTerminal>,
        notices: mpsc::Sender<Vec<u8>>,
        gate: Arc<SessionGate>,
        bytes_in: Arc<AtomicU64>,
        client_closed: CancellationToken,
    ) -> ClientInput {
        let output = term.subscribe();
        ClientInput {
            down_rx,
            up_tx,
            term,
            output,
            notices,
            gate,
            bytes_in,
            client_closed,
            held: Vec::new(),
            closed: false,
            eof_pending: false,
            interpreter: None,
            dropping_paste: false,
        }
    }

    /// Relays the client's input until it closes the channel or the target is gone.
    pub(super) async fn run(mut self) {
        while !self.closed {
            if self.held.is_empty() {
                if std::mem::take(&mut self.eof_pending) {
                    // Every key typed before the EOF has been decided and sent.
                    let _ = self.up_tx.eof().await;
                }
                let msg = self.down_rx.wait().await;
                self.on_client_msg(msg).await;
                continue;
            }
            self.process_held().await;
        }
    }

    /// Handles one client message: keys go to the held buffer, the rest is forwarded.
    async fn on_client_msg(&mut self, msg: Option<ChannelMsg>) -> Received {
        match msg {
            Some(ChannelMsg::Data { data }) => {
                self.bytes_in
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                self.gate.info.count(data.len() as u64, 0);
                self.held.extend_from_slice(&data);
                Received::Keys {
                    interrupt: data.contains(&CTRL_C),
                }
            }
            Some(ChannelMsg::Eof) => {
                // Not ahead of keys still held (an Enter being decided): the target would drop
                // them after its EOF.
                self.eof_pending = true;
                Received::Other
            }
            Some(ChannelMsg::Signal { signal }) => {
                let _ = self.up_tx.signal(signal).await;
                Received::Other
            }
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                pix_width,
                pix_height,
            }) => {
                let (cols, rows) = super::clamp_size(col_width, row_height);
                self.term.lock().resize(cols, rows);
                let _ = self
                    .up_tx
                    .window_change(col_width, row_height, pix_width, pix_height)
                    .await;
                Received::Other
            }
            Some(ChannelMsg::Close) | None => {
                let _ = self.up_tx.close().await;
                self.closed = true;
                self.client_closed.cancel();
                Received::Closed
            }
            Some(_) => Received::Other,
        }
    }

    /// Classifies the held bytes up to the first Enter and acts on each event.
    async fn process_held(&mut self) {
        let events = self.term.lock().tracker.on_input(&self.held);
        let consumed = match events.last() {
            Some(InputEvent::Enter { offset, .. }) => offset + 1,
            _ => self.held.len(),
        };
        self.held.drain(..consumed.min(self.held.len()));
        for event in events {
            if self.closed {
                return;
            }
            match event {
                InputEvent::Passthrough(keys) => self.send_keys(keys).await,
                InputEvent::Interrupt { .. } => self.send_keys(vec![CTRL_C]).await,
                InputEvent::BracketedPaste { lines, bytes } => self.paste(lines, bytes).await,
                InputEvent::OversizedPaste(bytes) => self.drop_oversized_paste(&bytes).await,
                InputEvent::Enter { byte, .. } => {
                    self.submit(byte).await;
                }
            }
        }
    }

    /// Forwards keys as typed.
    async fn send_keys(&mut self, keys: Vec<u8>) {
        self.term.lock().typed(&keys);
        self.send(keys).await;
    }

    /// Writes bytes to the target; a target that is gone ends the input side.
    async fn send(&mut self, bytes: Vec<u8>) {
        if self.up_tx.data_bytes(bytes).await.is_err() {
            self.closed = true;
        }
    }

    async fn notice(&self, text: Vec<u8>) {
        let _ = self.notices.send(text).await;
    }

    /// Reads, decides and forwards (or refuses) the line submitted with `enter`.
    async fn submit(&mut self, enter: u8) -> Submitted {
        for _ in 0..MAX_READS {
            let submitted = self.read_and_decide(enter).await;
            if submitted != Submitted::Changed {
                return submitted;
            }
        }
        let reason = "the line kept changing while it was decided";
        match self
            .gate
            .admit(SshAction::UnreadableLine { reason }, |_| async {})
            .await
        {
            Admission::Allowed { .. } => self.forward_enter(enter, false).await,
            Admission::Refused { message, .. } => self.refuse(&message).await,
        }
    }

    /// One reading of the submitted line and what follows from it.
    async fn read_and_decide(&mut self, enter: u8) -> Submitted {
        self.wait_for_echo().await;
        let (reading, prompt, at_marked_prompt) = {
            let mut state = self.term.lock();
            let mut reading = state.tracker.submitted_line();
            if reading == LineReading::Unknown(UnknownReason::NotAtShellPrompt) {
                // Not at a marked prompt: a program, a nested shell or interpreter without
                // markers, or keys typed ahead. Read it by its echo; it is still judged.
                reading = state.tracker.submitted_line_by_echo();
            }
            let prompt = state.tracker.read_prompt_prefix().map(str::to_string);
            (reading, prompt, state.tracker.marker_since_line_start())
        };
        self.follow_interpreter(at_marked_prompt, prompt.as_deref());
        let program = self.interpreter.as_ref().map(|i| i.name.clone());
        match rule_for(&reading, program.as_deref()) {
            LineRule::Forward => self.forward_enter(enter, false).await,
            LineRule::ForwardSecret => self.forward_enter(enter, true).await,
            LineRule::Record { program, text } => {
                let action = SshAction::ProgramInput {
                    program,
                    line: text,
                };
                match self.gate.admit(action, |_| async {}).await {
                    Admission::Allowed { .. } => self.forward_enter(enter, false).await,
                    Admission::Refused { message, .. } => self.refuse(&message).await,
                }
            }
            LineRule::Decide(text) => {
                let text = text.to_string();
                self.decide(text, enter, prompt).await
            }
            LineRule::Unreadable(reason) => {
                let reason = reason.to_string();
                let action = SshAction::UnreadableLine { reason: &reason };
                match self.gate.admit(action, |_| async {}).await {
                    Admission::Allowed { .. } => self.forward_enter(enter, false).await,
                    Admission::Refused { message, .. } => self.refuse(&message).await,
                }
            }
        }
    }

    /// Decides whether the line read at Enter still belongs to a running interpreter.
    fn follow_interpreter(&mut self, at_marked_prompt: bool, prompt: Option<&str>) {
        let Some(interpreter) = &self.interpreter else {
            return;
        };
        let back_at_shell = at_marked_prompt
            || (prompt.is_some() && prompt == interpreter.started_at_prompt.as_deref());
        if back_at_shell {
            tracing::debug!(session = %self.gate.session_id, interpreter = %interpreter.name, "interpreter ended");
            self.interpreter = None;
        }
    }

    /// Decides `text` through the gate, waiting for a step-up while reading the client (Ctrl-C
    /// cancels), then forwards the Enter or refuses the line.
    async fn decide(&mut self, text: String, enter: u8, prompt: Option<String>) -> Submitted {
        let cancel = self.gate.cancelled().child_token();
        let (id_tx, mut id_rx) = oneshot::channel::<String>();
        let mut decision = {
            let (gate, line, cancel) = (self.gate.clone(), text.clone(), cancel.clone());
            tokio::spawn(async move {
                let on_hold = |id: String| async move {
                    let _ = id_tx.send(id);
                };
                gate.admit_cancellable(SshAction::ShellLine(&line), on_hold, cancel)
                    .await
            })
        };
        let mut id_told = false;
        let mut interrupted = false;
        let admission = loop {
            tokio::select! {
                done = &mut decision => break done.ok(),
                id = &mut id_rx, if !id_told => {
                    id_told = true;
                    if let Ok(id) = id {
                        self.notice(notices::waiting_for_approval(&id)).await;
                    }
                }
                msg = self.down_rx.wait(), if !self.closed && self.held.len() < MAX_HELD_BYTES => {
                    let before = self.held.len();
                    match self.on_client_msg(msg).await {
                        Received::Keys { interrupt: true } if !interrupted => {
                            interrupted = true;
                            cancel.cancel();
                            // The keys up to Ctrl-C were typed for the held line: dropped with it.
                            if let Some(at) = self.held.iter().skip(before).position(|&b| b == CTRL_C) {
                                self.held.drain(..before + at + 1);
                            }
                        }
                        Received::Closed => cancel.cancel(),
                        _ => {}
                    }
                }
            }
        };
        match admission {
            _ if self.closed => Submitted::Gone,
            Some(Admission::Allowed { seq }) if interrupted => {
                // Approved just as the user cancelled: the cancel wins.
                self.gate
                    .finish(
                        seq,
                        Instant::now(),
                        Finished {
                            outcome: "cancelled",
                            message: Some("cancelled with Ctrl-C".to_string()),
                            ..Default::default()
                        },
                    )
                    .await;
                self.interrupt_line("cancelled with Ctrl-C").await
            }
            Some(Admission::Allowed { seq }) => {
                if !self.line_still_reads(&text).await {
                    // A redraw arrived after the line was read: what the shell holds is not what
                    // was decided. This decision is void; the line is read again.
                    self.gate
                        .finish(
                            seq,
                            Instant::now(),
                            Finished {
                                outcome: "cancelled",
                                message: Some(
                                    "the line changed on the screen before Enter was sent"
                                        .to_string(),
                                ),
                                ..Default::default()
                            },
                        )
                        .await;
                    return Submitted::Changed;
                }
                self.run_line(seq, &text, enter, prompt).await
            }
            Some(Admission::Refused { message, .. }) if interrupted => {
                self.interrupt_line(&message).await
            }
            Some(Admission::Refused { message, .. }) => self.refuse(&message).await,
            None => self.refuse("the line could not be decided").await,
        }
    }

    /// Whether the screen, once output pauses, still shows `text` as the line being submitted.
    async fn line_still_reads(&mut self, text: &str) -> bool {
        self.wait_for_echo().await;
        match self.term.lock().tracker.current_line() {
            LineReading::Line(now) | LineReading::Unprompted(now) => now == text,
            LineReading::Unknown(_) => false,
        }
    }

    /// Forwards the Enter of an allowed line and makes it the running line, whose exit status
    /// the next prompt marker reports.
    async fn run_line(
        &mut self,
        seq: i64,
        text: &str,
        enter: u8,
        prompt: Option<String>,
    ) -> Submitted {
        let program = started_program(text);
        let started_program = program.as_ref().map(|p| match p.kind {
            ProgramKind::Shell => format!("nested shell {}", p.name),
            ProgramKind::Interpreter => format!("interpreter {}", p.name),
        });
        if let Some(p) = program.filter(|p| p.kind == ProgramKind::Interpreter) {
            tracing::debug!(session = %self.gate.session_id, interpreter = %p.name, "interpreter started");
            self.interpreter = Some(Interpreter {
                name: p.name,
                started_at_prompt: prompt,
            });
        }
        let previous = {
            let mut state = self.term.lock();
            let previous = state.running.replace(RunningLine {
                seq,
                started: Instant::now(),
                started_program,
                full_screen: false,
            });
            state.tracker.enter_forwarded();
            state.flush_input();
            state.typed(&[enter]);
            previous
        };
        self.send(vec![enter]).await;
        if let Some(previous) = previous {
            // The shell printed no marker for it: its exit status is not known.
            self.gate
                .finish(
                    previous.seq,
                    previous.started,
                    Finished {
                        outcome: "unknown",
                        message: previous.note(),
                        ..Default::default()
                    },
                )
                .await;
        }
        if self.closed {
            Submitted::Gone
        } else {
            Submitted::Forwarded
        }
    }

    /// Forwards an Enter that is not a decided line (empty line, a full-screen program's key, a
    /// secret); `secret` keeps the typed keys out of the recording.
    async fn forward_enter(&mut self, enter: u8, secret: bool) -> Submitted {
        {
            let mut state = self.term.lock();
            if secret {
                state.drop_secret_input();
            } else {
                state.flush_input();
                state.typed(&[enter]);
            }
            state.tracker.enter_forwarded();
        }
        self.send(vec![enter]).await;
        if self.closed {
            Submitted::Gone
        } else {
            Submitted::Forwarded
        }
    }

    /// Erases the submitted line on the target, tells the user why, and asks the shell for a
    /// fresh prompt once the line shows empty (an Enter on a non-empty line would run it).
    async fn refuse(&mut self, message: &str) -> Submitted {
        {
            let mut state = self.term.lock();
            state.flush_input();
            state.tracker.line_killed();
        }
        self.send(line_kill_sequence().to_vec()).await;
        self.wait_for_redraw().await;
        self.notice(notices::refused(message)).await;
        let empty = {
            let mut state = self.term.lock();
            let empty =
                matches!(state.tracker.current_line(), LineReading::Line(ref t) if t.is_empty());
            if empty {
                state.tracker.enter_forwarded();
            }
            empty
        };
        if empty {
            self.send(b"\r".to_vec()).await;
        }
        if self.closed {
            Submitted::Gone
        } else {
            Submitted::Killed {
                fresh_prompt: empty,
            }
        }
    }

    /// The user cancelled a held line with Ctrl-C: tell them, then send Ctrl-C so the shell
    /// drops the line and prompts again.
    async fn interrupt_line(&mut self, message: &str) -> Submitted {
        self.notice(notices::refused(message)).await;
        self.term.lock().tracker.on_input(&[CTRL_C]);
        self.send(vec![CTRL_C]).await;
        Submitted::Interrupted
    }

    /// A multi-line bracketed paste: passed whole to a full-screen program or an interpreter
    /// (recording each line), otherwise sent to the shell one line at a time, each decided.
    async fn paste(&mut self, lines: Vec<String>, bytes: Vec<u8>) {
        let (alternate, bracketed) = {
            let state = self.term.lock();
            (
                state.tracker.is_alternate_screen(),
                state.tracker.screen().bracketed_paste(),
            )
        };
        if alternate {
            return self.send_keys(bytes).await;
        }
        if let Some(program) = self.interpreter.as_ref().map(|i| i.name.clone()) {
            for line in lines.iter().filter(|l| !l.trim().is_empty()) {
                let action = SshAction::ProgramInput {
                    program: &program,
                    line,
                };
                if let Admission::Refused { message, .. } =
                    self.gate.admit(action, |_| async {}).await
                {
                    return self.notice(notices::refused(&message)).await;
                }
            }
            return self.send_keys(bytes).await;
        }
        let content = bytes.strip_suffix(PASTE_END).unwrap_or(&bytes);
        let ends_with_newline = matches!(content.last(), Some(b'\r' | b'\n'));
        let count = lines.len();
        for (index, line) in lines.into_iter().enumerate() {
            if index > 0 && !self.wait_for_prompt().await {
                if !self.closed {
                    self.notice(notices::paste_dropped(count - index)).await;
                }
                return;
            }
            let typed = if bracketed {
                [PASTE_START, line.as_bytes(), PASTE_END].concat()
            } else {
                line.into_bytes()
            };
            self.term.lock().tracker.on_input(&typed);
            self.send_keys(typed).await;
            if index + 1 == count && !ends_with_newline {
                // The last line stays on the prompt for the user to finish.
                return;
            }
            self.term.lock().tracker.on_input(b"\r");
            match self.submit(b'\r').await {
                Submitted::Forwarded | Submitted::Killed { fresh_prompt: true } => {}
                Submitted::Gone => return,
                Submitted::Killed { .. } | Submitted::Interrupted | Submitted::Changed => {
                    let left = count - index - 1;
                    if left > 0 {
                        self.notice(notices::paste_dropped(left)).await;
                    }
                    return;
                }
            }
        }
    }

    /// A paste too large to hold is not sent (fail closed); the user is told once.
    async fn drop_oversized_paste(&mut self, bytes: &[u8]) {
        if !self.dropping_paste {
            self.dropping_paste = true;
            self.notice(notices::oversized_paste()).await;
        }
        if bytes.ends_with(PASTE_END) {
            self.dropping_paste = false;
        }
    }

    /// Waits until the echo of the keys typed before Enter has arrived and output paused, at
    /// most [`ECHO_WAIT`] (a secret prompt never echoes).
    async fn wait_for_echo(&mut self) {
        let deadline = Instant::now() + ECHO_WAIT;
        loop {
            let (awaiting, quiet_at) = {
                let state = self.term.lock();
                (
                    state.tracker.awaiting_echo(),
                    state.last_output + ECHO_QUIET,
                )
            };
            let now = Instant::now();
            if now >= deadline || (!awaiting && now >= quiet_at) || self.closed {
                return;
            }
            let wake = if awaiting {
                deadline
            } else {
                quiet_at.min(deadline)
            };
            if !self.wait_once(wake).await {
                return;
            }
        }
    }

    /// Waits until output arrives after a line kill and pauses, at most [`KILL_ECHO_WAIT`].
    async fn wait_for_redraw(&mut self) {
        let seen = *self.output.borrow_and_update();
        let deadline = Instant::now() + KILL_ECHO_WAIT;
        loop {
            let quiet_at = self.term.lock().last_output + ECHO_QUIET;
            let now = Instant::now();
            let redrawn = *self.output.borrow() != seen;
            if now >= deadline || (redrawn && now >= quiet_at) || self.closed {
                return;
            }
            let wake = if redrawn {
                quiet_at.min(deadline)
            } else {
                deadline
            };
            if !self.wait_once(wake).await {
                return;
            }
        }
    }

    /// After a line's Enter, waits until the shell shows its next prompt: its marker, or (when
    /// it prints none) output followed by a pause with bracketed paste on again. False when the
    /// user pressed Ctrl-C or the channel closed.
    async fn wait_for_prompt(&mut self) -> bool {
        let seen = *self.output.borrow_and_update();
        loop {
            if self.closed {
                return false;
            }
            let (ready, quiet_at) = {
                let state = self.term.lock();
                let quiet_at = state.last_output + PROMPT_QUIET;
                let output_since = *self.output.borrow() != seen;
                let ready = state.tracker.marker_since_line_start()
                    || (output_since
                        && state.tracker.screen().bracketed_paste()
                        && Instant::now() >= quiet_at);
                (ready, quiet_at)
            };
            if ready {
                return true;
            }
            let wake = quiet_at.max(Instant::now() + PROMPT_QUIET);
            tokio::select! {
                changed = self.output.changed() => {
                    if changed.is_err() {
                        self.closed = true;
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
                msg = self.down_rx.wait(), if !self.closed && self.held.len() < MAX_HELD_BYTES => {
                    match self.on_client_msg(msg).await {
                        Received::Keys { interrupt: true } | Received::Closed => return false,
                        _ => {}
                    }
                }
            }
        }
    }

    /// Waits for output, the clock reaching `wake`, or a client message (kept in order).
    /// False when the target or the client is gone.
    async fn wait_once(&mut self, wake: Instant) -> bool {
        tokio::select! {
            changed = self.output.changed() => {
                if changed.is_err() {
                    self.closed = true;
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
            msg = self.down_rx.wait(), if !self.closed && self.held.len() < MAX_HELD_BYTES => {
                self.on_client_msg(msg).await;
            }
        }
        !self.closed
    }
}
