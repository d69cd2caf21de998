//! The syntax-tree walk: relations read and written, CTE names, schemas, functions called and
//! the effects of every statement met on the way (nested DML in CTEs, `EXPLAIN ANALYZE` and
//! `PREPARE` bodies included). It covers the known gaps of sqlparser's `visit_relations`: `DROP`,
//! `GRANT`/`REVOKE`, `COPY` targets, `TRUNCATE`, `LOCK`, `VACUUM`, `COMMENT`, CTE names.
use std::ops::ControlFlow;

use sqlparser::ast::{
    CopySource, CopyTarget, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments,
    GrantObjects, ObjectName, Query, Reset, SchemaName, Set, SetExpr, Statement, TableFactor,
    TableObject, Value, Visit, Visitor,
};

use super::classify::explain_runs;
use super::constant_fold::is_constant_true;
use super::facts::{CopyEndpoint, Relation, SqlClass};
use super::names::{function_name, name_parts, normalize_ident, relation_of, search_path_entries};

/// Functions that reach outside the database (ANY-1), matched on the bare normalised name.
const ESCAPE_FUNCTIONS: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "lo_import",
    "lo_export",
    "pg_reload_conf",
];

/// Name prefixes of function families that reach outside the database.
const ESCAPE_PREFIXES: &[&str] = &["dblink", "pg_file_", "pg_ls_"];

/// Functions that run SQL given as text, with the index of the argument holding it.
const DYNAMIC_SQL_FUNCTIONS: &[(&str, usize)] = &[
    ("query_to_xml", 0),
    ("query_to_xmlschema", 0),
    ("query_to_xml_and_xmlschema", 0),
    ("ts_stat", 0),
    ("ts_rewrite", 1),
];

/// Whether a bare normalised function name is a server escape hatch.
pub fn is_escape_function(name: &str) -> bool {
    ESCAPE_FUNCTIONS.contains(&name) || ESCAPE_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Everything the walk learned about one statement.
#[derive(Debug, Default)]
pub struct Collected {
    /// Relation occurrences met as relations (reads, until write targets are subtracted).
    pub relations: Vec<Relation>,
    /// Write targets.
    pub written: Vec<Relation>,
    /// CTE names.
    pub ctes: Vec<String>,
    /// Schemas named outside relation names (`CREATE SCHEMA`, `GRANT ... IN SCHEMA`, search_path).
    pub schemas: Vec<String>,
    /// Bare normalised function names.
    pub functions: Vec<String>,
    /// The strongest data-modifying class met in a statement that runs (not under plain EXPLAIN).
    pub write_class: Option<SqlClass>,
    /// UPDATE/DELETE statements met that run, and how many of them had a WHERE.
    pub dml_seen: usize,
    /// See `dml_seen`.
    pub dml_with_where: usize,
    /// An UPDATE/DELETE without WHERE or with a constant-true one, or a constant-true MERGE.
    pub unconditional_write: bool,
    /// Privilege or role change.
    pub privilege_change: bool,
    /// Server escape hatch.
    pub escape_hatch: bool,
    /// `search_path` gains schema `secrets`.
    pub search_path_secrets: bool,
    /// COPY endpoint.
    pub copy_endpoint: Option<CopyEndpoint>,
    /// Trail tags.
    pub risk_tags: Vec<String>,
    /// SQL text handed to dynamic-SQL functions, to be judged too.
    pub dynamic_sql: Vec<String>,
    /// Meaning could not be established.
    pub unparsed: Option<String>,
    /// Open statements: whether each is a plain (non-ANALYZE) EXPLAIN.
    explain_stack: Vec<bool>,
}

impl Collected {
    fn tag(&mut self, tag: &str) {
        if !self.risk_tags.iter().any(|t| t == tag) {
            self.risk_tags.push(tag.to_owned());
        }
    }

    fn explain_only(&self) -> bool {
        self.explain_stack.iter().any(|e| *e)
    }

    fn write(&mut self, name: &ObjectName) {
        let rel = relation_of(name);
        if self.explain_only() {
            self.relations.push(rel);
        } else {
            self.written.push(rel);
        }
    }

    fn schema(&mut self, name: &ObjectName) {
        if let Some(Some(last)) = name_parts(name).pop() {
            self.schemas.push(last);
        }
    }

    fn note_write_class(&mut self, class: SqlClass) {
        if self.explain_only() {
            return;
        }
        let rank = |c: SqlClass| match c {
            SqlClass::Delete => 4,
            SqlClass::Update => 3,
            SqlClass::Merge => 2,
            SqlClass::Insert => 1,
            _ => 0,
        };
        if self.write_class.is_none_or(|old| rank(class) > rank(old)) {
            self.write_class = Some(class);
        }
    }

    fn conditional_dml(&mut self, selection: Option<&Expr>) {
        if self.explain_only() {
            return;
        }
        self.dml_seen += 1;
        match selection {
            None => {
                self.unconditional_write = true;
                self.tag("no_where");
            }
            Some(cond) => {
                self.dml_with_where += 1;
                if is_constant_true(cond) {
                    self.unconditional_write = true;
                    self.tag("constant_true_where");
                }
            }
        }
    }

    fn table_factor_write(&mut self, factor: &TableFactor) {
        if let TableFactor::Table { name, .. } = factor {
            self.write(name);
        }
    }

    fn function(&mut self, name: &ObjectName) -> String {
        let (schema, bare) = function_name(name);
        if let Some(schema) = schema {
            self.schemas.push(schema);
        }
        if is_escape_function(&bare) {
            self.escape_hatch = true;
            self.tag("escape_function");
        }
        self.functions.push(bare.clone());
        bare
    }

    fn function_call(&mut self, func: &Function) {
        let bare = self.function(&func.name);
        let args = positional_args(func);
        if bare == "set_config" {
            self.set_config(&args);
        }
        if let Some((_, index)) = DYNAMIC_SQL_FUNCTIONS.iter().find(|(n, _)| *n == bare) {
            match args.get(*index).copied().flatten().and_then(string_literal) {
                Some(sql) => {
                    self.tag("dynamic_sql");
                    self.dynamic_sql.push(sql);
                }
                None => {
                    // ts_rewrite(query, target, substitute) has no SQL text argument.
                    if !(bare == "ts_rewrite" && args.len() != 2) {
                        self.unparsed = Some(format!(
                            "sql text passed to {bare}() is not a literal and cannot be inspected"
                        ));
                    }
                }
            }
        }
    }

    fn set_config(&mut self, args: &[Option<&Expr>]) {
        let setting = args.first().copied().flatten().and_then(string_literal);
        match setting.map(|s| s.trim().to_ascii_lowercase()) {
            Some(s) if s == "role" || s == "session_authorization" => {
                self.privilege_change = true;
                self.tag("role_change");
            }
            Some(s) if s == "search_path" => {
                match args.get(1).copied().flatten().and_then(string_literal) {
                    Some(value) => self.search_path(&search_path_entries(&value)),
                    None => {
                        self.search_path_secrets = true;
                        self.tag("dynamic_search_path");
                    }
                }
            }
            Some(_) => {}
            None => {
                self.privilege_change = true;
                self.tag("dynamic_set_config");
            }
        }
    }

    fn search_path(&mut self, entries: &[String]) {
        for entry in entries {
            if entry == "secrets" {
                self.search_path_secrets = true;
                self.tag("search_path_secrets");
            }
            self.schemas.push(entry.clone());
        }
    }

    fn set_variable(&mut self, variable: &ObjectName, values: &[Expr]) {
        let parts = name_parts(variable);
        let name = parts
            .iter()
            .map(|p| p.clone().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(".");
        match name.as_str() {
            "role" | "session_authorization" => {
                self.privilege_change = true;
                self.tag("role_change");
            }
            "search_path" => {
                let mut entries = Vec::new();
                for value in values {
                    match value {
                        Expr::Identifier(ident) => entries.push(normalize_ident(ident)),
                        other => match string_literal(other) {
                            Some(s) => entries.extend(search_path_entries(&s)),
                            None => {
                                self.search_path_secrets = true;
                                self.tag("dynamic_search_path");
                            }
                        },
                    }
                }
                self.search_path(&entries);
            }
            _ => {}
        }
    }

    fn statement(&mut self, statement: &Statement) {
        match statement {
            Statement::Insert(insert) => {
                self.note_write_class(SqlClass::Insert);
                if let TableObject::TableName(name) = &insert.table {
                    self.write(name);
                }
            }
            Statement::Update(update) => {
                self.note_write_class(SqlClass::Update);
                self.table_factor_write(&update.table.relation);
                self.conditional_dml(update.selection.as_ref());
            }
            Statement::Delete(delete) => {
                self.note_write_class(SqlClass::Delete);
                for name in &delete.tables {
                    self.write(name);
                }
                let from = match &delete.from {
                    sqlparser::ast::FromTable::WithFromKeyword(f)
                    | sqlparser::ast::FromTable::WithoutKeyword(f) => f,
                };
                if let Some(first) = from.first() {
                    self.table_factor_write(&first.relation);
                }
                self.conditional_dml(delete.selection.as_ref());
            }
            Statement::Merge(merge) => {
                self.note_write_class(SqlClass::Merge);
                self.table_factor_write(&merge.table);
                if !self.explain_only() {
                    self.dml_seen += 1;
                    self.dml_with_where += 1;
                    if is_constant_true(&merge.on) {
                        self.unconditional_write = true;
                        self.tag("constant_true_merge");
                    }
                }
            }
            Statement::Copy {
                source, to, target, ..
            } => {
                if let CopySource::Table { table_name, .. } = source {
                    if *to {
                        self.relations.push(relation_of(table_name));
                    } else {
                        self.write(table_name);
                    }
                }
                let endpoint = match target {
                    CopyTarget::Stdin | CopyTarget::Stdout => CopyEndpoint::Client,
                    CopyTarget::File { .. } => {
                        self.escape_hatch = true;
                        self.tag("copy_server_file");
                        CopyEndpoint::ServerFile
                    }
                    CopyTarget::Program { .. } => {
                        self.escape_hatch = true;
                        self.tag("copy_program");
                        CopyEndpoint::Program
                    }
                };
                self.copy_endpoint = Some(endpoint);
            }
            Statement::Truncate(truncate) => {
                for target in &truncate.table_names {
                    self.write(&target.name);
                }
            }
            Statement::Drop {
                object_type, names, ..
            } => {
                use sqlparser::ast::ObjectType;
                for name in names {
                    match object_type {
                        ObjectType::Schema => self.schema(name),
                        ObjectType::Role | ObjectType::User | ObjectType::Database => {}
                        _ => self.write(name),
                    }
                }
                if matches!(object_type, ObjectType::Role | ObjectType::User) {
                    self.privilege_change = true;
                    self.tag("role_change");
                }
            }
            Statement::Grant(grant) => {
                self.privilege_change = true;
                self.tag("privilege_change");
                if let Some(objects) = &grant.objects {
                    self.grant_objects(objects);
                }
            }
            Statement::Revoke(revoke) => {
                self.privilege_change = true;
                self.tag("privilege_change");
                if let Some(objects) = &revoke.objects {
                    self.grant_objects(objects);
                }
            }
            Statement::CreateRole(_)
            | Statement::AlterRole { .. }
            | Statement::CreateUser(_)
            | Statement::AlterUser(_) => {
                self.privilege_change = true;
                self.tag("role_change");
            }
            Statement::CreateTable(create) => self.write(&create.name),
            Statement::CreateView(view) => self.write(&view.name),
            Statement::CreateIndex(index) => {
                self.write(&index.table_name);
            }
            Statement::AlterTable(alter) => self.write(&alter.name),
            Statement::AlterView { name, .. } | Statement::AlterIndex { name, .. } => {
                self.write(name)
            }
            Statement::CreateSchema { schema_name, .. } => match schema_name {
                SchemaName::Simple(name) | SchemaName::NamedAuthorization(name, _) => {
                    self.schema(name)
                }
                SchemaName::UnnamedAuthorization(ident) => {
                    self.schemas.push(normalize_ident(ident))
                }
            },
            Statement::CreateSequence { name, .. } => self.write(name),
            Statement::Comment { object_name, .. } => self.write(object_name),
            Statement::Lock(lock) => {
                for target in &lock.tables {
                    self.write(&target.name);
                }
            }
            Statement::Vacuum(vacuum) => {
                if let Some(name) = &vacuum.table_name {
                    self.write(name);
                }
            }
            Statement::Call(func) => {
                self.function_call(func);
            }
            Statement::Set(set) => self.set(set),
            Statement::Reset(reset) => {
                if let Reset::ConfigurationParameter(name) = &reset.reset {
                    let parts = name_parts(name);
                    if matches!(parts.as_slice(), [Some(p)] if p == "role" || p == "session_authorization")
                    {
                        self.privilege_change = true;
                        self.tag("role_change");
                    }
                }
            }
            Statement::Load { .. } => {
                self.escape_hatch = true;
                self.tag("load");
            }
            Statement::Query(query) => self.select_into(query),
            _ => {}
        }
    }

    fn set(&mut self, set: &Set) {
        match set {
            Set::SingleAssignment {
                variable, values, ..
            } => self.set_variable(variable, values),
            Set::MultipleAssignments { assignments } => {
                for a in assignments {
                    self.set_variable(&a.name, std::slice::from_ref(&a.value));
                }
            }
            Set::ParenthesizedAssignments { variables, values } => {
                for variable in variables {
                    self.set_variable(variable, values);
                }
            }
            Set::SetRole { .. } | Set::SetSessionAuthorization(_) => {
                self.privilege_change = true;
                self.tag("role_change");
            }
            _ => {}
        }
    }

    fn select_into(&mut self, query: &Query) {
        if let SetExpr::Select(select) = query.body.as_ref() {
            if let Some(into) = &select.into {
                self.write(&into.name);
            }
        }
    }

    fn grant_objects(&mut self, objects: &GrantObjects) {
        match objects {
            GrantObjects::AllSequencesInSchema { schemas }
            | GrantObjects::AllTablesInSchema { schemas }
            | GrantObjects::AllViewsInSchema { schemas }
            | GrantObjects::AllMaterializedViewsInSchema { schemas }
            | GrantObjects::AllExternalTablesInSchema { schemas }
            | GrantObjects::AllFunctionsInSchema { schemas }
            | GrantObjects::FutureTablesInSchema { schemas }
            | GrantObjects::FutureViewsInSchema { schemas }
            | GrantObjects::FutureExternalTablesInSchema { schemas }
            | GrantObjects::FutureMaterializedViewsInSchema { schemas }
            | GrantObjects::FutureSequencesInSchema { schemas }
            | GrantObjects::Schemas(schemas) => {
                for s in schemas {
                    self.schema(s);
                }
            }
            GrantObjects::Sequences(names)
            | GrantObjects::Tables(names)
            | GrantObjects::Views(names) => {
                for n in names {
                    self.write(n);
                }
            }
            GrantObjects::Procedure { name, .. } | GrantObjects::Function { name, .. } => {
                self.function(name);
            }
            _ => {}
        }
    }
}

/// The positional (or named) argument expressions of a call; `None` for `*` and the like.
fn positional_args(func: &Function) -> Vec<Option<&Expr>> {
    match &func.args {
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
                | FunctionArg::Named {
                    arg: FunctionArgExpr::Expr(e),
                    ..
                }
                | FunctionArg::ExprNamed {
                    arg: FunctionArgExpr::Expr(e),
                    ..
                } => Some(e),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The text of a string literal, seen through parentheses and casts.
pub fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::UnicodeStringLiteral(s)
            | Value::NationalStringLiteral(s) => Some(s.clone()),
            Value::DollarQuotedString(d) => Some(d.value.clone()),
            _ => None,
        },
        Expr::Nested(inner) => string_literal(inner),
        Expr::Cast { expr, .. } => string_literal(expr),
        _ => None,
    }
}

impl Visitor for Collected {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        self.explain_stack.push(match statement {
            Statement::Explain { .. } => !explain_runs(statement),
            Statement::ExplainTable { .. } => true,
            _ => false,
        });
        self.statement(statement);
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, _statement: &Statement) -> ControlFlow<()> {
        self.explain_stack.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.push(normalize_ident(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.relations.push(relation_of(relation));
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => {
                self.function(name);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(func) = expr {
            self.function_call(func);
        }
        ControlFlow::Continue(())
    }
}

/// Walks a statement (and everything nested in it) and returns what it found.
pub fn collect(statement: &Statement) -> Collected {
    let mut collected = Collected::default();
    let _ = statement.visit(&mut collected);
    collected
}
