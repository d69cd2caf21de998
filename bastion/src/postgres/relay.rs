//! The session loop: every client message is decided before its bytes go upstream, and what
//! runs is exactly what was decided (frames are forwarded verbatim).
//!
//! Two tasks per session. `ClientSide` reads client frames, decides SQL (`Query`; `Parse` and
//! `Execute` of an extended batch up to `Sync`/`Flush`), records the action, then forwards.
//! `ServerSide` relays the target's frames to the client and turns them into outcomes.
//!
//! **Denial goes through the server.** A denied message is never sent; in its place the bastion
//! sends a `DO` block that raises `42501` with the policy's message and hint. The server answers
//! it in order — after the responses to anything pipelined before it — with the right
//! `ReadyForQuery` status, and inside a transaction block the server's transaction is failed
//! exactly as if the statement itself had raised, so a later `COMMIT` rolls back. In extended
//! mode the injected `Parse`/`Bind` completions are swallowed and the server skips to `Sync` as
//! it does for any error. The `CONTEXT` line PL/pgSQL adds is stripped from that error.
use super::accept::Authenticated;
use super::cancel::UpstreamKey;
use super::reply;
use super::stream::BoxStream;
use super::upstream::Upstream;
use crate::sessions::SessionHandle;
use crate::state::{identity_kind, Shared};
use bytes::{Bytes, BytesMut};
use policies::sql::SqlSession;
use policies::{Decision, RequestContext, Verdict};
use protocol::postgres::backend::{
    BackendKeyData, CommandComplete, ErrorResponse, NoticeResponse, ParameterStatus, ReadyForQuery,
};
use protocol::postgres::frontend::{Bind, Close, Execute, Parse, Query};
use protocol::postgres::{
    decode_frame, sqlstate, Frame, ProtocolError, Severity, TransactionStatus,
};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Mutex as AsyncMutex;

/// How long the bastion tries to hand a client its final FATAL before closing anyway.
const FINAL_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// After a protocol error, how long and how much of the client's further input is read and
/// dropped so the FATAL is not lost to a connection reset.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const DRAIN_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// The policy request context for this client.
pub fn request_context(peer: SocketAddr, mfa_at: Option<Instant>) -> RequestContext {
    RequestContext {
        source_ip: Some(peer.ip()),
        mfa_age_secs: mfa_at.map(|t| t.elapsed().as_secs()),
        now_unix: chrono::Utc::now().timestamp(),
        risk: Vec::new(),
    }
}

/// An authenticated, connected session, ready to relay.
pub struct Session {
    auth: Authenticated,
    up: Upstream,
    upstream_key: Option<UpstreamKey>,
    id: String,
    handle: SessionHandle,
}

/// Why a session ended (the `sessions.end_reason` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndReason {
    ClientQuit,
    ClientGone,
    ServerGone,
    IdleTimeout,
    MaxDuration,
    Killed,
    Shutdown,
    ProtocolError,
}

impl EndReason {
    /// The `sessions.end_reason` text; a kill names who killed (`killed: killed by dana ...`,
    /// the same form as the SSH path).
    fn describe(self, killed_by: Option<&str>) -> String {
        match (self, killed_by) {
            (EndReason::Killed, Some(why)) => format!("killed: {why}"),
            _ => self.as_str().to_string(),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            EndReason::ClientQuit => "client_quit",
            EndReason::ClientGone => "client_disconnected",
            EndReason::ServerGone => "server_gone",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::MaxDuration => "max_duration",
            EndReason::Killed => "killed_by_admin",
            EndReason::Shutdown => "bastion_shutdown",
            EndReason::ProtocolError => "protocol_error",
        }
    }
}

/// What a forwarded action waits for from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A whole simple `Query`: complete at ReadyForQuery.
    Query,
    /// `ParseComplete` of a decided `Parse`.
    ParseComplete,
    /// `CommandComplete`/`EmptyQueryResponse`/`PortalSuspended` of a decided `Execute`.
    ExecuteDone,
}

#[derive(Debug)]
struct Pending {
    seq: i64,
    expect: Expect,
    started: Instant,
    /// Who approved this action and when (step-up), for its outcome row.
    approval: Option<(String, i64)>,
}

/// A decided message: whether to forward, its action's sequence number, and its approval.
struct Judged {
    step: Step,
    seq: Option<i64>,
    approval: Option<(String, i64)>,
}

impl Judged {
    fn deny(message: String, hint: String) -> Judged {
        Judged {
            step: Step::Deny(message, hint),
            seq: None,
            approval: None,
        }
    }

    fn pending(&self, expect: Expect) -> Option<Pending> {
        self.seq.map(|seq| Pending {
            seq,
            expect,
            started: Instant::now(),
            approval: self.approval.clone(),
        })
    }
}

/// One unit up to `ReadyForQuery`: a simple `Query`, or extended messages up to `Sync`.
#[derive(Debug, Default)]
struct Cycle {
    pending: VecDeque<Pending>,
    /// Index (0-based, counting ParseComplete / BindComplete of this cycle) of the completions
    /// that belong to an injected denial and must not reach the client.
    swallow_parse: Option<usize>,
    swallow_bind: Option<usize>,
    parse_seen: usize,
    bind_seen: usize,
    /// The next ErrorResponse in this cycle is the bastion's own denial.
    injected_error: bool,
    /// Query mode: first error and the last command tag.
    error: Option<(String, String)>,
    rows: i64,
    bytes_out: i64,
    /// The cycle's Sync (or Query) has been sent: a ReadyForQuery will close it.
    closed: bool,
}

/// State both directions share.
#[derive(Debug, Default)]
struct Track {
    cycles: VecDeque<Cycle>,
    status: Option<TransactionStatus>,
    standard_conforming_strings: Option<bool>,
    /// The target relayed a FATAL/PANIC to the client (it is about to close).
    server_fatal: bool,
}

struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    id: &'a str,
    identity: &'a str,
    identity_kind: &'static str,
    target: &'a str,
    peer: SocketAddr,
    handle: &'a SessionHandle,
}

impl Session {
    /// Wraps what entry produced.
    pub fn new(
        auth: Authenticated,
        up: Upstream,
        upstream_key: Option<UpstreamKey>,
        id: String,
        handle: SessionHandle,
    ) -> Session {
        Session {
            auth,
            up,
            upstream_key,
            id,
            handle,
        }
    }

    /// Relays until either side ends; records the session's end.
    pub async fn run(self, shared: &Arc<Shared>) {
        let Session {
            mut auth,
            up,
            upstream_key,
            id,
            handle,
        } = self;
        let upstream_cancel = upstream_key.clone();
        let (pid, secret, _key_guard) = match upstream_key {
            Some(k) => {
                let (p, s, g) = shared.cancel_keys.issue(k);
                (p, s, Some(g))
            }
            None => (0, vec![0; 4], None),
        };
        let mut hello = BytesMut::new();
        for f in &up.parameter_status {
            hello.extend_from_slice(&f.raw);
        }
        BackendKeyData {
            pid,
            secret_key: secret,
        }
        .encode(&mut hello);
        ReadyForQuery { status: up.status }.encode(&mut hello);
        if auth.client.write_all(&hello).await.is_err() || auth.client.flush().await.is_err() {
            return;
        }
        let track = Arc::new(Mutex::new(Track {
            status: Some(up.status),
            standard_conforming_strings: up.standard_conforming_strings,
            ..Default::default()
        }));
        let (client_r, client_w) = tokio::io::split(auth.client);
        let (server_r, server_w) = tokio::io::split(up.stream);
        let client_w = Arc::new(AsyncMutex::new(client_w));
        let ctx = Ctx {
            shared,
            id: &id,
            identity: &auth.identity,
            identity_kind: identity_kind(&shared.config, &auth.identity),
            target: &auth.target,
            peer: auth.peer,
            handle: &handle,
        };
        let mut client_side = ClientSide {
            ctx: &ctx,
            reader: client_r,
            buf: auth.client_buf,
            server: server_w,
            track: track.clone(),
            client_w: client_w.clone(),
            sql: SqlSession {
                standard_conforming_strings: up.standard_conforming_strings,
                ..Default::default()
            },
            statements: HashMap::new(),
            portals: HashMap::new(),
            batch: Vec::new(),
            skip_until_sync: false,
            seq: 0,
            mfa_at: None,
            last_activity: Instant::now(),
            fatal: None,
        };
        let mut server_side = ServerSide {
            ctx: &ctx,
            reader: server_r,
            buf: up.leftover,
            track,
            client_w: client_w.clone(),
        };
        let max_session = tokio::time::sleep(shared.config.limits.max_session);
        let kill = handle.info.kill.clone();
        let reason = tokio::select! {
            r = client_side.run() => r,
            r = server_side.run() => r,
            _ = max_session => EndReason::MaxDuration,
            _ = kill.cancelled() => {
                let killed = handle.info.kill_reason.lock().ok().and_then(|g| g.clone());
                if killed.is_some() { EndReason::Killed } else { EndReason::Shutdown }
            }
        };
        let killed_by = handle.info.kill_reason.lock().ok().and_then(|g| g.clone());
        let limits = &shared.config.limits;
        let fatal: Option<(&str, String)> = match reason {
            EndReason::Killed => Some((
                sqlstate::ADMIN_SHUTDOWN,
                format!(
                    "terminating connection due to administrator command: session {}",
                    killed_by.as_deref().unwrap_or("killed by a bastion administrator")
                ),
            )),
            EndReason::Shutdown => Some((
                sqlstate::ADMIN_SHUTDOWN,
                "terminating connection due to administrator command: the bastion is shutting down"
                    .into(),
            )),
            EndReason::MaxDuration => Some((
                sqlstate::ADMIN_SHUTDOWN,
                format!(
                    "terminating connection: maximum session time of {}s reached (limits.max_session)",
                    limits.max_session.as_secs()
                ),
            )),
            EndReason::IdleTimeout => Some((
                sqlstate::IDLE_SESSION_TIMEOUT,
                format!(
                    "terminating connection due to idle-session timeout ({}s without a message, limits.idle_timeout)",
                    limits.idle_timeout.as_secs()
                ),
            )),
            // The target said why itself (e.g. 57P01 from pg_terminate_backend or a shutdown):
            // the client has that FATAL already.
            EndReason::ServerGone if client_side.server_fatal() => None,
            EndReason::ServerGone => Some((
                sqlstate::CONNECTION_FAILURE,
                format!(
                    "terminating connection: the target {} closed the connection",
                    auth.target
                ),
            )),
            EndReason::ProtocolError => client_side.fatal.take(),
            EndReason::ClientQuit | EndReason::ClientGone => None,
        };
        if let Some((code, msg)) = &fatal {
            // Bounded: a client that stopped reading must not hold the session open.
            let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, async {
                let mut w = client_w.lock().await;
                let _ = w.write_all(&reply::fatal(code, msg)).await;
                let _ = w.shutdown().await;
            })
            .await;
        }
        if reason != EndReason::ServerGone {
            client_side.end_upstream(upstream_cancel.as_ref()).await;
        }
        if reason == EndReason::ProtocolError {
            // Read (and drop) what the client is still sending, so closing does not reset the
            // connection before the client has read the FATAL.
            client_side.drain().await;
        }
        // Actions still waiting for the server: a query the server answered with an error
        // before it went away (e.g. 57P01) has that error; the rest never got an answer.
        let leftovers: Vec<(Pending, Option<(String, String)>)> = {
            let mut t = client_side.track.lock().unwrap_or_else(|e| e.into_inner());
            t.cycles
                .drain(..)
                .flat_map(|c| {
                    let error = c.error;
                    c.pending.into_iter().map(move |p| {
                        let e = (p.expect == Expect::Query).then(|| error.clone()).flatten();
                        (p, e)
                    })
                })
                .collect()
        };
        let end_reason = reason.describe(killed_by.as_deref());
        for (p, error) in leftovers {
            let (outcome, code, message) = match error {
                Some((code, msg)) => ("error", Some(code), msg),
                None => ("unknown", None, format!("session ended: {end_reason}")),
            };
            record_outcome(
                &ctx,
                p.seq,
                outcome,
                None,
                code,
                Some(p.started),
                0,
                Some(message),
            )
            .await;
        }
        let info = &handle.info;
        let _ = shared
            .recorder
            .session_end(recorder::SessionEnd {
                session_id: id.clone(),
                time: recorder::now_micros(),
                end_reason: end_reason.clone(),
                bytes_in: info.bytes_in.load(std::sync::atomic::Ordering::Relaxed) as i64,
                bytes_out: info.bytes_out.load(std::sync::atomic::Ordering::Relaxed) as i64,
            })
            .await;
        tracing::info!(reason = end_reason.as_str(), "session ended");
    }
}

#[allow(clippy::too_many_arguments)]
async fn record_outcome(
    ctx: &Ctx<'_>,
    seq: i64,
    outcome: &str,
    rows: Option<i64>,
    sqlstate: Option<String>,
    started: Option<Instant>,
    bytes_out: i64,
    message: Option<String>,
) {
    let row = recorder::ActionOutcome {
        session_id: ctx.id.to_string(),
        seq,
        time: recorder::now_micros(),
        outcome: outcome.into(),
        rows,
        sqlstate,
        exit_status: None,
        duration_us: started.map(|s| s.elapsed().as_micros() as i64),
        bytes_in: 0,
        bytes_out,
        approver: None,
        approved_at: None,
        message,
    };
    if let Err(e) = ctx.shared.recorder.outcome(row).await {
        tracing::error!(error = %e, "cannot record outcome");
    }
}

/// Reads the target, relays to the client, turns answers into outcomes.
struct ServerSide<'a> {
    ctx: &'a Ctx<'a>,
    reader: ReadHalf<BoxStream>,
    buf: BytesMut,
    track: Arc<Mutex<Track>>,
    client_w: Arc<AsyncMutex<WriteHalf<BoxStream>>>,
}

/// An outcome computed under the lock, written after it.
struct Done {
    seq: i64,
    outcome: &'static str,
    rows: Option<i64>,
    sqlstate: Option<String>,
    started: Instant,
    bytes_out: i64,
    message: Option<String>,
    approval: Option<(String, i64)>,
}

impl ServerSide<'_> {
    async fn run(&mut self) -> EndReason {
        let max = self.ctx.shared.config.limits.max_frame_bytes;
        let mut out = BytesMut::new();
        let mut done = Vec::new();
        loop {
            out.clear();
            loop {
                let frame = match decode_frame(&mut self.buf, max) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "target sent an invalid frame");
                        return EndReason::ServerGone;
                    }
                };
                self.on_frame(frame, &mut out, &mut done);
            }
            if !out.is_empty() {
                self.ctx.handle.info.count(0, out.len() as u64);
                let mut w = self.client_w.lock().await;
                if w.write_all(&out).await.is_err() || w.flush().await.is_err() {
                    return EndReason::ClientGone;
                }
            }
            for d in done.drain(..) {
                let row = recorder::ActionOutcome {
                    session_id: self.ctx.id.to_string(),
                    seq: d.seq,
                    time: recorder::now_micros(),
                    outcome: d.outcome.into(),
                    rows: d.rows,
                    sqlstate: d.sqlstate,
                    duration_us: Some(d.started.elapsed().as_micros() as i64),
                    bytes_out: d.bytes_out,
                    approver: d.approval.as_ref().map(|a| a.0.clone()),
                    approved_at: d.approval.map(|a| a.1),
                    message: d.message,
                    ..Default::default()
                };
                if let Err(e) = self.ctx.shared.recorder.outcome(row).await {
                    tracing::error!(error = %e, "cannot record outcome");
                }
            }
            reserve_read_space(&mut self.buf);
            match self.reader.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return EndReason::ServerGone,
                Ok(_) => {}
            }
        }
    }

    fn on_frame(&mut self, frame: Frame, out: &mut BytesMut, done: &mut Vec<Done>) {
        let mut t = self.track.lock().unwrap_or_else(|e| e.into_inner());
        let mut forward = true;
        match frame.tag {
            b'Z' => {
                if let Ok(r) = ReadyForQuery::decode(&frame) {
                    t.status = Some(r.status);
                }
                if let Some(cycle) = t.cycles.pop_front() {
                    for p in cycle.pending {
                        let (outcome, message, sqlstate) = match (&cycle.error, p.expect) {
                            (Some((code, msg)), Expect::Query) => {
                                ("error", Some(msg.clone()), Some(code.clone()))
                            }
                            (None, Expect::Query) => ("ok", None, None),
                            (Some(_), _) => (
                                "cancelled",
                                Some("not run: an earlier message in the batch failed".into()),
                                None,
                            ),
                            (None, _) => ("unknown", None, None),
                        };
                        let rows = (p.expect == Expect::Query && cycle.error.is_none())
                            .then_some(cycle.rows);
                        done.push(Done {
                            seq: p.seq,
                            outcome,
                            rows,
                            sqlstate,
                            started: p.started,
                            bytes_out: cycle.bytes_out,
                            message,
                            approval: p.approval,
                        });
                    }
                }
            }
            b'1' => {
                if let Some(c) = t.cycles.front_mut() {
                    let idx = c.parse_seen;
                    c.parse_seen += 1;
                    if c.swallow_parse == Some(idx) {
                        forward = false;
                    } else if let Some(p) = take_first(&mut c.pending, Expect::ParseComplete) {
                        done.push(Done {
                            seq: p.seq,
                            outcome: "ok",
                            rows: None,
                            sqlstate: None,
                            started: p.started,
                            bytes_out: 0,
                            message: None,
                            approval: p.approval,
                        });
                    }
                }
            }
            b'2' => {
                if let Some(c) = t.cycles.front_mut() {
                    let idx = c.bind_seen;
                    c.bind_seen += 1;
                    if c.swallow_bind == Some(idx) {
                        forward = false;
                    }
                }
            }
            b'C' | b'I' | b's' => {
                let rows = if frame.tag == b'C' {
                    CommandComplete::decode(&frame).ok().and_then(|c| c.rows())
                } else {
                    None
                };
                if let Some(c) = t.cycles.front_mut() {
                    if let Some(p) = take_first(&mut c.pending, Expect::ExecuteDone) {
                        done.push(Done {
                            seq: p.seq,
                            outcome: "ok",
                            rows: rows.map(|r| r as i64).or(Some(0)),
                            sqlstate: None,
                            started: p.started,
                            bytes_out: c.bytes_out,
                            message: None,
                            approval: p.approval,
                        });
                        c.bytes_out = 0;
                    } else {
                        c.rows += rows.unwrap_or(0) as i64;
                    }
                }
            }
            b'E' => {
                let fatal = ErrorResponse::decode(&frame)
                    .is_ok_and(|e| matches!(e.fields.severity(), Some("FATAL") | Some("PANIC")));
                if fatal {
                    t.server_fatal = true;
                }
                if let Some(c) = t.cycles.front_mut() {
                    if c.injected_error {
                        c.injected_error = false;
                        if let Ok(mut e) = ErrorResponse::decode(&frame) {
                            // Drop the PL/pgSQL CONTEXT ('W') of the bastion's own DO block.
                            e.fields.fields.retain(|(code, _)| *code != b'W');
                            e.encode(out);
                            forward = false;
                        }
                    } else if let Ok(e) = ErrorResponse::decode(&frame) {
                        let code = e.fields.code().unwrap_or("XX000").to_string();
                        let msg = e.fields.message().unwrap_or_default().to_string();
                        let front = c.pending.front().map(|p| p.expect);
                        match front {
                            Some(Expect::ParseComplete) | Some(Expect::ExecuteDone) => {
                                if let Some(p) = c.pending.pop_front() {
                                    done.push(Done {
                                        seq: p.seq,
                                        outcome: "error",
                                        rows: None,
                                        sqlstate: Some(code),
                                        started: p.started,
                                        bytes_out: 0,
                                        message: Some(msg),
                                        approval: p.approval,
                                    });
                                }
                            }
                            _ => {
                                if c.error.is_none() {
                                    c.error = Some((code, msg));
                                }
                            }
                        }
                    }
                }
            }
            b'S' => {
                if let Ok(p) = ParameterStatus::decode(&frame) {
                    if p.name == "standard_conforming_strings" {
                        t.standard_conforming_strings = Some(p.value == "on");
                    }
                }
            }
            b'd' => {
                if let Some(c) = t.cycles.front_mut() {
                    c.bytes_out += frame.raw.len() as i64;
                }
            }
            _ => {}
        }
        drop(t);
        if forward {
            out.extend_from_slice(&frame.raw);
        }
    }
}

/// Read space to offer before reading a socket. Without it a buffer whose frames were all split
/// off has no spare room, and the read gets the 64 bytes `BytesMut` adds: a reply of a few
/// hundred bytes then takes several `recvfrom(2)` calls, and a short read never tells tokio the
/// socket is drained. Reserving reclaims the buffer's space once its frames are dropped.
fn reserve_read_space(buf: &mut BytesMut) {
    const MIN_SPARE: usize = 4096;
    const READ_CHUNK: usize = 16 * 1024;
    if buf.capacity() - buf.len() < MIN_SPARE {
        buf.reserve(READ_CHUNK);
    }
}

fn take_first(pending: &mut VecDeque<Pending>, expect: Expect) -> Option<Pending> {
    let idx = pending.iter().position(|p| p.expect == expect)?;
    pending.remove(idx)
}

/// Reads the client, decides, records, forwards.
struct ClientSide<'a> {
    ctx: &'a Ctx<'a>,
    reader: ReadHalf<BoxStream>,
    buf: BytesMut,
    server: WriteHalf<BoxStream>,
    track: Arc<Mutex<Track>>,
    client_w: Arc<AsyncMutex<WriteHalf<BoxStream>>>,
    sql: SqlSession,
    /// Prepared statement name -> text, for statements the server accepted from us.
    statements: HashMap<String, String>,
    /// Portal name -> statement name.
    portals: HashMap<String, String>,
    /// Extended-protocol messages waiting for `Sync`/`Flush`.
    batch: Vec<Frame>,
    /// A message of the current extended unit was denied: drop everything until `Sync`.
    skip_until_sync: bool,
    seq: i64,
    mfa_at: Option<Instant>,
    last_activity: Instant,
    /// The FATAL to send when `run` ends with a protocol error (SQLSTATE, message).
    fatal: Option<(&'static str, String)>,
}

/// How one decided message is handled.
enum Step {
    Forward,
    Deny(String, String),
}

impl ClientSide<'_> {
    async fn run(&mut self) -> EndReason {
        let max = self.ctx.shared.config.limits.max_frame_bytes;
        let idle = self.ctx.shared.config.limits.idle_timeout;
        loop {
            let frame = match decode_frame(&mut self.buf, max) {
                Ok(Some(f)) => f,
                Ok(None) => {
                    reserve_read_space(&mut self.buf);
                    let read =
                        tokio::time::timeout(idle, self.reader.read_buf(&mut self.buf)).await;
                    match read {
                        Ok(Ok(0)) | Ok(Err(_)) => return EndReason::ClientGone,
                        Ok(Ok(_)) => {
                            self.last_activity = Instant::now();
                            continue;
                        }
                        Err(_) => {
                            let busy = !self
                                .track
                                .lock()
                                .map(|t| t.cycles.is_empty())
                                .unwrap_or(true);
                            if busy {
                                continue;
                            }
                            return EndReason::IdleTimeout;
                        }
                    }
                }
                Err(e) => {
                    // The declared length is checked before anything is allocated; the
                    // message is not read, so the stream cannot be resynchronised: end.
                    self.fatal = Some(match e {
                        ProtocolError::MessageTooLarge { .. } => (
                            sqlstate::PROGRAM_LIMIT_EXCEEDED,
                            format!("message too large: {e} (limits.max_frame_bytes)"),
                        ),
                        _ => (
                            sqlstate::PROTOCOL_VIOLATION,
                            format!("invalid message from client: {e}"),
                        ),
                    });
                    return EndReason::ProtocolError;
                }
            };
            self.ctx.handle.info.count(frame.raw.len() as u64, 0);
            let result = match frame.tag {
                b'Q' => self.on_query(frame).await,
                b'P' | b'B' | b'E' | b'D' | b'C' => {
                    self.batch.push(frame);
                    Ok(())
                }
                b'H' => {
                    self.batch.push(frame);
                    self.flush_batch(false).await
                }
                b'S' => {
                    self.batch.push(frame);
                    self.flush_batch(true).await
                }
                b'd' | b'c' | b'f' => self.send(&frame.raw).await,
                b'F' => self.on_function_call().await,
                b'X' => {
                    let _ = self.send(&frame.raw).await;
                    return EndReason::ClientQuit;
                }
                other => {
                    let msg = format!(
                        "unexpected message type {:?} (0x{other:02x}) from client",
                        char::from(other)
                    );
                    self.fatal = Some((sqlstate::PROTOCOL_VIOLATION, msg));
                    return EndReason::ProtocolError;
                }
            };
            if result.is_err() {
                return EndReason::ServerGone;
            }
        }
    }

    /// Whether the target already sent the client a FATAL.
    fn server_fatal(&self) -> bool {
        self.track.lock().map(|t| t.server_fatal).unwrap_or(false)
    }

    /// Ends the target's side when the session ends for any reason but the target going away:
    /// a statement still running there is cancelled (a killed session must not leave it
    /// running), then `Terminate` tells the backend to exit. Best effort and bounded.
    async fn end_upstream(&mut self, key: Option<&UpstreamKey>) {
        let busy = self
            .track
            .lock()
            .map(|t| !t.cycles.is_empty())
            .unwrap_or(true);
        if busy {
            if let Some(key) = key {
                let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, super::cancel::send_cancel(key))
                    .await;
            }
        }
        let mut terminate = BytesMut::new();
        protocol::postgres::frontend::Terminate.encode(&mut terminate);
        let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, async {
            let _ = self.server.write_all(&terminate).await;
            let _ = self.server.shutdown().await;
        })
        .await;
    }

    /// Reads and drops the client's further input, bounded in time and bytes (nothing kept).
    async fn drain(&mut self) {
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        let mut scratch = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        while total < DRAIN_MAX_BYTES {
            match tokio::time::timeout_at(deadline, self.reader.read(&mut scratch)).await {
                Ok(Ok(n)) if n > 0 => total += n as u64,
                _ => break,
            }
        }
    }

    /// Writes to the target and flushes: TLS keeps written bytes in its record buffer until
    /// flushed, and a COPY whose tail sits there would wait forever.
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.server.write_all(bytes).await?;
        self.server.flush().await
    }

    fn ctx_now(&self) -> RequestContext {
        request_context(self.ctx.peer, self.mfa_at)
    }

    fn refresh_session_state(&mut self) {
        if let Ok(t) = self.track.lock() {
            if t.standard_conforming_strings.is_some() {
                self.sql.standard_conforming_strings = t.standard_conforming_strings;
            }
        }
    }

    fn decide(&mut self, text: &str) -> Verdict {
        self.refresh_session_state();
        let ctx = self.ctx_now();
        if text.len() > self.ctx.shared.config.limits.max_statement_bytes {
            let mut v = self.ctx.shared.engine().decide_sql(
                self.ctx.identity,
                self.ctx.target,
                "",
                &mut self.sql,
                &ctx,
            );
            v.decision = Decision::Deny;
            v.policy_ids = vec!["limits.max_statement_bytes".into()];
            v.message = format!(
                "statement of {} bytes exceeds the limit of {} bytes (limits.max_statement_bytes)",
                text.len(),
                self.ctx.shared.config.limits.max_statement_bytes
            );
            v.redacted_text = format!(
                "[{} bytes, not recorded: over the statement limit]",
                text.len()
            );
            return v;
        }
        self.ctx.shared.engine().decide_sql(
            self.ctx.identity,
            self.ctx.target,
            text,
            &mut self.sql,
            &ctx,
        )
    }

    /// Records the action row; `Err` is a refusal message when the trail cannot take it.
    async fn record(&mut self, verdict: &Verdict, decision: &str) -> Result<i64, String> {
        self.seq += 1;
        let seq = self.seq;
        self.ctx.handle.info.set_last_action(&verdict.redacted_text);
        let row = recorder::ActionRow {
            time: recorder::now_micros(),
            session_id: self.ctx.id.to_string(),
            seq,
            node: String::new(),
            identity: self.ctx.identity.to_string(),
            identity_kind: self.ctx.identity_kind.to_string(),
            target: self.ctx.target.to_string(),
            protocol: "postgres".into(),
            kind: "sql".into(),
            text: verdict.redacted_text.clone(),
            fingerprint: Some(verdict.fingerprint.clone()),
            statement_class: Some(verdict.class.clone()),
            objects: verdict.objects.clone(),
            risk_tags: verdict.risk_tags.clone(),
            decision: decision.into(),
            policy_ids: verdict.policy_ids.clone(),
            shadow_decision: verdict.shadow.map(|d| d.as_str().to_string()),
            step_up: verdict.step_up.map(|s| s.to_string()),
            approver: None,
            approved_at: None,
        };
        match self.ctx.shared.recorder.action(row).await {
            Ok(()) => Ok(seq),
            Err(e) if self.ctx.shared.config.recorder.allow_on_error => {
                tracing::error!(error = %e, "RECORDER FAILED: action runs unrecorded because on_recorder_error = allow");
                Ok(seq)
            }
            Err(e) => Err(format!(
                "the audit trail cannot record this statement, so it does not run: {e}"
            )),
        }
    }

    /// Decides one statement text: records it and says whether to forward.
    async fn judge(&mut self, text: &str) -> Judged {
        let verdict = self.decide(text);
        match verdict.decision {
            Decision::Allow => match self.record(&verdict, "allow").await {
                Ok(seq) => Judged {
                    step: Step::Forward,
                    seq: Some(seq),
                    approval: None,
                },
                Err(msg) => Judged::deny(msg, "recorder unavailable".into()),
            },
            Decision::Deny => {
                let hint = format!("policy: {}", verdict.policy_ids.join(", "));
                if let Ok(seq) = self.record(&verdict, "deny").await {
                    self.refused(seq, &verdict.message).await;
                }
                Judged::deny(verdict.message.clone(), hint)
            }
            Decision::StepUp => self.step_up(text, verdict).await,
        }
    }

    async fn refused(&self, seq: i64, message: &str) {
        record_outcome(
            self.ctx,
            seq,
            "denied",
            None,
            Some(sqlstate::INSUFFICIENT_PRIVILEGE.into()),
            None,
            0,
            Some(message.to_string()),
        )
        .await;
    }

    /// Step-up: a fresh one-time code (refused with instructions until given) and/or another
    /// person's approval (the statement waits here; the client is told at once).
    async fn step_up(&mut self, text: &str, verdict: Verdict) -> Judged {
        use crate::broker::{action_digest, StepUpKind, StepUpOutcome, StepUpRequest};
        let need = verdict.step_up.unwrap_or_default();
        let hint = format!("policy: {}", verdict.policy_ids.join(", "));
        let seq = match self.record(&verdict, "step_up").await {
            Ok(seq) => seq,
            Err(msg) => return Judged::deny(msg, "recorder unavailable".into()),
        };
        if need.mfa {
            let msg = format!(
                "{}; a one-time code is required: run SET bastion.otp = '<code>' and retry",
                verdict.message
            );
            self.refused(seq, &msg).await;
            return Judged::deny(msg, hint);
        }
        let shared = self.ctx.shared;
        let kind = shared
            .config
            .users
            .get(self.ctx.identity)
            .map(|u| u.kind)
            .unwrap_or(crate::config::UserKind::Agent);
        let request = StepUpRequest {
            session_id: self.ctx.id.to_string(),
            seq: seq as u64,
            identity: self.ctx.identity.to_string(),
            identity_kind: kind,
            target: self.ctx.target.to_string(),
            protocol: crate::config::Protocol::Postgres,
            text: verdict.redacted_text.clone(),
            digest: action_digest(self.ctx.id, seq as u64, text.as_bytes()),
            facts: verdict.facts.clone(),
            policy_ids: verdict.policy_ids.clone(),
            approver_groups: verdict.approver_groups.clone(),
            kind: StepUpKind::Approval,
            cancel: self.ctx.handle.info.kill.clone(),
        };
        let (id, outcome) = shared.broker.submit(request);
        let waiting = format!(
            "approval required ({}), request {}, waiting up to {}s: bastion approvals approve {}",
            verdict.message,
            id.as_str(),
            shared.config.approvals.timeout.as_secs(),
            id.as_str()
        );
        {
            let mut w = self.client_w.lock().await;
            let _ = w.write_all(&notice(&waiting)).await;
            let _ = w.flush().await;
        }
        match outcome.await {
            StepUpOutcome::Approved { approver, at } => {
                let at = at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros() as i64)
                    .unwrap_or(0);
                Judged {
                    step: Step::Forward,
                    seq: Some(seq),
                    approval: Some((approver, at)),
                }
            }
            StepUpOutcome::Denied { by, reason } => {
                let msg = format!("request {} denied by {by}: {reason}", id.as_str());
                self.refused(seq, &msg).await;
                Judged::deny(msg, hint)
            }
            StepUpOutcome::TimedOut => {
                let msg = format!(
                    "request {} was not approved within {}s",
                    id.as_str(),
                    shared.config.approvals.timeout.as_secs()
                );
                self.refused(seq, &msg).await;
                Judged::deny(msg, hint)
            }
            StepUpOutcome::Cancelled => {
                let msg = format!("request {} was cancelled", id.as_str());
                self.refused(seq, &msg).await;
                Judged::deny(msg, hint)
            }
        }
    }

    /// Opens a cycle, or extends the open (not yet synced) one.
    fn with_cycle(&self, f: impl FnOnce(&mut Cycle)) {
        let mut t = self.track.lock().unwrap_or_else(|e| e.into_inner());
        if t.cycles.back().is_none_or(|c| c.closed) {
            t.cycles.push_back(Cycle::default());
        }
        if let Some(c) = t.cycles.back_mut() {
            f(c);
        }
    }

    async fn on_query(&mut self, frame: Frame) -> std::io::Result<()> {
        let text = match Query::decode(&frame) {
            Ok(q) => q.query,
            Err(e) => {
                return self
                    .deny_simple(&format!("query is not valid: {e}"), "ANY-0")
                    .await
            }
        };
        if let Some(code) = otp_code(&text) {
            return self.on_otp(&code).await;
        }
        let judged = self.judge(&text).await;
        let pending = judged.pending(Expect::Query);
        match judged.step {
            Step::Forward => {
                self.with_cycle(|c| {
                    c.pending.extend(pending);
                    c.closed = true;
                });
                self.send(&frame.raw).await
            }
            Step::Deny(msg, hint) => self.deny_simple(&msg, &hint).await,
        }
    }

    /// Sends the bastion's denial as a simple query the server answers in order.
    async fn deny_simple(&mut self, message: &str, hint: &str) -> std::io::Result<()> {
        let mut q = BytesMut::new();
        Query::new(raise_block(message, hint)).encode(&mut q);
        self.with_cycle(|c| {
            c.injected_error = true;
            c.closed = true;
        });
        self.send(&q).await
    }

    async fn on_function_call(&mut self) -> std::io::Result<()> {
        let msg = "the function-call protocol message is not allowed through the bastion; call functions with SELECT";
        self.deny_simple(msg, "bastion").await
    }

    /// `SET bastion.otp = '...'`: verified here, never forwarded; the server runs a harmless
    /// `SET bastion.otp = 'accepted'` in its place so the client gets the normal answer in order.
    async fn on_otp(&mut self, code: &str) -> std::io::Result<()> {
        let ok = crate::postgres::relay::verify_otp(self.ctx.shared, self.ctx.identity, code);
        self.seq += 1;
        let seq = self.seq;
        let row = recorder::ActionRow {
            time: recorder::now_micros(),
            session_id: self.ctx.id.to_string(),
            seq,
            identity: self.ctx.identity.to_string(),
            identity_kind: self.ctx.identity_kind.to_string(),
            target: self.ctx.target.to_string(),
            protocol: "postgres".into(),
            kind: "otp".into(),
            text: "SET bastion.otp = '[REDACTED]'".into(),
            statement_class: Some("session".into()),
            decision: if ok.is_ok() {
                "allow".into()
            } else {
                "deny".into()
            },
            step_up: Some("mfa".into()),
            ..Default::default()
        };
        let _ = self.ctx.shared.recorder.action(row).await;
        match ok {
            Ok(()) => {
                self.mfa_at = Some(Instant::now());
                let mut q = BytesMut::new();
                Query::new("SET bastion.otp = 'accepted'").encode(&mut q);
                record_outcome(
                    self.ctx,
                    seq,
                    "ok",
                    None,
                    None,
                    None,
                    0,
                    Some("one-time code accepted".into()),
                )
                .await;
                self.with_cycle(|c| c.closed = true);
                self.send(&q).await
            }
            Err(reason) => {
                let delay = self
                    .ctx
                    .shared
                    .lockouts
                    .failure(self.ctx.identity, self.ctx.peer.ip());
                tokio::time::sleep(delay).await;
                record_outcome(
                    self.ctx,
                    seq,
                    "denied",
                    None,
                    Some(sqlstate::INVALID_PASSWORD.into()),
                    None,
                    0,
                    Some(reason.clone()),
                )
                .await;
                self.deny_simple(&format!("one-time code rejected: {reason}"), "bastion.otp")
                    .await
            }
        }
    }

    /// Decides and forwards an extended-protocol unit (ending in `Sync` when `sync`, else `Flush`).
    async fn flush_batch(&mut self, sync: bool) -> std::io::Result<()> {
        let frames = std::mem::take(&mut self.batch);
        let mut out = BytesMut::new();
        let mut parse_before = 0usize;
        let mut bind_before = 0usize;
        for frame in frames {
            if self.skip_until_sync {
                if frame.tag == b'S' {
                    self.skip_until_sync = false;
                    out.extend_from_slice(&frame.raw);
                    self.with_cycle(|c| c.closed = true);
                }
                continue;
            }
            let step = match frame.tag {
                b'P' => match Parse::decode(&frame) {
                    Ok(p) => {
                        let judged = self.judge(&p.query).await;
                        if let Step::Forward = judged.step {
                            self.statements.insert(p.name.clone(), p.query.clone());
                            let pending = judged.pending(Expect::ParseComplete);
                            self.with_cycle(|c| c.pending.extend(pending));
                        }
                        judged.step
                    }
                    Err(e) => {
                        Step::Deny(format!("Parse message is not valid: {e}"), "ANY-0".into())
                    }
                },
                b'B' => {
                    if let Ok(b) = Bind::decode(&frame) {
                        self.portals.insert(b.portal, b.statement);
                    }
                    Step::Forward
                }
                b'E' => {
                    let text = Execute::decode(&frame)
                        .ok()
                        .and_then(|e| self.portals.get(&e.portal).cloned())
                        .and_then(|s| self.statements.get(&s).cloned());
                    match text {
                        // Unknown portal: the server will refuse it; nothing runs.
                        None => Step::Forward,
                        Some(text) => {
                            let judged = self.judge(&text).await;
                            if let Step::Forward = judged.step {
                                let pending = judged.pending(Expect::ExecuteDone);
                                self.with_cycle(|c| c.pending.extend(pending));
                            }
                            judged.step
                        }
                    }
                }
                b'C' => {
                    if let Ok(c) = Close::decode(&frame) {
                        match c.kind {
                            protocol::postgres::frontend::ObjectKind::Statement => {
                                self.statements.remove(&c.name)
                            }
                            protocol::postgres::frontend::ObjectKind::Portal => {
                                self.portals.remove(&c.name)
                            }
                        };
                    }
                    Step::Forward
                }
                _ => Step::Forward,
            };
            match step {
                Step::Forward => {
                    match frame.tag {
                        b'P' => parse_before += 1,
                        b'B' => bind_before += 1,
                        _ => {}
                    }
                    out.extend_from_slice(&frame.raw);
                    if frame.tag == b'S' {
                        self.with_cycle(|c| c.closed = true);
                    } else {
                        self.with_cycle(|_| {});
                    }
                }
                Step::Deny(message, hint) => {
                    // In place of the denied message: an unnamed DO block that raises the denial.
                    let (p, b) = (parse_before, bind_before);
                    self.with_cycle(|c| {
                        c.swallow_parse = Some(p);
                        c.swallow_bind = Some(b);
                        c.injected_error = true;
                    });
                    Parse {
                        name: String::new(),
                        query: raise_block(&message, &hint),
                        param_types: Vec::new(),
                    }
                    .encode(&mut out);
                    Bind {
                        portal: String::new(),
                        statement: String::new(),
                        param_formats: Vec::new(),
                        params: Vec::new(),
                        result_formats: Vec::new(),
                    }
                    .encode(&mut out);
                    Execute {
                        portal: String::new(),
                        max_rows: 0,
                    }
                    .encode(&mut out);
                    self.portals.remove("");
                    self.skip_until_sync = true;
                }
            }
        }
        if !sync {
            // Flush: forward what we have, including the client's Flush frame.
        }
        if out.is_empty() {
            return Ok(());
        }
        self.send(&out).await
    }
}

/// A `DO` block raising `42501` with `message` and `hint`, each in its own dollar quote with a
/// random tag that does not occur in the text.
fn raise_block(message: &str, hint: &str) -> String {
    use rand::Rng;
    let clean = |s: &str| s.replace('\0', "");
    let (message, hint) = (clean(message), clean(hint));
    let tag = |rng: &mut rand::rngs::ThreadRng, avoid: &str| loop {
        let t = format!("b{:012x}", rng.gen::<u64>() & 0xffff_ffff_ffff);
        if !avoid.contains(&t) {
            break t;
        }
    };
    let mut rng = rand::thread_rng();
    let all = format!("{message}{hint}");
    let (outer, m, h) = (
        tag(&mut rng, &all),
        tag(&mut rng, &all),
        tag(&mut rng, &all),
    );
    format!(
        "DO ${outer}$BEGIN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = ${m}${message}${m}$, HINT = ${h}${hint}${h}$; END${outer}$"
    )
}

/// The code of `SET bastion.otp = '123456'` (also `TO`, without quotes, any case), if `text` is one.
fn otp_code(text: &str) -> Option<String> {
    let t = text.trim().trim_end_matches(';').trim();
    let lower = t.to_ascii_lowercase();
    let rest = lower.strip_prefix("set")?.trim_start();
    let rest = rest
        .strip_prefix("session")
        .map(str::trim_start)
        .unwrap_or(rest);
    let rest = rest.strip_prefix("bastion.otp")?.trim_start();
    let rest = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix("to"))?
        .trim();
    let code = rest.trim_matches('\'').trim();
    (!code.is_empty() && code.len() <= 16 && code.chars().all(|c| c.is_ascii_digit()))
        .then(|| code.to_string())
        .or_else(|| Some(String::from("invalid")))
}

/// Checks a one-time code for `identity`.
pub fn verify_otp(shared: &Shared, identity: &str, code: &str) -> Result<(), String> {
    let user = shared
        .config
        .users
        .get(identity)
        .ok_or("unknown identity")?;
    let secret = crate::totp::load_secret(&shared.config.server.state_dir, user)
        .map_err(|e| e.to_string())?;
    shared
        .totp
        .verify(identity, &secret, code, std::time::SystemTime::now())
        .map_err(|e| e.to_string())
}

/// A `NoticeResponse` (the client shows it at once, e.g. "approval required ...").
fn notice(message: &str) -> Bytes {
    let mut b = BytesMut::new();
    NoticeResponse {
        fields: protocol::postgres::backend::ErrorFields::new(Severity::Notice, "00000", message),
    }
    .encode(&mut b);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_block_quotes_hostile_text() {
        let b = raise_block("it's $$ denied $b$ \0", "policy: SQL-5");
        assert!(b.starts_with("DO $b"));
        assert!(!b.contains('\0'));
        assert!(b.contains("it's $$ denied"));
    }

    #[test]
    fn otp_statements_are_recognised() {
        assert_eq!(
            otp_code("SET bastion.otp = '123456'").as_deref(),
            Some("123456")
        );
        assert_eq!(
            otp_code("set bastion.otp to 123456;").as_deref(),
            Some("123456")
        );
        assert_eq!(
            otp_code("SET bastion.otp = 'abc'").as_deref(),
            Some("invalid")
        );
        assert_eq!(otp_code("SET search_path = app"), None);
        assert_eq!(otp_code("SELECT 1"), None);
    }
}
