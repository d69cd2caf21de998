//! Recorder throughput, `cargo bench -p recorder --bench throughput` (release build):
//!
//! * `os_sustained`: action rows/s from 64 concurrent sessions, each recording back to back
//!   (closed loop, the recorder saturated), into Parquet with `durability = "os"` and one
//!   writer — timed until shutdown has rolled every row into a published Parquet file (checked
//!   by summing the files' row counts). Target ≥ 200,000 rows/s. Its `action()` latencies are
//!   queueing at saturation (Little's law: 64 callers / rows per second), not service time.
//! * `os_paced_200k`: the same 64 sessions offering 200,000 rows/s in total (open loop, each
//!   session paced on a millisecond clock), the latency of each `action()` at that load.
//!   Target p99 ≤ 50 µs.
//! * `fsync_sustained`: the same with `durability = "fsync"` (one `fdatasync` per group commit).
//! * `burst_1000_sessions`: 1,000 sessions at once, each a start, 100 actions with outcomes and
//!   an end; peak RSS of the process during the burst (reset before it via `clear_refs`).
//!
//! Defaults are the recorder's own (`RecorderOptions::new`): queue 65,536 rows, segments of
//! 100,000 rows. `BENCH_ROWS` sets the rows of the os run (default 2,000,000),
//! `BENCH_PACED_RATE` the offered rows/s of the paced run (default 200,000), `BENCH_DIR`
//! where the audit directories go (default the temp dir). Each figure is printed as one JSON
//! line (`{"suite":"recorder","bench":..,..}`), appended to the file `BENCH_JSON` names when set.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use recorder::{
    ActionOutcome, ActionRow, Durability, Recorder, RecorderOptions, SessionEnd, SessionStart,
};

const TARGET_ROWS_PER_S: f64 = 200_000.0;
const TARGET_P99_US: f64 = 50.0;

fn row(session: &str, seq: i64) -> ActionRow {
    ActionRow {
        time: 1_790_000_000_000_000 + seq,
        session_id: session.to_string(),
        seq,
        identity: "alice".into(),
        identity_kind: "human".into(),
        target: "prod-db".into(),
        protocol: "postgres".into(),
        kind: "sql".into(),
        text: format!("SELECT * FROM orders WHERE customer_id = {seq} AND status = 'open'"),
        fingerprint: Some("SELECT * FROM orders WHERE customer_id = ? AND status = ?".into()),
        statement_class: Some("select".into()),
        objects: vec!["public.orders".into()],
        decision: "allow".into(),
        policy_ids: vec!["allow-read".into()],
        ..Default::default()
    }
}

fn outcome(session: &str, seq: i64) -> ActionOutcome {
    ActionOutcome {
        session_id: session.to_string(),
        seq,
        time: 1_790_000_000_000_000 + seq + 1,
        outcome: "ok".into(),
        rows: Some(1),
        duration_us: Some(120),
        bytes_in: 80,
        bytes_out: 400,
        ..Default::default()
    }
}

/// Kernel's peak resident set of this process, in MiB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets the peak RSS to the current RSS (Linux `clear_refs` value 5).
fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("cannot reset peak RSS ({e}); the figure includes earlier runs");
    }
}

/// Rows in the published Parquet files of `table`.
fn parquet_rows(dir: &Path, table: &str) -> i64 {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut rows = 0;
    let Ok(days) = std::fs::read_dir(dir.join(table)) else {
        return 0;
    };
    for day in days.flatten() {
        for f in std::fs::read_dir(day.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = f.file_name().to_string_lossy().to_string();
            if name.ends_with(".parquet") && !name.starts_with('.') {
                let file = std::fs::File::open(f.path()).expect("open parquet");
                let reader = SerializedFileReader::new(file).expect("parquet footer");
                rows += reader.metadata().file_metadata().num_rows();
            }
        }
    }
    rows
}

fn bench_dir() -> PathBuf {
    std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

struct Figures {
    bench: &'static str,
    rows: usize,
    seconds: f64,
    latencies_ns: Vec<u64>,
    peak_rss_mb: Option<f64>,
}

impl Figures {
    fn pct_us(&self, p: f64) -> f64 {
        let l = &self.latencies_ns;
        if l.is_empty() {
            return 0.0;
        }
        let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1;
        l[i] as f64 / 1000.0
    }

    fn json(&self) -> String {
        let mut v = serde_json::json!({
            "suite": "recorder",
            "bench": self.bench,
            "rows": self.rows,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "rows_per_s": (self.rows as f64 / self.seconds).round(),
            "p50_us": (self.pct_us(0.50) * 10.0).round() / 10.0,
            "p99_us": (self.pct_us(0.99) * 10.0).round() / 10.0,
            "max_us": (self.pct_us(1.0) * 10.0).round() / 10.0,
        });
        if self.bench == "os_sustained" {
            v["target_rows_per_s"] = TARGET_ROWS_PER_S.into();
        }
        if self.bench == "os_paced_200k" {
            v["target_p99_us"] = TARGET_P99_US.into();
        }
        if let Some(mb) = self.peak_rss_mb {
            v["peak_rss_mb"] = ((mb * 10.0).round() / 10.0).into();
        }
        v.to_string()
    }
}

/// `sessions` concurrent sessions, each recording `per_session` actions back to back.
async fn sustained(
    bench: &'static str,
    durability: Durability,
    sessions: usize,
    per_session: usize,
) -> Figures {
    let tmp = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let mut opts = RecorderOptions::new(tmp.path(), "bench");
    opts.durability = durability;
    let (rec, task) = Recorder::open(opts).await.expect("open");
    let started = Instant::now();
    let mut handles = Vec::new();
    for s in 0..sessions {
        let rec = rec.clone();
        handles.push(tokio::spawn(async move {
            let sid = format!("session-{s:05}");
            let mut lat = Vec::with_capacity(per_session);
            for seq in 0..per_session as i64 {
                // Building the row (what a session does anyway) is outside the latency.
                let r = row(&sid, seq);
                let t = Instant::now();
                rec.action(r).await.expect("action");
                lat.push(t.elapsed().as_nanos() as u64);
            }
            lat
        }));
    }
    let mut latencies_ns = Vec::with_capacity(sessions * per_session);
    for h in handles {
        latencies_ns.extend(h.await.expect("task"));
    }
    drop(rec);
    task.shutdown().await.expect("shutdown");
    let seconds = started.elapsed().as_secs_f64();
    let rows = sessions * per_session;
    assert_eq!(
        parquet_rows(tmp.path(), "actions"),
        rows as i64,
        "every row must be in Parquet"
    );
    latencies_ns.sort_unstable();
    Figures {
        bench,
        rows,
        seconds,
        latencies_ns,
        peak_rss_mb: None,
    }
}

/// `sessions` sessions offering `rate` rows/s in total for `seconds`: each session records the
/// rows that are due, then sleeps until the next millisecond tick.
async fn paced(bench: &'static str, sessions: usize, rate: f64, seconds: f64) -> Figures {
    let tmp = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let opts = RecorderOptions::new(tmp.path(), "bench");
    let (rec, task) = Recorder::open(opts).await.expect("open");
    let per_session = rate / sessions as f64;
    let total_per_session = (per_session * seconds) as usize;
    let started = Instant::now();
    let mut handles = Vec::new();
    for s in 0..sessions {
        let rec = rec.clone();
        handles.push(tokio::spawn(async move {
            let sid = format!("paced-{s:05}");
            let mut lat = Vec::with_capacity(total_per_session);
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut sent = 0usize;
            while sent < total_per_session {
                tick.tick().await;
                let due = ((started.elapsed().as_secs_f64() * per_session) as usize)
                    .min(total_per_session);
                while sent < due {
                    let r = row(&sid, sent as i64);
                    let t = Instant::now();
                    rec.action(r).await.expect("action");
                    lat.push(t.elapsed().as_nanos() as u64);
                    sent += 1;
                }
            }
            lat
        }));
    }
    let mut latencies_ns = Vec::new();
    for h in handles {
        latencies_ns.extend(h.await.expect("task"));
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(rec);
    task.shutdown().await.expect("shutdown");
    let rows = latencies_ns.len();
    assert_eq!(parquet_rows(tmp.path(), "actions"), rows as i64);
    latencies_ns.sort_unstable();
    Figures {
        bench,
        rows,
        seconds,
        latencies_ns,
        peak_rss_mb: None,
    }
}

/// 1,000 sessions at once: start, 100 actions with outcomes, end.
async fn burst() -> Figures {
    const SESSIONS: usize = 1_000;
    const ACTIONS: usize = 100;
    let tmp = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let opts = RecorderOptions::new(tmp.path(), "bench");
    reset_peak_rss();
    let (rec, task) = Recorder::open(opts).await.expect("open");
    let started = Instant::now();
    let mut handles = Vec::new();
    for s in 0..SESSIONS {
        let rec = rec.clone();
        handles.push(tokio::spawn(async move {
            let sid = format!("burst-{s:05}");
            rec.session_start(SessionStart {
                session_id: sid.clone(),
                time: 1_790_000_000_000_000,
                identity: "alice".into(),
                identity_kind: "human".into(),
                target: "prod-db".into(),
                protocol: "postgres".into(),
                source: "203.0.113.7:5000".into(),
                ..Default::default()
            })
            .await
            .expect("start");
            let mut lat = Vec::with_capacity(ACTIONS);
            for seq in 0..ACTIONS as i64 {
                let r = row(&sid, seq);
                let t = Instant::now();
                rec.action(r).await.expect("action");
                lat.push(t.elapsed().as_nanos() as u64);
                rec.outcome(outcome(&sid, seq)).await.expect("outcome");
            }
            rec.session_end(SessionEnd {
                session_id: sid,
                time: 1_790_000_000_000_000 + 1_000_000,
                end_reason: "client_closed".into(),
                bytes_in: 0,
                bytes_out: 0,
            })
            .await
            .expect("end");
            lat
        }));
    }
    let mut latencies_ns = Vec::new();
    for h in handles {
        latencies_ns.extend(h.await.expect("task"));
    }
    drop(rec);
    task.shutdown().await.expect("shutdown");
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_mb();
    let rows = SESSIONS * (2 * ACTIONS + 2);
    assert_eq!(
        parquet_rows(tmp.path(), "actions"),
        (SESSIONS * ACTIONS) as i64
    );
    latencies_ns.sort_unstable();
    Figures {
        bench: "burst_1000_sessions",
        rows,
        seconds,
        latencies_ns,
        peak_rss_mb: Some(peak),
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let total: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let figures = rt.block_on(async {
        // The burst first, while the process is small, then the long runs.
        let burst = burst().await;
        let os = sustained("os_sustained", Durability::Os, 64, total / 64).await;
        let paced = match std::env::var("BENCH_PACED_RATE")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
        {
            Some(rate) => paced("os_paced_custom", 64, rate, 5.0).await,
            None => paced("os_paced_200k", 64, TARGET_ROWS_PER_S, 5.0).await,
        };
        let fsync = sustained("fsync_sustained", Durability::Fsync, 64, 500).await;
        vec![os, paced, fsync, burst]
    });
    println!("| bench | rows | rows/s | action() p50 µs | p99 µs | max µs | peak RSS MB |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for f in &figures {
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {} |",
            f.bench,
            f.rows,
            f.rows as f64 / f.seconds,
            f.pct_us(0.50),
            f.pct_us(0.99),
            f.pct_us(1.0),
            f.peak_rss_mb.map_or("-".into(), |m| format!("{m:.0}")),
        );
    }
    let lines: String = figures.iter().map(|f| f.json() + "\n").collect();
    print!("{lines}");
    if let Some(path) = std::env::var_os("BENCH_JSON") {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(lines.as_bytes()));
        if let Err(e) = written {
            eprintln!("cannot append to {}: {e}", path.to_string_lossy());
            std::process::exit(1);
        }
    }
}
