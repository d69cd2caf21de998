//! Shell words as the shell would pass them: quotes removed (`r''m`, `\rm`, `"rm"`, `$'rm'`
//! all give `rm`), with a record of every part that is not known before the line runs
//! (parameter expansions, command substitutions, arithmetic), unquoted glob characters and
//! brace expansions. Command substitution bodies are kept so the walker can judge them too.
use brush_parser::word::{self, WordPiece, WordPieceWithSource};
use brush_parser::ParserOptions;

/// One word of a command line after quote removal.
#[derive(Debug, Clone, Default)]
pub(super) struct ShellWord {
    /// The word with quotes removed; non-literal parts are kept as written (`$x`, `$(..)`).
    pub text: String,
    /// No part of the word depends on the shell's state (variables, substitutions, arithmetic).
    pub literal: bool,
    /// The word has unquoted glob characters (`*`, `?`, `[`), so the shell may expand it.
    pub glob: bool,
    /// The word has an unquoted brace expansion (`{a,b}`, `{1..3}`).
    pub brace: bool,
    /// Bodies of `$(..)` and backquoted substitutions inside the word, in order.
    pub substitutions: Vec<String>,
    /// Set by the walker: a substitution inside this word ran a downloader.
    pub download: bool,
    /// This argument is a process substitution (`<(..)` / `>(..)`).
    pub process_substitution: bool,
}

impl ShellWord {
    /// The word can be used as a command name or option without running anything first.
    pub(super) fn is_static(&self) -> bool {
        self.literal && !self.glob && !self.brace && !self.process_substitution
    }
}

/// Why a word could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read shell word {word:?}: {reason}")]
pub(super) struct WordError {
    word: String,
    reason: String,
}

/// Splits a raw word (as the tokenizer left it, quotes included) into its meaning.
pub(super) fn read_word(raw: &str, options: &ParserOptions) -> Result<ShellWord, WordError> {
    if !raw.contains(['$', '\'', '"', '\\', '`']) {
        // Nothing to remove or expand: the common case, without the word parser's cost.
        let mut out = ShellWord {
            text: raw.to_owned(),
            literal: true,
            ..ShellWord::default()
        };
        note_unquoted_text(raw, &mut out);
        return Ok(out);
    }
    let pieces = word::parse(raw, options).map_err(|e| WordError {
        word: raw.to_owned(),
        reason: e.to_string(),
    })?;
    let mut out = ShellWord {
        literal: true,
        ..ShellWord::default()
    };
    add_pieces(raw, &pieces, false, &mut out);
    Ok(out)
}

/// Reads the body of a here-document (quotes are literal there, expansions still run).
pub(super) fn read_heredoc(raw: &str, options: &ParserOptions) -> Result<ShellWord, WordError> {
    let pieces = word::parse_heredoc(raw, options).map_err(|e| WordError {
        word: raw.to_owned(),
        reason: e.to_string(),
    })?;
    let mut out = ShellWord {
        literal: true,
        ..ShellWord::default()
    };
    add_pieces(raw, &pieces, true, &mut out);
    Ok(out)
}

fn add_pieces(raw: &str, pieces: &[WordPieceWithSource], quoted: bool, out: &mut ShellWord) {
    for piece in pieces {
        let source = raw.get(piece.start_index..piece.end_index).unwrap_or("");
        match &piece.piece {
            WordPiece::Text(text) => {
                if !quoted {
                    note_unquoted_text(text, out);
                }
                out.text.push_str(text);
            }
            WordPiece::SingleQuotedText(text) => out.text.push_str(text),
            WordPiece::AnsiCQuotedText(text) => out.text.push_str(&decode_ansi_c(text)),
            WordPiece::DoubleQuotedSequence(inner)
            | WordPiece::GettextDoubleQuotedSequence(inner) => {
                add_pieces(raw, inner, true, out);
            }
            WordPiece::TildeExpansion(_) => out.text.push_str(source),
            WordPiece::EscapeSequence(seq) => {
                let mut chars = seq.chars();
                chars.next();
                let rest: String = chars.collect();
                // `\<newline>` is a line continuation and vanishes.
                if rest != "\n" {
                    out.text.push_str(&rest);
                }
            }
            WordPiece::CommandSubstitution(body) => {
                out.literal = false;
                out.substitutions.push(body.clone());
                out.text.push_str(source);
            }
            WordPiece::BackquotedCommandSubstitution(body) => {
                out.literal = false;
                out.substitutions.push(unescape_backquoted(body));
                out.text.push_str(source);
            }
            WordPiece::ParameterExpansion(_) | WordPiece::ArithmeticExpression(_) => {
                out.literal = false;
                out.text.push_str(source);
            }
        }
    }
}

/// Records unquoted characters that make the shell expand the word.
fn note_unquoted_text(text: &str, out: &mut ShellWord) {
    if text.contains(['*', '?', '[']) {
        out.glob = true;
    }
    if let Some(open) = text.find('{') {
        let after = text.get(open..).unwrap_or("");
        if after.contains('}') && (after.contains(',') || after.contains("..")) {
            out.brace = true;
        }
    }
}

/// Inside backquotes, `\\`, `` \` `` and `\$` stand for the character itself.
fn unescape_backquoted(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek() {
                if matches!(next, '\\' | '`' | '$') {
                    out.push(next);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// Decodes the escapes of `$'...'` as bash does (`$'\x72m'` is `rm`).
pub(super) fn decode_ansi_c(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(esc) = chars.next() else {
            out.push('\\');
            break;
        };
        match esc {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'e' | 'E' => out.push('\u{1b}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' | '\'' | '"' | '?' => out.push(esc),
            '0'..='7' => {
                let mut value = esc.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                push_code(&mut out, value & 0xff);
            }
            'x' | 'u' | 'U' => {
                let max = match esc {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut value = 0u32;
                let mut digits = 0;
                while digits < max {
                    match chars.peek().and_then(|d| d.to_digit(16)) {
                        Some(d) => {
                            value = value.saturating_mul(16).saturating_add(d);
                            chars.next();
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.push('\\');
                    out.push(esc);
                } else {
                    push_code(&mut out, value);
                }
            }
            'c' => {
                if let Some(ctl) = chars.next() {
                    push_code(&mut out, u32::from(ctl) & 0x1f);
                }
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

fn push_code(out: &mut String, code: u32) {
    out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
}

/// Expands unquoted brace expressions (`/etc/{shadow,passwd}`, `{1..3}`) into at most `limit`
/// words; text without braces comes back unchanged.
pub(super) fn expand_braces(text: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    expand_into(text, limit, &mut out, 0);
    if out.is_empty() {
        out.push(text.to_owned());
    }
    out
}

fn expand_into(text: &str, limit: usize, out: &mut Vec<String>, depth: usize) {
    if out.len() >= limit {
        return;
    }
    let Some((open, close, members)) = first_brace(text).filter(|_| depth < 8) else {
        out.push(text.to_owned());
        return;
    };
    let prefix = text.get(..open).unwrap_or("");
    let suffix = text.get(close + 1..).unwrap_or("");
    for member in members {
        if out.len() >= limit {
            return;
        }
        expand_into(&format!("{prefix}{member}{suffix}"), limit, out, depth + 1);
    }
}

/// Finds the first brace expression: its byte range and its members.
fn first_brace(text: &str) -> Option<(usize, usize, Vec<String>)> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(rel) = text.get(start..)?.find('{') {
        let open = start + rel;
        let mut depth = 0usize;
        let mut commas = Vec::new();
        let mut close = None;
        for (i, b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                b',' if depth == 1 => commas.push(i),
                _ => {}
            }
        }
        let close = close?;
        let inner = text.get(open + 1..close)?;
        if !commas.is_empty() {
            let mut members = Vec::new();
            let mut from = open + 1;
            for comma in commas.into_iter().chain(std::iter::once(close)) {
                members.push(text.get(from..comma)?.to_owned());
                from = comma + 1;
            }
            return Some((open, close, members));
        }
        if let Some(members) = sequence_members(inner) {
            return Some((open, close, members));
        }
        start = open + 1;
    }
    None
}

/// `{1..3}` and `{a..c}` (at most 64 members).
fn sequence_members(inner: &str) -> Option<Vec<String>> {
    let (from, to) = inner.split_once("..")?;
    if let (Ok(a), Ok(b)) = (from.parse::<i64>(), to.parse::<i64>()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        return Some((lo..=hi).take(64).map(|n| n.to_string()).collect());
    }
    let (mut a, mut b) = (from.chars(), to.chars());
    match (a.next(), a.next(), b.next(), b.next()) {
        (Some(x), None, Some(y), None) if x.is_ascii_alphabetic() && y.is_ascii_alphabetic() => {
            let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
            Some((lo..=hi).take(64).map(String::from).collect())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn read(raw: &str) -> ShellWord {
        read_word(raw, &ParserOptions::default()).unwrap()
    }

    #[test]
    fn quoting_is_removed() {
        for raw in [
            "rm",
            "r''m",
            "\\rm",
            "\"rm\"",
            "$'rm'",
            "$'\\x72m'",
            "$'\\162m'",
            "r\"m\"",
        ] {
            let word = read(raw);
            assert_eq!(word.text, "rm", "{raw}");
            assert!(word.is_static(), "{raw}");
        }
    }

    #[test]
    fn expansions_are_not_literal() {
        for raw in [
            "$x",
            "${x}",
            "$(echo rm)",
            "`which rm`",
            "rm${IFS}",
            "$((1+1))",
            "\"$x\"",
        ] {
            assert!(!read(raw).literal, "{raw}");
        }
        assert_eq!(read("$(echo rm)").substitutions, vec!["echo rm"]);
        assert_eq!(read("`which rm`").substitutions, vec!["which rm"]);
    }

    #[test]
    fn globs_and_braces_only_when_unquoted() {
        assert!(read("/etc/sha*").glob);
        assert!(!read("'/etc/sha*'").glob);
        assert!(read("/etc/{shadow,x}").brace);
        assert!(!read("'{a,b}'").brace);
        assert_eq!(
            expand_braces("/etc/{shadow,pass}wd", 8),
            vec!["/etc/shadowwd", "/etc/passwd"]
        );
        assert_eq!(expand_braces("{r,}m", 8), vec!["rm", "m"]);
        assert_eq!(expand_braces("x{1..3}", 8), vec!["x1", "x2", "x3"]);
        assert_eq!(expand_braces("plain", 8), vec!["plain"]);
    }
}
