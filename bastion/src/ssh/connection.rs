//! One client connection: the russh [`server::Handler`]. Account entry happens here — the user
//! name routes (`alice@web1`), the proof is a configured key or a CA-signed certificate, failures
//! are padded to the same time, counted by [`crate::entry::Lockouts`] and each attempt is an
//! `entries` row. After entry the session registers (limit per identity), `connect` is decided
//! and the upstream login made; a refusal there is a disconnect whose text the client prints
//! (`Received disconnect ...: bastion: host key mismatch for target web1 ...`) plus a
//! `sessions` row saying why. Channels are then dispatched: `session` channels to
//! `session_channel`, `direct-tcpip` and `tcpip-forward` to `forward`; X11, agent forwarding,
//! stream-local forwards and unknown requests are refused.
use super::action_gate::SessionGate;
use super::forward::{self, ForwardedSink};
use super::upstream::{self, Upstream};
use super::user_auth::{check_certificate, key_is_authorized, KbdInteractive, KbdStep};
use super::user_auth::{method_permitted, password_is_token, refusal_counts_toward_lockout};
use super::{session_channel, SshServices};
use crate::config::{Protocol, Target, User};
use crate::entry::parse_route;
use crate::entry::risk::annotate;
use crate::entry::russh_refusals;
use crate::sessions::{new_session_id, SessionHandle};
use policies::engine::{Decision, RequestContext};
use recorder::{now_micros, EntryRow, SessionEnd, SessionStart};
use russh::keys::Certificate;
use russh::server::{self, Auth, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure, Disconnect};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// What outlives the handler: the registry entry and why the session ended.
#[derive(Default)]
struct Outcome {
    session: Option<(SessionHandle, Arc<SessionGate>)>,
    end_reason: Option<String>,
}

/// An identity proven by a successful authentication.
#[derive(Clone)]
struct Proven {
    user: User,
    target: Target,
    session_id: String,
    /// Entry risk flags, for the `connect` decision's `context.risk`.
    risk: Vec<String>,
}

/// A session past entry, connected upstream.
struct Live {
    gate: Arc<SessionGate>,
    upstream: Arc<Upstream>,
    forwards: ForwardedSink,
}

struct Connection {
    services: Arc<SshServices>,
    peer: SocketAddr,
    shutdown: CancellationToken,
    outcome: Arc<Mutex<Outcome>>,
    ended: CancellationToken,
    proven: Option<Proven>,
    live: Option<Live>,
    open_channels: Arc<AtomicUsize>,
    session_channels: HashSet<ChannelId>,
    kbd: KbdInteractive,
}

/// Serves one accepted TCP connection until it ends, then records the session's end. `shutdown`
/// disconnects it (and is the parent of the session's kill switch).
pub async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    services: Arc<SshServices>,
    shutdown: CancellationToken,
) {
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let ended = CancellationToken::new();
    let handler = Connection {
        services: services.clone(),
        peer,
        shutdown: shutdown.clone(),
        outcome: outcome.clone(),
        ended: ended.clone(),
        proven: None,
        live: None,
        open_channels: Arc::new(AtomicUsize::new(0)),
        session_channels: HashSet::new(),
        kbd: KbdInteractive::default(),
    };
    let login = services.config.limits.login_timeout;
    let running = match tokio::time::timeout(
        login,
        server::run_stream(services.server_config.clone(), stream, handler),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "ssh handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "ssh handshake timed out");
            return;
        }
    };
    let handle = running.handle();
    tokio::pin!(running);
    let result = tokio::select! {
        r = &mut running => r,
        _ = shutdown.cancelled() => {
            let _ = handle.disconnect(Disconnect::ByApplication, "bastion: shutting down".into(), "en".into()).await;
            set_reason(&outcome, "bastion_shutdown");
            tokio::time::timeout(std::time::Duration::from_secs(2), &mut running).await.unwrap_or(Ok(()))
        }
    };
    ended.cancel();
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "ssh connection ended with an error");
        let reason = match e {
            russh::Error::InactivityTimeout => "idle_timeout".to_string(),
            e => format!("error: {e}"),
        };
        set_reason(&outcome, &reason);
    }
    let (session, reason) = {
        let mut g = outcome.lock().unwrap_or_else(|e| e.into_inner());
        (g.session.take(), g.end_reason.take())
    };
    if let Some((handle, gate)) = session {
        let killed = handle.info.kill_reason.lock().ok().and_then(|r| r.clone());
        let end_reason = match (killed, reason) {
            (Some(why), _) => format!("killed: {why}"),
            (None, Some(r)) => r,
            (None, None) => "client_closed".to_string(),
        };
        let row = SessionEnd {
            session_id: gate.session_id.clone(),
            time: now_micros(),
            end_reason,
            bytes_in: handle.info.bytes_in.load(Ordering::Relaxed) as i64,
            bytes_out: handle.info.bytes_out.load(Ordering::Relaxed) as i64,
        };
        // The first shell channel's recording (all of them are found by `audit replay`).
        let recording = gate.recordings().into_iter().next();
        if let Err(e) = services
            .recorder
            .session_end_with_recording(row, recording)
            .await
        {
            tracing::error!(error = %e, "cannot record session end");
        }
        drop(handle);
    }
}

fn set_reason(outcome: &Mutex<Outcome>, reason: &str) {
    let mut g = outcome.lock().unwrap_or_else(|e| e.into_inner());
    if g.end_reason.is_none() {
        g.end_reason = Some(reason.to_string());
    }
}

impl Connection {
    async fn entry_row(
        &self,
        identity: &str,
        method: &str,
        result: &str,
        reason: Option<String>,
        session_id: Option<String>,
    ) {
        let row = EntryRow {
            time: now_micros(),
            identity: identity.to_string(),
            source: self.peer.to_string(),
            protocol: "ssh".to_string(),
            method: method.to_string(),
            result: result.to_string(),
            reason,
            session_id,
        };
        if let Err(e) = self.services.recorder.entry(row).await {
            tracing::error!(error = %e, "cannot record entry attempt");
        }
    }

    /// One authentication attempt: route, lockout, proof; records the `entries` row.
    async fn attempt(
        &mut self,
        name: &str,
        method: &str,
        proof: impl FnOnce(&User) -> Result<(), String>,
    ) -> Auth {
        let ip = self.peer.ip();
        // Certificates russh refused on this connection since the last attempt (their window).
        for _ in 0..russh_refusals::take_current() {
            let identity = parse_route(name).map_or_else(|| name.to_string(), |r| r.identity);
            let reason = format!("{} (not counted toward lockout)", russh_refusals::REASON);
            self.entry_row(&identity, "certificate", "fail", Some(reason), None)
                .await;
        }
        let risk = &self.services.entry_proofs.risk;
        let now = chrono::Utc::now().timestamp();
        let Some(route) = parse_route(name) else {
            let delay = self.services.lockouts.failure(name, ip);
            tokio::time::sleep(delay).await;
            let reason = format!("user name {name:?} is not identity@target");
            let reason = annotate(Some(reason), &risk.failure(name, ip, now));
            self.entry_row(name, method, "fail", reason, None).await;
            return Auth::reject();
        };
        if let Err(remaining) = self.services.lockouts.check(&route.identity, ip) {
            let reason = format!("locked out for {}s more", remaining.as_secs());
            self.entry_row(&route.identity, method, "locked", Some(reason), None)
                .await;
            return Auth::reject();
        }
        let config = &self.services.config;
        let checked = match (
            config.users.get(&route.identity),
            config.targets.get(&route.target),
        ) {
            (None, _) => Err("unknown identity".to_string()),
            (_, None) => Err(format!("unknown target {}", route.target)),
            (Some(_), Some(t)) if t.protocol != Protocol::Ssh => {
                Err(format!("target {} is not an ssh target", t.name))
            }
            (Some(user), Some(target)) => method_permitted(user, method)
                .and_then(|()| proof(user))
                .map(|()| (user.clone(), target.clone())),
        };
        match checked {
            Ok((user, target)) => {
                self.services.lockouts.success(&route.identity);
                let session_id = new_session_id();
                let flags = risk.success(&route.identity, ip, user.allowed_hours, now);
                self.entry_row(
                    &route.identity,
                    method,
                    "ok",
                    annotate(None, &flags),
                    Some(session_id.clone()),
                )
                .await;
                self.proven = Some(Proven {
                    user,
                    target,
                    session_id,
                    risk: flags.iter().map(|f| f.as_str().to_string()).collect(),
                });
                Auth::Accept
            }
            Err(reason) if !refusal_counts_toward_lockout(method) => {
                let reason = format!("{reason} (a key, not a guess: not counted toward lockout)");
                self.entry_row(&route.identity, method, "fail", Some(reason), None)
                    .await;
                Auth::reject()
            }
            Err(reason) => {
                let delay = self.services.lockouts.failure(&route.identity, ip);
                tokio::time::sleep(delay).await;
                let reason = annotate(Some(reason), &risk.failure(&route.identity, ip, now));
                self.entry_row(&route.identity, method, "fail", reason, None)
                    .await;
                Auth::reject()
            }
        }
    }

    /// After entry: register, record the start, decide `connect`, log in upstream.
    async fn establish(
        &mut self,
        proven: Proven,
        handle: server::Handle,
        client: String,
    ) -> Result<Live, String> {
        let services = self.services.clone();
        let limits = &services.config.limits;
        let registered = services
            .sessions
            .register(
                proven.session_id.clone(),
                &proven.user.name,
                &proven.target.name,
                "ssh",
                self.peer,
                limits.max_sessions_per_identity,
                &self.shutdown,
            )
            .map_err(|e| e.to_string())?;
        let gate = Arc::new(SessionGate::new(
            services.clone(),
            registered.info.clone(),
            proven.user.kind,
            self.peer.ip(),
        ));
        let start = SessionStart {
            session_id: proven.session_id.clone(),
            time: now_micros(),
            identity: proven.user.name.clone(),
            identity_kind: proven.user.kind.as_str().to_string(),
            target: proven.target.name.clone(),
            protocol: "ssh".to_string(),
            source: self.peer.to_string(),
            client: Some(client),
            recording: None,
        };
        let kill = registered.info.kill.clone();
        {
            let mut g = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
            g.session = Some((registered, gate.clone()));
        }
        if let Err(e) = services.recorder.session_start(start).await {
            if !services.config.recorder.allow_on_error {
                set_reason(&self.outcome, "recorder_error");
                return Err(format!("the session cannot be recorded ({e})"));
            }
        }
        let ctx = RequestContext {
            source_ip: Some(self.peer.ip()),
            mfa_age_secs: None,
            now_unix: chrono::Utc::now().timestamp(),
            risk: proven.risk.clone(),
        };
        let verdict =
            (services.engine)().decide_connect(&proven.user.name, &proven.target.name, &ctx);
        if verdict.decision != Decision::Allow {
            let message = match verdict.decision {
                Decision::StepUp => format!(
                    "{} (step-up at connect is not supported on ssh)",
                    verdict.message
                ),
                _ => verdict.message.clone(),
            };
            set_reason(&self.outcome, &format!("connect_denied: {message}"));
            return Err(message);
        }
        let sink = ForwardedSink::new(handle.clone(), self.ended.clone());
        let upstream = match upstream::connect(
            &proven.target,
            services.client_key.clone(),
            limits.login_timeout,
            Some(sink.clone()),
            &crate::upstream_login::SessionLogin::new(
                &services.recorder,
                &proven.session_id,
                &proven.user.name,
                proven.user.kind.as_str(),
            ),
        )
        .await
        {
            Ok(u) => Arc::new(u),
            Err(e) => {
                tracing::warn!(session = %proven.session_id, error = %e, "upstream connect failed");
                set_reason(&self.outcome, &format!("upstream_error: {e}"));
                return Err(e.to_string());
            }
        };
        sink.set_gate(gate.clone());
        // Admin kill or shutdown: disconnect the client with the reason.
        let ended = self.ended.clone();
        let info = gate.info.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = kill.cancelled() => {
                    let why = info.kill_reason.lock().ok().and_then(|r| r.clone()).unwrap_or_else(|| "bastion shutting down".into());
                    let _ = handle.disconnect(Disconnect::ByApplication, format!("bastion: session killed: {why}"), "en".into()).await;
                }
                _ = ended.cancelled() => {}
            }
        });
        tracing::info!(session = %proven.session_id, peer = %self.peer, user = %proven.user.name, target = %proven.target.name, "ssh session established");
        Ok(Live {
            gate,
            upstream,
            forwards: sink,
        })
    }

    fn reserve_channel(&self) -> bool {
        let n = self.open_channels.fetch_add(1, Ordering::AcqRel);
        if n >= self.services.config.limits.max_channels_per_connection {
            self.open_channels.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn reply(
        &self,
        channel: ChannelId,
        ok: bool,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        if ok && self.session_channels.contains(&channel) {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }
}

impl server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let key = key.public_key.clone();
        Ok(self
            .attempt(user, "publickey", |u| {
                if key_is_authorized(&u.public_keys, &key) {
                    Ok(())
                } else {
                    Err("public key not configured for this identity".to_string())
                }
            })
            .await)
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        let cas = self.services.user_cas.clone();
        let ip = self.peer.ip();
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default();
        let cert = certificate.clone();
        Ok(self
            .attempt(user, "certificate", |u| {
                check_certificate(&cert, &cas, &u.name, ip, now).map_err(|e| e.to_string())
            })
            .await)
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let (proofs, ip, token) = (
            self.services.entry_proofs.clone(),
            self.peer.ip(),
            password.to_string(),
        );
        let target = parse_route(user).map(|r| r.target).unwrap_or_default();
        Ok(self
            .attempt(user, "token", move |u| {
                password_is_token(&token).and_then(|()| proofs.token(u, &token, &target, ip))
            })
            .await)
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let answers = response.map(|r| r.map(|b| String::from_utf8(b.to_vec()).ok()).collect());
        let (proofs, ip) = (self.services.entry_proofs.clone(), self.peer.ip());
        let target = parse_route(user).map(|r| r.target).unwrap_or_default();
        Ok(match self.kbd.step(user, answers) {
            KbdStep::Ask(auth) => auth,
            KbdStep::Token(token) => {
                self.attempt(user, "token", move |u| proofs.token(u, &token, &target, ip))
                    .await
            }
            KbdStep::PasswordTotp { password, code } => {
                self.attempt(user, "password_totp", move |u| {
                    proofs.password_totp(u, &password, &code)
                })
                .await
            }
            KbdStep::Refuse(reason) => {
                self.attempt(user, "keyboard-interactive", move |_| Err(reason))
                    .await
            }
        })
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        let Some(proven) = self.proven.clone() else {
            return Ok(());
        };
        let client = String::from_utf8_lossy(session.remote_sshid()).into_owned();
        match self.establish(proven, session.handle(), client).await {
            Ok(live) => self.live = Some(live),
            Err(message) => {
                session.disconnect(
                    Disconnect::ByApplication,
                    &format!("bastion: {message}"),
                    "en",
                )?;
            }
        }
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(live) = &self.live else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        if !self.reserve_channel() {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.session_channels.insert(channel.id());
        reply.accept().await;
        let (gate, upstream, handle, open) = (
            live.gate.clone(),
            live.upstream.clone(),
            session.handle(),
            self.open_channels.clone(),
        );
        tokio::spawn(async move {
            session_channel::run(channel, gate, upstream, handle).await;
            open.fetch_sub(1, Ordering::AcqRel);
        });
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        originator_address: &str,
        originator_port: u32,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(live) = &self.live else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        if !self.reserve_channel() {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        let (gate, upstream, open) = (
            live.gate.clone(),
            live.upstream.clone(),
            self.open_channels.clone(),
        );
        let (host, originator) = (
            host_to_connect.to_string(),
            (originator_address.to_string(), originator_port),
        );
        tokio::spawn(async move {
            forward::direct_tcpip(
                channel,
                reply,
                host,
                port_to_connect,
                originator,
                gate,
                upstream,
            )
            .await;
            open.fetch_sub(1, Ordering::AcqRel);
        });
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.session_channels.remove(&channel);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Accepted here; the decision is made by the channel task before the target runs it,
        // and a refusal is reported as stderr text and exit status 126.
        self.reply(channel, true, session)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.reply(channel, true, session)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.reply(channel, name == "sftp", session)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.reply(channel, true, session)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.reply(channel, true, session)
    }

    async fn window_change_request(
        &mut self,
        _channel: ChannelId,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let Some(live) = &self.live else {
            return Ok(false);
        };
        match forward::remote_forward(address, *port, &live.gate, &live.upstream, &live.forwards)
            .await
        {
            Some(bound) => {
                *port = bound;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let Some(live) = &self.live else {
            return Ok(false);
        };
        Ok(forward::cancel_remote_forward(address, port, &live.upstream, &live.forwards).await)
    }
}
