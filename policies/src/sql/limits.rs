//! Bounds on what the extractor will look at: message size, and expression nesting estimated from
//! the token stream before anything recursive (parser, visitors, drop of the syntax tree) runs.
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::Token;

/// Limits applied to every SQL message; a message beyond them is `unparsed` (denied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// Largest message accepted, in bytes (default 1 MiB).
    pub max_bytes: usize,
    /// Deepest expression nesting accepted: parentheses plus chained operators at one level
    /// (default 200). Also the parser's recursion limit.
    pub max_depth: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_depth: 200,
        }
    }
}

/// Message of the fact recorded when a message is larger than allowed.
pub fn too_large_message(len: usize, limits: &SqlLimits) -> String {
    format!(
        "sql message of {len} bytes exceeds the limit of {} bytes (max_bytes)",
        limits.max_bytes
    )
}

/// Message of the fact recorded when nesting is deeper than allowed.
pub fn too_deep_message(limits: &SqlLimits) -> String {
    format!(
        "sql nesting exceeds the limit of {} levels (max_depth)",
        limits.max_depth
    )
}

/// An upper estimate of the syntax tree depth a statement's tokens produce: for each point, the
/// number of open brackets plus the operators chained at every open level (a chain of `n` binary
/// operators builds a tree `n` deep). Returns `true` when the estimate exceeds `max_depth`.
pub fn nesting_exceeds<'a>(tokens: impl Iterator<Item = &'a Token>, max_depth: usize) -> bool {
    // chain[i]: operators chained so far at bracket level i.
    let mut chain: Vec<usize> = vec![0];
    let mut total: usize = 0;
    for token in tokens {
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => {
                chain.push(0);
                total += 1;
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                if chain.len() > 1 {
                    let ops = chain.pop().unwrap_or(0);
                    total = total.saturating_sub(ops + 1);
                }
            }
            Token::Comma => reset_level(&mut chain, &mut total),
            Token::Word(w) if w.quote_style.is_none() => {
                if is_clause_boundary(w.keyword) {
                    reset_level(&mut chain, &mut total);
                } else if is_operator_keyword(w.keyword) {
                    bump(&mut chain, &mut total);
                }
            }
            Token::Word(_)
            | Token::Number(..)
            | Token::Whitespace(_)
            | Token::Placeholder(_)
            | Token::Period
            | Token::SemiColon
            | Token::EOF => {}
            t if is_literal(t) => {}
            _ => bump(&mut chain, &mut total),
        }
        if total > max_depth {
            return true;
        }
    }
    false
}

fn bump(chain: &mut [usize], total: &mut usize) {
    if let Some(level) = chain.last_mut() {
        *level += 1;
        *total += 1;
    }
}

fn reset_level(chain: &mut [usize], total: &mut usize) {
    if let Some(level) = chain.last_mut() {
        *total = total.saturating_sub(*level);
        *level = 0;
    }
}

fn is_literal(token: &Token) -> bool {
    matches!(
        token,
        Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::SingleQuotedByteStringLiteral(_)
    )
}

fn is_operator_keyword(kw: Keyword) -> bool {
    matches!(
        kw,
        Keyword::AND
            | Keyword::OR
            | Keyword::NOT
            | Keyword::IS
            | Keyword::LIKE
            | Keyword::ILIKE
            | Keyword::SIMILAR
            | Keyword::IN
            | Keyword::BETWEEN
            | Keyword::COLLATE
            | Keyword::AT
            | Keyword::CASE
            | Keyword::WHEN
            | Keyword::ANY
            | Keyword::ALL
            | Keyword::SOME
            | Keyword::EXISTS
            | Keyword::CAST
            | Keyword::INTERVAL
            | Keyword::ARRAY
            | Keyword::UNION
            | Keyword::INTERSECT
            | Keyword::EXCEPT
    )
}

fn is_clause_boundary(kw: Keyword) -> bool {
    matches!(
        kw,
        Keyword::SELECT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::GROUP
            | Keyword::HAVING
            | Keyword::ORDER
            | Keyword::LIMIT
            | Keyword::OFFSET
            | Keyword::SET
            | Keyword::VALUES
            | Keyword::RETURNING
            | Keyword::JOIN
            | Keyword::ON
            | Keyword::USING
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(sql: &str) -> Vec<Token> {
        sqlparser::tokenizer::Tokenizer::new(&sqlparser::dialect::PostgreSqlDialect {}, sql)
            .tokenize()
            .unwrap_or_default()
    }

    #[test]
    fn long_flat_lists_are_not_deep() {
        let list: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
        let sql = format!("SELECT * FROM t WHERE id IN ({})", list.join(", "));
        assert!(!nesting_exceeds(tokens(&sql).iter(), 200));
    }

    #[test]
    fn operator_chains_and_brackets_count() {
        let chain = vec!["1"; 300].join(" + ");
        assert!(nesting_exceeds(
            tokens(&format!("SELECT {chain}")).iter(),
            200
        ));
        let parens = format!("SELECT {}1{}", "(".repeat(250), ")".repeat(250));
        assert!(nesting_exceeds(tokens(&parens).iter(), 200));
        let ok = format!("SELECT {}1{}", "(".repeat(50), ")".repeat(50));
        assert!(!nesting_exceeds(tokens(&ok).iter(), 200));
    }
}
