//! Stage one of the configuration: the TOML file as written, with serde. Every table rejects
//! unknown keys; names keep their spans so later errors can point at a line. Nothing here is
//! checked beyond its type: `validate` turns this into [`super::Config`].
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The whole `bastion.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Listeners, directories and the bastion's own TLS identity.
    pub server: RawServer,
    /// Identities that may connect (people, services, agents). Default: none.
    #[serde(default)]
    pub users: Vec<RawUser>,
    /// Systems the bastion connects to on the users' behalf. Default: none.
    #[serde(default)]
    pub targets: Vec<RawTarget>,
    /// Cedar policy files. Required: with no policy nothing is allowed.
    pub policies: RawPolicies,
    /// The audit trail. Default: every field's default.
    #[serde(default)]
    pub recorder: RawRecorder,
    /// Bounds on sessions, frames and guessing. Default: every field's default.
    #[serde(default)]
    pub limits: RawLimits,
    /// Step-up approvals. Default: every field's default.
    #[serde(default)]
    pub approvals: RawApprovals,
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Name of this node in audit file names. Default: `"node1"`.
    pub node: Option<String>,
    /// `host:port` for PostgreSQL clients, e.g. `"127.0.0.1:6432"`. Unset: no PostgreSQL listener.
    pub postgres_listen: Option<Spanned<String>>,
    /// `host:port` for SSH clients, e.g. `"127.0.0.1:2222"`. Unset: no SSH listener.
    pub ssh_listen: Option<Spanned<String>>,
    /// Unix socket of the admin API (created mode 0600). Default: `<state_dir>/admin.sock`.
    pub admin_socket: Option<String>,
    /// Directory for host keys, generated certificates, tokens and lockouts. Created if missing.
    /// Relative paths are relative to the config file. Default: `"state"`.
    pub state_dir: Option<String>,
    /// Directory of the audit trail (journal and Parquet). Default: `"audit"`.
    pub audit_dir: Option<String>,
    /// PEM certificate chain the bastion presents to PostgreSQL clients. Unset together with
    /// `tls_key`: a self-signed pair is generated in the state directory on first start.
    pub tls_cert: Option<Spanned<String>>,
    /// PEM private key for `tls_cert`, as a secret reference (`file:PATH`).
    pub tls_key: Option<Spanned<String>>,
    /// Client networks allowed to speak PostgreSQL without TLS, e.g. `["127.0.0.1/32"]`.
    /// Default: none (TLS required).
    #[serde(default)]
    pub allow_plaintext_from: Vec<Spanned<String>>,
    /// How long `serve` waits for sessions to end after SIGINT/SIGTERM. Default: `"10s"`.
    pub shutdown_grace: Option<Spanned<String>>,
}

/// One `[[users]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    /// The identity name used to route (`alice` in `alice@prod-db`). Unique.
    pub name: Spanned<String>,
    /// `human`, `service` or `agent`.
    pub kind: Spanned<String>,
    /// Groups the identity belongs to (used by policies and approver rules). Default: none.
    #[serde(default)]
    pub groups: Vec<String>,
    /// SCRAM-SHA-256 verifier for PostgreSQL logins, as a secret reference (`file:`/`env:`)
    /// holding `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`. Unset: no SCRAM login.
    pub scram_verifier: Option<Spanned<String>>,
    /// OpenSSH public keys (`ssh-ed25519 AAAA... comment`) allowed for SSH logins. Public, so inline.
    #[serde(default)]
    pub public_keys: Vec<Spanned<String>>,
    /// Base32 TOTP secret reference (`file:`/`env:`) for one-time codes. Unset: no second factor.
    pub totp: Option<Spanned<String>>,
}

/// One `[[targets]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// The target name used to route (`prod-db` in `alice@prod-db`). Unique.
    pub name: Spanned<String>,
    /// `postgres` or `ssh`.
    pub protocol: Spanned<String>,
    /// `host:port` of the target.
    pub address: Spanned<String>,
    /// Free-form tags policies match on, e.g. `{ env = "prod", team = "payments" }`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The login the bastion uses on the target (PostgreSQL role or OS user).
    pub upstream_user: Spanned<String>,
    /// The bastion-held secret for `upstream_user`, as a reference: `file:PATH` or `env:NAME`
    /// (PostgreSQL password; SSH private key in OpenSSH format). For SSH, `bastion:key` uses the
    /// bastion's own client key from the state directory (`bastion check` prints its public half).
    pub credential: Spanned<String>,
    /// PostgreSQL: database used when the client names none. Default: the client's user name part.
    pub database: Option<String>,
    /// PostgreSQL: PEM file of the root that signs the target's certificate (verify-full).
    /// Required for PostgreSQL targets unless `tls = "disable"`.
    pub tls_root: Option<Spanned<String>>,
    /// PostgreSQL: `verify-full` (default) or `disable` (only for targets on loopback).
    pub tls: Option<Spanned<String>>,
    /// SSH: the target's pinned host key (`ssh-ed25519 AAAA...`). Required for SSH targets.
    pub host_key: Option<Spanned<String>>,
}

/// `[policies]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicies {
    /// Cedar files or directories of `*.cedar` files that are enforced.
    pub paths: Vec<Spanned<String>>,
    /// Shadow policies: evaluated and recorded, never enforced. Default: none.
    #[serde(default)]
    pub shadow: Vec<Spanned<String>>,
}

/// `[recorder]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecorder {
    /// `os` (row written to the OS before the action runs) or `fsync` (also on disk). Default `os`.
    pub durability: Option<Spanned<String>>,
    /// Roll the journal into Parquet after this many rows. Default 100000.
    pub roll_max_rows: Option<usize>,
    /// Roll the journal into Parquet after this long. Default `"60s"`.
    pub roll_max_age: Option<Spanned<String>>,
    /// Rows queued between sessions and the writer; full means sessions wait. Default 8192.
    pub queue_capacity: Option<usize>,
    /// Delete day partitions older than this many days. Default: keep forever.
    pub retain_days: Option<u32>,
    /// `deny` (default: an action that cannot be recorded does not run) or `allow` (logged loudly).
    pub on_recorder_error: Option<Spanned<String>>,
    /// Ed25519 private key (PKCS#8 PEM) reference that signs the daily manifests. Default: unsigned.
    pub signing_key: Option<Spanned<String>>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Concurrent client connections across protocols. Default 1024.
    pub max_connections: Option<usize>,
    /// Sessions one identity may hold at once. Default 32.
    pub max_sessions_per_identity: Option<usize>,
    /// Largest protocol frame accepted from a client, bytes. Default 32 MiB (room for 20 MB messages).
    pub max_frame_bytes: Option<usize>,
    /// Largest SQL statement or shell line that is decided, bytes; larger is denied. Default 1 MiB.
    pub max_statement_bytes: Option<usize>,
    /// Close a session idle this long. Default `"1h"`.
    pub idle_timeout: Option<Spanned<String>>,
    /// Close a session after this long whatever it does. Default `"12h"`.
    pub max_session: Option<Spanned<String>>,
    /// Failed logins per identity or source before lockout. Default 5.
    pub lockout_after: Option<u32>,
    /// How long a lockout lasts. Default `"15m"`.
    pub lockout_for: Option<Spanned<String>>,
    /// Time allowed from connect to authenticated. Default `"30s"`.
    pub login_timeout: Option<Spanned<String>>,
}

/// `[approvals]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    /// How long a held action waits for a decision. Default `"5m"`.
    pub timeout: Option<Spanned<String>>,
    /// How long a one-time code keeps a session's second factor fresh. Default `"5m"`.
    pub otp_fresh_for: Option<Spanned<String>>,
    /// Webhook URLs notified of each new request. Default: none.
    #[serde(default)]
    pub webhooks: Vec<String>,
}
