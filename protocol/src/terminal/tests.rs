//! Sans-IO tests: byte streams as bash 5.2 echoes them under a pty (captured with python's `pty`
//! module, `TERM=xterm`, `PS1='$ '`), replayed against the tracker.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;

const BASH_PROMPT: &[u8] = b"\x1b[?2004h$ ";
const MARKED_PROMPT_OK: &[u8] = b"\x1b[?2004hroot$ \x1b]7770;bastion-prompt;0\x07";

/// Sends `keys` (no Enter in them) and the shell's `echo`; asserts the keys pass through whole.
fn type_keys(tracker: &mut TerminalLineTracker, keys: &[u8], echo: &[u8]) {
    let events = tracker.on_input(keys);
    assert_eq!(events, vec![InputEvent::Passthrough(keys.to_vec())]);
    tracker.feed_output(echo);
}

/// Presses Enter (CR) and returns what the tracker reads.
fn press_enter(tracker: &mut TerminalLineTracker) -> LineReading {
    press_enter_with(tracker, b"\r")
}

/// Presses a key that submits the line and returns what the tracker reads.
fn press_enter_with(tracker: &mut TerminalLineTracker, key: &[u8]) -> LineReading {
    let events = tracker.on_input(key);
    assert_eq!(
        events,
        vec![InputEvent::Enter {
            offset: 0,
            byte: key[0]
        }]
    );
    tracker.submitted_line()
}

fn line(text: &str) -> LineReading {
    LineReading::Line(text.to_owned())
}

fn at_bash_prompt() -> TerminalLineTracker {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(BASH_PROMPT);
    tracker
}

#[test]
fn simple_line_typed_key_by_key() {
    let mut tracker = at_bash_prompt();
    for key in b"ls -la /tmp" {
        type_keys(&mut tracker, &[*key], &[*key]);
    }
    assert_eq!(press_enter(&mut tracker), line("ls -la /tmp"));
    assert_eq!(tracker.prompt_source(), Some(PromptSource::InputStart));
}

#[test]
fn line_edited_with_left_arrow_insertion_and_backspace() {
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"echo hi", b"echo hi");
    type_keys(&mut tracker, b"\x1b[D", b"\x08");
    type_keys(&mut tracker, b"X", b"Xi\x08");
    assert_eq!(tracker.screen().contents().trim_end(), "$ echo hXi");
    type_keys(&mut tracker, b"\x7f", b"\x08\x1b[1Pi\x08");
    type_keys(&mut tracker, b"\x7f", b"\x08\x1b[1Pi\x08");
    assert_eq!(press_enter(&mut tracker), line("echo i"));
}

#[test]
fn line_edited_with_insert_char_sequence() {
    // readline with an `ich` capability inserts with ESC[1@ instead of rewriting the tail.
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"rm /tmp/x", b"rm /tmp/x");
    type_keys(
        &mut tracker,
        b"\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D",
        b"\x08\x08\x08\x08\x08\x08",
    );
    type_keys(&mut tracker, b"-rf ", b"\x1b[1@-\x1b[1@r\x1b[1@f\x1b[1@ ");
    assert_eq!(press_enter(&mut tracker), line("rm -rf /tmp/x"));
}

#[test]
fn history_recall_with_up_arrow_reads_the_redrawn_line() {
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"echo one", b"echo one");
    assert_eq!(press_enter(&mut tracker), line("echo one"));
    tracker.feed_output(b"\r\n\x1b[?2004l\rone\r\n\x1b[?2004h$ ");
    type_keys(&mut tracker, b"\x1b[A", b"echo one");
    type_keys(
        &mut tracker,
        b"\x1b[D\x1b[D\x1b[DX",
        b"\x08\x08\x08Xone\x08\x08\x08",
    );
    assert_eq!(press_enter(&mut tracker), line("echo Xone"));
}

#[test]
fn tab_completion_reads_the_completed_text() {
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"ls /tmp/cap/tabd", b"ls /tmp/cap/tabd");
    type_keys(&mut tracker, b"\t", b"ir/");
    type_keys(&mut tracker, b"lo", b"lo");
    type_keys(&mut tracker, b"\t", b"ngfilename_alpha.txt ");
    assert_eq!(
        press_enter(&mut tracker),
        line("ls /tmp/cap/tabdir/longfilename_alpha.txt")
    );
}

#[test]
fn wrapped_long_line_at_40_columns_is_one_line() {
    let mut tracker = TerminalLineTracker::new(24, 40);
    tracker.feed_output(BASH_PROMPT);
    let text = b"echo 0123456789012345678901234567890123456789xyz";
    for (i, key) in text.iter().enumerate() {
        // bash forces the wrap with " \r" after the character in the last column.
        let echo: Vec<u8> = if i == 37 {
            b"2 \r".to_vec()
        } else {
            vec![*key]
        };
        type_keys(&mut tracker, &[*key], &echo);
    }
    assert_eq!(tracker.screen().cursor_position(), (1, 10));
    assert_eq!(
        press_enter(&mut tracker),
        line("echo 0123456789012345678901234567890123456789xyz")
    );
}

#[test]
fn wrapped_line_keeps_the_space_at_the_row_boundary() {
    let mut tracker = TerminalLineTracker::new(24, 20);
    tracker.feed_output(b"$ ");
    // "$ echo aaaaaaaaaaaa" fills the row exactly; the space falls on the next row.
    type_keys(
        &mut tracker,
        b"echo aaaaaaaaaaaaa b",
        b"echo aaaaaaaaaaaaa b",
    );
    assert_eq!(press_enter(&mut tracker), line("echo aaaaaaaaaaaaa b"));
}

#[test]
fn wrapped_line_at_the_bottom_follows_the_scroll() {
    let mut tracker = TerminalLineTracker::new(5, 20);
    for i in 0..4 {
        tracker.feed_output(format!("output {i}\r\n").as_bytes());
    }
    tracker.feed_output(b"$ ");
    let command = "echo 0123456789abcdefghijklmnopqrstuvwxyz";
    type_keys(&mut tracker, command.as_bytes(), command.as_bytes());
    assert_eq!(tracker.screen().cursor_position(), (4, 3));
    assert_eq!(press_enter(&mut tracker), line(command));
}

#[test]
fn prompt_found_again_after_many_screens_of_output() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    for i in 0..500 {
        tracker.feed_output(format!("line {i}\r\n").as_bytes());
    }
    tracker.feed_output(BASH_PROMPT);
    type_keys(&mut tracker, b"uptime", b"uptime");
    assert_eq!(press_enter(&mut tracker), line("uptime"));
}

#[test]
fn vim_on_the_alternate_screen_is_unknown() {
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"vim x.txt", b"vim x.txt");
    assert_eq!(press_enter(&mut tracker), line("vim x.txt"));
    tracker.feed_output(
        b"\r\n\x1b[?2004l\r\x1b[?1049h\x1b[22;0;0t\x1b[>4;2m\x1b[?1h\x1b=\x1b[?2004h\x1b[1;24r\
          \x1b[27m\x1b[23m\x1b[29m\x1b[m\x1b[H\x1b[2J\x1b[?25l\x1b[24;1H\"x.txt\" [New File]\
          \x1b[2;1H\x1b[1m\x1b[34m~",
    );
    assert!(tracker.is_alternate_screen());
    type_keys(
        &mut tracker,
        b"ihello",
        b"\x1b[?2004l\x1b[>4;m\x1b[?25l\x1b[mhello\x1b[?25h",
    );
    assert_eq!(
        press_enter(&mut tracker),
        LineReading::Unknown(UnknownReason::AlternateScreen)
    );
    // :q! leaves the alternate screen; bash prints its prompt on the restored screen.
    tracker.feed_output(b"\x1b[?1049l\x1b[23;0;0t\r\x1b[?1l\x1b>\x1b[?2004h$ ");
    assert!(!tracker.is_alternate_screen());
    type_keys(&mut tracker, b"pwd", b"pwd");
    assert_eq!(press_enter(&mut tracker), line("pwd"));
}

#[test]
fn shell_prompt_on_the_alternate_screen_is_not_a_full_screen_program() {
    // A user switches to the alternate screen to make the session pass keys through unread.
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(MARKED_PROMPT_OK);
    type_keys(&mut tracker, b"printf '\\e[?1049h'", b"printf '\\e[?1049h'");
    assert_eq!(press_enter(&mut tracker), line("printf '\\e[?1049h'"));
    tracker.enter_forwarded();
    tracker.feed_output(
        b"\r\n\x1b[?2004l\r\x1b[?1049h\x1b[?2004hroot$ \x1b]7770;bastion-prompt;0\x07",
    );
    type_keys(&mut tracker, b"rm -rf /x", b"rm -rf /x");
    assert_eq!(
        press_enter(&mut tracker),
        LineReading::Unknown(UnknownReason::ShellOnAlternateScreen)
    );
}

#[test]
fn password_prompt_without_echo_is_unknown() {
    let mut tracker = at_bash_prompt();
    let command = b"read -s -p \"Password: \" pw";
    type_keys(&mut tracker, command, command);
    assert_eq!(
        press_enter(&mut tracker),
        line("read -s -p \"Password: \" pw")
    );
    tracker.feed_output(b"\r\n\x1b[?2004l\rPassword: ");
    type_keys(&mut tracker, b"secret", b"");
    assert!(tracker.echo_suspected_off());
    assert!(tracker.awaiting_echo());
    assert_eq!(
        press_enter(&mut tracker),
        LineReading::Unknown(UnknownReason::EchoOff)
    );
    // The next prompt is read normally.
    tracker.enter_forwarded();
    tracker.feed_output(BASH_PROMPT);
    type_keys(&mut tracker, b"id", b"id");
    assert!(!tracker.echo_suspected_off());
    assert_eq!(press_enter(&mut tracker), line("id"));
}

#[test]
fn marker_prompt_gives_the_line_and_the_exit_status() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(MARKED_PROMPT_OK);
    assert_eq!(tracker.take_exit_status(), Some(0));
    assert_eq!(tracker.take_exit_status(), None);
    type_keys(&mut tracker, b"false", b"false");
    assert_eq!(press_enter(&mut tracker), line("false"));
    assert_eq!(tracker.prompt_source(), Some(PromptSource::Marker));
    tracker.enter_forwarded();
    tracker.feed_output(b"\r\n\x1b[?2004l\r\x1b[?2004hroot$ \x1b]7770;bastion-prompt;1\x07");
    assert_eq!(tracker.exit_status(), Some(1));
    assert_eq!(tracker.take_exit_status(), Some(1));
    type_keys(&mut tracker, b"echo hi", b"echo hi");
    assert_eq!(press_enter(&mut tracker), line("echo hi"));
}

#[test]
fn marker_terminated_by_st_and_without_status() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(b"host:~% \x1b]7770;bastion-prompt\x1b\\");
    assert!(tracker.prompt_markers_seen());
    assert_eq!(tracker.exit_status(), None);
    type_keys(&mut tracker, b"uname -a", b"uname -a");
    assert_eq!(press_enter(&mut tracker), line("uname -a"));
}

#[test]
fn prompt_text_after_the_marker_is_not_read_as_command() {
    // A user who edits PS1 to print "echo " after the marker must not hide "rm" behind it.
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(b"$ \x1b]7770;bastion-prompt;0\x07echo ");
    type_keys(&mut tracker, b"rm -rf /x", b"rm -rf /x");
    assert_eq!(press_enter(&mut tracker), line("rm -rf /x"));
    assert_eq!(tracker.prompt_source(), Some(PromptSource::InputStart));
}

#[test]
fn keys_typed_ahead_of_the_prompt_are_read_at_the_prompt() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(MARKED_PROMPT_OK);
    type_keys(&mut tracker, b"sleep 1", b"sleep 1");
    assert_eq!(press_enter(&mut tracker), line("sleep 1"));
    tracker.enter_forwarded();
    tracker.feed_output(b"\r\n\x1b[?2004l\r");
    // Typed while sleep runs: the tty echoes it, then readline echoes it again after the prompt.
    type_keys(&mut tracker, b"ls", b"ls");
    tracker.feed_output(b"\r\n\x1b[?2004hroot$ \x1b]7770;bastion-prompt;0\x07ls");
    assert_eq!(press_enter(&mut tracker), line("ls"));
    assert_eq!(tracker.prompt_source(), Some(PromptSource::Marker));
}

#[test]
fn marker_printed_mid_line_by_a_program_is_ignored() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(MARKED_PROMPT_OK);
    type_keys(&mut tracker, b"rm -rf /x; echo ok", b"rm -rf /x; echo ok");
    // A background job saves the cursor, plants a marker inside the line, restores the cursor.
    tracker.feed_output(b"\x1b7\x1b[1;18H\x1b]7770;bastion-prompt;0\x07\x1b8");
    assert_eq!(press_enter(&mut tracker), line("rm -rf /x; echo ok"));
}

#[test]
fn input_to_a_program_is_not_at_the_shell_prompt() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(MARKED_PROMPT_OK);
    type_keys(&mut tracker, b"cat", b"cat");
    assert_eq!(press_enter(&mut tracker), line("cat"));
    tracker.enter_forwarded();
    tracker.feed_output(b"\r\n\x1b[?2004l\r");
    type_keys(&mut tracker, b"rm -rf /x", b"rm -rf /x");
    assert_eq!(
        press_enter(&mut tracker),
        LineReading::Unknown(UnknownReason::NotAtShellPrompt)
    );
}

#[test]
fn continuation_prompt_is_unknown() {
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"echo 'abc", b"echo 'abc");
    assert_eq!(press_enter(&mut tracker), line("echo 'abc"));
    tracker.enter_forwarded();
    tracker.feed_output(b"\r\n\x1b[?2004l\r\x1b[?2004h> ");
    type_keys(&mut tracker, b"def'", b"def'");
    assert_eq!(
        press_enter(&mut tracker),
        LineReading::Unknown(UnknownReason::ContinuationPrompt)
    );
}

#[test]
fn multi_line_bracketed_paste_is_held() {
    let mut tracker = at_bash_prompt();
    let paste = b"\x1b[200~echo one\recho two\r\x1b[201~";
    let events = tracker.on_input(paste);
    assert_eq!(
        events,
        vec![InputEvent::BracketedPaste {
            lines: vec!["echo one".into(), "echo two".into()],
            bytes: paste.to_vec(),
        }]
    );
}

#[test]
fn bracketed_paste_split_across_chunks_is_held_whole() {
    let mut tracker = at_bash_prompt();
    assert_eq!(
        tracker.on_input(b"x\x1b[200~rm -rf /a\n"),
        vec![InputEvent::Passthrough(b"x".to_vec())]
    );
    assert_eq!(tracker.on_input(b"rm -rf /b\n\x1b[20"), vec![]);
    assert_eq!(
        tracker.on_input(b"1~ls"),
        vec![
            InputEvent::BracketedPaste {
                lines: vec!["rm -rf /a".into(), "rm -rf /b".into()],
                bytes: b"\x1b[200~rm -rf /a\nrm -rf /b\n\x1b[201~".to_vec(),
            },
            InputEvent::Passthrough(b"ls".to_vec()),
        ]
    );
}

#[test]
fn one_line_bracketed_paste_passes_through() {
    let mut tracker = at_bash_prompt();
    let paste = b"\x1b[200~git status\x1b[201~";
    assert_eq!(
        tracker.on_input(paste),
        vec![InputEvent::Passthrough(paste.to_vec())]
    );
    tracker.feed_output(b"git status");
    assert_eq!(press_enter(&mut tracker), line("git status"));
}

#[test]
fn oversized_paste_is_reported_not_held() {
    let mut tracker = at_bash_prompt();
    let mut paste = b"\x1b[200~".to_vec();
    paste.extend(std::iter::repeat_n(b'a', MAX_PASTE_BYTES + 10));
    let events = tracker.on_input(&paste);
    // Everything but a possible partial end marker is reported at once, for the session to drop.
    let [InputEvent::OversizedPaste(first)] = events.as_slice() else {
        panic!(
            "expected one oversized paste event, got {} events",
            events.len()
        );
    };
    assert_eq!(first.len(), paste.len() - 5);
    let events = tracker.on_input(b"\nb\x1b[201~ok");
    assert_eq!(
        events,
        vec![
            InputEvent::OversizedPaste(b"aaaaa\nb\x1b[201~".to_vec()),
            InputEvent::Passthrough(b"ok".to_vec()),
        ]
    );
}

#[test]
fn enter_inside_a_chunk_stops_classification_at_its_offset() {
    let mut tracker = at_bash_prompt();
    let events = tracker.on_input(b"ls\rrm -rf /x\r");
    assert_eq!(
        events,
        vec![
            InputEvent::Passthrough(b"ls".to_vec()),
            InputEvent::Enter {
                offset: 2,
                byte: b'\r'
            },
        ]
    );
    tracker.feed_output(b"ls");
    assert_eq!(tracker.submitted_line(), line("ls"));
    tracker.feed_output(b"\r\nfile\r\n\x1b[?2004h$ ");
    // The caller passes the rest again after deciding the first line.
    let events = tracker.on_input(b"rm -rf /x\r");
    assert_eq!(
        events[1],
        InputEvent::Enter {
            offset: 9,
            byte: b'\r'
        }
    );
    tracker.feed_output(b"rm -rf /x");
    assert_eq!(tracker.submitted_line(), line("rm -rf /x"));
}

#[test]
fn ctrl_j_and_ctrl_o_also_submit_the_line() {
    let mut tracker = at_bash_prompt();
    assert_eq!(
        tracker.on_input(b"id\n"),
        vec![
            InputEvent::Passthrough(b"id".to_vec()),
            InputEvent::Enter {
                offset: 2,
                byte: b'\n'
            }
        ]
    );
    let mut tracker = at_bash_prompt();
    assert_eq!(
        tracker.on_input(b"id\x0f"),
        vec![
            InputEvent::Passthrough(b"id".to_vec()),
            InputEvent::Enter {
                offset: 2,
                byte: 0x0f
            }
        ]
    );
}

#[test]
fn ctrl_c_starts_a_new_line() {
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"echo abc", b"echo abc");
    assert_eq!(
        tracker.on_input(b"\x03"),
        vec![InputEvent::Interrupt { offset: 0 }]
    );
    tracker.feed_output(b"^C\x1b[?2004l\r\x1b[?2004h\x1b[?2004l\r\r\n\x1b[?2004h$ ");
    type_keys(&mut tracker, b"ls", b"ls");
    assert_eq!(press_enter(&mut tracker), line("ls"));
}

#[test]
fn ctrl_d_right_behind_an_enter_does_not_start_the_next_line() {
    // `cat` reads the terminal; its line's Enter is forwarded and Ctrl-D (end of file for cat)
    // arrives before the screen shows the newline: the line after cat, at the shell's prompt, is
    // still read from that prompt.
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"cat", b"cat");
    assert_eq!(press_enter(&mut tracker), line("cat"));
    tracker.enter_forwarded();
    tracker.feed_output(b"\r\n\x1b[?2004l\r");
    type_keys(&mut tracker, b"xxxx", b"xxxx");
    assert_eq!(
        press_enter(&mut tracker),
        LineReading::Unprompted("xxxx".to_string())
    );
    tracker.enter_forwarded();
    assert_eq!(
        tracker.on_input(b"\x04"),
        vec![InputEvent::Passthrough(b"\x04".to_vec())]
    );
    tracker.feed_output(b"\r\n\x1b[?2004h$ ");
    type_keys(&mut tracker, b"exit", b"exit");
    assert_eq!(press_enter(&mut tracker), line("exit"));
}

#[test]
fn ctrl_d_after_text_is_an_editing_key_of_the_line() {
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"echo abc", b"echo abc");
    // Left twice, then Ctrl-D deletes the `b` under the cursor.
    type_keys(&mut tracker, b"\x1b[D\x1b[D", b"\x08\x08");
    type_keys(&mut tracker, b"\x04", b"c \x08\x08");
    assert_eq!(press_enter(&mut tracker), line("echo ac"));
}

#[test]
fn quoted_newline_hiding_a_second_command_is_unknown() {
    // Ctrl-V Ctrl-J puts a newline in the buffer; bash would run both lines at the next Enter.
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"echo hi", b"echo hi");
    // The quoted newline is a key like any other, not an Enter.
    type_keys(&mut tracker, b"\x16\n", b"\r\n");
    type_keys(&mut tracker, b"rm -rf /x", b"rm -rf /x");
    // Moving left along the second row keeps the cursor below the prompt's row.
    type_keys(&mut tracker, b"\x1b[D", b"\x08");
    assert_eq!(
        press_enter(&mut tracker),
        LineReading::Unknown(UnknownReason::TextOutsideLine)
    );
}

#[test]
fn quoted_newline_split_across_chunks_with_markers_is_unknown() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(MARKED_PROMPT_OK);
    type_keys(&mut tracker, b"echo hi\x16", b"echo hi");
    type_keys(&mut tracker, b"\n", b"\r\n");
    type_keys(&mut tracker, b"$ rm -rf /x", b"$ rm -rf /x");
    assert_eq!(
        press_enter(&mut tracker),
        LineReading::Unknown(UnknownReason::TextOutsideLine)
    );
}

#[test]
fn quoted_ctrl_c_is_not_an_interrupt() {
    let mut tracker = at_bash_prompt();
    assert_eq!(
        tracker.on_input(b"a\x16\x03b"),
        vec![InputEvent::Passthrough(b"a\x16\x03b".to_vec())]
    );
}

#[test]
fn completion_listing_without_markers_is_not_read_from_the_stale_row() {
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"ls /tmp/d/l", b"ls /tmp/d/l");
    type_keys(
        &mut tracker,
        b"\t\t",
        b"ongname_\x07\r\nlongname_a  longname_b\r\n$ ls /tmp/d/longname_",
    );
    type_keys(&mut tracker, b"b", b"b");
    assert_eq!(
        press_enter(&mut tracker),
        LineReading::Unknown(UnknownReason::TextOutsideLine)
    );
}

#[test]
fn completion_listing_with_markers_reads_the_redrawn_line() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(MARKED_PROMPT_OK);
    type_keys(&mut tracker, b"ls /tmp/d/l", b"ls /tmp/d/l");
    type_keys(
        &mut tracker,
        b"\t\t",
        b"ongname_\x07\r\nlongname_a  longname_b\r\nroot$ \x1b]7770;bastion-prompt;0\x07ls /tmp/d/longname_",
    );
    type_keys(&mut tracker, b"b", b"b");
    assert_eq!(press_enter(&mut tracker), line("ls /tmp/d/longname_b"));
}

#[test]
fn ctrl_l_clear_screen_recovers_the_prompt() {
    let mut tracker = at_bash_prompt();
    tracker.feed_output(b"\r\nsome output\r\n$ ");
    type_keys(&mut tracker, b"echo abc", b"echo abc");
    type_keys(&mut tracker, b"\x0c", b"\x1b[H\x1b[2J$ echo abc");
    type_keys(&mut tracker, b" def", b" def");
    assert_eq!(press_enter(&mut tracker), line("echo abc def"));
    assert_eq!(tracker.prompt_source(), Some(PromptSource::Recovered));
}

#[test]
fn marker_redraw_after_ctrl_l_is_accepted() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(b"out\r\nout\r\n");
    tracker.feed_output(MARKED_PROMPT_OK);
    type_keys(&mut tracker, b"echo abc", b"echo abc");
    type_keys(
        &mut tracker,
        b"\x0c",
        b"\x1b[H\x1b[2Jroot$ \x1b]7770;bastion-prompt;0\x07echo abc",
    );
    type_keys(&mut tracker, b" x", b" x");
    assert_eq!(press_enter(&mut tracker), line("echo abc x"));
    assert_eq!(tracker.prompt_source(), Some(PromptSource::Marker));
}

#[test]
fn resize_redraw_is_followed() {
    let mut tracker = TerminalLineTracker::new(24, 40);
    tracker.feed_output(MARKED_PROMPT_OK);
    let text = b"echo 0123456789012345678901234567890123456789xyz";
    type_keys(&mut tracker, text, text);
    tracker.resize(24, 60);
    tracker.feed_output(
        b"\r\x1b[K\r\x1b[A\x1b[K\rroot$ \x1b]7770;bastion-prompt;0\x07echo 0123456789012345678901234567890123456789xyz",
    );
    type_keys(&mut tracker, b"Q", b"Q");
    tracker.resize(24, 30);
    tracker.feed_output(
        b"\r\x1b[K\rroot$ \x1b]7770;bastion-prompt;0\x07echo 0123456789012345678901234567890123456789xyzQ",
    );
    assert_eq!(
        press_enter(&mut tracker),
        line("echo 0123456789012345678901234567890123456789xyzQ")
    );
}

#[test]
fn resize_between_lines_keeps_reading() {
    let mut tracker = at_bash_prompt();
    tracker.resize(10, 20);
    tracker.feed_output(b"\r\n$ ");
    type_keys(
        &mut tracker,
        b"echo abcdefghijklmnopqrstuvwxyz",
        b"echo abcdefghijklmnopqrstuvwxyz",
    );
    assert_eq!(
        press_enter(&mut tracker),
        line("echo abcdefghijklmnopqrstuvwxyz")
    );
}

#[test]
fn denied_line_is_killed_and_the_prompt_kept() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(MARKED_PROMPT_OK);
    type_keys(&mut tracker, b"rm -rf /", b"rm -rf /");
    assert_eq!(press_enter(&mut tracker), line("rm -rf /"));
    assert_eq!(line_kill_sequence(), b"\x05\x15");
    tracker.line_killed();
    // readline's echo of Ctrl-E Ctrl-U: back to the prompt end, erase to the end of the line.
    tracker.feed_output(b"\r\x1b[6C\x1b[K");
    type_keys(&mut tracker, b"ls", b"ls");
    assert_eq!(press_enter(&mut tracker), line("ls"));
    assert_eq!(tracker.prompt_source(), Some(PromptSource::Marker));
}

#[test]
fn empty_enter_reads_an_empty_line() {
    let mut tracker = at_bash_prompt();
    assert_eq!(press_enter(&mut tracker), line(""));
}

#[test]
fn input_to_a_program_is_read_by_echo_as_unprompted_text() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(MARKED_PROMPT_OK);
    type_keys(&mut tracker, b"cat", b"cat");
    assert_eq!(press_enter(&mut tracker), line("cat"));
    tracker.enter_forwarded();
    tracker.feed_output(b"\r\n\x1b[?2004l\r");
    type_keys(&mut tracker, b"rm -rf /x", b"rm -rf /x");
    assert!(!tracker.marker_since_line_start());
    let events = tracker.on_input(b"\r");
    assert_eq!(
        events,
        vec![InputEvent::Enter {
            offset: 0,
            byte: b'\r'
        }]
    );
    assert_eq!(
        tracker.submitted_line(),
        LineReading::Unknown(UnknownReason::NotAtShellPrompt)
    );
    assert_eq!(
        tracker.submitted_line_by_echo(),
        LineReading::Unprompted("rm -rf /x".into())
    );
}

#[test]
fn interpreter_prompt_is_read_by_echo_with_its_prefix() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(MARKED_PROMPT_OK);
    type_keys(&mut tracker, b"python3", b"python3");
    assert_eq!(press_enter(&mut tracker), line("python3"));
    tracker.enter_forwarded();
    tracker.feed_output(b"\r\n\x1b[?2004l\rPython 3.11.2\r\n>>> ");
    type_keys(&mut tracker, b"print(6*7)", b"print(6*7)");
    tracker.on_input(b"\r");
    assert_eq!(tracker.submitted_line_by_echo(), line("print(6*7)"));
    assert_eq!(tracker.read_prompt_prefix(), Some(">>> "));
    tracker.enter_forwarded();
    // exit() brings the shell's marked prompt back.
    tracker.feed_output(b"\r\n42\r\n>>> ");
    type_keys(&mut tracker, b"exit()", b"exit()");
    tracker.on_input(b"\r");
    assert!(!tracker.marker_since_line_start());
    tracker.enter_forwarded();
    tracker.feed_output(b"\r\n\x1b[?2004hroot$ \x1b]7770;bastion-prompt;0\x07");
    assert!(tracker.marker_since_line_start());
}

#[test]
fn current_line_is_empty_after_the_kill_echo() {
    for marked in [true, false] {
        let mut tracker = if marked {
            let mut t = TerminalLineTracker::new(24, 80);
            t.feed_output(MARKED_PROMPT_OK);
            t
        } else {
            at_bash_prompt()
        };
        type_keys(&mut tracker, b"rm -rf /x", b"rm -rf /x");
        assert_eq!(press_enter(&mut tracker), line("rm -rf /x"));
        tracker.line_killed();
        assert_eq!(tracker.current_line(), line("rm -rf /x"));
        let back = if marked {
            b"\r\x1b[6C\x1b[K"
        } else {
            b"\r\x1b[2C\x1b[K"
        };
        tracker.feed_output(back);
        assert_eq!(tracker.current_line(), line(""), "marked: {marked}");
    }
}

/// `lines` text lines as a pty sends them.
fn output_lines(lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        out.extend_from_slice(format!("2024-05-01 INFO request {i} handled\r\n").as_bytes());
    }
    out
}

#[test]
fn prompt_after_a_large_chunk_is_read_with_its_marker() {
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(MARKED_PROMPT_OK);
    type_keys(&mut tracker, b"cat big.log", b"cat big.log");
    assert_eq!(press_enter(&mut tracker), line("cat big.log"));
    tracker.enter_forwarded();
    let mut chunk = b"\r\n\x1b[?2004l\r".to_vec();
    chunk.extend(output_lines(5000));
    chunk.extend_from_slice(b"\x1b[?2004hroot$ \x1b]7770;bastion-prompt;0\x07");
    tracker.feed_output(&chunk);
    assert_eq!(
        tracker.screen().contents_between(22, 0, 23, 80),
        "2024-05-01 INFO request 4999 handled\nroot$ "
    );
    assert_eq!(tracker.take_exit_status(), Some(0));
    type_keys(&mut tracker, b"uptime", b"uptime");
    assert_eq!(press_enter(&mut tracker), line("uptime"));
    assert_eq!(tracker.prompt_source(), Some(PromptSource::Marker));
}

#[test]
fn screen_after_a_skipped_chunk_matches_the_whole_chunk() {
    let mut chunk = output_lines(300);
    chunk.extend_from_slice(b"\x1b[31mred\x1b[0m\x1b[K tail\r\n");
    chunk.extend(output_lines(700));
    chunk.extend_from_slice(b"$ partial");
    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(b"$ ");
    tracker.feed_output(&chunk);
    let mut plain = vt100::Parser::new(24, 80, 0);
    plain.process(b"$ ");
    plain.process(&chunk);
    assert_eq!(tracker.screen().contents(), plain.screen().contents());
    assert_eq!(
        tracker.screen().cursor_position(),
        plain.screen().cursor_position()
    );
}

#[test]
fn alternate_screen_switch_inside_a_large_chunk_is_not_skipped() {
    let mut tracker = at_bash_prompt();
    let mut chunk = output_lines(400);
    chunk.extend_from_slice(b"\x1b[?1049h");
    chunk.extend(output_lines(400));
    tracker.feed_output(&chunk);
    assert!(tracker.is_alternate_screen());
}

#[test]
fn prompt_command_appends_the_marker_suffix() {
    assert!(BASH_PROMPT_COMMAND.contains(BASH_PROMPT_MARKER_SUFFIX));
}

#[test]
fn skipped_chunk_of_wrapping_coloured_lines_from_the_top_matches_the_whole_chunk() {
    let mut chunk = Vec::new();
    for i in 0..600 {
        let width = 20 + (i * 37) % 170;
        chunk.extend_from_slice(format!("\x1b[3{}m{i}\t", i % 8).as_bytes());
        chunk.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, width));
        chunk.extend_from_slice(b"\x1b[0m\x1b[K\r\n");
    }
    chunk.extend_from_slice(b"tail without newline");
    for start in [&b"\x1b[H\x1b[2J"[..], &b"$ "[..], &b"\x1b[10;5Hmid"[..]] {
        let mut tracker = TerminalLineTracker::new(24, 80);
        tracker.feed_output(start);
        tracker.feed_output(&chunk);
        let mut plain = vt100::Parser::new(24, 80, 0);
        plain.process(start);
        plain.process(&chunk);
        assert_eq!(tracker.screen().contents(), plain.screen().contents());
        assert_eq!(
            tracker.screen().cursor_position(),
            plain.screen().cursor_position()
        );
    }
}

#[test]
fn editing_keys_wait_for_their_redraw_like_text() {
    let mut tracker = at_bash_prompt();
    type_keys(&mut tracker, b"echo rm -rf /x", b"echo rm -rf /x");
    assert!(!tracker.awaiting_echo());
    tracker.on_input(b"\x01\x1b[3~");
    assert!(tracker.awaiting_echo(), "Home and Delete change the line");
    tracker.feed_output(b"\r\x1b[2C\x1b[1P");
    assert!(!tracker.awaiting_echo());
}

#[test]
fn a_zero_sized_pty_is_read_as_80_by_24_like_the_shell_does() {
    // `ssh -tt` from a pty nobody sized sends 0x0; a 1-column screen would wrap every key.
    for mut tracker in [TerminalLineTracker::new(0, 0), {
        let mut t = TerminalLineTracker::new(24, 80);
        t.resize(0, 0);
        t
    }] {
        assert_eq!(tracker.screen().size(), (24, 80));
        tracker.feed_output(BASH_PROMPT);
        for key in b"rm -rf /tmp/x" {
            type_keys(&mut tracker, &[*key], &[*key]);
        }
        assert_eq!(press_enter(&mut tracker), line("rm -rf /tmp/x"));
    }
}

#[test]
fn a_one_row_or_one_column_window_does_not_crash_the_emulator() {
    // vt100 overflows wrapping a line on a single row, and placing a wide character in a single
    // column: such windows are emulated with two.
    let long = "x".repeat(300);
    for (rows, cols) in [(1, 1), (1, 80), (24, 1)] {
        let mut tracker = TerminalLineTracker::new(rows, cols);
        tracker.feed_output(BASH_PROMPT);
        tracker.feed_output(long.as_bytes());
        tracker.feed_output("\r\n\u{4e16}\u{754c}\r\n".as_bytes());
        let mut resized = TerminalLineTracker::new(24, 80);
        resized.resize(rows, cols);
        resized.feed_output(BASH_PROMPT);
        resized.feed_output(long.as_bytes());
        resized.feed_output("\u{4e16}\u{754c}".as_bytes());
    }
}
