//! The admin API and its CLI end to end: a real `bastion serve` (admin socket in its state
//! directory), the real `bastion` CLI, and a real psql session that waits on a step-up while an
//! approver acts. Each test asserts what the operator or the waiting user sees.
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};
use tests::pg_fixture::PgPath;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn socket(p: &PgPath) -> PathBuf {
    p.bastion.dir.path().join("state/admin.sock")
}

/// Waits for the admin socket of a started bastion.
fn wait_for_socket(p: &PgPath) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(socket(p)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "admin socket {} never answered:\n{}",
        socket(p).display(),
        p.bastion.log()
    );
}

/// `bastion token issue` (the local bootstrap) → the token.
fn issue(p: &PgPath, user: &str, scope: &str) -> String {
    let out = p
        .bastion
        .cli(&["token", "issue", "--user", user, "--scope", scope])
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    assert!(token.starts_with("bst_"), "{token}");
    token
}

/// Runs an API command with `token`.
fn api(p: &PgPath, token: &str, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--token", token]);
    p.bastion.cli(&all).unwrap()
}

/// Polls `approvals list --format json` until a request shows up; returns it.
fn wait_for_request(p: &PgPath, token: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = api(p, token, &["approvals", "list", "--format", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(first) = list.into_iter().next() {
            return first;
        }
        assert!(
            Instant::now() < deadline,
            "no step-up request appeared:\n{}",
            p.bastion.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn token_issue_list_revoke_and_enroll_totp_work_without_a_running_api() {
    let p = PgPath::start("").unwrap();
    let token = issue(&p, "dana", "approve");
    let list = p
        .bastion
        .cli(&["token", "list", "--format", "json"])
        .unwrap();
    let tokens: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        (tokens[0]["user"].as_str(), tokens[0]["scope"].as_str()),
        (Some("dana"), Some("approve"))
    );
    let at_rest =
        std::fs::read_to_string(p.bastion.dir.path().join("state/api_tokens.json")).unwrap();
    assert!(!at_rest.contains(&token), "tokens are stored hashed");

    let unknown = p
        .bastion
        .cli(&["token", "issue", "--user", "mallory", "--scope", "admin"])
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("unknown user \"mallory\""),
        "{}",
        stderr(&unknown)
    );

    let id = tokens[0]["id"].as_str().unwrap();
    let revoked = p.bastion.cli(&["token", "revoke", id]).unwrap();
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert_eq!(stdout(&revoked).trim(), format!("revoked token {id}"));

    let enrolled = p.bastion.cli(&["users", "enroll-totp", "alice"]).unwrap();
    assert!(enrolled.status.success(), "{}", stderr(&enrolled));
    assert!(
        stdout(&enrolled).starts_with("otpauth://totp/bastion:alice?secret="),
        "{}",
        stdout(&enrolled)
    );
    let agent = p.bastion.cli(&["users", "enroll-totp", "agent-7"]).unwrap();
    assert_eq!(agent.status.code(), Some(2));
}

#[test]
fn api_commands_need_a_valid_token_of_the_right_scope() {
    let p = PgPath::start("").unwrap();
    wait_for_socket(&p);
    let none = p.bastion.cli(&["approvals", "list"]).unwrap();
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    assert!(stderr(&none).contains("no api token"), "{}", stderr(&none));
    let bad = api(&p, "bst_0000000000_00", &["approvals", "list"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("unauthorized (http 401)"),
        "{}",
        stderr(&bad)
    );
    let approver = issue(&p, "dana", "approve");
    let wrong_scope = api(&p, &approver, &["sessions", "list"]);
    assert!(
        stderr(&wrong_scope).contains("forbidden (http 403)"),
        "{}",
        stderr(&wrong_scope)
    );
    let admin = issue(&p, "dana", "admin");
    let sessions = api(&p, &admin, &["sessions", "list", "--format", "json"]);
    assert!(sessions.status.success(), "{}", stderr(&sessions));
    let locks = api(&p, &admin, &["lockouts", "clear"]);
    assert!(locks.status.success(), "{}", stderr(&locks));
    let unknown = api(&p, &approver, &["approvals", "approve", "0123456789"]);
    assert!(
        stderr(&unknown).contains("no approval request 0123456789 (http 404)"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn psql_delete_without_where_waits_until_dana_approves_from_the_cli() {
    let p = PgPath::start("").unwrap();
    wait_for_socket(&p);
    let dana = issue(&p, "dana", "approve");
    let alice = issue(&p, "alice", "approve");
    let agent = issue(&p, "agent-7", "admin");
    std::thread::scope(|s| {
        let waiting =
            s.spawn(|| p.psql("alice@prod-db", "shop", &["-c", "DELETE FROM app.orders"]));
        let req = wait_for_request(&p, &dana);
        let id = req["id"].as_str().unwrap().to_string();
        assert_eq!(req["text"], "DELETE FROM app.orders");
        assert_eq!(req["identity"], "alice");

        // Neither the requester nor an agent can approve; the statement keeps waiting.
        let own = api(&p, &alice, &["approvals", "approve", &id]);
        assert!(
            stderr(&own).contains("alice made this request and cannot approve it"),
            "{}",
            stderr(&own)
        );
        let bot = api(&p, &agent, &["approvals", "approve", &id]);
        assert!(
            stderr(&bot).contains("agent-7 is not a human"),
            "{}",
            stderr(&bot)
        );
        assert!(!waiting.is_finished());

        let ok = api(&p, &dana, &["approvals", "approve", &id]);
        assert!(ok.status.success(), "{}", stderr(&ok));
        assert!(
            stdout(&ok).starts_with(&format!("approved {id}: alice on prod-db")),
            "{}",
            stdout(&ok)
        );
        let out = waiting.join().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            stderr(&out),
            p.bastion.log()
        );
        assert!(stdout(&out).contains("DELETE 3"), "{}", stdout(&out));

        // Single use.
        let again = api(&p, &dana, &["approvals", "approve", &id]);
        assert!(
            stderr(&again).contains("already approved (http 409)"),
            "{}",
            stderr(&again)
        );
    });
}

#[test]
fn psql_delete_denied_from_the_cli_sees_the_reason_and_nothing_runs() {
    let p = PgPath::start("").unwrap();
    wait_for_socket(&p);
    let dana = issue(&p, "dana", "approve");
    std::thread::scope(|s| {
        let waiting =
            s.spawn(|| p.psql("alice@prod-db", "shop", &["-c", "DELETE FROM app.orders"]));
        let id = wait_for_request(&p, &dana)["id"]
            .as_str()
            .unwrap()
            .to_string();
        let denied = api(
            &p,
            &dana,
            &["approvals", "deny", &id, "--reason", "add a WHERE clause"],
        );
        assert!(denied.status.success(), "{}", stderr(&denied));
        let out = waiting.join().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("add a WHERE clause"),
            "{}",
            stderr(&out)
        );
    });
    assert_eq!(
        p.pg.psql("shop", "SELECT count(*) FROM app.orders")
            .unwrap(),
        "3"
    );
}
