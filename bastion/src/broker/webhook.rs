//! Notifications of new step-up requests: a JSON POST to each configured URL with a
//! Slack-compatible `text` and the full request, signed `X-Bastion-Signature: sha256=<hex>`
//! (HMAC-SHA-256 of the body with a key kept in the state directory, mode 0600). Delivery runs in
//! background tasks with exponential backoff; `notify` never waits, and a webhook that is down
//! never holds up, fails or loses a request — at worst its notification is dropped and logged.
//!
//! URLs are `https://` (certificate verified against `approvals.webhook_ca`, or the system roots
//! when unset; see `admin::tls_client`), or `http://` to a loopback address only, unless
//! `approvals.allow_insecure_webhooks` says otherwise: a request's text can be sensitive, and an
//! unauthenticated receiver could be impersonated. [`WebhookTargets`] applies that rule, at
//! config load (so `bastion check` refuses) and again when the notifier starts.
use super::request::ApprovalView;
use crate::admin::http_client::{self, HttpUrl};
use crate::admin::private_file::write_private_file;
use crate::admin::tls_client::{self, TlsSetupError};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use sha2::Sha256;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Bastion-Signature";

/// Notifications queued before new ones are dropped (and logged).
const QUEUE: usize = 1024;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 64;

/// How often and how patiently to retry a delivery.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in total.
    pub attempts: u32,
    /// Delay before the second attempt; doubles after each failure.
    pub first_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// Time allowed for one attempt (connect, send, read).
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the webhook settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Not an `http(s)://host[:port]/path` URL.
    #[error("webhook {0:?} is not an http(s)://host[:port]/path URL")]
    BadUrl(String),
    /// Plain HTTP to another machine without `allow_insecure_webhooks`.
    #[error(
        "webhook {0} would send step-up requests unencrypted to another machine; use https://, \
         a loopback address, or set approvals.allow_insecure_webhooks = true"
    )]
    Insecure(String),
    /// The TLS roots could not be loaded.
    #[error("webhooks: {0}")]
    Tls(#[from] TlsSetupError),
}

/// Checks one configured URL against the transport rule: `https://` anywhere, `http://` to a
/// loopback address, any `http://` with `allow_insecure`.
pub fn check_url(url: &str, allow_insecure: bool) -> Result<HttpUrl, WebhookError> {
    let parsed = HttpUrl::parse(url).map_err(|_| WebhookError::BadUrl(url.to_string()))?;
    if !parsed.tls && !parsed.is_loopback() && !allow_insecure {
        return Err(WebhookError::Insecure(url.to_string()));
    }
    Ok(parsed)
}

/// The URLs to notify and the TLS client for the `https://` ones.
#[derive(Clone)]
pub struct WebhookTargets {
    urls: Vec<HttpUrl>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for WebhookTargets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTargets")
            .field("urls", &self.urls)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl WebhookTargets {
    /// `urls` checked with [`check_url`]; when any is `https://`, roots from the PEM file `ca`
    /// or, without one, the system store (an empty store is an error, not a silent failure).
    pub fn new(
        urls: &[String],
        ca: Option<&Path>,
        allow_insecure: bool,
    ) -> Result<WebhookTargets, WebhookError> {
        let urls = urls
            .iter()
            .map(|u| check_url(u, allow_insecure))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = if urls.iter().any(|u| u.tls) {
            Some(tls_client::client_config(tls_client::roots(ca)?)?)
        } else {
            None
        };
        Ok(WebhookTargets { urls, tls })
    }

    /// The targets of `[approvals]`.
    pub fn from_config(
        approvals: &crate::config::Approvals,
    ) -> Result<WebhookTargets, WebhookError> {
        WebhookTargets::new(
            &approvals.webhooks,
            approvals.webhook_ca.as_deref(),
            approvals.allow_insecure_webhooks,
        )
    }
}

/// Sends notifications in the background.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    tx: mpsc::Sender<ApprovalView>,
}

impl WebhookNotifier {
    /// Starts the delivery worker (call inside a tokio runtime).
    pub fn start(targets: WebhookTargets, key: Vec<u8>, retry: RetryPolicy) -> WebhookNotifier {
        let WebhookTargets { urls, tls } = targets;
        let (tx, mut rx) = mpsc::channel::<ApprovalView>(QUEUE);
        let key = Arc::new(key);
        tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(IN_FLIGHT));
            while let Some(view) = rx.recv().await {
                let body = Bytes::from(payload(&view));
                let signature = sign(&key, &body);
                for url in &urls {
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        return;
                    };
                    let (url, body, signature) = (url.clone(), body.clone(), signature.clone());
                    let tls = tls.clone();
                    let id = view.id.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        deliver(&url, tls, body, &signature, retry, &id.0).await;
                    });
                }
            }
        });
        WebhookNotifier { tx }
    }

    /// Queues a notification; never waits.
    pub fn notify(&self, view: &ApprovalView) {
        if let Err(e) = self.tx.try_send(view.clone()) {
            tracing::warn!(request = %view.id, error = %e, "webhook notification dropped (queue full or stopped)");
        }
    }
}

/// Reads the signing key at `<state_dir>/webhook.key`, creating 32 random bytes (hex, mode 0600)
/// on first use.
pub fn load_or_create_key(state_dir: &Path) -> std::io::Result<Vec<u8>> {
    let path = state_dir.join("webhook.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand::RngCore;
            let mut key = vec![0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            write_private_file(&path, format!("{}\n", hex::encode(&key)).as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// The JSON body: `{"text": <Slack text>, "request": <ApprovalView>}`.
pub fn payload(view: &ApprovalView) -> Vec<u8> {
    let policies = if view.policy_ids.is_empty() {
        "-".to_string()
    } else {
        view.policy_ids.join(", ")
    };
    let text = format!(
        "Step-up ({kind}) requested: *{who}* on *{target}* ({protocol}) wants to run:\n```{action}```\n\
         policies: {policies} · request `{id}` · `bastion approvals approve {id}`",
        kind = view.kind.as_str(),
        who = view.identity,
        target = view.target,
        protocol = view.protocol,
        action = view.text.replace("```", "'''"),
        id = view.id,
    );
    serde_json::to_vec(&serde_json::json!({ "text": text, "request": view })).unwrap_or_default()
}

/// `sha256=<hex HMAC-SHA-256 of body>`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

/// Whether `header` is a valid signature of `body` under `key` (constant-time), for receivers.
pub fn verify_signature(key: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn deliver(
    url: &HttpUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    body: Bytes,
    signature: &str,
    retry: RetryPolicy,
    id: &str,
) {
    let mut delay = retry.first_delay;
    for attempt in 1..=retry.attempts.max(1) {
        match tokio::time::timeout(
            retry.attempt_timeout,
            attempt_once(url, tls.clone(), body.clone(), signature),
        )
        .await
        {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                tracing::debug!(request = id, url = %url.host_header, attempt, "webhook delivered");
                return;
            }
            Ok(Ok(status)) => {
                tracing::warn!(request = id, url = %url.host_header, attempt, status, "webhook refused")
            }
            Ok(Err(e)) => {
                tracing::warn!(request = id, url = %url.host_header, attempt, error = %e, "webhook failed")
            }
            Err(_) => {
                tracing::warn!(request = id, url = %url.host_header, attempt, "webhook timed out")
            }
        }
        if attempt < retry.attempts {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(retry.max_delay);
        }
    }
    tracing::error!(request = id, url = %url.host_header, "webhook gave up after {} attempts", retry.attempts);
}

async fn attempt_once(
    url: &HttpUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    body: Bytes,
    signature: &str,
) -> Result<u16, http_client::HttpError> {
    let request = hyper::Request::post(&url.path)
        .header(hyper::header::HOST, &url.host_header)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "bastion")
        .header(SIGNATURE_HEADER, signature)
        .body(Full::new(body))?;
    let response = match (url.tls, tls) {
        (true, Some(config)) => {
            let stream = tls_client::connect(config, url).await?;
            http_client::send(stream, request).await?
        }
        // An https URL never goes out in clear, even if no TLS client was built for it.
        (true, None) => return Err(http_client::HttpError::Url(url.host_header.clone())),
        (false, _) => {
            let stream = tokio::net::TcpStream::connect(&url.authority)
                .await
                .map_err(|source| http_client::HttpError::Connect {
                    target: url.authority.clone(),
                    source,
                })?;
            http_client::send(stream, request).await?
        }
    };
    Ok(response.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_and_detects_tampering() {
        let key = b"k".repeat(32);
        let sig = sign(&key, b"{\"a\":1}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify_signature(&key, b"{\"a\":1}", &sig));
        assert!(!verify_signature(&key, b"{\"a\":2}", &sig));
        assert!(!verify_signature(b"other", b"{\"a\":1}", &sig));
        assert!(!verify_signature(&key, b"{\"a\":1}", "sha1=00"));
    }

    #[test]
    fn plain_http_is_for_loopback_unless_explicitly_allowed() {
        assert!(check_url("https://hooks.slack.com/services/x", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook", false).is_ok());
        assert!(check_url("http://[::1]:9000/hook", false).is_ok());
        assert!(check_url("http://localhost/hook", false).is_ok());
        for remote in [
            "http://hooks.internal/x",
            "http://10.1.2.3/x",
            "http://localhost.evil/x",
        ] {
            assert!(
                matches!(check_url(remote, false), Err(WebhookError::Insecure(_))),
                "{remote}"
            );
            assert!(check_url(remote, true).is_ok(), "{remote}");
        }
        assert!(matches!(
            check_url("ftp://x/y", true),
            Err(WebhookError::BadUrl(_))
        ));
    }

    #[test]
    fn https_targets_need_usable_roots_plain_ones_need_none() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let plain = WebhookTargets::new(&["http://127.0.0.1:1/x".into()], Some(&missing), false);
        assert!(plain.is_ok(), "no https URL, so the CA file is not read");
        let tls = WebhookTargets::new(&["https://127.0.0.1:1/x".into()], Some(&missing), false);
        assert!(matches!(tls, Err(WebhookError::Tls(_))));
    }

    #[test]
    fn key_is_created_once_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let k1 = load_or_create_key(dir.path()).unwrap();
        let k2 = load_or_create_key(dir.path()).unwrap();
        assert_eq!(k1, k2);
        assert_eq!(k1.len(), 32);
        let mode = std::fs::metadata(dir.path().join("webhook.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}
