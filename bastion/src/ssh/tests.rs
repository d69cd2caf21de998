//! In-process end-to-end tests of the SSH path: a real OpenSSH `sshd` as the target, the real
//! `ssh`/`scp`/`sftp` clients, the bastion's SSH listener on 127.0.0.1:0 with the example
//! policies (`web1` is env=prod, `dev-box` env=dev). Skipped when sshd is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Sshd {
    child: std::process::Child,
    port: u16,
    host_key: String,
    dir: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn login_user() -> String {
    // SAFETY-free check: sshd running as root logs in the unprivileged test user.
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        "bastion-ssh".into()
    } else {
        std::env::var("USER").unwrap_or_else(|_| "root".into())
    }
}

fn start_sshd(dir: &Path, authorized: &str) -> Sshd {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.join("host_key")));
    std::fs::write(dir.join("authorized_keys"), format!("{authorized}\n")).unwrap();
    std::fs::set_permissions(
        dir.join("authorized_keys"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let port = free_port();
    let user = login_user();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nAllowUsers {user}\nAllowTcpForwarding yes\nX11Forwarding no\n\
         LogLevel VERBOSE\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
        d = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), config).unwrap();
    let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let host = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
    let host_key = host
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    Sshd {
        child,
        port,
        host_key,
        dir: dir.to_path_buf(),
    }
}

struct Bastion {
    port: u16,
    key: PathBuf,
    _sshd: Sshd,
    shutdown: tokio_util::sync::CancellationToken,
    dir: tempfile::TempDir,
}

impl Bastion {
    async fn start(host_key_override: Option<&str>) -> Option<Bastion> {
        Bastion::start_with(host_key_override, None).await
    }

    async fn start_with(host_key_override: Option<&str>, user_ca: Option<&str>) -> Option<Bastion> {
        if !Path::new("/usr/sbin/sshd").exists() {
            eprintln!("sshd not installed: skipped");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let client_key = keys::load_or_generate(
            &keys::ssh_state_dir(&state).join(keys::CLIENT_KEY_FILE),
            "bastion",
        )
        .unwrap();
        let sshd = start_sshd(
            &dir.path().join("sshd"),
            &keys::public_line(client_key.public_key()),
        );
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.path().join("alice")));
        let alice_pub = std::fs::read_to_string(dir.path().join("alice.pub")).unwrap();
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies");
        let pin = host_key_override
            .map(str::to_string)
            .unwrap_or(sshd.host_key.clone());
        let toml = format!(
            r#"[server]
node = "t1"
ssh_listen = "127.0.0.1:1"
state_dir = "{state}"
audit_dir = "{audit}"

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
"#,
            state = state.display(),
            audit = dir.path().join("audit").display(),
            alice = alice_pub.trim(),
            port = sshd.port,
            user = login_user(),
            policies = policies.display(),
        );
        let config_path = dir.path().join("bastion.toml");
        std::fs::write(&config_path, toml).unwrap();
        let config = Arc::new(crate::config::load(&config_path).unwrap());
        if let Some(ca) = user_ca {
            std::fs::write(
                keys::ssh_state_dir(&state).join(keys::USER_CA_FILE),
                format!("{ca}\n"),
            )
            .unwrap();
        }
        let (recorder, task) =
            recorder::Recorder::open(crate::state::recorder_options(&config).unwrap())
                .await
                .unwrap();
        std::mem::forget(task);
        let engine = Arc::new(crate::state::load_engine(&config).unwrap());
        let services = SshServices::new(
            config.clone(),
            Arc::new(crate::sessions::SessionRegistry::default()),
            Arc::new(crate::entry::Lockouts::new(5, Duration::from_secs(60))),
            recorder,
            Arc::new(move || engine.clone()),
            None,
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(run_listener(
            listener,
            Arc::new(services),
            Arc::new(tokio::sync::Semaphore::new(64)),
            shutdown.clone(),
            tokio_util::task::TaskTracker::new(),
        ));
        Some(Bastion {
            port,
            key: dir.path().join("alice"),
            _sshd: sshd,
            shutdown,
            dir,
        })
    }

    fn ssh_args(&self) -> Vec<String> {
        vec![
            "-F".into(),
            "/dev/null".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-i".into(),
            self.key.display().to_string(),
        ]
    }

    async fn ssh(&self, target: &str, command: &str, stdin: &[u8]) -> Output {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(self.ssh_args())
            .args([
                "-p",
                &self.port.to_string(),
                &format!("alice@{target}@127.0.0.1"),
                command,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = input.write_all(&data).await;
        });
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("ssh finished")
            .unwrap()
    }
}

impl Drop for Bastion {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_allowed_runs_on_the_target_and_relays_stdin_and_exit_status() {
    let Some(b) = Bastion::start(None).await else {
        return;
    };
    let out = b
        .ssh("web1", "echo hello from $(whoami); exit 3", b"")
        .await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}\nsshd: {}",
        text(&out.stderr),
        std::fs::read_to_string(b._sshd.dir.join("sshd.log")).unwrap_or_default()
    );
    assert_eq!(
        text(&out.stdout).trim(),
        format!("hello from {}", login_user())
    );
    let out = b.ssh("web1", "wc -c", &vec![b'x'; 3_000_000]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "3000000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_denied_prints_the_policy_on_stderr_and_exits_126_without_running() {
    let Some(b) = Bastion::start(None).await else {
        return;
    };
    let marker = b.dir.path().join("sshd/marker");
    let out = b
        .ssh(
            "web1",
            &format!("touch {}; rm -rf /tmp/nothing-here", marker.display()),
            b"",
        )
        .await;
    assert_eq!(
        out.status.code(),
        Some(126),
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("bastion: "),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("SH-1"), "{}", text(&out.stderr));
    assert!(!marker.exists(), "the denied line ran on the target");
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_target_host_key_is_refused_with_a_clear_message() {
    let Some(b) = Bastion::start(Some(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN+IykXWjP2Br4kkhimPBDuh+jEy+5yaT7libx0Dqoi",
    ))
    .await
    else {
        return;
    };
    let out = b.ssh("web1", "echo should-not-run", b"").await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("host key mismatch for target web1"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_identity_and_bad_route_are_refused() {
    let Some(b) = Bastion::start(None).await else {
        return;
    };
    for user in ["mallory@web1", "alice", "alice@nowhere"] {
        let out = tokio::process::Command::new("ssh")
            .args(b.ssh_args())
            .args([
                "-p",
                &b.port.to_string(),
                &format!("{user}@127.0.0.1"),
                "true",
            ])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "{user}");
        assert!(
            text(&out.stderr).contains("Permission denied"),
            "{user}: {}",
            text(&out.stderr)
        );
    }
}

fn tool(program: &str, b: &Bastion, port_flag: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(program);
    c.args(b.ssh_args()).args([port_flag, &b.port.to_string()]);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

async fn output(mut c: tokio::process::Command) -> Output {
    tokio::time::timeout(Duration::from_secs(120), c.output())
        .await
        .expect("finished in time")
        .unwrap()
}

fn big_file(dir: &Path, name: &str, mib: usize) -> PathBuf {
    use rand::RngCore;
    let mut data = vec![0u8; mib * 1024 * 1024];
    rand::thread_rng().fill_bytes(&mut data);
    let p = dir.join(name);
    std::fs::write(&p, &data).unwrap();
    p
}

fn remote_tmp(name: &str) -> String {
    format!(
        "/tmp/bastion-test-{}-{name}",
        crate::sessions::new_session_id()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_both_modes_up_and_down_50_mib_on_dev() {
    let Some(b) = Bastion::start(None).await else {
        return;
    };
    let local = big_file(b.dir.path(), "big.bin", 50);
    for (mode, flag) in [("sftp", None), ("legacy", Some("-O"))] {
        let remote = remote_tmp(mode);
        let mut up = tool("scp", &b, "-P");
        up.args(flag)
            .arg(&local)
            .arg(format!("alice@dev-box@127.0.0.1:{remote}"));
        let out = output(up).await;
        assert!(out.status.success(), "{mode} upload: {}", text(&out.stderr));
        let back = b.dir.path().join(format!("back-{mode}.bin"));
        let mut down = tool("scp", &b, "-P");
        down.args(flag)
            .arg(format!("alice@dev-box@127.0.0.1:{remote}"))
            .arg(&back);
        let out = output(down).await;
        assert!(
            out.status.success(),
            "{mode} download: {}",
            text(&out.stderr)
        );
        assert!(
            std::fs::read(&back).unwrap() == std::fs::read(&local).unwrap(),
            "{mode}: contents differ"
        );
        let _ = std::fs::remove_file(&remote);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_batch_put_get_rename_and_a_refused_rm_on_prod() {
    let Some(b) = Bastion::start(None).await else {
        return;
    };
    let local = big_file(b.dir.path(), "f.bin", 1);
    let remote = remote_tmp("sftp");
    let batch = b.dir.path().join("batch");
    let fetched = b.dir.path().join("fetched.bin");
    std::fs::write(
        &batch,
        format!(
            "put {l} {remote}\nrename {remote} {remote}.2\nget {remote}.2 {f}\n",
            l = local.display(),
            f = fetched.display()
        ),
    )
    .unwrap();
    let mut c = tool("sftp", &b, "-P");
    c.arg("-b").arg(&batch).arg("alice@dev-box@127.0.0.1");
    let out = output(c).await;
    assert!(
        out.status.success(),
        "dev batch: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(std::fs::read(&fetched).unwrap() == std::fs::read(&local).unwrap());
    // On prod, deletions need approval; with no approver they are refused, and the file stays.
    std::fs::write(
        &batch,
        format!("get {remote}.2 {f}\nrm {remote}.2\n", f = fetched.display()),
    )
    .unwrap();
    let mut c = tool("sftp", &b, "-P");
    c.arg("-b").arg(&batch).arg("alice@web1@127.0.0.1");
    let out = output(c).await;
    assert!(!out.status.success());
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("Permission denied") || all.contains("bastion:"),
        "{all}"
    );
    assert!(
        Path::new(&format!("{remote}.2")).exists(),
        "refused rm removed the file"
    );
    let _ = std::fs::remove_file(format!("{remote}.2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_forward_allowed_on_dev_and_refused_on_prod() {
    let Some(b) = Bastion::start(None).await else {
        return;
    };
    for (target, allowed) in [("dev-box", true), ("web1", false)] {
        let local_port = free_port();
        let mut c = tokio::process::Command::new("ssh");
        c.args(b.ssh_args())
            .args([
                "-p",
                &b.port.to_string(),
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
            ])
            .arg("-L")
            .arg(format!("{local_port}:127.0.0.1:{}", b._sshd.port))
            .arg(format!("alice@{target}@127.0.0.1"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = c.spawn().unwrap();
        let mut banner = String::new();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", local_port)).await {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 64];
                let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                    .await
                    .unwrap_or(Ok(0))
                    .unwrap_or(0);
                banner = String::from_utf8_lossy(&buf[..n]).into_owned();
                break;
            }
        }
        let _ = child.kill().await;
        let stderr = {
            use tokio::io::AsyncReadExt;
            let mut e = String::new();
            if let Some(mut s) = child.stderr.take() {
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), s.read_to_string(&mut e)).await;
            }
            e
        };
        if allowed {
            assert!(
                banner.starts_with("SSH-2.0-OpenSSH"),
                "{target}: {banner:?} {stderr}"
            );
        } else {
            assert!(
                !banner.starts_with("SSH-2.0"),
                "{target}: forward went through: {stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_login_with_a_trusted_ca_and_an_expired_one_refused() {
    let ca_dir = tempfile::tempdir().unwrap();
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(ca_dir.path().join("ca")));
    let ca_pub = std::fs::read_to_string(ca_dir.path().join("ca.pub")).unwrap();
    let Some(b) = Bastion::start_with(None, Some(ca_pub.trim())).await else {
        return;
    };
    for (name, validity, ok) in [
        ("fresh", "-5m:+1h", true),
        ("expired", "20200101:20200102", false),
        ("other", "-5m:+1h", false),
    ] {
        let key = ca_dir.path().join(name);
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key));
        let principal = if name == "other" { "mallory" } else { "alice" };
        run(Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(ca_dir.path().join("ca"))
            .args(["-I", name, "-n", principal, "-V", validity])
            .arg(key.with_extension("pub")));
        let out = output({
            let mut c = tokio::process::Command::new("ssh");
            c.args([
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
                "-i",
            ])
            .arg(&key)
            .arg("-o")
            .arg(format!("CertificateFile={}-cert.pub", key.display()))
            .args([
                "-p",
                &b.port.to_string(),
                "alice@web1@127.0.0.1",
                "echo cert-ok",
            ])
            .stdin(Stdio::null());
            c
        })
        .await;
        if ok {
            assert!(out.status.success(), "{name}: {}", text(&out.stderr));
            assert_eq!(text(&out.stdout).trim(), "cert-ok");
        } else {
            assert_eq!(out.status.code(), Some(255), "{name}");
            assert!(
                text(&out.stderr).contains("Permission denied"),
                "{name}: {}",
                text(&out.stderr)
            );
        }
    }
}
