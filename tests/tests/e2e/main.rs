//! Every end-to-end test in one binary: each module below was once its own test target; one
//! binary links the bastion (and DataFusion) once instead of sixteen times. nextest still runs
//! each test in its own process, so the modules share no state. Run one module with
//! `cargo nextest run -p tests -E 'test(/^ssh_shell::/)'`.

mod admin_api;
mod admin_tls;
mod audit_cli;
mod config;
mod entry_gaps;
mod ephemeral_role;
mod grants;
mod harness;
mod machine_tokens;
mod pg_limits;
mod pg_path;
mod policy_reload;
mod ssh_certificates;
mod ssh_gaps;
mod ssh_password;
mod ssh_path;
mod ssh_shell;
