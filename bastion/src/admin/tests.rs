//! The admin API over a real Unix socket, driven by the same client the CLI uses.
use super::*;
use crate::broker::{action_digest, Broker, Directory, StepUpKind, StepUpOutcome, StepUpRequest};
use crate::config::{Protocol, UserKind};
use crate::entry::lockout::Lockouts;
use crate::metrics::Metrics;
use crate::sessions::SessionRegistry;
use hyper::Method;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    pub(super) broker: Arc<Broker>,
    sessions: Arc<SessionRegistry>,
    lockouts: Arc<Lockouts>,
    metrics: Arc<Metrics>,
    reloads: Arc<AtomicUsize>,
    pub(super) tokens: Arc<TokenStore>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), AdminError>>,
    /// What the socket serves, for other listeners of the same API.
    pub(super) state: AdminState,
}

fn directory() -> Directory {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Directory::new([
        ("alice".to_string(), UserKind::Human, s(&["engineers"])),
        (
            "dana".to_string(),
            UserKind::Human,
            s(&["dba", "engineers"]),
        ),
        (
            "agent-7".to_string(),
            UserKind::Agent,
            s(&["agents", "dba"]),
        ),
        ("root".to_string(), UserKind::Human, s(&["admins"])),
    ])
}

pub(super) async fn start(timeout: Duration) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let metrics = Arc::new(Metrics::new());
    let broker = Arc::new(Broker::new(timeout, directory()).with_metrics(metrics.clone()));
    let sessions = Arc::new(SessionRegistry::default());
    let lockouts = Arc::new(Lockouts::new(2, Duration::from_secs(60)));
    let tokens = Arc::new(TokenStore::in_state_dir(dir.path()));
    let reloads = Arc::new(AtomicUsize::new(0));
    let counter = reloads.clone();
    let reload: ReloadFn = Arc::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            Ok("loaded 3 policy files".into())
        } else {
            Err("policies/prod.cedar:3:1: unexpected token".into())
        }
    });
    let state = AdminState {
        broker: broker.clone(),
        sessions: sessions.clone(),
        lockouts: lockouts.clone(),
        tokens: tokens.clone(),
        reload,
        metrics: metrics.clone(),
    };
    let shutdown = CancellationToken::new();
    let listener = AdminListener::bind(&socket).unwrap();
    let server = tokio::spawn(listener.run(state.clone(), shutdown.clone()));
    Fixture {
        state,
        _dir: dir,
        socket,
        broker,
        sessions,
        lockouts,
        metrics,
        reloads,
        tokens,
        shutdown,
        server,
    }
}

impl Fixture {
    pub(super) fn token(&self, user: &str, scope: Scope) -> AdminClient {
        let (_, token) = self.tokens.issue(user, scope, None).unwrap();
        AdminClient::new(&self.socket, Some(token))
    }

    fn anonymous(&self) -> AdminClient {
        AdminClient::new(&self.socket, None)
    }

    pub(super) fn submit(
        &self,
        requester: &str,
        text: &str,
    ) -> (String, tokio::task::JoinHandle<StepUpOutcome>) {
        let (id, wait) = self.broker.submit(StepUpRequest {
            session_id: "s1".into(),
            seq: 3,
            identity: requester.into(),
            identity_kind: UserKind::Human,
            target: "prod-db".into(),
            protocol: Protocol::Postgres,
            text: text.into(),
            digest: action_digest("s1", 3, text.as_bytes()),
            facts: serde_json::json!({"class": "delete", "has_where": false}),
            policy_ids: vec!["SQL-3".into()],
            approver_groups: vec!["dba".into()],
            kind: StepUpKind::Approval,
            cancel: CancellationToken::new(),
        });
        (id.to_string(), tokio::spawn(wait))
    }
}

pub(super) async fn status_and_json(
    c: &AdminClient,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let r = c.raw(method, path, body).await.unwrap();
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn socket_is_private_and_health_needs_no_token() {
    use std::os::unix::fs::PermissionsExt;
    let f = start(Duration::from_secs(60)).await;
    let mode = std::fs::metadata(&f.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (s, body) = status_and_json(&f.anonymous(), Method::GET, "/v1/healthz", None).await;
    assert_eq!((s, body), (200, serde_json::json!({"status": "ok"})));
    let (s, _) = status_and_json(&f.anonymous(), Method::GET, "/v1/readyz", None).await;
    assert_eq!(s, 200);
    f.broker.shutdown();
    let (s, _) = status_and_json(&f.anonymous(), Method::GET, "/v1/readyz", None).await;
    assert_eq!(s, 503);
}

#[tokio::test]
async fn missing_or_bad_tokens_get_401_without_detail() {
    let f = start(Duration::from_secs(60)).await;
    let (_, good) = f.tokens.issue("dana", Scope::Admin, None).unwrap();
    let revoked = f.token("dana", Scope::Admin);
    let id = f.tokens.list().unwrap().last().unwrap().id.clone();
    f.tokens.revoke(&id).unwrap();
    let mut forged = good.clone();
    forged.replace_range(good.len() - 4.., "0000");
    for client in [
        f.anonymous(),
        AdminClient::new(&f.socket, Some("nonsense".into())),
        AdminClient::new(&f.socket, Some(forged)),
        revoked,
    ] {
        for (m, path) in [
            (Method::GET, "/v1/approvals"),
            (Method::GET, "/v1/sessions"),
            (Method::POST, "/v1/lockouts/clear"),
        ] {
            let (s, body) = status_and_json(&client, m, path, None).await;
            assert_eq!(
                (s, body),
                (401, serde_json::json!({"error": "unauthorized"})),
                "{path}"
            );
        }
    }
    // A basic-auth header carrying a valid token is still not a bearer token.
    let r = hyper::Request::get("/v1/approvals")
        .header("host", "x")
        .header("authorization", format!("Basic {good}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let stream = tokio::net::UnixStream::connect(&f.socket).await.unwrap();
    assert_eq!(http_client::send(stream, r).await.unwrap().status, 401);
}

#[tokio::test]
async fn approve_scope_reaches_only_approvals() {
    let f = start(Duration::from_secs(60)).await;
    let approver = f.token("dana", Scope::Approve);
    for (m, path) in [
        (Method::GET, "/v1/sessions"),
        (Method::POST, "/v1/sessions/abc/kill"),
        (Method::GET, "/v1/lockouts"),
        (Method::POST, "/v1/lockouts/clear"),
        (Method::POST, "/v1/policies/reload"),
        (Method::GET, "/v1/metrics"),
    ] {
        let (s, body) = status_and_json(&approver, m, path, None).await;
        assert_eq!(
            (s, body),
            (403, serde_json::json!({"error": "forbidden"})),
            "{path}"
        );
    }
    assert_eq!(f.reloads.load(Ordering::SeqCst), 0);
    let (s, _) = status_and_json(&approver, Method::GET, "/v1/approvals", None).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn approve_flow_over_the_socket() {
    let f = start(Duration::from_secs(60)).await;
    let (id, waiter) = f.submit("alice", "DELETE FROM orders");
    let dana = f.token("dana", Scope::Approve);
    let (s, list) = status_and_json(&dana, Method::GET, "/v1/approvals", None).await;
    assert_eq!(s, 200);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["text"], "DELETE FROM orders");
    assert_eq!(list[0]["policy_ids"], serde_json::json!(["SQL-3"]));
    let digest = list[0]["digest"].as_str().unwrap().to_string();
    let (s, shown) =
        status_and_json(&dana, Method::GET, &format!("/v1/approvals/{id}"), None).await;
    assert_eq!(
        (s, shown["facts"]["has_where"].clone()),
        (200, serde_json::json!(false))
    );

    let path = format!("/v1/approvals/{id}/approve");
    let (s, body) = status_and_json(
        &dana,
        Method::POST,
        &path,
        Some(serde_json::json!({"digest": digest})),
    )
    .await;
    assert_eq!(
        (s, body["status"].clone(), body["approver"].clone()),
        (200, "approved".into(), "dana".into())
    );
    assert!(
        matches!(waiter.await.unwrap(), StepUpOutcome::Approved { approver, .. } if approver == "dana")
    );

    // Single use.
    let (s, body) = status_and_json(&dana, Method::POST, &path, None).await;
    assert_eq!(s, 409);
    assert_eq!(
        body["error"],
        format!("approval request {id} is already approved")
    );
}

#[tokio::test]
async fn deny_flow_carries_the_reason_to_the_session() {
    let f = start(Duration::from_secs(60)).await;
    let (id, waiter) = f.submit("alice", "DELETE FROM orders");
    let dana = f.token("dana", Scope::Approve);
    let (s, body) = status_and_json(
        &dana,
        Method::POST,
        &format!("/v1/approvals/{id}/deny"),
        Some(serde_json::json!({"reason": "use a WHERE clause"})),
    )
    .await;
    assert_eq!((s, body["status"].clone()), (200, "denied".into()));
    assert_eq!(
        waiter.await.unwrap(),
        StepUpOutcome::Denied {
            by: "dana".into(),
            reason: "use a WHERE clause".into()
        }
    );
}

#[tokio::test]
async fn requester_agent_and_non_member_cannot_approve_over_the_api() {
    let f = start(Duration::from_secs(60)).await;
    let (id, waiter) = f.submit("dana", "DELETE FROM orders");
    let path = format!("/v1/approvals/{id}/approve");
    for (user, scope, why) in [
        (
            "dana",
            Scope::Approve,
            "dana made this request and cannot approve it",
        ),
        (
            "agent-7",
            Scope::Admin,
            "agent-7 is not a human (agent identity) and cannot approve",
        ),
        (
            "alice",
            Scope::Approve,
            "alice is not in an approver group (dba)",
        ),
        (
            "root",
            Scope::Admin,
            "root is not in an approver group (dba)",
        ),
    ] {
        let (s, body) = status_and_json(&f.token(user, scope), Method::POST, &path, None).await;
        assert_eq!((s, body["error"].as_str().unwrap()), (403, why), "{user}");
    }
    assert!(!waiter.is_finished());
    assert_eq!(f.broker.get(&id).unwrap().status, "pending");
}

#[tokio::test]
async fn wrong_digest_unknown_id_and_bad_body() {
    let f = start(Duration::from_secs(60)).await;
    let (id, _waiter) = f.submit("alice", "DELETE FROM orders");
    let dana = f.token("dana", Scope::Approve);
    let path = format!("/v1/approvals/{id}/approve");
    let other = hex::encode(action_digest("s1", 3, b"DELETE FROM customers"));
    let (s, _) = status_and_json(
        &dana,
        Method::POST,
        &path,
        Some(serde_json::json!({"digest": other})),
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = status_and_json(
        &dana,
        Method::POST,
        &path,
        Some(serde_json::json!({"digest": "zz"})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, body) = status_and_json(
        &dana,
        Method::POST,
        "/v1/approvals/0000000000/approve",
        None,
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str().unwrap()),
        (404, "no approval request 0000000000")
    );
    let (s, _) = status_and_json(&dana, Method::GET, "/v1/approvals/0000000000", None).await;
    assert_eq!(s, 404);
    assert_eq!(f.broker.get(&id).unwrap().status, "pending");
}

#[tokio::test]
async fn timed_out_request_answers_409() {
    let f = start(Duration::from_millis(200)).await;
    let (id, waiter) = f.submit("alice", "DELETE FROM orders");
    assert_eq!(waiter.await.unwrap(), StepUpOutcome::TimedOut);
    let (s, body) = status_and_json(
        &f.token("dana", Scope::Approve),
        Method::POST,
        &format!("/v1/approvals/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str().unwrap()),
        (
            409,
            format!("approval request {id} is already timed_out").as_str()
        )
    );
}

#[tokio::test]
async fn sessions_lockouts_reload_and_metrics() {
    let f = start(Duration::from_secs(60)).await;
    let admin = f.token("root", Scope::Admin);
    let parent = CancellationToken::new();
    let handle = f
        .sessions
        .register(
            "sess1".into(),
            "alice",
            "prod-db",
            "postgres",
            "127.0.0.1:5555".parse().unwrap(),
            4,
            &parent,
        )
        .unwrap();
    handle.info.count(10, 20);
    handle.info.set_last_action("SELECT 1");
    let (s, list) = status_and_json(&admin, Method::GET, "/v1/sessions", None).await;
    assert_eq!(s, 200);
    assert_eq!(list[0]["identity"], "alice");
    assert_eq!(list[0]["bytes_out"], 20);
    assert_eq!(list[0]["last_action"], "SELECT 1");
    let (s, _) = status_and_json(&admin, Method::POST, "/v1/sessions/sess1/kill", None).await;
    assert_eq!(s, 200);
    assert!(handle.info.kill.is_cancelled());
    assert_eq!(
        handle.info.kill_reason.lock().unwrap().as_deref(),
        Some("killed by root through the admin api")
    );
    let (s, _) = status_and_json(&admin, Method::POST, "/v1/sessions/nope/kill", None).await;
    assert_eq!(s, 404);

    f.lockouts.failure("mallory", "10.0.0.9".parse().unwrap());
    let (_, locks) = status_and_json(&admin, Method::GET, "/v1/lockouts", None).await;
    assert_eq!(locks.as_array().unwrap().len(), 2);
    let (_, cleared) = status_and_json(&admin, Method::POST, "/v1/lockouts/clear", None).await;
    assert_eq!(cleared, serde_json::json!({"cleared": 2}));

    let (s, body) = status_and_json(&admin, Method::POST, "/v1/policies/reload", None).await;
    assert_eq!(
        (s, body["message"].as_str().unwrap()),
        (200, "loaded 3 policy files")
    );
    let (s, body) = status_and_json(&admin, Method::POST, "/v1/policies/reload", None).await;
    assert_eq!(
        (s, body["error"].as_str().unwrap()),
        (422, "policies/prod.cedar:3:1: unexpected token")
    );

    let scrape = |c: AdminClient| async move {
        let r = c.raw(Method::GET, "/v1/metrics", None).await.unwrap();
        assert_eq!(r.status, 200);
        assert!(r.content_type.unwrap().starts_with("text/plain"));
        crate::metrics::parse_text(std::str::from_utf8(&r.body).unwrap()).unwrap()
    };
    let value = |series: &[(String, f64)], name: &str| {
        series.iter().find(|(s, _)| s == name).map(|(_, v)| *v)
    };
    let before = scrape(admin.clone()).await;
    assert_eq!(value(&before, "bastion_step_up_pending"), Some(0.0));
    let (_id, _waiter) = f.submit("alice", "DELETE FROM orders");
    f.metrics.entry_failed();
    let after = scrape(admin).await;
    assert_eq!(value(&after, "bastion_step_up_pending"), Some(1.0));
    assert_eq!(value(&after, "bastion_entry_failures_total"), Some(1.0));
}

#[tokio::test]
async fn stale_socket_is_replaced_live_one_is_refused_and_shutdown_removes_it() {
    let f = start(Duration::from_secs(60)).await;
    assert!(matches!(
        AdminListener::bind(&f.socket),
        Err(AdminError::InUse(_))
    ));
    f.shutdown.cancel();
    f.server.await.unwrap().unwrap();
    assert!(!f.socket.exists(), "socket removed at shutdown");

    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("admin.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    assert!(AdminListener::bind(&stale).is_ok());
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        AdminListener::bind(&file),
        Err(AdminError::NotASocket(_))
    ));
}

/// A one-shot HTTP server that answers 500 to the first request and 200 after, handing each
/// request's signature header and body to the test.
async fn webhook_receiver() -> (String, tokio::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/bastion", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, length) = loop {
                let k = s.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..k]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse::<usize>().unwrap())
                        .unwrap();
                    break (i + 4, len);
                }
            };
            while buf.len() < head_end + length {
                let k = s.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..k]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let sig = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("X-Bastion-Signature: ")
                        .or_else(|| l.strip_prefix("x-bastion-signature: "))
                })
                .unwrap_or_default()
                .to_string();
            n += 1;
            let status = if n == 1 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            s.write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
            tx.send((sig, buf[head_end..head_end + length].to_vec()))
                .await
                .unwrap();
        }
    });
    (url, rx)
}

#[tokio::test]
async fn webhook_is_signed_retried_and_never_blocks_submission() {
    use crate::broker::webhook::{load_or_create_key, verify_signature};
    let dir = tempfile::tempdir().unwrap();
    let key = load_or_create_key(dir.path()).unwrap();
    let (url, mut received) = webhook_receiver().await;
    let retry = crate::broker::RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(100),
        attempt_timeout: Duration::from_secs(5),
    };
    // Dead URLs next to the live one (nothing listens; no such host): they must not delay or
    // lose anything.
    let urls = vec![
        "http://127.0.0.1:9/dead".to_string(),
        url,
        "https://hooks.example.invalid/x".to_string(),
    ];
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, super::tls_tests::TestCa::new().ca_pem).unwrap();
    let targets = crate::broker::WebhookTargets::new(&urls, Some(&ca), false).unwrap();
    let notifier = crate::broker::WebhookNotifier::start(targets, key.clone(), retry);
    let broker = Broker::new(Duration::from_secs(60), directory()).with_webhooks(notifier);
    let (id, _wait) = broker.submit(StepUpRequest {
        session_id: "s9".into(),
        seq: 1,
        identity: "alice".into(),
        identity_kind: UserKind::Human,
        target: "web1".into(),
        protocol: Protocol::Ssh,
        text: "sudo systemctl restart nginx".into(),
        digest: action_digest("s9", 1, b"sudo systemctl restart nginx"),
        facts: serde_json::json!({}),
        policy_ids: vec!["SH-4".into(), "SH-6".into()],
        approver_groups: vec!["engineers".into()],
        kind: StepUpKind::Approval,
        cancel: CancellationToken::new(),
    });
    // On this single-threaded test runtime the notifier's tasks cannot run before we yield:
    // nothing delivered yet proves `submit` returned without waiting for any webhook.
    assert!(
        matches!(
            received.try_recv(),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty)
        ),
        "submit does not wait for webhooks"
    );
    let first = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.1, second.1, "the retry sends the same body");
    let (sig, body) = second;
    assert!(
        verify_signature(&key, &body, &sig),
        "signature {sig:?} verifies"
    );
    assert!(!verify_signature(b"wrong key", &body, &sig));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let text = json["text"].as_str().unwrap();
    assert!(
        text.contains("*alice* on *web1*") && text.contains("sudo systemctl restart nginx"),
        "{text}"
    );
    assert!(
        text.contains(&format!("bastion approvals approve {id}")),
        "{text}"
    );
    assert_eq!(json["request"]["id"], id.as_str());
    assert_eq!(
        json["request"]["policy_ids"],
        serde_json::json!(["SH-4", "SH-6"])
    );
    assert_eq!(broker.get(id.as_str()).unwrap().status, "pending");
}
