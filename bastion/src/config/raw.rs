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
    /// The admin API's optional TCP + TLS listener (the Unix socket is always there).
    #[serde(default)]
    pub admin: RawAdmin,
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
    /// `true`: a service or agent identity with a long-lived static credential (`scram_verifier`,
    /// `public_keys`) is a config error instead of a warning; such identities log in with
    /// short-lived tokens (`auth = ["token"]`, `bastion token issue`). Default `false`.
    pub forbid_static_machine_credentials: Option<bool>,
    /// File of trusted SSH user CAs: one or more OpenSSH public key lines (`#` comments allowed);
    /// user certificates they sign are accepted. Relative paths are relative to the config file.
    /// Unset: `<state_dir>/ssh/user_ca.pub` if it exists, else no CA is trusted.
    pub ssh_user_ca: Option<Spanned<String>>,
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
    /// The only ways this identity may prove itself: any of `scram` (PostgreSQL), `publickey`,
    /// `certificate`, `password_totp` (SSH keyboard-interactive, humans), `token` (short-lived
    /// login tokens from `bastion token issue`, as the password). Default: every method except
    /// `token`. See docs/identities.md.
    pub auth: Option<Vec<Spanned<String>>>,
    /// Password verifier for SSH password + one-time code logins, as a secret reference holding a
    /// SCRAM-SHA-256 verifier (the `scram_verifier` format). Unset: the one `bastion users
    /// set-password` wrote to the state directory, if any.
    pub password_verifier: Option<Spanned<String>>,
    /// Hours (UTC) in which this identity normally logs in, e.g. `"07:00-19:00"` (may wrap past
    /// midnight). Entries outside are flagged `outside_hours` in the `entries` row; not refused.
    pub allowed_hours: Option<Spanned<String>>,
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
    /// Required, except with `upstream_auth = "certificate"`, where it must be left out.
    pub credential: Option<Spanned<String>>,
    /// PostgreSQL: database used when the client names none. Default: the client's user name part.
    pub database: Option<String>,
    /// PostgreSQL: PEM file of the root that signs the target's certificate (verify-full).
    /// Required for PostgreSQL targets unless `tls = "disable"`.
    pub tls_root: Option<Spanned<String>>,
    /// PostgreSQL: `verify-full` (default) or `disable` (only for targets on loopback).
    pub tls: Option<Spanned<String>>,
    /// SSH: the target's pinned host key (`ssh-ed25519 AAAA...`). Required for SSH targets.
    pub host_key: Option<Spanned<String>>,
    /// How the bastion logs in: `static` (default: `credential` every session), `ephemeral_role`
    /// (PostgreSQL: a login role created per session and dropped after it; `credential` is the
    /// CREATEROLE admin login) or `certificate` (SSH: a certificate signed per session by the
    /// bastion's CA, `bastion ca export`; no `credential`). See docs/upstream-credentials.md.
    pub upstream_auth: Option<Spanned<String>>,
    /// `ephemeral_role`: which role each identity's session role is a member of, by identity
    /// name, `"*"` for everyone else, e.g. `{ alice = "app_rw", "*" = "app_ro" }`. Required then;
    /// an identity with no entry and no `"*"` is refused.
    #[serde(default)]
    pub role_map: BTreeMap<String, Spanned<String>>,
    /// `ephemeral_role`: `VALID UNTIL` of the session role, from its creation. Default `"5m"`.
    pub role_valid_for: Option<Spanned<String>>,
    /// `certificate`: validity of each session certificate. Default `"2m"`.
    pub certificate_valid_for: Option<Spanned<String>>,
    /// `certificate`: the `source-address` networks written in the certificate, e.g.
    /// `["192.0.2.10/32"]` (the bastion as the target sees it). Default: the bastion's local
    /// address on the upstream connection, as a /32 (or /128).
    #[serde(default)]
    pub certificate_source_address: Vec<Spanned<String>>,
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
    /// SSH channels (sessions, forwards) one client connection may have open at once; the next
    /// is refused with "resource shortage". Default 10 (OpenSSH's `MaxSessions`).
    pub max_channels_per_connection: Option<usize>,
}

/// `[approvals]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    /// How long a held action waits for a decision. Default `"5m"`.
    pub timeout: Option<Spanned<String>>,
    /// How long a one-time code keeps a session's second factor fresh. Default `"5m"`.
    pub otp_fresh_for: Option<Spanned<String>>,
    /// Webhook URLs notified of each new request: `https://...`, or `http://` to a loopback
    /// address. Default: none.
    #[serde(default)]
    pub webhooks: Vec<Spanned<String>>,
    /// PEM file of the CA certificate(s) that sign the webhook receivers' certificates; when set
    /// it is the only trust for `https://` webhooks. Default: the system's root store.
    pub webhook_ca: Option<Spanned<String>>,
    /// `true` allows `http://` webhooks to other machines (step-up requests then cross the
    /// network unencrypted and unauthenticated). Default `false`.
    pub allow_insecure_webhooks: Option<bool>,
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `host:port` for the admin API over TLS, e.g. `"127.0.0.1:9443"`: the same endpoints and
    /// tokens as the Unix socket. Unset: socket only.
    pub listen: Option<Spanned<String>>,
    /// PEM certificate chain of the TLS listener. Unset together with `tls_key`: the bastion's
    /// own pair (`server.tls_cert`/`tls_key`, or the generated one in the state directory).
    pub tls_cert: Option<Spanned<String>>,
    /// PEM private key for `tls_cert`, as a secret reference (`file:PATH`).
    pub tls_key: Option<Spanned<String>>,
}
