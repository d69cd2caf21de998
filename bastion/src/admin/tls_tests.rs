//! TLS on both sides of the admin plumbing, with a throwaway CA made by rcgen: webhooks to an
//! HTTPS receiver on 127.0.0.1 (delivered and signed when the certificate is trusted, refused
//! at the handshake when it is not), and the admin API on its TCP + TLS listener (same routes,
//! same token rules, no answer to plaintext).
use super::tests::{start, status_and_json};
use super::*;
use crate::broker::webhook::{load_or_create_key, verify_signature, SIGNATURE_HEADER};
use crate::broker::{
    action_digest, Broker, Directory, RetryPolicy, StepUpKind, StepUpOutcome, StepUpRequest,
    WebhookNotifier, WebhookTargets,
};
use crate::config::{Protocol, UserKind};
use hyper::Method;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A throwaway CA.
pub(super) struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A leaf certificate and its key.
pub(super) struct Leaf {
    cert: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl TestCa {
    /// A fresh CA.
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "bastion admin/webhook test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            ca_pem: cert.pem(),
            cert,
            key,
        }
    }

    /// A leaf for `names` (DNS names or IP literals) signed by this CA.
    pub fn issue(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        Leaf {
            cert: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// Writes the CA certificate to `dir/name` and returns the path.
    pub fn write_ca(&self, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

impl Leaf {
    /// A rustls server config presenting this leaf.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key_der.clone().into()),
            )
            .unwrap();
        Arc::new(cfg)
    }
}

/// What the HTTPS receiver saw on one connection.
#[derive(Debug)]
enum Seen {
    /// A request: its signature header and body.
    Request(String, Vec<u8>),
    /// A connection whose TLS handshake failed.
    HandshakeFailed,
}

/// An HTTPS server on 127.0.0.1 answering 200 to every request.
async fn https_receiver(tls: Arc<rustls::ServerConfig>) -> (u16, mpsc::Receiver<Seen>) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(stream) = acceptor.accept(tcp).await else {
                let _ = tx.send(Seen::HandshakeFailed).await;
                continue;
            };
            let tx = tx.clone();
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let sig = req
                            .headers()
                            .get(SIGNATURE_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        let body = req.into_body().collect().await?.to_bytes().to_vec();
                        let _ = tx.send(Seen::Request(sig, body)).await;
                        Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Full::new(
                            bytes::Bytes::new(),
                        )))
                    }
                });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (port, rx)
}

fn request(text: &str) -> StepUpRequest {
    StepUpRequest {
        session_id: "s7".into(),
        seq: 2,
        identity: "alice".into(),
        identity_kind: UserKind::Human,
        target: "prod-db".into(),
        protocol: Protocol::Postgres,
        text: text.into(),
        digest: action_digest("s7", 2, text.as_bytes()),
        facts: serde_json::json!({"class": "delete"}),
        policy_ids: vec!["SQL-3".into()],
        approver_groups: vec!["dba".into()],
        kind: StepUpKind::Approval,
        cancel: CancellationToken::new(),
    }
}

fn directory() -> Directory {
    Directory::new([
        (
            "alice".to_string(),
            UserKind::Human,
            vec!["engineers".into()],
        ),
        ("dana".to_string(), UserKind::Human, vec!["dba".into()]),
    ])
}

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(50),
        attempt_timeout: Duration::from_secs(10),
    }
}

async fn next(rx: &mut mpsc::Receiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the receiver saw something in time")
        .expect("receiver alive")
}

#[tokio::test]
async fn https_webhook_arrives_signed_at_a_receiver_the_ca_vouches_for() {
    let dir = tempfile::tempdir().unwrap();
    let key = load_or_create_key(dir.path()).unwrap();
    let pki = TestCa::new();
    let leaf = pki.issue(&["127.0.0.1", "localhost"]);
    let (port, mut seen) = https_receiver(leaf.server_config()).await;
    let ca = pki.write_ca(dir.path(), "ca.pem");
    let urls = vec![
        format!("https://127.0.0.1:{port}/hooks/ip"),
        format!("https://localhost:{port}/hooks/name"),
    ];
    let targets = WebhookTargets::new(&urls, Some(&ca), false).unwrap();
    let broker = Broker::new(Duration::from_secs(60), directory())
        .with_webhooks(WebhookNotifier::start(targets, key.clone(), quick_retry(3)));
    let (id, _wait) = broker.submit(request("DELETE FROM app.orders"));
    for _ in 0..2 {
        let Seen::Request(sig, body) = next(&mut seen).await else {
            panic!("the handshake with a trusted certificate failed");
        };
        assert!(verify_signature(&key, &body, &sig), "signature {sig:?}");
        assert!(!verify_signature(b"another key", &body, &sig));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["request"]["id"], id.as_str());
        assert_eq!(json["request"]["text"], "DELETE FROM app.orders");
        assert!(json["text"]
            .as_str()
            .unwrap()
            .contains(&format!("bastion approvals approve {id}")));
    }
}

#[tokio::test]
async fn https_webhook_refuses_an_untrusted_ca_and_a_wrong_name() {
    let dir = tempfile::tempdir().unwrap();
    let key = load_or_create_key(dir.path()).unwrap();
    let trusted = TestCa::new();
    let ca = trusted.write_ca(dir.path(), "ca.pem");
    // Same name, another CA; and the trusted CA, but a certificate for another name.
    let impostor = TestCa::new().issue(&["127.0.0.1"]);
    let misnamed = trusted.issue(&["hooks.example"]);
    for (what, server) in [("untrusted CA", impostor), ("wrong name", misnamed)] {
        let (port, mut seen) = https_receiver(server.server_config()).await;
        let url = format!("https://127.0.0.1:{port}/hook");
        let targets = WebhookTargets::new(&[url], Some(&ca), false).unwrap();
        let broker = Broker::new(Duration::from_secs(60), directory())
            .with_webhooks(WebhookNotifier::start(targets, key.clone(), quick_retry(2)));
        let (id, _wait) = broker.submit(request("DROP TABLE app.orders"));
        for attempt in 1..=2 {
            assert!(
                matches!(next(&mut seen).await, Seen::HandshakeFailed),
                "{what}: attempt {attempt} must fail at the handshake, before any payload"
            );
        }
        // The failing webhook lost nothing: the request still waits for an approver.
        assert_eq!(broker.get(id.as_str()).unwrap().status, "pending");
    }
}

#[test]
fn a_leaf_issued_by_the_test_ca_fails_on_the_name_alone() {
    // Guards the test above: the "wrong name" case must fail on the name, not on the CA, so
    // the leaf has to verify against its CA when the name is right.
    let trusted = TestCa::new();
    let leaf = trusted.issue(&["hooks.example"]);
    let roots = {
        let dir = tempfile::tempdir().unwrap();
        crate::admin::tls_client::roots_from_pem_file(&trusted.write_ca(dir.path(), "ca.pem"))
            .unwrap()
    };
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    use rustls::client::danger::ServerCertVerifier;
    let now = rustls::pki_types::UnixTime::now();
    let ok = rustls::pki_types::ServerName::try_from("hooks.example").unwrap();
    let bad = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    assert!(verifier
        .verify_server_cert(&leaf.cert, &[], &ok, &[], now)
        .is_ok());
    assert!(verifier
        .verify_server_cert(&leaf.cert, &[], &bad, &[], now)
        .is_err());
}

#[tokio::test]
async fn admin_api_over_tls_has_the_same_routes_and_token_rules() {
    let f = start(Duration::from_secs(60)).await;
    let pki = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(dir.path(), "ca.pem");
    let leaf = pki.issue(&["127.0.0.1"]);
    let listener = AdminTlsListener::bind("127.0.0.1:0".parse().unwrap(), leaf.server_config())
        .await
        .unwrap();
    let addr = listener.local_addr();
    let stop = CancellationToken::new();
    let server = tokio::spawn(listener.run(f.state.clone(), stop.clone()));
    let url = format!("https://{addr}");
    let client = |token: Option<String>| AdminClient::tls(&url, Some(&ca), token).unwrap();
    let issue = |user: &str, scope: Scope| Some(f.tokens.issue(user, scope, None).unwrap().1);

    // Approve a waiting request over TLS: the approver is the token's user.
    let (id, waiter) = f.submit("alice", "DELETE FROM orders");
    let dana = client(issue("dana", Scope::Approve));
    let (s, view) = status_and_json(
        &dana,
        Method::POST,
        &format!("/v1/approvals/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(
        (s, view["status"].as_str()),
        (200, Some("approved")),
        "{view}"
    );
    assert!(matches!(
        waiter.await.unwrap(),
        StepUpOutcome::Approved { approver, .. } if approver == "dana"
    ));

    // No token: 401; wrong scope: 403; both without detail.
    let (s, body) = status_and_json(&client(None), Method::GET, "/v1/approvals", None).await;
    assert_eq!(
        (s, body),
        (401, serde_json::json!({"error": "unauthorized"}))
    );
    let (s, body) = status_and_json(&dana, Method::GET, "/v1/sessions", None).await;
    assert_eq!((s, body), (403, serde_json::json!({"error": "forbidden"})));
    let (s, _) = status_and_json(&client(None), Method::GET, "/v1/healthz", None).await;
    assert_eq!(s, 200);

    // A client trusting another CA does not get through the handshake.
    let other = TestCa::new().write_ca(dir.path(), "other.pem");
    let stranger = AdminClient::tls(&url, Some(&other), issue("dana", Scope::Admin)).unwrap();
    let err = stranger
        .raw(Method::GET, "/v1/approvals", None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tls with"), "{err}");

    // Plaintext HTTP to the TLS port gets no HTTP answer.
    assert!(plaintext_reply(addr).await.is_none());

    // Only https URLs, and only host:port.
    for bad in [
        format!("http://{addr}"),
        format!("https://{addr}/v1"),
        "bastion:9443".to_string(),
    ] {
        assert!(AdminClient::tls(&bad, Some(&ca), None).is_err(), "{bad}");
    }

    stop.cancel();
    server.await.unwrap().unwrap();
}

/// Sends a plaintext HTTP request to `addr`; returns the answer if it looks like HTTP.
pub(super) async fn plaintext_reply(addr: std::net::SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /v1/healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut reply)).await;
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.starts_with("HTTP/").then_some(text)
}
