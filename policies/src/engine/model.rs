//! The engine's public vocabulary: who asks (`Principal`), about what (`TargetInfo`), in which
//! circumstances (`RequestContext`), and what comes back (`Verdict`).
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use super::extractors::{ShellLimits, SqlLimits};

/// What kind of identity a principal is; policies see it as `principal.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person (may hold a second factor and approve).
    Human,
    /// A service account (no second factor).
    Service,
    /// An AI agent (no second factor, never approves).
    Agent,
}

impl PrincipalKind {
    /// The value of `principal.kind` in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Human => "human",
            PrincipalKind::Service => "service",
            PrincipalKind::Agent => "agent",
        }
    }
}

/// An identity known to the bastion (`User::"<name>"` in policies, member of `Group::"<g>"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name, as routed (`alice` in `alice@prod-db`).
    pub name: String,
    /// Human, service account or agent.
    pub kind: PrincipalKind,
    /// Groups the user is in.
    pub groups: Vec<String>,
}

/// The protocol a target speaks; policies see it as `resource.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetProtocol {
    /// A PostgreSQL server.
    Postgres,
    /// An SSH server.
    Ssh,
}

impl TargetProtocol {
    /// The value of `resource.protocol` in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetProtocol::Postgres => "postgres",
            TargetProtocol::Ssh => "ssh",
        }
    }
}

/// A target known to the bastion (`Target::"<name>"` in policies; tags are Cedar entity tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    /// Target name, as routed (`prod-db` in `alice@prod-db`).
    pub name: String,
    /// Postgres or SSH.
    pub protocol: TargetProtocol,
    /// Tags from the configuration (`env = "prod"`): `resource.getTag("env")`.
    pub tags: BTreeMap<String, String>,
}

/// How the engine is built.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Enforced policy files (`.cedar`), or directories whose `*.cedar` files are loaded in name order.
    pub policy_paths: Vec<PathBuf>,
    /// Shadow policy files or directories: decided alongside, reported in `Verdict::shadow`, never enforced.
    pub shadow_paths: Vec<PathBuf>,
    /// Limits for SQL extraction (size, depth).
    pub sql_limits: SqlLimits,
    /// Limits for shell extraction (length, depth, stages).
    pub shell_limits: ShellLimits,
    /// Number of decisions kept in the cache; 0 disables it.
    pub cache_capacity: usize,
    /// A one-time code younger than this many seconds satisfies an `mfa` step-up (default 300).
    pub mfa_freshness_secs: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            policy_paths: Vec::new(),
            shadow_paths: Vec::new(),
            sql_limits: SqlLimits::default(),
            shell_limits: ShellLimits::default(),
            cache_capacity: 10_000,
            mfa_freshness_secs: 300,
        }
    }
}

/// Circumstances of one request, supplied by the session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestContext {
    /// The client's address, if known (`context.source_ip`).
    pub source_ip: Option<IpAddr>,
    /// Seconds since the user last proved a one-time code, if ever (`context.mfa_age`).
    pub mfa_age_secs: Option<u64>,
    /// Now, seconds since the Unix epoch (`context.time`).
    pub now_unix: i64,
    /// Risk flags raised when the session's identity entered (`context.risk`): `new_source`,
    /// `failure_burst`, `outside_hours`, `revoked_token_reuse`. Empty when none.
    pub risk: Vec<String>,
}

/// An SFTP operation class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SftpOp {
    /// Open for reading, stat, readdir, readlink (`sftp:read`).
    Read,
    /// Open for writing, mkdir, rename, setstat, symlink (`sftp:write`).
    Write,
    /// Remove, rmdir (`sftp:delete`).
    Delete,
}

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Run it.
    Allow,
    /// Hold it until approved and/or a fresh one-time code is given.
    StepUp,
    /// Refuse it.
    Deny,
}

impl Decision {
    /// `"allow"`, `"step_up"` or `"deny"`, as in `policy eval` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::StepUp => "step_up",
            Decision::Deny => "deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a step-up needs. Displays as `approval`, `mfa` or `approval+mfa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StepUp {
    /// Another person must approve.
    pub approval: bool,
    /// The user must give a fresh one-time code.
    pub mfa: bool,
}

impl StepUp {
    /// Both requirements of `self` and `other`.
    pub fn combine(self, other: StepUp) -> StepUp {
        StepUp {
            approval: self.approval || other.approval,
            mfa: self.mfa || other.mfa,
        }
    }

    /// True when nothing is required.
    pub fn is_empty(self) -> bool {
        !self.approval && !self.mfa
    }
}

impl fmt::Display for StepUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.approval, self.mfa) {
            (true, true) => f.write_str("approval+mfa"),
            (true, false) => f.write_str("approval"),
            (false, true) => f.write_str("mfa"),
            (false, false) => f.write_str("none"),
        }
    }
}

/// A decision with everything the session, the broker and the audit trail need.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Allow, deny or step up.
    pub decision: Decision,
    /// For `StepUp`: what is required.
    pub step_up: Option<StepUp>,
    /// Ids (`@id`) of the policies that decided: the forbids for a deny or step-up, the permits
    /// for an allow; `["ANY-0"]` for unparsable input; `["default-deny"]` when no permit applies.
    pub policy_ids: Vec<String>,
    /// Text for the user, e.g. `denied by policy SQL-5: DROP is not allowed on prod-db`.
    pub message: String,
    /// Groups whose members may approve (from `@approvers` of the step-up policies).
    pub approver_groups: Vec<String>,
    /// Statement class(es) or action, comma-separated (`select`, `update,select`, `shell`, `sftp:write`).
    pub class: String,
    /// Objects acted on: relations for SQL, command names for shell, the path for SFTP, host:port for forwards.
    pub objects: Vec<String>,
    /// Risk tags from the facts (`no_where`, `copy_program`, ...).
    pub risk_tags: Vec<String>,
    /// The text with secrets redacted, for the trail.
    pub redacted_text: String,
    /// Fingerprint of the statement or line (literals replaced), for grouping.
    pub fingerprint: String,
    /// The facts the decision was made on.
    pub facts: serde_json::Value,
    /// The decision of the shadow policy set, when one is loaded (never enforced).
    pub shadow: Option<Decision>,
    /// Every policy that matched, permits included (for `policy eval --explain`).
    pub matched: Vec<String>,
}

/// A task-scoped grant (issue 10): a temporary permit for `user` on `target` for `action`
/// (`"sql:update"`, `"shell:run"`, ...; `"*"` for every action), limited to `tables` for SQL
/// (empty = any table), until `expires_unix`. A grant stands in for a missing `permit` and is
/// visible to policies as `context.grants`; it never overrides a `forbid` — step-up forbids
/// may exempt granted work with `unless { context.grants.contains("sql:update") }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    /// User the grant is for.
    pub user: String,
    /// Target it covers.
    pub target: String,
    /// Cedar action name (`sql:update`), or `*`.
    pub action: String,
    /// Tables (`name` or `schema.name`) the SQL may touch; empty means any.
    pub tables: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub expires_unix: i64,
}
