//! Turning one SQL message into facts: size and byte checks, lexing, one parse per statement
//! (with a recursion limit), the syntax-tree walk, classification, and the session effects of
//! `PREPARE` / `DEALLOCATE`. Anything whose meaning cannot be established becomes `unparsed`.
use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::classify::{
    alters_owner, classify, explain_runs, fallback, leading_words, object_kind, Judged,
};
use super::facts::{Relation, SqlClass, SqlMessageFacts, SqlSession, SqlStatementFacts};
use super::lexing::{lex, significant, split_statements, LineIndex};
use super::limits::{nesting_exceeds, too_deep_message, too_large_message, SqlLimits};
use super::names::normalize_word;
use super::relations::{collect, is_escape_function, Collected};

/// How deep `EXECUTE` of a prepared body and SQL text inside dynamic-SQL functions may nest.
const MAX_INDIRECTION: usize = 3;

/// Extracts the facts of one SQL message (a simple-protocol `Query` or an extended-protocol
/// `Parse`), updating `session` for `PREPARE` / `DEALLOCATE`.
///
/// ```
/// use policies::sql::{extract, SqlClass, SqlLimits, SqlSession};
/// let mut session = SqlSession::default();
/// let facts = extract("DELETE FROM public.Payroll", &mut session, &SqlLimits::default());
/// let stmt = &facts.statements[0];
/// assert_eq!(stmt.class, SqlClass::Delete);
/// assert!(stmt.unconditional_write);
/// assert_eq!(stmt.names, vec!["payroll".to_string()]);
/// ```
pub fn extract(text: &str, session: &mut SqlSession, limits: &SqlLimits) -> SqlMessageFacts {
    if text.len() > limits.max_bytes {
        return refused(too_large_message(text.len(), limits));
    }
    if text.contains('\0') {
        return refused("sql message contains a NUL byte".to_owned());
    }
    let scs = session.standard_conforming_strings.unwrap_or(true);
    let tokens = match lex(text, scs) {
        Ok(tokens) => tokens,
        Err(e) => return refused(e.to_string()),
    };
    let chunks = split_statements(tokens);
    if chunks
        .iter()
        .any(|chunk| nesting_exceeds(significant(chunk), limits.max_depth))
    {
        return refused(too_deep_message(limits));
    }
    let index = LineIndex::new(text);
    let statements = chunks
        .into_iter()
        .map(|chunk| statement_facts(chunk, &index, session, limits, 0))
        .collect();
    SqlMessageFacts {
        statements,
        unparsed: None,
    }
}

/// Like [`extract`] for raw bytes off the wire: invalid UTF-8 is refused (`unparsed`).
pub fn extract_bytes(
    bytes: &[u8],
    session: &mut SqlSession,
    limits: &SqlLimits,
) -> SqlMessageFacts {
    if bytes.len() > limits.max_bytes {
        return refused(too_large_message(bytes.len(), limits));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => extract(text, session, limits),
        Err(e) => refused(format!(
            "sql message is not valid UTF-8 (first invalid byte at offset {})",
            e.valid_up_to()
        )),
    }
}

fn refused(message: String) -> SqlMessageFacts {
    SqlMessageFacts {
        statements: Vec::new(),
        unparsed: Some(message),
    }
}

/// Facts with nothing established yet.
fn blank(class: SqlClass, verb: String) -> SqlStatementFacts {
    SqlStatementFacts {
        class,
        verb,
        object_kind: None,
        tables_read: Vec::new(),
        tables_written: Vec::new(),
        names: Vec::new(),
        schemas: Vec::new(),
        functions: Vec::new(),
        has_where: false,
        unconditional_write: false,
        copy_endpoint: None,
        explain_only: false,
        privilege_change: false,
        escape_hatch: false,
        search_path_secrets: false,
        unparsed: None,
        risk_tags: Vec::new(),
    }
}

fn unparsed(verb: String, message: String) -> SqlStatementFacts {
    let mut facts = blank(SqlClass::Other, verb);
    facts.unparsed = Some(message);
    facts.risk_tags.push("unparsed".to_owned());
    facts
}

fn parse_one(chunk: Vec<TokenWithSpan>, limits: &SqlLimits) -> Result<Statement, ParserError> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(limits.max_depth)
        .with_tokens_with_locations(chunk);
    let statement = parser.parse_statement()?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(ParserError::ParserError(format!(
            "expected end of statement, found: {}{}",
            next.token, next.span.start
        )));
    }
    Ok(statement)
}

fn statement_facts(
    chunk: Vec<TokenWithSpan>,
    index: &LineIndex<'_>,
    session: &mut SqlSession,
    limits: &SqlLimits,
    indirection: usize,
) -> SqlStatementFacts {
    let words = leading_words(significant(&chunk), 4);
    let verb = words.first().cloned().unwrap_or_else(|| {
        significant(&chunk)
            .next()
            .map(|t| t.to_string())
            .unwrap_or_default()
    });
    if verb == "DO" {
        return unparsed(
            verb,
            "DO blocks run procedural code that cannot be inspected".to_owned(),
        );
    }
    let parsed = parse_one(chunk.clone(), limits).or_else(|error| {
        // `COPY ... WITH (FREEZE ON)` (pgbench -i) spells booleans as ON/OFF, which sqlparser
        // only accepts as TRUE/FALSE. PostgreSQL treats them the same, so retry with them.
        if verb == "COPY" {
            parse_one(copy_booleans(&chunk), limits).map_err(|_| error)
        } else {
            Err(error)
        }
    });
    let mut facts = match parsed {
        Ok(statement) => from_statement(
            &statement,
            &chunk,
            &words,
            verb,
            index,
            session,
            limits,
            indirection,
        ),
        Err(error) => match fallback(
            &words,
            significant(&chunk).count(),
            alters_owner(significant(&chunk)),
        ) {
            Some(fb) => {
                let mut facts = blank(fb.class, verb);
                facts.object_kind = object_kind(&words, fb.class);
                facts.escape_hatch = fb.escape_hatch;
                facts.privilege_change = fb.privilege_change;
                if let Some(tag) = fb.tag {
                    facts.risk_tags.push(tag.to_owned());
                }
                facts.risk_tags.push("keyword_classified".to_owned());
                names_from_tokens(&chunk, &mut facts);
                facts
            }
            None => unparsed(verb, format!("sql does not parse: {error}")),
        },
    };
    escape_functions_from_tokens(&chunk, &mut facts);
    finish(&mut facts);
    facts
}

#[allow(clippy::too_many_arguments)]
fn from_statement(
    statement: &Statement,
    chunk: &[TokenWithSpan],
    words: &[String],
    verb: String,
    index: &LineIndex<'_>,
    session: &mut SqlSession,
    limits: &SqlLimits,
    indirection: usize,
) -> SqlStatementFacts {
    // What the statement is judged as: itself, or the statement it wraps.
    let mut judged_stmt = statement;
    let mut judged = classify(statement);
    while judged == Judged::Inner {
        judged_stmt = match judged_stmt {
            Statement::Explain { statement, .. } | Statement::Prepare { statement, .. } => {
                statement
            }
            _ => break,
        };
        judged = classify(judged_stmt);
    }
    let class = match judged {
        Judged::As(class) => class,
        Judged::Inner => return unparsed(verb, "statement wraps nothing known".to_owned()),
        Judged::Unknown(why) => return unparsed(verb, format!("{why}: {statement}")),
        Judged::Execute(name) => return execute(&name, verb, session, limits, indirection),
    };

    let collected = collect(statement);
    let mut facts = blank(class, verb);
    if let Some(message) = &collected.unparsed {
        facts.unparsed = Some(message.clone());
    }
    apply_session_effects(statement, chunk, index, session);

    if facts.class == SqlClass::Select {
        if let Some(write) = collected.write_class {
            facts.class = write;
        }
    }
    if alters_owner(significant(chunk)) {
        facts.privilege_change = true;
        facts.class = SqlClass::Dcl;
        facts.risk_tags.push("owner_change".to_owned());
    }
    facts.explain_only = matches!(statement, Statement::Explain { .. }) && !explain_runs(statement);
    facts.object_kind = object_kind(words, facts.class).or_else(|| {
        // `SELECT INTO` / DDL reached through a wrapper keeps the wrapped statement's kind.
        matches!(facts.class, SqlClass::Ddl | SqlClass::Dcl).then(|| "table".to_owned())
    });
    let dynamic_texts = merge_collected(&mut facts, collected);
    if let Statement::Merge(_) = judged_stmt {
        facts.has_where = true;
    }
    dynamic_sql(&mut facts, &dynamic_texts, session, limits, indirection);
    facts
}

fn execute(
    name: &str,
    verb: String,
    session: &mut SqlSession,
    limits: &SqlLimits,
    indirection: usize,
) -> SqlStatementFacts {
    let Some(body) = session.prepared.get(name).cloned() else {
        return unparsed(
            verb,
            format!(
                "EXECUTE of unknown prepared statement {name}: its meaning cannot be established"
            ),
        );
    };
    if indirection >= MAX_INDIRECTION {
        return unparsed(verb, "prepared statements nest too deeply".to_owned());
    }
    let inner = sub_message(&body, session, limits, indirection + 1);
    let mut facts = blank(SqlClass::Other, verb);
    match inner {
        Ok(statements) if statements.len() == 1 => {
            for s in statements {
                facts = SqlStatementFacts {
                    verb: facts.verb,
                    ..s
                };
            }
            facts.risk_tags.push("execute_prepared".to_owned());
        }
        Ok(_) => facts.unparsed = Some(format!("prepared statement {name} is not one statement")),
        Err(message) => facts.unparsed = Some(message),
    }
    facts
}

/// Extracts the statements of SQL text met inside a statement (a prepared body, dynamic SQL).
fn sub_message(
    text: &str,
    session: &mut SqlSession,
    limits: &SqlLimits,
    indirection: usize,
) -> Result<Vec<SqlStatementFacts>, String> {
    let scs = session.standard_conforming_strings.unwrap_or(true);
    let tokens = lex(text, scs).map_err(|e| e.to_string())?;
    let chunks = split_statements(tokens);
    if chunks
        .iter()
        .any(|chunk| nesting_exceeds(significant(chunk), limits.max_depth))
    {
        return Err(too_deep_message(limits));
    }
    let index = LineIndex::new(text);
    Ok(chunks
        .into_iter()
        .map(|chunk| statement_facts(chunk, &index, session, limits, indirection))
        .collect())
}

/// Judges SQL text handed to dynamic-SQL functions (`query_to_xml('...')`) as part of the
/// statement: its facts are merged in, and a write there makes the statement a write.
fn dynamic_sql(
    facts: &mut SqlStatementFacts,
    texts: &[String],
    session: &SqlSession,
    limits: &SqlLimits,
    indirection: usize,
) {
    for sql in texts {
        if indirection >= MAX_INDIRECTION {
            facts.unparsed = Some("dynamic sql nests too deeply".to_owned());
            return;
        }
        // Dynamic SQL cannot PREPARE into this session; judge it on a copy.
        let mut scratch = session.clone();
        match sub_message(sql, &mut scratch, limits, indirection + 1) {
            Ok(inner) => {
                for s in inner {
                    absorb(facts, s);
                }
            }
            Err(message) => facts.unparsed = Some(message),
        }
    }
}

fn absorb(facts: &mut SqlStatementFacts, inner: SqlStatementFacts) {
    if facts.class == SqlClass::Select && inner.class != SqlClass::Select {
        facts.class = inner.class;
    }
    facts.tables_read.extend(inner.tables_read);
    facts.tables_written.extend(inner.tables_written);
    facts.names.extend(inner.names);
    facts.schemas.extend(inner.schemas);
    facts.functions.extend(inner.functions);
    facts.unconditional_write |= inner.unconditional_write;
    facts.privilege_change |= inner.privilege_change;
    facts.escape_hatch |= inner.escape_hatch;
    facts.search_path_secrets |= inner.search_path_secrets;
    if inner.unparsed.is_some() {
        facts.unparsed = inner.unparsed;
    }
    facts.risk_tags.extend(inner.risk_tags);
    finish(facts);
}

/// Moves the walk's findings into `facts`; returns the dynamic SQL texts still to judge.
fn merge_collected(facts: &mut SqlStatementFacts, collected: Collected) -> Vec<String> {
    let Collected {
        mut relations,
        written,
        ctes,
        schemas,
        functions,
        dml_seen,
        dml_with_where,
        unconditional_write,
        privilege_change,
        escape_hatch,
        search_path_secrets,
        copy_endpoint,
        risk_tags,
        dynamic_sql,
        ..
    } = collected;
    // A write target is also met as a relation by the walk: count it once, as written.
    for w in &written {
        if let Some(pos) = relations.iter().position(|r| r == w) {
            relations.remove(pos);
        }
    }
    for r in relations.iter().chain(written.iter()) {
        facts.names.push(r.name.clone());
    }
    facts.names.extend(ctes.iter().cloned());
    // References to a CTE are not relations.
    relations.retain(|r| !(r.schema.is_none() && ctes.contains(&r.name)));
    facts.tables_read = relations;
    facts.tables_written = written;
    facts.schemas = schemas;
    facts.functions = functions;
    facts.has_where = dml_seen > 0 && dml_with_where == dml_seen;
    facts.unconditional_write = unconditional_write;
    facts.privilege_change |= privilege_change;
    facts.escape_hatch |= escape_hatch;
    facts.search_path_secrets = search_path_secrets;
    facts.copy_endpoint = copy_endpoint;
    facts.risk_tags.extend(risk_tags);
    dynamic_sql
}

/// `PREPARE` stores its body for a later `EXECUTE`; `DEALLOCATE` forgets it.
fn apply_session_effects(
    statement: &Statement,
    chunk: &[TokenWithSpan],
    index: &LineIndex<'_>,
    session: &mut SqlSession,
) {
    match statement {
        Statement::Prepare { name, .. } => {
            let key = normalize_word(&name.value, name.quote_style);
            if let Some(body) = prepared_body(chunk, index) {
                session.prepared.insert(key, body.to_owned());
            }
        }
        Statement::Deallocate { name, .. } => {
            if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
                session.prepared.clear();
            } else {
                session
                    .prepared
                    .remove(&normalize_word(&name.value, name.quote_style));
            }
        }
        Statement::Discard { object_type } => {
            if matches!(
                object_type,
                sqlparser::ast::DiscardObject::ALL | sqlparser::ast::DiscardObject::PLANS
            ) {
                session.prepared.clear();
            }
        }
        _ => {}
    }
}

/// The source text after the first `AS` outside parentheses of a `PREPARE` statement.
fn prepared_body<'a>(chunk: &[TokenWithSpan], index: &LineIndex<'a>) -> Option<&'a str> {
    let mut depth = 0usize;
    let position = chunk.iter().position(|t| match &t.token {
        Token::LParen => {
            depth += 1;
            false
        }
        Token::RParen => {
            depth = depth.saturating_sub(1);
            false
        }
        Token::Word(w) => {
            depth == 0 && w.quote_style.is_none() && w.value.eq_ignore_ascii_case("as")
        }
        _ => false,
    })?;
    index.slice(chunk.get(position + 1..)?)
}

/// For statements only the keyword classifier understood: every identifier is taken as a name
/// it may mention (over-inclusion only makes rules like SQL-8 stricter).
fn names_from_tokens(chunk: &[TokenWithSpan], facts: &mut SqlStatementFacts) {
    let tokens: Vec<&Token> = significant(chunk).collect();
    for (i, token) in tokens.iter().enumerate() {
        let Token::Word(w) = token else { continue };
        if w.quote_style.is_none() && w.keyword != sqlparser::keywords::Keyword::NoKeyword {
            continue;
        }
        let name = normalize_word(&w.value, w.quote_style);
        let followed_by_dot = matches!(tokens.get(i + 1), Some(Token::Period));
        let after_schema_kw = i > 0
            && matches!(tokens.get(i - 1), Some(Token::Word(p)) if p.quote_style.is_none() && p.value.eq_ignore_ascii_case("schema"));
        if followed_by_dot || after_schema_kw {
            facts.schemas.push(name.clone());
        }
        facts.names.push(name);
    }
}

/// A safety net under the syntax-tree walk: a word naming an escape-hatch function followed by
/// `(` anywhere in the statement's tokens marks it, whatever the parser made of it.
fn escape_functions_from_tokens(chunk: &[TokenWithSpan], facts: &mut SqlStatementFacts) {
    let mut previous: Option<&Token> = None;
    for token in significant(chunk) {
        if let (Some(Token::Word(w)), Token::LParen) = (previous, token) {
            let name = normalize_word(&w.value, w.quote_style);
            if is_escape_function(&name) {
                facts.escape_hatch = true;
                if !facts.risk_tags.iter().any(|t| t == "escape_function") {
                    facts.risk_tags.push("escape_function".to_owned());
                }
                facts.functions.push(name);
            }
        }
        previous = Some(token);
    }
}

/// Sorts and de-duplicates the list facts.
fn finish(facts: &mut SqlStatementFacts) {
    fn dedup<T: Ord>(v: &mut Vec<T>) {
        v.sort();
        v.dedup();
    }
    dedup::<Relation>(&mut facts.tables_read);
    dedup::<Relation>(&mut facts.tables_written);
    for r in facts.tables_read.iter().chain(facts.tables_written.iter()) {
        if let Some(schema) = &r.schema {
            facts.schemas.push(schema.clone());
        }
    }
    dedup(&mut facts.names);
    dedup(&mut facts.schemas);
    dedup(&mut facts.functions);
    let mut seen = Vec::with_capacity(facts.risk_tags.len());
    facts.risk_tags.retain(|t| {
        if seen.contains(t) {
            false
        } else {
            seen.push(t.clone());
            true
        }
    });
}

/// The tokens of a COPY with `ON`/`OFF` after a boolean option replaced by `TRUE`/`FALSE`.
fn copy_booleans(chunk: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    const BOOLEAN_OPTIONS: [&str; 4] = ["FREEZE", "HEADER", "OIDS", "CSV"];
    let mut previous: Option<String> = None;
    chunk
        .iter()
        .map(|t| {
            let mut t = t.clone();
            if let Token::Word(w) = &t.token {
                let upper = w.value.to_ascii_uppercase();
                let after_option = previous
                    .as_deref()
                    .is_some_and(|p| BOOLEAN_OPTIONS.contains(&p));
                if after_option && (upper == "ON" || upper == "OFF") {
                    t.token = Token::make_keyword(if upper == "ON" { "TRUE" } else { "FALSE" });
                }
                previous = Some(upper);
            } else if !matches!(t.token, Token::Whitespace(_)) {
                previous = None;
            }
            t
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod copy_boolean_tests {
    use super::*;

    #[test]
    fn pgbench_copy_with_freeze_on_is_copy_in_not_unparsed() {
        let mut session = SqlSession::default();
        let facts = extract(
            "copy pgbench_accounts from stdin with (freeze on)",
            &mut session,
            &SqlLimits::default(),
        );
        assert_eq!(facts.statements.len(), 1);
        assert_eq!(facts.statements[0].unparsed, None);
        assert_eq!(facts.statements[0].class, SqlClass::CopyIn);
        // ON elsewhere is untouched: a COPY TO PROGRAM stays an escape hatch.
        let facts = extract(
            "COPY t TO PROGRAM 'id' WITH (HEADER ON)",
            &mut session,
            &SqlLimits::default(),
        );
        assert!(
            facts.statements[0].escape_hatch
                || facts.statements[0].copy_endpoint
                    == Some(super::super::facts::CopyEndpoint::Program)
        );
    }
}
