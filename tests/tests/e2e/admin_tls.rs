//! Issue 9 end to end, the parts beyond the Unix socket: the admin API on its TCP + TLS listener
//! driven by the real CLI (`--admin-url` + `--ca`) while a real psql waits; step-up webhooks over
//! HTTPS to a receiver on 127.0.0.1 whose certificate a test CA signed, checked against the
//! signing key in the state directory; `bastion check` refusing clear-text webhooks to other
//! machines; a restart failing the waiting statement closed; a one-time code refused the second
//! time; and the terminal QR code of `users enroll-totp`.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::pg_fixture::PgPath;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `bastion token issue` (local, no API needed) → the token.
fn issue(p: &PgPath, user: &str, scope: &str) -> String {
    let out = p
        .bastion
        .cli(&["token", "issue", "--user", user, "--scope", scope])
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// A PostgreSQL path whose admin API also listens with TLS on a free port (the bastion's
/// generated certificate); returns it and the `https://` URL.
fn start_with_tls_admin() -> (PgPath, String) {
    let port = tests::os::free_port();
    let p = PgPath::start(&format!("[admin]\nlisten = \"127.0.0.1:{port}\"\n")).unwrap();
    assert!(
        tests::os::wait_for_port(port, Duration::from_secs(30)),
        "admin tls listener never accepted:\n{}",
        p.bastion.log()
    );
    (p, format!("https://127.0.0.1:{port}"))
}

/// Runs an API command over TLS: `--admin-url url --ca ca --token token`.
fn over_tls(p: &PgPath, url: &str, ca: &Path, token: &str, args: &[&str]) -> Output {
    let ca = ca.display().to_string();
    let mut all = args.to_vec();
    all.extend(["--admin-url", url, "--ca", &ca, "--token", token]);
    p.bastion.cli(&all).unwrap()
}

/// Polls `approvals list` (with `list_args`) until a request shows up; returns it.
fn wait_for_request(list: impl Fn() -> Output, log: impl Fn() -> String) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = list();
        assert!(out.status.success(), "{}", stderr(&out));
        let pending: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(first) = pending.into_iter().next() {
            return first;
        }
        assert!(
            Instant::now() < deadline,
            "no step-up request appeared:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn cli_approves_over_the_tls_admin_listener_while_psql_waits() {
    let (p, url) = start_with_tls_admin();
    let ca = p.bastion_cert();
    let dana = issue(&p, "dana", "approve");
    std::thread::scope(|s| {
        let waiting =
            s.spawn(|| p.psql("alice@prod-db", "shop", &["-c", "DELETE FROM app.orders"]));
        let req = wait_for_request(
            || {
                over_tls(
                    &p,
                    &url,
                    &ca,
                    &dana,
                    &["approvals", "list", "--format", "json"],
                )
            },
            || p.bastion.log(),
        );
        assert_eq!(req["text"], "DELETE FROM app.orders");
        let id = req["id"].as_str().unwrap().to_string();

        // A bad token is 401 and a wrong scope 403 over TLS as over the socket.
        let bogus = over_tls(&p, &url, &ca, "bst_0000000000_00", &["approvals", "list"]);
        assert_eq!(bogus.status.code(), Some(1));
        assert!(
            stderr(&bogus).contains("unauthorized (http 401)"),
            "{}",
            stderr(&bogus)
        );
        let scope = over_tls(&p, &url, &ca, &dana, &["sessions", "list"]);
        assert!(
            stderr(&scope).contains("forbidden (http 403)"),
            "{}",
            stderr(&scope)
        );
        assert!(!waiting.is_finished());

        let ok = over_tls(&p, &url, &ca, &dana, &["approvals", "approve", &id]);
        assert!(ok.status.success(), "{}", stderr(&ok));
        assert!(
            stdout(&ok).starts_with(&format!("approved {id}: alice on prod-db")),
            "{}",
            stdout(&ok)
        );
        let out = waiting.join().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("DELETE 3"), "{}", stdout(&out));

        let again = over_tls(&p, &url, &ca, &dana, &["approvals", "approve", &id]);
        assert!(
            stderr(&again).contains("already approved (http 409)"),
            "{}",
            stderr(&again)
        );
    });
}

#[test]
fn tls_admin_listener_refuses_plaintext_untrusted_clients_and_http_urls() {
    let (p, url) = start_with_tls_admin();
    let admin = issue(&p, "dana", "admin");
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();

    // Plaintext HTTP to the TLS port: no HTTP answer, and the bastion lives on.
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(b"GET /v1/healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply);
    assert!(
        !String::from_utf8_lossy(&reply).contains("HTTP/1.1"),
        "plaintext got an http answer: {:?}",
        String::from_utf8_lossy(&reply)
    );

    // A CLI trusting another CA stops at the handshake.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, tests::pg::TestPki::generate().unwrap().ca_pem).unwrap();
    let stranger = over_tls(&p, &url, &other, &admin, &["sessions", "list"]);
    assert_eq!(stranger.status.code(), Some(1));
    assert!(
        stderr(&stranger).contains("tls with 127.0.0.1"),
        "{}",
        stderr(&stranger)
    );

    // The CLI refuses to send a token over plain http.
    let plain = url.replace("https://", "http://");
    let refused = over_tls(&p, &plain, &p.bastion_cert(), &admin, &["sessions", "list"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("expected https://host:port"),
        "{}",
        stderr(&refused)
    );

    // And the trusted path still works afterwards.
    let ok = over_tls(&p, &url, &p.bastion_cert(), &admin, &["sessions", "list"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
}

/// One HTTPS request as the receiver saw it: head and body.
struct Received {
    head: String,
    body: Vec<u8>,
}

/// An HTTPS receiver on 127.0.0.1 (certificate for 127.0.0.1 from a fresh test CA) that answers
/// 200 and hands each request over; returns its port, the CA file and the requests.
fn https_receiver(dir: &Path) -> (u16, PathBuf, std::sync::mpsc::Receiver<Received>) {
    let pki = tests::pg::TestPki::generate().unwrap();
    let ca = dir.join("webhook-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let chain = rustls_pemfile::certs(&mut pki.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut pki.key_pem.as_bytes())
        .unwrap()
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let k = s.read(&mut chunk).await.unwrap_or(0);
                    if k == 0 {
                        break (0, 0);
                    }
                    buf.extend_from_slice(&chunk[..k]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                while head_end > 0 && buf.len() < head_end + length {
                    let k = s.read(&mut chunk).await.unwrap_or(0);
                    if k == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..k]);
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = s.shutdown().await;
                if head_end > 0 && buf.len() >= head_end + length {
                    let _ = tx.send(Received {
                        head: String::from_utf8_lossy(&buf[..head_end]).into_owned(),
                        body: buf[head_end..head_end + length].to_vec(),
                    });
                }
            }
        });
    });
    (port, ca, rx)
}

#[test]
fn https_webhook_from_a_real_bastion_arrives_signed_with_the_state_key() {
    let dir = tempfile::tempdir().unwrap();
    let (port, ca, received) = https_receiver(dir.path());
    let p = PgPath::start(&format!(
        "[approvals]\nwebhooks = [\"https://127.0.0.1:{port}/hooks/bastion\"]\nwebhook_ca = \"{}\"\n",
        ca.display()
    ))
    .unwrap();
    let dana = issue(&p, "dana", "approve");
    std::thread::scope(|s| {
        let waiting =
            s.spawn(|| p.psql("alice@prod-db", "shop", &["-c", "DELETE FROM app.orders"]));
        let hook = received
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no webhook arrived:\n{}", p.bastion.log()));
        assert!(
            hook.head.starts_with("POST /hooks/bastion HTTP/1.1"),
            "{}",
            hook.head
        );
        let signature = hook
            .head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-bastion-signature")
                    .then(|| value.trim().to_string())
            })
            .expect("signature header");
        let key_hex =
            std::fs::read_to_string(p.bastion.dir.path().join("state/webhook.key")).unwrap();
        let key = hex_decode(key_hex.trim());
        assert!(
            bastion::broker::webhook::verify_signature(&key, &hook.body, &signature),
            "signature {signature} does not verify with the state key"
        );
        let mut tampered = hook.body.clone();
        tampered[0] ^= 1;
        assert!(!bastion::broker::webhook::verify_signature(
            &key, &tampered, &signature
        ));
        let json: serde_json::Value = serde_json::from_slice(&hook.body).unwrap();
        assert_eq!(json["request"]["text"], "DELETE FROM app.orders");
        assert_eq!(json["request"]["identity"], "alice");
        let id = json["request"]["id"].as_str().unwrap().to_string();
        assert!(
            json["text"]
                .as_str()
                .unwrap()
                .contains(&format!("bastion approvals approve {id}")),
            "{}",
            json["text"]
        );

        let denied = p
            .bastion
            .cli(&[
                "approvals",
                "deny",
                &id,
                "--reason",
                "not today",
                "--token",
                &dana,
            ])
            .unwrap();
        assert!(denied.status.success(), "{}", stderr(&denied));
        let out = waiting.join().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("not today"), "{}", stderr(&out));
    });
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// A config `bastion check` accepts, plus `extra`, in `dir`.
fn check_with(dir: &Path, extra: &str) -> Output {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(
        dir.join("policies/base.cedar"),
        "permit(principal, action, resource);\n",
    )
    .unwrap();
    let config = format!(
        "[server]\npostgres_listen = \"127.0.0.1:6432\"\nstate_dir = \"state\"\naudit_dir = \"audit\"\n\n\
         [policies]\npaths = [\"policies\"]\n\n{extra}"
    );
    let path = dir.join("bastion.toml");
    std::fs::write(&path, config).unwrap();
    tests::bastion::run_bastion(&["check", "--config", path.to_str().unwrap()]).unwrap()
}

#[test]
fn check_refuses_clear_text_webhooks_to_other_machines_and_bad_admin_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ok = check_with(
        dir.path(),
        "[approvals]\nwebhooks = [\"https://hooks.example/x\", \"http://127.0.0.1:9000/hook\"]\n",
    );
    assert!(ok.status.success(), "{}", stderr(&ok));

    let remote = check_with(
        dir.path(),
        "[approvals]\nwebhooks = [\n  \"https://hooks.example/x\",\n  \"http://hooks.internal/x\",\n]\n",
    );
    assert_eq!(remote.status.code(), Some(2));
    let err = stderr(&remote);
    assert!(err.contains("bastion.toml:12:"), "names the line: {err}");
    assert!(
        err.contains("http://hooks.internal/x would send step-up requests unencrypted"),
        "{err}"
    );

    let allowed = check_with(
        dir.path(),
        "[approvals]\nwebhooks = [\"http://hooks.internal/x\"]\nallow_insecure_webhooks = true\n",
    );
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    assert!(
        stdout(&allowed).contains("unencrypted") || stderr(&allowed).contains("unencrypted"),
        "the allowance is reported as a warning: {}{}",
        stdout(&allowed),
        stderr(&allowed)
    );

    std::fs::write(dir.path().join("empty.pem"), "no certificate here\n").unwrap();
    let bad_ca = check_with(
        dir.path(),
        "[approvals]\nwebhooks = [\"https://hooks.example/x\"]\nwebhook_ca = \"empty.pem\"\n",
    );
    assert_eq!(bad_ca.status.code(), Some(2));
    assert!(
        stderr(&bad_ca).contains("approvals.webhook_ca: CA file")
            && stderr(&bad_ca).contains("holds no PEM certificate"),
        "{}",
        stderr(&bad_ca)
    );

    let half = check_with(
        dir.path(),
        "[admin]\nlisten = \"127.0.0.1:9443\"\ntls_cert = \"admin.crt\"\n",
    );
    assert_eq!(half.status.code(), Some(2));
    assert!(
        stderr(&half).contains("admin.tls_cert and admin.tls_key go together"),
        "{}",
        stderr(&half)
    );
    let clash = check_with(dir.path(), "[admin]\nlisten = \"127.0.0.1:6432\"\n");
    assert_eq!(clash.status.code(), Some(2));
    assert!(
        stderr(&clash)
            .contains("admin.listen: 127.0.0.1:6432 is already a postgres or ssh listener"),
        "{}",
        stderr(&clash)
    );
}

#[test]
fn a_restart_fails_the_waiting_statement_closed_and_forgets_the_request() {
    let mut p = PgPath::start("").unwrap();
    let dana = issue(&p, "dana", "approve");
    let id = std::thread::scope(|s| {
        let waiting =
            s.spawn(|| p.psql("alice@prod-db", "shop", &["-c", "DELETE FROM app.orders"]));
        let id = p
            .issue_token("dana", "approve")
            .map(|t| {
                wait_for_request(
                    || {
                        p.api(&t, &["approvals", "list", "--format", "json"])
                            .unwrap()
                    },
                    || p.bastion.log(),
                )
            })
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        // SIGTERM while the statement waits: psql gets a refusal, it does not hang.
        let pid = p.bastion_pid().expect("bastion pid");
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
        let out = waiting.join().unwrap();
        assert_ne!(out.status.code(), Some(0));
        assert!(
            stderr(&out).contains("the bastion is shutting down"),
            "{}",
            stderr(&out)
        );
        id
    });
    let _ = p.bastion.stop();
    p.bastion.spawn().unwrap();
    // The restarted bastion has nothing pending, and the old id is unknown, not approvable.
    let t = p.issue_token("dana", "approve").unwrap();
    let all = p
        .api(&t, &["approvals", "list", "--all", "--format", "json"])
        .unwrap();
    assert_eq!(stdout(&all).trim(), "[]", "{}", stderr(&all));
    let late = p.api(&dana, &["approvals", "approve", &id]).unwrap();
    assert!(
        stderr(&late).contains(&format!("no approval request {id} (http 404)")),
        "{}",
        stderr(&late)
    );
    assert_eq!(
        p.pg.psql("shop", "SELECT count(*) FROM app.orders")
            .unwrap(),
        "3",
        "the refused DELETE never ran"
    );
}

#[test]
fn a_one_time_code_is_refused_the_second_time_and_enrolment_prints_a_qr_code() {
    let p = PgPath::start("").unwrap();
    let code = tests::pg_fixture::totp_code(tests::pg_fixture::TOTP_SECRET);
    let set = format!("SET bastion.otp = '{code}'");
    let first = p.psql(
        "dana@prod-db",
        "shop",
        &["-At", "-c", &set, "-c", "SELECT count(*) FROM payroll"],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    let replay = p.psql(
        "dana@prod-db",
        "shop",
        &["-At", "-c", &set, "-c", "SELECT count(*) FROM payroll"],
    );
    assert_eq!(replay.status.code(), Some(1));
    assert!(
        stderr(&replay).contains("one-time code rejected: one-time code was already used"),
        "{}",
        stderr(&replay)
    );

    // Enrolment prints the URI, then the QR code in half blocks with a light quiet zone.
    let enrolled = p
        .bastion
        .cli(&["users", "enroll-totp", "alice", "--replace"])
        .unwrap();
    assert!(enrolled.status.success(), "{}", stderr(&enrolled));
    let text = stdout(&enrolled);
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("otpauth://totp/bastion:alice?secret="));
    let block: Vec<&str> = lines.collect();
    assert!(block.len() >= 15, "{text}");
    let width = block[0].chars().count();
    assert!(block.iter().all(|l| l.chars().count() == width), "{text}");
    assert!(
        block
            .iter()
            .all(|l| l.chars().all(|c| " \u{2580}\u{2584}\u{2588}".contains(c))),
        "half blocks only, no colour codes when piped: {text}"
    );
    // Four light module rows on top (two lines), then the finder pattern four columns in.
    assert!(
        block[..2].iter().all(|l| l.chars().all(|c| c == ' ')),
        "{text}"
    );
    assert!(block[2].starts_with("    \u{2588}"), "{text}");
}
