//! The point-of-use connection to an SSH target: the bastion logs in as the target's
//! `upstream_user` with its own key (`<state_dir>/ssh/client_ed25519`, never shown to clients),
//! or with `upstream_auth = "certificate"` with a key pair and certificate made for this session
//! only (`cert_authority`), after checking the target's host key against the configured pin. A
//! mismatch, an unreachable target or a refused login is an [`UpstreamError`] whose text is
//! shown to the client.
use super::cert_authority::{self, CertificateRequest};
use crate::config::{CertificateSettings, Target, UpstreamAuth};
use crate::upstream_login::SessionLogin;
use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why the bastion could not reach or log in to a target.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No `host_key` pinned (config validation should prevent it).
    #[error("target {target} has no host_key pinned")]
    NoPin {
        /// Target name.
        target: String,
    },
    /// The pinned key does not parse.
    #[error("target {target} host_key does not parse: {message}")]
    BadPin {
        /// Target name.
        target: String,
        /// Parser message.
        message: String,
    },
    /// The target presented another host key: possible man in the middle.
    #[error("host key mismatch for target {target}: it presented {presented}, the configured host_key is {pinned}; refusing to connect")]
    HostKeyMismatch {
        /// Target name.
        target: String,
        /// Fingerprint presented.
        presented: String,
        /// Fingerprint pinned.
        pinned: String,
    },
    /// TCP or SSH transport failure.
    #[error("cannot reach target {target} at {address}: {message}")]
    Unreachable {
        /// Target name.
        target: String,
        /// Address.
        address: String,
        /// Cause.
        message: String,
    },
    /// The target refused the bastion's key.
    #[error("target {target} refused the bastion's key for user {user} (authorize the output of `bastion keys client-public`)")]
    LoginRefused {
        /// Target name.
        target: String,
        /// Upstream user.
        user: String,
    },
    /// The target refused the session's certificate.
    #[error("target {target} refused the bastion's certificate for user {user} (list the output of `bastion ca export` in the target's TrustedUserCAKeys; the certificate is bound to source address {source_address})")]
    CertificateRefused {
        /// Target name.
        target: String,
        /// Upstream user (the certificate's principal).
        user: String,
        /// The `source-address` written in the certificate.
        source_address: String,
    },
    /// No certificate could be issued (CA key unusable) or recorded; nothing was sent.
    #[error("target {target}: no session certificate: {message}")]
    NoCertificate {
        /// Target name.
        target: String,
        /// Cause.
        message: String,
    },
    /// Took longer than the login timeout.
    #[error("connecting to target {target} timed out after {0:?}", timeout)]
    Timeout {
        /// Target name.
        target: String,
        /// Limit.
        timeout: Duration,
    },
}

/// The pin check, plus what the target presented (for the error).
pub struct PinnedHostKey {
    pinned: PublicKey,
    presented: Arc<Mutex<Option<String>>>,
    /// Called when the target opens a forwarded-tcpip channel (remote forwards).
    pub forwarded: Option<super::forward::ForwardedSink>,
}

impl client::Handler for PinnedHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // Host certificates are not trusted by pin: compare the certified key.
            PublicKeyOrCertificate::Certificate(c) => PublicKey::new(c.public_key().clone(), ""),
        };
        if let Ok(mut g) = self.presented.lock() {
            *g = Some(super::keys::fingerprint(&presented));
        }
        Ok(presented.key_data() == self.pinned.key_data())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        match &self.forwarded {
            Some(sink) => {
                sink.accept(
                    channel,
                    connected_address,
                    connected_port,
                    originator_address,
                    originator_port,
                    reply,
                )
                .await
            }
            None => {
                reply
                    .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                    .await
            }
        }
        Ok(())
    }
}

/// A logged-in upstream connection.
pub type Upstream = client::Handle<PinnedHostKey>;

/// Connects to `target`, checks its host key, logs in with `key` (or, for `upstream_auth =
/// "certificate"`, with a certificate issued for `login`'s session).
pub async fn connect(
    target: &Target,
    key: Arc<PrivateKey>,
    timeout: Duration,
    forwarded: Option<super::forward::ForwardedSink>,
    login: &SessionLogin<'_>,
) -> Result<Upstream, UpstreamError> {
    let name = target.name.clone();
    let pin_text = target
        .host_key
        .as_deref()
        .ok_or_else(|| UpstreamError::NoPin {
            target: name.clone(),
        })?;
    let pinned = PublicKey::from_openssh(pin_text.trim()).map_err(|e| UpstreamError::BadPin {
        target: name.clone(),
        message: e.to_string(),
    })?;
    let pinned_fp = super::keys::fingerprint(&pinned);
    let presented = Arc::new(Mutex::new(None));
    let handler = PinnedHostKey {
        pinned,
        presented: presented.clone(),
        forwarded,
    };
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        window_size: 2 * 1024 * 1024,
        maximum_packet_size: 32768,
        nodelay: true,
        ..Default::default()
    });
    let attempt = async {
        let unreachable = |message: String| UpstreamError::Unreachable {
            target: name.clone(),
            address: target.address.clone(),
            message,
        };
        let tcp = tokio::net::TcpStream::connect(target.address.as_str())
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        // The bastion's address as the target sees it (no NAT in between): the default
        // `source-address` of a session certificate.
        let local = tcp.local_addr().map_err(|e| unreachable(e.to_string()))?;
        let mut handle = match client::connect_stream(config, tcp, handler).await {
            Ok(h) => h,
            Err(russh::Error::UnknownKey) => {
                let shown = presented
                    .lock()
                    .ok()
                    .and_then(|g| g.clone())
                    .unwrap_or_else(|| "an unknown key".into());
                return Err(UpstreamError::HostKeyMismatch {
                    target: name.clone(),
                    presented: shown,
                    pinned: pinned_fp.clone(),
                });
            }
            Err(e) => {
                return Err(UpstreamError::Unreachable {
                    target: name.clone(),
                    address: target.address.clone(),
                    message: e.to_string(),
                })
            }
        };
        if let UpstreamAuth::Certificate(settings) = &target.upstream_auth {
            certificate_login(&mut handle, target, settings, local, login).await?;
            return Ok(handle);
        }
        let auth = handle
            .authenticate_publickey(
                target.upstream_user.clone(),
                PrivateKeyWithHashAlg::new(key, None),
            )
            .await
            .map_err(|e| UpstreamError::Unreachable {
                target: name.clone(),
                address: target.address.clone(),
                message: e.to_string(),
            })?;
        if !auth.success() {
            return Err(UpstreamError::LoginRefused {
                target: name.clone(),
                user: target.upstream_user.clone(),
            });
        }
        Ok::<Upstream, UpstreamError>(handle)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(UpstreamError::Timeout {
            target: name,
            timeout,
        }),
    }
}

/// Issues a certificate for this session (recorded first) and logs in with it.
async fn certificate_login(
    handle: &mut Upstream,
    target: &Target,
    settings: &CertificateSettings,
    local: SocketAddr,
    login: &SessionLogin<'_>,
) -> Result<(), UpstreamError> {
    let no_cert = |message: String| UpstreamError::NoCertificate {
        target: target.name.clone(),
        message,
    };
    let source_address = if settings.source_address.is_empty() {
        vec![ipnet::IpNet::from(local.ip())]
    } else {
        settings.source_address.clone()
    };
    let source = cert_authority::source_address_option(&source_address);
    let request = CertificateRequest {
        principal: &target.upstream_user,
        key_id: format!(
            "{}@{} session {}",
            login.identity, target.name, login.session_id
        ),
        valid_for: settings.valid_for,
        source_address: &source_address,
        now: std::time::SystemTime::now(),
    };
    let ca =
        cert_authority::load_or_generate(&settings.ca_key).map_err(|e| no_cert(e.to_string()))?;
    login
        .record_issue(
            target,
            "certificate",
            &target.upstream_user,
            format!(
                "ssh user certificate for principal {} key id {:?} valid for {}s source-address {source}",
                target.upstream_user,
                request.key_id,
                settings.valid_for.as_secs()
            ),
        )
        .await
        .map_err(|e| no_cert(e.to_string()))?;
    let issued = match cert_authority::issue(&ca, &request) {
        Ok(i) => i,
        Err(e) => {
            login.record_outcome(Err(e.to_string())).await;
            return Err(no_cert(e.to_string()));
        }
    };
    cert_authority::write_for_tests(login.session_id, &issued);
    let summary = issued.summary();
    let auth = handle
        .authenticate_openssh_cert(
            target.upstream_user.clone(),
            Arc::new(issued.key),
            issued.certificate,
        )
        .await;
    match auth {
        Ok(a) if a.success() => {
            login.record_outcome(Ok(summary)).await;
            Ok(())
        }
        Ok(_) => {
            login
                .record_outcome(Err(format!("refused by the target: {summary}")))
                .await;
            Err(UpstreamError::CertificateRefused {
                target: target.name.clone(),
                user: target.upstream_user.clone(),
                source_address: source,
            })
        }
        Err(e) => {
            login.record_outcome(Err(e.to_string())).await;
            Err(UpstreamError::Unreachable {
                target: target.name.clone(),
                address: target.address.clone(),
                message: e.to_string(),
            })
        }
    }
}
