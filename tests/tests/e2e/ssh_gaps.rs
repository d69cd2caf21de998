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
    _sshd: SshServer,
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
        _sshd: sshd,
        bastion,
        alice,
        keys,
    }
}

/// OpenSSH client options: no config, no agent, no known_hosts, errors only.
fn client_opts(key: &Path) -> Vec<String> {
    client_opts_logging(key, "ERROR")
}

/// [`client_opts`] with another `LogLevel` (`INFO` shows refused requests and channels; ssh
/// keeps the first value given for an option, so it cannot be overridden later).
fn client_opts_logging(key: &Path, level: &str) -> Vec<String> {
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
        &format!("LogLevel={level}"),
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
        self.ssh_logging(target, "ERROR")
    }

    /// [`Setup::ssh`] with the client's `LogLevel`.
    fn ssh_logging(&self, target: &str, level: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(client_opts_logging(&self.alice.private, level))
            .args(["-p", &self.bastion.ssh_port.to_string()])
            .arg(format!("alice@{target}@127.0.0.1"))
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DISPLAY");
        c
    }

    /// `bastion audit query --format json`, polled until `done` accepts the rows (guard 30 s).
    fn audit_until(&self, sql: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        self.bastion.audit_until(sql, done)
    }
}

/// A text column of a JSON audit row ("" when null). The `actions` view shows an action
/// without an outcome row yet as outcome `unknown`.
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

/// One certificate to try: key name, signing CA, principal, `-V` validity, `-O` options.
struct CertCase {
    name: &'static str,
    ca: &'static str,
    principal: &'static str,
    validity: &'static str,
    options: &'static [&'static str],
    verdict: Verdict,
}

/// What the bastion makes of a certificate.
#[derive(PartialEq)]
enum Verdict {
    Accepted,
    /// Refused by the bastion's own check: the `entries` row names this reason.
    Refused(&'static str),
    /// Refused inside russh before any handler sees it (outside the validity window): the
    /// bastion notices russh's warning and the next attempt (the client's fallback to the bare
    /// key) writes a `certificate` row, which cannot say whether expired or not yet valid.
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
    let case = |name, ca, principal, validity, options, verdict| CertCase {
        name,
        ca,
        principal,
        validity,
        options,
        verdict,
    };
    let cases = [
        case("fresh", "ca", "alice", "-5m:+1h", &[], Verdict::Accepted),
        case(
            "expired",
            "ca",
            "alice",
            "20200101:20200102",
            &[],
            Verdict::RefusedByRussh,
        ),
        case(
            "future",
            "ca",
            "alice",
            "+1d:+2d",
            &[],
            Verdict::RefusedByRussh,
        ),
        case(
            "wrong-principal",
            "ca",
            "mallory",
            "-5m:+1h",
            &[],
            Verdict::Refused(principal_reason),
        ),
        case(
            "untrusted",
            "rogue-ca",
            "alice",
            "-5m:+1h",
            &[],
            Verdict::Refused("certificate is not signed by a trusted user CA"),
        ),
        case(
            "elsewhere",
            "ca",
            "alice",
            "-5m:+1h",
            &["source-address=10.9.9.0/24"],
            Verdict::Refused("source address 127.0.0.1 is not allowed by the certificate"),
        ),
    ];
    for CertCase {
        name,
        ca,
        principal,
        validity,
        options,
        verdict,
    } in &cases
    {
        keygen(ca_dir.path(), name);
        let cert = sign(ca_dir.path(), ca, name, principal, validity, options);
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
    let refused = cases
        .iter()
        .filter(|c| c.verdict != Verdict::Accepted)
        .count();
    let named = cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Refused(_)))
        .count();
    let rows = s.audit_until(
        "SELECT method, result, reason FROM entries ORDER BY time",
        |rows| rows.len() > 2 * refused,
    );
    let count = |method: &str, result: &str| {
        rows.iter()
            .filter(|r| str_of(r, "method") == method && str_of(r, "result") == result)
            .count()
    };
    assert_eq!(count("certificate", "ok"), 1, "{rows:#?}");
    assert_eq!(count("certificate", "fail"), refused, "{rows:#?}");
    let window = rows
        .iter()
        .filter(|r| str_of(r, "reason").starts_with("certificate expired or not yet valid"))
        .count();
    assert_eq!(window, refused - named, "{rows:#?}");
    assert_eq!(count("publickey", "fail"), refused, "{rows:#?}");
    for CertCase { name, verdict, .. } in &cases {
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

/// Bytes that do not compress or repeat in short runs (a simple LCG).
fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

/// A TCP echo server on 127.0.0.1 (each connection echoed until its EOF), for the test's life.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                let Ok(mut reader) = conn.try_clone() else {
                    return;
                };
                let _ = std::io::copy(&mut reader, &mut conn);
                let _ = conn.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// Connects to 127.0.0.1:`port` (retrying while nothing listens, 30 s guard), sends `data`,
/// half-closes, and returns everything read back until EOF (a reset counts as EOF).
fn round_trip(port: u16, data: &[u8]) -> Vec<u8> {
    let start = Instant::now();
    let mut conn = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "nothing listens on {port}: {e}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = conn.try_clone().unwrap();
    let data = data.to_vec();
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(&data);
        let _ = writer.shutdown(std::net::Shutdown::Write);
    });
    let mut back = Vec::new();
    let _ = conn.read_to_end(&mut back);
    let _ = sending.join();
    back
}

/// Kills a child we started and returns its stderr.
fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    err
}

fn forward_rows(s: &Setup, text_like: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    s.audit_until(
        &format!(
            "SELECT target, text, decision, policy_ids, outcome, bytes_in, bytes_out, message \
             FROM actions WHERE kind = 'forward' AND text LIKE '{text_like}' ORDER BY time"
        ),
        done,
    )
}

#[test]
fn remote_forward_runs_on_dev_with_bytes_counted_and_is_refused_on_prod() {
    let s = setup("", "");
    let echo = echo_server();
    let data = payload(256 * 1024);

    let listen = os::free_port();
    let child = s
        .ssh("dev-box")
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"])
        .arg(format!("127.0.0.1:{listen}:127.0.0.1:{echo}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A program on the target connects to the port the target listens on; the bytes come back
    // through the client's echo service.
    let back = round_trip(listen, &data);
    let stderr = stop(child);
    assert!(
        back == data,
        "echo through -R differs ({} bytes back): {stderr}",
        back.len()
    );

    let refused_port = os::free_port();
    let out = s
        .ssh("web1")
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"])
        .arg(format!("127.0.0.1:{refused_port}:127.0.0.1:{echo}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "remote port forwarding failed for listen port {refused_port}"
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(os::port_closed(refused_port), "the target listens anyway");

    let rows = forward_rows(&s, "tcpip-forward %", |rows| {
        rows.len() == 2 && rows.iter().all(|r| str_of(r, "outcome") != "unknown")
    });
    let dev = rows
        .iter()
        .find(|r| str_of(r, "target") == "dev-box")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(
        str_of(dev, "text"),
        format!("tcpip-forward 127.0.0.1:{listen}")
    );
    assert_eq!(str_of(dev, "decision"), "allow");
    assert_eq!(str_of(dev, "outcome"), "ok", "{dev:#?}");
    assert_eq!(dev["bytes_in"], data.len(), "{dev:#?}");
    assert_eq!(dev["bytes_out"], data.len(), "{dev:#?}");
    assert_eq!(str_of(dev, "message"), "1 connection(s) forwarded");
    let prod = rows
        .iter()
        .find(|r| str_of(r, "target") == "web1")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(
        str_of(prod, "text"),
        format!("tcpip-forward 127.0.0.1:{refused_port}")
    );
    assert_eq!(str_of(prod, "decision"), "deny");
    assert!(
        prod["policy_ids"].to_string().contains("FWD-prod"),
        "{prod:#?}"
    );
    assert!(
        str_of(prod, "message").contains("port forwarding is not allowed"),
        "{prod:#?}"
    );
}

#[test]
fn local_forward_counts_bytes_on_dev_and_is_refused_with_the_ssh_reason_on_prod() {
    let s = setup("", "");
    let echo = echo_server();
    let data = payload(300 * 1024);
    let mut texts = Vec::new();
    for (target, allowed) in [("dev-box", true), ("web1", false)] {
        let local = os::free_port();
        let child = s
            .ssh_logging(target, "INFO")
            .args(["-N", "-L"])
            .arg(format!("127.0.0.1:{local}:127.0.0.1:{echo}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let back = round_trip(local, &data);
        let stderr = stop(child);
        if allowed {
            assert!(
                back == data,
                "{target}: {} bytes back: {stderr}",
                back.len()
            );
        } else {
            assert!(back.is_empty(), "{target}: the forward carried data");
            assert!(
                stderr.contains("open failed: administratively prohibited"),
                "{target}: {stderr}"
            );
        }
        texts.push(format!("direct-tcpip 127.0.0.1:{echo}"));
    }
    let rows = forward_rows(&s, "direct-tcpip %", |rows| {
        rows.len() == 2 && rows.iter().all(|r| str_of(r, "outcome") != "unknown")
    });
    let dev = rows
        .iter()
        .find(|r| str_of(r, "target") == "dev-box")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(str_of(dev, "text"), texts[0]);
    assert_eq!(
        (str_of(dev, "decision"), str_of(dev, "outcome")),
        ("allow", "ok")
    );
    assert_eq!(dev["bytes_in"], data.len(), "{dev:#?}");
    assert_eq!(dev["bytes_out"], data.len(), "{dev:#?}");
    let prod = rows
        .iter()
        .find(|r| str_of(r, "target") == "web1")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(str_of(prod, "decision"), "deny");
    assert!(
        prod["policy_ids"].to_string().contains("FWD-prod"),
        "{prod:#?}"
    );
}

/// An `approve`-scoped API token for dana, once the admin socket answers.
fn approver_token(s: &Setup) -> String {
    let socket = s.bastion.dir.path().join("state/admin.sock");
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "admin socket never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = s
        .bastion
        .cli(&["token", "issue", "--user", "dana", "--scope", "approve"])
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// A running `ssh` whose stderr said `bastion: waiting for approval <id>`.
struct Held {
    child: Child,
    id: String,
    stderr: std::thread::JoinHandle<String>,
}

/// Starts alice's `command` on `target` and waits (60 s guard) for the approval line.
fn start_held(s: &Setup, target: &str, command: &str) -> Held {
    let mut child = s
        .ssh(target)
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        let mut lines = BufReader::new(err);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(rest) = line.trim().strip_prefix("bastion: waiting for approval ") {
                let _ = tx.send(rest.to_string());
            }
            all.push_str(&line);
            line.clear();
        }
        all
    });
    let id = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(id) => id,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "no approval line; stderr: {}\n{}",
                stderr.join().unwrap_or_default(),
                s.bastion.log()
            );
        }
    };
    Held { child, id, stderr }
}

impl Held {
    fn finish(mut self) -> (Option<i32>, String, String) {
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let status = self.child.wait().unwrap();
        (status.code(), out, self.stderr.join().unwrap_or_default())
    }
}

#[test]
fn a_stepped_up_exec_waits_then_runs_when_approved_and_exits_126_when_denied() {
    let s = setup("", "");
    let token = approver_token(&s);
    // SH-5 (dynamic code on prod) steps up.
    let approved = "eval echo approved-$((6*7))";
    let held = start_held(&s, "web1", approved);
    let list = s
        .bastion
        .cli(&["approvals", "list", "--format", "json", "--token", &token])
        .unwrap();
    assert!(
        text(&list.stdout).contains(&held.id),
        "{}",
        text(&list.stdout)
    );
    assert!(
        text(&list.stdout).contains(approved),
        "{}",
        text(&list.stdout)
    );
    let out = s
        .bastion
        .cli(&["approvals", "approve", &held.id, "--token", &token])
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (code, stdout, stderr) = held.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "approved-42", "{stderr}");

    let denied = "eval echo denied-$((1+1))";
    let held = start_held(&s, "web1", denied);
    let out = s
        .bastion
        .cli(&[
            "approvals",
            "deny",
            &held.id,
            "--reason",
            "not during the freeze",
            "--token",
            &token,
        ])
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (code, stdout, stderr) = held.finish();
    assert_eq!(code, Some(126), "{stderr}");
    assert!(stdout.is_empty(), "the denied command ran: {stdout}");
    assert!(
        stderr.contains("denied by dana: not during the freeze"),
        "{stderr}"
    );

    // The actions view joins each outcome row: an approved action shows its approval and its
    // final outcome.
    let rows = s.audit_until(
        "SELECT text, decision, approver, outcome, exit_status, message FROM actions \
         WHERE kind = 'exec' ORDER BY time",
        |rows| {
            rows.iter().any(|r| str_of(r, "outcome") == "ok")
                && rows.iter().any(|r| str_of(r, "outcome") == "denied")
        },
    );
    let has = |text: &str, outcome: &str| {
        rows.iter()
            .find(|r| str_of(r, "text") == text && str_of(r, "outcome") == outcome)
            .unwrap_or_else(|| panic!("no {outcome} row for {text}: {rows:#?}"))
    };
    assert!(
        rows.iter().all(|r| str_of(r, "decision") == "step_up"),
        "{rows:#?}"
    );
    assert_eq!(str_of(has(approved, "approved"), "approver"), "dana");
    assert_eq!(has(approved, "ok")["exit_status"], 0);
    assert!(
        str_of(has(denied, "denied"), "message").contains("denied by dana: not during the freeze"),
        "{rows:#?}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| str_of(r, "text") == denied && str_of(r, "outcome") == "ok"),
        "{rows:#?}"
    );
}

#[test]
fn a_target_that_is_down_is_a_clear_error_and_a_sessions_row() {
    let s = setup("", "");
    let out = s
        .ssh("gone")
        .arg("echo never")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("bastion: cannot reach target gone at 127.0.0.1:"),
        "{}",
        text(&out.stderr)
    );
    let rows = s.audit_until(
        "SELECT identity, target, end_reason FROM sessions WHERE target = 'gone'",
        |rows| rows.iter().any(|r| !r["end_reason"].is_null()),
    );
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert!(
        str_of(&rows[0], "end_reason").starts_with("upstream_error: cannot reach target gone"),
        "{rows:#?}"
    );
    // The bastion is fine: the next session works.
    let out = s.ssh("dev-box").arg("echo alive").output().unwrap();
    assert_eq!(text(&out.stdout).trim(), "alive", "{}", text(&out.stderr));
}

/// A multiplexing master connection (`ssh -M -N`) through the bastion; returns it once the
/// control socket answers.
#[allow(clippy::zombie_processes)] // the caller gets the child and stops it
fn mux_master(s: &Setup, socket: &Path) -> Child {
    let master = s
        .ssh("dev-box")
        .args(["-M", "-N", "-S"])
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let check = s
            .ssh("dev-box")
            .arg("-S")
            .arg(socket)
            .args(["-O", "check"])
            .output()
            .unwrap();
        if check.status.success() {
            return master;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let master_said = stop(master);
            panic!(
                "mux master never ready: {}{master_said}",
                text(&check.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A client of the multiplexing master: it opens a channel on the master's connection. Its own
/// key is one the bastion does not know, so its fallback to a connection of its own (what ssh
/// does when the master's channel is refused) cannot succeed.
fn mux_client(s: &Setup, socket: &Path, command: &str) -> Command {
    let stranger = s.keys.path().join("stranger");
    if !stranger.exists() {
        generate_key(s.keys.path(), "stranger").unwrap();
    }
    let mut c = Command::new("ssh");
    c.args(client_opts(&stranger))
        .arg("-S")
        .arg(socket)
        .args(["-p", &s.bastion.ssh_port.to_string()])
        .args(["alice@dev-box@127.0.0.1", command])
        .stdin(Stdio::null());
    c
}

/// A session channel on the master running `command`, once its first line arrived.
/// Its stdin is a pipe the caller holds open, so the master does not close the channel when
/// the target's EOF arrives: the target closes first (see the report on the exec relay).
fn mux_session(s: &Setup, socket: &Path, command: &str) -> (Child, String) {
    let mut child = mux_client(s, socket, command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    let _ = out.read_line(&mut first);
    // Keep reading: the master writes to this pipe until the session ends.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (child, first.trim().to_string())
}

#[test]
fn the_channel_after_max_channels_per_connection_is_refused_and_the_connection_lives_on() {
    let s = setup("", "[limits]\nmax_channels_per_connection = 2\n");
    let socket = s.keys.path().join("mux");
    let master = mux_master(&s, &socket);
    // Two sessions that run until their marker file appears (at most two minutes).
    let until = |marker: &str| {
        let path = s.keys.path().join(marker);
        let command = format!(
            "echo {marker}; i=0; while [ ! -e {p} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done",
            p = path.display()
        );
        (path, command)
    };
    let (release_one, command) = until("one");
    let (mut one, first) = mux_session(&s, &socket, &command);
    assert_eq!(first, "one");
    let (release_two, command) = until("two");
    let (two, first) = mux_session(&s, &socket, &command);
    assert_eq!(first, "two");
    // The third channel on the same connection is refused.
    let out = mux_client(&s, &socket, "echo three").output().unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("Session open refused by peer"),
        "{}",
        text(&out.stderr)
    );
    // When one ends, its place is free on the same connection.
    let held_stdin = one.stdin.take();
    std::fs::write(&release_one, "").unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = one.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "session one never ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(held_stdin);
    assert!(status.success(), "{status:?}");
    let start = Instant::now();
    loop {
        let out = mux_client(&s, &socket, "echo four").output().unwrap();
        if text(&out.stdout).trim() == "four" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no channel after one closed: {}\n{}",
            text(&out.stderr),
            s.bastion.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::write(&release_two, "").unwrap();
    stop(two);
    stop(master);
    // All of it was one session.
    let rows = s.audit_until("SELECT session_id FROM sessions", |rows| !rows.is_empty());
    assert_eq!(rows.len(), 1, "{rows:#?}");
}

#[test]
fn multiplexed_execs_keep_their_exit_status_and_free_their_channel() {
    // An OpenSSH multiplexing master closes a client's channel as soon as the target's EOF
    // arrives: the exit status must come before that EOF, and the channel must be freed even
    // though the target's close reply is lost. With two channels allowed, six sequential
    // execs only succeed if every one gives its slot back.
    let s = setup("", "[limits]\nmax_channels_per_connection = 2\n");
    let socket = s.keys.path().join("mux-status");
    let master = mux_master(&s, &socket);
    for i in 0..6 {
        // Output closed well before the exit: the target's EOF comes first, then the status.
        let command = format!("echo run-{i}; exec >&- 2>&-; sleep 0.3; exit 7");
        let out = mux_client(&s, &socket, &command).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(7),
            "run {i}: stdout {:?} stderr {}\n{}",
            text(&out.stdout),
            text(&out.stderr),
            s.bastion.log()
        );
        assert_eq!(text(&out.stdout).trim(), format!("run-{i}"));
    }
    stop(master);
    let rows = s.audit_until(
        "SELECT exit_status FROM actions WHERE text LIKE 'echo run-%'",
        |rows| rows.len() >= 6,
    );
    assert!(rows.iter().all(|r| r["exit_status"] == 7), "{rows:#?}");
}

#[test]
fn x11_agent_and_stream_local_requests_are_refused_and_the_session_still_works() {
    let s = setup("", "");
    let agent_socket = s.keys.path().join("agent.sock");
    let agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&agent_socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !agent_socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ssh-agent did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let local = os::free_port();
    let mut child = s
        .ssh_logging("dev-box", "INFO")
        .args(["-A", "-Y", "-L"])
        .arg(format!("127.0.0.1:{local}:/tmp/bastion-no-such.sock"))
        .arg("cat; echo \"agent=${SSH_AUTH_SOCK:-none} display=${DISPLAY:-none}\"")
        .env("SSH_AUTH_SOCK", &agent_socket)
        .env("DISPLAY", ":77")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A stream-local forward (direct-streamlocal@openssh.com) is refused: nothing comes back.
    let back = round_trip(local, b"hello socket");
    assert!(back.is_empty(), "{back:?}");
    // The session is unharmed.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"still-here\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let _ = stop(agent);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        text(&out.stdout),
        "still-here\nagent=none display=none\n",
        "{stderr}"
    );
    assert!(stderr.contains("X11 forwarding request failed"), "{stderr}");
    assert!(!s.bastion.log().contains("panicked"), "{}", s.bastion.log());
}

/// A raw `sftp` subsystem channel (`ssh -s ... sftp`) to dev-box: sends INIT and reads the
/// target's VERSION, then sends `packet` and returns everything read until the channel ends.
fn sftp_after_init(s: &Setup, packet: &[u8]) -> Vec<u8> {
    let mut child = s
        .ssh("dev-box")
        .args(["-s", "sftp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(&[0, 0, 0, 5, 1, 0, 0, 0, 3]).unwrap();
    let mut len = [0u8; 4];
    stdout.read_exact(&mut len).unwrap();
    let mut version = vec![0u8; u32::from_be_bytes(len) as usize];
    stdout.read_exact(&mut version).unwrap();
    assert_eq!(
        version.first(),
        Some(&2),
        "not a VERSION reply: {version:?}"
    );
    stdin.write_all(packet).unwrap();
    // The bastion ends the channel: stdout reaches EOF with stdin still open.
    let mut rest = Vec::new();
    let _ = stdout.read_to_end(&mut rest);
    drop(stdin);
    let _ = child.wait();
    rest
}

/// Decodes one SFTP STATUS packet: (id, code, message).
fn status_packet(bytes: &[u8]) -> (u32, u32, String) {
    let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert!(bytes.len() >= 17, "no STATUS packet: {bytes:?}");
    assert_eq!(bytes[4], 101, "not a STATUS packet: {bytes:?}");
    let msg_len = u32_at(13) as usize;
    let message = String::from_utf8_lossy(&bytes[17..17 + msg_len]).into_owned();
    (u32_at(5), u32_at(9), message)
}

#[test]
fn malformed_sftp_packets_end_the_channel_with_a_bad_message_status() {
    let s = setup("", "");
    const BAD_MESSAGE: u32 = 5;
    // An unknown packet type.
    let reply = sftp_after_init(&s, &[0, 0, 0, 5, 250, 0, 0, 0, 7]);
    let (id, code, message) = status_packet(&reply);
    assert_eq!((id, code), (7, BAD_MESSAGE), "{message}");
    assert!(
        message.contains("bastion: malformed sftp request: unknown sftp request packet type 250"),
        "{message}"
    );
    // An OPEN whose path claims 1000 bytes inside a 12-byte packet.
    let mut lying = vec![0, 0, 0, 12, 3, 0, 0, 0, 9, 0, 0, 3, 232];
    lying.extend_from_slice(b"abc");
    let (id, code, message) = status_packet(&sftp_after_init(&s, &lying));
    assert_eq!((id, code), (9, BAD_MESSAGE), "{message}");
    assert!(message.contains("truncated sftp"), "{message}");
    // A length field far over the limit, refused before the body is awaited.
    let (id, code, message) = status_packet(&sftp_after_init(&s, &[0x00, 0xF0, 0, 0, 3, 0, 0]));
    assert_eq!((id, code), (0, BAD_MESSAGE), "{message}");
    assert!(message.contains("over the limit"), "{message}");
    // Nothing else was hurt.
    let out = s.ssh("dev-box").arg("echo alive").output().unwrap();
    assert_eq!(text(&out.stdout).trim(), "alive", "{}", text(&out.stderr));
}

/// The pid of this test's `bastion serve` (found by its config path in /proc).
fn bastion_pid(s: &Setup) -> u32 {
    let config = s.bastion.config.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<_> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "serve") && args.contains(&config) {
            return pid;
        }
    }
    panic!("no bastion process for {config}");
}

/// Resident set size in KiB (`VmRSS` of /proc/<pid>/status).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

fn admin_token(s: &Setup) -> String {
    approver_token(s);
    let out = s
        .bastion
        .cli(&["token", "issue", "--user", "dana", "--scope", "admin"])
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[test]
fn a_client_that_stops_reading_stalls_the_target_not_the_bastion_memory_and_kill_ends_it() {
    const OUTPUT: u64 = 200_000_000;
    let s = setup("", "");
    let token = admin_token(&s);
    let pid = bastion_pid(&s);
    let out = s.ssh("dev-box").arg("echo warm").output().unwrap();
    assert_eq!(text(&out.stdout).trim(), "warm", "{}", text(&out.stderr));
    let baseline = rss_kib(pid);
    let mut child = s
        .ssh("dev-box")
        .arg(format!("head -c {OUTPUT} /dev/zero"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The client's stdout is never read. Watch what the bastion has read from the target until
    // it stops moving (or the target finished), noting the bastion's memory meanwhile.
    let sessions = || -> Vec<Value> {
        let out = s
            .bastion
            .cli(&["sessions", "list", "--format", "json", "--token", &token])
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    let start = Instant::now();
    let (mut last, mut still, mut peak) = (0u64, 0, baseline);
    let (session_id, read_from_target) = loop {
        std::thread::sleep(Duration::from_millis(500));
        peak = peak.max(rss_kib(pid));
        let list = sessions();
        let live = list.iter().find(|x| str_of(x, "target") == "dev-box");
        let (id, out) = match live {
            Some(l) => (
                str_of(l, "id").to_string(),
                l["bytes_out"].as_u64().unwrap_or(0),
            ),
            None => (String::new(), last),
        };
        still = if out == last && out > 0 { still + 1 } else { 0 };
        last = out;
        if still >= 4 || out >= OUTPUT || start.elapsed() > Duration::from_secs(120) {
            break (id, out);
        }
    };
    eprintln!(
        "bastion RSS: {baseline} KiB before, peak {peak} KiB while the client did not read; \
         {read_from_target} of {OUTPUT} bytes read from the target"
    );
    assert!(
        read_from_target < OUTPUT / 4,
        "the bastion kept reading from the target ({read_from_target} bytes)"
    );
    assert!(
        peak < baseline + 64 * 1024,
        "bastion RSS grew from {baseline} KiB to {peak} KiB"
    );
    assert!(child.try_wait().unwrap().is_none(), "ssh ended early");
    // An admin ends the stuck session; the client is told why.
    let out = s
        .bastion
        .cli(&["sessions", "kill", &session_id, "--token", &token])
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    drop(child.stdout.take());
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains("bastion: session killed: killed by dana"),
        "{stderr}"
    );
    let rows = s.audit_until(
        &format!("SELECT end_reason FROM sessions WHERE session_id = '{session_id}'"),
        |rows| rows.iter().any(|r| !r["end_reason"].is_null()),
    );
    assert!(
        str_of(&rows[0], "end_reason").starts_with("killed: killed by dana"),
        "{rows:#?}"
    );
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `sftp -b` as alice on `target` with the batch `lines`.
fn sftp_batch(s: &Setup, target: &str, lines: &str) -> Command {
    let batch = s.keys.path().join(format!("batch-{target}"));
    std::fs::write(&batch, lines).unwrap();
    let mut c = Command::new("sftp");
    c.args(client_opts(&s.alice.private))
        .args(["-P", &s.bastion.ssh_port.to_string(), "-b"])
        .arg(&batch)
        .arg(format!("alice@{target}@127.0.0.1"))
        .stdin(Stdio::null());
    c
}

/// Classic scp (`scp -O`) as alice from `from` to `to`.
fn scp_legacy(s: &Setup, from: &str, to: &str) -> Output {
    Command::new("scp")
        .args(client_opts(&s.alice.private))
        .args(["-O", "-P", &s.bastion.ssh_port.to_string(), from, to])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn sftp_and_classic_scp_are_one_row_per_file_with_bytes_and_sha256_and_a_refused_rm() {
    let s = setup("", "");
    let token = approver_token(&s);
    let local = s.keys.path().join("upload.bin");
    let data = payload(3 * 1024 * 1024 + 17);
    std::fs::write(&local, &data).unwrap();
    let sha = sha256_hex(&local);
    let remote = format!(
        "/tmp/bastion-gaps-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ u128::from(s.bastion.ssh_port)
    );
    let fetched = s.keys.path().join("fetched.bin");
    let out = sftp_batch(
        &s,
        "dev-box",
        &format!(
            "put {l} {remote}\nget {remote} {f}\nrename {remote} {remote}.2\nrm {remote}.2\nput {l} {remote}.keep\n",
            l = local.display(),
            f = fetched.display()
        ),
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(std::fs::read(&fetched).unwrap() == data, "sftp get differs");
    assert!(!Path::new(&format!("{remote}.2")).exists());

    let back = s.keys.path().join("back.bin");
    let out = scp_legacy(
        &s,
        &local.display().to_string(),
        &format!("alice@dev-box@127.0.0.1:{remote}.scp"),
    );
    assert!(out.status.success(), "scp up: {}", text(&out.stderr));
    let out = scp_legacy(
        &s,
        &format!("alice@dev-box@127.0.0.1:{remote}.scp"),
        &back.display().to_string(),
    );
    assert!(out.status.success(), "scp down: {}", text(&out.stderr));
    assert!(
        std::fs::read(&back).unwrap() == data,
        "scp round trip differs"
    );
    let _ = std::fs::remove_file(format!("{remote}.scp"));

    // On prod a deletion steps up; dana denies it and the file stays.
    let rm = sftp_batch(&s, "web1", &format!("rm {remote}.keep\n"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let id = loop {
        let out = s
            .bastion
            .cli(&["approvals", "list", "--format", "json", "--token", &token])
            .unwrap();
        let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(r) = list.first() {
            assert_eq!(str_of(r, "text"), format!("remove {remote}.keep"));
            break str_of(r, "id").to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no approval request"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = s
        .bastion
        .cli(&[
            "approvals",
            "deny",
            &id,
            "--reason",
            "keep it",
            "--token",
            &token,
        ])
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = rm.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        Path::new(&format!("{remote}.keep")).exists(),
        "denied rm removed the file"
    );
    let _ = std::fs::remove_file(format!("{remote}.keep"));

    let rows = s.audit_until(
        "SELECT target, text, decision, outcome, exit_status, bytes_in, bytes_out, message \
         FROM actions WHERE kind = 'sftp' ORDER BY time",
        |rows| {
            rows.iter().any(|r| str_of(r, "outcome") == "denied")
                && rows
                    .iter()
                    .filter(|r| str_of(r, "text").starts_with("scp "))
                    .all(|r| str_of(r, "outcome") != "unknown")
        },
    );
    let one = |text: &str| -> &Value {
        let found: Vec<_> = rows.iter().filter(|r| str_of(r, "text") == text).collect();
        assert_eq!(found.len(), 1, "{text}: {rows:#?}");
        found[0]
    };
    let size = data.len() as u64;
    let put = one(&format!("open-write {remote}"));
    assert_eq!(
        (str_of(put, "decision"), str_of(put, "outcome")),
        ("allow", "ok")
    );
    assert_eq!(put["bytes_in"].as_u64(), Some(size), "{put:#?}");
    assert_eq!(str_of(put, "message"), format!("sha256={sha}"));
    let get = one(&format!("open-read {remote}"));
    assert_eq!(get["bytes_out"].as_u64(), Some(size), "{get:#?}");
    assert_eq!(str_of(get, "message"), format!("sha256={sha}"));
    for text in [
        format!("rename-from {remote}"),
        format!("rename-to {remote}.2"),
        format!("remove {remote}.2"),
    ] {
        assert_eq!(str_of(one(&text), "outcome"), "ok", "{text}");
    }
    let up = one(&format!("scp -t {remote}.scp"));
    assert_eq!(up["exit_status"], 0, "{up:#?}");
    assert!(up["bytes_in"].as_u64().unwrap_or(0) >= size, "{up:#?}");
    let down = one(&format!("scp -f {remote}.scp"));
    assert!(down["bytes_out"].as_u64().unwrap_or(0) >= size, "{down:#?}");
    let refused = rows
        .iter()
        .find(|r| {
            str_of(r, "text") == format!("remove {remote}.keep") && str_of(r, "target") == "web1"
        })
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(str_of(refused, "decision"), "step_up");
    assert_eq!(str_of(refused, "outcome"), "denied");
    assert!(
        str_of(refused, "message").contains("keep it"),
        "{refused:#?}"
    );
}

#[test]
fn a_second_session_over_max_sessions_per_identity_is_refused_with_the_reason() {
    let s = setup("", "[limits]\nmax_sessions_per_identity = 1\n");
    let release = s.keys.path().join("release");
    let mut first = s
        .ssh("dev-box")
        .arg(format!(
            "echo first; i=0; while [ ! -e {p} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done",
            p = release.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let _ = BufReader::new(first.stdout.take().unwrap()).read_line(&mut line);
    assert_eq!(line.trim(), "first");
    let out = s.ssh("web1").arg("echo second").output().unwrap();
    std::fs::write(&release, "").unwrap();
    let _ = first.wait();
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(
            "bastion: identity alice already has 1 sessions open (limits.max_sessions_per_identity)"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_idle_session_is_closed_and_its_row_says_why() {
    let s = setup("", "[limits]\nidle_timeout = \"2s\"\n");
    let out = s
        .ssh("dev-box")
        .arg("sleep 60; echo not-idle-enough")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stdout));
    let rows = s.audit_until("SELECT end_reason FROM sessions", |rows| {
        rows.iter().any(|r| !r["end_reason"].is_null())
    });
    assert_eq!(
        str_of(&rows[0], "end_reason"),
        "idle_timeout",
        "{rows:#?}\nclient: {}",
        text(&out.stderr)
    );
}

#[test]
fn an_exit_signal_is_relayed_and_recorded() {
    let s = setup("", "");
    let out = s
        .ssh("dev-box")
        .arg("echo before; kill -TERM $$")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout).trim(), "before");
    // OpenSSH exits 255 when the remote command was killed by a signal.
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    let rows = s.audit_until(
        "SELECT text, outcome, exit_status, message FROM actions WHERE kind = 'exec'",
        |rows| rows.iter().any(|r| str_of(r, "outcome") != "unknown"),
    );
    assert_eq!(str_of(&rows[0], "outcome"), "error", "{rows:#?}");
    assert!(
        str_of(&rows[0], "message").contains("killed by signal TERM"),
        "{rows:#?}"
    );
}

/// A TCP server on 127.0.0.1 for one connection: reads it to its EOF, answers `bye`, and once
/// `go` says so keeps writing (up to a minute) without ever closing the connection itself.
fn holding_server(go: std::sync::mpsc::Receiver<()>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
        let _ = conn.write_all(b"bye\n");
        let _ = go.recv_timeout(Duration::from_secs(60));
        // A write to a peer that has gone succeeds once; the client notices at the next.
        for _ in 0..300 {
            if conn.write_all(b"more\n").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    port
}

#[test]
fn a_forward_the_client_closes_first_is_recorded_and_frees_its_channel() {
    let s = setup("", "[limits]\nmax_channels_per_connection = 1\n");
    let (go, went) = std::sync::mpsc::channel();
    let holder = holding_server(went);
    let echo = echo_server();
    let (to_holder, to_echo) = (os::free_port(), os::free_port());
    let ssh = s
        .ssh_logging("dev-box", "DEBUG2")
        .args(["-N", "-L"])
        .arg(format!("127.0.0.1:{to_holder}:127.0.0.1:{holder}"))
        .arg("-L")
        .arg(format!("127.0.0.1:{to_echo}:127.0.0.1:{echo}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The local program sends a line, reads the answer and goes away; the far side stays open
    // and writes again, so the client is the one that closes the channel.
    let start = Instant::now();
    let mut conn = loop {
        match TcpStream::connect(("127.0.0.1", to_holder)) {
            Ok(c) => break c,
            Err(e) => {
                assert!(start.elapsed() < Duration::from_secs(30), "{e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    conn.write_all(b"hello\n").unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = [0u8; 4];
    conn.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"bye\n");
    drop(conn);
    go.send(()).unwrap();
    // The forward's outcome is recorded while the connection is still up ...
    let text_like = format!("direct-tcpip 127.0.0.1:{holder}");
    let rows = forward_rows(&s, &text_like, |rows| {
        rows.iter().any(|r| str_of(r, "outcome") != "unknown")
    });
    assert_eq!(rows.len(), 1, "{rows:#?}");
    if str_of(&rows[0], "outcome") != "ok" {
        panic!("{rows:#?}\n{}", stop(ssh));
    }
    assert_eq!(rows[0]["bytes_in"], 6, "{rows:#?}");
    // ... and its channel's place is free again for the next one.
    let data = payload(64 * 1024);
    let back = round_trip(to_echo, &data);
    let stderr = stop(ssh);
    assert!(
        back == data,
        "second forward: {} bytes back; {stderr}",
        back.len()
    );
}
