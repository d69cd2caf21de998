//! The end-to-end test harness: real servers for tests to talk to, torn down on drop (also when
//! a test panics). `pg::PgServer` starts PostgreSQL (initdb as an unprivileged OS user, TLS on,
//! scram-sha-256) on a free 127.0.0.1 port; `ssh::SshServer` starts OpenSSH `sshd` with its own
//! config, host key and authorized keys; `bastion::BastionProcess` runs the real `bastion`
//! binary with a generated config; `os` holds the OS-user and free-port plumbing.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let pg = tests::pg::PgServer::start()?;
//! let client = pg.connect("postgres").await?;
//! client.simple_query("SELECT 1").await?;
//! # Ok(()) }
//! ```
pub mod bastion;
pub mod os;
pub mod pg;
pub mod pg_fixture;
pub mod ssh;
