//! The terminal line tracker for interactive SSH shells: it keeps a vt100 screen per pty, fed
//! with the target's output, and when the user presses Enter reads the command line from the
//! screen as the shell shows it. `input_classifier` splits the user's keys into Enter, Ctrl-C,
//! multi-line bracketed pastes and pass-through bytes; `prompt_marker` recognises the OSC marker
//! the bastion asks the shell to print after its prompt; `screen_text` reads rows back and counts
//! scrolling; `output_skip` lets large output bypass the emulator where the screen's end does not
//! depend on it; `line_tracker` ties them together in [`TerminalLineTracker`];
//! `started_program` tells which nested shell or interpreter a command line starts.
//!
//! ```
//! use protocol::terminal::{InputEvent, LineReading, TerminalLineTracker};
//!
//! let mut tracker = TerminalLineTracker::new(24, 80);
//! tracker.feed_output(b"$ ");
//! assert_eq!(tracker.on_input(b"ls -l"), vec![InputEvent::Passthrough(b"ls -l".to_vec())]);
//! tracker.feed_output(b"ls -l");
//! assert_eq!(tracker.on_input(b"\r"), vec![InputEvent::Enter { offset: 0, byte: b'\r' }]);
//! assert_eq!(tracker.submitted_line(), LineReading::Line("ls -l".into()));
//! ```
//!
//! Limits: the line is what the screen shows. Aliases, functions, key bindings and a prompt the
//! user rewrote can make the shell run something else; a user with a shell can always run code
//! the bastion does not see (scripts, interpreters).

mod input_classifier;
mod line_tracker;
mod output_skip;
mod prompt_marker;
mod screen_text;
mod started_program;
#[cfg(test)]
mod tests;

pub use input_classifier::{InputEvent, MAX_PASTE_BYTES};
pub use line_tracker::{
    line_kill_sequence, LineReading, PromptSource, TerminalLineTracker, UnknownReason,
    LINE_KILL_SEQUENCE,
};
pub use prompt_marker::{
    BASH_PROMPT_COMMAND, BASH_PROMPT_MARKER_SUFFIX, PROMPT_MARKER_OSC, PROMPT_MARKER_TAG,
};
pub use started_program::{started_program, ProgramKind, StartedProgram};
