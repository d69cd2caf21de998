//! The cache key of a SQL message: its tokens, with a literal replaced by `?` *only* where no
//! value of that literal can change a decision — the right side of a comparison with a column
//! (`id = 5`), a `LIMIT`/`OFFSET` count, an element of a `VALUES` row — and only in messages
//! whose statements all start with `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `WITH`, `VALUES` or
//! `TABLE`. Every other literal stays in the key verbatim, so `WHERE 1=1` and `WHERE 1=2`,
//! `set_config('role', ...)` and `set_config('work_mem', ...)` get different keys. Anything the
//! lexer is not sure about makes the key the exact text. Messages that change session state
//! (`PREPARE`, `EXECUTE`, `DEALLOCATE`, `DISCARD`, `standard_conforming_strings`) are not cached.

/// How a message may be cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SqlKey {
    /// Not cached at all.
    Uncacheable,
    /// Cached under this key.
    Key(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Unquoted word, lower-cased (PostgreSQL folds them).
    Word(String),
    /// `"quoted identifier"`, as written.
    Quoted(String),
    /// A number or string literal, as written.
    Literal(String),
    /// Operator characters.
    Op(String),
    /// `(`, `)`, `,`, `;`, `[`, `]`, `.`, `:`.
    Punct(char),
}

const SEPARATOR: char = '\u{1f}';
const MAX_CACHED_LEN: usize = 16 * 1024;
const SESSION_WORDS: &[&str] = &[
    "prepare",
    "execute",
    "deallocate",
    "discard",
    "standard_conforming_strings",
];
const TEMPLATE_VERBS: &[&str] = &[
    "select", "insert", "update", "delete", "with", "values", "table",
];
/// Words that are not column names when they stand left of a comparison.
const NOT_COLUMNS: &[&str] = &[
    "all",
    "and",
    "any",
    "array",
    "as",
    "between",
    "by",
    "case",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "date",
    "default",
    "distinct",
    "else",
    "end",
    "exists",
    "false",
    "from",
    "having",
    "ilike",
    "in",
    "interval",
    "is",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "or",
    "returning",
    "row",
    "select",
    "session_user",
    "set",
    "similar",
    "some",
    "then",
    "time",
    "timestamp",
    "true",
    "unknown",
    "user",
    "using",
    "values",
    "when",
    "where",
];
const COMPARISONS: &[&str] = &["=", "<>", "!=", "<", ">", "<=", ">="];

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

fn is_op_char(c: char) -> bool {
    "+-*/<>=~!@#%^&|`?".contains(c)
}

/// Split `text` into tokens; `None` when anything is unusual (fall back to the exact text).
fn lex(text: &str, standard_strings: bool) -> Option<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0usize;
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && at(i + 1) == Some('-') {
            while at(i).is_some_and(|c| c != '\n') {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == Some('*') {
            let mut depth = 0usize;
            loop {
                match (at(i), at(i + 1)) {
                    (Some('/'), Some('*')) => {
                        depth += 1;
                        i += 2;
                    }
                    (Some('*'), Some('/')) => {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    }
                    (Some(_), _) => i += 1,
                    (None, _) => return None,
                }
            }
        } else if c == '\'' {
            let start = i;
            i = end_of_string(&chars, i, !standard_strings)?;
            tokens.push(Token::Literal(chars.get(start..i)?.iter().collect()));
        } else if c == '"' {
            let start = i;
            i += 1;
            loop {
                match at(i) {
                    Some('"') if at(i + 1) == Some('"') => i += 2,
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                    None => return None,
                }
            }
            tokens.push(Token::Quoted(chars.get(start..i)?.iter().collect()));
        } else if c == '$' && at(i + 1).is_some_and(|d| d.is_ascii_digit()) {
            let start = i;
            i += 1;
            while at(i).is_some_and(|d| d.is_ascii_digit()) {
                i += 1;
            }
            if at(i).is_some_and(is_word_char) {
                return None;
            }
            tokens.push(Token::Word(chars.get(start..i)?.iter().collect()));
        } else if c == '$' {
            // Dollar quoting: $tag$ ... $tag$.
            let mut j = i + 1;
            while at(j).is_some_and(|d| d.is_alphanumeric() || d == '_') {
                j += 1;
            }
            if at(j) != Some('$') {
                return None;
            }
            let tag: Vec<char> = chars.get(i..=j)?.to_vec();
            let body_start = j + 1;
            let mut k = body_start;
            loop {
                if k >= chars.len() {
                    return None;
                }
                if chars.get(k..k + tag.len()) == Some(&tag[..]) {
                    break;
                }
                k += 1;
            }
            let end = k + tag.len();
            tokens.push(Token::Literal(chars.get(i..end)?.iter().collect()));
            i = end;
        } else if c.is_ascii_digit() || (c == '.' && at(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while at(i).is_some_and(|d| d.is_ascii_digit()) {
                i += 1;
            }
            if at(i) == Some('.') {
                i += 1;
                while at(i).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                }
            }
            if at(i).is_some_and(|e| e == 'e' || e == 'E') {
                i += 1;
                if at(i).is_some_and(|s| s == '+' || s == '-') {
                    i += 1;
                }
                if !at(i).is_some_and(|d| d.is_ascii_digit()) {
                    return None;
                }
                while at(i).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                }
            }
            // `1or`, `0x1F`, `1_000`, `1.2.3`: unusual, do not template.
            if at(i).is_some_and(|d| is_word_char(d) || d == '.') {
                return None;
            }
            tokens.push(Token::Literal(chars.get(start..i)?.iter().collect()));
        } else if is_word_char(c) {
            let start = i;
            while at(i).is_some_and(is_word_char) {
                i += 1;
            }
            let word: String = chars
                .get(start..i)?
                .iter()
                .collect::<String>()
                .to_lowercase();
            if at(i) == Some('\'') {
                // Prefixed strings: E'..' (backslash escapes), B'..', X'..', N'..'; U&'..' bails.
                let backslashes = match word.as_str() {
                    "e" => true,
                    "b" | "x" | "n" => !standard_strings,
                    _ => return None,
                };
                let end = end_of_string(&chars, i, backslashes)?;
                tokens.push(Token::Literal(chars.get(start..end)?.iter().collect()));
                i = end;
            } else if at(i) == Some('&') || at(i) == Some('"') {
                return None;
            } else {
                tokens.push(Token::Word(word));
            }
        } else if "(),;[].:".contains(c) {
            if c == ':' && at(i + 1) == Some(':') {
                tokens.push(Token::Op("::".to_string()));
                i += 2;
            } else {
                tokens.push(Token::Punct(c));
                i += 1;
            }
        } else if is_op_char(c) {
            let start = i;
            while at(i).is_some_and(is_op_char) {
                let next = at(i + 1);
                if i > start
                    && ((at(i) == Some('-') && next == Some('-'))
                        || (at(i) == Some('/') && next == Some('*')))
                {
                    break;
                }
                i += 1;
            }
            tokens.push(Token::Op(chars.get(start..i)?.iter().collect()));
        } else {
            return None;
        }
    }
    Some(tokens)
}

/// Index just past the string literal opening at `start` (a `'`).
fn end_of_string(chars: &[char], start: usize, backslashes: bool) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            Some('\\') if backslashes => i += 2,
            Some('\'') if chars.get(i + 1) == Some(&'\'') => i += 2,
            Some('\'') => return Some(i + 1),
            Some(_) => i += 1,
            None => return None,
        }
    }
}

/// `token` is a column name: an identifier that is not a keyword, a type after `::` or a
/// collation after `COLLATE` (`before` is the token in front of it).
fn is_column(token: Option<&Token>, before: Option<&Token>) -> bool {
    let after_cast = matches!(before, Some(Token::Op(op)) if op == "::")
        || matches!(before, Some(Token::Word(w)) if w == "collate");
    if after_cast {
        return false;
    }
    match token {
        Some(Token::Word(w)) => !NOT_COLUMNS.contains(&w.as_str()) && !w.starts_with('$'),
        Some(Token::Quoted(_)) => true,
        _ => false,
    }
}

fn ends_operand(token: Option<&Token>) -> bool {
    match token {
        None | Some(Token::Punct(_)) => true,
        Some(Token::Op(op)) => op == "::",
        Some(Token::Word(w)) => {
            !NOT_COLUMNS.contains(&w.as_str())
                || [
                    "and",
                    "or",
                    "limit",
                    "offset",
                    "returning",
                    "on",
                    "where",
                    "from",
                    "end",
                    "then",
                    "else",
                    "when",
                ]
                .contains(&w.as_str())
        }
        _ => false,
    }
}

/// The cache key of a SQL message (see the module doc).
pub(crate) fn sql_key(text: &str, standard_strings: bool) -> SqlKey {
    if text.len() > MAX_CACHED_LEN || text.contains('\0') {
        return SqlKey::Uncacheable;
    }
    let Some(tokens) = lex(text, standard_strings) else {
        let lower = text.to_lowercase();
        if SESSION_WORDS.iter().any(|w| lower.contains(w)) {
            return SqlKey::Uncacheable;
        }
        return SqlKey::Key(format!("x{SEPARATOR}{text}"));
    };
    if tokens
        .iter()
        .any(|t| matches!(t, Token::Word(w) if SESSION_WORDS.contains(&w.as_str())))
    {
        return SqlKey::Uncacheable;
    }
    let mut templating = true;
    let mut leading = true;
    for token in &tokens {
        match token {
            Token::Punct(';') => leading = true,
            Token::Punct('(') if leading => {}
            Token::Word(w) if leading => {
                templating &= TEMPLATE_VERBS.contains(&w.as_str());
                leading = false;
            }
            _ if leading => {
                templating = false;
                leading = false;
            }
            _ => {}
        }
    }
    let mut key = String::with_capacity(text.len() + 8);
    key.push('t');
    // Paren frames: true when the frame is a VALUES row.
    let mut frames: Vec<bool> = Vec::new();
    let mut closed_row = false;
    for (i, token) in tokens.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| tokens.get(p));
        let prev2 = i.checked_sub(2).and_then(|p| tokens.get(p));
        let prev3 = i.checked_sub(3).and_then(|p| tokens.get(p));
        let next = tokens.get(i + 1);
        key.push(SEPARATOR);
        match token {
            Token::Literal(lit) => {
                let compared = matches!(prev, Some(Token::Op(op)) if COMPARISONS.contains(&op.as_str()))
                    && is_column(prev2, prev3)
                    && ends_operand(next);
                let counted = matches!(prev, Some(Token::Word(w)) if w == "limit" || w == "offset")
                    && ends_operand(next);
                let in_row = frames.last() == Some(&true)
                    && matches!(prev, Some(Token::Punct('(' | ',')))
                    && matches!(next, Some(Token::Punct(')' | ',')));
                if templating && (compared || counted || in_row) {
                    key.push('?');
                } else {
                    key.push_str(lit);
                }
            }
            Token::Word(w) => key.push_str(w),
            Token::Quoted(q) => key.push_str(q),
            Token::Op(op) => key.push_str(op),
            Token::Punct(c) => key.push(*c),
        }
        match token {
            Token::Punct('(') => {
                let row = matches!(prev, Some(Token::Word(w)) if w == "values")
                    || (closed_row && matches!(prev, Some(Token::Punct(','))));
                frames.push(row);
                closed_row = false;
            }
            Token::Punct(')') => closed_row = frames.pop() == Some(true),
            Token::Punct(',') => {}
            _ => closed_row = false,
        }
    }
    SqlKey::Key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> SqlKey {
        sql_key(text, true)
    }

    #[test]
    fn literals_compared_with_columns_share_a_key() {
        assert_eq!(
            key("SELECT * FROM t WHERE id = 5"),
            key("select *  from t where id=77")
        );
        assert_eq!(
            key("UPDATE t SET a = 'x' WHERE id = 1"),
            key("UPDATE t SET a = 'yy' WHERE id = 2 -- c")
        );
        assert_eq!(
            key("INSERT INTO t VALUES (1, 'a'), (2, 'b')"),
            key("INSERT INTO t VALUES (3, 'c'), (4, 'd')")
        );
        assert_eq!(
            key("SELECT 1 FROM t LIMIT 10"),
            key("SELECT 1 FROM t LIMIT 20")
        );
    }

    #[test]
    fn literals_that_matter_keep_their_value() {
        assert_ne!(
            key("DELETE FROM t WHERE 1=1"),
            key("DELETE FROM t WHERE 1=2")
        );
        assert_ne!(
            key("DELETE FROM t WHERE id = 5 OR 1 = 1"),
            key("DELETE FROM t WHERE id = 5 OR 1 = 2")
        );
        assert_ne!(
            key("DELETE FROM t WHERE id = 5 OR 2 < 1"),
            key("DELETE FROM t WHERE id = 5 OR 1 < 2")
        );
        assert_ne!(
            key("DELETE FROM t WHERE 'a' = 'a'"),
            key("DELETE FROM t WHERE 'a' = 'b'")
        );
        assert_ne!(key("COPY t TO '/tmp/f'"), key("COPY t TO PROGRAM 'cmd'"));
        assert_ne!(
            key("SELECT set_config('role', 'x', false)"),
            key("SELECT set_config('work_mem', 'x', false)")
        );
        assert_ne!(
            key("INSERT INTO t VALUES (set_config('role', 'x', false))"),
            key("INSERT INTO t VALUES (set_config('work_mem', 'x', false))")
        );
        assert_ne!(
            key("SET search_path = 'secrets'"),
            key("SET search_path = 'app'")
        );
        assert_ne!(
            key("SET search_path = secrets"),
            key("SET search_path = app")
        );
        assert_ne!(
            key("DELETE FROM t WHERE true = 't'"),
            key("DELETE FROM t WHERE true = 'f'")
        );
        assert_ne!(
            key("DELETE FROM t WHERE 5::int = 5"),
            key("DELETE FROM t WHERE 5::int = 6")
        );
        assert_ne!(
            key("DELETE FROM t WHERE 'a' COLLATE \"C\" = 'a'"),
            key("DELETE FROM t WHERE 'a' COLLATE \"C\" = 'b'")
        );
    }

    #[test]
    fn session_changes_are_not_cached() {
        assert_eq!(key("PREPARE p AS SELECT 1"), SqlKey::Uncacheable);
        assert_eq!(key("EXECUTE p"), SqlKey::Uncacheable);
        assert_eq!(key("select 1; DEALLOCATE ALL"), SqlKey::Uncacheable);
    }

    #[test]
    fn unusual_lexing_falls_back_to_the_exact_text() {
        assert_ne!(
            key("SELECT * FROM t WHERE id = 5or true"),
            key("SELECT * FROM t WHERE id = 6or true")
        );
        assert_ne!(key("SELECT U&'\\0061'"), key("SELECT U&'\\0062'"));
        assert_ne!(key("SELECT 'a"), key("SELECT 'b"));
        // Backslashes escape quotes when standard_conforming_strings is off.
        let text = "SELECT * FROM t WHERE a = 'x\\' OR 1=1 --'";
        assert_ne!(sql_key(text, false), sql_key(text, true));
    }
}
