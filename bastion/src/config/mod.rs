//! Configuration in two stages (STYLE.md 15): `raw` is the TOML as written (serde, unknown keys
//! rejected); `validate` checks it once and builds [`Config`], the form the rest of the binary
//! uses. Every error names the file, the line and, where there is a choice, the valid choices.
//! Secrets are references (`secret`), resolved and checked at load time.
mod duration;
mod identity_auth;
mod raw;
mod secret;
mod validate;

pub use duration::parse_duration;
pub use identity_auth::{AuthMethod, HourWindow};
pub use secret::{Secret, SecretRef};
pub use validate::load;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A configuration error: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file at fault.
    pub file: PathBuf,
    /// 1-based line and column, when the error has a place in the file.
    pub position: Option<(usize, usize)>,
    /// What is wrong, and the valid choices where there are some.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration, built once before anything listens.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    /// Listeners, directories, TLS identity.
    pub server: Server,
    /// Identities by name.
    pub users: BTreeMap<String, User>,
    /// Targets by name.
    pub targets: BTreeMap<String, Target>,
    /// Policy files to enforce and to shadow.
    pub policies: Policies,
    /// Audit trail settings.
    pub recorder: Recorder,
    /// Bounds.
    pub limits: Limits,
    /// Step-up settings.
    pub approvals: Approvals,
    /// The admin API's TCP + TLS listener.
    pub admin: AdminApi,
    /// Non-fatal findings (`bastion check` prints them; `serve` logs them).
    pub warnings: Vec<String>,
}

/// `[server]`, validated.
#[derive(Debug, Clone)]
pub struct Server {
    /// Node name in audit file names.
    pub node: String,
    /// PostgreSQL listener.
    pub postgres_listen: Option<SocketAddr>,
    /// SSH listener.
    pub ssh_listen: Option<SocketAddr>,
    /// Admin API socket path.
    pub admin_socket: PathBuf,
    /// State directory (absolute or relative to the working directory, already joined).
    pub state_dir: PathBuf,
    /// Audit directory.
    pub audit_dir: PathBuf,
    /// The bastion's TLS certificate and key; `None` means generate a self-signed pair.
    pub tls: Option<TlsFiles>,
    /// Networks allowed to skip TLS on the PostgreSQL listener.
    pub allow_plaintext_from: Vec<ipnet::IpNet>,
    /// Grace period for sessions at shutdown.
    pub shutdown_grace: Duration,
    /// Static credentials on service and agent identities are an error, not a warning.
    pub forbid_static_machine_credentials: bool,
    /// `ssh_user_ca`: the file of trusted SSH user CAs (checked at load); `None`: the state
    /// directory's `ssh/user_ca.pub`, if any.
    pub ssh_user_ca: Option<PathBuf>,
}

/// A certificate chain file and its key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (a secret reference).
    pub key: SecretRef,
}

/// What kind of identity a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// A person: may approve, may hold a second factor.
    Human,
    /// A service account.
    Service,
    /// An AI agent.
    Agent,
}

impl UserKind {
    /// The lower-case name used in config, policies and the trail.
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::Human => "human",
            UserKind::Service => "service",
            UserKind::Agent => "agent",
        }
    }
}

/// One identity.
#[derive(Debug, Clone)]
pub struct User {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: UserKind,
    /// Groups.
    pub groups: Vec<String>,
    /// SCRAM verifier text (`SCRAM-SHA-256$...`), loaded.
    pub scram_verifier: Option<Secret>,
    /// Allowed SSH public keys (OpenSSH one-line form).
    pub public_keys: Vec<String>,
    /// TOTP secret reference.
    pub totp: Option<SecretRef>,
    /// The proofs this identity may use (`auth`); the defaults when the key is unset.
    pub auth: Vec<AuthMethod>,
    /// Password verifier reference for SSH password + one-time code (`password_verifier`).
    pub password_verifier: Option<SecretRef>,
    /// Usual login hours (UTC); entries outside are flagged, not refused.
    pub allowed_hours: Option<HourWindow>,
}

impl User {
    /// May this identity prove itself with `method`?
    pub fn accepts(&self, method: AuthMethod) -> bool {
        self.auth.contains(&method)
    }
}

/// Target protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// PostgreSQL wire protocol.
    Postgres,
    /// SSH.
    Ssh,
}

impl Protocol {
    /// The lower-case name used in config and the trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Postgres => "postgres",
            Protocol::Ssh => "ssh",
        }
    }
}

/// How the bastion verifies a PostgreSQL target's TLS identity.
#[derive(Debug, Clone)]
pub enum UpstreamTls {
    /// Verify the certificate chain against this root and the host name.
    VerifyFull {
        /// PEM root certificate file.
        root: PathBuf,
    },
    /// No TLS (allowed for loopback targets only).
    Disable,
}

/// One target.
#[derive(Debug, Clone)]
pub struct Target {
    /// Name.
    pub name: String,
    /// Protocol.
    pub protocol: Protocol,
    /// `host:port` as written.
    pub address: String,
    /// Tags for policies.
    pub tags: BTreeMap<String, String>,
    /// Upstream login.
    pub upstream_user: String,
    /// Upstream credential reference (`None` for SSH targets using the bastion's own key).
    pub credential: Option<SecretRef>,
    /// Default database (PostgreSQL).
    pub database: Option<String>,
    /// TLS verification (PostgreSQL).
    pub tls: Option<UpstreamTls>,
    /// Pinned host key (SSH), OpenSSH one-line form.
    pub host_key: Option<String>,
    /// How the bastion logs in upstream (static credential or a just-in-time one).
    pub upstream_auth: UpstreamAuth,
}

/// How the bastion logs in to a target (`upstream_auth`; docs/upstream-credentials.md).
#[derive(Debug, Clone, Default)]
pub enum UpstreamAuth {
    /// The configured `credential` (password, key file or `bastion:key`), the same every session.
    #[default]
    Static,
    /// PostgreSQL: a login role created per session and dropped after it; `credential` is the
    /// admin login (CREATEROLE) that creates it.
    EphemeralRole(EphemeralRoleSettings),
    /// SSH: a certificate signed per session by the bastion's user CA.
    Certificate(CertificateSettings),
}

/// `upstream_auth = "ephemeral_role"`, validated.
#[derive(Debug, Clone)]
pub struct EphemeralRoleSettings {
    /// Identity name (or `*` for everyone else) to the PostgreSQL role the session role joins.
    pub role_map: BTreeMap<String, String>,
    /// `VALID UNTIL` distance from creation.
    pub valid_for: Duration,
    /// This bastion's node name, written in the role's comment so only this node sweeps it.
    pub node: String,
}

impl EphemeralRoleSettings {
    /// The role `identity`'s sessions are members of: its own entry, else `*`, else none.
    pub fn mapped_role(&self, identity: &str) -> Option<&str> {
        self.role_map
            .get(identity)
            .or_else(|| self.role_map.get("*"))
            .map(String::as_str)
    }
}

/// `upstream_auth = "certificate"`, validated.
#[derive(Debug, Clone)]
pub struct CertificateSettings {
    /// How long each certificate is valid (from issue; `valid_after` is set a little earlier).
    pub valid_for: Duration,
    /// `source-address` networks; empty means the bastion's own address on the upstream socket.
    pub source_address: Vec<ipnet::IpNet>,
    /// The CA's private key file (`<state_dir>/ssh/upstream_ca_ed25519`).
    pub ca_key: PathBuf,
}

/// Policy files.
#[derive(Debug, Clone)]
pub struct Policies {
    /// Enforced `.cedar` files (directories expanded, sorted).
    pub files: Vec<PathBuf>,
    /// Shadow `.cedar` files.
    pub shadow_files: Vec<PathBuf>,
}

/// Durability of a recorded row before the action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Written to the OS.
    Os,
    /// Written and fsynced.
    Fsync,
}

/// `[recorder]`, validated.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Durability.
    pub durability: Durability,
    /// Rows before rolling to Parquet.
    pub roll_max_rows: usize,
    /// Age before rolling to Parquet.
    pub roll_max_age: Duration,
    /// Queue capacity.
    pub queue_capacity: usize,
    /// Retention.
    pub retain_days: Option<u32>,
    /// When true, actions run even if they cannot be recorded (logged loudly).
    pub allow_on_error: bool,
    /// Manifest signing key.
    pub signing_key: Option<SecretRef>,
}

/// `[limits]`, validated.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Concurrent connections.
    pub max_connections: usize,
    /// Sessions per identity.
    pub max_sessions_per_identity: usize,
    /// Frame size.
    pub max_frame_bytes: usize,
    /// Statement / line size.
    pub max_statement_bytes: usize,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Maximum session length.
    pub max_session: Duration,
    /// Failures before lockout.
    pub lockout_after: u32,
    /// Lockout length.
    pub lockout_for: Duration,
    /// Login timeout.
    pub login_timeout: Duration,
    /// SSH channels open at once per client connection.
    pub max_channels_per_connection: usize,
}

/// `[approvals]`, validated.
#[derive(Debug, Clone)]
pub struct Approvals {
    /// Wait for a decision at most this long.
    pub timeout: Duration,
    /// Second-factor freshness.
    pub otp_fresh_for: Duration,
    /// Webhook URLs (`https://`, or `http://` to loopback unless insecure ones are allowed).
    pub webhooks: Vec<String>,
    /// CA file for `https://` webhooks; `None`: the system roots.
    pub webhook_ca: Option<PathBuf>,
    /// `http://` webhooks to other machines are allowed.
    pub allow_insecure_webhooks: bool,
}

/// `[admin]`, validated.
#[derive(Debug, Clone, Default)]
pub struct AdminApi {
    /// TCP address of the TLS listener; `None`: the Unix socket only.
    pub listen: Option<SocketAddr>,
    /// Its certificate and key; `None`: the bastion's own TLS identity.
    pub tls: Option<TlsFiles>,
}
