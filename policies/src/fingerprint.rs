//! Statement fingerprints for grouping in audits: the statement's tokens with every literal
//! (numbers, strings, dollar-quoted strings) replaced by `?`, comments dropped, whitespace
//! collapsed, keywords and unquoted identifiers lower-cased, and `IN (?, ?, ...)` collapsed to
//! `IN (...)`, so statements that differ only in literals share one fingerprint.
//!
//! ```
//! use policies::fingerprint::{fingerprint_sql, fingerprint_id};
//! let a = fingerprint_sql("SELECT * FROM t WHERE id IN (1, 2, 3) AND name = 'x'");
//! let b = fingerprint_sql("select *  from T where ID in (7) and NAME = 'y' -- note");
//! assert_eq!(a, "select * from t where id in (...) and name = ?");
//! assert_eq!(a, b);
//! assert_eq!(fingerprint_id("SELECT 1").len(), 16);
//! ```
use sha2::{Digest, Sha256};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

/// The fingerprint of a SQL message (see the module doc). Text that does not tokenize is
/// fingerprinted as its whitespace-collapsed, lower-cased self.
pub fn fingerprint_sql(text: &str) -> String {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, text).tokenize() else {
        return text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
    };
    let mut parts: Vec<String> = tokens
        .iter()
        .filter_map(|token| match token {
            Token::Whitespace(_) | Token::EOF => None,
            t if is_literal(t) => Some("?".to_owned()),
            Token::Word(w) => Some(match w.quote_style {
                None => w.value.to_lowercase(),
                Some(_) => token.to_string(),
            }),
            other => Some(other.to_string()),
        })
        .collect();
    while parts.last().is_some_and(|p| p == ";") {
        parts.pop();
    }
    let parts = collapse_in_lists(parts);
    join_tokens(&parts)
}

/// First 16 hex digits of the SHA-256 of [`fingerprint_sql`]`(text)`: a short, stable id to
/// group statements by.
pub fn fingerprint_id(text: &str) -> String {
    let digest = Sha256::digest(fingerprint_sql(text).as_bytes());
    let mut id = hex::encode(digest);
    id.truncate(16);
    id
}

fn is_literal(token: &Token) -> bool {
    matches!(
        token,
        Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
    )
}

/// Rewrites `in ( ? , ? , ... )` to `in ( ... )`.
fn collapse_in_lists(parts: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(parts.len());
    let mut i = 0;
    while let Some(part) = parts.get(i) {
        out.push(part.clone());
        i += 1;
        if part != "in" || parts.get(i).map(String::as_str) != Some("(") {
            continue;
        }
        let mut j = i + 1;
        let mut only_literals = false;
        while let Some(p) = parts.get(j) {
            match p.as_str() {
                "?" => only_literals = true,
                "," | "-" | "+" => {}
                ")" => break,
                _ => {
                    only_literals = false;
                    break;
                }
            }
            j += 1;
        }
        if only_literals && parts.get(j).map(String::as_str) == Some(")") {
            out.extend(["(".to_owned(), "...".to_owned(), ")".to_owned()]);
            i = j + 1;
        }
    }
    out
}

fn join_tokens(parts: &[String]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    let mut previous: Option<&str> = None;
    for part in parts {
        let glue = match (previous, part.as_str()) {
            (None, _) => false,
            (Some("(" | "." | "::"), _) => false,
            (_, "," | ")" | "." | ";" | "::") => false,
            (Some(p), "(") => {
                !p.chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"')
                    || is_keyword_before_paren(p)
            }
            _ => true,
        };
        if glue {
            out.push(' ');
        }
        out.push_str(part);
        previous = Some(part);
    }
    out
}

/// Keywords that are followed by a parenthesised list rather than called like a function.
fn is_keyword_before_paren(word: &str) -> bool {
    matches!(
        word,
        "in" | "values"
            | "as"
            | "from"
            | "join"
            | "exists"
            | "and"
            | "or"
            | "not"
            | "on"
            | "using"
            | "into"
            | "select"
            | "where"
            | "set"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_comments_case_and_whitespace_are_normalised() {
        let cases = [
            (
                "SELECT  a FROM t WHERE id = 42",
                "select a from t where id = ?",
            ),
            (
                "select a from T /* c */ where ID = 'x' -- d\n",
                "select a from t where id = ?",
            ),
            (
                "SELECT $$body$$, $t$x$t$, E'\\n', 1.5e3",
                "select ?, ?, ?, ?",
            ),
            ("SELECT \"Mixed\" FROM \"T\"", "select \"Mixed\" from \"T\""),
            (
                "SELECT count(*) FROM t WHERE x IN (1,2,3);",
                "select count(*) from t where x in (...)",
            ),
            (
                "SELECT * FROM t WHERE x IN ( 'a' )",
                "select * from t where x in (...)",
            ),
            (
                "SELECT * FROM t WHERE x IN (SELECT 1)",
                "select * from t where x in (select ?)",
            ),
            (
                "SELECT * FROM s.t WHERE a = $1",
                "select * from s.t where a = $1",
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(fingerprint_sql(sql), want, "{sql}");
        }
    }

    #[test]
    fn statements_differing_only_in_literals_share_an_id() {
        assert_eq!(
            fingerprint_id("UPDATE t SET a = 1 WHERE id = 2"),
            fingerprint_id("update t set a=99 where id=3")
        );
        assert_ne!(
            fingerprint_id("SELECT a FROM t"),
            fingerprint_id("SELECT b FROM t")
        );
        assert!(fingerprint_id("x").chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn untokenizable_text_still_fingerprints() {
        assert_eq!(
            fingerprint_sql("SELECT 'unterminated"),
            "select 'unterminated"
        );
    }
}
