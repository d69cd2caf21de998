//! Admin tooling behind `bastion policy eval` and `bastion policy test`: JSON lines in, one
//! JSON line out per input line; a bad line gets `{"error": ...}` and the stream goes on.
//!
//! Input: `{"user","target","kind":"sql"|"shell"|"sftp"|"forward"|"connect","text"}` where
//! `text` is the statement, the command line, the SFTP path, or `host:port`; optional `"op"`
//! (`read`|`write`|`delete`, SFTP, default `read`), `"mfa_age"` (seconds), `"source_ip"`, `"now"`.
//! SQL lines of the same user and target share one session, so `PREPARE` then `EXECUTE` works.
use std::collections::HashMap;
use std::io::{self, BufRead, Write};

use serde::Deserialize;
use serde_json::{json, Value};

use super::model::{Decision, RequestContext, SftpOp, Verdict};
use super::Engine;
use crate::sql::SqlSession;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalInput {
    user: String,
    target: String,
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    mfa_age: Option<u64>,
    #[serde(default)]
    source_ip: Option<std::net::IpAddr>,
    #[serde(default)]
    now: Option<i64>,
    /// Entry risk flags (`context.risk`).
    #[serde(default)]
    risk: Vec<String>,
    // Only in case files.
    #[serde(default)]
    expect: Option<String>,
    #[serde(default)]
    step_up: Option<String>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// Sessions per (user, target) across a stream.
type Sessions = HashMap<(String, String), SqlSession>;

fn evaluate(
    engine: &Engine,
    input: &EvalInput,
    sessions: &mut Sessions,
) -> Result<Verdict, String> {
    let ctx = RequestContext {
        source_ip: input.source_ip,
        mfa_age_secs: input.mfa_age,
        now_unix: input.now.unwrap_or(0),
        risk: input.risk.clone(),
    };
    let (user, target, text) = (&input.user, &input.target, &input.text);
    match input.kind.as_str() {
        "sql" => {
            let session = sessions.entry((user.clone(), target.clone())).or_default();
            Ok(engine.decide_sql(user, target, text, session, &ctx))
        }
        "shell" => Ok(engine.decide_shell(user, target, text, &ctx)),
        "sftp" => {
            let op = match input.op.as_deref().unwrap_or("read") {
                "read" => SftpOp::Read,
                "write" => SftpOp::Write,
                "delete" => SftpOp::Delete,
                other => {
                    return Err(format!(
                        "unknown sftp op {other:?}: expected read, write or delete"
                    ))
                }
            };
            Ok(engine.decide_sftp(user, target, op, text, &ctx))
        }
        "forward" => {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or_else(|| format!("forward text {text:?} is not host:port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| format!("forward port {port:?} is not a number from 0 to 65535"))?;
            Ok(engine.decide_forward(user, target, host.trim_matches(['[', ']']), port, &ctx))
        }
        "connect" => Ok(engine.decide_connect(user, target, &ctx)),
        other => Err(format!(
            "unknown kind {other:?}: expected sql, shell, sftp, forward or connect"
        )),
    }
}

fn parse_line(line: &str) -> Result<EvalInput, String> {
    serde_json::from_str(line).map_err(|e| format!("bad input line: {e}"))
}

/// The `policy eval` output object of a verdict.
fn output(verdict: &Verdict, explain: bool) -> Value {
    let mut out = json!({
        "decision": verdict.decision.as_str(),
        "step_up": verdict.step_up.map(|s| s.to_string()),
        "policies": verdict.policy_ids,
        "message": verdict.message,
        "facts": verdict.facts,
    });
    if explain {
        if let Some(map) = out.as_object_mut() {
            map.insert("matched".into(), json!(verdict.matched));
            map.insert("approvers".into(), json!(verdict.approver_groups));
            map.insert("class".into(), json!(verdict.class));
            map.insert("objects".into(), json!(verdict.objects));
            map.insert("risk_tags".into(), json!(verdict.risk_tags));
            map.insert("redacted_text".into(), json!(verdict.redacted_text));
            map.insert("fingerprint".into(), json!(verdict.fingerprint));
            map.insert("shadow".into(), json!(verdict.shadow.map(Decision::as_str)));
        }
    }
    out
}

/// `bastion policy eval`: one output line per input line (blank lines are echoed as errors
/// too, so line numbers match). `explain` adds every matching policy, permits included.
pub fn eval_jsonl(
    engine: &Engine,
    input: impl BufRead,
    mut out: impl Write,
    explain: bool,
) -> io::Result<()> {
    let mut sessions = Sessions::new();
    for line in input.lines() {
        let line = line?;
        let result = parse_line(&line).and_then(|i| evaluate(engine, &i, &mut sessions));
        let value = match result {
            Ok(verdict) => output(&verdict, explain),
            Err(e) => json!({ "error": e }),
        };
        writeln!(out, "{value}")?;
    }
    out.flush()
}

/// The result of `bastion policy test`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseReport {
    /// Cases run (non-blank, non-comment lines).
    pub total: usize,
    /// Cases that gave the expected decision.
    pub passed: usize,
    /// One line per failure: line number, input, expected, got.
    pub failures: Vec<String>,
}

impl CaseReport {
    /// True when every case passed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// `bastion policy test CASES.jsonl`: each line is an eval input plus `"expect"`
/// (`allow`|`deny`|`step_up`) and optionally `"step_up"` (`approval`|`mfa`|`approval+mfa`) and
/// `"policy"` (an id that must be among the deciding policies). Blank lines and lines starting
/// with `#` or `//` are skipped.
pub fn run_cases(engine: &Engine, input: impl BufRead) -> CaseReport {
    let mut report = CaseReport::default();
    let mut sessions = Sessions::new();
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                report.total += 1;
                report
                    .failures
                    .push(format!("line {number}: cannot read: {e}"));
                continue;
            }
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") {
            continue;
        }
        report.total += 1;
        let case = match parse_line(trimmed) {
            Ok(c) => c,
            Err(e) => {
                report.failures.push(format!("line {number}: {e}"));
                continue;
            }
        };
        let Some(expect) = case.expect.clone() else {
            report.failures.push(format!(
                "line {number}: {trimmed}: no \"expect\" (allow, deny or step_up)"
            ));
            continue;
        };
        if !["allow", "deny", "step_up"].contains(&expect.as_str()) {
            report.failures.push(format!(
                "line {number}: expect {expect:?} is not one of allow, deny, step_up"
            ));
            continue;
        }
        let verdict = match evaluate(engine, &case, &mut sessions) {
            Ok(v) => v,
            Err(e) => {
                report
                    .failures
                    .push(format!("line {number}: {trimmed}: {e}"));
                continue;
            }
        };
        let got_step_up = verdict.step_up.map(|s| s.to_string());
        let decision_ok = verdict.decision.as_str() == expect;
        let step_up_ok = case.step_up.is_none() || case.step_up == got_step_up;
        let policy_ok = case
            .policy
            .as_ref()
            .is_none_or(|p| verdict.policy_ids.iter().any(|id| id == p));
        if decision_ok && step_up_ok && policy_ok {
            report.passed += 1;
        } else {
            let expected = match (&case.step_up, &case.policy) {
                (Some(s), Some(p)) => format!("{expect} ({s}) by {p}"),
                (Some(s), None) => format!("{expect} ({s})"),
                (None, Some(p)) => format!("{expect} by {p}"),
                (None, None) => expect.clone(),
            };
            let got = match got_step_up {
                Some(s) => format!("step_up ({s})"),
                None => verdict.decision.as_str().to_string(),
            };
            let note = case
                .note
                .as_deref()
                .map(|n| format!(" [{n}]"))
                .unwrap_or_default();
            report.failures.push(format!(
                "line {number}: {} {} on {}: {:?}{note}: expected {expected}, got {got} by [{}]: {}",
                case.kind,
                case.user,
                case.target,
                case.text,
                verdict.policy_ids.join(", "),
                verdict.message
            ));
        }
    }
    report
}
