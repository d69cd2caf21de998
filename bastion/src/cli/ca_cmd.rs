//! `bastion ca`: the bastion's SSH user certificate authority for targets with
//! `upstream_auth = "certificate"`. `export` prints the CA's public key line, to put in each
//! target's `TrustedUserCAKeys` file (or after `cert-authority` in an `authorized_keys` line);
//! the key is generated under `<state_dir>/ssh/` on first use, exactly as `serve` would.
use super::ConfigArg;
use crate::ssh::{cert_authority, keys};
use std::process::ExitCode;

/// `bastion ca <command>`.
#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Print the CA public key (OpenSSH one-line form) for the targets' TrustedUserCAKeys.
    Export(ConfigArg),
}

/// Runs a `ca` subcommand.
pub fn run(cmd: &CaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CaCommand::Export(args) => {
            let config = crate::config::load(&args.config)?;
            let path =
                keys::ssh_state_dir(&config.server.state_dir).join(cert_authority::CA_KEY_FILE);
            let key = cert_authority::load_or_generate(&path)?;
            println!("{}", keys::public_line(key.public_key()));
            Ok(ExitCode::SUCCESS)
        }
    }
}
