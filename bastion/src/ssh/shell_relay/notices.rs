//! The lines the bastion prints on the user's terminal inside a shell: a refusal in red, a
//! step-up wait in yellow. Each starts and ends on its own line (`\r\n`, the terminal is raw).

/// A refused line: `bastion: denied by policy SH-1: ...` in red.
pub(super) fn refused(message: &str) -> Vec<u8> {
    format!("\r\n\x1b[31mbastion: {}\x1b[0m\r\n", printable(message)).into_bytes()
}

/// A line held for approval.
pub(super) fn waiting_for_approval(id: &str) -> Vec<u8> {
    format!(
        "\r\n\x1b[33mbastion: waiting for approval {}… (Ctrl-C to cancel)\x1b[0m\r\n",
        printable(id)
    )
    .into_bytes()
}

/// A paste whose remaining lines were not sent.
pub(super) fn paste_dropped(lines: usize) -> Vec<u8> {
    refused(&format!(
        "the remaining {lines} pasted line(s) were not sent"
    ))
}

/// A paste too large to check line by line.
pub(super) fn oversized_paste() -> Vec<u8> {
    refused(&format!(
        "a paste larger than {} KiB cannot be checked line by line; it was not sent",
        protocol::terminal::MAX_PASTE_BYTES / 1024
    ))
}

/// `text` without control characters, so a message cannot move the cursor or change modes.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_one_red_line() {
        assert_eq!(
            refused("denied by policy SH-1: no"),
            b"\r\n\x1b[31mbastion: denied by policy SH-1: no\x1b[0m\r\n".to_vec()
        );
    }

    #[test]
    fn control_characters_in_a_message_are_blanked() {
        let text = String::from_utf8(refused("a\x1b[2Jb\r\nc")).unwrap_or_default();
        assert!(text.contains("bastion: a [2Jb  c"), "{text:?}");
    }
}
