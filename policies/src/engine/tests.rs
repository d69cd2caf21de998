//! Engine tests on hand-built facts (independent of the extractors).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
use super::*;
use crate::shell::{ShellCommandFacts, ShellLineFacts};
use crate::sql::{
    CopyEndpoint, Relation, SqlClass, SqlMessageFacts, SqlSession, SqlStatementFacts,
};
use std::path::PathBuf;

pub(crate) fn pack_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policies")
}

pub(crate) fn identities() -> (Vec<Principal>, Vec<TargetInfo>) {
    let p = |name: &str, kind, groups: &[&str]| Principal {
        name: name.into(),
        kind,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    let t = |name: &str, protocol, env: &str| TargetInfo {
        name: name.into(),
        protocol,
        tags: [("env".to_string(), env.to_string())].into(),
    };
    (
        vec![
            p("alice", PrincipalKind::Human, &["engineers"]),
            p("dana", PrincipalKind::Human, &["dba", "engineers"]),
            p("deploy-bot", PrincipalKind::Service, &["deployers"]),
            p("agent-7", PrincipalKind::Agent, &["agents"]),
        ],
        vec![
            t("prod-db", TargetProtocol::Postgres, "prod"),
            t("dev-db", TargetProtocol::Postgres, "dev"),
            t("web1", TargetProtocol::Ssh, "prod"),
            t("dev-box", TargetProtocol::Ssh, "dev"),
        ],
    )
}

fn engine() -> Engine {
    let (p, t) = identities();
    let opts = EngineOptions {
        policy_paths: vec![pack_dir()],
        ..Default::default()
    };
    Engine::load(opts, p, t).unwrap()
}

fn stmt(class: SqlClass, verb: &str) -> SqlStatementFacts {
    SqlStatementFacts {
        class,
        verb: verb.into(),
        object_kind: None,
        tables_read: vec![],
        tables_written: vec![],
        names: vec![],
        schemas: vec![],
        functions: vec![],
        has_where: false,
        unconditional_write: false,
        copy_endpoint: None,
        explain_only: false,
        privilege_change: false,
        escape_hatch: false,
        search_path_secrets: false,
        unparsed: None,
        risk_tags: vec![],
    }
}

fn rel(schema: Option<&str>, name: &str) -> Relation {
    Relation {
        schema: schema.map(str::to_string),
        name: name.into(),
    }
}

fn sql(e: &Engine, user: &str, target: &str, stmts: Vec<SqlStatementFacts>) -> Verdict {
    let facts = SqlMessageFacts {
        statements: stmts,
        unparsed: None,
    };
    e.decide_sql_facts(user, target, "-- test", &facts, &RequestContext::default())
}

fn cmd(name: &str, args: &[&str]) -> ShellCommandFacts {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut flags = Vec::new();
    for a in &args {
        if let Some(long) = a.strip_prefix("--") {
            flags.push(format!("--{}", long.split('=').next().unwrap()));
        } else if let Some(short) = a.strip_prefix('-') {
            flags.extend(short.chars().map(|c| format!("-{c}")));
        }
    }
    let paths = args.iter().filter(|a| a.contains('/')).cloned().collect();
    ShellCommandFacts {
        name: name.into(),
        args,
        flags,
        paths,
        ..Default::default()
    }
}

fn shell(e: &Engine, user: &str, target: &str, commands: Vec<ShellCommandFacts>) -> Verdict {
    let facts = ShellLineFacts {
        commands,
        unparsed: None,
    };
    e.decide_shell_facts(user, target, "test", &facts, &RequestContext::default())
}

fn assert_verdict(v: &Verdict, decision: Decision, step_up: Option<&str>, id: &str) {
    assert_eq!(v.decision, decision, "{v:#?}");
    assert_eq!(
        v.step_up.map(|s| s.to_string()).as_deref(),
        step_up,
        "{v:#?}"
    );
    assert!(
        v.policy_ids.iter().any(|p| p == id),
        "{id} not in {:?}: {}",
        v.policy_ids,
        v.message
    );
}

#[test]
fn pack_loads_and_validates() {
    let e = engine();
    assert!(e.policy_count() > 30, "{}", e.policy_count());
}

#[test]
fn reads_allowed_drop_denied_with_a_message_for_users() {
    let e = engine();
    let mut s = stmt(SqlClass::Select, "SELECT");
    s.tables_read = vec![rel(None, "orders")];
    assert_verdict(
        &sql(&e, "alice", "prod-db", vec![s]),
        Decision::Allow,
        None,
        "SQL-1",
    );
    let mut d = stmt(SqlClass::Ddl, "DROP");
    d.object_kind = Some("table".into());
    d.tables_written = vec![rel(None, "orders")];
    let v = sql(&e, "alice", "prod-db", vec![d.clone()]);
    assert_verdict(&v, Decision::Deny, None, "SQL-5");
    assert_eq!(
        v.message,
        "denied by policy SQL-5: DROP and TRUNCATE are not allowed on prod-db"
    );
    let v = sql(&e, "dana", "prod-db", vec![d.clone()]);
    assert_verdict(&v, Decision::StepUp, Some("approval"), "SQL-5-dba");
    assert_eq!(v.approver_groups, vec!["dba"]);
    assert!(
        v.message
            .starts_with("approval required by policy SQL-5-dba:"),
        "{}",
        v.message
    );
    // dev: anything but ANY-0/ANY-1.
    assert_verdict(
        &sql(&e, "alice", "dev-db", vec![d]),
        Decision::Allow,
        None,
        "DEV-engineers",
    );
}

#[test]
fn strictest_statement_wins_and_step_ups_combine() {
    let e = engine();
    let mut copy = stmt(SqlClass::CopyOut, "COPY");
    copy.copy_endpoint = Some(CopyEndpoint::Client);
    copy.names = vec!["payroll".into()];
    copy.tables_read = vec![rel(None, "payroll")];
    let v = sql(&e, "alice", "prod-db", vec![copy.clone()]);
    assert_verdict(&v, Decision::StepUp, Some("approval+mfa"), "SQL-7");
    assert!(v.policy_ids.contains(&"SQL-8".to_string()));
    // A fresh one-time code meets the mfa part.
    let facts = SqlMessageFacts {
        statements: vec![copy],
        unparsed: None,
    };
    let ctx = RequestContext {
        mfa_age_secs: Some(10),
        ..Default::default()
    };
    let v = e.decide_sql_facts("alice", "prod-db", "x", &facts, &ctx);
    assert_verdict(&v, Decision::StepUp, Some("approval"), "SQL-7");
    let mut grant = stmt(SqlClass::Dcl, "GRANT");
    grant.privilege_change = true;
    let v = sql(
        &e,
        "alice",
        "prod-db",
        vec![stmt(SqlClass::Select, "SELECT"), grant],
    );
    assert_verdict(&v, Decision::Deny, None, "SQL-6");
}

#[test]
fn unparsed_and_escape_hatches_are_denied_everywhere() {
    let e = engine();
    let facts = SqlMessageFacts {
        statements: vec![],
        unparsed: Some("syntax error at DO".into()),
    };
    let v = e.decide_sql_facts(
        "alice",
        "dev-db",
        "DO $$ $$",
        &facts,
        &RequestContext::default(),
    );
    assert_verdict(&v, Decision::Deny, None, "ANY-0");
    assert!(v.message.contains("syntax error at DO"), "{}", v.message);
    let mut c = stmt(SqlClass::CopyOut, "COPY");
    c.copy_endpoint = Some(CopyEndpoint::Program);
    assert_verdict(
        &sql(&e, "alice", "dev-db", vec![c]),
        Decision::Deny,
        None,
        "ANY-1",
    );
    let mut f = stmt(SqlClass::Select, "SELECT");
    f.functions = vec!["pg_read_file".into()];
    f.escape_hatch = true;
    assert_verdict(
        &sql(&e, "dana", "dev-db", vec![f]),
        Decision::Deny,
        None,
        "ANY-1",
    );
}

#[test]
fn machines() {
    let e = engine();
    let mut ins = stmt(SqlClass::Insert, "INSERT");
    ins.tables_written = vec![rel(Some("app"), "jobs")];
    assert_verdict(
        &sql(&e, "deploy-bot", "prod-db", vec![ins]),
        Decision::Allow,
        None,
        "BOT-sql-write",
    );
    let mut upd = stmt(SqlClass::Update, "UPDATE");
    upd.tables_written = vec![rel(Some("app"), "jobs")];
    upd.has_where = true;
    upd.unconditional_write = true;
    assert_verdict(
        &sql(&e, "deploy-bot", "prod-db", vec![upd]),
        Decision::Deny,
        None,
        "default-deny",
    );
    let mut other_schema = stmt(SqlClass::Select, "SELECT");
    other_schema.tables_read = vec![rel(None, "users")];
    assert_verdict(
        &sql(&e, "deploy-bot", "prod-db", vec![other_schema]),
        Decision::Deny,
        None,
        "default-deny",
    );
    let v = e.decide_connect("deploy-bot", "dev-db", &RequestContext::default());
    assert_verdict(&v, Decision::Deny, None, "default-deny");
    let mut upd = stmt(SqlClass::Update, "UPDATE");
    upd.has_where = true;
    assert_verdict(
        &sql(&e, "agent-7", "dev-db", vec![upd]),
        Decision::StepUp,
        Some("approval"),
        "AGENT-write",
    );
    let mut pay = stmt(SqlClass::Select, "SELECT");
    pay.names = vec!["payroll".into()];
    assert_verdict(
        &sql(&e, "agent-7", "prod-db", vec![pay]),
        Decision::Deny,
        None,
        "SQL-8-nonhuman",
    );
    assert_verdict(
        &shell(&e, "agent-7", "dev-box", vec![cmd("echo", &["hi"])]),
        Decision::StepUp,
        Some("approval"),
        "AGENT-command",
    );
    assert_verdict(
        &shell(&e, "agent-7", "dev-box", vec![cmd("ls", &["-la"])]),
        Decision::Allow,
        None,
        "AGENT-shell",
    );
    assert_verdict(
        &shell(
            &e,
            "deploy-bot",
            "web1",
            vec![cmd("systemctl", &["restart", "app"])],
        ),
        Decision::Allow,
        None,
        "BOT-shell",
    );
    assert_verdict(
        &shell(
            &e,
            "deploy-bot",
            "web1",
            vec![cmd("systemctl", &["stop", "app"])],
        ),
        Decision::Deny,
        None,
        "default-deny",
    );
}

#[test]
fn shell_rules() {
    let e = engine();
    assert_verdict(
        &shell(&e, "alice", "web1", vec![cmd("rm", &["-fr", "/var/x"])]),
        Decision::Deny,
        None,
        "SH-1",
    );
    assert_verdict(
        &shell(&e, "alice", "web1", vec![cmd("rm", &["-r", "/var/x"])]),
        Decision::Allow,
        None,
        "SH-default",
    );
    assert_verdict(
        &shell(
            &e,
            "alice",
            "web1",
            vec![cmd("dd", &["if=/dev/zero", "of=/dev/sda"])],
        ),
        Decision::Deny,
        None,
        "SH-1",
    );
    assert_verdict(
        &shell(
            &e,
            "alice",
            "web1",
            vec![cmd("dd", &["if=/dev/zero", "of=/dev/null"])],
        ),
        Decision::Allow,
        None,
        "SH-default",
    );
    assert_verdict(
        &shell(&e, "alice", "web1", vec![cmd("cat", &["/etc/./shadow"])]),
        Decision::Deny,
        None,
        "SH-2",
    );
    assert_verdict(
        &shell(
            &e,
            "alice",
            "web1",
            vec![cmd("sudo", &["ls"]), cmd("ls", &[])],
        ),
        Decision::StepUp,
        Some("approval"),
        "SH-4",
    );
    assert_verdict(
        &shell(
            &e,
            "alice",
            "web1",
            vec![cmd("sudo", &["rm", "-rf", "/"]), cmd("rm", &["-rf", "/"])],
        ),
        Decision::Deny,
        None,
        "SH-1",
    );
    assert_verdict(
        &shell(
            &e,
            "alice",
            "web1",
            vec![cmd("apt-get", &["-y", "install", "x"])],
        ),
        Decision::StepUp,
        Some("approval"),
        "SH-6",
    );
    assert_verdict(
        &shell(&e, "alice", "dev-box", vec![cmd("rm", &["-rf", "/"])]),
        Decision::Allow,
        None,
        "DEV-engineers",
    );
    let mut dl = cmd("sh", &[]);
    dl.runs_download = true;
    assert_verdict(
        &shell(&e, "alice", "web1", vec![cmd("curl", &["http://x"]), dl]),
        Decision::Deny,
        None,
        "SH-3",
    );
    let mut dynamic = cmd("", &["-rf"]);
    dynamic.dynamic = true;
    assert_verdict(
        &shell(&e, "alice", "web1", vec![dynamic]),
        Decision::StepUp,
        Some("approval"),
        "SH-5",
    );
}

#[test]
fn sftp_and_forwarding() {
    let e = engine();
    let c = RequestContext::default();
    assert_verdict(
        &e.decide_sftp("alice", "web1", SftpOp::Read, "/var/log/x", &c),
        Decision::Allow,
        None,
        "SFTP-read",
    );
    assert_verdict(
        &e.decide_sftp("alice", "web1", SftpOp::Write, "/tmp/x", &c),
        Decision::StepUp,
        Some("approval"),
        "SFTP-write",
    );
    assert_verdict(
        &e.decide_sftp("alice", "dev-box", SftpOp::Delete, "/tmp/x", &c),
        Decision::Allow,
        None,
        "DEV-engineers",
    );
    assert_verdict(
        &e.decide_sftp("deploy-bot", "web1", SftpOp::Write, "/tmp/x", &c),
        Decision::Deny,
        None,
        "default-deny",
    );
    assert_verdict(
        &e.decide_forward("alice", "web1", "db", 5432, &c),
        Decision::Deny,
        None,
        "FWD-prod",
    );
    assert_verdict(
        &e.decide_forward("alice", "dev-box", "db", 5432, &c),
        Decision::Allow,
        None,
        "DEV-engineers",
    );
}

#[test]
fn unknown_identities_are_denied_clearly() {
    let e = engine();
    let v = e.decide_connect("mallory", "prod-db", &RequestContext::default());
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(v.message, "denied: unknown user mallory");
    let v = e.decide_connect("alice", "nowhere", &RequestContext::default());
    assert_eq!(v.message, "denied: unknown target nowhere");
}

#[test]
fn grants_stand_in_for_a_missing_permit_but_not_for_forbids() {
    let e = engine();
    let mut upd = stmt(SqlClass::Delete, "DELETE");
    upd.has_where = true;
    upd.tables_written = vec![rel(Some("app"), "jobs")];
    assert_eq!(
        sql(&e, "deploy-bot", "prod-db", vec![upd.clone()]).decision,
        Decision::Deny
    );
    let g = e.with_grants(vec![Grant {
        user: "deploy-bot".into(),
        target: "prod-db".into(),
        action: "sql:delete".into(),
        tables: vec!["app.jobs".into()],
        expires_unix: 100,
    }]);
    let facts = SqlMessageFacts {
        statements: vec![upd.clone()],
        unparsed: None,
    };
    let ctx = RequestContext {
        now_unix: 50,
        ..Default::default()
    };
    let v = g.decide_sql_facts("deploy-bot", "prod-db", "x", &facts, &ctx);
    assert_verdict(&v, Decision::Allow, None, "grant");
    let late = RequestContext {
        now_unix: 150,
        ..Default::default()
    };
    assert_eq!(
        g.decide_sql_facts("deploy-bot", "prod-db", "x", &facts, &late)
            .decision,
        Decision::Deny
    );
    let mut other = upd;
    other.tables_written = vec![rel(Some("app"), "users")];
    let facts = SqlMessageFacts {
        statements: vec![other],
        unparsed: None,
    };
    assert_eq!(
        g.decide_sql_facts("deploy-bot", "prod-db", "x", &facts, &ctx)
            .decision,
        Decision::Deny
    );
}

#[test]
fn an_agent_grant_stands_in_for_the_approval_only_for_its_action_and_tables_until_it_expires() {
    let e = engine();
    let mut upd = stmt(SqlClass::Update, "UPDATE");
    upd.has_where = true;
    upd.tables_written = vec![rel(Some("app"), "orders")];
    let facts = |s: SqlStatementFacts| SqlMessageFacts {
        statements: vec![s],
        unparsed: None,
    };
    let at = |now_unix| RequestContext {
        now_unix,
        ..Default::default()
    };
    let held = e.decide_sql_facts("agent-7", "prod-db", "x", &facts(upd.clone()), &at(50));
    assert_verdict(&held, Decision::StepUp, Some("approval"), "AGENT-write");
    let g = e.with_grants(vec![Grant {
        user: "agent-7".into(),
        target: "prod-db".into(),
        action: "sql:update".into(),
        tables: vec!["app.orders".into()],
        expires_unix: 100,
    }]);
    let v = g.decide_sql_facts("agent-7", "prod-db", "x", &facts(upd.clone()), &at(50));
    assert_eq!(v.decision, Decision::Allow, "{v:?}");
    // Expired, another table, another verb, or a forbid of its own: the grant does not help.
    let v = g.decide_sql_facts("agent-7", "prod-db", "x", &facts(upd.clone()), &at(150));
    assert_eq!(v.decision, Decision::StepUp, "{v:?}");
    let mut other_table = upd.clone();
    other_table.tables_written = vec![rel(Some("app"), "customers")];
    let v = g.decide_sql_facts("agent-7", "prod-db", "x", &facts(other_table), &at(50));
    assert_eq!(v.decision, Decision::StepUp, "{v:?}");
    let mut delete = stmt(SqlClass::Delete, "DELETE");
    delete.has_where = true;
    delete.tables_written = vec![rel(Some("app"), "orders")];
    let v = g.decide_sql_facts("agent-7", "prod-db", "x", &facts(delete), &at(50));
    assert_eq!(v.decision, Decision::StepUp, "{v:?}");
    let mut truncate = stmt(SqlClass::Ddl, "TRUNCATE");
    truncate.tables_written = vec![rel(Some("app"), "orders")];
    let v = g.decide_sql_facts("agent-7", "prod-db", "x", &facts(truncate), &at(50));
    assert_eq!(v.decision, Decision::Deny, "{v:?}");
}

#[test]
fn entry_risk_flags_are_policy_context() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("risk.cedar");
    std::fs::write(
        &file,
        r#"@id("ALL") permit (principal, action, resource);
@id("RISK-hours") @message("entry outside working hours")
forbid (principal, action == Action::"connect", resource)
when { context.risk.contains("outside_hours") };
@id("RISK-new-source") @step_up("mfa") @message("new source: prove it")
forbid (principal, action in Action::"sql", resource)
when { context.risk.contains("new_source") && context.mfa_age > 300 };
"#,
    )
    .unwrap();
    let (p, t) = identities();
    let opts = EngineOptions {
        policy_paths: vec![file],
        cache_capacity: 100,
        ..Default::default()
    };
    let e = Engine::load(opts, p, t).unwrap();
    let risky = |flags: &[&str]| RequestContext {
        risk: flags.iter().map(|f| f.to_string()).collect(),
        ..Default::default()
    };
    let calm = e.decide_connect("alice", "prod-db", &risky(&[]));
    assert_eq!(calm.decision, Decision::Allow, "{calm:?}");
    let late = e.decide_connect("alice", "prod-db", &risky(&["new_source", "outside_hours"]));
    assert_verdict(&late, Decision::Deny, None, "RISK-hours");
    // In-session decisions see the flags too, and the cache keeps them apart.
    let mut session = SqlSession::default();
    let plain = e.decide_sql("alice", "prod-db", "SELECT 1", &mut session, &risky(&[]));
    assert_eq!(plain.decision, Decision::Allow, "{plain:?}");
    let new_source = e.decide_sql(
        "alice",
        "prod-db",
        "SELECT 1",
        &mut session,
        &risky(&["new_source"]),
    );
    assert_verdict(
        &new_source,
        Decision::StepUp,
        Some("mfa"),
        "RISK-new-source",
    );
}

#[test]
fn shadow_set_is_reported_not_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let shadow = dir.path().join("shadow.cedar");
    std::fs::write(&shadow, "@id(\"SHADOW-no-select\") forbid(principal, action == Action::\"sql:select\", resource);\n").unwrap();
    let (p, t) = identities();
    let opts = EngineOptions {
        policy_paths: vec![pack_dir()],
        shadow_paths: vec![shadow],
        ..Default::default()
    };
    let e = Engine::load(opts, p, t).unwrap();
    let v = sql(
        &e,
        "alice",
        "prod-db",
        vec![stmt(SqlClass::Select, "SELECT")],
    );
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.shadow, Some(Decision::Deny));
}

#[test]
fn broken_policies_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.cedar");
    std::fs::write(&f, "@id(\"ok\")\npermit(principal, action, resource);\n\nforbid(principal, action, resource) when { context.nope ==  };\n").unwrap();
    let err = check_policy_files(std::slice::from_ref(&f))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("{}:4:", f.display())), "{err}");
    std::fs::write(
        &f,
        "permit(principal, action == Action::\"sql:select\", resource)\n  when { context.nope };\n",
    )
    .unwrap();
    let err = check_policy_files(std::slice::from_ref(&f))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("{}:2:", f.display())), "{err}");
    assert!(err.contains("nope"), "{err}");
    std::fs::write(
        &f,
        "@id(\"x\") @step_up(\"otp\") forbid(principal, action, resource);\n",
    )
    .unwrap();
    let err = check_policy_files(std::slice::from_ref(&f))
        .unwrap_err()
        .to_string();
    assert!(err.contains("approval"), "{err}");
}
