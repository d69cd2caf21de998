//! `bastion check` / `bastion serve` on bad configs: exit status 2 and one message that names
//! the file, the line and the culprit. Runs the real binary.
use std::path::Path;
use tests::bastion::run_bastion;

/// A valid config with one user, one postgres target and one policy file, in `dir`.
fn valid(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(
        dir.join("policies/base.cedar"),
        "permit(principal, action, resource);\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("alice.scram"),
        "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy\n",
    )
    .unwrap();
    std::fs::write(dir.join("pg.password"), "upstream-secret\n").unwrap();
    let ca = tests::pg::TestPki::generate().unwrap();
    std::fs::write(dir.join("ca.crt"), ca.ca_pem).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in ["alice.scram", "pg.password"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    r#"[server]
postgres_listen = "127.0.0.1:0"
state_dir = "state"
audit_dir = "audit"

[[users]]
name = "alice"
kind = "human"
groups = ["engineers"]
scram_verifier = "file:alice.scram"

[[targets]]
name = "prod-db"
protocol = "postgres"
address = "127.0.0.1:5432"
tags = { env = "prod" }
upstream_user = "bastion"
credential = "file:pg.password"
tls_root = "ca.crt"

[policies]
paths = ["policies"]
"#
    .to_string()
}

/// Runs `bastion <cmd> --config` on `body` written into a fresh dir.
fn run(cmd: &str, body: impl FnOnce(&Path, String) -> String) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let text = body(dir.path(), valid(dir.path()));
    let path = dir.path().join("bastion.toml");
    std::fs::write(&path, text).unwrap();
    let out = run_bastion(&[cmd, "--config", path.to_str().unwrap()]).unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(body: impl FnOnce(&Path, String) -> String) -> (i32, String, String) {
    run("check", body)
}

#[test]
fn check_prints_the_ssh_host_key_fingerprint_it_will_serve() {
    let dir = tempfile::tempdir().unwrap();
    let text = valid(dir.path()).replace(
        "postgres_listen = \"127.0.0.1:0\"",
        "postgres_listen = \"127.0.0.1:0\"\nssh_listen = \"127.0.0.1:0\"",
    );
    let path = dir.path().join("bastion.toml");
    std::fs::write(&path, text).unwrap();
    let config = path.to_str().unwrap();
    let out = run_bastion(&["check", "--config", config]).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ssh host key: "))
        .unwrap_or_else(|| panic!("no fingerprint line: {stdout}"));
    assert!(line.starts_with("SHA256:"), "{line}");
    // The same key `keys host-fingerprint` reports, and the same on the next check.
    let keys = run_bastion(&["keys", "host-fingerprint", "--config", config]).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&keys.stdout).lines().next(),
        Some(line)
    );
    let again = run_bastion(&["check", "--config", config]).unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains(line));
}

#[test]
fn valid_config_passes_check() {
    let (code, out, err) = check(|_, c| c);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(
        out.contains("ok (1 users, 1 targets, 1 policy files, 1 policies)"),
        "{out}"
    );
}

#[test]
fn unknown_key_names_line_and_key() {
    let (code, _, err) =
        check(|_, c| c.replace("kind = \"human\"", "kind = \"human\"\nshoe_size = 42"));
    assert_eq!(code, 2);
    assert!(err.contains("bastion.toml:9:1"), "{err}");
    assert!(err.contains("unknown field `shoe_size`"), "{err}");
}

#[test]
fn wrong_type_names_line() {
    let (code, _, err) =
        check(|_, c| c.replace("groups = [\"engineers\"]", "groups = \"engineers\""));
    assert_eq!(code, 2);
    assert!(err.contains("bastion.toml:9:"), "{err}");
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn unknown_kind_lists_valid_choices() {
    let (code, _, err) = check(|_, c| c.replace("kind = \"human\"", "kind = \"robot\""));
    assert_eq!(code, 2);
    assert!(err.contains("bastion.toml:8:8: user alice: unknown kind \"robot\"; valid kinds: human, service, agent"), "{err}");
}

#[test]
fn duplicate_user_is_refused() {
    let (code, _, err) = check(|_, c| {
        c.replace(
            "[[targets]]",
            "[[users]]\nname = \"alice\"\nkind = \"agent\"\n\n[[targets]]",
        )
    });
    assert_eq!(code, 2);
    assert!(err.contains("duplicate user name \"alice\""), "{err}");
    assert!(err.contains("bastion.toml:13:"), "{err}");
}

#[test]
fn duplicate_target_is_refused() {
    let (code, _, err) = check(|_, c| {
        let t = c
            .split("[[targets]]")
            .nth(1)
            .unwrap()
            .split("[policies]")
            .next()
            .unwrap()
            .to_string();
        c.replace("[policies]", &format!("[[targets]]{t}[policies]"))
    });
    assert_eq!(code, 2);
    assert!(err.contains("duplicate target name \"prod-db\""), "{err}");
}

#[test]
fn missing_credential_file_names_target() {
    let (code, _, err) = check(|_, c| c.replace("file:pg.password", "file:nowhere.password"));
    assert_eq!(code, 2);
    assert!(
        err.contains("target prod-db: credential: cannot read secret file"),
        "{err}"
    );
    assert!(err.contains("nowhere.password"), "{err}");
}

#[test]
fn missing_credential_env_names_variable() {
    let (code, _, err) =
        check(|_, c| c.replace("file:pg.password", "env:BASTION_TEST_SURELY_UNSET"));
    assert_eq!(code, 2);
    assert!(
        err.contains("environment variable BASTION_TEST_SURELY_UNSET is not set"),
        "{err}"
    );
}

#[test]
fn inline_secret_is_refused_without_echoing_it() {
    let (code, _, err) = check(|_, c| c.replace("file:pg.password", "hunter2-very-secret"));
    assert_eq!(code, 2);
    assert!(
        err.contains("secrets are referenced, never inlined"),
        "{err}"
    );
    assert!(!err.contains("hunter2-very-secret"), "{err}");
}

#[test]
fn unreadable_cert_is_refused() {
    let (code, _, err) =
        check(|_, c| c.replace("tls_root = \"ca.crt\"", "tls_root = \"missing-ca.crt\""));
    assert_eq!(code, 2);
    assert!(
        err.contains("target prod-db: tls_root: cannot read"),
        "{err}"
    );
    let (code, _, err) = check(|dir, c| {
        std::fs::write(dir.join("garbage.crt"), "not a certificate").unwrap();
        c.replace("tls_root = \"ca.crt\"", "tls_root = \"garbage.crt\"")
    });
    assert_eq!(code, 2);
    assert!(err.contains("holds no PEM certificate"), "{err}");
}

#[test]
fn world_readable_secret_is_a_warning_not_an_error() {
    let (code, _, err) = check(|dir, c| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("pg.password"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        c
    });
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: target prod-db: credential: secret file"),
        "{err}"
    );
    assert!(
        err.contains("readable by group or others (mode 644)"),
        "{err}"
    );
}

#[test]
fn port_in_use_fails_serve_with_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, _, err) = run("serve", |_, c| {
        c.replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
    });
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("cannot listen for postgres on 127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn broken_policy_names_file_line_and_column() {
    let (code, _, err) = check(|dir, c| {
        std::fs::write(
            dir.join("policies/base.cedar"),
            "permit(principal, action, resource);\nforbid(principal, action resource);\n",
        )
        .unwrap();
        c
    });
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("base.cedar:2:"), "{err}");
}

#[test]
fn policy_that_does_not_validate_against_the_schema_is_refused() {
    let (code, _, err) = check(|dir, c| {
        std::fs::write(
            dir.join("policies/base.cedar"),
            "permit(principal, action, resource)\nwhen { context.no_such_fact };\n",
        )
        .unwrap();
        c
    });
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("base.cedar:"), "{err}");
}

#[test]
fn example_config_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = run_bastion(&[
        "check",
        "--config",
        root.join("examples/bastion.toml").to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
