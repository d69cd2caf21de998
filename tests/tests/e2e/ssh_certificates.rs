//! Just-in-time SSH certificates (issue 10 item 4): with `upstream_auth = "certificate"` the
//! bastion logs in to a target that trusts only its CA (`bastion ca export` in
//! `TrustedUserCAKeys`, no authorized key), with a key pair and certificate made for the session,
//! bound to the bastion's source address and valid for minutes. Real sshd, real OpenSSH client,
//! the real `bastion` binary (a debug build: it writes issued certificates where
//! `BASTION_TEST_ISSUED_CERT_DIR` says, so the test can try to reuse one).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tests::bastion::BastionProcess;
use tests::ssh::{generate_key, KeyPair, SshServer};

struct Setup {
    sshd: SshServer,
    bastion: BastionProcess,
    alice: KeyPair,
    /// Where the bastion writes the session keys and certificates it issues.
    issued: tempfile::TempDir,
    _keys: tempfile::TempDir,
}

/// sshd with an empty `authorized_keys`, trusting the bastion's CA when `trust` is set; a bastion
/// whose `web1` target uses certificates with `extra` target keys.
fn setup(extra: &str, trust: bool) -> Setup {
    let sshd = SshServer::start().expect("sshd starts");
    let keys = tempfile::tempdir().unwrap();
    let alice = generate_key(keys.path(), "alice").unwrap();
    std::fs::write(
        keys.path().join("allow.cedar"),
        "@id(\"ALLOW-all\")\npermit (principal, action, resource);\n",
    )
    .unwrap();
    let config = format!(
        r#"[server]
node = "t1"
ssh_listen = "127.0.0.1:{{SSH_PORT}}"
state_dir = "{{DIR}}/state"
audit_dir = "{{DIR}}/audit"

[[users]]
name = "alice"
kind = "human"
public_keys = ["{alice}"]

[[targets]]
name = "web1"
protocol = "ssh"
address = "127.0.0.1:{port}"
upstream_user = "{user}"
host_key = "{pin}"
upstream_auth = "certificate"
{extra}

[policies]
paths = ["{policies}"]

[recorder]
roll_max_age = "1s"
"#,
        alice = alice.public,
        port = sshd.port(),
        user = sshd.user(),
        pin = sshd.host_key().unwrap(),
        policies = keys.path().join("allow.cedar").display(),
    );
    let issued = tempfile::tempdir().unwrap();
    // Inherited by the bastion started below (each nextest test is its own process).
    std::env::set_var("BASTION_TEST_ISSUED_CERT_DIR", issued.path());
    let bastion = BastionProcess::start(&config).expect("bastion starts");
    if trust {
        let out = bastion.cli(&["ca", "export"]).unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        sshd.trust_user_ca(text(&out.stdout).trim()).unwrap();
    }
    Setup {
        sshd,
        bastion,
        alice,
        issued,
        _keys: keys,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Setup {
    fn ssh(&self, command: &str) -> Output {
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
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
                "-i",
            ])
            .arg(&self.alice.private)
            .args([
                "-p",
                &self.bastion.ssh_port.to_string(),
                "alice@web1@127.0.0.1",
                command,
            ])
            .output()
            .unwrap()
    }

    /// The one (key, certificate) pair the bastion issued.
    fn issued_pair(&self) -> (PathBuf, PathBuf) {
        let mut certs: Vec<PathBuf> = std::fs::read_dir(self.issued.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with("-cert.pub"))
            .collect();
        assert_eq!(certs.len(), 1, "{certs:?}");
        let cert = certs.remove(0);
        let key = PathBuf::from(cert.to_string_lossy().trim_end_matches("-cert.pub"));
        (key, cert)
    }

    /// `ssh` straight to sshd (not through the bastion) with a captured key and certificate.
    fn direct(&self, key: &Path, cert: &Path) -> Output {
        self.sshd
            .ssh_command_with_certificate(key, cert)
            .unwrap()
            .arg("echo direct")
            .output()
            .unwrap()
    }

    /// `bastion audit query --format json`, polled until `done` accepts the rows (guard 30 s).
    fn audit_until(
        &self,
        sql: &str,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        self.bastion.audit_until(sql, done)
    }
}

#[test]
fn a_target_trusting_only_the_bastion_ca_accepts_the_session_certificate() {
    let s = setup("", false);
    // Not trusted yet: the target refuses, and the client is told what to install.
    let out = s.ssh("echo should-not-run");
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "target web1 refused the bastion's certificate for user {}",
            s.sshd.user()
        )) && text(&out.stderr).contains("bastion ca export"),
        "{}",
        text(&out.stderr)
    );

    let ca = s.bastion.cli(&["ca", "export"]).unwrap();
    let ca_line = text(&ca.stdout).trim().to_string();
    assert!(ca_line.starts_with("ssh-ed25519 AAAA"), "{ca_line}");
    s.sshd.trust_user_ca(&ca_line).unwrap();
    let again = s.bastion.cli(&["ca", "export"]).unwrap();
    assert_eq!(text(&again.stdout).trim(), ca_line, "one CA, kept");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.bastion.dir.path().join("state/ssh/upstream_ca_ed25519"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    for _ in 0..2 {
        std::fs::remove_dir_all(s.issued.path()).ok();
        std::fs::create_dir_all(s.issued.path()).unwrap();
        let out = s.ssh("echo hello from $(whoami)");
        assert_eq!(
            out.status.code(),
            Some(0),
            "stderr: {}\nbastion log:\n{}\nsshd log:\n{}",
            text(&out.stderr),
            s.bastion.log(),
            s.sshd.log()
        );
        assert_eq!(
            text(&out.stdout).trim(),
            format!("hello from {}", s.sshd.user())
        );
    }
    let authorized = std::fs::read_to_string(s.sshd.dir().join("authorized_keys")).unwrap();
    assert_eq!(authorized, "", "no key was ever authorized");

    // sshd names the certificate: the key id carries the identity and the session.
    let log = s.sshd.log();
    let accepted: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Accepted publickey") && l.contains("ED25519-CERT"))
        .collect();
    assert_eq!(accepted.len(), 2, "{log}");
    assert!(accepted[0].contains("ID alice@web1 session "), "{log}");

    // The certificate: one principal, the bastion's address, two minutes by default.
    let (key, cert) = s.issued_pair();
    let listing = Command::new("ssh-keygen")
        .args(["-L", "-f"])
        .arg(&cert)
        .output()
        .unwrap();
    let listing = text(&listing.stdout);
    assert!(
        listing.contains("Type: ssh-ed25519-cert-v01@openssh.com user certificate"),
        "{listing}"
    );
    let principals: Vec<&str> = listing
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Principals:"))
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with("Critical Options:"))
        .map(str::trim)
        .collect();
    assert_eq!(principals, [s.sshd.user()], "{listing}");
    assert!(listing.contains("source-address 127.0.0.1/32"), "{listing}");
    assert!(
        listing.contains("permit-pty") && !listing.contains("permit-agent-forwarding"),
        "{listing}"
    );
    // Captured while valid and used from the bastion's own address, it works (the failure in
    // the next test is expiry, not a broken capture).
    let out = s.direct(&key, &cert);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // The trail: one credential row per session, before its actions.
    let rows = s.audit_until(
        "SELECT seq, kind, statement_class, objects, text, outcome, message FROM actions WHERE kind = 'upstream_credential' ORDER BY time",
        |r| r.len() >= 3,
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["outcome"], "error", "the refused first try");
    let ok = &rows[2];
    assert_eq!(ok["seq"], 0);
    assert_eq!(ok["statement_class"], "certificate");
    assert_eq!(ok["outcome"], "ok");
    assert!(
        ok["text"]
            .as_str()
            .unwrap_or_default()
            .contains("valid for 120s source-address 127.0.0.1/32"),
        "{ok}"
    );
    assert!(
        ok["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("serial "),
        "{ok}"
    );
}

#[test]
fn the_session_certificate_is_useless_after_it_expires() {
    let s = setup("certificate_valid_for = \"5s\"", true);
    let out = s.ssh("true");
    let issued_by = Instant::now();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stderr),
        s.bastion.log()
    );
    let (key, cert) = s.issued_pair();
    // valid_before is at most issue time + 5 s (whole seconds): wait past it.
    std::thread::sleep(Duration::from_secs(7).saturating_sub(issued_by.elapsed()));
    let out = s.direct(&key, &cert);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        s.sshd.log().contains("Certificate invalid: expired"),
        "{}",
        s.sshd.log()
    );
}

#[test]
fn a_certificate_bound_to_another_source_address_is_refused_by_the_target() {
    // The bastion reaches the target from 127.0.0.1; the certificate says 192.0.2.10, as it
    // would on a bastion behind NAT configured for its public address.
    let s = setup("certificate_source_address = [\"192.0.2.10/32\"]", true);
    let out = s.ssh("echo should-not-run");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("bound to source address 192.0.2.10/32"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        s.sshd.log().contains("not from a permitted source address"),
        "{}",
        s.sshd.log()
    );
}

#[test]
fn certificate_config_mistakes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.cedar"),
        "permit (principal, action, resource);\n",
    )
    .unwrap();
    let pin = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN+IykXWjP2Br4kkhimPBDuh+jEy+5yaT7libx0Dqoi";
    let cases = [
        (
            "upstream_auth = \"certificate\"\ncredential = \"bastion:key\"",
            "credential does not apply with upstream_auth = \"certificate\"",
        ),
        (
            "upstream_auth = \"certificate\"\ncertificate_source_address = [\"bastion.example\"]",
            "certificate_source_address: \"bastion.example\" is not an address or network",
        ),
        (
            "upstream_auth = \"certificate\"\ncertificate_valid_for = \"0s\"",
            "certificate_valid_for must be at least 1s",
        ),
        (
            "upstream_auth = \"ephemeral_role\"",
            "upstream_auth = \"ephemeral_role\" does not apply to ssh targets",
        ),
        (
            "credential = \"bastion:key\"\ncertificate_valid_for = \"1m\"",
            "certificate_valid_for does not apply with upstream_auth = \"static\"",
        ),
        ("", "credential is required"),
    ];
    for (i, (extra, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(
            &path,
            format!(
                "[server]\nssh_listen = \"127.0.0.1:1\"\nstate_dir = \"{d}/state\"\n\n\
                 [[targets]]\nname = \"web1\"\nprotocol = \"ssh\"\naddress = \"127.0.0.1:22\"\n\
                 upstream_user = \"deploy\"\nhost_key = \"{pin}\"\n{extra}\n\n\
                 [policies]\npaths = [\"{d}/p.cedar\"]\n",
                d = dir.path().display()
            ),
        )
        .unwrap();
        let out = tests::bastion::run_bastion(&["check", "--config", &path.display().to_string()])
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        assert!(
            err.contains(expected),
            "case {i}: expected {expected:?} in {err}"
        );
    }
}
