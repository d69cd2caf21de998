//! [`TerminalLineTracker`]: a vt100 screen fed with what the target's shell writes, and the
//! bookkeeping that finds where the current command line starts on it, so that when the user
//! presses Enter the line can be read back exactly as the shell shows it — after tab completion,
//! history recall and line editing — or reported as unreadable.

use super::input_classifier::{InputClassifier, InputEvent};
use super::output_skip::{replacement, skippable_span};
use super::prompt_marker::{MarkerSeen, PromptMarkerRecorder};
use super::screen_text::{
    logical_first_row, logical_last_row, logical_line, row_is_blank, row_is_full, row_prefix,
    ScrollProbe,
};

/// Bytes that erase the line being edited in bash and zsh (emacs keymap): Ctrl-E moves to the end,
/// Ctrl-U kills back to the start of the line.
pub const LINE_KILL_SEQUENCE: &[u8] = b"\x05\x15";

/// Bytes that erase the line being edited in bash/zsh readline (see [`LINE_KILL_SEQUENCE`]).
#[must_use]
pub fn line_kill_sequence() -> &'static [u8] {
    LINE_KILL_SEQUENCE
}

/// Scroll count added when scrolling could not be counted: far beyond any screen, so every
/// remembered position is treated as gone.
const SCROLL_LOST: u64 = 1 << 32;
/// Rows of scrollback kept beyond the screen height, which bounds how many rows of scrolling
/// within one `feed_output` can be counted.
const MIN_SCROLLBACK_ROWS: u16 = 50;
/// The default PS2 continuation prompt.
const CONTINUATION_PROMPT: &str = "> ";

/// What the screen says about the line the user just submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineReading {
    /// The command line as the shell shows it, wrapped rows joined, trailing spaces trimmed.
    Line(String),
    /// Text typed where nothing precedes it on its row, so no prompt was printed for it: input to
    /// a program reading the terminal (`cat`, `read`), keys typed ahead while a command runs (the
    /// shell reads them later), or a line the shell continues. Prompt markers make this rarer.
    /// The session judges it like a command line: it may reach the shell.
    Unprompted(String),
    /// The line cannot be read reliably; the session applies its configured rule.
    Unknown(UnknownReason),
}

/// Why a submitted line could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownReason {
    /// A full-screen program (alternate screen) has the terminal; keys go to it, not to a shell.
    AlternateScreen,
    /// The shell printed its prompt marker while the alternate screen is active: a shell runs on
    /// the alternate screen (a terminal inside a full-screen program, or a user who switched
    /// screens to hide from line tracking). Its lines cannot be told from the program's keys.
    ShellOnAlternateScreen,
    /// Text was typed but nothing was echoed: a password or other secret prompt. Never record it.
    EchoOff,
    /// The shell prints prompt markers, but none appeared since the last line: the input goes to
    /// a program reading the terminal, or to a PS2 continuation of the previous line.
    NotAtShellPrompt,
    /// The prompt is the PS2 continuation prompt (`> `): this line continues the previous one.
    ContinuationPrompt,
    /// The prompt row could not be found again (the screen was cleared, reset or scrolled too far).
    PromptLost,
    /// Text stands outside the logical line that holds the prompt — below it, or the cursor is
    /// elsewhere — so the shell's buffer may hold more than one line (a quoted newline, a
    /// completion listing).
    TextOutsideLine,
}

impl std::fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AlternateScreen => "a full-screen program is running",
            Self::ShellOnAlternateScreen => "a shell prompt is on the alternate screen",
            Self::EchoOff => "input is not echoed (secret prompt)",
            Self::NotAtShellPrompt => "the shell is not at its prompt",
            Self::ContinuationPrompt => "the line continues a previous line",
            Self::PromptLost => "the prompt could not be found on the screen",
            Self::TextOutsideLine => "the screen shows text outside the command line",
        })
    }
}

/// Whether reading a line requires a prompt marker since the line began (once markers are seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkerRule {
    Required,
    NotRequired,
}

/// A line read from the screen.
#[derive(Debug)]
struct ReadLine {
    text: String,
    prompt_prefix: String,
    source: PromptSource,
    /// Nothing but blanks precede the line on its row and no marker placed it.
    unprompted: bool,
}

/// How a line's start on the screen was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptSource {
    /// From the shell's prompt marker.
    Marker,
    /// From the cursor position when the first key of the line was typed.
    InputStart,
    /// Found again by the prompt text after the remembered position was lost (screen cleared).
    Recovered,
}

/// A remembered screen position, with the scroll count at the time so it can follow the text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Anchor {
    row: u16,
    col: u16,
    /// Value of [`TerminalLineTracker::scrolled_rows`] when the position was taken.
    scrolled_at: u64,
    /// Text of the row before `col`; must still be there for the position to be trusted.
    prompt_prefix: String,
}

/// State of the line being typed; reset when a line is submitted or interrupted.
#[derive(Debug, Clone, Default)]
struct LineState {
    /// Where the last accepted prompt marker left the cursor.
    marker_anchor: Option<Anchor>,
    /// Where the cursor stood when the first key of this line arrived.
    input_anchor: Option<Anchor>,
    /// A prompt marker arrived since the line began.
    marker_since_start: bool,
    /// A key other than Enter arrived since the line began.
    keystrokes: bool,
    /// A key or resize after which the shell redraws its prompt happened since the last marker.
    redraw_expected: bool,
    /// A prompt marker arrived on the alternate screen since the line began.
    marker_on_alternate_screen: bool,
    /// Text characters typed since the line began.
    printable_typed: usize,
    /// Output arrived after the first text character was typed.
    output_after_typing: bool,
    /// A key was typed (text or an editing key) and no output arrived since.
    awaiting_echo: bool,
    /// Enter was pressed; the line waits for [`TerminalLineTracker::line_killed`] or the next
    /// input.
    submitted: bool,
    /// Prompt prefix of the position the submitted line was read from.
    read_prompt_prefix: Option<String>,
    /// How the submitted line's start was found.
    read_source: Option<PromptSource>,
}

/// Follows one pty of an interactive session and reads the command line back at Enter.
///
/// Feed it the target's output with [`feed_output`](Self::feed_output) and the user's keys with
/// [`on_input`](Self::on_input). When `on_input` reports [`InputEvent::Enter`], hold the Enter,
/// let the echo of the keys before it arrive (see [`awaiting_echo`](Self::awaiting_echo)), call
/// [`submitted_line`](Self::submitted_line), then forward the Enter and call
/// [`enter_forwarded`](Self::enter_forwarded) — or send [`LINE_KILL_SEQUENCE`] and call
/// [`line_killed`](Self::line_killed).
pub struct TerminalLineTracker {
    parser: vt100::Parser<PromptMarkerRecorder>,
    classifier: InputClassifier,
    /// Rows the screen has scrolled since the start (with [`SCROLL_LOST`] jumps when unknown).
    scrolled_rows: u64,
    /// Scrollback capacity given to vt100, used to count scrolling.
    scrollback_capacity: usize,
    /// The shell has printed at least one prompt marker in this session.
    markers_seen: bool,
    /// Exit status carried by the latest prompt marker.
    exit_status: Option<i32>,
    /// Exit status not yet taken by [`take_exit_status`](Self::take_exit_status).
    unread_exit_status: Option<i32>,
    /// Prompt prefix of the last line that was forwarded.
    last_prompt_prefix: Option<String>,
    line: LineState,
}

impl std::fmt::Debug for TerminalLineTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalLineTracker")
            .field("size", &self.parser.screen().size())
            .field("scrolled_rows", &self.scrolled_rows)
            .field("markers_seen", &self.markers_seen)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl TerminalLineTracker {
    /// A tracker for a pty of `rows` × `cols` (zero is taken as one).
    #[must_use]
    pub fn new(rows: u16, cols: u16) -> Self {
        let (rows, cols) = usable_size(rows, cols);
        let capacity = usize::from(rows.max(MIN_SCROLLBACK_ROWS)) + 2;
        Self {
            parser: vt100::Parser::new_with_callbacks(
                rows,
                cols.max(1),
                capacity,
                PromptMarkerRecorder::default(),
            ),
            classifier: InputClassifier::default(),
            scrolled_rows: 0,
            scrollback_capacity: capacity,
            markers_seen: false,
            exit_status: None,
            unread_exit_status: None,
            last_prompt_prefix: None,
            line: LineState::default(),
        }
    }

    /// The client's window changed size (SSH `window-change`). The shell redraws its line after
    /// a resize; the tracker accepts the prompt marker of that redraw.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let (rows, cols) = usable_size(rows, cols);
        self.parser.screen_mut().set_size(rows, cols);
        self.line.redraw_expected = true;
    }

    /// The emulated screen, e.g. for a recording's snapshot.
    #[must_use]
    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// Feeds bytes the target's shell (or a program it runs) wrote to the terminal.
    ///
    /// A large chunk of many lines has its middle skipped when that cannot change what the
    /// screen shows at its end (see `output_skip`): the emulator then costs little on `cat` of a
    /// big file.
    pub fn feed_output(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let (rows, _) = self.parser.screen().size();
        match skippable_span(bytes, rows) {
            Some((start, end)) => {
                self.feed_segment(bytes.get(..start).unwrap_or_default());
                // The skipped lines scrolled every remembered position off the screen.
                self.scrolled_rows += SCROLL_LOST;
                self.parser.process(&replacement(rows));
                self.feed_segment(bytes.get(end..).unwrap_or_default());
            }
            None => self.feed_segment(bytes),
        }
        if self.line.printable_typed > 0 {
            self.line.output_after_typing = true;
        }
        self.line.awaiting_echo = false;
    }

    /// Processes `bytes`, counting scrolled rows and collecting prompt markers.
    fn feed_segment(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let alternate_before = self.parser.screen().alternate_screen();
        let probe = ScrollProbe::start(self.parser.screen_mut(), self.scrollback_capacity);
        self.parser.callbacks_mut().probe = probe;
        self.parser.process(bytes);
        let scrolled = probe.scrolled(self.parser.screen_mut());
        self.parser.screen_mut().set_scrollback(0);
        let alternate_after = self.parser.screen().alternate_screen();
        let before = self.scrolled_rows;
        self.scrolled_rows += match scrolled {
            Some(rows) if !alternate_before && !alternate_after => rows,
            _ => SCROLL_LOST,
        };
        let markers = std::mem::take(&mut self.parser.callbacks_mut().seen);
        for marker in markers {
            self.on_marker(marker, before);
        }
    }

    /// Records a prompt marker seen during the feed that started at scroll count `before`.
    fn on_marker(&mut self, marker: MarkerSeen, before: u64) {
        self.markers_seen = true;
        if marker.exit_status.is_some() {
            self.exit_status = marker.exit_status;
            self.unread_exit_status = marker.exit_status;
        }
        // Accept the first marker of a line (also when keys were typed ahead), any marker before
        // the first key, and the redraw after Tab, Ctrl-L or a resize. Other markers mid-line are
        // ignored: a program printing one must not move the line's start.
        let accept =
            !self.line.marker_since_start || !self.line.keystrokes || self.line.redraw_expected;
        self.line.marker_since_start = true;
        if marker.on_alternate_screen {
            self.line.marker_on_alternate_screen = true;
            return;
        }
        if !accept {
            return;
        }
        self.line.redraw_expected = false;
        self.line.marker_anchor = Some(Anchor {
            row: marker.row,
            col: marker.col,
            scrolled_at: marker
                .scrolled_in_feed
                .map_or(SCROLL_LOST, |rows| before + rows),
            prompt_prefix: marker.prompt_prefix,
        });
    }

    /// Classifies the user's keys, up to and including the first Enter (see [`InputEvent`]).
    pub fn on_input(&mut self, input: &[u8]) -> Vec<InputEvent> {
        if self.line.submitted {
            // The previous Enter was forwarded: a new line begins.
            self.enter_forwarded();
        }
        let classified = self.classifier.classify(input);
        let mut events = Vec::with_capacity(classified.len());
        for item in classified {
            match &item.event {
                InputEvent::Enter { .. } => {
                    if !self.line.keystrokes && self.line.input_anchor.is_none() {
                        self.mark_input_start();
                    }
                    self.line.submitted = true;
                }
                InputEvent::Interrupt { .. } => {
                    self.line = LineState::default();
                }
                InputEvent::Passthrough(keys) if !self.line.keystrokes && is_end_of_input(keys) => {
                    // Ctrl-D before any other key of a line ends the reader's input (`cat`, the
                    // shell itself) rather than starting a line; it may arrive before the screen
                    // shows the previous Enter's newline, so the cursor now is no line's start.
                    // The next key marks the start, at the prompt that follows.
                }
                InputEvent::Passthrough(_)
                | InputEvent::BracketedPaste { .. }
                | InputEvent::OversizedPaste(_) => {
                    if !self.line.keystrokes {
                        self.mark_input_start();
                    }
                    self.line.keystrokes = true;
                    self.line.redraw_expected |= item.redraw_key;
                    self.line.printable_typed += item.printable;
                    // Editing keys (Backspace, arrows, Ctrl-U, Tab) change the line as much as
                    // text does: their redraw must be on the screen before the line is read.
                    self.line.awaiting_echo = true;
                }
            }
            events.push(item.event);
        }
        events
    }

    /// Remembers the cursor position as the start of the line being typed. [`on_input`]
    /// calls it at the first key of a line; the shell has drawn its prompt by then.
    ///
    /// [`on_input`]: Self::on_input
    pub fn mark_input_start(&mut self) {
        let screen = self.parser.screen();
        let (row, col) = screen.cursor_position();
        self.line.input_anchor = Some(Anchor {
            row,
            col,
            scrolled_at: self.scrolled_rows,
            prompt_prefix: row_prefix(screen, row, col),
        });
    }

    /// Reads the line the user submitted with Enter. Call it after [`InputEvent::Enter`], once
    /// the echo of the keys before it has arrived. Once the shell prints prompt markers, a line
    /// typed where no marker preceded it is [`UnknownReason::NotAtShellPrompt`].
    pub fn submitted_line(&mut self) -> LineReading {
        self.read_submitted(MarkerRule::Required)
    }

    /// Like [`submitted_line`](Self::submitted_line), but finds the line's start by the echo of
    /// the first key alone, markers or not: for input to a program that prompts by itself (a
    /// nested shell without markers, an interpreter) or keys typed ahead of a prompt, which the
    /// session still judges.
    pub fn submitted_line_by_echo(&mut self) -> LineReading {
        self.read_submitted(MarkerRule::NotRequired)
    }

    fn read_submitted(&mut self, rule: MarkerRule) -> LineReading {
        match self.read_line(rule) {
            Ok(read) => {
                self.line.read_prompt_prefix = Some(read.prompt_prefix);
                self.line.read_source = Some(read.source);
                if read.unprompted {
                    LineReading::Unprompted(read.text)
                } else {
                    LineReading::Line(read.text)
                }
            }
            Err(reason) => {
                self.line.read_prompt_prefix = None;
                self.line.read_source = None;
                LineReading::Unknown(reason)
            }
        }
    }

    /// The line being edited right now, read like [`submitted_line_by_echo`] but without
    /// submitting it: e.g. to check that a killed line is really empty before sending Enter.
    ///
    /// [`submitted_line_by_echo`]: Self::submitted_line_by_echo
    #[must_use]
    pub fn current_line(&self) -> LineReading {
        match self.read_line(MarkerRule::NotRequired) {
            Ok(read) if read.unprompted => LineReading::Unprompted(read.text),
            Ok(read) => LineReading::Line(read.text),
            Err(reason) => LineReading::Unknown(reason),
        }
    }

    /// The prompt text before the last line read by [`submitted_line`](Self::submitted_line) or
    /// [`submitted_line_by_echo`](Self::submitted_line_by_echo), e.g. `>>> ` for Python.
    #[must_use]
    pub fn read_prompt_prefix(&self) -> Option<&str> {
        self.line.read_prompt_prefix.as_deref()
    }

    /// Whether the shell printed a prompt marker since the current line began: the line is typed
    /// at a shell prompt that carries the marker, not to a program or a nested shell without it.
    #[must_use]
    pub fn marker_since_line_start(&self) -> bool {
        self.line.marker_since_start
    }

    /// How the start of the last line read by [`submitted_line`](Self::submitted_line) was found.
    #[must_use]
    pub fn prompt_source(&self) -> Option<PromptSource> {
        self.line.read_source
    }

    fn read_line(&self, rule: MarkerRule) -> Result<ReadLine, UnknownReason> {
        let screen = self.parser.screen();
        if screen.alternate_screen() {
            if self.line.marker_on_alternate_screen {
                return Err(UnknownReason::ShellOnAlternateScreen);
            }
            return Err(UnknownReason::AlternateScreen);
        }
        if self.echo_suspected_off() {
            return Err(UnknownReason::EchoOff);
        }
        if rule == MarkerRule::Required && self.markers_seen && !self.line.marker_since_start {
            return Err(UnknownReason::NotAtShellPrompt);
        }
        let marker = self.line.marker_anchor.as_ref();
        let input = self.line.input_anchor.as_ref();
        let located_marker = marker.and_then(|a| self.locate(a));
        let located_input = input.and_then(|a| self.locate(a));
        let chosen = match (located_marker, located_input) {
            // The later of the two: keys typed ahead of the prompt come before the marker, and a
            // prompt with text after its marker puts the first key after it.
            (Some(m), Some(i)) if i > m => Some((i, PromptSource::InputStart)),
            (Some(m), _) => Some((m, PromptSource::Marker)),
            (None, Some(i)) => Some((i, PromptSource::InputStart)),
            (None, None) => None,
        };
        let ((row, col), source) = match chosen {
            Some(found) => found,
            None => {
                // Every remembered position is gone (e.g. Ctrl-L cleared the screen): look for the
                // same prompt at the start of the logical line holding the cursor.
                let prompt = marker.or(input).ok_or(UnknownReason::PromptLost)?;
                (self.recover(prompt)?, PromptSource::Recovered)
            }
        };
        let last_row = self.check_contiguous(row, col)?;
        let prompt_prefix = row_prefix(screen, row, col);
        if !self.markers_seen
            && prompt_prefix == CONTINUATION_PROMPT
            && self.last_prompt_prefix.as_deref() != Some(CONTINUATION_PROMPT)
        {
            return Err(UnknownReason::ContinuationPrompt);
        }
        Ok(ReadLine {
            text: logical_line(screen, row, col, last_row),
            unprompted: source != PromptSource::Marker && prompt_prefix.trim().is_empty(),
            prompt_prefix,
            source,
        })
    }

    /// Where `anchor` is now, if the screen still shows its prompt there.
    fn locate(&self, anchor: &Anchor) -> Option<(u16, u16)> {
        let shift = self.scrolled_rows.checked_sub(anchor.scrolled_at)?;
        let row = u64::from(anchor.row).checked_sub(shift)?;
        let row = u16::try_from(row).ok()?;
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        if row >= rows || anchor.col > cols {
            return None;
        }
        (row_prefix(screen, row, anchor.col) == anchor.prompt_prefix).then_some((row, anchor.col))
    }

    /// The prompt of `anchor` at the start of the logical line holding the cursor, if there.
    fn recover(&self, anchor: &Anchor) -> Result<(u16, u16), UnknownReason> {
        let screen = self.parser.screen();
        let (cursor_row, _) = screen.cursor_position();
        let row = logical_first_row(screen, cursor_row);
        if row_prefix(screen, row, anchor.col) == anchor.prompt_prefix {
            Ok((row, anchor.col))
        } else {
            Err(UnknownReason::PromptLost)
        }
    }

    /// Checks that the line starting at (`row`, `col`) holds the cursor and that nothing is
    /// written below it; returns its last row.
    fn check_contiguous(&self, row: u16, col: u16) -> Result<u16, UnknownReason> {
        let screen = self.parser.screen();
        let (rows, _) = screen.size();
        let last_row = logical_last_row(screen, row);
        let (cursor_row, cursor_col) = screen.cursor_position();
        let cursor_inside = (cursor_row > row || (cursor_row == row && cursor_col >= col))
            && (cursor_row <= last_row
                || (cursor_row == last_row.saturating_add(1)
                    && cursor_col == 0
                    && row_is_full(screen, last_row)));
        if !cursor_inside {
            return Err(UnknownReason::TextOutsideLine);
        }
        let below = last_row.max(cursor_row).saturating_add(1);
        if (below..rows).any(|r| !row_is_blank(screen, r)) {
            return Err(UnknownReason::TextOutsideLine);
        }
        Ok(last_row)
    }

    /// The submitted line was erased with [`LINE_KILL_SEQUENCE`] instead of being run: the
    /// shell stays at the same prompt, so the prompt position is kept.
    pub fn line_killed(&mut self) {
        let kept = LineState {
            marker_anchor: self.line.marker_anchor.take(),
            input_anchor: self.line.input_anchor.take(),
            marker_since_start: self.line.marker_since_start,
            ..LineState::default()
        };
        self.line = kept;
    }

    /// The submitted line's Enter was forwarded to the shell. Call it right when forwarding, before
    /// feeding the output that follows: the next prompt belongs to a new line. (If it was not
    /// called, [`on_input`](Self::on_input) calls it at the next key, too late for that prompt's
    /// marker.)
    pub fn enter_forwarded(&mut self) {
        if let Some(prefix) = self.line.read_prompt_prefix.take() {
            self.last_prompt_prefix = Some(prefix);
        }
        self.line = LineState::default();
    }

    /// Whether a full-screen program is using the alternate screen.
    #[must_use]
    pub fn is_alternate_screen(&self) -> bool {
        self.parser.screen().alternate_screen()
    }

    /// Whether text typed on this line never appeared: the terminal's echo is probably off
    /// (password prompt). Only meaningful once the shell had time to echo.
    #[must_use]
    pub fn echo_suspected_off(&self) -> bool {
        self.line.printable_typed > 0 && !self.line.output_after_typing
    }

    /// Whether a key (text or an editing key) was typed and no output has arrived since: wait
    /// briefly for the shell's redraw before reading a submitted line, or the line is read as it
    /// was before the last keys (and a fast Enter is mistaken for a secret prompt).
    #[must_use]
    pub fn awaiting_echo(&self) -> bool {
        self.line.awaiting_echo
    }

    /// Exit status carried by the latest prompt marker (the previous command's status).
    #[must_use]
    pub fn exit_status(&self) -> Option<i32> {
        self.exit_status
    }

    /// The exit status of the latest prompt marker, once: `None` until another marker with a
    /// status arrives.
    pub fn take_exit_status(&mut self) -> Option<i32> {
        self.unread_exit_status.take()
    }

    /// Whether the shell has printed a prompt marker in this session.
    #[must_use]
    pub fn prompt_markers_seen(&self) -> bool {
        self.markers_seen
    }
}

/// Ctrl-D: the terminal's end-of-file key, and readline's `delete-char` (end of input on an
/// empty line).
const CTRL_D: u8 = 0x04;

/// Whether `keys` are nothing but Ctrl-D.
fn is_end_of_input(keys: &[u8]) -> bool {
    !keys.is_empty() && keys.iter().all(|&b| b == CTRL_D)
}

/// Smallest screen side emulated: vt100 panics wrapping a line on a one-row screen (it scrolls
/// the row it wraps from off the top) and placing a wide character in a one-column screen.
const MIN_EMULATED_SIDE: u16 = 2;

/// A pty size of 0 (clients without a real terminal send `0x0`) means "unknown": shells and
/// readline then assume 80 columns and 24 rows, and so does the tracker. A side of one is
/// emulated as [`MIN_EMULATED_SIDE`].
fn usable_size(rows: u16, cols: u16) -> (u16, u16) {
    let side = |v: u16, unknown: u16| match v {
        0 => unknown,
        v => v.max(MIN_EMULATED_SIDE),
    };
    (side(rows, 24), side(cols, 80))
}
