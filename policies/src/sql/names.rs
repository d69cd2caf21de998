//! PostgreSQL identifier normalisation: unquoted names fold to lower case, quoted names keep their
//! case, and `U&"..."` identifiers (with an optional `UESCAPE 'c'`) are decoded, so that every
//! spelling of a name compares equal to how the server resolves it.
use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

use super::facts::Relation;

/// Normalises one identifier as PostgreSQL resolves it.
pub fn normalize_ident(ident: &Ident) -> String {
    normalize_word(&ident.value, ident.quote_style)
}

/// Normalises a word with its quoting: unquoted words fold to lower case (ASCII only, as the
/// server does for identifiers), quoted words are kept verbatim.
pub fn normalize_word(value: &str, quote_style: Option<char>) -> String {
    match quote_style {
        Some(_) => value.to_owned(),
        None => value.to_ascii_lowercase(),
    }
}

/// The normalised parts of a dotted name; parts that are not plain identifiers become `None`.
pub fn name_parts(name: &ObjectName) -> Vec<Option<String>> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => Some(normalize_ident(ident)),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

/// The relation a (possibly qualified) name refers to: the last part is the relation, the one
/// before it the schema (`db.schema.rel` keeps `schema`).
pub fn relation_of(name: &ObjectName) -> Relation {
    let mut parts = name_parts(name).into_iter().rev();
    let rel = parts.next().flatten().unwrap_or_default();
    let schema = parts.next().flatten();
    Relation { schema, name: rel }
}

/// The bare normalised name of a function (last part of its qualified name) and its schema.
pub fn function_name(name: &ObjectName) -> (Option<String>, String) {
    let relation = relation_of(name);
    (relation.schema, relation.name)
}

/// Decodes the body of a `U&"..."` identifier or `U&'...'` literal: `<esc>XXXX`, `<esc>+XXXXXX`
/// and `<esc><esc>`. Returns `None` when an escape is malformed or names an invalid code point
/// (the server rejects those too).
pub fn decode_unicode_escapes(body: &str, escape: char) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != escape {
            out.push(c);
            continue;
        }
        let next = chars.clone().next()?;
        if next == escape {
            chars.next();
            out.push(escape);
            continue;
        }
        let digits = if next == '+' {
            chars.next();
            6
        } else {
            4
        };
        let mut code: u32 = 0;
        for _ in 0..digits {
            let d = chars.next()?.to_digit(16)?;
            code = code * 16 + d;
        }
        // Surrogate pairs written as two escapes: combine them like the server does.
        if (0xD800..0xDC00).contains(&code) {
            let mut look = chars.clone();
            if look.next() != Some(escape) {
                return None;
            }
            let mut low: u32 = 0;
            for _ in 0..4 {
                low = low * 16 + look.next()?.to_digit(16)?;
            }
            if !(0xDC00..0xE000).contains(&low) {
                return None;
            }
            chars = look;
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        }
        out.push(char::from_u32(code)?);
    }
    Some(out)
}

/// Whether `c` may serve as a `UESCAPE` character (PostgreSQL's rule).
pub fn valid_uescape(c: char) -> bool {
    !(c.is_ascii_hexdigit() || c == '+' || c == '\'' || c == '"' || c.is_whitespace())
}

/// Splits a `search_path` string value (`'secrets, "Public"'`) into normalised schema names.
pub fn search_path_entries(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            if let Some(inner) = entry.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                inner.replace("\"\"", "\"")
            } else {
                entry.to_ascii_lowercase()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_escapes_decode_like_postgres() {
        assert_eq!(
            decode_unicode_escapes(r"p\0061yroll", '\\').as_deref(),
            Some("payroll")
        );
        assert_eq!(
            decode_unicode_escapes("d!0061t", '!').as_deref(),
            Some("dat")
        );
        assert_eq!(
            decode_unicode_escapes(r"\+000070ay", '\\').as_deref(),
            Some("pay")
        );
        assert_eq!(
            decode_unicode_escapes(r"a\\b", '\\').as_deref(),
            Some(r"a\b")
        );
        assert_eq!(
            decode_unicode_escapes(r"\D83D\DE00", '\\').as_deref(),
            Some("😀")
        );
        assert_eq!(decode_unicode_escapes(r"bad\00", '\\'), None);
        assert_eq!(decode_unicode_escapes(r"bad\D800", '\\'), None);
    }

    #[test]
    fn search_path_entries_fold_unquoted_and_keep_quoted() {
        assert_eq!(
            search_path_entries(r#"Secrets, "Public" ,x"#),
            vec!["secrets".to_owned(), "Public".to_owned(), "x".to_owned()]
        );
    }
}
