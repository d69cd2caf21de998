//! Table-driven tests of SQL facts against every SQL rule of the starter policy pack
//! (ANY-0, ANY-1, SQL-1..SQL-8) and the evasions around them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

/// One expectation about a message's facts. Statement-level checks hold when *some* statement
/// of the message satisfies them (the engine decides a message by its strictest statement);
/// `No*` checks hold when *no* statement does.
#[derive(Debug, Clone, Copy)]
enum C {
    Class(SqlClass),
    Verb(&'static str),
    Kind(&'static str),
    Count(usize),
    Unparsed,
    Parsed,
    Uncond,
    NoUncond,
    HasWhere(bool),
    Esc,
    NoEsc,
    Priv,
    NoPriv,
    SpSecrets,
    NoSpSecrets,
    Name(&'static str),
    NoName(&'static str),
    Schema(&'static str),
    NoSchema(&'static str),
    Func(&'static str),
    Read(Option<&'static str>, &'static str),
    NoRead(&'static str),
    Written(Option<&'static str>, &'static str),
    Copy(CopyEndpoint),
    ExplainOnly,
}

fn run(sql: &str) -> SqlMessageFacts {
    extract(sql, &mut SqlSession::default(), &SqlLimits::default())
}

fn check(sql: &str, facts: &SqlMessageFacts, c: C) -> Result<(), String> {
    let s = &facts.statements;
    let any = |f: &dyn Fn(&SqlStatementFacts) -> bool| s.iter().any(f);
    let rel = |schema: Option<&str>, name: &str| Relation {
        schema: schema.map(str::to_owned),
        name: name.to_owned(),
    };
    let has = |v: &Vec<String>, x: &str| v.iter().any(|n| n == x);
    let ok = match c {
        C::Class(class) => any(&|f| f.class == class),
        C::Verb(verb) => any(&|f| f.verb == verb),
        C::Kind(kind) => any(&|f| f.object_kind.as_deref() == Some(kind)),
        C::Count(n) => s.len() == n,
        C::Unparsed => facts.unparsed.is_some() || any(&|f| f.unparsed.is_some()),
        C::Parsed => facts.unparsed.is_none() && !any(&|f| f.unparsed.is_some()),
        C::Uncond => any(&|f| f.unconditional_write),
        C::NoUncond => !any(&|f| f.unconditional_write),
        C::HasWhere(b) => any(&|f| f.has_where == b),
        C::Esc => any(&|f| f.escape_hatch),
        C::NoEsc => !any(&|f| f.escape_hatch),
        C::Priv => any(&|f| f.privilege_change),
        C::NoPriv => !any(&|f| f.privilege_change),
        C::SpSecrets => any(&|f| f.search_path_secrets),
        C::NoSpSecrets => !any(&|f| f.search_path_secrets),
        C::Name(n) => any(&|f| has(&f.names, n)),
        C::NoName(n) => !any(&|f| has(&f.names, n)),
        C::Schema(n) => any(&|f| has(&f.schemas, n)),
        C::NoSchema(n) => !any(&|f| has(&f.schemas, n)),
        C::Func(n) => any(&|f| has(&f.functions, n)),
        C::Read(schema, name) => any(&|f| f.tables_read.contains(&rel(schema, name))),
        C::NoRead(name) => !any(&|f| f.tables_read.iter().any(|r| r.name == name)),
        C::Written(schema, name) => any(&|f| f.tables_written.contains(&rel(schema, name))),
        C::Copy(e) => any(&|f| f.copy_endpoint == Some(e)),
        C::ExplainOnly => any(&|f| f.explain_only),
    };
    if ok {
        Ok(())
    } else {
        let brief: Vec<String> = s
            .iter()
            .map(|f| {
                format!(
                    "{:?}/{} kind={:?} r={:?} w={:?} names={:?} schemas={:?} fn={:?} unc={} esc={} priv={} sp={} unparsed={:?}",
                    f.class, f.verb, f.object_kind, f.tables_read, f.tables_written, f.names,
                    f.schemas, f.functions, f.unconditional_write, f.escape_hatch,
                    f.privilege_change, f.search_path_secrets, f.unparsed
                )
            })
            .collect();
        Err(format!(
            "{sql:?}: expected {c:?}, got {brief:?} msg={:?}",
            facts.unparsed
        ))
    }
}

use SqlClass as K;
use C::*;

const CASES: &[(&str, &[C])] = &[
    // ANY-0: what does not parse, or whose meaning cannot be established, is unparsed.
    ("DO $$ BEGIN PERFORM 1; END $$", &[Unparsed]),
    ("do $body$begin end$body$", &[Unparsed]),
    ("FROBNICATE the database", &[Unparsed]),
    ("SELECT * FROM", &[Unparsed]),
    ("SELECT 'unterminated", &[Unparsed]),
    ("EXECUTE never_prepared", &[Unparsed]),
    (
        "SELECT 1; BOGUS STATEMENT",
        &[Unparsed, Count(2), Class(K::Select)],
    ),
    ("SELECT query_to_xml(q, true, true, '') FROM t", &[Unparsed]),
    ("SELECT 1 garbage garbage", &[Unparsed]),
    // ANY-1: escape hatches.
    (
        "COPY t TO PROGRAM 'cat'",
        &[Esc, Copy(CopyEndpoint::Program), Class(K::CopyOut)],
    ),
    (
        "COPY t FROM PROGRAM 'curl x'",
        &[Esc, Copy(CopyEndpoint::Program), Class(K::CopyIn)],
    ),
    ("COPY t TO '/tmp/x'", &[Esc, Copy(CopyEndpoint::ServerFile)]),
    (
        "COPY t FROM '/etc/passwd'",
        &[Esc, Copy(CopyEndpoint::ServerFile), Written(None, "t")],
    ),
    ("copy (select 1) to program 'x'", &[Esc]),
    ("ALTER SYSTEM SET work_mem = '1MB'", &[Esc, Parsed]),
    ("alter   system reset all", &[Esc]),
    ("LOAD 'plpgsql'", &[Esc, Parsed]),
    (
        "SELECT pg_read_file('/etc/passwd')",
        &[Esc, Func("pg_read_file"), Class(K::Select)],
    ),
    (
        "SELECT pg_catalog.pg_read_file('x')",
        &[Esc, Func("pg_read_file"), Schema("pg_catalog")],
    ),
    ("SELECT \"pg_read_file\"('x')", &[Esc]),
    ("SELECT PG_READ_FILE('x')", &[Esc]),
    ("SELECT pg_read_file /* gap */ ('x')", &[Esc]),
    ("select * from pg_ls_dir('.')", &[Esc]),
    ("SELECT * FROM t ORDER BY pg_read_binary_file('x')", &[Esc]),
    ("SELECT (SELECT pg_stat_file('x'))", &[Esc]),
    (
        "SELECT a FROM t WHERE a IN (SELECT lo_import('/etc/passwd'))",
        &[Esc],
    ),
    ("SELECT lo_export(1, '/tmp/x')", &[Esc]),
    (
        "SELECT dblink_exec('dbname=x', 'drop table t')",
        &[Esc, Func("dblink_exec")],
    ),
    ("SELECT * FROM dblink('c', 'select 1') AS t(a int)", &[Esc]),
    ("SELECT pg_reload_conf()", &[Esc]),
    ("CREATE TABLE t (a text DEFAULT pg_read_file('x'))", &[Esc]),
    (
        "SELECT query_to_xml('select pg_read_file(''/etc/passwd'')', true, true, '')",
        &[Esc],
    ),
    ("SELECT 'pg_read_file(1)'", &[NoEsc]),
    ("SELECT pg_read_filex(1)", &[NoEsc]),
    ("COPY t TO STDOUT", &[NoEsc]),
    // SQL-1: reads, transaction control, ordinary settings, empty messages.
    ("SELECT 1", &[Class(K::Select), Verb("SELECT"), Parsed]),
    (
        "select * from t where id = 1",
        &[Class(K::Select), Read(None, "t")],
    ),
    ("VALUES (1), (2)", &[Class(K::Select)]),
    ("TABLE t", &[Class(K::Select), Name("t")]),
    ("SHOW work_mem", &[Class(K::Select)]),
    (
        "EXPLAIN SELECT * FROM t",
        &[Class(K::Select), ExplainOnly, Verb("EXPLAIN")],
    ),
    (
        "EXPLAIN DELETE FROM t",
        &[Class(K::Select), ExplainOnly, NoUncond],
    ),
    (
        "EXPLAIN (ANALYZE false) DELETE FROM t",
        &[Class(K::Select), NoUncond],
    ),
    ("EXPLAIN ANALYZE SELECT 1", &[Class(K::Select)]),
    (
        "DECLARE c CURSOR FOR SELECT * FROM t",
        &[Class(K::Select), Read(None, "t")],
    ),
    ("FETCH 10 FROM c", &[Class(K::Select)]),
    ("CLOSE c", &[Class(K::Select)]),
    ("MOVE NEXT FROM c", &[Class(K::Select), Parsed]),
    ("BEGIN", &[Class(K::Transaction)]),
    (
        "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        &[Class(K::Transaction)],
    ),
    ("COMMIT", &[Class(K::Transaction)]),
    ("ROLLBACK", &[Class(K::Transaction)]),
    ("SAVEPOINT a", &[Class(K::Transaction)]),
    ("RELEASE SAVEPOINT a", &[Class(K::Transaction)]),
    ("ROLLBACK TO SAVEPOINT a", &[Class(K::Transaction)]),
    ("END", &[Class(K::Transaction), Parsed]),
    ("ABORT", &[Class(K::Transaction), Parsed]),
    ("PREPARE TRANSACTION 'x'", &[Class(K::Transaction), Parsed]),
    ("COMMIT PREPARED 'x'", &[Class(K::Transaction), Parsed]),
    ("SET work_mem = '64MB'", &[Class(K::Session), NoPriv]),
    ("SET TIME ZONE 'UTC'", &[Class(K::Session), NoPriv]),
    ("RESET work_mem", &[Class(K::Session), NoPriv]),
    ("RESET ALL", &[Class(K::Session), NoPriv]),
    ("LISTEN ch", &[Class(K::Session)]),
    ("UNLISTEN *", &[Class(K::Session), Parsed]),
    ("NOTIFY ch, 'x'", &[Class(K::Session)]),
    ("DEALLOCATE p", &[Class(K::Session)]),
    ("DEALLOCATE ALL", &[Class(K::Session)]),
    ("DISCARD ALL", &[Class(K::Session), NoPriv]),
    (";", &[Count(0), Parsed]),
    ("  ;; ; ", &[Count(0), Parsed]),
    ("-- only a comment", &[Count(0), Parsed]),
    ("/* a /* nested */ comment */ ;", &[Count(0), Parsed]),
    ("", &[Count(0), Parsed]),
    // SQL-2: filtered writes, inserts, COPY FROM STDIN.
    (
        "INSERT INTO t VALUES (1)",
        &[Class(K::Insert), Written(None, "t"), NoUncond],
    ),
    (
        "INSERT INTO app.t SELECT * FROM app.u",
        &[Written(Some("app"), "t"), Read(Some("app"), "u")],
    ),
    (
        "UPDATE t SET a = 1 WHERE id = 5",
        &[
            Class(K::Update),
            HasWhere(true),
            NoUncond,
            Written(None, "t"),
        ],
    ),
    (
        "DELETE FROM t WHERE id = 5",
        &[Class(K::Delete), HasWhere(true), NoUncond],
    ),
    (
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1",
        &[
            Class(K::Merge),
            NoUncond,
            HasWhere(true),
            Written(None, "t"),
            Read(None, "s"),
        ],
    ),
    (
        "COPY t FROM STDIN",
        &[
            Class(K::CopyIn),
            Copy(CopyEndpoint::Client),
            NoEsc,
            Written(None, "t"),
        ],
    ),
    (
        "COPY t (a, b) FROM STDIN WITH (FORMAT csv)",
        &[Class(K::CopyIn)],
    ),
    ("DELETE FROM t WHERE false", &[NoUncond]),
    ("UPDATE t SET a = 1 WHERE id = 5 AND 1 = 1", &[NoUncond]),
    (
        "DELETE FROM t WHERE id IN (SELECT id FROM u)",
        &[NoUncond, Read(None, "u")],
    ),
    ("DELETE FROM t WHERE NULL", &[NoUncond]),
    ("DELETE FROM t WHERE 1 = 2", &[NoUncond]),
    ("UPDATE t SET a = 1 WHERE id = $1", &[NoUncond]),
    ("DELETE FROM t WHERE NOT (1 = 1)", &[NoUncond]),
    ("DELETE FROM t WHERE 1 = 1 AND false", &[NoUncond]),
    // SQL-3: unconditional writes, also hidden.
    (
        "DELETE FROM t",
        &[Class(K::Delete), Uncond, HasWhere(false)],
    ),
    (
        "UPDATE t SET a = 1",
        &[Class(K::Update), Uncond, HasWhere(false)],
    ),
    ("DELETE FROM t WHERE true", &[Uncond, HasWhere(true)]),
    ("DELETE FROM t WHERE 1=1", &[Uncond]),
    ("DELETE FROM t WHERE 'a'='a'", &[Uncond]),
    ("DELETE FROM t WHERE NOT false", &[Uncond]),
    ("DELETE FROM t WHERE 1<2", &[Uncond]),
    ("DELETE FROM t WHERE true AND true", &[Uncond]),
    ("DELETE FROM t WHERE (1=1)", &[Uncond]),
    ("DELETE FROM t WHERE 1 = 1 OR id = 5", &[Uncond]),
    ("DELETE FROM t WHERE id = 1 OR true", &[Uncond]),
    ("DELETE FROM t WHERE 'yes'::boolean", &[Uncond]),
    ("DELETE FROM t WHERE CAST('t' AS boolean)", &[Uncond]),
    ("DELETE FROM t WHERE 1 IN (1, 2)", &[Uncond]),
    ("DELETE FROM t WHERE 2 BETWEEN 1 AND 3", &[Uncond]),
    ("DELETE FROM t WHERE true IS TRUE", &[Uncond]),
    ("DELETE FROM t WHERE NULL IS NULL", &[Uncond]),
    ("DELETE FROM t WHERE (SELECT true)", &[Uncond]),
    ("DELETE FROM t WHERE EXISTS (SELECT 1)", &[Uncond]),
    ("DELETE FROM t WHERE $1", &[Uncond]),
    ("DELETE FROM t WHERE 'a' < 'b'", &[Uncond]),
    ("DELETE FROM t WHERE now() > '2000-01-01'", &[Uncond]),
    ("DELETE FROM t WHERE 1 = 1.0", &[Uncond]),
    ("DELETE FROM t WHERE -1 < 0", &[Uncond]),
    ("DELETE FROM t WHERE id = id OR 1 = 1", &[Uncond]),
    (
        "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
        &[Uncond, Class(K::Delete), Written(None, "t"), NoRead("x")],
    ),
    (
        "WITH x AS (UPDATE t SET a = 1 WHERE id = 1 RETURNING *) SELECT * FROM x",
        &[Class(K::Update), NoUncond],
    ),
    (
        "WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x",
        &[Class(K::Insert), Written(None, "t")],
    ),
    (
        "EXPLAIN ANALYZE DELETE FROM t",
        &[Class(K::Delete), Uncond, Verb("EXPLAIN")],
    ),
    (
        "EXPLAIN (ANALYZE) DELETE FROM t",
        &[Class(K::Delete), Uncond],
    ),
    (
        "EXPLAIN (ANALYZE true, VERBOSE) UPDATE t SET a = 1",
        &[Class(K::Update), Uncond],
    ),
    (
        "PREPARE p AS DELETE FROM t",
        &[Class(K::Delete), Uncond, Verb("PREPARE")],
    ),
    (
        "PREPARE p AS DELETE FROM t; EXECUTE p",
        &[Count(2), Uncond, Verb("EXECUTE"), Parsed],
    ),
    (
        "PREPARE p (int) AS UPDATE t SET a = 1 WHERE id = $1; EXECUTE p(5)",
        &[Class(K::Update), NoUncond, Verb("EXECUTE"), Parsed],
    ),
    (
        "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
        &[Class(K::Merge), Uncond],
    ),
    (
        "DELETE FROM t WHERE id = 5; DELETE FROM u",
        &[Uncond, Count(2)],
    ),
    ("DELETE /* x */ FROM t -- WHERE id = 1", &[Uncond]),
    ("DELETE FROM t /* WHERE id = 1 */", &[Uncond]),
    ("DeLeTe FrOm t", &[Uncond, Verb("DELETE")]),
    (
        "DELETE FROM t USING u WHERE t.id = u.id",
        &[NoUncond, Written(None, "t"), Read(None, "u")],
    ),
    // SQL-4: DDL, CALL, maintenance, locks.
    (
        "CREATE TABLE t (a int)",
        &[
            Class(K::Ddl),
            Kind("table"),
            Verb("CREATE"),
            Written(None, "t"),
        ],
    ),
    ("CREATE INDEX i ON t (a)", &[Class(K::Ddl), Kind("index")]),
    ("CREATE UNIQUE INDEX i ON t (a)", &[Kind("index")]),
    (
        "ALTER TABLE t ADD COLUMN b int",
        &[Class(K::Ddl), Kind("table"), NoPriv],
    ),
    (
        "CREATE OR REPLACE VIEW v AS SELECT 1",
        &[Class(K::Ddl), Kind("view")],
    ),
    (
        "CREATE MATERIALIZED VIEW mv AS SELECT * FROM t",
        &[Class(K::Ddl), Kind("materialized_view")],
    ),
    (
        "COMMENT ON TABLE t IS 'x'",
        &[Class(K::Ddl), Verb("COMMENT"), Kind("table")],
    ),
    ("CALL p(1)", &[Class(K::Call), Func("p")]),
    ("VACUUM t", &[Class(K::Ddl), Verb("VACUUM")]),
    ("VACUUM FULL ANALYZE t", &[Class(K::Ddl)]),
    ("ANALYZE t", &[Class(K::Ddl), Verb("ANALYZE")]),
    (
        "CLUSTER t USING i",
        &[Class(K::Ddl), Verb("CLUSTER"), Parsed],
    ),
    ("REINDEX TABLE t", &[Class(K::Ddl), Verb("REINDEX"), Parsed]),
    (
        "REFRESH MATERIALIZED VIEW mv",
        &[Class(K::Ddl), Verb("REFRESH"), Parsed],
    ),
    ("CHECKPOINT", &[Class(K::Ddl), Verb("CHECKPOINT"), Parsed]),
    (
        "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
        &[Class(K::Ddl), Verb("LOCK"), Parsed],
    ),
    (
        "CREATE EXTENSION hstore",
        &[Class(K::Ddl), Kind("extension")],
    ),
    (
        "CREATE SCHEMA s",
        &[Class(K::Ddl), Schema("s"), Kind("schema")],
    ),
    (
        "CREATE TABLE x AS SELECT * FROM payroll",
        &[Class(K::Ddl), Written(None, "x"), Read(None, "payroll")],
    ),
    (
        "SELECT * INTO newt FROM t",
        &[Class(K::Ddl), Written(None, "newt"), Read(None, "t")],
    ),
    (
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql",
        &[Class(K::Ddl), Kind("function")],
    ),
    // SQL-5: DROP and TRUNCATE, told apart by verb.
    (
        "DROP TABLE t",
        &[
            Class(K::Ddl),
            Verb("DROP"),
            Kind("table"),
            Written(None, "t"),
        ],
    ),
    (
        "drop table if exists public.t, u",
        &[
            Verb("DROP"),
            Written(Some("public"), "t"),
            Written(None, "u"),
        ],
    ),
    ("DROP INDEX i", &[Verb("DROP"), Kind("index")]),
    ("DROP SCHEMA s CASCADE", &[Verb("DROP"), Schema("s")]),
    ("DROP FUNCTION f(int)", &[Verb("DROP"), Class(K::Ddl)]),
    ("DROP VIEW v", &[Verb("DROP"), Kind("view")]),
    (
        "TRUNCATE t",
        &[Class(K::Ddl), Verb("TRUNCATE"), Written(None, "t")],
    ),
    (
        "TRUNCATE TABLE a, b",
        &[Verb("TRUNCATE"), Written(None, "a"), Written(None, "b")],
    ),
    ("/* x */ dRoP TaBlE t", &[Verb("DROP")]),
    // SQL-6: privilege changes in every spelling.
    (
        "GRANT SELECT ON t TO bob",
        &[Class(K::Dcl), Priv, Verb("GRANT")],
    ),
    (
        "REVOKE ALL ON secrets.t FROM bob",
        &[Class(K::Dcl), Priv, Schema("secrets")],
    ),
    ("GRANT admin TO bob", &[Class(K::Dcl), Priv]),
    (
        "GRANT USAGE ON SCHEMA secrets TO bob",
        &[Priv, Schema("secrets")],
    ),
    ("CREATE ROLE bob", &[Class(K::Dcl), Priv, Kind("role")]),
    ("CREATE USER bob PASSWORD 'x'", &[Class(K::Dcl), Priv]),
    ("ALTER ROLE bob SUPERUSER", &[Class(K::Dcl), Priv]),
    ("ALTER USER bob WITH PASSWORD 'x'", &[Class(K::Dcl), Priv]),
    ("DROP ROLE bob", &[Class(K::Dcl), Priv, Verb("DROP")]),
    ("DROP USER bob", &[Class(K::Dcl), Priv]),
    ("CREATE GROUP g", &[Class(K::Dcl), Priv]),
    (
        "ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO bob",
        &[Class(K::Dcl), Priv, Kind("default_privileges")],
    ),
    ("ALTER TABLE t OWNER TO bob", &[Class(K::Dcl), Priv]),
    ("ALTER SCHEMA s OWNER TO bob", &[Priv]),
    ("ALTER FUNCTION f() OWNER TO bob", &[Priv]),
    ("ALTER VIEW v OWNER TO bob", &[Priv]),
    ("SET ROLE bob", &[Class(K::Session), Priv]),
    ("SET role = bob", &[Priv]),
    ("SET role TO bob", &[Priv]),
    ("SET LOCAL ROLE bob", &[Priv]),
    ("SET SESSION ROLE bob", &[Priv]),
    ("set Role 'bob'", &[Priv]),
    ("SET \"role\" = bob", &[Priv]),
    ("SET SESSION AUTHORIZATION bob", &[Priv]),
    ("SET session_authorization = bob", &[Priv]),
    ("RESET ROLE", &[Priv]),
    ("RESET SESSION AUTHORIZATION", &[Priv]),
    (
        "SELECT set_config('role', 'bob', false)",
        &[Priv, Class(K::Select)],
    ),
    ("SELECT set_config('ROLE', 'bob', false)", &[Priv]),
    (
        "SELECT set_config('session_authorization', 'bob', false)",
        &[Priv],
    ),
    ("SELECT set_config(U&'r\\006Fle', 'bob', false)", &[Priv]),
    ("SELECT pg_catalog.set_config('role', 'bob', true)", &[Priv]),
    ("SELECT set_config(x, 'bob', false) FROM t", &[Priv]),
    ("SELECT set_config('work_mem', '1MB', false)", &[NoPriv]),
    ("REASSIGN OWNED BY a TO b", &[Class(K::Dcl), Priv]),
    // SQL-7: bulk export.
    (
        "COPY t TO STDOUT",
        &[
            Class(K::CopyOut),
            Copy(CopyEndpoint::Client),
            Read(None, "t"),
        ],
    ),
    (
        "COPY (SELECT * FROM payroll) TO STDOUT",
        &[Class(K::CopyOut), Name("payroll")],
    ),
    ("COPY t TO STDOUT (FORMAT binary)", &[Class(K::CopyOut)]),
    (
        "copy public.t (a) to stdout with csv header",
        &[Class(K::CopyOut), Read(Some("public"), "t")],
    ),
    // SQL-8: names as PostgreSQL resolves them.
    (
        "SELECT * FROM payroll",
        &[Name("payroll"), Read(None, "payroll")],
    ),
    ("SELECT * FROM PAYROLL", &[Name("payroll")]),
    ("SELECT * FROM \"payroll\"", &[Name("payroll")]),
    (
        "SELECT * FROM \"PAYROLL\"",
        &[NoName("payroll"), Name("PAYROLL")],
    ),
    ("SELECT * FROM U&\"p\\0061yroll\"", &[Name("payroll")]),
    (
        "SELECT * FROM u&\"P\\0061YROLL\"",
        &[NoName("payroll"), Name("PaYROLL")],
    ),
    (
        "SELECT * FROM U&\"p!0061yroll\" UESCAPE '!'",
        &[Name("payroll")],
    ),
    (
        "SELECT * FROM public.payroll",
        &[Name("payroll"), Schema("public")],
    ),
    (
        "SELECT * FROM mydb.public.payroll",
        &[Name("payroll"), Schema("public")],
    ),
    ("SELECT * FROM payroll_archive", &[NoName("payroll")]),
    (
        "SELECT * FROM app.secrets",
        &[NoSchema("secrets"), Name("secrets"), Schema("app")],
    ),
    ("SELECT secrets.x FROM app.secrets", &[NoSchema("secrets")]),
    ("SELECT * FROM secrets.keys", &[Schema("secrets")]),
    ("SELECT * FROM \"secrets\".keys", &[Schema("secrets")]),
    ("SELECT * FROM SECRETS.keys", &[Schema("secrets")]),
    ("SELECT * FROM \"SECRETS\".keys", &[NoSchema("secrets")]),
    ("SELECT secrets.f()", &[Schema("secrets")]),
    (
        "SELECT * FROM t JOIN payroll p ON p.id = t.id",
        &[Name("payroll")],
    ),
    (
        "SELECT * FROM t WHERE id IN (SELECT id FROM payroll)",
        &[Name("payroll")],
    ),
    ("SELECT (SELECT max(x) FROM payroll)", &[Name("payroll")]),
    (
        "SELECT * FROM t ORDER BY (SELECT 1 FROM payroll LIMIT 1)",
        &[Name("payroll")],
    ),
    (
        "WITH payroll AS (SELECT 1) SELECT * FROM payroll",
        &[Name("payroll"), NoRead("payroll")],
    ),
    (
        "WITH x AS (SELECT * FROM payroll) SELECT * FROM x",
        &[Name("payroll"), Read(None, "payroll"), NoRead("x")],
    ),
    (
        "EXPLAIN SELECT * FROM payroll",
        &[Name("payroll"), ExplainOnly],
    ),
    ("EXPLAIN DELETE FROM payroll", &[Name("payroll"), NoUncond]),
    ("DROP TABLE payroll", &[Name("payroll")]),
    ("TRUNCATE payroll", &[Name("payroll")]),
    ("GRANT SELECT ON payroll TO bob", &[Name("payroll")]),
    (
        "COPY payroll TO STDOUT",
        &[Name("payroll"), Class(K::CopyOut)],
    ),
    ("LOCK TABLE payroll", &[Name("payroll")]),
    (
        "INSERT INTO payroll VALUES (1)",
        &[Name("payroll"), Written(None, "payroll")],
    ),
    ("UPDATE payroll SET a = 1 WHERE id = 1", &[Name("payroll")]),
    ("DELETE FROM payroll WHERE id = 1", &[Name("payroll")]),
    ("REINDEX TABLE payroll", &[Name("payroll")]),
    ("VACUUM payroll", &[Name("payroll")]),
    ("COMMENT ON TABLE payroll IS 'x'", &[Name("payroll")]),
    ("ALTER TABLE payroll ADD COLUMN x int", &[Name("payroll")]),
    ("CREATE INDEX i ON payroll (a)", &[Name("payroll")]),
    (
        "PREPARE q AS SELECT * FROM payroll; EXECUTE q",
        &[Count(2), Name("payroll")],
    ),
    ("SELECT * FROM pay/**/roll", &[NoName("payroll")]),
    (
        "SET search_path = secrets, public",
        &[SpSecrets, Class(K::Session), Schema("secrets")],
    ),
    ("SET search_path TO 'secrets'", &[SpSecrets]),
    ("SET search_path = \"secrets\"", &[SpSecrets]),
    ("SET LOCAL search_path TO public, SECRETS", &[SpSecrets]),
    (
        "SELECT set_config('search_path', 'public, secrets', false)",
        &[SpSecrets],
    ),
    ("SET search_path = app, public", &[NoSpSecrets]),
    ("SET search_path = \"Secrets\"", &[NoSpSecrets]),
    // Multiple statements and evasions.
    (
        "SELECT 1 /* a /* b */ c */; DROP TABLE t",
        &[Count(2), Class(K::Ddl), Verb("DROP")],
    ),
    (
        "SELECT 1; DROP TABLE t",
        &[Count(2), Class(K::Select), Class(K::Ddl)],
    ),
    ("select 1;;;select 2", &[Count(2)]),
    ("SELECT ';DROP TABLE t'", &[Count(1), Class(K::Select)]),
    ("SELECT $$;DROP TABLE t$$", &[Count(1), Class(K::Select)]),
    ("SELECT 1 -- ; DROP TABLE t", &[Count(1)]),
    (
        "SELECT E'\\';DROP TABLE t --'",
        &[Count(1), Class(K::Select)],
    ),
    (
        "SELECT 'a\\'; DROP TABLE t; --'",
        &[Count(2), Class(K::Ddl), Verb("DROP")],
    ),
    (
        "EXPLAIN ANALYZE WITH x AS (DELETE FROM t RETURNING 1) SELECT * FROM x",
        &[Class(K::Delete), Uncond],
    ),
    (
        "COPY (DELETE FROM t RETURNING *) TO STDOUT",
        &[Class(K::CopyOut), Uncond],
    ),
    (
        "SELECT query_to_xml('delete from t returning 1', true, true, '')",
        &[Class(K::Delete), Uncond],
    ),
    (
        "SELECT query_to_xml('select * from payroll', true, true, '')",
        &[Name("payroll")],
    ),
    (
        "PREPARE p AS SELECT 1; DEALLOCATE p; EXECUTE p",
        &[Count(3), Unparsed],
    ),
    ("SELECT U&'d!0061t' UESCAPE '!'", &[Unparsed]),
    ("SELECT * FROM U&\"p\\zzzz\"", &[Unparsed]),
    (
        "SELECT u & \"payroll\" FROM t",
        &[Parsed, NoName("payroll")],
    ),
    ("SET search_path = '\"secrets\", public'", &[SpSecrets]),
    ("TABLE payroll", &[Class(K::Select), Name("payroll")]),
    (
        "VACUUM FULL ANALYZE payroll",
        &[Class(K::Ddl), Name("payroll")],
    ),
    ("ALTER SEQUENCE s OWNER TO bob", &[Class(K::Dcl), Priv]),
];

#[test]
fn table_of_rules_and_evasions() {
    assert!(CASES.len() >= 120, "only {} cases", CASES.len());
    let mut failures = Vec::new();
    for (sql, checks) in CASES {
        let facts = run(sql);
        for c in *checks {
            if let Err(e) = check(sql, &facts, *c) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn execute_judges_what_was_prepared_across_messages() {
    let mut session = SqlSession::default();
    let limits = SqlLimits::default();
    let prepared = extract("PREPARE wipe AS DELETE FROM payroll", &mut session, &limits);
    assert_eq!(prepared.statements[0].class, SqlClass::Delete);
    assert!(session.prepared.contains_key("wipe"));
    let executed = extract("EXECUTE WIPE", &mut session, &limits);
    let stmt = &executed.statements[0];
    assert_eq!(stmt.class, SqlClass::Delete);
    assert!(stmt.unconditional_write);
    assert!(stmt.names.contains(&"payroll".to_owned()));
    assert_eq!(stmt.verb, "EXECUTE");
    extract("DEALLOCATE wipe", &mut session, &limits);
    let after = extract("EXECUTE wipe", &mut session, &limits);
    assert!(after.statements[0].unparsed.is_some());
}

#[test]
fn deeply_nested_parentheses_are_refused_without_overflowing_a_normal_stack() {
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let deep = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
            let facts = run(&deep);
            let chain = format!("SELECT {}", vec!["1"; 100_000].join("+"));
            let chain_facts = run(&chain);
            let nots = format!("DELETE FROM t WHERE {} true", "NOT ".repeat(10_000));
            let not_facts = run(&nots);
            // Within the limit, nesting still parses on the same small stack.
            let ok = format!("SELECT {}1{}", "(".repeat(60), ")".repeat(60));
            let ok_chain = format!("SELECT * FROM t WHERE {}", vec!["a = 1"; 60].join(" AND "));
            (facts, chain_facts, not_facts, run(&ok), run(&ok_chain))
        })
        .unwrap();
    let (deep, chain, nots, ok, ok_chain) = handle.join().unwrap();
    for facts in [&deep, &chain, &nots] {
        let message = facts.unparsed.as_deref().unwrap();
        assert!(message.contains("nesting exceeds the limit"), "{message}");
    }
    assert!(
        ok.unparsed.is_none() && ok.statements[0].unparsed.is_none(),
        "{ok:?}"
    );
    assert!(ok_chain.statements[0].unparsed.is_none(), "{ok_chain:?}");
}

#[test]
fn oversized_message_is_refused_with_the_limit_in_the_message() {
    let big = format!("SELECT '{}'", "x".repeat(2 * 1024 * 1024));
    let facts = run(&big);
    assert!(facts.statements.is_empty());
    let message = facts.unparsed.unwrap();
    assert!(
        message.contains("exceeds the limit of 1048576 bytes"),
        "{message}"
    );
}

#[test]
fn nul_bytes_and_invalid_utf8_are_refused() {
    let limits = SqlLimits::default();
    let mut session = SqlSession::default();
    let nul = extract_bytes(b"SELECT 1\0; DROP TABLE t", &mut session, &limits);
    assert!(nul.unparsed.unwrap().contains("NUL"));
    let bad = extract_bytes(b"SELECT '\xff\xfe'", &mut session, &limits);
    assert!(bad.unparsed.unwrap().contains("not valid UTF-8"));
    let good = extract_bytes(b"SELECT 1", &mut session, &limits);
    assert_eq!(good.statements.len(), 1);
    assert!(run("SELECT 1\0").unparsed.is_some());
}

#[test]
fn backslashes_in_strings_are_refused_when_standard_conforming_strings_is_off() {
    let limits = SqlLimits::default();
    let mut off = SqlSession {
        standard_conforming_strings: Some(false),
        ..SqlSession::default()
    };
    // With the setting off the server reads `\'` as a quote, so the DROP is inside the string
    // for the server but not for a standard lexer (or the other way round): refuse.
    let tricky = extract("SELECT 'a\\'; DROP TABLE t; --'", &mut off, &limits);
    assert!(tricky
        .unparsed
        .unwrap()
        .contains("standard_conforming_strings"));
    let plain = extract("SELECT 'plain' FROM t", &mut off, &limits);
    assert!(plain.unparsed.is_none());
    let escaped = extract("SELECT E'a\\'b'", &mut off, &limits);
    assert!(escaped.unparsed.is_none(), "{escaped:?}");
    let on = extract("SELECT 'a\\'", &mut SqlSession::default(), &limits);
    assert!(on.unparsed.is_none());
}

#[test]
fn statement_facts_serialise_for_the_engine() {
    let facts = run("DELETE FROM app.t WHERE 1=1");
    let json = serde_json::to_value(&facts).unwrap();
    assert_eq!(json["statements"][0]["class"], "delete");
    assert_eq!(json["statements"][0]["unconditional_write"], true);
    assert_eq!(json["statements"][0]["tables_written"][0]["schema"], "app");
}

#[test]
fn extraction_of_a_typical_statement_is_fast() {
    let sql = "SELECT o.id, o.total, c.name FROM app.orders o JOIN app.customers c ON c.id = o.customer_id \
               WHERE o.created_at > now() - interval '7 days' AND o.status IN ('paid', 'shipped') ORDER BY o.total DESC LIMIT 50";
    let limits = SqlLimits::default();
    let mut session = SqlSession::default();
    let start = std::time::Instant::now();
    let n = 200;
    for _ in 0..n {
        let facts = extract(sql, &mut session, &limits);
        assert_eq!(facts.statements.len(), 1);
    }
    let per = start.elapsed() / n;
    // Generous for unoptimised test builds on a shared machine; release is far below 50 µs.
    assert!(
        per < std::time::Duration::from_millis(5),
        "{per:?} per statement"
    );
}
