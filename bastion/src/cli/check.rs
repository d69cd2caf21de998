//! `bastion check`: load and validate everything `serve` would, start nothing.
use super::ConfigArg;
use std::process::ExitCode;

/// Validates the config; prints a summary and the warnings.
pub fn run(args: &ConfigArg) -> anyhow::Result<ExitCode> {
    let config = crate::config::load(&args.config)?;
    let engine =
        crate::state::load_engine(&config).map_err(|e| crate::exit::UsageError(e.to_string()))?;
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{}: ok ({} users, {} targets, {} policy files, {} policies)",
        args.config.display(),
        config.users.len(),
        config.targets.len(),
        config.policies.files.len(),
        engine.policy_count()
    );
    Ok(ExitCode::SUCCESS)
}
