//! Account-entry gaps left after issues 3/7/9, end to end with the real OpenSSH client, a real
//! sshd target, a real PostgreSQL and psql:
//! - one one-time code serves one purpose once: a code that logged a person in over SSH cannot
//!   also unlock a step-up on PostgreSQL (one replay check per identity, not one per listener);
//! - keys an ssh client offers before asking for a password (every client does) are recorded
//!   but do not count toward lockout when the identity's `auth` forbids them, while wrong
//!   passwords still do;
//! - a user certificate outside its validity window, refused inside russh before the bastion's
//!   handler sees it, still leaves a `certificate` row in `entries` saying why.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tests::bastion::BastionProcess;
use tests::pg_fixture::{PgPath, TOTP_SECRET};
use tests::ssh::SshServer;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `bastion users set-password NAME`, the password on stdin.
fn set_password(bastion: &BastionProcess, name: &str, password: &str) {
    use std::io::Write;
    let mut child = Command::new(tests::bastion::bastion_bin())
        .args(["users", "set-password", name, "--config"])
        .arg(&bastion.config)
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
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// An SSH_ASKPASS script answering "Password:" and "One-time code:" from files in `dir`.
fn askpass(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("askpass");
    let d = dir.display();
    std::fs::write(
        &path,
        format!("#!/bin/sh\ncase \"$1\" in\n  *code*) cat {d}/answer-code ;;\n  *assword*) cat {d}/answer-password ;;\n  *) exit 1 ;;\nesac\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    path
}

/// `ssh -p PORT USER@127.0.0.1 'echo hi from web1'` answering keyboard-interactive with
/// `password` and `code`, offering the private keys in `keys` first (as an agent would).
fn ssh(bastion: &BastionProcess, user: &str, keys: &[&Path], password: &str, code: &str) -> Output {
    let d = bastion.dir.path();
    let askpass = askpass(d);
    std::fs::write(d.join("answer-password"), format!("{password}\n")).unwrap();
    std::fs::write(d.join("answer-code"), format!("{code}\n")).unwrap();
    let mut c = Command::new("ssh");
    c.args([
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "NumberOfPasswordPrompts=1",
    ]);
    if keys.is_empty() {
        c.args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=keyboard-interactive",
        ]);
    } else {
        c.args([
            "-o",
            "PreferredAuthentications=publickey,keyboard-interactive",
        ]);
        for k in keys {
            c.arg("-i").arg(k);
        }
    }
    c.args(["-p", &bastion.ssh_port.to_string()])
        .arg(format!("{user}@127.0.0.1"))
        .arg("echo hi from web1")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `(method, result, reason)` of `identity`'s `entries` rows in time order, polled until `done`.
fn entries(
    bastion: &BastionProcess,
    identity: &str,
    done: impl Fn(&[(String, String, String)]) -> bool,
) -> Vec<(String, String, String)> {
    let sql = format!(
        "SELECT method, result, reason FROM entries WHERE identity = '{identity}' ORDER BY time"
    );
    let start = Instant::now();
    loop {
        let out = bastion
            .cli(&["audit", "query", "--format", "json", &sql])
            .unwrap();
        let t = text(&out.stdout).trim().to_string();
        let rows: Vec<serde_json::Value> = if t.starts_with('[') {
            serde_json::from_str(&t).unwrap_or_default()
        } else {
            t.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        };
        let rows: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| {
                let f = |k: &str| r[k].as_str().unwrap_or("").to_string();
                (f("method"), f("result"), f("reason"))
            })
            .collect();
        if done(&rows) || start.elapsed() > Duration::from_secs(30) {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `[[targets]]` entry of an sshd target named web1.
fn web1(sshd: &SshServer) -> String {
    format!(
        "[[targets]]\nname = \"web1\"\nprotocol = \"ssh\"\naddress = \"127.0.0.1:{port}\"\n\
         tags = {{ env = \"dev\" }}\nupstream_user = \"{user}\"\ncredential = \"bastion:key\"\nhost_key = \"{pin}\"\n\n",
        port = sshd.port(),
        user = sshd.user(),
        pin = sshd.host_key().unwrap(),
    )
}

#[test]
fn a_code_that_logged_in_over_ssh_cannot_also_unlock_a_postgres_step_up() {
    let mut p = PgPath::start("").unwrap();
    let sshd = SshServer::start().expect("sshd starts");
    // The same bastion also listens for SSH, with an ssh target next to the databases.
    p.bastion.stop().unwrap();
    let config = std::fs::read_to_string(&p.bastion.config).unwrap();
    let port = tests::os::free_port();
    let config = config.replacen(
        "[server]\n",
        &format!("[server]\nssh_listen = \"127.0.0.1:{port}\"\n"),
        1,
    );
    let config = config.replacen("[policies]", &format!("{}[policies]", web1(&sshd)), 1);
    std::fs::write(&p.bastion.config, config).unwrap();
    p.bastion.ssh_port = port;
    p.bastion.spawn().unwrap();
    let out = p.bastion.cli(&["keys", "client-public"]).unwrap();
    sshd.authorize(text(&out.stdout).trim()).unwrap();
    set_password(&p.bastion, "dana", "dana ssh password");

    // The code an authenticator shows now logs dana in over SSH...
    let code = tests::pg_fixture::totp_code(TOTP_SECRET);
    let login = ssh(&p.bastion, "dana@web1", &[], "dana ssh password", &code);
    assert!(
        login.status.success(),
        "{}\n{}",
        text(&login.stderr),
        p.bastion.log()
    );
    assert_eq!(text(&login.stdout).trim(), "hi from web1");

    // ...and the same code, still inside its window, does not unlock payroll on PostgreSQL.
    let set = format!("SET bastion.otp = '{code}'");
    let step_up = p.psql(
        "dana@prod-db",
        "shop",
        &["-At", "-c", &set, "-c", "SELECT count(*) FROM payroll"],
    );
    assert_eq!(
        step_up.status.code(),
        Some(1),
        "the replayed code was accepted: {}",
        text(&step_up.stdout)
    );
    assert!(
        text(&step_up.stderr).contains("one-time code rejected: one-time code was already used"),
        "{}",
        text(&step_up.stderr)
    );
    let rows = p
        .audit("SELECT decision FROM actions WHERE identity = 'dana' AND kind = 'otp'")
        .unwrap();
    assert!(
        serde_json::to_string(&rows).unwrap().contains("deny"),
        "{rows:?}"
    );
}

#[test]
fn keys_offered_before_the_password_do_not_lock_a_password_only_user_out() {
    let sshd = SshServer::start().expect("sshd starts");
    let secrets = tempfile::tempdir().unwrap();
    let totp = secrets.path().join("carol.totp");
    std::fs::write(&totp, TOTP_SECRET).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&totp, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = format!(
        "[server]\nssh_listen = \"127.0.0.1:{{SSH_PORT}}\"\nstate_dir = \"{{DIR}}/state\"\naudit_dir = \"{{DIR}}/audit\"\n\n\
         [limits]\nlockout_after = 2\nlockout_for = \"10m\"\n\n\
         [[users]]\nname = \"carol\"\nkind = \"human\"\ngroups = [\"engineers\"]\ntotp = \"file:{totp}\"\nauth = [\"password_totp\"]\n\n\
         {web1}[policies]\npaths = [\"{policies}\"]\n\n[recorder]\nroll_max_age = \"1s\"\n",
        totp = totp.display(),
        web1 = web1(&sshd),
        policies = tests::pg_fixture::repo_root()
            .join("examples/policies")
            .display(),
    );
    let bastion = BastionProcess::start(&config).expect("bastion starts");
    let out = bastion.cli(&["keys", "client-public"]).unwrap();
    sshd.authorize(text(&out.stdout).trim()).unwrap();
    set_password(&bastion, "carol", "carol ssh password");
    let keys = tempfile::tempdir().unwrap();
    let k1 = tests::ssh::generate_key(keys.path(), "laptop").unwrap();
    let k2 = tests::ssh::generate_key(keys.path(), "work").unwrap();

    // Two keys offered first (more than lockout_after), then password + code: in.
    let code = tests::pg_fixture::totp_code(TOTP_SECRET);
    let keys_then_password = ssh(
        &bastion,
        "carol@web1",
        &[&k1.private, &k2.private],
        "carol ssh password",
        &code,
    );
    assert!(
        keys_then_password.status.success(),
        "{}\n{}",
        text(&keys_then_password.stderr),
        bastion.log()
    );
    assert_eq!(text(&keys_then_password.stdout).trim(), "hi from web1");
    let rows = entries(&bastion, "carol", |r| r.len() >= 3);
    let keys_rows: Vec<_> = rows.iter().filter(|r| r.0 == "publickey").collect();
    assert_eq!(keys_rows.len(), 2, "{rows:?}");
    for (_, result, reason) in &keys_rows {
        assert_eq!(result, "fail", "{rows:?}");
        assert!(
            reason.contains("publickey is not among the identity's auth methods")
                && reason.contains("not counted toward lockout"),
            "{rows:?}"
        );
    }
    assert!(
        rows.iter().any(|r| r.0 == "password_totp" && r.1 == "ok"),
        "{rows:?}"
    );

    // Wrong passwords still count: two of them lock carol out, and the next attempt, keys and
    // all, is refused without being checked.
    for _ in 0..2 {
        let wrong = ssh(&bastion, "carol@web1", &[], "not her password", "000000");
        assert_eq!(wrong.status.code(), Some(255), "{}", text(&wrong.stderr));
    }
    let locked = ssh(&bastion, "carol@web1", &[], "carol ssh password", &code);
    assert_eq!(locked.status.code(), Some(255), "{}", text(&locked.stderr));
    let rows = entries(&bastion, "carol", |r| r.iter().any(|r| r.1 == "locked"));
    let wrong: Vec<_> = rows
        .iter()
        .filter(|r| r.0 == "password_totp" && r.2.starts_with("wrong password"))
        .collect();
    assert_eq!(wrong.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.0 == "password_totp" && r.1 == "locked"),
        "{rows:?}"
    );
}

/// Signs `<dir>/<key>.pub` with `<dir>/ca` for alice, valid `validity`; the certificate path.
fn sign(dir: &Path, key: &str, validity: &str) -> PathBuf {
    tests::os::run(
        Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(dir.join("ca"))
            .args(["-I", key, "-n", "alice", "-V", validity])
            .arg(dir.join(format!("{key}.pub"))),
    )
    .unwrap();
    dir.join(format!("{key}-cert.pub"))
}

#[test]
fn a_certificate_outside_its_window_is_an_entries_row_saying_so() {
    let sshd = SshServer::start().expect("sshd starts");
    let keys = tempfile::tempdir().unwrap();
    let ca = tests::ssh::generate_key(keys.path(), "ca").unwrap();
    std::fs::write(keys.path().join("trusted.pub"), format!("{}\n", ca.public)).unwrap();
    let config = format!(
        "[server]\nssh_listen = \"127.0.0.1:{{SSH_PORT}}\"\nstate_dir = \"{{DIR}}/state\"\naudit_dir = \"{{DIR}}/audit\"\n\
         ssh_user_ca = \"{trusted}\"\n\n[limits]\nlockout_after = 2\n\n\
         [[users]]\nname = \"alice\"\nkind = \"human\"\ngroups = [\"engineers\"]\n\n\
         {web1}[policies]\npaths = [\"{policies}\"]\n\n[recorder]\nroll_max_age = \"1s\"\n",
        trusted = keys.path().join("trusted.pub").display(),
        web1 = web1(&sshd),
        policies = tests::pg_fixture::repo_root()
            .join("examples/policies")
            .display(),
    );
    let bastion = BastionProcess::start(&config).expect("bastion starts");
    let out = bastion.cli(&["keys", "client-public"]).unwrap();
    sshd.authorize(text(&out.stdout).trim()).unwrap();
    let login = |key: &str, validity: &str| {
        let private = tests::ssh::generate_key(keys.path(), key).unwrap().private;
        let cert = sign(keys.path(), key, validity);
        Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
            ])
            .arg(format!("CertificateFile={}", cert.display()))
            .arg("-i")
            .arg(private)
            .args(["-p", &bastion.ssh_port.to_string(), "alice@web1@127.0.0.1"])
            .arg(format!("echo cert-{key}"))
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // Two refused certificates (more than lockout_after), then a good one still gets in.
    for (key, validity) in [("expired", "20200101:20200102"), ("future", "+1d:+2d")] {
        let out = login(key, validity);
        assert_eq!(out.status.code(), Some(255), "{key}: {}", text(&out.stdout));
        assert!(
            text(&out.stderr).contains("Permission denied"),
            "{key}: {}",
            text(&out.stderr)
        );
    }
    let fresh = login("fresh", "-5m:+1h");
    assert!(
        fresh.status.success(),
        "{}\n{}",
        text(&fresh.stderr),
        bastion.log()
    );
    assert_eq!(text(&fresh.stdout).trim(), "cert-fresh");

    let rows = entries(&bastion, "alice", |r| r.len() >= 5);
    let window: Vec<_> = rows
        .iter()
        .filter(|r| r.0 == "certificate" && r.1 == "fail")
        .collect();
    assert_eq!(window.len(), 2, "{rows:#?}");
    for (_, _, reason) in &window {
        assert!(
            reason.starts_with("certificate expired or not yet valid")
                && reason.contains("not counted toward lockout"),
            "{rows:#?}"
        );
    }
    // Each refused client also fell back to the bare key (not configured, not counted).
    assert_eq!(
        rows.iter()
            .filter(|r| r.0 == "publickey" && r.1 == "fail")
            .count(),
        2,
        "{rows:#?}"
    );
    assert!(
        rows.iter().any(|r| r.0 == "certificate" && r.1 == "ok"),
        "{rows:#?}"
    );
}
