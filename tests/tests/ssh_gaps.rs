//! The SSH path's remaining checks from issue 7, end to end with a real sshd target, stock
//! OpenSSH clients and the real `bastion` binary (example policies: `web1` is env=prod,
//! `dev-box` env=dev, `gone` points at a closed port): remote forwards (`ssh -R`), exec step-up
//! approved and denied from the CLI, every refused user certificate named in `entries`, the
//! `ssh_user_ca` key, a client that stops reading, refused X11 / agent / stream-local requests,
//! malformed SFTP packets, the channel limit, a target that is down, per-file SFTP and scp rows.
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tests::bastion::BastionProcess;
use tests::os;
use tests::ssh::{generate_key, KeyPair, SshServer};

struct Setup {
    sshd: SshServer,
    bastion: BastionProcess,
    alice: KeyPair,
    keys: tempfile::TempDir,
}

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// sshd, and a bastion whose `[server]` gets `server_extra` and whose file ends with `tail`
/// (extra tables such as `[limits]`). Users: alice and dana (engineers).
fn setup(server_extra: &str, tail: &str) -> Setup {
    let sshd = SshServer::start().expect("sshd starts");
    let keys = tempfile::tempdir().unwrap();
    os::open_dir(keys.path()).unwrap();
    let alice = generate_key(keys.path(), "alice").unwrap();
    let dana = generate_key(keys.path(), "dana").unwrap();
    let server_extra = server_extra.replace("{KEYS}", &keys.path().display().to_string());
    let config = format!(
        r#"[server]
node = "t1"
ssh_listen = "127.0.0.1:{{SSH_PORT}}"
state_dir = "{{DIR}}/state"
audit_dir = "{{DIR}}/audit"
{server_extra}

[[users]]
name = "alice"
kind = "human"
groups = ["engineers"]
public_keys = ["{alice}"]

[[users]]
name = "dana"
kind = "human"
groups = ["engineers"]
public_keys = ["{dana}"]

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

[[targets]]
name = "gone"
protocol = "ssh"
address = "127.0.0.1:{closed}"
tags = {{ env = "dev" }}
upstream_user = "{user}"
credential = "bastion:key"
host_key = "{pin}"

[policies]
paths = ["{policies}"]

[recorder]
roll_max_age = "1s"

{tail}
"#,
        alice = alice.public,
        dana = dana.public,
        port = sshd.port(),
        closed = os::free_port(),
        user = sshd.user(),
        pin = sshd.host_key().unwrap(),
        policies = policies_dir().display(),
    );
    let bastion = BastionProcess::start(&config).expect("bastion starts");
    let out = bastion.cli(&["keys", "client-public"]).unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    sshd.authorize(text(&out.stdout).trim()).unwrap();
    Setup {
        sshd,
        bastion,
        alice,
        keys,
    }
}

/// OpenSSH client options: no config, no agent, no known_hosts, errors only.
fn client_opts(key: &Path) -> Vec<String> {
    [
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=ERROR",
        "-i",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([key.display().to_string()])
    .collect()
}

impl Setup {
    /// `ssh` as alice to `target` through the bastion; the caller adds options and a command.
    fn ssh(&self, target: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(client_opts(&self.alice.private))
            .args(["-p", &self.bastion.ssh_port.to_string()])
            .arg(format!("alice@{target}@127.0.0.1"))
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DISPLAY");
        c
    }

    /// `bastion audit query --format json`, polled until `done` accepts the rows (guard 30 s).
    fn audit_until(&self, sql: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let out = self
                .bastion
                .cli(&["audit", "query", "--format", "json", sql])
                .unwrap();
            let t = text(&out.stdout).trim().to_string();
            let rows: Vec<Value> = if t.starts_with('[') {
                serde_json::from_str(&t).unwrap_or_default()
            } else {
                t.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            };
            if done(&rows) || start.elapsed() > Duration::from_secs(30) {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn str_of<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key].as_str().unwrap_or_default()
}

/// Makes a user CA (or any key) with `ssh-keygen` in `dir`; returns its public line.
fn keygen(dir: &Path, name: &str) -> String {
    generate_key(dir, name).unwrap().public
}

/// Signs `<dir>/<key>.pub` with `<dir>/<ca>` for `principal`, valid `validity`, with extra
/// `ssh-keygen -O` options; returns the certificate path.
fn sign(
    dir: &Path,
    ca: &str,
    key: &str,
    principal: &str,
    validity: &str,
    opts: &[&str],
) -> PathBuf {
    let mut c = Command::new("ssh-keygen");
    c.args(["-q", "-s"])
        .arg(dir.join(ca))
        .args(["-I", key, "-n", principal, "-V", validity]);
    for o in opts {
        c.args(["-O", o]);
    }
    os::run(c.arg(dir.join(format!("{key}.pub")))).unwrap();
    dir.join(format!("{key}-cert.pub"))
}

/// What the bastion makes of a certificate.
#[derive(PartialEq)]
enum Verdict {
    Accepted,
    /// Refused by the bastion's own check: the `entries` row names this reason.
    Refused(&'static str),
    /// Refused inside russh before any handler sees it (outside the validity window): the
    /// attempt is still an `entries` row — the client's fallback to the bare key — but russh
    /// gives the bastion no chance to name the reason.
    RefusedByRussh,
}

#[test]
fn every_refused_user_certificate_is_an_entries_row_naming_the_reason() {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = keygen(ca_dir.path(), "ca");
    keygen(ca_dir.path(), "rogue-ca");
    // Two CAs in the configured file: the second one signs nothing here.
    let other = keygen(ca_dir.path(), "other-ca");
    std::fs::write(
        ca_dir.path().join("trusted.pub"),
        format!("# user CAs\n{ca}\n{other}\n"),
    )
    .unwrap();
    let s = setup(
        &format!(
            "ssh_user_ca = \"{}\"",
            ca_dir.path().join("trusted.pub").display()
        ),
        "[limits]\nlockout_after = 100\n",
    );
    let principal_reason = "certificate principals [\"mallory\"] do not include alice";
    let cases: [(&str, &str, &str, &str, &[&str], Verdict); 6] = [
        ("fresh", "ca", "alice", "-5m:+1h", &[], Verdict::Accepted),
        (
            "expired",
            "ca",
            "alice",
            "20200101:20200102",
            &[],
            Verdict::RefusedByRussh,
        ),
        (
            "future",
            "ca",
            "alice",
            "+1d:+2d",
            &[],
            Verdict::RefusedByRussh,
        ),
        (
            "wrong-principal",
            "ca",
            "mallory",
            "-5m:+1h",
            &[],
            Verdict::Refused(principal_reason),
        ),
        (
            "untrusted",
            "rogue-ca",
            "alice",
            "-5m:+1h",
            &[],
            Verdict::Refused("certificate is not signed by a trusted user CA"),
        ),
        (
            "elsewhere",
            "ca",
            "alice",
            "-5m:+1h",
            &["source-address=10.9.9.0/24"],
            Verdict::Refused("source address 127.0.0.1 is not allowed by the certificate"),
        ),
    ];
    for (name, ca, principal, validity, opts, verdict) in &cases {
        keygen(ca_dir.path(), name);
        let cert = sign(ca_dir.path(), ca, name, principal, validity, opts);
        let out = Command::new("ssh")
            .args(client_opts(&ca_dir.path().join(name)))
            .arg("-o")
            .arg(format!("CertificateFile={}", cert.display()))
            .args(["-p", &s.bastion.ssh_port.to_string()])
            .args(["alice@web1@127.0.0.1", &format!("echo cert-{name}")])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if *verdict == Verdict::Accepted {
            assert!(out.status.success(), "{name}: {}", text(&out.stderr));
            assert_eq!(text(&out.stdout).trim(), "cert-fresh");
        } else {
            assert_eq!(
                out.status.code(),
                Some(255),
                "{name}: {}",
                text(&out.stdout)
            );
            assert!(
                text(&out.stderr).contains("Permission denied"),
                "{name}: {}",
                text(&out.stderr)
            );
        }
    }
    // Each refused connection also falls back to the bare key, one `publickey` row each.
    let refused = cases.iter().filter(|c| c.5 != Verdict::Accepted).count();
    let named = cases
        .iter()
        .filter(|c| matches!(c.5, Verdict::Refused(_)))
        .count();
    let rows = s.audit_until(
        "SELECT method, result, reason FROM entries ORDER BY time",
        |rows| rows.len() >= 1 + named + refused,
    );
    let count = |method: &str, result: &str| {
        rows.iter()
            .filter(|r| str_of(r, "method") == method && str_of(r, "result") == result)
            .count()
    };
    assert_eq!(count("certificate", "ok"), 1, "{rows:#?}");
    assert_eq!(count("certificate", "fail"), named, "{rows:#?}");
    assert_eq!(count("publickey", "fail"), refused, "{rows:#?}");
    for (name, .., verdict) in &cases {
        if let Verdict::Refused(reason) = verdict {
            assert!(
                rows.iter().any(|r| str_of(r, "method") == "certificate"
                    && str_of(r, "result") == "fail"
                    && str_of(r, "reason").starts_with(reason)),
                "{name}: no entries row saying {reason:?}: {rows:#?}"
            );
        }
    }
}

#[test]
fn bastion_check_validates_the_ssh_user_ca_file() {
    let s = setup("", "");
    let base = std::fs::read_to_string(&s.bastion.config).unwrap();
    let check = |ca_file_text: Option<&str>| {
        let path = s.keys.path().join("cas.pub");
        let _ = std::fs::remove_file(&path);
        if let Some(t) = ca_file_text {
            std::fs::write(&path, t).unwrap();
        }
        let config = s.keys.path().join("check.toml");
        let body = base.replacen(
            "[server]\n",
            &format!("[server]\nssh_user_ca = \"{}\"\n", path.display()),
            1,
        );
        std::fs::write(&config, body).unwrap();
        let out =
            tests::bastion::run_bastion(&["check", "--config", &config.display().to_string()])
                .unwrap();
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    };
    let good = keygen(s.keys.path(), "ca");
    let (code, all) = check(Some(&format!("# the CA\n{good}\n")));
    assert_eq!(code, Some(0), "{all}");
    let (code, all) = check(Some(&format!("{good}\nssh-ed25519 not-base64\n")));
    assert_ne!(code, Some(0), "{all}");
    assert!(
        all.contains("server.ssh_user_ca") && all.contains("line 2"),
        "{all}"
    );
    let (code, all) = check(Some("# nothing\n"));
    assert_ne!(code, Some(0), "{all}");
    assert!(all.contains("holds no public key"), "{all}");
    let (code, all) = check(None);
    assert_ne!(code, Some(0), "{all}");
    assert!(all.contains("server.ssh_user_ca: cannot read"), "{all}");
}
