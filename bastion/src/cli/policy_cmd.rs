//! `bastion policy eval|test`: the admin's tools for policies, on the same engine `serve` uses.
//! `eval` also applies the task-scoped grants in force (`bastion grant`), and `--explain` lists
//! the grants that covered each request; `test` runs on the policies alone.
use super::ConfigArg;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// `bastion policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide JSON lines from stdin (`{"user","target","kind","text"}`), one JSON line out per line in.
    Eval {
        #[command(flatten)]
        config: ConfigArg,
        /// Add the facts and every matching policy (permits too).
        #[arg(long)]
        explain: bool,
    },
    /// Run expected-decision cases (eval input plus `"expect"`); exit 1 listing the failures.
    Test {
        #[command(flatten)]
        config: ConfigArg,
        /// JSON-lines file of cases.
        cases: PathBuf,
    },
}

/// Loads config and engine; a policy error is a config error (exit 2) naming file:line:column.
pub fn engine(args: &ConfigArg) -> anyhow::Result<policies::Engine> {
    let config = crate::config::load(&args.config)?;
    crate::state::load_engine(&config).map_err(|e| crate::exit::UsageError(e.to_string()).into())
}

/// Runs a policy subcommand.
pub fn run(cmd: &PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Eval { config, explain } => {
            let loaded = crate::config::load(&config.config)?;
            let base = crate::state::load_engine(&loaded)
                .map_err(|e| crate::exit::UsageError(e.to_string()))?;
            let now = chrono::Utc::now().timestamp();
            let live = crate::grants::live(&loaded.server.state_dir, now).unwrap_or_else(|e| {
                eprintln!("warning: {e}; evaluating without grants");
                Vec::new()
            });
            let engine = if live.is_empty() {
                base
            } else {
                base.with_grants(live.iter().map(|g| g.to_engine()).collect())
            };
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            if !*explain || live.is_empty() {
                policies::eval_jsonl(&engine, stdin.lock(), stdout.lock(), *explain)?;
            } else {
                super::grant_explain::eval_explaining_grants(&engine, &live, stdin.lock())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Test { config, cases } => {
            let engine = engine(config)?;
            let file = std::fs::File::open(cases).map_err(|e| {
                crate::exit::UsageError(format!("cannot read {}: {e}", cases.display()))
            })?;
            let report = policies::run_cases(&engine, std::io::BufReader::new(file));
            for f in &report.failures {
                println!("FAIL {f}");
            }
            println!("{} passed, {} failed", report.passed, report.failures.len());
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
