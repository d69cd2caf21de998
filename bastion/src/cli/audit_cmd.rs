//! `bastion audit query|sessions|actions|verify|replay`: the auditor's view of the trail, run
//! embedded (DataFusion over the Parquet files plus the journal's not-yet-rolled rows).
use super::ConfigArg;
use clap::{Subcommand, ValueEnum};
use std::process::ExitCode;

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Aligned table.
    Table,
    /// CSV with header.
    Csv,
    /// JSON array of objects.
    Json,
}

impl From<Format> for recorder::OutputFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => recorder::OutputFormat::Table,
            Format::Csv => recorder::OutputFormat::Csv,
            Format::Json => recorder::OutputFormat::Json,
        }
    }
}

/// Filters of the ready-made views.
#[derive(Debug, clap::Args)]
pub struct Filters {
    /// Only this identity.
    #[arg(long)]
    user: Option<String>,
    /// Only this target.
    #[arg(long)]
    target: Option<String>,
    /// Only this decision (allow, deny, step_up) — actions only.
    #[arg(long)]
    decision: Option<String>,
    /// From this time (e.g. 2026-11-23 or 2026-11-23T10:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Until this time.
    #[arg(long)]
    until: Option<String>,
}

/// `bastion audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Run SQL over the tables `actions`, `sessions`, `entries`.
    Query {
        #[command(flatten)]
        config: ConfigArg,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// The SQL (read-only).
        sql: String,
    },
    /// Sessions, newest first.
    Sessions {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        filters: Filters,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Actions in order, optionally of one session.
    Actions {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this session.
        #[arg(long)]
        session: Option<String>,
        #[command(flatten)]
        filters: Filters,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Play a session's terminal recordings (every shell channel, in order), or with
    /// `--actions` list its actions; exit 1 when there is nothing to show.
    Replay {
        #[command(flatten)]
        config: ConfigArg,
        /// Print the session's actions (time, seq, decision, outcome, exit status, text)
        /// instead of playing its recordings.
        #[arg(long)]
        actions: bool,
        /// Playback speed: 2 plays twice as fast, 0 prints everything at once. Pauses are
        /// capped at 2 s.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Output format of `--actions`.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// The session id.
        session: String,
    },
    /// Recompute hash chains, file digests and manifests; exit 1 naming the first break.
    Verify {
        #[command(flatten)]
        config: ConfigArg,
        /// Only days from this date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
        /// Ed25519 public key (PEM) that must have signed the manifests.
        #[arg(long)]
        key: Option<std::path::PathBuf>,
    },
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn where_clause(f: &Filters, decision: bool, extra: Option<String>) -> String {
    let mut c: Vec<String> = extra.into_iter().collect();
    if let Some(u) = &f.user {
        c.push(format!("identity = {}", quote(u)));
    }
    if let Some(t) = &f.target {
        c.push(format!("target = {}", quote(t)));
    }
    if decision {
        if let Some(d) = &f.decision {
            c.push(format!("decision = {}", quote(d)));
        }
    }
    if let Some(s) = &f.since {
        c.push(format!("time >= CAST({} AS TIMESTAMP)", quote(s)));
    }
    if let Some(u) = &f.until {
        c.push(format!("time < CAST({} AS TIMESTAMP)", quote(u)));
    }
    if c.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", c.join(" AND "))
    }
}

/// Runs read-only SQL over the trail of `audit_dir`.
fn query_rows(
    audit_dir: &std::path::Path,
    sql: &str,
) -> anyhow::Result<Vec<recorder::RecordBatch>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(runtime
        .block_on(recorder::query(audit_dir, sql))
        .map_err(|e| crate::exit::UsageError(format!("audit query failed: {e}")))?)
}

fn run_query(config: &ConfigArg, sql: &str, format: Format) -> anyhow::Result<ExitCode> {
    let cfg = crate::config::load(&config.config)?;
    let batches = query_rows(&cfg.server.audit_dir, sql)?;
    println!("{}", recorder::format_batches(&batches, format.into())?);
    Ok(ExitCode::SUCCESS)
}

/// `bastion audit replay SESSION`: plays every cast of the session, in order.
fn replay(audit_dir: &std::path::Path, session: &str, speed: f64) -> anyhow::Result<ExitCode> {
    if !speed.is_finite() || speed < 0.0 {
        return Err(crate::exit::UsageError(format!(
            "--speed must be a number >= 0 (0 plays without pauses), not {speed}"
        ))
        .into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let found = runtime
        .block_on(recorder::session_casts(audit_dir, session))
        .map_err(|e| anyhow::anyhow!("cannot look up the recordings of session {session}: {e}"))?;
    if let Some(rel) = found.recorded.as_deref() {
        if !found.casts.iter().any(|c| c.ends_with(rel)) {
            eprintln!("warning: the session's recording {rel} is missing or not under recordings/");
        }
    }
    let casts = found.casts;
    if casts.is_empty() {
        let why = if found.known_session {
            "the session has no terminal recording"
        } else {
            "no such session in the trail and no recording on disk"
        };
        eprintln!(
            "error: nothing to replay for session {session}: {why} (looked in {})",
            audit_dir.join(recorder::RECORDINGS_DIR).display()
        );
        return Ok(ExitCode::from(1));
    }
    let stdout = std::io::stdout();
    for cast in &casts {
        // stdout carries the terminal stream only; which file plays goes to stderr.
        eprintln!("== {} ==", cast.display());
        recorder::replay(cast, speed, stdout.lock())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `bastion audit replay --actions SESSION`: the session's actions in order.
fn replay_actions(
    audit_dir: &std::path::Path,
    session: &str,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let sql = format!(
        "SELECT time, seq, decision, outcome, exit_status, text FROM actions \
         WHERE session_id = {} ORDER BY seq",
        quote(session)
    );
    let batches = query_rows(audit_dir, &sql)?;
    if batches.iter().all(|b| b.num_rows() == 0) {
        eprintln!("error: no actions recorded for session {session}");
        return Ok(ExitCode::from(1));
    }
    println!("{}", recorder::format_batches(&batches, format.into())?);
    Ok(ExitCode::SUCCESS)
}

/// Runs an audit subcommand.
pub fn run(cmd: &AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Query {
            config,
            format,
            sql,
        } => run_query(config, sql, *format),
        AuditCommand::Sessions {
            config,
            filters,
            format,
        } => {
            let sql = format!(
                "SELECT * FROM sessions{} ORDER BY start_time DESC",
                where_clause(filters, false, None)
            );
            run_query(
                config,
                &sql.replace("time >=", "start_time >=")
                    .replace("time <", "start_time <"),
                *format,
            )
        }
        AuditCommand::Actions {
            config,
            session,
            filters,
            format,
        } => {
            let extra = session
                .as_ref()
                .map(|s| format!("session_id = {}", quote(s)));
            let sql = format!(
                "SELECT time, session_id, seq, identity, target, kind, text, decision, policy_ids, step_up, approver, outcome, rows, sqlstate, exit_status FROM actions{} ORDER BY session_id, seq",
                where_clause(filters, true, extra)
            );
            run_query(config, &sql, *format)
        }
        AuditCommand::Replay {
            config,
            actions,
            speed,
            format,
            session,
        } => {
            let cfg = crate::config::load(&config.config)?;
            if *actions {
                replay_actions(&cfg.server.audit_dir, session, *format)
            } else {
                replay(&cfg.server.audit_dir, session, *speed)
            }
        }
        AuditCommand::Verify { config, since, key } => {
            let cfg = crate::config::load(&config.config)?;
            let report = recorder::verify(&cfg.server.audit_dir, *since, key.as_deref())?;
            println!(
                "checked {} manifest lines, {} files, {} rows, {} sessions",
                report.manifest_lines, report.files, report.rows, report.sessions
            );
            if let Some(head) = &report.head {
                println!("head {head}");
            }
            if report.is_ok() {
                println!("ok: the trail is intact");
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &report.problems {
                    println!("BROKEN {p}");
                }
                Ok(ExitCode::from(1))
            }
        }
    }
}
