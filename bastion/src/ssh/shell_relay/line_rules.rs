//! What the session does with a submitted line, given what the screen says about it and which
//! program reads it (issue 8's default rules):
//!
//! | reading | rule |
//! |---|---|
//! | a line at the shell's prompt (login or nested shell) | decided as a command line |
//! | text typed where no prompt precedes it (`cat`, `read`, keys typed ahead) | decided as a command line: the shell may read it later |
//! | a line at an interpreter's prompt (`python3`, `psql`) | recorded as its input, not decided |
//! | an empty line | forwarded, not recorded |
//! | a full-screen program has the terminal (vim, less, top) | keys pass through; the program's own command line was the action |
//! | no echo (password prompt) | forwarded, kept out of the recording and the actions |
//! | anything else that cannot be read (a continuation line, text outside the line, a prompt on the alternate screen, the prompt lost) | refused as a line whose meaning cannot be established (ANY-0) |
use protocol::terminal::{LineReading, UnknownReason};

/// What to do with a submitted line.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum LineRule<'a> {
    /// Forward the Enter; nothing to decide or record.
    Forward,
    /// Forward the Enter; what was typed is a secret and stays out of the recording.
    ForwardSecret,
    /// Decide the text as a command line.
    Decide(&'a str),
    /// Record the text as input to `program`, then forward.
    Record {
        /// The interpreter reading it.
        program: &'a str,
        /// The line.
        text: &'a str,
    },
    /// Refuse: the line cannot be read.
    Unreadable(&'a UnknownReason),
}

/// The rule for `reading`; `interpreter` names the interpreter at whose prompt the line was
/// typed, if the session knows one is running.
pub(super) fn rule_for<'a>(reading: &'a LineReading, interpreter: Option<&'a str>) -> LineRule<'a> {
    match reading {
        LineReading::Line(text) | LineReading::Unprompted(text) if text.trim().is_empty() => {
            LineRule::Forward
        }
        LineReading::Line(text) => match interpreter {
            Some(program) => LineRule::Record { program, text },
            None => LineRule::Decide(text),
        },
        LineReading::Unprompted(text) => LineRule::Decide(text),
        LineReading::Unknown(UnknownReason::AlternateScreen) => LineRule::Forward,
        LineReading::Unknown(UnknownReason::EchoOff) => LineRule::ForwardSecret,
        LineReading::Unknown(reason) => LineRule::Unreadable(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LineReading {
        LineReading::Line(text.to_string())
    }

    #[test]
    fn shell_lines_are_decided_and_interpreter_lines_recorded() {
        assert_eq!(rule_for(&line("ls -l"), None), LineRule::Decide("ls -l"));
        assert_eq!(
            rule_for(&line("print(1)"), Some("python3")),
            LineRule::Record {
                program: "python3",
                text: "print(1)"
            }
        );
    }

    #[test]
    fn unprompted_text_is_decided_even_inside_an_interpreter() {
        let typed_ahead = LineReading::Unprompted("rm -rf /x".to_string());
        assert_eq!(rule_for(&typed_ahead, None), LineRule::Decide("rm -rf /x"));
        assert_eq!(
            rule_for(&typed_ahead, Some("python3")),
            LineRule::Decide("rm -rf /x")
        );
    }

    #[test]
    fn empty_lines_full_screen_programs_and_secrets_pass() {
        assert_eq!(rule_for(&line("   "), None), LineRule::Forward);
        assert_eq!(
            rule_for(&LineReading::Unknown(UnknownReason::AlternateScreen), None),
            LineRule::Forward
        );
        assert_eq!(
            rule_for(&LineReading::Unknown(UnknownReason::EchoOff), None),
            LineRule::ForwardSecret
        );
    }

    #[test]
    fn unreadable_lines_are_refused() {
        for reason in [
            UnknownReason::ShellOnAlternateScreen,
            UnknownReason::ContinuationPrompt,
            UnknownReason::PromptLost,
            UnknownReason::TextOutsideLine,
            UnknownReason::NotAtShellPrompt,
        ] {
            let reading = LineReading::Unknown(reason.clone());
            assert_eq!(rule_for(&reading, None), LineRule::Unreadable(&reason));
        }
    }
}
