//! Port forwarding: `direct-tcpip` (`ssh -L`, `-D`, `-W`) and `tcpip-forward` (`ssh -R`), each
//! decided as `ssh:forward` with host and port before anything is opened on the target; denied
//! ones are refused with the SSH reason "administratively prohibited". Bytes are counted both
//! ways and recorded as the forward's outcome when the channel closes.
use super::action_gate::{Admission, Finished, SessionGate, SshAction};
use super::upstream::Upstream;
use russh::{
    client, server, Channel, ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

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
    let (bytes_in, bytes_out) = pipe(down, up, gate.clone()).await;
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

/// Carries connections the target accepted on a remote forward back to the client.
#[derive(Clone)]
pub struct ForwardedSink {
    handle: server::Handle,
    gate: Arc<tokio::sync::OnceCell<Arc<SessionGate>>>,
}

impl ForwardedSink {
    /// A sink writing to the client connection behind `handle`; the gate is set once the
    /// session is established.
    pub fn new(handle: server::Handle) -> ForwardedSink {
        ForwardedSink {
            handle,
            gate: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// Sets the session gate (byte counters).
    pub fn set_gate(&self, gate: Arc<SessionGate>) {
        let _ = self.gate.set(gate);
    }

    /// Opens the matching `forwarded-tcpip` channel to the client and relays.
    pub async fn accept(
        &self,
        up: Channel<client::Msg>,
        address: &str,
        port: u32,
        originator: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
    ) {
        let Some(gate) = self.gate.get().cloned() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        };
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
                    pipe(down, up, gate).await;
                }
                Err(_) => reply.reject(ChannelOpenFailure::ConnectFailed).await,
            }
        });
    }
}

/// Decides an `ssh -R` request and asks the target to listen; `Some(port)` when it does.
pub async fn remote_forward(
    address: &str,
    port: u32,
    gate: &SessionGate,
    upstream: &Upstream,
) -> Option<u32> {
    let port16 = u16::try_from(port).ok()?;
    match gate
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
        Admission::Allowed { seq } => match upstream.tcpip_forward(address.to_string(), port).await
        {
            Ok(bound) => {
                gate.finish(
                    seq,
                    Instant::now(),
                    Finished {
                        outcome: "ok",
                        ..Default::default()
                    },
                )
                .await;
                Some(if bound == 0 { port } else { bound })
            }
            Err(e) => {
                gate.finish(
                    seq,
                    Instant::now(),
                    Finished {
                        outcome: "error",
                        message: Some(format!("target refused to listen: {e}")),
                        ..Default::default()
                    },
                )
                .await;
                None
            }
        },
        Admission::Refused { .. } => None,
    }
}

/// Relays a forwarded byte stream both ways until both sides are done; returns
/// (client → target, target → client) byte counts.
pub async fn pipe(
    down: Channel<server::Msg>,
    up: Channel<client::Msg>,
    gate: Arc<SessionGate>,
) -> (u64, u64) {
    let (down_rx, down_tx) = down.split();
    let (up_rx, up_tx) = up.split();
    let bytes_in = Arc::new(AtomicU64::new(0));
    let bytes_out = Arc::new(AtomicU64::new(0));
    let info = gate.info.clone();
    let a = one_way(down_rx, up_tx, bytes_in.clone(), {
        let info = info.clone();
        move |n| info.count(n, 0)
    });
    let b = one_way(up_rx, down_tx, bytes_out.clone(), move |n| info.count(0, n));
    let kill = gate.cancelled();
    tokio::select! {
        _ = async { tokio::join!(a, b) } => {}
        _ = kill.cancelled() => {}
    }
    (
        bytes_in.load(Ordering::Relaxed),
        bytes_out.load(Ordering::Relaxed),
    )
}

async fn one_way<S>(
    mut rx: ChannelReadHalf,
    tx: ChannelWriteHalf<S>,
    counter: Arc<AtomicU64>,
    count: impl Fn(u64),
) where
    S: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    loop {
        match rx.wait().await {
            Some(ChannelMsg::Data { data }) => {
                counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                count(data.len() as u64);
                if tx.data_bytes(data).await.is_err() {
                    break;
                }
            }
            Some(ChannelMsg::Eof) => {
                let _ = tx.eof().await;
            }
            Some(ChannelMsg::Close) | None => {
                let _ = tx.close().await;
                break;
            }
            Some(_) => {}
        }
    }
}
