//! Statement classes (the Cedar action a statement is judged under), leading verbs and DDL/DCL
//! object kinds. Parsed statements are classified from the syntax tree; what sqlparser cannot
//! parse goes through a small keyword classifier that knows only statements whose meaning is
//! fixed by their first words (`CHECKPOINT`, `LOAD`, `ALTER SYSTEM`, ...). Everything else is
//! left unclassified, so the caller marks it unparsed: an unknown is never called harmless.
use sqlparser::ast::{ObjectType, SetExpr, Statement};
use sqlparser::tokenizer::Token;

use super::facts::SqlClass;

/// How a statement must be judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// Judged under this class.
    As(SqlClass),
    /// Judged as the statement it wraps (`EXPLAIN ANALYZE X`, `PREPARE p AS X`).
    Inner,
    /// Judged as what `EXECUTE name` prepared.
    Execute(String),
    /// Not a PostgreSQL statement this extractor understands.
    Unknown(&'static str),
}

/// Classifies a parsed statement.
pub fn classify(statement: &Statement) -> Judged {
    use SqlClass::*;
    let class = match statement {
        Statement::Query(query) => return Judged::As(query_class(query)),
        Statement::Insert(_) => Insert,
        Statement::Update(_) => Update,
        Statement::Delete(_) => Delete,
        Statement::Merge(_) => Merge,
        Statement::Copy { to: true, .. } => CopyOut,
        Statement::Copy { to: false, .. } => CopyIn,
        Statement::Call(_) => Call,
        Statement::Prepare { .. } => return Judged::Inner,
        Statement::Explain { .. } if explain_runs(statement) => return Judged::Inner,
        Statement::Explain { .. } | Statement::ExplainTable { .. } => Select,
        Statement::Execute {
            name: Some(name),
            immediate: false,
            ..
        } => {
            return Judged::Execute(super::names::relation_of(name).name);
        }
        Statement::Execute { .. } => return Judged::Unknown("EXECUTE without a name"),
        Statement::Declare { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. } => Select,
        Statement::Set(set) => match set {
            sqlparser::ast::Set::SetTransaction { .. } => Transaction,
            _ => Session,
        },
        Statement::Reset(_)
        | Statement::Discard { .. }
        | Statement::Deallocate { .. }
        | Statement::LISTEN { .. }
        | Statement::UNLISTEN { .. }
        | Statement::NOTIFY { .. } => Session,
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => Transaction,
        Statement::Grant(_)
        | Statement::Revoke(_)
        | Statement::Deny(_)
        | Statement::CreateRole(_)
        | Statement::AlterRole { .. }
        | Statement::CreateUser(_)
        | Statement::AlterUser(_) => Dcl,
        Statement::Drop {
            object_type: ObjectType::Role | ObjectType::User,
            ..
        } => Dcl,
        Statement::Truncate(_)
        | Statement::Drop { .. }
        | Statement::DropFunction(_)
        | Statement::DropDomain(_)
        | Statement::DropProcedure { .. }
        | Statement::DropPolicy(_)
        | Statement::DropExtension(_)
        | Statement::DropOperator(_)
        | Statement::DropOperatorFamily(_)
        | Statement::DropOperatorClass(_)
        | Statement::DropTrigger(_)
        | Statement::CreateView(_)
        | Statement::CreateTable(_)
        | Statement::CreateIndex(_)
        | Statement::CreatePolicy(_)
        | Statement::CreateOperator(_)
        | Statement::CreateOperatorFamily(_)
        | Statement::CreateOperatorClass(_)
        | Statement::CreateServer(_)
        | Statement::CreateSchema { .. }
        | Statement::CreateDatabase { .. }
        | Statement::CreateFunction(_)
        | Statement::CreateTrigger(_)
        | Statement::CreateProcedure { .. }
        | Statement::CreateSequence { .. }
        | Statement::CreateDomain(_)
        | Statement::CreateType { .. }
        | Statement::CreateExtension(_)
        | Statement::CreateCollation(_)
        | Statement::AlterTable(_)
        | Statement::AlterSchema(_)
        | Statement::AlterIndex { .. }
        | Statement::AlterView { .. }
        | Statement::AlterFunction(_)
        | Statement::AlterType(_)
        | Statement::AlterCollation(_)
        | Statement::AlterOperator(_)
        | Statement::AlterOperatorFamily(_)
        | Statement::AlterOperatorClass(_)
        | Statement::AlterPolicy(_)
        | Statement::Comment { .. }
        | Statement::Lock(_)
        | Statement::Vacuum(_)
        | Statement::Analyze(_) => Ddl,
        Statement::Load { .. } => Other,
        _ => return Judged::Unknown("statement kind is not a known PostgreSQL statement"),
    };
    Judged::As(class)
}

/// Whether an `EXPLAIN` runs its statement: `ANALYZE` as a keyword, or an `(ANALYZE [value])`
/// option whose value is not false (`off`, `false`, `0`, `no`).
pub fn explain_runs(statement: &Statement) -> bool {
    let Statement::Explain {
        analyze, options, ..
    } = statement
    else {
        return false;
    };
    if *analyze {
        return true;
    }
    options.iter().flatten().any(|option| {
        option.name.value.eq_ignore_ascii_case("analyze")
            && match &option.arg {
                None => true,
                Some(arg) => {
                    let text = arg.to_string().trim_matches('\'').to_ascii_lowercase();
                    !matches!(text.as_str(), "false" | "off" | "0" | "no")
                }
            }
    })
}

/// The class of a query: a read, unless it is `SELECT INTO` (creates a table) or its body is
/// itself a data-modifying statement.
fn query_class(query: &sqlparser::ast::Query) -> SqlClass {
    match query.body.as_ref() {
        SetExpr::Select(select) if select.into.is_some() => SqlClass::Ddl,
        SetExpr::Insert(_) => SqlClass::Insert,
        SetExpr::Update(_) => SqlClass::Update,
        SetExpr::Delete(_) => SqlClass::Delete,
        SetExpr::Merge(_) => SqlClass::Merge,
        _ => SqlClass::Select,
    }
}

/// The upper-case words at the start of a statement (unquoted words only, up to `n`).
pub fn leading_words<'a>(tokens: impl Iterator<Item = &'a Token>, n: usize) -> Vec<String> {
    tokens
        .take(n)
        .map_while(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        })
        .collect()
}

/// Modifiers that may sit between a DDL verb and the kind of object it acts on.
const KIND_MODIFIERS: &[&str] = &[
    "OR",
    "REPLACE",
    "UNIQUE",
    "TEMP",
    "TEMPORARY",
    "UNLOGGED",
    "GLOBAL",
    "LOCAL",
    "RECURSIVE",
    "TRUSTED",
    "PROCEDURAL",
    "CONSTRAINT",
    "DEFAULT",
];

/// Two-word object kinds.
const TWO_WORD_KINDS: &[(&str, &str)] = &[
    ("MATERIALIZED", "VIEW"),
    ("FOREIGN", "TABLE"),
    ("FOREIGN", "DATA"),
    ("EVENT", "TRIGGER"),
    ("TEXT", "SEARCH"),
    ("DEFAULT", "PRIVILEGES"),
    ("ACCESS", "METHOD"),
    ("USER", "MAPPING"),
    ("OPERATOR", "CLASS"),
    ("OPERATOR", "FAMILY"),
];

/// The kind of object a DDL/DCL statement acts on, from its leading words (lower case,
/// `snake_case` for several words). `words` starts with the verb.
pub fn object_kind(words: &[String], class: SqlClass) -> Option<String> {
    let verb = words.first()?.as_str();
    if !matches!(class, SqlClass::Ddl | SqlClass::Dcl) {
        return None;
    }
    let rest = words.get(1..).unwrap_or_default();
    let fixed = match verb {
        "TRUNCATE" | "VACUUM" | "ANALYZE" | "CLUSTER" | "LOCK" => Some("table"),
        "REFRESH" => Some("materialized_view"),
        "CHECKPOINT" => Some("system"),
        "SELECT" | "WITH" => Some("table"),
        "GRANT" | "REVOKE" => Some("privileges"),
        "REASSIGN" => Some("owned"),
        _ => None,
    };
    if let Some(kind) = fixed {
        return Some(kind.to_owned());
    }
    let rest: &[String] = match verb {
        "COMMENT" | "SECURITY" => rest
            .iter()
            .position(|w| w == "ON")
            .and_then(|i| rest.get(i + 1..))
            .unwrap_or_default(),
        _ => rest,
    };
    let mut iter = rest.iter().skip_while(|w| {
        KIND_MODIFIERS.contains(&w.as_str())
            && !(w.as_str() == "DEFAULT" && rest.iter().any(|x| x == "PRIVILEGES"))
    });
    let first = iter.next()?;
    if let Some(second) = iter.next() {
        if TWO_WORD_KINDS.contains(&(first.as_str(), second.as_str())) {
            return Some(format!(
                "{}_{}",
                first.to_ascii_lowercase(),
                second.to_ascii_lowercase()
            ));
        }
    }
    Some(match first.as_str() {
        "GROUP" | "USER" => "role".to_owned(),
        other => other.to_ascii_lowercase(),
    })
}

/// What the keyword classifier makes of a statement sqlparser could not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// Class to judge it under.
    pub class: SqlClass,
    /// A server escape hatch (`LOAD`, `ALTER SYSTEM`).
    pub escape_hatch: bool,
    /// Changes privileges (`ALTER DEFAULT PRIVILEGES`, `REASSIGN OWNED`, ...).
    pub privilege_change: bool,
    /// Trail tag.
    pub tag: Option<&'static str>,
}

/// Classifies statements whose meaning is fixed by their first words; `None` for the rest.
/// `words` are the leading unquoted words, upper case; `token_count` the statement's significant
/// tokens (a bare `CHECKPOINT` has one); `owner_change` whether it is an `ALTER ... OWNER TO`.
pub fn fallback(words: &[String], token_count: usize, owner_change: bool) -> Option<Fallback> {
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    let make = |class, escape_hatch, privilege_change, tag| {
        Some(Fallback {
            class,
            escape_hatch,
            privilege_change,
            tag,
        })
    };
    if owner_change {
        return make(SqlClass::Dcl, false, true, Some("owner_change"));
    }
    match (w(0), w(1)) {
        ("GRANT" | "REVOKE", _) => make(SqlClass::Dcl, false, true, Some("privilege_change")),
        ("TABLE", _) => make(SqlClass::Select, false, false, None),
        ("ALTER", "SYSTEM") => make(SqlClass::Ddl, true, false, Some("alter_system")),
        ("LOAD", _) => make(SqlClass::Other, true, false, Some("load")),
        ("CHECKPOINT", _) if token_count == 1 => make(SqlClass::Ddl, false, false, None),
        ("REINDEX" | "CLUSTER" | "VACUUM" | "ANALYZE" | "LOCK", _) => {
            make(SqlClass::Ddl, false, false, None)
        }
        ("REFRESH", "MATERIALIZED") => make(SqlClass::Ddl, false, false, None),
        ("ALTER", "DEFAULT") if w(2) == "PRIVILEGES" => {
            make(SqlClass::Dcl, false, true, Some("privilege_change"))
        }
        ("REASSIGN", "OWNED") | ("SECURITY", "LABEL") => {
            make(SqlClass::Dcl, false, true, Some("privilege_change"))
        }
        ("CREATE" | "ALTER" | "DROP", "ROLE" | "USER" | "GROUP") => {
            make(SqlClass::Dcl, false, true, Some("role_change"))
        }
        ("SET", "SESSION" | "LOCAL") if w(2) == "AUTHORIZATION" || w(2) == "ROLE" => {
            make(SqlClass::Session, false, true, Some("role_change"))
        }
        ("SET", "ROLE") => make(SqlClass::Session, false, true, Some("role_change")),
        ("RESET", "ROLE") | ("RESET", "SESSION") => {
            make(SqlClass::Session, false, true, Some("role_change"))
        }
        ("DROP", "OWNED") => make(SqlClass::Ddl, false, true, Some("privilege_change")),
        ("COMMENT", "ON") => make(SqlClass::Ddl, false, false, None),
        ("ABORT" | "END", _) => make(SqlClass::Transaction, false, false, None),
        ("COMMIT" | "ROLLBACK", "PREPARED") | ("PREPARE", "TRANSACTION") => {
            make(SqlClass::Transaction, false, false, None)
        }
        ("LISTEN" | "UNLISTEN" | "NOTIFY" | "DISCARD", _) => {
            make(SqlClass::Session, false, false, None)
        }
        ("MOVE" | "CLOSE", _) => make(SqlClass::Select, false, false, None),
        _ => None,
    }
}

/// Whether an `ALTER ... OWNER TO` appears in the statement's words (any object kind).
pub fn alters_owner<'a>(tokens: impl Iterator<Item = &'a Token>) -> bool {
    let mut previous_owner = false;
    let mut first = true;
    for token in tokens {
        let word = match token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        };
        if first {
            first = false;
            if word.as_deref() != Some("ALTER") {
                return false;
            }
        }
        if previous_owner && word.as_deref() == Some("TO") {
            return true;
        }
        previous_owner = word.as_deref() == Some("OWNER");
    }
    false
}
