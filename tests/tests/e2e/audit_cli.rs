//! `bastion audit replay` on an audit directory written by the recorder: the real binary plays
//! every terminal recording of a session in order, lists its actions, and exits 1 with a clear
//! message when there is nothing to show.
use std::path::Path;
use std::process::Output;

use recorder::{
    ActionOutcome, ActionRow, CastWriter, Recorder, RecorderOptions, SessionEnd, SessionStart,
};
use tests::bastion::run_bastion;

const T0: i64 = 1_790_000_000_000_000; // 2026-09-21 UTC

fn write_cast(path: &Path, chunks: &[&str]) {
    let mut w = CastWriter::new(path, 80, 24, &[("TERM".into(), "xterm".into())]).unwrap();
    for c in chunks {
        w.output(c.as_bytes()).unwrap();
    }
    w.finish().unwrap();
}

fn start(session: &str) -> SessionStart {
    SessionStart {
        session_id: session.into(),
        time: T0,
        identity: "alice".into(),
        identity_kind: "human".into(),
        target: "web-1".into(),
        protocol: "ssh".into(),
        source: "203.0.113.7:5000".into(),
        ..Default::default()
    }
}

fn end(session: &str) -> SessionEnd {
    SessionEnd {
        session_id: session.into(),
        time: T0 + 60_000_000,
        end_reason: "client_closed".into(),
        bytes_in: 10,
        bytes_out: 100,
    }
}

/// An audit dir with session `s1` (two shell channels, three shell lines) and `s2` (no
/// recording), plus the config that points at it.
async fn trail(dir: &Path) -> std::path::PathBuf {
    let audit = dir.join("audit");
    let (rec, task) = Recorder::open(RecorderOptions::new(&audit, "n1"))
        .await
        .unwrap();
    rec.session_start(start("s1")).await.unwrap();
    let lines = [
        (1, "ls /tmp", "allow", "ok", Some(0)),
        (2, "rm -rf /", "deny", "denied", None),
        (3, "false", "allow", "error", Some(1)),
    ];
    for (seq, text, decision, outcome, exit_status) in lines {
        rec.action(ActionRow {
            time: T0 + seq * 1_000_000,
            session_id: "s1".into(),
            seq,
            identity: "alice".into(),
            target: "web-1".into(),
            protocol: "ssh".into(),
            kind: "shell".into(),
            text: text.into(),
            decision: decision.into(),
            ..Default::default()
        })
        .await
        .unwrap();
        rec.outcome(ActionOutcome {
            session_id: "s1".into(),
            seq,
            time: T0 + seq * 1_000_000 + 500,
            outcome: outcome.into(),
            exit_status,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let first = recorder::recording_rel_path("s1", 0, chrono_day());
    write_cast(&audit.join(&first), &["$ ls /tmp\r\n", "a b\r\n$ "]);
    write_cast(
        &recorder::recording_path(&audit, "s1", 1, chrono_day()),
        &["second channel\r\n"],
    );
    rec.session_end_with_recording(end("s1"), Some(first.to_str().unwrap().to_string()))
        .await
        .unwrap();
    rec.session_start(start("s2")).await.unwrap();
    rec.session_end(end("s2")).await.unwrap();
    task.shutdown().await.unwrap();

    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("all.cedar"),
        "permit(principal, action, resource);\n",
    )
    .unwrap();
    let config = dir.join("bastion.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\npostgres_listen = \"127.0.0.1:0\"\nstate_dir = \"{d}/state\"\naudit_dir = \"{d}/audit\"\n\n[policies]\npaths = [\"{d}/policies\"]\n",
            d = dir.display()
        ),
    )
    .unwrap();
    config
}

/// The day of T0, as the recorder's path functions take it.
fn chrono_day() -> recorder::NaiveDate {
    recorder::NaiveDate::from_ymd_opt(2026, 9, 21).unwrap()
}

fn bastion(config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["audit", "replay", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    let Output {
        status,
        stdout,
        stderr,
    } = run_bastion(&all).unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[tokio::test]
async fn replay_plays_every_recording_of_the_session_in_channel_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = trail(dir.path()).await;
    let (code, out, err) = bastion(&config, &["--speed", "0", "s1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "$ ls /tmp\r\na b\r\n$ second channel\r\n");
    let played: Vec<&str> = err.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(played.len(), 2, "{err}");
    assert!(
        played[0].ends_with("recordings/date=2026-09-21/s1-0.cast =="),
        "{err}"
    );
    assert!(
        played[1].ends_with("recordings/date=2026-09-21/s1-1.cast =="),
        "{err}"
    );
    // With timing (pauses of a few milliseconds here), the same stream.
    let (code, timed, err) = bastion(&config, &["--speed", "4", "s1"]);
    assert_eq!((code, timed.as_str()), (0, out.as_str()), "{err}");
}

#[tokio::test]
async fn replay_actions_lists_the_sessions_actions_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = trail(dir.path()).await;
    let (code, out, err) = bastion(&config, &["--actions", "--format", "csv", "s1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim_end(),
        "time,seq,decision,outcome,exit_status,text\n\
         2026-09-21T14:13:21Z,1,allow,ok,0,ls /tmp\n\
         2026-09-21T14:13:22Z,2,deny,denied,,rm -rf /\n\
         2026-09-21T14:13:23Z,3,allow,error,1,false"
    );
    let (code, table, _) = bastion(&config, &["--actions", "s1"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("rm -rf /") && table.contains("exit_status"),
        "{table}"
    );
}

#[tokio::test]
async fn replay_without_a_recording_says_so_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = trail(dir.path()).await;
    let (code, out, err) = bastion(&config, &["s2"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("nothing to replay for session s2: the session has no terminal recording"),
        "{err}"
    );
    let (code, _, err) = bastion(&config, &["nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("nothing to replay for session nope: no such session in the trail"),
        "{err}"
    );
    // A quote in the id is data, not SQL.
    let (code, _, err) = bastion(&config, &["--actions", "s1' OR '1'='1"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no actions recorded for session s1' OR '1'='1"),
        "{err}"
    );
    let (code, _, err) = bastion(&config, &["--speed", "NaN", "s1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--speed"), "{err}");
}
