//! Test helper for the kill -9 test: records sessions and actions as fast as it can from several
//! tasks and prints `ack <session_id> <seq>` once each action is acknowledged. It never exits on
//! its own; the test kills it with SIGKILL.
//!
//! Usage: `recorder-crash-helper <audit-dir> <session-prefix>`

use std::io::Write;
use std::time::Duration;

use recorder::{now_micros, ActionOutcome, ActionRow, Recorder, RecorderOptions, SessionStart};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("missing audit dir")?;
    let prefix = args.next().unwrap_or_else(|| "s".into());
    let mut opts = RecorderOptions::new(dir, "crash");
    opts.roll_max_rows = 300;
    opts.roll_max_age = Duration::from_millis(50);
    opts.queue_capacity = 64;
    let (rec, _task) = Recorder::open(opts).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for s in 0..4 {
        let rec = rec.clone();
        let tx = tx.clone();
        let sid = format!("{prefix}-{s}");
        tokio::spawn(async move {
            let start = SessionStart {
                session_id: sid.clone(),
                time: now_micros(),
                identity: "alice".into(),
                target: "db".into(),
                protocol: "postgres".into(),
                ..Default::default()
            };
            if rec.session_start(start).await.is_err() {
                return;
            }
            for seq in 1.. {
                let row = ActionRow {
                    time: now_micros(),
                    session_id: sid.clone(),
                    seq,
                    identity: "alice".into(),
                    target: "db".into(),
                    kind: "sql".into(),
                    text: format!("SELECT {seq}"),
                    decision: "allow".into(),
                    ..Default::default()
                };
                if rec.action(row).await.is_err() {
                    return;
                }
                let _ = tx.send(format!("ack {sid} {seq}"));
                let out = ActionOutcome {
                    session_id: sid.clone(),
                    seq,
                    time: now_micros(),
                    outcome: "ok".into(),
                    rows: Some(1),
                    ..Default::default()
                };
                if rec.outcome(out).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut stdout = std::io::stdout().lock();
    while let Some(line) = rx.recv().await {
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
    }
    Ok(())
}
