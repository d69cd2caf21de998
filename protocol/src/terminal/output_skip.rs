//! Finding the part of a large output chunk the emulator does not need to see, so that `cat` of
//! a big file does not make the terminal emulator the session's bottleneck.
//!
//! The tracker only reads the screen: the rows visible at the end of a chunk and the cursor.
//! When a span of output holds at least a screen's worth of line feeds, the cursor ends it on the
//! bottom row; when a screen's worth of line feeds follows it, every row visible at the end was
//! scrolled in (blank) and written after it. Such a span can be replaced by "carriage return,
//! then one line feed per row" (which puts the emulator's cursor on the bottom row too) as long
//! as it holds nothing with an effect beyond the rows it writes: plain text, CR, LF, tab,
//! backspace, BEL, and escape sequences that only change attributes or act within one row (SGR
//! colours, erase in line, moves along the row). Anything else — cursor addressing, modes
//! (alternate screen, bracketed paste), OSC (prompt markers, titles), charset shifts — is fed,
//! and the skipped span starts after the last of it. The chunk's first line is always fed (it may
//! finish an escape sequence of the previous chunk).
//!
//! What is lost are rows the emulator would have scrolled away (its scrollback is not read) and
//! the scroll count: positions remembered before the chunk are forgotten, which is what
//! scrolling a screen does anyway. A program that sets a scroll region and writes below it could
//! leave stale rows; only full-screen programs do that, and their screens are not read.

/// Chunks shorter than this are fed whole: skipping would not save much.
const MIN_CHUNK_BYTES: usize = 4096;
/// A span shorter than this is not worth skipping.
const MIN_SKIPPED_BYTES: usize = 1024;

const ESC: u8 = 0x1b;
const LF: u8 = b'\n';

/// The span `start..end` of `bytes` that can be skipped on a screen of `rows` rows, if any: feed
/// `bytes[..start]`, then [`replacement`] for the span, then `bytes[end..]`.
pub(crate) fn skippable_span(bytes: &[u8], rows: u16) -> Option<(usize, usize)> {
    if bytes.len() < MIN_CHUNK_BYTES {
        return None;
    }
    let rows = usize::from(rows.max(1));
    let end = tail_start(bytes, rows)?;
    let head = bytes.get(..end)?;
    let first_line_end = head.iter().position(|&b| b == LF)? + 1;
    let start = last_effect_end(head)?.max(first_line_end);
    let span = bytes.get(start..end)?;
    let enough =
        span.len() >= MIN_SKIPPED_BYTES && span.iter().filter(|&&b| b == LF).count() >= rows;
    enough.then_some((start, end))
}

/// What the emulator is fed instead of a skipped span: a carriage return and one line feed per
/// row, which leaves the cursor at the start of the bottom row, as the span did.
pub(crate) fn replacement(rows: u16) -> Vec<u8> {
    let mut bytes = vec![b'\r'];
    bytes.resize(usize::from(rows.max(1)) + 1, LF);
    bytes
}

/// The index right after the line feed that leaves exactly `line_feeds` line feeds after it.
fn tail_start(bytes: &[u8], line_feeds: usize) -> Option<usize> {
    let mut seen = 0;
    for (index, &byte) in bytes.iter().enumerate().rev() {
        if byte == LF {
            if seen == line_feeds {
                return Some(index + 1);
            }
            seen += 1;
        }
    }
    None
}

/// The index of the first byte below 0x20 (a control, ESC included) at or after `from`, or the
/// length. Text is skipped eight bytes at a time: a word holds such a byte exactly when
/// `(w - 0x20…20) & !w & 0x80…80` is not zero (bytes of 0x80 and above, UTF-8, never count).
fn next_control(bytes: &[u8], from: usize) -> usize {
    const SPACES: u64 = 0x2020_2020_2020_2020;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let mut index = from;
    while let Some(word) = bytes
        .get(index..index + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
    {
        let word = u64::from_le_bytes(word);
        if word.wrapping_sub(SPACES) & !word & HIGH_BITS != 0 {
            break;
        }
        index += 8;
    }
    while let Some(&byte) = bytes.get(index) {
        if byte < 0x20 {
            return index;
        }
        index += 1;
    }
    index
}

/// Where the parser stands while scanning the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    Ground,
    /// After ESC, possibly after intermediate bytes (`ESC ( B`).
    Escape,
    /// Inside a CSI; `private` is set by a `<`, `=`, `>` or `?` parameter prefix.
    Csi {
        private: bool,
    },
    /// Inside a string sequence (OSC, DCS, SOS, PM, APC) until BEL, or ESC which ends it.
    String,
}

/// Control bytes with no effect beyond the row they act on.
fn is_row_local_control(byte: u8) -> bool {
    matches!(byte, b'\r' | b'\n' | b'\t' | 0x08 | 0x07)
}

/// CSI final bytes that only change attributes or act within the cursor's row: SGR, erase in
/// line, cursor forward/back, column, erase/insert/delete characters.
fn is_row_local_csi(final_byte: u8) -> bool {
    matches!(
        final_byte,
        b'm' | b'K' | b'C' | b'D' | b'G' | b'X' | b'@' | b'P'
    )
}

/// The index after the last byte of `head` with an effect beyond the row it writes (0 if none);
/// `None` when `head` ends inside an escape sequence.
fn last_effect_end(head: &[u8]) -> Option<usize> {
    let mut state = Scan::Ground;
    // The sequence being scanned has an effect beyond its row (or is not understood).
    let mut effect = false;
    let mut effect_end = 0;
    let mut index = 0;
    while index < head.len() {
        if state == Scan::Ground {
            index = next_control(head, index);
        }
        let Some(&byte) = head.get(index) else {
            break;
        };
        index += 1;
        if byte == ESC {
            // ESC ends a string sequence and aborts any other one; a new sequence begins.
            effect |= state != Scan::Ground;
            state = Scan::Escape;
            continue;
        }
        if matches!(byte, 0x18 | 0x1a) || (byte < 0x20 && !is_row_local_control(byte)) {
            // CAN and SUB abort a sequence; other controls (SO, SI, VT, FF...) are not skipped.
            effect = true;
            if matches!(byte, 0x18 | 0x1a) || state == Scan::Ground {
                state = Scan::Ground;
                effect_end = index;
                effect = false;
            }
            continue;
        }
        state = match state {
            Scan::Ground => Scan::Ground,
            Scan::Escape => match byte {
                b'[' => Scan::Csi { private: false },
                b']' | b'P' | b'X' | b'^' | b'_' => {
                    effect = true;
                    Scan::String
                }
                // Intermediate bytes (charset designation and the like) come before the final;
                // controls are executed without ending the sequence.
                0x00..=0x2f => {
                    effect = true;
                    Scan::Escape
                }
                _ => {
                    effect_end = index;
                    effect = false;
                    Scan::Ground
                }
            },
            Scan::Csi { private } => match byte {
                b'<' | b'=' | b'>' | b'?' => Scan::Csi { private: true },
                0x20..=0x3f => Scan::Csi { private },
                0x40..=0x7e => {
                    if effect || private || !is_row_local_csi(byte) {
                        effect_end = index;
                    }
                    effect = false;
                    Scan::Ground
                }
                _ => {
                    effect = true;
                    Scan::Csi { private }
                }
            },
            Scan::String => {
                if byte == 0x07 {
                    effect_end = index;
                    effect = false;
                    Scan::Ground
                } else {
                    Scan::String
                }
            }
        };
    }
    (state == Scan::Ground).then_some(effect_end)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn lines(n: usize, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend_from_slice(format!("{text} {i}\r\n").as_bytes());
        }
        out
    }

    #[test]
    fn short_chunks_are_fed_whole() {
        assert_eq!(skippable_span(&lines(10, "x"), 24), None);
    }

    #[test]
    fn plain_text_keeps_the_first_line_and_a_screen() {
        let bytes = lines(1000, "some log line with text");
        let (start, end) = skippable_span(&bytes, 24).unwrap();
        assert_eq!(&bytes[..start], b"some log line with text 0\r\n");
        let tail = &bytes[end..];
        assert_eq!(tail.iter().filter(|&&b| b == b'\n').count(), 24);
        assert!(tail.starts_with(b"some log line with text 976\r\n"));
        assert_eq!(replacement(3), b"\r\n\n\n");
    }

    #[test]
    fn a_span_with_fewer_line_feeds_than_rows_is_not_skipped() {
        // One long line then a screen of short ones: the cursor's row after it is unknown.
        let mut bytes = b"first\r\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 8000));
        bytes.extend_from_slice(b"\r\n");
        bytes.extend(lines(24, "y"));
        assert_eq!(skippable_span(&bytes, 24), None);
    }

    #[test]
    fn control_bytes_are_found_past_text_words() {
        let text = b"0123456789abcdefghij\x1b[H rest";
        assert_eq!(next_control(text, 0), 20);
        assert_eq!(next_control(text, 21), text.len());
        let unicode = "é€ unicode text, no controls".as_bytes();
        assert_eq!(next_control(unicode, 0), unicode.len());
    }

    #[test]
    fn colours_and_erase_in_line_are_skipped() {
        let bytes = lines(1000, "\x1b[31mred\x1b[0m \x1b[K");
        let (start, _) = skippable_span(&bytes, 24).unwrap();
        assert_eq!(&bytes[..start], b"\x1b[31mred\x1b[0m \x1b[K 0\r\n");
    }

    #[test]
    fn the_span_starts_after_the_last_mode_change_or_osc() {
        let mut bytes = lines(300, "a");
        bytes.extend_from_slice(b"\x1b[?1049l\x1b]7770;bastion-prompt;0\x07");
        let marker_end = bytes.len();
        bytes.extend_from_slice(b"$ ");
        bytes.extend_from_slice(&lines(700, "b"));
        let (start, _) = skippable_span(&bytes, 24).unwrap();
        assert_eq!(start, marker_end);
    }

    #[test]
    fn a_chunk_ending_inside_a_sequence_before_the_tail_is_not_skipped() {
        let mut bytes = lines(500, "a");
        bytes.extend_from_slice(b"\x1b]0;title without end\r\n");
        bytes.extend_from_slice(&lines(100, "b"));
        assert_eq!(skippable_span(&bytes, 24), None);
    }

    #[test]
    fn cursor_addressing_near_the_tail_leaves_too_little_to_skip() {
        let mut bytes = lines(500, "a");
        let tail = lines(48, "b");
        bytes.extend_from_slice(b"\x1b[H\x1b[2J");
        bytes.extend_from_slice(&tail);
        assert_eq!(skippable_span(&bytes, 24), None);
    }
}
