//! Port forwarding: `direct-tcpip` (`ssh -L`, `-D`, `-W`) and `tcpip-forward` (`ssh -R`), each
//! decided as `ssh:forward` with host and port before anything is opened on the target; a denied
//! `-L` channel is refused with the SSH reason "administratively prohibited", a denied `-R` with
//! a request failure (the protocol carries no reason for global requests). Bytes are counted both
//! ways: a `-L` channel's when it closes; a `-R` forward's, summed over the connections the
//! target accepted on it, when the client cancels it or the session ends. Connections the target
//! hands back for a forward the bastion did not admit are refused.
use super::action_gate::{Admission, Finished, SessionGate, SshAction};
use super::upstream::Upstream;
use russh::{
    client, server, Channel, ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Bytes relayed by one forward (client → target, target → client).
#[derive(Default)]
pub struct Counters {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Counters {
    fn totals(&self) -> (u64, u64) {
        (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        )
    }
}

/// Opens a `direct-tcpip` channel from the client to `host:port` through the target.
pub async fn direct_tcpip(
    down: Channel<server::Msg>,
    reply: server::ChannelOpenHandle,
    host: String,
    port: u32,
    originator: (String, u32),
    gate: Arc<SessionGate>,
    upstream: Arc<Upstream>,
) {
    let Ok(port16) = u16::try_from(port) else {
        reply.reject(ChannelOpenFailure::ConnectFailed).await;
        return;
    };
    let started = Instant::now();
    let seq = match gate
        .admit(
            SshAction::Forward {
                kind: "direct-tcpip",
                host: &host,
                port: port16,
            },
            |_| async {},
        )
        .await
    {
        Admission::Allowed { seq } => seq,
        Admission::Refused { message, .. } => {
            tracing::info!(session = %gate.session_id, %host, port, %message, "forward refused");
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        }
    };
    let up = match upstream
        .channel_open_direct_tcpip(host.clone(), port, originator.0, originator.1)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            gate.finish(
                seq,
                started,
                Finished {
                    outcome: "error",
                    message: Some(format!("target could not connect: {e}")),
                    ..Default::default()
                },
            )
            .await;
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return;
        }
    };
    reply.accept().await;
    let counters = Counters::default();
    pipe(down, up, &gate, &counters).await;
    let (bytes_in, bytes_out) = counters.totals();
    gate.finish(
        seq,
        started,
        Finished {
            outcome: "ok",
            bytes_in,
            bytes_out,
            ..Default::default()
        },
    )
    .await;
}

/// One admitted `ssh -R` forward: its action and what went through it.
struct RemoteForward {
    seq: i64,
    started: Instant,
    counters: Counters,
    connections: AtomicU64,
    /// Cancelled when the client cancels the forward.
    cancelled: CancellationToken,
}

/// Remote forwards by the (address, port) the target listens on.
type ForwardMap = HashMap<(String, u32), Arc<RemoteForward>>;

/// The session's remote forwards.
type RemoteForwards = Arc<Mutex<ForwardMap>>;

fn lock(forwards: &RemoteForwards) -> std::sync::MutexGuard<'_, ForwardMap> {
    forwards.lock().unwrap_or_else(|e| e.into_inner())
}

/// Carries connections the target accepted on a remote forward back to the client, and keeps
/// the session's admitted remote forwards.
#[derive(Clone)]
pub struct ForwardedSink {
    handle: server::Handle,
    gate: Arc<tokio::sync::OnceCell<Arc<SessionGate>>>,
    forwards: RemoteForwards,
    /// Cancelled when the client connection has ended.
    session_ended: CancellationToken,
}

impl ForwardedSink {
    /// A sink writing to the client connection behind `handle`; the gate is set once the
    /// session is established. `session_ended` is cancelled when the client connection ends.
    pub fn new(handle: server::Handle, session_ended: CancellationToken) -> ForwardedSink {
        ForwardedSink {
            handle,
            gate: Arc::new(tokio::sync::OnceCell::new()),
            forwards: Arc::default(),
            session_ended,
        }
    }

    /// Sets the session gate (byte counters).
    pub fn set_gate(&self, gate: Arc<SessionGate>) {
        let _ = self.gate.set(gate);
    }

    /// Opens the matching `forwarded-tcpip` channel to the client and relays; a connection on
    /// a forward the bastion did not admit is refused.
    pub async fn accept(
        &self,
        up: Channel<client::Msg>,
        address: &str,
        port: u32,
        originator: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
    ) {
        // Asked for port 0, the forward is filed under 0 until the target says which it chose.
        let forward = {
            let map = lock(&self.forwards);
            map.get(&(address.to_string(), port))
                .or_else(|| map.get(&(address.to_string(), 0)))
                .cloned()
        };
        let (Some(gate), Some(forward)) = (self.gate.get().cloned(), forward) else {
            tracing::warn!(%address, port, "target opened a forwarded connection for no admitted forward: refused");
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        };
        forward.connections.fetch_add(1, Ordering::Relaxed);
        let handle = self.handle.clone();
        let (address, originator) = (address.to_string(), originator.to_string());
        // Opening the client channel waits for the client: do it off the upstream session loop.
        tokio::spawn(async move {
            match handle
                .channel_open_forwarded_tcpip(address, port, originator, originator_port)
                .await
            {
                Ok(down) => {
                    reply.accept().await;
                    pipe(down, up, &gate, &forward.counters).await;
                }
                Err(_) => reply.reject(ChannelOpenFailure::ConnectFailed).await,
            }
        });
    }

    /// Registers an admitted forward before the target is asked to listen, so a connection the
    /// target hands back at once finds it. A second forward on the same key ends the first.
    fn begin(&self, address: &str, port: u32, seq: i64, started: Instant) -> Arc<RemoteForward> {
        let forward = Arc::new(RemoteForward {
            seq,
            started,
            counters: Counters::default(),
            connections: AtomicU64::new(0),
            cancelled: CancellationToken::new(),
        });
        if let Some(old) = lock(&self.forwards).insert((address.to_string(), port), forward.clone())
        {
            old.cancelled.cancel();
        }
        forward
    }

    /// The target listens: files the forward under the port it bound (asked for port 0, it
    /// chose one) and journals its outcome when the client cancels it or the session ends.
    fn settle(
        &self,
        address: &str,
        (asked, bound): (u32, u32),
        forward: Arc<RemoteForward>,
        gate: Arc<SessionGate>,
    ) {
        let key = (address.to_string(), bound);
        if asked != bound {
            let mut map = lock(&self.forwards);
            let asked_key = (address.to_string(), asked);
            if map
                .get(&asked_key)
                .is_some_and(|f| Arc::ptr_eq(f, &forward))
            {
                map.remove(&asked_key);
            }
            if let Some(old) = map.insert(key.clone(), forward.clone()) {
                old.cancelled.cancel();
            }
        }
        let (forwards, ended) = (self.forwards.clone(), self.session_ended.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = forward.cancelled.cancelled() => {}
                _ = ended.cancelled() => {}
            }
            {
                let mut map = lock(&forwards);
                if map.get(&key).is_some_and(|f| Arc::ptr_eq(f, &forward)) {
                    map.remove(&key);
                }
            }
            let (bytes_in, bytes_out) = forward.counters.totals();
            let connections = forward.connections.load(Ordering::Relaxed);
            let done = Finished {
                outcome: "ok",
                bytes_in,
                bytes_out,
                message: Some(format!("{connections} connection(s) forwarded")),
                ..Default::default()
            };
            gate.finish(forward.seq, forward.started, done).await;
        });
    }

    /// The target would not listen: forgets the forward.
    fn abandon(&self, address: &str, port: u32, forward: &Arc<RemoteForward>) {
        let key = (address.to_string(), port);
        let mut map = lock(&self.forwards);
        if map.get(&key).is_some_and(|f| Arc::ptr_eq(f, forward)) {
            map.remove(&key);
        }
    }

    /// Forgets the forward on (address, port) and journals its outcome; false if none.
    fn cancel(&self, address: &str, port: u32) -> bool {
        match lock(&self.forwards).remove(&(address.to_string(), port)) {
            Some(f) => {
                f.cancelled.cancel();
                true
            }
            None => false,
        }
    }
}

/// Decides an `ssh -R` request and asks the target to listen; `Some(port)` when it does. The
/// action's outcome is journaled when the forward ends (see [`ForwardedSink`]).
pub async fn remote_forward(
    address: &str,
    port: u32,
    gate: &Arc<SessionGate>,
    upstream: &Upstream,
    sink: &ForwardedSink,
) -> Option<u32> {
    let port16 = u16::try_from(port).ok()?;
    let started = Instant::now();
    let seq = match gate
        .admit(
            SshAction::Forward {
                kind: "tcpip-forward",
                host: address,
                port: port16,
            },
            |_| async {},
        )
        .await
    {
        Admission::Allowed { seq } => seq,
        Admission::Refused { message, .. } => {
            tracing::info!(session = %gate.session_id, %address, port, %message, "remote forward refused");
            return None;
        }
    };
    let forward = sink.begin(address, port, seq, started);
    match upstream.tcpip_forward(address.to_string(), port).await {
        Ok(bound) => {
            let bound = if bound == 0 { port } else { bound };
            sink.settle(address, (port, bound), forward, gate.clone());
            Some(bound)
        }
        Err(e) => {
            sink.abandon(address, port, &forward);
            gate.finish(
                seq,
                started,
                Finished {
                    outcome: "error",
                    message: Some(format!("target refused to listen: {e}")),
                    ..Default::default()
                },
            )
            .await;
            None
        }
    }
}

/// Cancels an `ssh -R` forward on the target and journals its outcome; false when there was
/// no such forward or the target refused.
pub async fn cancel_remote_forward(
    address: &str,
    port: u32,
    upstream: &Upstream,
    sink: &ForwardedSink,
) -> bool {
    let known = sink.cancel(address, port);
    let cancelled = upstream
        .cancel_tcpip_forward(address.to_string(), port)
        .await
        .is_ok();
    known && cancelled
}

/// Relays a forwarded byte stream both ways until either side closes the channel (or the
/// session is killed), adding to `counters` and the session's totals.
///
/// The first CLOSE ends both directions: the other side can no longer receive, and when the
/// bastion closed the target's channel first, russh drops the target's CLOSE reply, so waiting
/// for it would hold the channel (and its place under the channel limit) for good.
pub async fn pipe(
    down: Channel<server::Msg>,
    up: Channel<client::Msg>,
    gate: &SessionGate,
    counters: &Counters,
) {
    let (down_rx, down_tx) = down.split();
    let (up_rx, up_tx) = up.split();
    let info = gate.info.clone();
    let closed = gate.cancelled().child_token();
    let a = one_way(down_rx, up_tx, &counters.bytes_in, &closed, {
        let info = info.clone();
        move |n| info.count(n, 0)
    });
    let b = one_way(up_rx, down_tx, &counters.bytes_out, &closed, move |n| {
        info.count(0, n)
    });
    tokio::join!(a, b);
}

/// One direction of [`pipe`]; a CLOSE (or the end of `rx`) is passed on and cancels `closed`,
/// which ends the other direction too, even while it waits for window space.
async fn one_way<S>(
    mut rx: ChannelReadHalf,
    tx: ChannelWriteHalf<S>,
    counter: &AtomicU64,
    closed: &CancellationToken,
    count: impl Fn(u64),
) where
    S: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    loop {
        let msg = tokio::select! {
            m = rx.wait() => m,
            _ = closed.cancelled() => break,
        };
        match msg {
            Some(ChannelMsg::Data { data }) => {
                let n = data.len() as u64;
                let sent = tokio::select! {
                    r = tx.data_bytes(data) => r.is_ok(),
                    _ = closed.cancelled() => false,
                };
                if !sent {
                    break;
                }
                counter.fetch_add(n, Ordering::Relaxed);
                count(n);
            }
            Some(ChannelMsg::Eof) => {
                let _ = tx.eof().await;
            }
            Some(ChannelMsg::Close) | None => {
                let _ = tx.close().await;
                closed.cancel();
                break;
            }
            Some(_) => {}
        }
    }
}
