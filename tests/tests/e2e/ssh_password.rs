//! SSH password + one-time code over keyboard-interactive (issue 7), end to end: a human whose
//! `auth` is `["password_totp"]`, a password set with `bastion users set-password`, the real
//! OpenSSH client answering "Password:" and "One-time code:" through an SSH_ASKPASS script that
//! picks its answer by the prompt's text, and a real sshd behind the bastion.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tests::bastion::BastionProcess;
use tests::pg_fixture::TOTP_SECRET;
use tests::ssh::SshServer;

const PASSWORD: &str = "correct horse battery staple";

struct Setup {
    _sshd: SshServer,
    bastion: BastionProcess,
    _secrets: tempfile::TempDir,
    askpass: PathBuf,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn setup() -> Setup {
    let sshd = SshServer::start().expect("sshd starts");
    let secrets = tempfile::tempdir().unwrap();
    let totp = secrets.path().join("carol.totp");
    std::fs::write(&totp, TOTP_SECRET).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&totp, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = format!(
        r#"[server]
ssh_listen = "127.0.0.1:{{SSH_PORT}}"
state_dir = "{{DIR}}/state"
audit_dir = "{{DIR}}/audit"

[[users]]
name = "carol"
kind = "human"
groups = ["engineers"]
totp = "file:{totp}"
auth = ["password_totp"]

[[targets]]
name = "web1"
protocol = "ssh"
address = "127.0.0.1:{port}"
tags = {{ env = "prod" }}
upstream_user = "{user}"
credential = "bastion:key"
host_key = "{pin}"

[policies]
paths = ["{policies}"]

[recorder]
roll_max_age = "1s"
"#,
        totp = totp.display(),
        port = sshd.port(),
        user = sshd.user(),
        pin = sshd.host_key().unwrap(),
        policies = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/policies")
            .display(),
    );
    let bastion = BastionProcess::start(&config).expect("bastion starts");
    let out = bastion.cli(&["keys", "client-public"]).unwrap();
    sshd.authorize(text(&out.stdout).trim()).unwrap();
    // Answers by prompt: the files hold what the "user" types.
    let askpass = bastion.dir.path().join("askpass");
    let d = bastion.dir.path().display();
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\ncase \"$1\" in\n  *code*) cat {d}/answer-code ;;\n  *assword*) cat {d}/answer-password ;;\n  *) exit 1 ;;\nesac\n"),
    )
    .unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    Setup {
        _sshd: sshd,
        bastion,
        _secrets: secrets,
        askpass,
    }
}

/// The six-digit codes valid now (one step either side), and one that is none of them.
fn codes() -> (String, String) {
    let secret = bastion::totp::TotpSecret::from_base32(TOTP_SECRET).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let valid: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| bastion::totp::code_at(&secret, *t))
        .collect();
    let wrong = (0..10)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !valid.contains(c))
        .unwrap();
    (bastion::totp::code_at(&secret, now), wrong)
}

impl Setup {
    fn set_password(&self, password: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(tests::bastion::bastion_bin())
            .args(["users", "set-password", "carol", "--config"])
            .arg(&self.bastion.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// `ssh carol@web1@bastion 'echo hi'` answering with `password` and `code`.
    fn ssh(&self, password: &str, code: &str) -> Output {
        let d = self.bastion.dir.path();
        std::fs::write(d.join("answer-password"), format!("{password}\n")).unwrap();
        std::fs::write(d.join("answer-code"), format!("{code}\n")).unwrap();
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
                "PreferredAuthentications=keyboard-interactive",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-p",
                &self.bastion.ssh_port.to_string(),
                "carol@web1@127.0.0.1",
                "echo hi from web1",
            ])
            .env("SSH_ASKPASS", &self.askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn entries(&self, done: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
        let sql =
            "SELECT method, result, reason FROM entries WHERE identity = 'carol' ORDER BY time";
        let start = Instant::now();
        loop {
            let out = self
                .bastion
                .cli(&["audit", "query", "--format", "json", sql])
                .unwrap();
            let t = text(&out.stdout).trim().to_string();
            let rows: Vec<serde_json::Value> = if t.starts_with('[') {
                serde_json::from_str(&t).unwrap_or_default()
            } else {
                t.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            };
            if done(&rows) || start.elapsed() > Duration::from_secs(30) {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn password_and_one_time_code_log_in_and_each_wrong_half_is_refused() {
    let s = setup();
    let (code, wrong_code) = codes();

    // No password set yet: refused even with the right code.
    let unset = s.ssh(PASSWORD, &code);
    assert_eq!(unset.status.code(), Some(255), "{}", text(&unset.stderr));

    let set = s.set_password(PASSWORD);
    assert!(set.status.success(), "{}", text(&set.stderr));
    let stored =
        std::fs::read_to_string(s.bastion.dir.path().join("state/passwords/carol.scram")).unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$") && !stored.contains("horse"));
    let short = s.set_password("short");
    assert_eq!(short.status.code(), Some(2), "{}", text(&short.stderr));

    let bad_code = s.ssh(PASSWORD, &wrong_code);
    assert_eq!(bad_code.status.code(), Some(255));
    assert!(
        text(&bad_code.stderr).contains("Permission denied"),
        "{}",
        text(&bad_code.stderr)
    );
    let bad_password = s.ssh("correct horse battery stapler", &code);
    assert_eq!(bad_password.status.code(), Some(255));

    // Both right: in, and the command runs on the target.
    let ok = s.ssh(PASSWORD, &code);
    assert!(
        ok.status.success(),
        "{}\n{}",
        text(&ok.stderr),
        s.bastion.log()
    );
    assert_eq!(text(&ok.stdout).trim(), "hi from web1");
    // The code is spent: the same one again is refused.
    let replay = s.ssh(PASSWORD, &code);
    assert_eq!(replay.status.code(), Some(255));

    let rows = s.entries(|rows| rows.len() >= 5);
    let summary: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or("").to_string(),
                r["result"].as_str().unwrap_or("").to_string(),
                r["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 5, "{summary:?}");
    assert!(
        summary.iter().all(|(m, _, _)| m == "password_totp"),
        "{summary:?}"
    );
    assert!(summary[0].2.contains("has no password"), "{summary:?}");
    assert!(
        summary[1].2.contains("one-time code is not valid"),
        "{summary:?}"
    );
    assert!(summary[2].2.starts_with("wrong password"), "{summary:?}");
    assert_eq!(summary[3].1, "ok", "{summary:?}");
    assert!(summary[3].2.contains("new_source"), "{summary:?}");
    assert!(summary[3].2.contains("failure_burst"), "{summary:?}");
    assert!(summary[4].2.contains("already used"), "{summary:?}");

    // The failures counted toward lockout like any other.
    let token = s
        .bastion
        .cli(&["token", "issue", "--user", "carol", "--scope", "admin"])
        .unwrap();
    let token = text(&token.stdout).trim().to_string();
    let lockouts = s
        .bastion
        .cli(&["lockouts", "list", "--format", "json", "--token", &token])
        .unwrap();
    let list: Vec<serde_json::Value> = serde_json::from_slice(&lockouts.stdout)
        .unwrap_or_else(|_| panic!("{}", text(&lockouts.stderr)));
    let source = list
        .iter()
        .find(|l| l["key"] == "source:127.0.0.1")
        .unwrap();
    assert_eq!(source["failures"], 4, "{list:?}");
}
