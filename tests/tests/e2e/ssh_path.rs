//! The SSH path end to end (issue 7): real sshd target, real OpenSSH clients, the real `bastion`
//! binary with the example policies (`web1` env=prod, `dev-box` env=dev).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tests::bastion::BastionProcess;
use tests::ssh::{generate_key, KeyPair, SshServer};

struct Setup {
    sshd: SshServer,
    bastion: BastionProcess,
    alice: KeyPair,
    _keys: tempfile::TempDir,
}

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies")
}

fn setup_with_pin(pin: Option<&str>) -> Setup {
    let sshd = SshServer::start().expect("sshd starts");
    let keys = tempfile::tempdir().unwrap();
    let alice = generate_key(keys.path(), "alice").unwrap();
    let pin = pin
        .map(str::to_string)
        .unwrap_or_else(|| sshd.host_key().unwrap());
    let config = format!(
        r#"[server]
node = "t1"
ssh_listen = "127.0.0.1:{{SSH_PORT}}"
state_dir = "{{DIR}}/state"
audit_dir = "{{DIR}}/audit"

[[users]]
name = "alice"
kind = "human"
groups = ["engineers"]
public_keys = ["{alice}"]

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
        alice = alice.public,
        port = sshd.port(),
        user = sshd.user(),
        policies = policies_dir().display(),
    );
    let bastion = BastionProcess::start(&config).expect("bastion starts");
    let out = bastion.cli(&["keys", "client-public"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sshd.authorize(String::from_utf8_lossy(&out.stdout).trim())
        .unwrap();
    Setup {
        sshd,
        bastion,
        alice,
        _keys: keys,
    }
}

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
    fn ssh(&self, target: &str, command: &str) -> Output {
        Command::new("ssh")
            .args(client_opts(&self.alice.private))
            .args([
                "-p",
                &self.bastion.ssh_port.to_string(),
                &format!("alice@{target}@127.0.0.1"),
                command,
            ])
            .output()
            .unwrap()
    }

    fn audit(&self, sql: &str) -> String {
        // Rows reach Parquet at the next roll (1 s in these configs).
        std::thread::sleep(std::time::Duration::from_millis(2500));
        let out = self
            .bastion
            .cli(&["audit", "query", "--format", "csv", sql])
            .unwrap();
        assert!(
            out.status.success(),
            "audit query failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn ssh_exec_allowed_and_denied_with_exit_status_and_audit_rows() {
    let s = setup_with_pin(None);
    let out = s.ssh("web1", "echo hello from $(whoami); exit 3");
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}\nbastion log:\n{}",
        text(&out.stderr),
        s.bastion.log()
    );
    assert_eq!(
        text(&out.stdout).trim(),
        format!("hello from {}", s.sshd.user())
    );

    let out = s.ssh("web1", "rm -rf /tmp/bastion-nothing");
    assert_eq!(
        out.status.code(),
        Some(126),
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).starts_with("bastion: "),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("SH-1"), "{}", text(&out.stderr));

    let rows = s.audit("SELECT kind, text, decision, exit_status FROM actions ORDER BY time");
    assert!(
        rows.contains("exec,echo hello from $(whoami); exit 3,allow,3"),
        "{rows}"
    );
    assert!(rows.contains("rm -rf /tmp/bastion-nothing,deny"), "{rows}");
}

#[test]
fn a_shell_without_a_terminal_is_refused_because_its_lines_cannot_be_decided() {
    use std::io::Write;
    let s = setup_with_pin(None);
    let marker = format!("/tmp/bastion-no-pty-{}", std::process::id());
    let mut child = Command::new("ssh")
        .args(client_opts(&s.alice.private))
        .args([
            "-T",
            "-p",
            &s.bastion.ssh_port.to_string(),
            "alice@web1@127.0.0.1",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A script on stdin, as `ssh host < script` sends it: it must never run.
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("touch {marker}\nrm -rf /tmp/bastion-nothing\n").as_bytes());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("a shell without a terminal cannot be decided line by line"),
        "{}",
        text(&out.stderr)
    );
    assert!(!std::path::Path::new(&marker).exists(), "the script ran");
    let rows = s.audit("SELECT kind, text, outcome FROM actions WHERE text = 'shell'");
    assert!(rows.contains("shell,denied"), "{rows}");
}

#[test]
fn ssh_wrong_target_host_key_is_refused_with_a_clear_message() {
    let s = setup_with_pin(Some(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN+IykXWjP2Br4kkhimPBDuh+jEy+5yaT7libx0Dqoi",
    ));
    let out = s.ssh("web1", "echo should-not-run");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("host key mismatch for target web1"),
        "{}",
        text(&out.stderr)
    );
    let rows = s.audit("SELECT end_reason FROM sessions");
    assert!(rows.contains("upstream_error: host key mismatch"), "{rows}");
}
