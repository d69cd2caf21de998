//! `bastion grant --user U --target T --action A [--table S.T]... --ttl D --reason TEXT`,
//! `bastion grant list`, `bastion grant revoke ID`: task-scoped grants in the state directory
//! (`crate::grants`). A running bastion picks a change up at its next decision.
use super::admin_cmds::{one_line, parse_interval, print_json, table, AdminArgs, Format};
use super::token_cmd::operator;
use crate::entry::machine_token::rfc3339;
use crate::exit::UsageError;
use crate::grants::{self, GrantRequest};
use std::process::ExitCode;
use std::time::Duration;

/// `bastion grant ...`.
#[derive(Debug, clap::Args)]
pub struct GrantCmd {
    #[command(subcommand)]
    command: Option<GrantAction>,
    #[command(flatten)]
    new: NewGrant,
    #[command(flatten)]
    common: AdminArgs,
}

/// The options of a new grant (`bastion grant --user ...`).
#[derive(Debug, clap::Args)]
struct NewGrant {
    /// The identity the grant is for.
    #[arg(long)]
    user: Option<String>,
    /// The target it covers.
    #[arg(long)]
    target: Option<String>,
    /// The one action it permits, e.g. `sql:update`, `shell:run`, `sftp:write`.
    #[arg(long)]
    action: Option<String>,
    /// SQL only: a table the statement may touch (`schema.name`); repeat for several. Default:
    /// any table.
    #[arg(long = "table")]
    tables: Vec<String>,
    /// How long it lasts, e.g. `30m` (at most 24h).
    #[arg(long, value_parser = parse_interval)]
    ttl: Option<Duration>,
    /// The task it is for (e.g. the ticket); recorded with the grant.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum GrantAction {
    /// Every grant with its state (active, expired, revoked).
    List,
    /// End a grant before it expires.
    Revoke {
        /// Grant id (from `grant list`).
        id: String,
    },
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Runs `bastion grant ...`.
pub fn run(cmd: &GrantCmd) -> anyhow::Result<ExitCode> {
    let config = crate::config::load(&cmd.common.config)?;
    let state_dir = &config.server.state_dir;
    let now = chrono::Utc::now().timestamp();
    let format = cmd.common.format;
    let n = &cmd.new;
    let given_new = n.user.is_some()
        || n.target.is_some()
        || n.action.is_some()
        || !n.tables.is_empty()
        || n.ttl.is_some()
        || n.reason.is_some();
    match &cmd.command {
        Some(_) if given_new => {
            return Err(usage(
                "grant options (--user, --target, ...) go without a subcommand",
            ))
        }
        Some(GrantAction::List) => {
            let all = grants::list(state_dir)?;
            match format {
                Format::Json => {
                    let rows: Vec<serde_json::Value> = all
                        .iter()
                        .map(|g| {
                            let mut v = serde_json::to_value(g).unwrap_or_default();
                            v["state"] = serde_json::json!(g.state(now));
                            v
                        })
                        .collect();
                    print_json(&rows)?
                }
                Format::Table => {
                    let rows: Vec<Vec<String>> = all
                        .iter()
                        .map(|g| {
                            vec![
                                g.id.clone(),
                                g.user.clone(),
                                g.target.clone(),
                                g.action.clone(),
                                g.tables.join(","),
                                rfc3339(g.expires_unix),
                                g.state(now).to_string(),
                                g.granted_by.clone(),
                                one_line(&g.reason, 50),
                            ]
                        })
                        .collect();
                    let headers = [
                        "id", "user", "target", "action", "tables", "expires", "state", "by",
                        "reason",
                    ];
                    print!("{}", table(&headers, &rows));
                }
            }
        }
        Some(GrantAction::Revoke { id }) => {
            let g = grants::revoke(state_dir, id, &operator(), now).map_err(|e| match e {
                grants::GrantError::Invalid(m) => usage(m),
                other => other.into(),
            })?;
            match format {
                Format::Json => print_json(&g)?,
                Format::Table => println!("revoked {}", g.describe()),
            }
        }
        None => {
            let missing: Vec<&str> = [
                ("--user", n.user.is_none()),
                ("--target", n.target.is_none()),
                ("--action", n.action.is_none()),
                ("--ttl", n.ttl.is_none()),
                ("--reason", n.reason.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, absent)| absent.then_some(name))
            .collect();
            if !missing.is_empty() {
                return Err(usage(format!(
                    "a grant needs {} (or use `grant list` / `grant revoke ID`)",
                    missing.join(", ")
                )));
            }
            let req = GrantRequest {
                user: n.user.clone().unwrap_or_default(),
                target: n.target.clone().unwrap_or_default(),
                action: n.action.clone().unwrap_or_default(),
                tables: n.tables.clone(),
                ttl_secs: n
                    .ttl
                    .map(|t| i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
                    .unwrap_or(0),
                reason: n.reason.clone().unwrap_or_default(),
                granted_by: operator(),
            };
            grants::validate(&config, &req).map_err(|e| usage(e.to_string()))?;
            let g = grants::add(state_dir, req, now)?;
            match format {
                Format::Json => print_json(&g)?,
                Format::Table => {
                    eprintln!("granted (in force at the next decision of a running bastion):");
                    println!("{}", g.describe());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
