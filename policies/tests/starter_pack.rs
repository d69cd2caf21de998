//! The starter pack against STARTER-POLICIES.md, through text: the shipped case file (every
//! rule and its evasions), the `policy eval` stream, and the decision cache's correctness.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod common;

use std::io::Cursor;

use common::{engine, engine_with_cache, examples};
use policies::engine::*;
use policies::sql::SqlSession;

fn sql(e: &Engine, user: &str, target: &str, text: &str) -> Verdict {
    e.decide_sql(
        user,
        target,
        text,
        &mut SqlSession::default(),
        &RequestContext::default(),
    )
}

fn shell(e: &Engine, user: &str, target: &str, line: &str) -> Verdict {
    e.decide_shell(user, target, line, &RequestContext::default())
}

fn expect(v: &Verdict, decision: Decision, step_up: Option<&str>, id: &str) {
    assert_eq!(v.decision, decision, "{}: {:?}", v.message, v.policy_ids);
    assert_eq!(
        v.step_up.map(|s| s.to_string()).as_deref(),
        step_up,
        "{}",
        v.message
    );
    assert!(
        v.policy_ids.iter().any(|p| p == id),
        "{id} not in {:?}: {}",
        v.policy_ids,
        v.message
    );
}

#[test]
fn shipped_case_file_passes() {
    let e = engine();
    let cases = std::fs::read_to_string(examples().join("policy-cases.jsonl")).unwrap();
    let report = run_cases(&e, Cursor::new(cases));
    assert!(report.total >= 60, "{report:?}");
    assert!(
        report.ok(),
        "{} of {} failed:\n{}",
        report.failures.len(),
        report.total,
        report.failures.join("\n")
    );
}

#[test]
fn shipped_case_file_passes_without_cache() {
    let e = engine_with_cache(0);
    let cases = std::fs::read_to_string(examples().join("policy-cases.jsonl")).unwrap();
    let report = run_cases(&e, Cursor::new(cases));
    assert!(report.ok(), "{}", report.failures.join("\n"));
}

#[test]
fn case_failures_name_line_input_expected_and_got() {
    let e = engine();
    let input = "\n{\"user\":\"alice\",\"target\":\"prod-db\",\"kind\":\"sql\",\"text\":\"DROP TABLE t\",\"expect\":\"allow\"}\nnot json\n";
    let report = run_cases(&e, Cursor::new(input));
    assert_eq!(report.total, 2);
    assert_eq!(report.failures.len(), 2);
    assert!(
        report.failures[0].starts_with("line 2: sql alice on prod-db: \"DROP TABLE t\""),
        "{}",
        report.failures[0]
    );
    assert!(
        report.failures[0].contains("expected allow, got deny by [SQL-5]"),
        "{}",
        report.failures[0]
    );
    assert!(
        report.failures[1].starts_with("line 3: bad input line"),
        "{}",
        report.failures[1]
    );
}

#[test]
fn eval_writes_one_line_per_input_and_survives_bad_lines() {
    let e = engine();
    let input = concat!(
        "{\"user\":\"alice\",\"target\":\"prod-db\",\"kind\":\"sql\",\"text\":\"COPY payroll TO STDOUT\"}\n",
        "garbage\n",
        "{\"user\":\"alice\",\"target\":\"web1\",\"kind\":\"teleport\",\"text\":\"x\"}\n",
        "{\"user\":\"alice\",\"target\":\"web1\",\"kind\":\"shell\",\"text\":\"ls\"}\n",
    );
    let mut out = Vec::new();
    eval_jsonl(&e, Cursor::new(input), &mut out, false).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["decision"], "step_up");
    assert_eq!(lines[0]["step_up"], "approval+mfa");
    let policies: Vec<&str> = lines[0]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        policies.contains(&"SQL-7") && policies.contains(&"SQL-8"),
        "{policies:?}"
    );
    assert!(lines[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("approval and a one-time code required by policies"));
    assert!(lines[0]["facts"]["statements"].is_array());
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("bad input line"));
    assert!(lines[2]["error"]
        .as_str()
        .unwrap()
        .contains("unknown kind \"teleport\""));
    assert_eq!(lines[3]["decision"], "allow");
    assert!(lines[3]["step_up"].is_null());
    assert!(lines[3].get("matched").is_none());
}

#[test]
fn eval_explain_lists_every_matching_policy() {
    let e = engine();
    let input =
        "{\"user\":\"dana\",\"target\":\"prod-db\",\"kind\":\"sql\",\"text\":\"DROP TABLE t\"}\n";
    let mut out = Vec::new();
    eval_jsonl(&e, Cursor::new(input), &mut out, true).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let matched: Vec<&str> = v["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(matched.contains(&"SQL-scope"), "{matched:?}");
    assert!(matched.contains(&"SQL-5-dba"), "{matched:?}");
    assert_eq!(v["approvers"][0], "dba");
}

#[test]
fn prepared_statements_are_judged_again_when_executed() {
    let e = engine();
    let mut session = SqlSession::default();
    let ctx = RequestContext::default();
    let v = e.decide_sql(
        "alice",
        "prod-db",
        "PREPARE p AS DELETE FROM orders",
        &mut session,
        &ctx,
    );
    expect(&v, Decision::StepUp, Some("approval"), "SQL-3");
    let v = e.decide_sql("alice", "prod-db", "EXECUTE p", &mut session, &ctx);
    expect(&v, Decision::StepUp, Some("approval"), "SQL-3");
    let v = e.decide_sql(
        "alice",
        "prod-db",
        "EXECUTE never_prepared",
        &mut session,
        &ctx,
    );
    expect(&v, Decision::Deny, None, "ANY-0");
}

#[test]
fn messages_are_fit_for_users() {
    let e = engine();
    assert_eq!(
        sql(&e, "alice", "prod-db", "DROP TABLE orders").message,
        "denied by policy SQL-5: DROP and TRUNCATE are not allowed on prod-db"
    );
    assert_eq!(
        sql(&e, "alice", "prod-db", "DELETE FROM orders").message,
        "approval required by policy SQL-3: UPDATE or DELETE without a WHERE (or with a constant-true one) needs approval on prod-db"
    );
    assert_eq!(
        sql(
            &e,
            "deploy-bot",
            "prod-db",
            "DELETE FROM app.jobs WHERE id = 1"
        )
        .message,
        "denied: no policy allows DELETE on prod-db"
    );
}

#[test]
fn bad_input_is_denied_promptly() {
    let e = engine();
    let huge = format!("SELECT '{}'", "x".repeat(2 * 1024 * 1024));
    expect(
        &sql(&e, "alice", "prod-db", &huge),
        Decision::Deny,
        None,
        "ANY-0",
    );
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    expect(
        &sql(&e, "alice", "prod-db", &deep),
        Decision::Deny,
        None,
        "ANY-0",
    );
    expect(
        &sql(&e, "alice", "prod-db", "SELECT 1\0; DROP TABLE t"),
        Decision::Deny,
        None,
        "ANY-0",
    );
    let stages = vec!["cat"; 10_000].join(" | ");
    let started = std::time::Instant::now();
    let v = shell(&e, "alice", "web1", &stages);
    assert_eq!(v.decision, Decision::Deny, "{}", v.message);
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn evasions_through_text() {
    let e = engine();
    for text in [
        "DrOp TaBlE orders",
        "/* hi */ DROP/**/TABLE orders",
        "SELECT 1;DROP TABLE orders",
        "drop table if exists public.\"Orders\" cascade",
    ] {
        expect(
            &sql(&e, "alice", "prod-db", text),
            Decision::Deny,
            None,
            "SQL-5",
        );
    }
    for line in [
        "\"rm\" -rf /x",
        "$'rm' -rf /x",
        "command rm -rf /x",
        "env FOO=1 rm -rf /x",
        "timeout 5 rm -rf /x",
        "bash -c \"rm -rf /x\"",
        "(cd /; rm -rf x)",
        "f() { rm -rf /x; }; f",
        "find / -name x -exec rm -rf {} \\;",
        "true && rm -fr /x",
    ] {
        expect(
            &shell(&e, "alice", "web1", line),
            Decision::Deny,
            None,
            "SH-1",
        );
    }
}

/// The cache must never change a decision: statements whose literals matter are decided
/// separately even when they differ only in a literal.
#[test]
fn cache_never_changes_a_decision() {
    let cached = engine_with_cache(1000);
    let fresh = engine_with_cache(0);
    let pairs = [
        (
            "DELETE FROM orders WHERE 1=1",
            "DELETE FROM orders WHERE 1=2",
        ),
        (
            "DELETE FROM orders WHERE id = 5 OR 1 = 1",
            "DELETE FROM orders WHERE id = 5 OR 1 = 2",
        ),
        ("COPY orders TO '/tmp/file'", "COPY orders TO PROGRAM 'cmd'"),
        ("COPY orders TO STDOUT", "COPY orders TO '/tmp/file'"),
        (
            "SELECT set_config('role', 'admin', false)",
            "SELECT set_config('work_mem', '64MB', false)",
        ),
        ("SET search_path = secrets", "SET search_path = app"),
        ("SET search_path = 'secrets'", "SET search_path = 'app'"),
        (
            "SELECT * FROM orders WHERE id = 1",
            "SELECT * FROM orders WHERE id = 2",
        ),
        (
            "UPDATE orders SET a = 'x' WHERE id = 1",
            "UPDATE orders SET a = 'y' WHERE id = 2",
        ),
    ];
    for user in ["alice", "deploy-bot", "agent-7"] {
        for (a, b) in pairs {
            for text in [a, b, a, b] {
                let c = sql(&cached, user, "prod-db", text);
                let f = sql(&fresh, user, "prod-db", text);
                assert_eq!(
                    (c.decision, c.step_up, &c.policy_ids),
                    (f.decision, f.step_up, &f.policy_ids),
                    "{user}: {text}"
                );
            }
        }
    }
    // Same statement, different user or one-time-code freshness: separate decisions.
    let text = "SELECT * FROM payroll";
    assert_eq!(
        sql(&cached, "alice", "prod-db", text).decision,
        Decision::StepUp
    );
    assert_eq!(
        sql(&cached, "agent-7", "prod-db", text).decision,
        Decision::Deny
    );
    let fresh_code = RequestContext {
        mfa_age_secs: Some(5),
        ..Default::default()
    };
    let v = cached.decide_sql(
        "alice",
        "prod-db",
        text,
        &mut SqlSession::default(),
        &fresh_code,
    );
    assert_eq!(v.decision, Decision::Allow);
    // A hit for a different literal still redacts its own text.
    let v1 = sql(
        &cached,
        "alice",
        "prod-db",
        "SELECT * FROM orders WHERE note = 'AKIAIOSFODNN7EXAMPLE'",
    );
    let v2 = sql(
        &cached,
        "alice",
        "prod-db",
        "SELECT * FROM orders WHERE note = 'plain'",
    );
    assert_eq!(v1.decision, v2.decision);
    assert!(v2.redacted_text.contains("plain"), "{}", v2.redacted_text);
}

#[test]
fn shadow_policies_are_reported_not_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let shadow = dir.path().join("try.cedar");
    std::fs::write(
        &shadow,
        "@id(\"TRY-no-payroll\")\nforbid (principal, action in Action::\"sql\", resource) when { context.names.contains(\"orders\") };\n@id(\"TRY-all\") permit (principal, action, resource);\n",
    )
    .unwrap();
    let (p, t) = common::identities();
    let opts = EngineOptions {
        policy_paths: vec![examples().join("policies")],
        shadow_paths: vec![shadow],
        ..Default::default()
    };
    let e = Engine::load(opts, p, t).unwrap();
    let v = sql(&e, "alice", "prod-db", "SELECT * FROM orders");
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.shadow, Some(Decision::Deny));
    let v = sql(&e, "alice", "prod-db", "SELECT 1");
    assert_eq!(v.shadow, Some(Decision::Allow));
}
