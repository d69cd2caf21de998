//! Classifies the bytes a user types into an interactive session: the keys that submit a line
//! (Enter), interrupt it (Ctrl-C), bracketed pastes of several lines, and everything else, which
//! passes through. Pastes are assembled across chunks and bounded; nothing here reads the screen.

/// What the terminal sends when a paste starts, once the shell enabled bracketed paste.
const PASTE_START: &[u8] = b"\x1b[200~";
/// What the terminal sends when a paste ends.
const PASTE_END: &[u8] = b"\x1b[201~";
/// Largest bracketed paste held in memory; beyond it the paste is reported as oversized.
pub const MAX_PASTE_BYTES: usize = 1 << 20;

/// Carriage return: the Enter key in raw mode.
const CR: u8 = b'\r';
/// Line feed (Ctrl-J): readline accepts the line on it too.
const LF: u8 = b'\n';
/// Ctrl-O: bash's `operate-and-get-next` accepts the line as well, so it counts as Enter.
const CTRL_O: u8 = 0x0f;
/// Ctrl-C.
const CTRL_C: u8 = 0x03;
/// Tab: readline may print a completion listing and redraw the prompt.
const TAB: u8 = b'\t';
/// Ctrl-L: readline clears the screen and redraws the prompt.
const CTRL_L: u8 = 0x0c;
/// Escape, which starts a key sequence such as an arrow key.
const ESC: u8 = 0x1b;
/// Ctrl-V: readline's `quoted-insert` (and the tty's `lnext`) takes the next key literally, so a
/// CR or LF after it inserts a newline into the line instead of submitting it.
const CTRL_V: u8 = 0x16;

/// One classified piece of the user's input. The bytes of all events, in order, are exactly the
/// input consumed; forward them in order unless the session decides otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    /// Bytes the shell may receive as they are (keystrokes, arrow keys, a one-line paste).
    Passthrough(Vec<u8>),
    /// A key that submits the line: CR, LF or Ctrl-O. `offset` is its index in the chunk given to
    /// [`on_input`](super::TerminalLineTracker::on_input); classification stops after it, so the
    /// bytes after `offset` must be passed again once the line has been decided.
    Enter {
        /// Index of the key in the chunk.
        offset: usize,
        /// The byte itself (`\r`, `\n` or `0x0f`), to forward if the line is allowed.
        byte: u8,
    },
    /// Ctrl-C; the byte is `0x03`, to forward as it is. The tracker starts a new line.
    Interrupt {
        /// Index of the key in the chunk.
        offset: usize,
    },
    /// A bracketed paste holding more than one line, held back whole so the session can decide
    /// each line before forwarding `bytes` (which include the paste markers seen in this call).
    BracketedPaste {
        /// The pasted lines, without their line endings.
        lines: Vec<String>,
        /// The raw bytes of the paste to forward if every line is allowed.
        bytes: Vec<u8>,
    },
    /// Part of a bracketed paste larger than [`MAX_PASTE_BYTES`]; it cannot be decided line by
    /// line, so the session should drop it (fail closed). Reported until the paste ends.
    OversizedPaste(Vec<u8>),
}

/// An event plus what the tracker needs to know about the keys in it.
#[derive(Debug)]
pub(crate) struct ClassifiedInput {
    /// The event reported to the caller.
    pub(crate) event: InputEvent,
    /// How many of its bytes the shell would echo as text (escape sequences excluded).
    pub(crate) printable: usize,
    /// Whether it holds a key after which readline may redraw the prompt (Tab, Ctrl-L).
    pub(crate) redraw_key: bool,
}

/// Where the classifier is inside an escape sequence, to avoid counting `[A` of an arrow key as
/// typed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EscapeState {
    Ground,
    Escape,
    Csi,
    Ss3,
}

/// Whether the classifier is inside a bracketed paste.
#[derive(Debug)]
enum PasteState {
    /// Outside a paste; `start_matched` bytes of [`PASTE_START`] were seen last (possibly in an
    /// earlier chunk, already forwarded).
    Outside { start_matched: usize },
    /// Inside a paste. `raw` holds the bytes not yet reported, `content_start` where the pasted
    /// text begins in `raw`.
    Inside {
        raw: Vec<u8>,
        content_start: usize,
        oversized: bool,
    },
}

/// Splits the user's keystrokes into [`InputEvent`]s, keeping state across chunks.
#[derive(Debug)]
pub(crate) struct InputClassifier {
    paste: PasteState,
    escape: EscapeState,
    /// The last key was Ctrl-V: the next one is inserted literally (possibly in the next chunk).
    literal_next: bool,
}

impl Default for InputClassifier {
    fn default() -> Self {
        Self {
            paste: PasteState::Outside { start_matched: 0 },
            escape: EscapeState::Ground,
            literal_next: false,
        }
    }
}

impl InputClassifier {
    /// Classifies `input`, stopping after the first Enter.
    pub(crate) fn classify(&mut self, input: &[u8]) -> Vec<ClassifiedInput> {
        let mut out = Vec::new();
        let mut run = Run::default();
        let mut index = 0;
        while index < input.len() {
            let rest = input.get(index..).unwrap_or_default();
            if let PasteState::Inside { .. } = self.paste {
                index += self.continue_paste(rest, &mut out);
                continue;
            }
            let Some(&byte) = rest.first() else { break };
            if self.literal_next {
                // Quoted insert: shown (`^J`, `^C` or a line break), never Enter or Ctrl-C.
                self.literal_next = false;
                run.bytes.push(byte);
                run.printable += 1;
                index += 1;
                continue;
            }
            if self.advance_paste_start(byte) {
                // The start marker's bytes from this chunk belong to the paste, not the run.
                let in_chunk = run.bytes.len().min(PASTE_START.len() - 1);
                let marker_from_chunk = run.bytes.split_off(run.bytes.len() - in_chunk);
                run.flush(&mut out);
                let mut raw = marker_from_chunk;
                raw.push(byte);
                let content_start = raw.len();
                self.paste = PasteState::Inside {
                    raw,
                    content_start,
                    oversized: false,
                };
                self.escape = EscapeState::Ground;
                index += 1;
                continue;
            }
            match byte {
                CR | LF | CTRL_O => {
                    run.flush(&mut out);
                    out.push(ClassifiedInput {
                        event: InputEvent::Enter {
                            offset: index,
                            byte,
                        },
                        printable: 0,
                        redraw_key: false,
                    });
                    self.escape = EscapeState::Ground;
                    return out;
                }
                CTRL_C => {
                    run.flush(&mut out);
                    out.push(ClassifiedInput {
                        event: InputEvent::Interrupt { offset: index },
                        printable: 0,
                        redraw_key: false,
                    });
                    self.escape = EscapeState::Ground;
                }
                _ => {
                    if self.escape_step(byte) {
                        run.printable += 1;
                    }
                    self.literal_next = byte == CTRL_V;
                    run.redraw_key |= byte == TAB || byte == CTRL_L;
                    run.bytes.push(byte);
                }
            }
            index += 1;
        }
        run.flush(&mut out);
        out
    }

    /// Feeds one byte to the paste-start matcher; true when the start marker just completed.
    fn advance_paste_start(&mut self, byte: u8) -> bool {
        let PasteState::Outside { start_matched } = &mut self.paste else {
            return false;
        };
        if PASTE_START.get(*start_matched) == Some(&byte) {
            *start_matched += 1;
        } else {
            *start_matched = usize::from(byte == ESC);
        }
        if *start_matched == PASTE_START.len() {
            *start_matched = 0;
            return true;
        }
        false
    }

    /// Advances the escape-sequence state; true if `byte` is text the shell would echo.
    fn escape_step(&mut self, byte: u8) -> bool {
        let (next, printable) = match (self.escape, byte) {
            (_, ESC) => (EscapeState::Escape, false),
            (EscapeState::Ground, b) => (EscapeState::Ground, b >= 0x20 && b != 0x7f),
            (EscapeState::Escape, b'[') => (EscapeState::Csi, false),
            (EscapeState::Escape, b'O') => (EscapeState::Ss3, false),
            (EscapeState::Escape | EscapeState::Ss3, _) => (EscapeState::Ground, false),
            (EscapeState::Csi, 0x40..=0x7e) => (EscapeState::Ground, false),
            (EscapeState::Csi, _) => (EscapeState::Csi, false),
        };
        self.escape = next;
        printable
    }

    /// Adds `rest` to the open paste; returns how many bytes of `rest` it consumed.
    fn continue_paste(&mut self, rest: &[u8], out: &mut Vec<ClassifiedInput>) -> usize {
        let PasteState::Inside {
            raw,
            content_start,
            oversized,
        } = &mut self.paste
        else {
            return 0;
        };
        let previous = raw.len();
        raw.extend_from_slice(rest);
        let search_from = previous
            .saturating_sub(PASTE_END.len() - 1)
            .max(*content_start);
        let end = raw
            .get(search_from..)
            .and_then(|tail| find(tail, PASTE_END))
            .map(|at| search_from + at + PASTE_END.len());
        let Some(end) = end else {
            if *oversized || raw.len() > MAX_PASTE_BYTES {
                // Keep a possible partial end marker for the next chunk; report the rest now.
                let keep = raw.len().min(PASTE_END.len() - 1);
                let tail = raw.split_off(raw.len() - keep);
                let held = std::mem::replace(raw, tail);
                *content_start = 0;
                *oversized = true;
                out.push(ClassifiedInput {
                    event: InputEvent::OversizedPaste(held),
                    printable: 0,
                    redraw_key: false,
                });
            }
            return rest.len();
        };
        raw.truncate(end);
        let consumed = end - previous;
        let raw = std::mem::take(raw);
        let content_start = *content_start;
        let oversized = *oversized;
        self.paste = PasteState::Outside { start_matched: 0 };
        out.push(finish_paste(raw, content_start, oversized));
        consumed
    }
}

/// Turns a complete paste into its event: several lines are held, one line passes through.
fn finish_paste(raw: Vec<u8>, content_start: usize, oversized: bool) -> ClassifiedInput {
    if oversized || raw.len() > MAX_PASTE_BYTES {
        return ClassifiedInput {
            event: InputEvent::OversizedPaste(raw),
            printable: 0,
            redraw_key: false,
        };
    }
    let content_end = raw.len().saturating_sub(PASTE_END.len());
    let content = raw.get(content_start..content_end).unwrap_or_default();
    let lines = paste_lines(content);
    if lines.len() > 1 {
        return ClassifiedInput {
            event: InputEvent::BracketedPaste { lines, bytes: raw },
            printable: 0,
            redraw_key: false,
        };
    }
    let printable = content.iter().filter(|&&b| b >= 0x20 && b != 0x7f).count();
    ClassifiedInput {
        event: InputEvent::Passthrough(raw),
        printable,
        redraw_key: false,
    }
}

/// Splits pasted text on CR, LF or CRLF; a final line ending does not start another line.
fn paste_lines(content: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(content);
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let trimmed = normalized.strip_suffix('\n').unwrap_or(&normalized);
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed.split('\n').map(str::to_owned).collect()
}

/// First index of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Consecutive pass-through bytes gathered before they become one event.
#[derive(Debug, Default)]
struct Run {
    bytes: Vec<u8>,
    printable: usize,
    redraw_key: bool,
}

impl Run {
    /// Emits the gathered bytes, if any, as one [`InputEvent::Passthrough`].
    fn flush(&mut self, out: &mut Vec<ClassifiedInput>) {
        if self.bytes.is_empty() {
            return;
        }
        let run = std::mem::take(self);
        out.push(ClassifiedInput {
            event: InputEvent::Passthrough(run.bytes),
            printable: run.printable,
            redraw_key: run.redraw_key,
        });
    }
}
