//! `bastion users set-password USER`: stores the verifier of a human's SSH password (used with a
//! one-time code over keyboard-interactive) in the state directory. The password is read from
//! the terminal without echo, twice, or from the first line of stdin when it is not a terminal.
use super::admin_cmds::{print_json, Format};
use crate::config::{AuthMethod, Config, UserKind};
use crate::entry::password::{acceptable, set_password as store_password};
use crate::exit::UsageError;
use anyhow::Context;
use std::io::{BufRead, IsTerminal, Write};

/// Reads one line from the terminal with echo off (restored afterwards).
fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let hidden = stty("-echo").is_ok_and(|s| s.success());
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        let _ = stty("echo");
        eprintln!();
    }
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Runs `bastion users set-password USER`.
pub fn set_password(config: &Config, user: &str, format: Format) -> anyhow::Result<()> {
    let u = config
        .users
        .get(user)
        .ok_or_else(|| UsageError(format!("unknown user {user:?}")))?;
    if u.kind != UserKind::Human {
        return Err(UsageError(format!(
            "{user} is a {} identity; passwords with one-time codes are for humans (machines use `bastion token issue`)",
            u.kind.as_str()
        ))
        .into());
    }
    if !u.accepts(AuthMethod::PasswordTotp) {
        eprintln!("warning: {user}'s auth does not include password_totp; the password will not be accepted until it does");
    }
    if let Some(r) = &u.password_verifier {
        eprintln!("warning: {user} has `password_verifier = \"{r}\"` in the config, which takes precedence over the stored one");
    }
    let password = if std::io::stdin().is_terminal() {
        let first = read_hidden("New password: ")?;
        acceptable(&first).map_err(|e| UsageError(e.to_string()))?;
        if read_hidden("Again: ")? != first {
            return Err(UsageError("the passwords differ; nothing was changed".into()).into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    let path = store_password(&config.server.state_dir, user, &password).map_err(|e| match e {
        crate::entry::password::PasswordError::Unacceptable(m) => UsageError(m).into(),
        other => anyhow::Error::from(other),
    })?;
    match format {
        Format::Json => print_json(&serde_json::json!({ "user": user, "path": path }))?,
        Format::Table => println!(
            "password of {user} set ({} holds its SCRAM-SHA-256 verifier, mode 0600)",
            path.display()
        ),
    }
    if crate::totp::load_secret(&config.server.state_dir, u).is_err() {
        eprintln!("note: {user} also needs a one-time code: `bastion users enroll-totp {user}`");
    }
    Ok(())
}
