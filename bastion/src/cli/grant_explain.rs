//! `bastion policy eval --explain` with grants in force: each output line gains `"grants"`, the
//! grants that covered the request (id, action, tables, expiry, reason, and whether the grant
//! decided it — `policies` then holds `"grant"`, standing in for a missing permit).
use crate::grants::{applying, StoredGrant};
use serde_json::{json, Value};
use std::io::{BufRead, Write};

/// The Cedar actions a decided request stands for, from its input and output lines.
fn actions_of(input: &Value, output: &Value) -> Vec<String> {
    let kind = input.get("kind").and_then(Value::as_str).unwrap_or("");
    match kind {
        "sql" => output
            .get("class")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split(',')
            .filter(|c| !c.is_empty())
            .map(|c| match c {
                "transaction" => "sql:session".to_string(),
                other => format!("sql:{other}"),
            })
            .collect(),
        "shell" => vec!["shell:run".into()],
        "sftp" => vec![format!(
            "sftp:{}",
            input.get("op").and_then(Value::as_str).unwrap_or("read")
        )],
        "forward" => vec!["ssh:forward".into()],
        "connect" => vec!["connect".into()],
        _ => Vec::new(),
    }
}

/// Adds `"grants"` to one output object.
fn annotate(input_line: &str, output: &mut Value, grants: &[StoredGrant]) {
    let Ok(input) = serde_json::from_str::<Value>(input_line) else {
        return;
    };
    let text = |k: &str| {
        input
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let actions = actions_of(&input, output);
    let tables: Vec<String> = if input.get("kind").and_then(Value::as_str) == Some("sql") {
        output
            .get("objects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let decided = output
        .get("policies")
        .and_then(Value::as_array)
        .is_some_and(|p| p.iter().any(|v| v == "grant"));
    let listed: Vec<Value> = applying(grants, &text("user"), &text("target"), &actions, &tables)
        .into_iter()
        .map(|g| {
            json!({
                "id": g.id,
                "action": g.action,
                "tables": g.tables,
                "expires": crate::entry::machine_token::rfc3339(g.expires_unix),
                "reason": g.reason,
                "decided": decided,
            })
        })
        .collect();
    if let Some(map) = output.as_object_mut() {
        map.insert("grants".into(), Value::Array(listed));
    }
}

/// Runs `policy eval --explain` over all of `input`, then adds the grants to each line.
pub fn eval_explaining_grants(
    engine: &policies::Engine,
    grants: &[StoredGrant],
    mut input: impl BufRead,
) -> anyhow::Result<()> {
    let mut text = String::new();
    input.read_to_string(&mut text)?;
    let mut decided = Vec::new();
    policies::eval_jsonl(engine, text.as_bytes(), &mut decided, true)?;
    let decided = String::from_utf8_lossy(&decided);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (line_in, line_out) in text.lines().zip(decided.lines()) {
        match serde_json::from_str::<Value>(line_out) {
            Ok(mut v) => {
                annotate(line_in, &mut v, grants);
                writeln!(out, "{v}")?;
            }
            Err(_) => writeln!(out, "{line_out}")?,
        }
    }
    out.flush()?;
    Ok(())
}
