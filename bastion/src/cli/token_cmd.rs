//! `bastion token issue|list|revoke`, on the state directory (no running server needed). Two
//! kinds of token share the commands:
//! - with `--scope admin|approve`: an admin API token (issue 9, `admin::tokens`), stored hashed;
//! - without `--scope`: a short-lived login token for an identity whose `auth` includes `token`
//!   (`entry::machine_token`): `--ttl` required (at most 24 h), optionally bound to `--target`,
//!   `--source` and `--uses`. The bastion keeps only its revocations and use counts.
//!
//! `token list` shows both (login tokens with their bindings and uses); `token revoke ID`
//! revokes either, and a running bastion refuses the token from its next use on.
use super::admin_cmds::{one_line, parse_interval, print_json, table, AdminArgs, Format};
use crate::admin::{Scope, TokenInfo, TokenStore};
use crate::config::{AuthMethod, Config};
use crate::entry::machine_token::{self, parse_source, rfc3339, IssueRequest};
use crate::entry::token_ledger::{IssuedToken, TokenLedger};
use crate::exit::UsageError;
use std::process::ExitCode;
use std::time::Duration;

/// Longest lifetime of a login token.
pub const MAX_LOGIN_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// `bastion token ...`.
#[derive(Debug, clap::Args)]
pub struct TokenCmd {
    #[command(subcommand)]
    action: TokenAction,
    #[command(flatten)]
    common: AdminArgs,
}

#[derive(Debug, clap::Subcommand)]
enum TokenAction {
    /// Issue a token, printed once. With --scope: an admin API token. Without: a short-lived
    /// login token, given as the password by an identity whose `auth` includes "token".
    Issue {
        /// The user the token acts as (logs in as, for a login token).
        #[arg(long)]
        user: String,
        /// Admin API token scope: `admin` (everything) or `approve` (approvals only).
        #[arg(long, value_enum)]
        scope: Option<Scope>,
        /// Lifetime, e.g. `15m`. Required for login tokens (at most 24h); API tokens without
        /// it last until revoked.
        #[arg(long, value_parser = parse_interval)]
        ttl: Option<Duration>,
        /// Login token: the only target it is good for.
        #[arg(long)]
        target: Option<String>,
        /// Login token: the network (CIDR) or address the client must connect from.
        #[arg(long)]
        source: Option<String>,
        /// Login token: how many logins it allows.
        #[arg(long)]
        uses: Option<u32>,
        /// Login token: why it is issued (shown by `token list`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Every token of both kinds (never the secret).
    List,
    /// Revoke a token by id (either kind).
    Revoke {
        /// Token id (from `token list`).
        id: String,
    },
}

/// The OS user running the CLI, for `issued_by` / `granted_by`.
pub(super) fn operator() -> String {
    use std::os::unix::fs::MetadataExt;
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::fs::metadata("/proc/self")
                .ok()
                .map(|m| format!("uid {}", m.uid()))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Runs `bastion token ...` against the state directory.
pub fn run_token(cmd: &TokenCmd) -> anyhow::Result<ExitCode> {
    let config = crate::config::load(&cmd.common.config)?;
    let format = cmd.common.format;
    match &cmd.action {
        TokenAction::Issue {
            user,
            scope,
            ttl,
            target,
            source,
            uses,
            reason,
        } => {
            if !config.users.contains_key(user) {
                let known: Vec<&str> = config.users.keys().map(String::as_str).collect();
                return Err(usage(format!(
                    "unknown user {user:?}; configured users: {}",
                    known.join(", ")
                )));
            }
            match scope {
                Some(scope) => {
                    if target.is_some() || source.is_some() || uses.is_some() || reason.is_some() {
                        return Err(usage("--target, --source, --uses and --reason apply to login tokens: leave out --scope"));
                    }
                    issue_api(&config, user, *scope, *ttl, format)?
                }
                None => issue_login(&config, user, *ttl, target, source, *uses, reason, format)?,
            }
        }
        TokenAction::List => list(&config, format)?,
        TokenAction::Revoke { id } => revoke(&config, id, format)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn issue_api(
    config: &Config,
    user: &str,
    scope: Scope,
    ttl: Option<Duration>,
    format: Format,
) -> anyhow::Result<()> {
    let store = TokenStore::in_state_dir(&config.server.state_dir);
    let (info, token) = store.issue(user, scope, ttl)?;
    match format {
        Format::Json => print_json(&serde_json::json!({ "token": token, "info": info }))?,
        Format::Table => {
            eprintln!(
                "token {} for {} (scope {}); shown once, store it now:",
                info.id,
                info.user,
                info.scope.as_str()
            );
            println!("{token}");
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn issue_login(
    config: &Config,
    user: &str,
    ttl: Option<Duration>,
    target: &Option<String>,
    source: &Option<String>,
    uses: Option<u32>,
    reason: &Option<String>,
    format: Format,
) -> anyhow::Result<()> {
    let identity = config
        .users
        .get(user)
        .ok_or_else(|| usage(format!("unknown user {user:?}")))?;
    if !identity.accepts(AuthMethod::Token) {
        return Err(usage(format!(
            "{user} does not log in with tokens: add \"token\" to its auth (auth = [\"token\"]), or pass --scope for an admin API token"
        )));
    }
    let ttl =
        ttl.ok_or_else(|| usage("a login token needs --ttl (e.g. --ttl 15m): it must expire"))?;
    if ttl.is_zero() || ttl > MAX_LOGIN_TOKEN_TTL {
        return Err(usage(format!(
            "--ttl must be between 1s and {}h for a login token",
            MAX_LOGIN_TOKEN_TTL.as_secs() / 3600
        )));
    }
    if let Some(t) = target {
        if !config.targets.contains_key(t) {
            let known: Vec<&str> = config.targets.keys().map(String::as_str).collect();
            return Err(usage(format!(
                "unknown target {t:?}; configured targets: {}",
                known.join(", ")
            )));
        }
    }
    let source = match source {
        None => None,
        Some(s) => Some(parse_source(s).ok_or_else(|| {
            usage(format!(
                "--source {s:?} is not a network or address, e.g. 10.0.0.0/8"
            ))
        })?),
    };
    if uses == Some(0) {
        return Err(usage("--uses must be at least 1"));
    }
    let req = IssueRequest {
        user: user.to_string(),
        ttl_secs: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        target: target.clone(),
        source,
        max_uses: uses,
        reason: reason.clone(),
        issued_by: operator(),
    };
    let now = chrono::Utc::now().timestamp();
    let (issued, token) = machine_token::issue(&config.server.state_dir, req, now)?;
    match format {
        Format::Json => print_json(&serde_json::json!({ "token": token, "info": issued }))?,
        Format::Table => {
            eprintln!(
                "login token {} for {} until {}{}{}{}; shown once, store it now:",
                issued.id,
                issued.user,
                rfc3339(issued.expires_unix),
                issued
                    .target
                    .as_ref()
                    .map(|t| format!(", target {t}"))
                    .unwrap_or_default(),
                issued
                    .source
                    .as_ref()
                    .map(|s| format!(", from {s}"))
                    .unwrap_or_default(),
                issued
                    .max_uses
                    .map(|n| format!(", {n} use(s)"))
                    .unwrap_or_default(),
            );
            println!("{token}");
        }
    }
    Ok(())
}

/// A row of `token list`, either kind (the API token fields keep their names).
#[derive(Debug, serde::Serialize)]
struct Listed {
    id: String,
    user: String,
    /// `admin`, `approve`, or `login` for login tokens.
    scope: String,
    created: String,
    expires_unix: Option<i64>,
    revoked: bool,
    /// `active`, `expired`, `revoked` or `used up`.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_uses: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uses: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_by: Option<String>,
}

fn api_row(info: TokenInfo, now: i64) -> Listed {
    let expires_unix = info
        .expires_unix
        .map(|e| i64::try_from(e).unwrap_or(i64::MAX));
    let state = if info.revoked {
        "revoked"
    } else if expires_unix.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    Listed {
        id: info.id,
        user: info.user,
        scope: info.scope.as_str().to_string(),
        created: info.created,
        expires_unix,
        revoked: info.revoked,
        state,
        target: None,
        source: None,
        max_uses: None,
        uses: None,
        reason: None,
        issued_by: None,
    }
}

fn login_rows(config: &Config, now: i64) -> anyhow::Result<Vec<Listed>> {
    let ledger = TokenLedger::in_state_dir(&config.server.state_dir);
    let revoked = ledger.revocations()?;
    let uses = ledger.use_counts()?;
    Ok(ledger
        .issued()?
        .into_iter()
        .map(|t: IssuedToken| {
            let used = uses.get(&t.id).map_or(0, |u| u.count);
            let is_revoked = revoked.iter().any(|r| r.id == t.id);
            let state = if is_revoked {
                "revoked"
            } else if now >= t.expires_unix {
                "expired"
            } else if t.max_uses.is_some_and(|m| used >= m) {
                "used up"
            } else {
                "active"
            };
            Listed {
                id: t.id,
                user: t.user,
                scope: "login".to_string(),
                created: rfc3339(t.issued_unix),
                expires_unix: Some(t.expires_unix),
                revoked: is_revoked,
                state,
                target: t.target,
                source: t.source,
                max_uses: t.max_uses,
                uses: Some(used),
                reason: t.reason,
                issued_by: Some(t.issued_by),
            }
        })
        .collect())
}

fn list(config: &Config, format: Format) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp();
    let mut rows: Vec<Listed> = TokenStore::in_state_dir(&config.server.state_dir)
        .list()?
        .into_iter()
        .map(|info| api_row(info, now))
        .collect();
    rows.extend(login_rows(config, now)?);
    match format {
        Format::Json => print_json(&rows)?,
        Format::Table => {
            let table_rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let uses = match (r.uses, r.max_uses) {
                        (Some(u), Some(m)) => format!("{u}/{m}"),
                        (Some(u), None) => u.to_string(),
                        _ => String::new(),
                    };
                    vec![
                        r.id.clone(),
                        r.user.clone(),
                        r.scope.clone(),
                        r.created.clone(),
                        r.expires_unix
                            .map(rfc3339)
                            .unwrap_or_else(|| "never".into()),
                        r.state.to_string(),
                        r.target.clone().unwrap_or_default(),
                        r.source.clone().unwrap_or_default(),
                        uses,
                        one_line(r.reason.as_deref().unwrap_or(""), 40),
                    ]
                })
                .collect();
            let headers = [
                "id", "user", "scope", "created", "expires", "state", "target", "source", "uses",
                "reason",
            ];
            print!("{}", table(&headers, &table_rows));
        }
    }
    Ok(())
}

fn revoke(config: &Config, id: &str, format: Format) -> anyhow::Result<()> {
    let store = TokenStore::in_state_dir(&config.server.state_dir);
    let revoked_api = store.revoke(id)?;
    if !revoked_api {
        let ledger = TokenLedger::in_state_dir(&config.server.state_dir);
        let lock = ledger.lock()?;
        let Some(issued) = ledger.issued()?.into_iter().find(|t| t.id == id) else {
            return Err(usage(format!(
                "no token with id {id:?} (see `bastion token list`)"
            )));
        };
        let now = chrono::Utc::now().timestamp();
        if !ledger.revoke(&lock, id, Some(issued.expires_unix), now)? {
            return Err(usage(format!("token {id} is already revoked")));
        }
    }
    match format {
        Format::Json => print_json(&serde_json::json!({ "revoked": id }))?,
        Format::Table => println!("revoked token {id}"),
    }
    Ok(())
}
