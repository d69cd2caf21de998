//! Lexing a SQL message the way PostgreSQL will: sqlparser's tokenizer (PostgreSQL dialect),
//! `U&"..."` identifiers decoded in place, the `standard_conforming_strings = off` hazard detected,
//! and the token stream cut into one chunk per statement at `;`.
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan, Tokenizer, Word};

use super::names::{decode_unicode_escapes, valid_uescape};

/// Why a message could not be lexed safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    /// The tokenizer rejected the text.
    #[error("sql does not tokenize: {0}")]
    Tokenizer(String),
    /// A `U&` escape is malformed.
    #[error("invalid unicode escape in U& identifier or string at line {line}, column {column}")]
    UnicodeEscape {
        /// 1-based line of the `U&`.
        line: u64,
        /// 1-based column of the `U&`.
        column: u64,
    },
    /// `standard_conforming_strings` is off and a string literal holds a backslash, so the
    /// server may read the literal's end differently than this lexer.
    #[error(
        "standard_conforming_strings is off and a string literal contains a backslash: \
         the statement boundaries cannot be established"
    )]
    NonStandardStrings,
}

/// Tokenizes `text` with the PostgreSQL dialect and applies PostgreSQL-only lexical rules.
pub fn lex(text: &str, standard_conforming_strings: bool) -> Result<Vec<TokenWithSpan>, LexError> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| LexError::Tokenizer(e.to_string()))?;
    if !standard_conforming_strings && tokens.iter().any(|t| has_backslash_literal(&t.token)) {
        return Err(LexError::NonStandardStrings);
    }
    decode_unicode_identifiers(tokens)
}

fn has_backslash_literal(token: &Token) -> bool {
    matches!(token, Token::SingleQuotedString(s) | Token::NationalStringLiteral(s) if s.contains('\\'))
}

fn is_adjacent(a: &Span, b: &Span) -> bool {
    a.end == b.start
}

/// Rewrites `U&"body"` (three adjacent tokens: word `U`, `&`, quoted word) and an optional
/// following `UESCAPE 'c'` into one quoted word holding the decoded name. A `U&'...'` string
/// followed by `UESCAPE` is refused (sqlparser already decoded it with `\`).
fn decode_unicode_identifiers(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, LexError> {
    let has_candidate = tokens.iter().any(|t| matches!(&t.token, Token::Ampersand))
        || tokens.iter().any(|t| is_keyword_word(&t.token, "UESCAPE"));
    if !has_candidate {
        return Ok(tokens);
    }
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut iter = tokens.into_iter().peekable();
    while let Some(tok) = iter.next() {
        let escape_err = LexError::UnicodeEscape {
            line: tok.span.start.line,
            column: tok.span.start.column,
        };
        if let Token::UnicodeStringLiteral(_) = &tok.token {
            if next_significant_is_uescape(&mut iter) {
                return Err(escape_err);
            }
            out.push(tok);
            continue;
        }
        let is_u = matches!(&tok.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("u"));
        if !is_u {
            out.push(tok);
            continue;
        }
        let amp_adjacent = matches!(iter.peek(), Some(a) if a.token == Token::Ampersand && is_adjacent(&tok.span, &a.span));
        if !amp_adjacent {
            out.push(tok);
            continue;
        }
        let Some(amp) = iter.next() else {
            out.push(tok);
            continue;
        };
        let quoted = match iter.peek() {
            Some(TokenWithSpan {
                token: Token::Word(w),
                span,
            }) if w.quote_style == Some('"') && is_adjacent(&amp.span, span) => {
                Some((w.value.clone(), *span))
            }
            _ => None,
        };
        let Some((body, body_span)) = quoted else {
            out.push(tok);
            out.push(amp);
            continue;
        };
        iter.next();
        let mut end = body_span.end;
        let escape = match take_uescape(&mut iter) {
            Some((c, span_end)) => {
                end = span_end;
                if c.chars().count() != 1 {
                    return Err(escape_err);
                }
                let c = c.chars().next().unwrap_or('\\');
                if !valid_uescape(c) {
                    return Err(escape_err);
                }
                c
            }
            None => '\\',
        };
        let decoded = decode_unicode_escapes(&body, escape).ok_or(escape_err)?;
        out.push(TokenWithSpan {
            token: Token::Word(Word {
                value: decoded,
                quote_style: Some('"'),
                keyword: Keyword::NoKeyword,
            }),
            span: Span::new(tok.span.start, end),
        });
    }
    Ok(out)
}

fn is_keyword_word(token: &Token, kw: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

fn next_significant_is_uescape(
    iter: &mut std::iter::Peekable<std::vec::IntoIter<TokenWithSpan>>,
) -> bool {
    iter.clone()
        .find(|t| !matches!(t.token, Token::Whitespace(_)))
        .is_some_and(|t| is_keyword_word(&t.token, "UESCAPE"))
}

/// Consumes `[ws] UESCAPE [ws] 'c'` if it follows; returns the escape text and the end location.
fn take_uescape(
    iter: &mut std::iter::Peekable<std::vec::IntoIter<TokenWithSpan>>,
) -> Option<(String, Location)> {
    let mut look = iter.clone();
    let next_significant = |look: &mut std::iter::Peekable<std::vec::IntoIter<TokenWithSpan>>| {
        look.find(|t| !matches!(t.token, Token::Whitespace(_)))
    };
    let kw = next_significant(&mut look)?;
    if !is_keyword_word(&kw.token, "UESCAPE") {
        return None;
    }
    let lit = next_significant(&mut look)?;
    let Token::SingleQuotedString(c) = lit.token else {
        return None;
    };
    *iter = look;
    Some((c, lit.span.end))
}

/// Cuts the token stream into statements at `;`; chunks holding only whitespace and comments
/// are dropped. Each chunk keeps its whitespace tokens (the parser skips them).
pub fn split_statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    for tok in tokens {
        match tok.token {
            Token::SemiColon => {
                push_chunk(&mut chunks, std::mem::take(&mut current));
            }
            Token::EOF => {}
            _ => current.push(tok),
        }
    }
    push_chunk(&mut chunks, current);
    chunks
}

fn push_chunk(chunks: &mut Vec<Vec<TokenWithSpan>>, chunk: Vec<TokenWithSpan>) {
    if chunk
        .iter()
        .any(|t| !matches!(t.token, Token::Whitespace(_)))
    {
        chunks.push(chunk);
    }
}

/// The significant (non-whitespace) tokens of a chunk.
pub fn significant(chunk: &[TokenWithSpan]) -> impl Iterator<Item = &Token> {
    chunk
        .iter()
        .map(|t| &t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)))
}

/// Byte offsets of the start of each line of `text` (line 1 at index 0).
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    /// Byte offset of a tokenizer location (1-based line and character column).
    pub fn offset(&self, loc: Location) -> Option<usize> {
        let line_start = *self
            .starts
            .get(usize::try_from(loc.line).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(loc.column).ok()?.checked_sub(1)?;
        let rest = self.text.get(line_start..)?;
        match rest.char_indices().nth(column) {
            Some((i, _)) => Some(line_start + i),
            None => Some(self.text.len()),
        }
    }

    /// The source text a run of tokens covers.
    pub fn slice(&self, tokens: &[TokenWithSpan]) -> Option<&'a str> {
        let first = tokens.first()?;
        let last = tokens.last()?;
        let start = self.offset(first.span.start)?;
        let end = self.offset(last.span.end)?;
        self.text.get(start..end)
    }
}
