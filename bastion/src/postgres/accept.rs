//! Account entry for PostgreSQL clients: SSLRequest → TLS (required unless the client's network
//! is in `allow_plaintext_from`), GSSENCRequest → `N`, CancelRequest → mapped and forwarded,
//! then the startup packet: `user=identity@target` routes, dangerous parameters are refused,
//! SCRAM-SHA-256(-PLUS) proves the identity against the bastion's own verifier (unknown users get
//! an equally slow exchange against a decoy), failures back off and lock out, and every attempt
//! is an `entries` row. Then the `connect` policy decides and the session starts.
use super::cancel::{send_cancel, UpstreamKey};
use super::reply;
use super::stream::BoxStream;
use super::upstream::{self, UpstreamError};
use crate::config::AuthMethod;
use crate::config::Protocol;
use crate::entry::parse_route;
use crate::entry::proofs::not_allowed;
use crate::entry::risk::{annotate, RiskFlag};
use crate::state::{identity_kind, target_of, Shared};
use bytes::BytesMut;
use protocol::postgres::backend::{Authentication, NegotiateProtocolVersion};
use protocol::postgres::frontend::{PasswordMessage, SaslInitialResponse, SaslResponse};
use protocol::postgres::scram::{ScramServer, Verifier};
use protocol::postgres::{
    decode_frame, decode_startup, sqlstate, Frame, StartupPacket, MAX_STARTUP_PACKET_LEN,
};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tracing::Instrument;

/// Startup parameters passed to the target. Anything else is refused: `replication`, `role`,
/// `session_authorization` and arbitrary GUCs could change who the session acts as or bypass
/// statement control.
const SAFE_PARAMS: &[&str] = &[
    "application_name",
    "client_encoding",
    "datestyle",
    "timezone",
    "extra_float_digits",
    "intervalstyle",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "jit",
    "work_mem",
    "geqo",
    "bytea_output",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
];

/// Serves one PostgreSQL client connection to its end.
pub async fn serve_connection(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let span = tracing::info_span!("pg", %peer, session = tracing::field::Empty, user = tracing::field::Empty, target = tracing::field::Empty);
    async move {
        let _ = tcp.set_nodelay(true);
        let login_timeout = shared.config.limits.login_timeout;
        match tokio::time::timeout(login_timeout, entry(tcp, peer, &shared)).await {
            Ok(Ok(Some(session))) => session.run(&shared).await,
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "connection ended during entry"),
            Err(_) => tracing::info!("login timeout"),
        }
    }
    .instrument(span)
    .await
}

/// The state handed from entry to the relay.
pub struct Authenticated {
    /// Client stream.
    pub client: BoxStream,
    /// Bytes the client sent after the startup packet.
    pub client_buf: BytesMut,
    /// Proven identity.
    pub identity: String,
    /// Target name.
    pub target: String,
    /// Client address.
    pub peer: SocketAddr,
    /// Startup parameters to pass upstream.
    pub params: Vec<(String, String)>,
    /// Database to open.
    pub database: String,
    /// `application_name`, for the sessions table.
    pub application_name: Option<String>,
}

async fn read_startup<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
) -> anyhow::Result<StartupPacket> {
    loop {
        if let Some(p) = decode_startup(buf, MAX_STARTUP_PACKET_LEN)? {
            return Ok(p);
        }
        if s.read_buf(buf).await? == 0 {
            anyhow::bail!("client closed before the startup packet");
        }
    }
}

async fn read_frame(s: &mut BoxStream, buf: &mut BytesMut) -> anyhow::Result<Frame> {
    loop {
        if let Some(f) = decode_frame(buf, 64 * 1024)? {
            return Ok(f);
        }
        if s.read_buf(buf).await? == 0 {
            anyhow::bail!("client closed during authentication");
        }
    }
}

/// Runs entry; `Ok(None)` when the connection ended normally before a session (cancel, refusal).
async fn entry(
    mut tcp: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
) -> anyhow::Result<Option<super::relay::Session>> {
    let mut buf = BytesMut::new();
    // Plain phase: SSLRequest / GSSENCRequest / CancelRequest / Startup on the raw socket.
    let (mut client, first, tls_on): (BoxStream, StartupPacket, bool) = loop {
        let packet = match read_startup(&mut tcp, &mut buf).await {
            Ok(p) => p,
            Err(e) => {
                let _ = super::stream::send(
                    &mut tcp,
                    &reply::fatal(
                        sqlstate::PROTOCOL_VIOLATION,
                        &format!("invalid startup packet: {e}"),
                    ),
                )
                .await;
                return Err(e);
            }
        };
        match packet {
            StartupPacket::SslRequest => {
                if !buf.is_empty() {
                    // Bytes after SSLRequest would be read as if they came over TLS (CVE-2021-23214).
                    anyhow::bail!("client sent data after SSLRequest before the TLS handshake");
                }
                super::stream::send(&mut tcp, b"S").await?;
                let tls = shared.pg_tls.acceptor.accept(tcp).await?;
                let mut client: BoxStream = Box::new(tls);
                let p = read_startup(&mut client, &mut buf).await?;
                break (client, p, true);
            }
            StartupPacket::GssEncRequest => super::stream::send(&mut tcp, b"N").await?,
            StartupPacket::Cancel { pid, secret_key } => {
                if let Some(key) = shared.cancel_keys.lookup(pid, &secret_key) {
                    send_cancel(&key).await;
                }
                return Ok(None);
            }
            p @ StartupPacket::Startup { .. } => break (Box::new(tcp), p, false),
        }
    };
    let (version, params) = match first {
        StartupPacket::Startup {
            version, params, ..
        } => (version, params),
        StartupPacket::Cancel { pid, secret_key } => {
            if let Some(key) = shared.cancel_keys.lookup(pid, &secret_key) {
                send_cancel(&key).await;
            }
            return Ok(None);
        }
        _ => {
            super::stream::send(
                &mut client,
                &reply::fatal(
                    sqlstate::PROTOCOL_VIOLATION,
                    "unexpected packet after TLS negotiation",
                ),
            )
            .await?;
            return Ok(None);
        }
    };
    let (params, negotiate) = negotiate_protocol(version, params);
    if let Some(offer) = negotiate {
        let mut out = BytesMut::new();
        offer.encode(&mut out);
        super::stream::send(&mut client, &out).await?;
    }
    let user = params
        .iter()
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut rec = EntryRecorder {
        shared,
        user: user.clone(),
        peer,
        method: if tls_on {
            "scram-sha-256"
        } else {
            "scram-sha-256/plaintext"
        },
        risk: Vec::new(),
    };

    if !tls_on
        && !shared
            .config
            .server
            .allow_plaintext_from
            .iter()
            .any(|n| n.contains(&peer.ip()))
    {
        rec.fail("plaintext refused").await;
        super::stream::send(
            &mut client,
            &reply::fatal(
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                "the bastion requires TLS: connect with sslmode=require or verify-full",
            ),
        )
        .await?;
        return Ok(None);
    }
    let Some(route) = parse_route(&user) else {
        rec.fail("user name is not identity@target").await;
        super::stream::send(
            &mut client,
            &reply::fatal(
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                &format!(
                    "user name {user:?} does not route: use identity@target, e.g. alice@prod-db"
                ),
            ),
        )
        .await?;
        return Ok(None);
    };
    tracing::Span::current()
        .record("user", route.identity.as_str())
        .record("target", route.target.as_str());
    let mut upstream_params = Vec::new();
    let mut database = None;
    let mut application_name = None;
    for (k, v) in &params {
        let lower = k.to_ascii_lowercase();
        match lower.as_str() {
            "user" => {}
            "database" => database = Some(v.clone()),
            "options" => match check_options(v) {
                Ok(()) => upstream_params.push((k.clone(), v.clone())),
                Err(e) => {
                    rec.fail(&e).await;
                    super::stream::send(
                        &mut client,
                        &reply::fatal(sqlstate::FEATURE_NOT_SUPPORTED, &e),
                    )
                    .await?;
                    return Ok(None);
                }
            },
            "replication" => {
                let msg = "replication connections are not allowed through the bastion".to_string();
                rec.fail(&msg).await;
                super::stream::send(
                    &mut client,
                    &reply::fatal(sqlstate::FEATURE_NOT_SUPPORTED, &msg),
                )
                .await?;
                return Ok(None);
            }
            _ if SAFE_PARAMS.contains(&lower.as_str()) => {
                if lower == "application_name" {
                    application_name = Some(v.clone());
                }
                upstream_params.push((k.clone(), v.clone()));
            }
            _ => {
                let msg = format!(
                    "startup parameter {k:?} is not allowed through the bastion; allowed: {}",
                    SAFE_PARAMS.join(", ")
                );
                rec.fail(&msg).await;
                super::stream::send(
                    &mut client,
                    &reply::fatal(sqlstate::FEATURE_NOT_SUPPORTED, &msg),
                )
                .await?;
                return Ok(None);
            }
        }
    }
    rec.user = route.identity.clone();
    if let Err(left) = shared.lockouts.check(&route.identity, peer.ip()) {
        rec.result(
            "locked",
            Some(format!("locked out for {}s", left.as_secs())),
        )
        .await;
        super::stream::send(
            &mut client,
            &reply::fatal(
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                &format!(
                    "too many failed login attempts; try again in {} seconds",
                    left.as_secs().max(1)
                ),
            ),
        )
        .await?;
        return Ok(None);
    }

    // A login token (cleartext over TLS) for identities whose `auth` includes `token`; else
    // SCRAM against the bastion's verifier (or a decoy for unknown identities).
    let claimed = shared.config.users.get(&route.identity);
    let outcome = match claimed.filter(|u| u.accepts(AuthMethod::Token)) {
        Some(u) => {
            rec.method = "token";
            let target = route.target.as_str();
            token_proof(&mut client, &mut buf, shared, u, target, peer, tls_on)
                .await?
                .map(|()| None)
        }
        None => scram_proof(
            &mut client,
            &mut buf,
            shared,
            &route.identity,
            tls_on,
            &mut rec,
        )
        .await?
        .map(Some),
    };
    let now = chrono::Utc::now().timestamp();
    let server_final = match outcome {
        Ok(f) => f,
        Err(reason) => {
            let delay = shared.lockouts.failure(&route.identity, peer.ip());
            tokio::time::sleep(delay).await;
            let flags = shared
                .entry_proofs
                .risk
                .failure(&route.identity, peer.ip(), now);
            rec.fail(&annotate(Some(reason), &flags).unwrap_or_default())
                .await;
            let _ = super::stream::send(
                &mut client,
                &reply::fatal(
                    sqlstate::INVALID_PASSWORD,
                    &format!("password authentication failed for user \"{user}\""),
                ),
            )
            .await;
            return Ok(None);
        }
    };
    shared.lockouts.success(&route.identity);
    let hours = claimed.and_then(|u| u.allowed_hours);
    rec.risk = shared
        .entry_proofs
        .risk
        .success(&route.identity, peer.ip(), hours, now);
    let mut out = BytesMut::new();
    if let Some(data) = server_final {
        Authentication::SaslFinal { data: data.into() }.encode(&mut out);
    }
    Authentication::Ok.encode(&mut out);
    super::stream::send(&mut client, &out).await?;

    // Identity proven. Route, decide `connect`, open the session.
    let Some(target) = target_of(&shared.config, &route.target, Protocol::Postgres) else {
        rec.fail(&format!("no PostgreSQL target named {}", route.target))
            .await;
        super::stream::send(
            &mut client,
            &reply::fatal(
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                &format!("no PostgreSQL target named {:?}", route.target),
            ),
        )
        .await?;
        return Ok(None);
    };
    let ctx = policies::RequestContext {
        risk: rec.risk.iter().map(|f| f.as_str().to_string()).collect(),
        ..super::relay::request_context(peer, None)
    };
    let verdict = shared
        .engine()
        .decide_connect(&route.identity, &route.target, &ctx);
    if verdict.decision != policies::Decision::Allow {
        rec.fail(&format!(
            "connect {}: {}",
            verdict.decision, verdict.message
        ))
        .await;
        super::stream::send(
            &mut client,
            &reply::fatal(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                &format!(
                    "connection to {} refused: {}",
                    route.target, verdict.message
                ),
            ),
        )
        .await?;
        return Ok(None);
    }
    let session_id = crate::sessions::new_session_id();
    tracing::Span::current().record("session", session_id.as_str());
    let handle = match shared.sessions.register(
        session_id.clone(),
        &route.identity,
        &route.target,
        "postgres",
        peer,
        shared.config.limits.max_sessions_per_identity,
        &shared.shutdown,
    ) {
        Ok(h) => h,
        Err(e) => {
            let msg = format!(
                "too many connections for identity \"{}\": {e}",
                route.identity
            );
            rec.fail(&msg).await;
            super::stream::send(
                &mut client,
                &reply::fatal(sqlstate::TOO_MANY_CONNECTIONS, &msg),
            )
            .await?;
            return Ok(None);
        }
    };
    rec.ok(&session_id).await;
    let database = database
        .or_else(|| target.database.clone())
        .unwrap_or_else(|| "postgres".into());
    let start = recorder::SessionStart {
        session_id: session_id.clone(),
        time: recorder::now_micros(),
        identity: route.identity.clone(),
        identity_kind: identity_kind(&shared.config, &route.identity).to_string(),
        target: route.target.clone(),
        protocol: "postgres".into(),
        source: peer.to_string(),
        client: application_name.clone(),
        recording: None,
    };
    if let Err(e) = shared.recorder.session_start(start).await {
        if !shared.config.recorder.allow_on_error {
            super::stream::send(
                &mut client,
                &reply::fatal(
                    "58030",
                    &format!("the audit trail cannot record this session: {e}"),
                ),
            )
            .await?;
            return Ok(None);
        }
        tracing::error!(error = %e, "recorder failed; continuing because on_recorder_error = allow");
    }
    let password = match target.credential.as_ref().map(|c| c.load()) {
        Some(Ok(s)) => s.expose_str().map(str::to_string).unwrap_or_default(),
        Some(Err(e)) => {
            tracing::error!(error = %e, "upstream credential unavailable");
            return fail_session(
                shared,
                client,
                &session_id,
                "credential unavailable",
                sqlstate::CONNECTION_FAILURE,
                &format!("the bastion cannot use its credential for {}", route.target),
            )
            .await;
        }
        None => String::new(),
    };
    let up = match upstream::connect(
        target,
        &password,
        &database,
        &upstream_params,
        shared.config.limits.max_frame_bytes,
        shared.config.limits.login_timeout,
        &crate::upstream_login::SessionLogin::new(
            &shared.recorder,
            &session_id,
            &route.identity,
            identity_kind(&shared.config, &route.identity),
        ),
    )
    .await
    {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "upstream login failed");
            let (reason, code) = match &e {
                UpstreamError::Connect { .. } => {
                    ("target_unreachable", sqlstate::CONNECTION_FAILURE)
                }
                UpstreamError::Tls { .. } => ("target_tls_failed", sqlstate::CONNECTION_FAILURE),
                UpstreamError::Login { .. } => (
                    "target_login_failed",
                    sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                ),
                UpstreamError::Protocol { .. } => {
                    ("target_protocol_error", sqlstate::CONNECTION_FAILURE)
                }
            };
            return fail_session(shared, client, &session_id, reason, code, &e.to_string()).await;
        }
    };
    let upstream_key = up.key.as_ref().map(|k| UpstreamKey {
        address: target.address.clone(),
        pid: k.pid,
        secret: k.secret_key.clone(),
    });
    Ok(Some(super::relay::Session::new(
        Authenticated {
            client,
            client_buf: buf,
            identity: route.identity,
            target: route.target,
            peer,
            params: upstream_params,
            database,
            application_name,
        },
        up,
        upstream_key,
        session_id,
        handle,
    )))
}

/// SCRAM-SHA-256(-PLUS) for `identity`: `Ok(Ok(server-final))` when proven, `Ok(Err(reason))`
/// when refused (a decoy exchange for unknown identities and those without `scram` in `auth`).
async fn scram_proof(
    client: &mut BoxStream,
    buf: &mut BytesMut,
    shared: &Arc<Shared>,
    identity: &str,
    tls_on: bool,
    rec: &mut EntryRecorder<'_>,
) -> anyhow::Result<Result<Vec<u8>, String>> {
    let user = shared.config.users.get(identity);
    let allowed = match user {
        Some(u) if !u.accepts(AuthMethod::Scram) => Err(not_allowed(u, AuthMethod::Scram)),
        _ => Ok(()),
    };
    let verifier = user
        .filter(|_| allowed.is_ok())
        .and_then(|u| u.scram_verifier.as_ref())
        .and_then(|s| s.expose_str().ok().and_then(|t| Verifier::parse(t).ok()));
    let binding = if tls_on {
        shared.pg_tls.cert_hash.clone()
    } else {
        None
    };
    let mut scram = ScramServer::new(identity, verifier.as_ref(), &shared.scram_decoy, binding)?;
    let mut out = BytesMut::new();
    Authentication::Sasl {
        mechanisms: scram.mechanisms().iter().map(|m| m.to_string()).collect(),
    }
    .encode(&mut out);
    super::stream::send(client, &out).await?;
    let outcome: Result<Vec<u8>, String> = async {
        let f = read_frame(client, buf).await.map_err(|e| e.to_string())?;
        let first = SaslInitialResponse::decode(&f).map_err(|e| e.to_string())?;
        rec.method = if first.mechanism.ends_with("-PLUS") {
            "scram-sha-256-plus"
        } else {
            "scram-sha-256"
        };
        let server_first = scram
            .handle_client_first(&first.mechanism, first.data.as_deref().unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let mut out = BytesMut::new();
        Authentication::SaslContinue {
            data: server_first.into(),
        }
        .encode(&mut out);
        super::stream::send(client, &out)
            .await
            .map_err(|e| e.to_string())?;
        let f = read_frame(client, buf).await.map_err(|e| e.to_string())?;
        let fin = SaslResponse::decode(&f).map_err(|e| e.to_string())?;
        scram
            .handle_client_final(&fin.data)
            .map_err(|e| e.to_string())
    }
    .await;
    Ok(outcome.and_then(|f| allowed.map(|()| f)))
}

/// A login token as the password (AuthenticationCleartextPassword, TLS only): `Ok(Ok(()))` when
/// every token check passes, `Ok(Err(reason))` naming the one that failed.
async fn token_proof(
    client: &mut BoxStream,
    buf: &mut BytesMut,
    shared: &Arc<Shared>,
    user: &crate::config::User,
    target: &str,
    peer: SocketAddr,
    tls_on: bool,
) -> anyhow::Result<Result<(), String>> {
    if !tls_on {
        return Ok(Err("login tokens are accepted over TLS only".to_string()));
    }
    let mut out = BytesMut::new();
    Authentication::CleartextPassword.encode(&mut out);
    super::stream::send(client, &out).await?;
    let presented = match read_frame(client, buf)
        .await
        .and_then(|f| PasswordMessage::decode(&f).map_err(anyhow::Error::from))
    {
        Ok(m) => m.password,
        Err(e) => return Ok(Err(e.to_string())),
    };
    Ok(shared
        .entry_proofs
        .token(user, &presented, target, peer.ip()))
}

async fn fail_session(
    shared: &Arc<Shared>,
    mut client: BoxStream,
    session_id: &str,
    reason: &str,
    code: &str,
    message: &str,
) -> anyhow::Result<Option<super::relay::Session>> {
    let _ = super::stream::send(&mut client, &reply::fatal(code, message)).await;
    let _ = shared
        .recorder
        .session_end(recorder::SessionEnd {
            session_id: session_id.to_string(),
            time: recorder::now_micros(),
            end_reason: reason.to_string(),
            bytes_in: 0,
            bytes_out: 0,
        })
        .await;
    Ok(None)
}

/// The bastion speaks protocol 3.0 and no `_pq_.` extension. A client asking for a newer minor
/// version or naming `_pq_.` options gets `NegotiateProtocolVersion` (3.0 and the options it
/// does not know) and carries on in 3.0, as PostgreSQL answers such clients. The `_pq_.` options
/// are taken out of the parameters (they are not settings and never go upstream).
fn negotiate_protocol(
    version: u32,
    params: Vec<(String, String)>,
) -> (Vec<(String, String)>, Option<NegotiateProtocolVersion>) {
    let (options, params): (Vec<_>, Vec<_>) = params
        .into_iter()
        .partition(|(k, _)| k.starts_with("_pq_."));
    let minor = version & 0xffff;
    let offer = (minor != 0 || !options.is_empty()).then(|| NegotiateProtocolVersion {
        newest_minor: 0,
        unrecognized: options.into_iter().map(|(k, _)| k).collect(),
    });
    (params, offer)
}

/// `options` may only set parameters from the safe list (`-c name=value` or `--name=value`).
fn check_options(options: &str) -> Result<(), String> {
    let mut words = options.split_whitespace().peekable();
    while let Some(w) = words.next() {
        let setting = if w == "-c" {
            words.next().unwrap_or_default()
        } else if let Some(rest) = w.strip_prefix("-c") {
            rest
        } else if let Some(rest) = w.strip_prefix("--") {
            rest
        } else {
            return Err(format!(
                "startup options {options:?}: only -c name=value is allowed"
            ));
        };
        let name = setting
            .split('=')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .replace('-', "_");
        if !SAFE_PARAMS.contains(&name.as_str()) {
            return Err(format!(
                "startup option {name:?} is not allowed through the bastion; allowed: {}",
                SAFE_PARAMS.join(", ")
            ));
        }
    }
    Ok(())
}

/// Writes `entries` rows for one attempt.
struct EntryRecorder<'a> {
    shared: &'a Arc<Shared>,
    user: String,
    peer: SocketAddr,
    method: &'static str,
    /// Risk flags of the proven entry, added to every row written after it.
    risk: Vec<RiskFlag>,
}

impl EntryRecorder<'_> {
    async fn result(&mut self, result: &str, reason: Option<String>) {
        self.write(result, reason, None).await
    }

    async fn fail(&mut self, reason: &str) {
        self.write("fail", Some(reason.to_string()), None).await
    }

    async fn ok(&mut self, session_id: &str) {
        self.write("ok", None, Some(session_id.to_string())).await
    }

    async fn write(&mut self, result: &str, reason: Option<String>, session_id: Option<String>) {
        let row = recorder::EntryRow {
            time: recorder::now_micros(),
            identity: self.user.clone(),
            source: self.peer.to_string(),
            protocol: "postgres".into(),
            method: self.method.into(),
            result: result.into(),
            reason: annotate(reason, &self.risk),
            session_id,
        };
        if let Err(e) = self.shared.recorder.entry(row).await {
            tracing::error!(error = %e, "cannot record entry attempt");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{check_options, negotiate_protocol};

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn newer_minor_versions_and_pq_options_are_negotiated_down() {
        let (kept, offer) = negotiate_protocol(0x0003_0000, params(&[("user", "a@b")]));
        assert_eq!(kept, params(&[("user", "a@b")]));
        assert!(offer.is_none(), "3.0 without options needs no negotiation");

        let (kept, offer) = negotiate_protocol(
            0x0003_0002,
            params(&[("user", "a@b"), ("_pq_.compression", "on")]),
        );
        assert_eq!(kept, params(&[("user", "a@b")]));
        let offer = offer.unwrap();
        assert_eq!(offer.newest_minor, 0);
        assert_eq!(offer.unrecognized, vec!["_pq_.compression".to_string()]);

        let (_, offer) = negotiate_protocol(0x0003_0002, params(&[("user", "a@b")]));
        assert!(offer.unwrap().unrecognized.is_empty());
    }

    #[test]
    fn options_allow_only_safe_settings() {
        assert!(check_options("-c statement_timeout=5s").is_ok());
        assert!(check_options("-cDateStyle=ISO --application-name=x").is_ok());
        assert!(check_options("-c role=postgres")
            .unwrap_err()
            .contains("\"role\" is not allowed"));
        assert!(check_options("-c session_authorization=postgres").is_err());
        assert!(check_options("--search_path=secrets").is_err());
        assert!(check_options("-f junk").is_err());
    }
}
