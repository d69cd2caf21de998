#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
//! Row builders and helpers shared by the recorder's integration tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use recorder::{
    ActionOutcome, ActionRow, EntryRow, RecordBatch, RecorderOptions, SessionEnd, SessionStart,
};

pub const T0: i64 = 1_790_000_000_000_000; // 2026-09-21 UTC

pub fn opts(dir: &Path) -> RecorderOptions {
    let mut o = RecorderOptions::new(dir, "node1");
    o.roll_max_rows = 1000;
    o.roll_max_age = Duration::from_secs(3600);
    o.queue_capacity = 128;
    o
}

pub fn action(session: &str, seq: i64) -> ActionRow {
    ActionRow {
        time: T0 + seq * 1000,
        session_id: session.into(),
        seq,
        node: String::new(),
        identity: "alice".into(),
        identity_kind: "human".into(),
        target: "prod-db".into(),
        protocol: "postgres".into(),
        kind: "sql".into(),
        text: format!("SELECT * FROM orders WHERE id = {seq}"),
        fingerprint: Some("SELECT * FROM orders WHERE id = ?".into()),
        statement_class: Some("select".into()),
        objects: vec!["public.orders".into()],
        risk_tags: vec![],
        decision: "allow".into(),
        policy_ids: vec!["p1".into(), "p2".into()],
        shadow_decision: None,
        step_up: None,
        approver: None,
        approved_at: None,
    }
}

pub fn outcome(session: &str, seq: i64) -> ActionOutcome {
    ActionOutcome {
        session_id: session.into(),
        seq,
        time: T0 + seq * 1000 + 500,
        outcome: "ok".into(),
        rows: Some(seq),
        sqlstate: None,
        exit_status: None,
        duration_us: Some(500),
        bytes_in: 40,
        bytes_out: 400,
        approver: None,
        approved_at: None,
        message: None,
    }
}

pub fn start(session: &str) -> SessionStart {
    SessionStart {
        session_id: session.into(),
        time: T0,
        identity: "alice".into(),
        identity_kind: "human".into(),
        target: "prod-db".into(),
        protocol: "postgres".into(),
        source: "203.0.113.7:5000".into(),
        client: Some("psql".into()),
        recording: None,
    }
}

pub fn end(session: &str) -> SessionEnd {
    SessionEnd {
        session_id: session.into(),
        time: T0 + 10_000_000,
        end_reason: "client_closed".into(),
        bytes_in: 100,
        bytes_out: 1000,
    }
}

pub fn entry(result: &str) -> EntryRow {
    EntryRow {
        time: T0,
        identity: "alice".into(),
        source: "203.0.113.7:5000".into(),
        protocol: "postgres".into(),
        method: "scram".into(),
        result: result.into(),
        reason: (result != "ok").then(|| "bad password".into()),
        session_id: (result == "ok").then(|| "s1".into()),
    }
}

/// Every published Parquet file under `dir/table`.
pub fn parquet_files(dir: &Path, table: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(days) = std::fs::read_dir(dir.join(table)) else {
        return out;
    };
    for d in days.flatten() {
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if name.ends_with(".parquet") && !name.starts_with('.') {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// Renders batches as CSV for easy assertions.
pub fn csv(batches: &[RecordBatch]) -> String {
    recorder::format_batches(batches, recorder::OutputFormat::Csv).unwrap()
}
