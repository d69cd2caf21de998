//! `pg-idle-sessions CONNSTR N [READY-FILE]`: opens N PostgreSQL sessions (32 at a time), runs
//! `SELECT 1` on each so it is fully established, writes `ready N` to READY-FILE (or stdout),
//! then holds them idle until stdin closes. `scripts/bench` reads the proxy's RSS meanwhile.
use futures::stream::{self, StreamExt};
use std::process::ExitCode;
use tokio::io::AsyncReadExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(conn), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: pg-idle-sessions CONNSTR N [READY-FILE]");
        return ExitCode::from(2);
    };
    let opened: Vec<_> = stream::iter(0..n)
        .map(|_| async move {
            let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
            let task = tokio::spawn(connection);
            client.simple_query("SELECT 1").await?;
            Ok::<_, tokio_postgres::Error>((client, task))
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut sessions = Vec::with_capacity(n);
    for (i, s) in opened.into_iter().enumerate() {
        match s {
            Ok(s) => sessions.push(s),
            Err(e) => {
                let cause = std::error::Error::source(&e)
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default();
                eprintln!("pg-idle-sessions: session {i} failed: {e}{cause}");
                return ExitCode::FAILURE;
            }
        }
    }
    let ready = format!("ready {}\n", sessions.len());
    match args.get(2) {
        Some(path) => {
            if let Err(e) = std::fs::write(path, ready) {
                eprintln!("pg-idle-sessions: cannot write {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
        None => print!("{ready}"),
    }
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    drop(sessions);
    ExitCode::SUCCESS
}
