//! The prompt marker the bastion asks the target's shell to print at the end of its prompt,
//! `ESC ] 7770 ; bastion-prompt [; <status>] BEL`, and the vt100 callback that notes where the
//! cursor stood right after each one (and how far the screen had scrolled by then).

use super::screen_text::{row_prefix, ScrollProbe};

/// OSC number of the marker.
pub const PROMPT_MARKER_OSC: &str = "7770";
/// Text after the OSC number that identifies the marker.
pub const PROMPT_MARKER_TAG: &str = "bastion-prompt";
/// A bash `PS1` suffix that prints the marker with the previous command's exit status; append it
/// to the target's prompt (e.g. `PS1="$PS1$BASH_PROMPT_MARKER_SUFFIX"`). The marker must come
/// last in the prompt: the cursor right after it is where the command line starts.
pub const BASH_PROMPT_MARKER_SUFFIX: &str = "\\[\\e]7770;bastion-prompt;$?\\a\\]";
/// A bash `PROMPT_COMMAND` that appends [`BASH_PROMPT_MARKER_SUFFIX`] to `PS1` before each
/// prompt unless it is there already, so the marker survives a `PS1` set by `.bashrc` or by the
/// user. It prints nothing and keeps `$?` for the prompt. The bastion passes it as an environment
/// variable of the shell channel, which the target's sshd accepts only with
/// `AcceptEnv PROMPT_COMMAND`; other shells ignore it (lines are then found by their echo).
pub const BASH_PROMPT_COMMAND: &str =
    "case $PS1 in *bastion-prompt*) ;; *) PS1=$PS1'\\[\\e]7770;bastion-prompt;$?\\a\\]';; esac";

/// One marker as seen while the shell's output was parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MarkerSeen {
    /// Cursor row right after the marker.
    pub(crate) row: u16,
    /// Cursor column right after the marker.
    pub(crate) col: u16,
    /// The prompt's text on that row, before the cursor.
    pub(crate) prompt_prefix: String,
    /// Rows the screen had scrolled since the current `feed_output` began, or `None` if that
    /// could not be counted (too many, or the screen was reset).
    pub(crate) scrolled_in_feed: Option<u64>,
    /// Exit status the marker carried, if any.
    pub(crate) exit_status: Option<i32>,
    /// The alternate screen was active: a shell prompts inside a full-screen program (or after
    /// switching screens itself).
    pub(crate) on_alternate_screen: bool,
}

/// vt100 callbacks that collect [`MarkerSeen`]s during one `feed_output`.
#[derive(Debug, Default)]
pub(crate) struct PromptMarkerRecorder {
    /// How scrolling is counted during the current feed.
    pub(crate) probe: ScrollProbe,
    /// Markers seen during the current feed, in order.
    pub(crate) seen: Vec<MarkerSeen>,
}

impl vt100::Callbacks for PromptMarkerRecorder {
    fn unhandled_osc(&mut self, screen: &mut vt100::Screen, params: &[&[u8]]) {
        let Some(exit_status) = parse_marker(params) else {
            return;
        };
        let scrolled_in_feed = self.probe.scrolled(screen);
        let offset = screen.scrollback();
        screen.set_scrollback(0);
        let (row, col) = screen.cursor_position();
        let prompt_prefix = row_prefix(screen, row, col);
        screen.set_scrollback(offset);
        self.seen.push(MarkerSeen {
            row,
            col,
            prompt_prefix,
            scrolled_in_feed,
            exit_status,
            on_alternate_screen: screen.alternate_screen(),
        });
    }
}

/// `Some(status)` if `params` are a prompt marker; the status is `None` when absent or not a
/// number.
fn parse_marker(params: &[&[u8]]) -> Option<Option<i32>> {
    match params {
        [osc, tag] if is(osc, PROMPT_MARKER_OSC) && is(tag, PROMPT_MARKER_TAG) => Some(None),
        [osc, tag, status] if is(osc, PROMPT_MARKER_OSC) && is(tag, PROMPT_MARKER_TAG) => Some(
            std::str::from_utf8(status)
                .ok()
                .and_then(|s| s.parse().ok()),
        ),
        _ => None,
    }
}

fn is(param: &[u8], expected: &str) -> bool {
    param == expected.as_bytes()
}
