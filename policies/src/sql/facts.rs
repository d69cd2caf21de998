//! The facts the engine receives for one SQL message (the contract between `sql` and `engine`).
//!
//! Names are normalised as PostgreSQL resolves them: unquoted identifiers folded to lower case,
//! quoted identifiers and `U&"..."` escapes decoded. Every flag is computed over the *whole*
//! statement, including CTEs, subqueries, `EXPLAIN [ANALYZE]` and `PREPARE` bodies.
use serde::Serialize;

/// Session state the caller supplies and the extractor updates (SQL-level `PREPARE` bodies,
/// `standard_conforming_strings`).
#[derive(Debug, Clone, Default)]
pub struct SqlSession {
    /// `standard_conforming_strings` as last reported by the server (default on).
    pub standard_conforming_strings: Option<bool>,
    /// SQL-level prepared statements (`PREPARE name AS ...`) by lower-cased name -> body text,
    /// so `EXECUTE name` is judged as what it prepared.
    pub prepared: std::collections::BTreeMap<String, String>,
}

/// Facts for one message (one `Query` string, or one `Parse`), which may hold several statements.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SqlMessageFacts {
    /// One entry per statement, in order. Empty when the message is empty (only `;`, blanks, comments).
    pub statements: Vec<SqlStatementFacts>,
    /// Set when the message as a whole could not be parsed or was refused before parsing
    /// (too large, invalid UTF-8, NUL bytes, nesting too deep): the parser's or checker's message.
    /// The engine denies such a message (ANY-0).
    pub unparsed: Option<String>,
}

/// Statement classes; each maps to a Cedar action (`sql:<class>`; `transaction` maps to `sql:session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SqlClass {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Ddl,
    Dcl,
    CopyOut,
    CopyIn,
    Call,
    Session,
    Transaction,
    Other,
}

/// Where a `COPY` reads from or writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyEndpoint {
    /// `STDIN` / `STDOUT`: the client's side.
    Client,
    /// A file on the server.
    ServerFile,
    /// `PROGRAM '...'` on the server.
    Program,
}

/// A relation as PostgreSQL would resolve its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Relation {
    /// Schema if written (normalised), else `None`.
    pub schema: Option<String>,
    /// Relation name (normalised).
    pub name: String,
}

/// Facts for one statement.
#[derive(Debug, Clone, Serialize)]
pub struct SqlStatementFacts {
    /// The statement's class. For `EXPLAIN ANALYZE X` and `EXECUTE p` this is the class of `X` / of
    /// what `p` prepared; for `PREPARE p AS X` it is the class of `X`; for plain `EXPLAIN X` it is `Select`.
    pub class: SqlClass,
    /// Upper-case leading verb as written, e.g. `"SELECT"`, `"DROP"`, `"VACUUM"`, `"EXPLAIN"`.
    pub verb: String,
    /// Kind of object a DDL/DCL statement acts on, lower case: `"table"`, `"role"`, `"index"`,
    /// `"schema"`, `"function"`, `"view"`, `"default_privileges"`, ... `None` for non-DDL.
    pub object_kind: Option<String>,
    /// Relations read (anywhere: joins, subqueries, CTE bodies). CTE names themselves are not
    /// relations, *except* that a CTE named like a protected relation is also listed in `names`.
    pub tables_read: Vec<Relation>,
    /// Relations written (INSERT/UPDATE/DELETE/MERGE/COPY FROM/TRUNCATE/CREATE TABLE AS/SELECT INTO targets,
    /// and objects created/altered/dropped).
    pub tables_written: Vec<Relation>,
    /// Every name the statement mentions as a relation or CTE (bare names, normalised), for rules
    /// like SQL-8 ("names a relation `payroll`").
    pub names: Vec<String>,
    /// Every schema mentioned (normalised), including schemas put on `search_path`.
    pub schemas: Vec<String>,
    /// Functions called anywhere, bare normalised names (`pg_catalog.PG_READ_FILE` -> `pg_read_file`).
    pub functions: Vec<String>,
    /// UPDATE/DELETE has a WHERE clause (MERGE: always true).
    pub has_where: bool,
    /// Some UPDATE/DELETE in the statement (top level, CTE, EXPLAIN ANALYZE, PREPARE body) has no
    /// WHERE or a constant-true one; or a MERGE whose ON is constant-true.
    pub unconditional_write: bool,
    /// `COPY` endpoint, if this is a COPY.
    pub copy_endpoint: Option<CopyEndpoint>,
    /// `EXPLAIN` without `ANALYZE` (runs nothing).
    pub explain_only: bool,
    /// Changes privileges or roles: GRANT, REVOKE, CREATE/ALTER/DROP ROLE/USER/GROUP,
    /// ALTER DEFAULT PRIVILEGES, `ALTER ... OWNER TO`, SET [LOCAL|SESSION] ROLE, SET SESSION AUTHORIZATION,
    /// `set_config('role'|'session_authorization', ...)`, RESET ROLE / SESSION AUTHORIZATION.
    pub privilege_change: bool,
    /// Server escape hatches (ANY-1): COPY TO/FROM PROGRAM or a server file, ALTER SYSTEM, LOAD,
    /// calls of pg_read_file, pg_read_binary_file, pg_ls_dir, pg_stat_file, lo_import, lo_export,
    /// dblink*, pg_reload_conf.
    pub escape_hatch: bool,
    /// A `SET search_path` / `set_config('search_path', ...)` that puts schema `secrets` on the path.
    pub search_path_secrets: bool,
    /// The statement's meaning cannot be established (DO blocks, unknown statement kinds,
    /// EXECUTE of an unknown prepared statement): the parser's or extractor's message. Fail closed.
    pub unparsed: Option<String>,
    /// Short machine tags for the trail, e.g. `"no_where"`, `"copy_program"`, `"role_change"`.
    pub risk_tags: Vec<String>,
}
