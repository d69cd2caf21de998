//! Admin commands: `approvals`, `sessions` and `lockouts` talk to a running bastion's admin API
//! over its Unix socket with a token (`--token` or `BASTION_TOKEN`); `token issue|list|revoke`
//! (`token_cmd`) and `users enroll-totp|set-password` work on the state directory directly (the
//! local bootstrap: whoever can write the state directory can mint the first token, no API
//! needed). Every command takes
//! `--config` and `--format table|json`. There is no `--as`: the approver is the token's user.
use crate::admin::{AdminClient, SessionView};
use crate::broker::ApprovalView;
use crate::exit::UsageError;
use anyhow::Context;
use hyper::Method;
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON for scripts (one document; `watch` prints one line per request).
    Json,
}

/// Options shared by every admin command (accepted before or after the subcommand).
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Path to bastion.toml (for the socket path, the state directory and the users).
    #[arg(
        long,
        short = 'c',
        default_value = "bastion.toml",
        env = "BASTION_CONFIG",
        global = true
    )]
    pub config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub format: Format,
}

/// Options of commands that call the API.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// API token (issued with `bastion token issue`).
    #[arg(long, env = "BASTION_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Admin socket; default: `server.admin_socket` of the config.
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
    /// The admin API's TLS listener instead of the socket, e.g. `https://bastion:9443`.
    #[arg(long, env = "BASTION_ADMIN_URL", global = true)]
    pub admin_url: Option<String>,
    /// PEM file of the CA (or self-signed certificate) to trust for `--admin-url`; default:
    /// the system roots.
    #[arg(long, env = "BASTION_ADMIN_CA", global = true)]
    pub ca: Option<PathBuf>,
    #[command(flatten)]
    common: AdminArgs,
}

/// `bastion approvals ...`.
#[derive(Debug, clap::Args)]
pub struct ApprovalsCmd {
    #[command(subcommand)]
    action: ApprovalsAction,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, clap::Subcommand)]
enum ApprovalsAction {
    /// Pending requests (with --all, recently resolved ones too).
    List {
        /// Include resolved requests.
        #[arg(long)]
        all: bool,
    },
    /// One request in full: text, facts, policies, digest.
    Show {
        /// Request id.
        id: String,
    },
    /// Approve a request as the token's user.
    Approve {
        /// Request id.
        id: String,
        /// Approve only if the request's digest is this (as `show` printed it).
        #[arg(long)]
        digest: Option<String>,
    },
    /// Deny a request as the token's user.
    Deny {
        /// Request id.
        id: String,
        /// Why (the requester sees it).
        #[arg(long)]
        reason: String,
    },
    /// Print new requests as they arrive, until interrupted.
    Watch {
        /// Poll interval.
        #[arg(long, default_value = "1s", value_parser = parse_interval)]
        interval: Duration,
    },
}

/// `bastion sessions ...`.
#[derive(Debug, clap::Args)]
pub struct SessionsCmd {
    #[command(subcommand)]
    action: SessionsAction,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, clap::Subcommand)]
enum SessionsAction {
    /// Live sessions.
    List,
    /// End a live session.
    Kill {
        /// Session id.
        id: String,
    },
}

/// `bastion lockouts ...`.
#[derive(Debug, clap::Args)]
pub struct LockoutsCmd {
    #[command(subcommand)]
    action: LockoutsAction,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, clap::Subcommand)]
enum LockoutsAction {
    /// Failure counts and active locks.
    List,
    /// Clear every count and lock.
    Clear,
}

/// `bastion users ...`.
#[derive(Debug, clap::Args)]
pub struct UsersCmd {
    #[command(subcommand)]
    action: UsersAction,
    #[command(flatten)]
    common: AdminArgs,
}

#[derive(Debug, clap::Subcommand)]
enum UsersAction {
    /// Set the password a human gives with a one-time code on SSH (keyboard-interactive); read
    /// from the terminal (twice) or the first line of stdin, stored as a SCRAM verifier.
    SetPassword {
        /// The user.
        user: String,
    },
    /// Create a TOTP secret for a human user and print its otpauth:// URI.
    EnrollTotp {
        /// The user.
        user: String,
        /// Replace an existing secret.
        #[arg(long)]
        replace: bool,
    },
}

pub(super) fn parse_interval(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text).map_err(|e| e.to_string())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

impl ApiArgs {
    fn client(&self) -> anyhow::Result<AdminClient> {
        let token = self.token.clone().ok_or_else(|| {
            UsageError("no api token: pass --token or set BASTION_TOKEN (issue one with `bastion token issue`)".into())
        })?;
        AdminClient::from_cli(
            &self.common.config,
            self.socket.as_deref(),
            self.admin_url.as_deref(),
            self.ca.as_deref(),
            token,
        )
    }
}

pub(super) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Columns padded to their widest cell; the last column is not padded.
pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_uppercase()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let n = row.len();
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i + 1 == n {
                    cell.clone()
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// One line of text, at most `max` characters.
pub(super) fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!(
            "{}…",
            flat.chars().take(max.saturating_sub(1)).collect::<String>()
        )
    } else {
        flat
    }
}

fn approvals_table(views: &[ApprovalView]) -> String {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.id.to_string(),
                v.status.clone(),
                v.kind.as_str().to_string(),
                v.identity.clone(),
                v.target.clone(),
                v.policy_ids.join(","),
                v.expires_at.clone(),
                one_line(&v.text, 60),
            ]
        })
        .collect();
    table(
        &[
            "id", "status", "kind", "identity", "target", "policies", "expires", "text",
        ],
        &rows,
    )
}

fn approval_detail(v: &ApprovalView) -> String {
    let mut lines = vec![
        format!("id:        {}", v.id),
        format!("status:    {}", v.status),
        format!("kind:      {}", v.kind.as_str()),
        format!("requester: {} ({})", v.identity, v.identity_kind),
        format!("target:    {} ({})", v.target, v.protocol),
        format!("session:   {} #{}", v.session_id, v.seq),
        format!("policies:  {}", v.policy_ids.join(", ")),
        format!(
            "approvers: {}",
            if v.approver_groups.is_empty() {
                "any human but the requester".to_string()
            } else {
                v.approver_groups.join(", ")
            }
        ),
        format!("created:   {}", v.created_at),
        format!("expires:   {}", v.expires_at),
        format!("digest:    {}", v.digest),
    ];
    if !v.waiting_for.is_empty() {
        lines.push(format!("waiting:   {}", v.waiting_for.join(", ")));
    }
    if let Some(a) = &v.approver {
        lines.push(format!("approver:  {a}"));
    }
    if let Some(d) = &v.denied_by {
        lines.push(format!(
            "denied by: {d}: {}",
            v.reason.as_deref().unwrap_or("")
        ));
    }
    lines.push(format!("facts:     {}", v.facts));
    lines.push("text:".to_string());
    for l in v.text.lines() {
        lines.push(format!("    {l}"));
    }
    lines.join("\n")
}

/// Runs `bastion approvals ...`.
pub fn run_approvals(cmd: &ApprovalsCmd) -> anyhow::Result<ExitCode> {
    let client = cmd.api.client()?;
    let format = cmd.api.common.format;
    runtime()?.block_on(async move {
        match &cmd.action {
            ApprovalsAction::List { all } => {
                let path = if *all {
                    "/v1/approvals?all=true"
                } else {
                    "/v1/approvals"
                };
                let views: Vec<ApprovalView> = client.call(Method::GET, path, None).await?;
                match format {
                    Format::Json => print_json(&views)?,
                    Format::Table => print!("{}", approvals_table(&views)),
                }
            }
            ApprovalsAction::Show { id } => {
                let v: ApprovalView = client
                    .call(
                        Method::GET,
                        &format!("/v1/approvals/{}", path_id(id)?),
                        None,
                    )
                    .await?;
                match format {
                    Format::Json => print_json(&v)?,
                    Format::Table => println!("{}", approval_detail(&v)),
                }
            }
            ApprovalsAction::Approve { id, digest } => {
                let body = serde_json::json!({ "digest": digest });
                let path = format!("/v1/approvals/{}/approve", path_id(id)?);
                let v: ApprovalView = client.call(Method::POST, &path, Some(body)).await?;
                match format {
                    Format::Json => print_json(&v)?,
                    Format::Table if v.status == "approved" => {
                        println!(
                            "approved {}: {} on {}: {}",
                            v.id,
                            v.identity,
                            v.target,
                            one_line(&v.text, 80)
                        )
                    }
                    Format::Table => println!(
                        "approval of {} recorded; waiting for {}",
                        v.id,
                        v.waiting_for.join(", ")
                    ),
                }
            }
            ApprovalsAction::Deny { id, reason } => {
                let path = format!("/v1/approvals/{}/deny", path_id(id)?);
                let v: ApprovalView = client
                    .call(
                        Method::POST,
                        &path,
                        Some(serde_json::json!({ "reason": reason })),
                    )
                    .await?;
                match format {
                    Format::Json => print_json(&v)?,
                    Format::Table => println!(
                        "denied {}: {} on {}: {}",
                        v.id,
                        v.identity,
                        v.target,
                        one_line(&v.text, 80)
                    ),
                }
            }
            ApprovalsAction::Watch { interval } => watch(&client, format, *interval).await?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// An id safe to put in a URL path (ids are hex; anything else cannot exist).
fn path_id(id: &str) -> anyhow::Result<&str> {
    if !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(id)
    } else {
        Err(UsageError(format!("{id:?} is not a valid id")).into())
    }
}

async fn watch(client: &AdminClient, format: Format, interval: Duration) -> anyhow::Result<()> {
    use std::io::Write;
    let mut seen = HashSet::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    if format == Format::Table {
        eprintln!("watching for step-up requests (Ctrl-C to stop)");
    }
    loop {
        let views: Vec<ApprovalView> = client.call(Method::GET, "/v1/approvals", None).await?;
        for v in views {
            if seen.insert(v.id.clone()) {
                match format {
                    Format::Json => println!("{}", serde_json::to_string(&v)?),
                    Format::Table => println!(
                        "{}  {}  {} on {} ({})  [{}]  {}",
                        v.created_at,
                        v.id,
                        v.identity,
                        v.target,
                        v.kind.as_str(),
                        v.policy_ids.join(","),
                        one_line(&v.text, 100)
                    ),
                }
                std::io::stdout().flush()?;
            }
        }
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Runs `bastion sessions ...`.
pub fn run_sessions(cmd: &SessionsCmd) -> anyhow::Result<ExitCode> {
    let client = cmd.api.client()?;
    let format = cmd.api.common.format;
    runtime()?.block_on(async move {
        match &cmd.action {
            SessionsAction::List => {
                let sessions: Vec<SessionView> =
                    client.call(Method::GET, "/v1/sessions", None).await?;
                match format {
                    Format::Json => print_json(&sessions)?,
                    Format::Table => {
                        let rows: Vec<Vec<String>> = sessions
                            .iter()
                            .map(|s| {
                                vec![
                                    s.id.clone(),
                                    s.identity.clone(),
                                    s.target.clone(),
                                    s.protocol.clone(),
                                    s.peer.clone(),
                                    s.started.clone(),
                                    s.bytes_in.to_string(),
                                    s.bytes_out.to_string(),
                                    one_line(s.last_action.as_deref().unwrap_or(""), 50),
                                ]
                            })
                            .collect();
                        let headers = [
                            "id",
                            "identity",
                            "target",
                            "protocol",
                            "peer",
                            "started",
                            "in",
                            "out",
                            "last action",
                        ];
                        print!("{}", table(&headers, &rows));
                    }
                }
            }
            SessionsAction::Kill { id } => {
                let v: serde_json::Value = client
                    .call(
                        Method::POST,
                        &format!("/v1/sessions/{}/kill", path_id(id)?),
                        None,
                    )
                    .await?;
                match format {
                    Format::Json => print_json(&v)?,
                    Format::Table => println!("killed session {id}"),
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `bastion lockouts ...`.
pub fn run_lockouts(cmd: &LockoutsCmd) -> anyhow::Result<ExitCode> {
    let client = cmd.api.client()?;
    let format = cmd.api.common.format;
    runtime()?.block_on(async move {
        match &cmd.action {
            LockoutsAction::List => {
                let list: Vec<LockoutJson> = client.call(Method::GET, "/v1/lockouts", None).await?;
                match format {
                    Format::Json => print_json(&list)?,
                    Format::Table => {
                        let rows: Vec<Vec<String>> = list
                            .iter()
                            .map(|l| {
                                vec![
                                    l.key.clone(),
                                    l.failures.to_string(),
                                    l.locked_for_secs.to_string(),
                                ]
                            })
                            .collect();
                        print!("{}", table(&["key", "failures", "locked for (s)"], &rows));
                    }
                }
            }
            LockoutsAction::Clear => {
                let v: serde_json::Value = client
                    .call(Method::POST, "/v1/lockouts/clear", None)
                    .await?;
                match format {
                    Format::Json => print_json(&v)?,
                    Format::Table => println!(
                        "cleared {} lockout entries",
                        v.get("cleared").unwrap_or(&serde_json::Value::Null)
                    ),
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `LockoutStatus` as it comes back over the API.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct LockoutJson {
    key: String,
    failures: u32,
    locked_for_secs: u64,
}

/// Runs `bastion users ...`.
pub fn run_users(cmd: &UsersCmd) -> anyhow::Result<ExitCode> {
    let config = crate::config::load(&cmd.common.config)?;
    match &cmd.action {
        UsersAction::SetPassword { user } => {
            super::password_cmd::set_password(&config, user, cmd.common.format)?
        }
        UsersAction::EnrollTotp { user, replace } => {
            let u = config
                .users
                .get(user)
                .ok_or_else(|| UsageError(format!("unknown user {user:?}")))?;
            if u.kind != crate::config::UserKind::Human {
                return Err(UsageError(format!(
                    "{user} is a {} identity; only humans hold a one-time code",
                    u.kind.as_str()
                ))
                .into());
            }
            if let Some(r) = &u.totp {
                eprintln!("warning: {user} has `totp = \"{r}\"` in the config, which takes precedence over the enrolled secret");
            }
            let e = crate::totp::enroll(&config.server.state_dir, user, *replace)
                .with_context(|| format!("enrolling {user}"))?;
            match cmd.common.format {
                Format::Json => {
                    print_json(&serde_json::json!({ "user": user, "uri": e.uri, "path": e.path }))?
                }
                Format::Table => {
                    eprintln!(
                        "secret written to {} (mode 0600); add this URI to an authenticator app:",
                        e.path.display()
                    );
                    super::qr::print_uri_with_code(&e.uri)?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["id", "text"],
            &[
                vec!["a".into(), "x y".into()],
                vec!["abcd".into(), "z".into()],
            ],
        );
        assert_eq!(t, "ID    TEXT\na     x y\nabcd  z\n");
    }

    #[test]
    fn ids_with_path_characters_are_refused() {
        assert!(path_id("ab12cd34ef").is_ok());
        for bad in ["", "../sessions", "a/b", "a?all=true", "a b"] {
            assert!(path_id(bad).is_err(), "{bad}");
        }
    }
}
