//! Facts to Cedar request contexts, one per action kind (shapes in `schema/bastion.cedarschema`).
use std::net::IpAddr;

use cedar_policy::{Context, RestrictedExpression};

use super::derived;
use crate::shell::ShellCommandFacts;
use crate::sql::{CopyEndpoint, Relation, SqlClass, SqlStatementFacts};

/// Attributes every context carries.
#[derive(Debug, Clone, Default)]
pub(crate) struct CommonFacts {
    /// `context.source_ip`, absent when unknown.
    pub source_ip: Option<IpAddr>,
    /// `context.time`.
    pub time: i64,
    /// `context.mfa_age`.
    pub mfa_age: i64,
    /// `context.grants`: actions covered by an active grant.
    pub grants: Vec<String>,
    /// `context.risk`: entry risk flags of the session.
    pub risk: Vec<String>,
}

type Pairs = Vec<(String, RestrictedExpression)>;

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_string())
}

fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(string))
}

fn common(c: &CommonFacts) -> Pairs {
    let mut pairs = vec![
        ("time".to_string(), RestrictedExpression::new_long(c.time)),
        (
            "mfa_age".to_string(),
            RestrictedExpression::new_long(c.mfa_age),
        ),
        (
            "grants".to_string(),
            set(c.grants.iter().map(String::as_str)),
        ),
        ("risk".to_string(), set(c.risk.iter().map(String::as_str))),
    ];
    if let Some(ip) = c.source_ip {
        pairs.push((
            "source_ip".to_string(),
            RestrictedExpression::new_ip(ip.to_string()),
        ));
    }
    pairs
}

fn finish(pairs: Pairs) -> Result<Context, String> {
    Context::from_pairs(pairs).map_err(|e| e.to_string())
}

/// Context of `connect`.
pub(crate) fn connect(c: &CommonFacts) -> Result<Context, String> {
    finish(common(c))
}

/// `schema.name`, or `name` when unqualified.
pub(crate) fn qualified(r: &Relation) -> String {
    match &r.schema {
        Some(schema) => format!("{schema}.{}", r.name),
        None => r.name.clone(),
    }
}

/// The Cedar action of a statement class.
pub(crate) fn sql_action(class: SqlClass) -> &'static str {
    match class {
        SqlClass::Select => "sql:select",
        SqlClass::Insert => "sql:insert",
        SqlClass::Update => "sql:update",
        SqlClass::Delete => "sql:delete",
        SqlClass::Merge => "sql:merge",
        SqlClass::Ddl => "sql:ddl",
        SqlClass::Dcl => "sql:dcl",
        SqlClass::CopyOut => "sql:copy_out",
        SqlClass::CopyIn => "sql:copy_in",
        SqlClass::Call => "sql:call",
        SqlClass::Session | SqlClass::Transaction => "sql:session",
        SqlClass::Other => "sql:other",
    }
}

/// The `class` attribute (snake case, as serialised).
pub(crate) fn class_name(class: SqlClass) -> &'static str {
    match class {
        SqlClass::Select => "select",
        SqlClass::Insert => "insert",
        SqlClass::Update => "update",
        SqlClass::Delete => "delete",
        SqlClass::Merge => "merge",
        SqlClass::Ddl => "ddl",
        SqlClass::Dcl => "dcl",
        SqlClass::CopyOut => "copy_out",
        SqlClass::CopyIn => "copy_in",
        SqlClass::Call => "call",
        SqlClass::Session => "session",
        SqlClass::Transaction => "transaction",
        SqlClass::Other => "other",
    }
}

/// Context of one SQL statement.
pub(crate) fn sql(c: &CommonFacts, s: &SqlStatementFacts) -> Result<Context, String> {
    let read: Vec<String> = s.tables_read.iter().map(qualified).collect();
    let written: Vec<String> = s.tables_written.iter().map(qualified).collect();
    let schemas_of_tables = s
        .tables_read
        .iter()
        .chain(&s.tables_written)
        .map(|r| r.schema.as_deref().unwrap_or(""));
    let copy_endpoint = match s.copy_endpoint {
        None => "",
        Some(CopyEndpoint::Client) => "client",
        Some(CopyEndpoint::ServerFile) => "server_file",
        Some(CopyEndpoint::Program) => "program",
    };
    let mut pairs = common(c);
    pairs.extend([
        ("class".to_string(), string(class_name(s.class))),
        ("verb".to_string(), string(&s.verb.to_ascii_uppercase())),
        (
            "object_kind".to_string(),
            string(s.object_kind.as_deref().unwrap_or("")),
        ),
        (
            "tables".to_string(),
            set(read.iter().chain(&written).map(String::as_str)),
        ),
        (
            "tables_read".to_string(),
            set(read.iter().map(String::as_str)),
        ),
        (
            "tables_written".to_string(),
            set(written.iter().map(String::as_str)),
        ),
        ("table_schemas".to_string(), set(schemas_of_tables)),
        ("names".to_string(), set(s.names.iter().map(String::as_str))),
        (
            "schemas".to_string(),
            set(s.schemas.iter().map(String::as_str)),
        ),
        (
            "functions".to_string(),
            set(s.functions.iter().map(String::as_str)),
        ),
        (
            "has_where".to_string(),
            RestrictedExpression::new_bool(s.has_where),
        ),
        (
            "unconditional_write".to_string(),
            RestrictedExpression::new_bool(s.unconditional_write),
        ),
        ("copy_endpoint".to_string(), string(copy_endpoint)),
        (
            "explain_only".to_string(),
            RestrictedExpression::new_bool(s.explain_only),
        ),
        (
            "privilege_change".to_string(),
            RestrictedExpression::new_bool(s.privilege_change),
        ),
        (
            "escape_hatch".to_string(),
            RestrictedExpression::new_bool(s.escape_hatch),
        ),
        (
            "search_path_secrets".to_string(),
            RestrictedExpression::new_bool(s.search_path_secrets),
        ),
        (
            "unparsed".to_string(),
            RestrictedExpression::new_bool(s.unparsed.is_some()),
        ),
        (
            "risk_tags".to_string(),
            set(s.risk_tags.iter().map(String::as_str)),
        ),
    ]);
    finish(pairs)
}

/// Context of one simple shell command.
pub(crate) fn shell(c: &CommonFacts, cmd: &ShellCommandFacts) -> Result<Context, String> {
    let d = derived::derive(cmd);
    let args_line = cmd.args.join(" ");
    let redirect_ops = cmd.redirects.iter().map(|(op, _)| op.as_str());
    let mut pairs = common(c);
    pairs.extend([
        ("name".to_string(), string(&cmd.name)),
        (
            "path".to_string(),
            string(cmd.path.as_deref().unwrap_or("")),
        ),
        ("args".to_string(), set(cmd.args.iter().map(String::as_str))),
        ("args_line".to_string(), string(&args_line)),
        ("subcommand".to_string(), string(&d.subcommand)),
        (
            "flags".to_string(),
            set(cmd.flags.iter().map(String::as_str)),
        ),
        (
            "paths".to_string(),
            set(cmd.paths.iter().map(String::as_str)),
        ),
        (
            "sensitive_paths".to_string(),
            set(d.sensitive_paths.iter().map(String::as_str)),
        ),
        ("redirect_ops".to_string(), set(redirect_ops)),
        (
            "writes_file".to_string(),
            RestrictedExpression::new_bool(d.writes_file),
        ),
        ("dd_output".to_string(), string(&d.dd_output)),
        (
            "wrappers".to_string(),
            set(cmd.wrappers.iter().map(String::as_str)),
        ),
        (
            "dynamic".to_string(),
            RestrictedExpression::new_bool(cmd.dynamic),
        ),
        (
            "fed_by_download".to_string(),
            RestrictedExpression::new_bool(cmd.fed_by_download),
        ),
        (
            "runs_download".to_string(),
            RestrictedExpression::new_bool(cmd.runs_download),
        ),
        (
            "unparsed".to_string(),
            RestrictedExpression::new_bool(false),
        ),
    ]);
    finish(pairs)
}

/// Context of an SFTP operation.
pub(crate) fn sftp(c: &CommonFacts, path: &str) -> Result<Context, String> {
    let mut pairs = common(c);
    pairs.push((
        "path".to_string(),
        string(&crate::shell::paths::normalize(path)),
    ));
    finish(pairs)
}

/// Context of a port forward.
pub(crate) fn forward(c: &CommonFacts, host: &str, port: u16) -> Result<Context, String> {
    let mut pairs = common(c);
    pairs.push(("host".to_string(), string(&host.to_ascii_lowercase())));
    pairs.push((
        "port".to_string(),
        RestrictedExpression::new_long(i64::from(port)),
    ));
    finish(pairs)
}
