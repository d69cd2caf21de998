//! Point-of-use credential: the bastion connects to the target itself, over TLS verified
//! against the target's pinned root (`verify-full`: chain and host name), and logs in with the
//! secret only it holds (SCRAM-SHA-256, or cleartext password inside TLS). The client never sees
//! the secret, the target's address, or its cancel key. With `upstream_auth = "ephemeral_role"`
//! that secret is the admin login that creates a role for this session only (`ephemeral_role`),
//! and the session logs in as that role.
use super::stream::BoxStream;
use crate::config::{Target, UpstreamAuth, UpstreamTls};
use crate::upstream_login::SessionLogin;
use bytes::BytesMut;
use protocol::postgres::backend::{Authentication, BackendKeyData, ParameterStatus};
use protocol::postgres::frontend::{PasswordMessage, SaslInitialResponse, SaslResponse};
use protocol::postgres::scram::{ChannelBinding, ScramClient};
use protocol::postgres::{decode_frame, BackendMessage, Frame, StartupPacket, TransactionStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Why the target could not be used. Messages are shown to the client (without secrets).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// TCP connect failed.
    #[error("cannot reach target {target}: {source}")]
    Connect {
        /// Target name.
        target: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The target refused TLS or its certificate did not verify.
    #[error("target {target} failed TLS verification: {reason}")]
    Tls {
        /// Target name.
        target: String,
        /// Cause.
        reason: String,
    },
    /// The target rejected the bastion's credential or the startup.
    #[error("target {target} refused the bastion's login: {reason}")]
    Login {
        /// Target name.
        target: String,
        /// The server's message.
        reason: String,
    },
    /// The target spoke something that is not the PostgreSQL protocol, or closed.
    #[error("target {target}: {reason}")]
    Protocol {
        /// Target name.
        target: String,
        /// What went wrong.
        reason: String,
    },
}

/// A logged-in upstream connection, ready for queries.
pub struct Upstream {
    /// The stream (TLS unless the target is configured `tls = "disable"`).
    pub stream: BoxStream,
    /// Bytes read past the first ReadyForQuery (normally empty).
    pub leftover: BytesMut,
    /// ParameterStatus frames as received, to relay to the client.
    pub parameter_status: Vec<Frame>,
    /// `standard_conforming_strings` as the server reported it.
    pub standard_conforming_strings: Option<bool>,
    /// The target's cancel key.
    pub key: Option<BackendKeyData>,
    /// Transaction status of the first ReadyForQuery.
    pub status: TransactionStatus,
    /// The session's own login role (`ephemeral_role`): dropped when this is dropped.
    pub ephemeral_role: Option<super::ephemeral_role::RoleLease>,
}

/// Connects and logs in to `target` as its `upstream_user` with `password`, on `database`,
/// passing the client's safe startup parameters. With `upstream_auth = "ephemeral_role"`,
/// `password` is the admin login's: a role is made for `login`'s session and used instead.
pub async fn connect(
    target: &Target,
    password: &str,
    database: &str,
    client_params: &[(String, String)],
    max_frame: usize,
    timeout: Duration,
    login: &SessionLogin<'_>,
) -> Result<Upstream, UpstreamError> {
    let attempt = async {
        match &target.upstream_auth {
            UpstreamAuth::EphemeralRole(settings) => {
                super::ephemeral_role::open(
                    super::ephemeral_role::Admin::new(
                        target, settings, password, database, max_frame, timeout,
                    ),
                    client_params,
                    login,
                )
                .await
            }
            _ => {
                connect_as(
                    target,
                    &target.upstream_user,
                    password,
                    database,
                    client_params,
                    max_frame,
                )
                .await
            }
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(UpstreamError::Protocol {
            target: target.name.clone(),
            reason: format!("no answer within {}s", timeout.as_secs()),
        }),
    }
}

/// Connects and logs in to `target` as `user` (no time limit: callers set one).
pub(super) async fn connect_as(
    target: &Target,
    user: &str,
    password: &str,
    database: &str,
    client_params: &[(String, String)],
    max_frame: usize,
) -> Result<Upstream, UpstreamError> {
    let name = target.name.clone();
    let proto = |reason: String| UpstreamError::Protocol {
        target: name.clone(),
        reason,
    };
    let mut tcp = TcpStream::connect(&target.address)
        .await
        .map_err(|source| UpstreamError::Connect {
            target: target.name.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let mut cert_hash = None;
    let mut stream: BoxStream = match &target.tls {
        Some(UpstreamTls::VerifyFull { root }) => {
            let mut req = BytesMut::new();
            StartupPacket::encode_ssl_request(&mut req);
            super::stream::send(&mut tcp, &req)
                .await
                .map_err(|e| proto(e.to_string()))?;
            let mut answer = [0u8; 1];
            tcp.read_exact(&mut answer)
                .await
                .map_err(|e| proto(e.to_string()))?;
            if answer[0] != b'S' {
                return Err(UpstreamError::Tls {
                    target: name,
                    reason: "the server does not accept TLS".into(),
                });
            }
            let tls_err = |reason: String| UpstreamError::Tls {
                target: target.name.clone(),
                reason,
            };
            let config = client_tls_config(root).map_err(|e| tls_err(e.to_string()))?;
            let host = target
                .address
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(&target.address);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let server_name = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| tls_err(format!("invalid host name {host:?}: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(server_name, tcp)
                .await
                .map_err(|e| tls_err(e.to_string()))?;
            cert_hash = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| <sha2::Sha256 as sha2::Digest>::digest(c.as_ref()).to_vec());
            Box::new(tls)
        }
        Some(UpstreamTls::Disable) | None => Box::new(tcp),
    };
    // Channel binding upstream is not used: the connection is already verify-full TLS, and
    // certificates whose signature hash is not SHA-256 (e.g. Ed25519) cannot be bound.
    let _ = cert_hash;

    let mut params: Vec<(String, String)> = vec![
        ("user".into(), user.to_string()),
        ("database".into(), database.to_string()),
    ];
    params.extend(client_params.iter().cloned());
    let mut startup = BytesMut::new();
    StartupPacket::encode_startup(&mut startup, 196608, &params);
    super::stream::send(&mut stream, &startup)
        .await
        .map_err(|e| proto(e.to_string()))?;

    let mut buf = BytesMut::with_capacity(8192);
    let mut scram: Option<ScramClient> = None;
    let mut up = Upstream {
        stream,
        leftover: BytesMut::new(),
        parameter_status: Vec::new(),
        standard_conforming_strings: None,
        key: None,
        status: TransactionStatus::Idle,
        ephemeral_role: None,
    };
    loop {
        let frame = read_frame(&mut up.stream, &mut buf, max_frame)
            .await
            .map_err(proto)?;
        let msg = BackendMessage::decode(&frame).map_err(|e| proto(e.to_string()))?;
        let mut out = BytesMut::new();
        match msg {
            BackendMessage::Authentication(Authentication::Ok) => {}
            BackendMessage::Authentication(Authentication::CleartextPassword) => {
                PasswordMessage {
                    password: password.to_string(),
                }
                .encode(&mut out);
            }
            BackendMessage::Authentication(Authentication::Md5Password { .. }) => {
                return Err(UpstreamError::Login {
                    target: name,
                    reason: "the target asks for md5 password authentication; configure scram-sha-256 for the bastion's role".into(),
                });
            }
            BackendMessage::Authentication(Authentication::Sasl { mechanisms }) => {
                let mut client = ScramClient::new(password, ChannelBinding::NotSupported);
                if !mechanisms.iter().any(|m| m == client.mechanism()) {
                    return Err(UpstreamError::Login {
                        target: name,
                        reason: format!("no supported SASL mechanism in {mechanisms:?}"),
                    });
                }
                SaslInitialResponse {
                    mechanism: client.mechanism().to_string(),
                    data: Some(client.client_first().into()),
                }
                .encode(&mut out);
                scram = Some(client);
            }
            BackendMessage::Authentication(Authentication::SaslContinue { data }) => {
                let client = scram
                    .as_mut()
                    .ok_or_else(|| proto("unexpected SASL continue".into()))?;
                let reply =
                    client
                        .handle_server_first(&data)
                        .map_err(|e| UpstreamError::Login {
                            target: name.clone(),
                            reason: e.to_string(),
                        })?;
                SaslResponse { data: reply.into() }.encode(&mut out);
            }
            BackendMessage::Authentication(Authentication::SaslFinal { data }) => {
                let client = scram
                    .as_mut()
                    .ok_or_else(|| proto("unexpected SASL final".into()))?;
                client
                    .verify_server_final(&data)
                    .map_err(|e| UpstreamError::Login {
                        target: name.clone(),
                        reason: format!("server signature: {e}"),
                    })?;
            }
            BackendMessage::ParameterStatus(ParameterStatus { name: key, value }) => {
                if key == "standard_conforming_strings" {
                    up.standard_conforming_strings = Some(value == "on");
                }
                up.parameter_status.push(frame);
            }
            BackendMessage::BackendKeyData(k) => up.key = Some(k),
            BackendMessage::ErrorResponse(e) => {
                return Err(UpstreamError::Login {
                    target: name,
                    reason: format!(
                        "{} ({})",
                        e.fields.message().unwrap_or("error"),
                        e.fields.code().unwrap_or("?????")
                    ),
                });
            }
            BackendMessage::NoticeResponse(_) | BackendMessage::NegotiateProtocolVersion(_) => {}
            BackendMessage::ReadyForQuery(r) => {
                up.status = r.status;
                up.leftover = buf;
                return Ok(up);
            }
            other => return Err(proto(format!("unexpected message during login: {other:?}"))),
        }
        if !out.is_empty() {
            super::stream::send(&mut up.stream, &out)
                .await
                .map_err(|e| proto(e.to_string()))?;
        }
    }
}

/// Reads one frame (protocol frames only; startup-phase replies are not frames).
pub(super) async fn read_frame(
    stream: &mut BoxStream,
    buf: &mut BytesMut,
    max_frame: usize,
) -> Result<Frame, String> {
    loop {
        match decode_frame(buf, max_frame) {
            Ok(Some(f)) => return Ok(f),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        let n = stream.read_buf(buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection during login".into());
        }
    }
}

fn client_tls_config(root: &std::path::Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let pem = std::fs::read(root)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}
