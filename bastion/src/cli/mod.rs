//! Command line (DESIGN.md "Interfaces"). Only commands that work are exposed; each group lives in
//! its own module and gets the validated config, never the raw file.
mod admin_cmds;
mod audit_cmd;
mod ca_cmd;
mod check;
mod grant_cmd;
mod grant_explain;
mod keys_cmd;
mod password_cmd;
mod policy_cmd;
mod qr;
mod serve_cmd;
mod token_cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Protocol-aware access gateway for PostgreSQL and SSH.
#[derive(Debug, Parser)]
#[command(name = "bastion", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The config file argument shared by every command.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Path to bastion.toml.
    #[arg(
        long,
        short = 'c',
        default_value = "bastion.toml",
        env = "BASTION_CONFIG"
    )]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the config and policies; print warnings. Exit 2 on any error.
    Check(ConfigArg),
    /// Run the listeners in the foreground until SIGINT/SIGTERM.
    Serve(ConfigArg),
    /// The bastion's own SSH keys (upstream client key, host key).
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// The bastion's SSH user CA for `upstream_auth = "certificate"` targets: export.
    #[command(subcommand)]
    Ca(ca_cmd::CaCommand),
    /// Evaluate and test policies.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Query and verify the audit trail.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Step-up requests of a running bastion: list, show, approve, deny, watch.
    Approvals(admin_cmds::ApprovalsCmd),
    /// Live sessions of a running bastion: list, kill.
    Sessions(admin_cmds::SessionsCmd),
    /// Account-entry lockouts of a running bastion: list, clear.
    Lockouts(admin_cmds::LockoutsCmd),
    /// Tokens (in the state directory): short-lived login tokens for machine identities and
    /// admin API tokens (--scope): issue, list, revoke.
    Token(token_cmd::TokenCmd),
    /// Task-scoped grants (in the state directory): grant --user ..., list, revoke.
    Grant(grant_cmd::GrantCmd),
    /// User enrolment: one-time code secrets, SSH passwords.
    Users(admin_cmds::UsersCmd),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Serve(args) => serve_cmd::run(&args),
        Command::Keys(cmd) => keys_cmd::run(&cmd),
        Command::Ca(cmd) => ca_cmd::run(&cmd),
        Command::Policy(cmd) => policy_cmd::run(&cmd),
        Command::Audit(cmd) => audit_cmd::run(&cmd),
        Command::Approvals(cmd) => admin_cmds::run_approvals(&cmd),
        Command::Sessions(cmd) => admin_cmds::run_sessions(&cmd),
        Command::Lockouts(cmd) => admin_cmds::run_lockouts(&cmd),
        Command::Token(cmd) => token_cmd::run_token(&cmd),
        Command::Grant(cmd) => grant_cmd::run(&cmd),
        Command::Users(cmd) => admin_cmds::run_users(&cmd),
    }
}
