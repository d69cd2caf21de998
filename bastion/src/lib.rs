//! The bastion binary's library: `cli` (clap commands, one module per command group), `config`
//! (two-stage `bastion.toml`), `serve` (listeners, accept loops, designed shutdown), `tls` (the
//! bastion's own certificate, generated on first start when none is configured), and `exit`
//! (errors mapped to the documented exit codes: 0 ok, 1 runtime failure, 2 usage or config error).
pub mod admin;
pub mod broker;
pub mod cli;
pub mod config;
pub mod entry;
pub mod exit;
pub mod grants;
pub mod metrics;
pub mod postgres;
pub mod serve;
pub mod sessions;
pub mod ssh;
pub mod state;
pub mod tls;
pub mod totp;
pub mod upstream_login;
