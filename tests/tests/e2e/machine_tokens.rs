//! Short-lived login tokens end to end (issue 10 item 1 and 2): real PostgreSQL behind the real
//! bastion, tokens minted with `bastion token issue` and given as the password by tokio-postgres
//! and psql; real sshd behind the bastion and real `ssh` answering the password prompt with a
//! token. Every refusal is a generic 28P01 / "Permission denied" to the client and an `entries`
//! row naming the failed check.
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use tests::bastion::BastionProcess;
use tests::pg_fixture::PgPath;
use tests::ssh::SshServer;

/// A service identity that logs in with tokens only, allowed by the starter pack's
/// `CONNECT-engineers` / `SQL-1` (prod-db reads) and `DEV-engineers` (dev-db).
const CI_BOT: &str = r#"
[[users]]
name = "ci-bot"
kind = "service"
groups = ["engineers"]
auth = ["token"]

[limits]
lockout_after = 100
"#;

/// The current UTC hour.
fn current_utc_hour() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    secs % 86_400 / 3600
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn issue(bastion: &BastionProcess, args: &[&str]) -> String {
    let mut all = vec!["token", "issue"];
    all.extend_from_slice(args);
    let out = bastion.cli(&all).unwrap();
    assert!(
        out.status.success(),
        "token issue {args:?}: {}",
        text(&out.stderr)
    );
    let token = text(&out.stdout).trim().to_string();
    assert!(token.starts_with("bt1."), "{token}");
    token
}

/// The token id (`token list --format json`) of the newest login token.
fn newest_login_id(bastion: &BastionProcess) -> String {
    let out = bastion.cli(&["token", "list", "--format", "json"]).unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.iter()
        .rev()
        .find(|t| t["scope"] == "login")
        .and_then(|t| t["id"].as_str())
        .unwrap()
        .to_string()
}

/// Polls `bastion audit query` until `done` holds (30 s guard against a hang, not a timing
/// assertion), returning the last rows.
fn audit_until(
    bastion: &BastionProcess,
    sql: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    bastion.audit_until(sql, done)
}

/// The `reason` of the newest `entries` row of ci-bot's token attempts containing `needle`.
fn entry_reason(bastion: &BastionProcess, identity: &str, result: &str, needle: &str) -> String {
    let sql = format!(
        "SELECT reason FROM entries WHERE identity = '{identity}' AND method = 'token' AND result = '{result}' ORDER BY time"
    );
    let rows = audit_until(bastion, &sql, |rows| {
        rows.iter()
            .any(|r| r["reason"].as_str().unwrap_or("").contains(needle))
    });
    let reasons: Vec<String> = rows
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or("").to_string())
        .collect();
    reasons
        .iter()
        .rev()
        .find(|r| r.contains(needle))
        .cloned()
        .unwrap_or_else(|| panic!("no {result} entry with {needle:?}; rows: {reasons:?}"))
}

async fn login(p: &PgPath, user: &str, db: &str, token: &str) -> Result<Vec<String>, String> {
    match p.connect_with(user, db, token).await {
        Ok(client) => {
            let rows = client
                .query("SELECT current_database()", &[])
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
        }
        Err(e) => {
            let code = e
                .downcast_ref::<tokio_postgres::Error>()
                .and_then(|e| e.as_db_error())
                .map(|d| format!("{}: {}", d.code().code(), d.message()))
                .unwrap_or_else(|| e.to_string());
            Err(code)
        }
    }
}

/// The generic refusal every failed token check gives the client.
fn assert_refused(result: Result<Vec<String>, String>) {
    let err = result.expect_err("the token must be refused");
    assert!(
        err.starts_with("28P01: password authentication failed"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_works_for_its_target_and_is_refused_elsewhere_later_and_revoked() {
    let p = PgPath::start(CI_BOT).unwrap();
    let b = &p.bastion;

    // Bound to prod-db: works there (twice: no use limit), refused for dev-db.
    let prod = issue(
        b,
        &[
            "--user",
            "ci-bot",
            "--ttl",
            "15m",
            "--target",
            "prod-db",
            "--reason",
            "deploy 42",
        ],
    );
    assert_eq!(
        login(&p, "ci-bot@prod-db", "shop", &prod).await,
        Ok(vec!["shop".into()])
    );
    assert_eq!(
        login(&p, "ci-bot@prod-db", "shop", &prod).await,
        Ok(vec!["shop".into()])
    );
    assert_refused(login(&p, "ci-bot@dev-db", "shopdev", &prod).await);
    let r = entry_reason(b, "ci-bot", "fail", "is for target prod-db, not dev-db");
    assert!(r.contains("token "), "{r}");
    // The first entry from this address is flagged.
    let ok = audit_until(
        b,
        "SELECT reason FROM entries WHERE identity = 'ci-bot' AND result = 'ok' ORDER BY time",
        |rows| rows.len() >= 2,
    );
    assert_eq!(ok[0]["reason"], "risk: new_source", "{ok:?}");
    assert!(ok[1]["reason"].is_null(), "{ok:?}");

    // Revoked: refused from the next login on, by the running bastion, and flagged as reuse.
    let id = newest_login_id(b);
    let out = b.cli(&["token", "revoke", &id]).unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("revoked token {id}"));
    assert_refused(login(&p, "ci-bot@prod-db", "shop", &prod).await);
    let r = entry_reason(b, "ci-bot", "fail", "was revoked");
    assert!(r.contains("revoked_token_reuse"), "{r}");

    // Expired: a one-second token, used after it ended.
    let short = issue(b, &["--user", "ci-bot", "--ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(2100));
    assert_refused(login(&p, "ci-bot@dev-db", "shopdev", &short).await);
    entry_reason(b, "ci-bot", "fail", "expired at");

    // Source-bound to a network the client is not in.
    let elsewhere = issue(
        b,
        &["--user", "ci-bot", "--ttl", "5m", "--source", "10.0.0.0/8"],
    );
    assert_refused(login(&p, "ci-bot@dev-db", "shopdev", &elsewhere).await);
    entry_reason(b, "ci-bot", "fail", "bound to source 10.0.0.0/8");
    // ... and to the client's own address: accepted.
    let here = issue(
        b,
        &["--user", "ci-bot", "--ttl", "5m", "--source", "127.0.0.1"],
    );
    assert!(login(&p, "ci-bot@dev-db", "shopdev", &here).await.is_ok());

    // One use only.
    let once = issue(b, &["--user", "ci-bot", "--ttl", "5m", "--uses", "1"]);
    assert!(login(&p, "ci-bot@dev-db", "shopdev", &once).await.is_ok());
    assert_refused(login(&p, "ci-bot@dev-db", "shopdev", &once).await);
    entry_reason(b, "ci-bot", "fail", "uses are exhausted (1 of 1 used)");

    // Altered and foreign tokens.
    let good = issue(b, &["--user", "ci-bot", "--ttl", "5m"]);
    let (head, sig) = good.rsplit_once('.').unwrap();
    let flipped = format!(
        "{head}.{}{}",
        if sig.starts_with('A') { "B" } else { "A" },
        &sig[1..]
    );
    assert_refused(login(&p, "ci-bot@dev-db", "shopdev", &flipped).await);
    entry_reason(b, "ci-bot", "fail", "signature does not verify");
    assert_refused(login(&p, "ci-bot@dev-db", "shopdev", "ci-bot-pw").await);
    entry_reason(b, "ci-bot", "fail", "malformed");
    let list = b.cli(&["token", "list", "--format", "json"]).unwrap();
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    let states: Vec<(&str, &str)> = listed
        .iter()
        .map(|t| (t["scope"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert!(states.contains(&("login", "revoked")), "{states:?}");
    assert!(states.contains(&("login", "expired")), "{states:?}");
    assert!(states.contains(&("login", "used up")), "{states:?}");
    assert!(
        listed
            .iter()
            .any(|t| t["reason"] == "deploy 42" && t["target"] == "prod-db"),
        "{listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_logs_in_with_a_token_and_other_methods_are_closed() {
    // Usual hours that exclude the current hour: the entry is flagged, not refused.
    let hour = current_utc_hour();
    let hours = format!(
        "allowed_hours = \"{:02}:00-{:02}:00\"\n",
        (hour + 2) % 24,
        (hour + 3) % 24
    );
    let p = PgPath::start(&CI_BOT.replace(
        "auth = [\"token\"]\n",
        &format!("auth = [\"token\"]\n{hours}"),
    ))
    .unwrap();
    let b = &p.bastion;
    let token = issue(
        b,
        &["--user", "ci-bot", "--ttl", "10m", "--target", "prod-db"],
    );
    let out = Command::new("psql")
        .arg(p.conninfo("ci-bot@prod-db", "shop"))
        .args(["-X", "-A", "-t", "-c", "SELECT count(*) FROM app.orders"])
        .env("PGPASSWORD", &token)
        .env("PGCONNECT_TIMEOUT", "20")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "3");
    let ok = audit_until(
        b,
        "SELECT reason FROM entries WHERE identity = 'ci-bot' AND result = 'ok'",
        |rows| !rows.is_empty(),
    );
    assert_eq!(ok[0]["reason"], "risk: new_source, outside_hours", "{ok:?}");

    // A token identity has no SCRAM path; a SCRAM identity has no token path.
    assert_refused(login(&p, "ci-bot@prod-db", "shop", "ci-bot-pw").await);
    let refused = b
        .cli(&["token", "issue", "--user", "deploy-bot", "--ttl", "5m"])
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("does not log in with tokens"),
        "{}",
        text(&refused.stderr)
    );
    // Login tokens must expire, within a day; API-token flags do not mix with login tokens.
    for bad in [
        vec!["--user", "ci-bot"],
        vec!["--user", "ci-bot", "--ttl", "25h"],
        vec!["--user", "ci-bot", "--ttl", "5m", "--target", "nowhere"],
        vec!["--user", "ci-bot", "--ttl", "5m", "--source", "not-a-net"],
        vec!["--user", "ci-bot", "--ttl", "5m", "--uses", "0"],
        vec![
            "--user", "dana", "--scope", "approve", "--target", "prod-db",
        ],
    ] {
        let mut all = vec!["token", "issue"];
        all.extend(bad.iter().copied());
        let out = b.cli(&all).unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
    // The scope form still mints admin API tokens.
    let api = b
        .cli(&["token", "issue", "--user", "dana", "--scope", "approve"])
        .unwrap();
    assert!(
        text(&api.stdout).starts_with("bst_"),
        "{}",
        text(&api.stderr)
    );
}

#[test]
fn check_warns_about_static_machine_credentials_and_can_forbid_them() {
    let dir = tempfile::tempdir().unwrap();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies");
    let verifier = protocol::postgres::scram::make_verifier("pw", 4096).unwrap();
    std::fs::write(dir.path().join("bot.scram"), verifier).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join("bot.scram"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let write = |forbid: bool| {
        let config = format!(
            "[server]\npostgres_listen = \"127.0.0.1:1\"\nforbid_static_machine_credentials = {forbid}\n\n\
             [[users]]\nname = \"old-bot\"\nkind = \"service\"\nscram_verifier = \"file:bot.scram\"\n\n\
             [[users]]\nname = \"new-bot\"\nkind = \"agent\"\nauth = [\"token\"]\n\n\
             [policies]\npaths = [\"{}\"]\n",
            policies.display()
        );
        let path = dir.path().join("bastion.toml");
        std::fs::write(&path, config).unwrap();
        path
    };
    let check = |path: &Path| -> Output {
        Command::new(tests::bastion::bastion_bin())
            .args(["check", "--config"])
            .arg(path)
            .output()
            .unwrap()
    };
    let warned = check(&write(false));
    assert!(warned.status.success(), "{}", text(&warned.stderr));
    let err = text(&warned.stderr);
    assert!(
        err.contains("warning: user old-bot is a service identity with a long-lived static credential (scram_verifier)"),
        "{err}"
    );
    assert!(!err.contains("new-bot"), "{err}");
    let forbidden = check(&write(true));
    assert_eq!(
        forbidden.status.code(),
        Some(2),
        "{}",
        text(&forbidden.stderr)
    );
    let err = text(&forbidden.stderr);
    assert!(err.contains("bastion.toml:8:"), "{err}");
    assert!(err.contains("forbid_static_machine_credentials"), "{err}");
    // Unknown auth methods and password_totp for machines are config errors.
    for (auth, needle) in [
        ("[\"tokens\"]", "unknown auth method \"tokens\""),
        ("[\"password_totp\"]", "password_totp is for humans"),
        ("[]", "leaves no way to log in"),
    ] {
        let config = format!(
            "[server]\npostgres_listen = \"127.0.0.1:1\"\n\n[[users]]\nname = \"x\"\nkind = \"agent\"\nauth = {auth}\n\n[policies]\npaths = [\"{}\"]\n",
            policies.display()
        );
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, config).unwrap();
        let out = check(&path);
        assert_eq!(out.status.code(), Some(2), "{auth}");
        assert!(
            text(&out.stderr).contains(needle),
            "{auth}: {}",
            text(&out.stderr)
        );
    }
}

/// An SSH target whose token identity is the starter pack's deploy-bot (BOT-shell on web1).
fn ssh_setup() -> (SshServer, BastionProcess) {
    let sshd = SshServer::start().expect("sshd starts");
    let pin = sshd.host_key().unwrap();
    let config = format!(
        r#"[server]
ssh_listen = "127.0.0.1:{{SSH_PORT}}"
state_dir = "{{DIR}}/state"
audit_dir = "{{DIR}}/audit"

[[users]]
name = "deploy-bot"
kind = "service"
groups = ["deployers"]
auth = ["token"]

[[targets]]
name = "web1"
protocol = "ssh"
address = "127.0.0.1:{port}"
tags = {{ env = "prod" }}
upstream_user = "{user}"
credential = "bastion:key"
host_key = "{pin}"

[[targets]]
name = "dev-box"
protocol = "ssh"
address = "127.0.0.1:{port}"
tags = {{ env = "dev" }}
upstream_user = "{user}"
credential = "bastion:key"
host_key = "{pin}"

[policies]
paths = ["{policies}"]

[recorder]
roll_max_age = "1s"
"#,
        port = sshd.port(),
        user = sshd.user(),
        policies = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/policies")
            .display(),
    );
    let bastion = BastionProcess::start(&config).expect("bastion starts");
    let out = bastion.cli(&["keys", "client-public"]).unwrap();
    sshd.authorize(text(&out.stdout).trim()).unwrap();
    (sshd, bastion)
}

/// `ssh` with the password (or keyboard-interactive) method only, answering every prompt with
/// `answer` through an SSH_ASKPASS script.
fn ssh_with_secret(bastion: &BastionProcess, method: &str, route: &str, answer: &str) -> Output {
    let script = bastion.dir.path().join(format!("askpass-{method}"));
    std::fs::write(&script, format!("#!/bin/sh\nprintf '%s\\n' '{answer}'\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            &format!("PreferredAuthentications={method}"),
            "-o",
            "NumberOfPasswordPrompts=1",
            "-p",
            &bastion.ssh_port.to_string(),
            &format!("{route}@127.0.0.1"),
            "uptime",
        ])
        .env("SSH_ASKPASS", &script)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn ssh_accepts_a_token_as_the_password_for_its_target_only() {
    let (_sshd, b) = ssh_setup();
    let token = issue(
        &b,
        &["--user", "deploy-bot", "--ttl", "10m", "--target", "web1"],
    );
    for method in ["password", "keyboard-interactive"] {
        let ok = ssh_with_secret(&b, method, "deploy-bot@web1", &token);
        assert!(
            ok.status.success(),
            "{method}: {}\n{}",
            text(&ok.stderr),
            b.log()
        );
        assert!(
            text(&ok.stdout).contains("load average"),
            "{}",
            text(&ok.stdout)
        );
        let other = ssh_with_secret(&b, method, "deploy-bot@dev-box", &token);
        assert_eq!(other.status.code(), Some(255), "{method}");
        assert!(
            text(&other.stderr).contains("Permission denied"),
            "{}",
            text(&other.stderr)
        );
    }
    entry_reason(&b, "deploy-bot", "fail", "is for target web1, not dev-box");
    // A password that is not a token is refused on the password method.
    let plain = ssh_with_secret(&b, "password", "deploy-bot@web1", "hunter2-hunter2");
    assert_eq!(plain.status.code(), Some(255));
    entry_reason(&b, "deploy-bot", "fail", "takes login tokens only");
    let rows = audit_until(
        &b,
        "SELECT method FROM entries WHERE identity = 'deploy-bot' AND result = 'ok'",
        |rows| rows.len() >= 2,
    );
    assert!(rows.iter().all(|r| r["method"] == "token"), "{rows:?}");
}
