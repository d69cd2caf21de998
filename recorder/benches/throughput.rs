//! Recorder throughput: rows/s into Parquet and `action()` latency with `durability = os` and
//! `fsync`, and peak RSS for a 1,000-session burst. Run: `cargo bench -p recorder`.
//! `BENCH_ROWS` overrides the number of rows of the os-mode run (default 1,000,000).

use std::time::{Duration, Instant};

use recorder::{ActionRow, Durability, Recorder, RecorderOptions};

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

struct Run {
    name: &'static str,
    rows: usize,
    rows_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    peak_rss_mb: f64,
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn run(
    name: &'static str,
    durability: Durability,
    sessions: usize,
    per_session: usize,
) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = RecorderOptions::new(dir.path(), "bench");
    opts.durability = durability;
    opts.roll_max_rows = 100_000;
    opts.roll_max_age = Duration::from_secs(60);
    opts.queue_capacity = 4096;
    let (rec, task) = Recorder::open(opts).await.expect("open");
    let started = Instant::now();
    let mut handles = Vec::new();
    for s in 0..sessions {
        let rec = rec.clone();
        handles.push(tokio::spawn(async move {
            let sid = format!("session-{s:05}");
            let mut lat = Vec::with_capacity(per_session);
            for seq in 0..per_session {
                let r = row(&sid, seq as i64);
                let t = Instant::now();
                rec.action(r).await.expect("action");
                lat.push(t.elapsed().as_nanos() as u64);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.expect("task"));
    }
    task.shutdown().await.expect("shutdown");
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let rows = sessions * per_session;
    let files = walk(dir.path());
    assert!(!files.is_empty(), "bench wrote no parquet");
    Run {
        name,
        rows,
        rows_per_s: rows as f64 / elapsed,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        peak_rss_mb: peak_rss_mb(),
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out
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
        .unwrap_or(1_000_000);
    let runs = rt.block_on(async {
        vec![
            run(
                "os, 64 sessions (sustained, incl. parquet roll)",
                Durability::Os,
                64,
                total / 64,
            )
            .await,
            run("fsync, 64 sessions", Durability::Fsync, 64, 1_000).await,
            run("os, 1,000-session burst", Durability::Os, 1_000, 100).await,
        ]
    });
    println!("| run | rows | rows/s | action() p50 µs | action() p99 µs | peak RSS MB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in runs {
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.0} |",
            r.name, r.rows, r.rows_per_s, r.p50_us, r.p99_us, r.peak_rss_mb
        );
    }
}
