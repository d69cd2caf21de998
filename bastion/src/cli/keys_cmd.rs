//! `bastion keys`: the bastion's own SSH keys. `client-public` prints the public half of the
//! point-of-use key the bastion logs in to SSH targets with (add it to the target's
//! `authorized_keys`); `host-fingerprint` prints the bastion's host key as clients see it. Both
//! generate the key under `<state_dir>/ssh/` on first use, exactly as `serve` would.
use super::ConfigArg;
use crate::ssh::keys;
use std::process::ExitCode;

/// `bastion keys <command>`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Print the bastion's upstream client public key (OpenSSH one-line form).
    ClientPublic(ConfigArg),
    /// Print the bastion's SSH host key fingerprint and public key.
    HostFingerprint(ConfigArg),
}

/// Runs a `keys` subcommand.
pub fn run(cmd: &KeysCommand) -> anyhow::Result<ExitCode> {
    let (args, file, comment) = match cmd {
        KeysCommand::ClientPublic(a) => (a, keys::CLIENT_KEY_FILE, "bastion upstream key"),
        KeysCommand::HostFingerprint(a) => (a, keys::HOST_KEY_FILE, "bastion host key"),
    };
    let config = crate::config::load(&args.config)?;
    let path = keys::ssh_state_dir(&config.server.state_dir).join(file);
    let key = keys::load_or_generate(&path, comment)?;
    match cmd {
        KeysCommand::ClientPublic(_) => println!("{}", keys::public_line(key.public_key())),
        KeysCommand::HostFingerprint(_) => {
            println!("{}", keys::fingerprint(key.public_key()));
            println!("{}", keys::public_line(key.public_key()));
        }
    }
    Ok(ExitCode::SUCCESS)
}
