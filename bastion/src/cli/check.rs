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
    if config.server.ssh_listen.is_some() {
        // The host key clients will be asked to trust (created now if this is the first start).
        let path = crate::ssh::keys::ssh_state_dir(&config.server.state_dir)
            .join(crate::ssh::keys::HOST_KEY_FILE);
        match crate::ssh::keys::load_or_generate(&path, "bastion host key") {
            Ok(key) => println!(
                "ssh host key: {}",
                crate::ssh::keys::fingerprint(key.public_key())
            ),
            Err(e) => eprintln!("warning: cannot read or create the SSH host key: {e:#}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
