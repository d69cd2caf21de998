//! The `sftp` subsystem, proxied packet by packet through `protocol::sftp`: every request that
//! reads, writes or deletes (`open`, `opendir`, `remove`, `rmdir`, `mkdir`, `rename`, `setstat`,
//! `symlink`, and the OpenSSH `posix-rename`/`hardlink`/`lsetstat` extensions) is decided before
//! its raw bytes go to the target; a refusal is answered by the bastion with
//! `SSH_FX_PERMISSION_DENIED` and the policy's message. Metadata reads (`stat`, `realpath`,
//! `readdir`, ...) and data on an open handle pass: the `open` was the decision. Files are
//! recorded per file — one action at `open`, one outcome at `close` with bytes and SHA-256 —
//! not per packet. A malformed client packet ends the channel with an `SSH_FX_BAD_MESSAGE`.
use super::action_gate::{Admission, Finished, SessionGate, SshAction};
use super::upstream::Upstream;
use bytes::{Bytes, BytesMut};
use policies::engine::SftpOp;
use protocol::sftp::{decode_packet, path_text, Request, Response, SftpPacket, StatusCode};
use russh::{server, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Mutex as AsyncMutex;

/// Largest SFTP packet accepted either way (OpenSSH uses 256 KiB).
const MAX_SFTP_PACKET: usize = 1024 * 1024;
/// Most requests awaiting a reply that the bastion tracks; beyond it the client is cut off.
const MAX_OUTSTANDING: usize = 4096;

/// One open file: recorded at close.
struct OpenFile {
    seq: i64,
    started: Instant,
    bytes_in: u64,
    bytes_out: u64,
    hash: Sha256,
    /// Next offset for the hash to cover bytes in file order; `None` once out of order.
    next_offset: Option<u64>,
}

impl OpenFile {
    fn absorb(&mut self, offset: u64, data: &[u8]) {
        if self.next_offset == Some(offset) {
            self.hash.update(data);
            self.next_offset = Some(offset + data.len() as u64);
        } else {
            self.next_offset = None;
        }
    }

    fn finished(self, outcome: &'static str) -> (i64, Instant, Finished) {
        let sha = match self.next_offset {
            Some(_) => format!("sha256={}", hex::encode(self.hash.finalize())),
            None => "sha256 not computed (out-of-order transfer)".to_string(),
        };
        (
            self.seq,
            self.started,
            Finished {
                outcome,
                bytes_in: self.bytes_in,
                bytes_out: self.bytes_out,
                message: Some(sha),
                ..Default::default()
            },
        )
    }
}

/// What a forwarded request waits for.
enum Pending {
    /// An `open`/`opendir`: the HANDLE reply names the file.
    Open { seq: i64, started: Instant },
    /// A decided one-shot operation: its STATUS is the outcome of each of its actions (a
    /// rename is two: the old path and the new).
    Op { seqs: Vec<i64>, started: Instant },
    /// A READ on a tracked handle at an offset.
    Read { handle: Bytes, offset: u64 },
    /// A CLOSE of a tracked handle.
    Close { handle: Bytes },
}

#[derive(Default)]
struct State {
    pending: HashMap<u32, Pending>,
    files: HashMap<Bytes, OpenFile>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the subsystem until either side ends it.
pub async fn run(
    down_rx: ChannelReadHalf,
    down_tx: ChannelWriteHalf<server::Msg>,
    gate: Arc<SessionGate>,
    upstream: Arc<Upstream>,
    started: Instant,
) {
    let up = match upstream.channel_open_session().await {
        Ok(c) => c,
        Err(e) => {
            super::session_channel::refuse(
                &down_tx,
                &format!("cannot open a channel on target {}: {e}", gate.target),
            )
            .await;
            return;
        }
    };
    if let Err(e) = up.request_subsystem(true, "sftp").await {
        super::session_channel::refuse(
            &down_tx,
            &format!("target {} refused sftp: {e}", gate.target),
        )
        .await;
        return;
    }
    let (up_rx, up_tx) = up.split();
    let down_tx = Arc::new(AsyncMutex::new(down_tx));
    let state: Shared = Arc::default();
    let requests = tokio::spawn(client_to_target(
        down_rx,
        down_tx.clone(),
        up_tx,
        gate.clone(),
        state.clone(),
    ));
    target_to_client(up_rx, down_tx.clone(), gate.clone(), state.clone()).await;
    {
        let down = down_tx.lock().await;
        let _ = down.eof().await;
        let _ = down.close().await;
    }
    requests.abort();
    // Files still open, and decided requests still unanswered, when the channel ended.
    let leftovers: Vec<_> = {
        let mut st = lock(&state);
        let unanswered = || Finished {
            outcome: "unknown",
            message: Some("no reply from the target before the channel ended".into()),
            ..Default::default()
        };
        let mut out: Vec<_> = st
            .files
            .drain()
            .map(|(_, f)| f.finished("unknown"))
            .collect();
        for pending in st.pending.drain().map(|(_, p)| p) {
            match pending {
                Pending::Open { seq, started } => out.push((seq, started, unanswered())),
                Pending::Op { seqs, started } => {
                    out.extend(seqs.into_iter().map(|seq| (seq, started, unanswered())))
                }
                Pending::Read { .. } | Pending::Close { .. } => {}
            }
        }
        out
    };
    for (seq, started, done) in leftovers {
        gate.finish(seq, started, done).await;
    }
    tracing::debug!(session = %gate.session_id, took = ?started.elapsed(), "sftp channel ended");
}

async fn send_down(down: &AsyncMutex<ChannelWriteHalf<server::Msg>>, packet: Bytes) -> bool {
    down.lock().await.data_bytes(packet).await.is_ok()
}

async fn client_to_target(
    mut down_rx: ChannelReadHalf,
    down_tx: Arc<AsyncMutex<ChannelWriteHalf<server::Msg>>>,
    up_tx: ChannelWriteHalf<russh::client::Msg>,
    gate: Arc<SessionGate>,
    state: Shared,
) {
    let mut buf = BytesMut::new();
    loop {
        match down_rx.wait().await {
            Some(ChannelMsg::Data { data }) => {
                gate.info.count(data.len() as u64, 0);
                buf.extend_from_slice(&data);
                loop {
                    let packet = match decode_packet(&mut buf, MAX_SFTP_PACKET) {
                        Ok(Some(p)) => p,
                        Ok(None) => break,
                        Err(e) => {
                            malformed(&down_tx, 0, &e.to_string()).await;
                            let _ = up_tx.close().await;
                            return;
                        }
                    };
                    match Request::decode(&packet) {
                        Ok(request) => {
                            if !handle_request(request, packet, &down_tx, &up_tx, &gate, &state)
                                .await
                            {
                                let _ = up_tx.close().await;
                                return;
                            }
                        }
                        Err(e) => {
                            let id = packet
                                .raw
                                .get(5..9)
                                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                                .unwrap_or(0);
                            malformed(&down_tx, id, &e.to_string()).await;
                            let _ = up_tx.close().await;
                            return;
                        }
                    }
                }
            }
            Some(ChannelMsg::Eof) => {
                let _ = up_tx.eof().await;
            }
            Some(ChannelMsg::Close) | None => {
                let _ = up_tx.close().await;
                return;
            }
            Some(_) => {}
        }
    }
}

/// Answers a malformed request and ends the channel.
async fn malformed(down: &AsyncMutex<ChannelWriteHalf<server::Msg>>, id: u32, why: &str) {
    let reply = Response::Status {
        id,
        code: StatusCode::BAD_MESSAGE,
        message: format!("bastion: malformed sftp request: {why}"),
        lang: "en".into(),
    }
    .encode();
    let down = down.lock().await;
    let _ = down.data_bytes(reply.raw).await;
    let _ = down.eof().await;
    let _ = down.close().await;
}

/// Reads an SSH string from extension data.
fn ext_string(data: &[u8], at: usize) -> Option<(Bytes, usize)> {
    let len = u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize;
    let s = data.get(at + 4..at.checked_add(4)?.checked_add(len)?)?;
    Some((Bytes::copy_from_slice(s), at + 4 + len))
}

/// The decisions a request needs: (op, verb, path).
fn decisions(
    request: &Request,
    state: &Shared,
) -> Result<Vec<(SftpOp, &'static str, String)>, String> {
    let p = |b: &Bytes| path_text(b).into_owned();
    Ok(match request {
        Request::Open { path, pflags, .. } => {
            let op = if pflags.writes() {
                SftpOp::Write
            } else {
                SftpOp::Read
            };
            vec![(
                op,
                if op == SftpOp::Write {
                    "open-write"
                } else {
                    "open-read"
                },
                p(path),
            )]
        }
        Request::Opendir { path, .. } => vec![(SftpOp::Read, "opendir", p(path))],
        Request::Remove { path, .. } => vec![(SftpOp::Delete, "remove", p(path))],
        Request::Rmdir { path, .. } => vec![(SftpOp::Delete, "rmdir", p(path))],
        Request::Mkdir { path, .. } => vec![(SftpOp::Write, "mkdir", p(path))],
        Request::Setstat { path, .. } => vec![(SftpOp::Write, "setstat", p(path))],
        Request::Rename {
            old_path, new_path, ..
        } => {
            vec![
                (SftpOp::Delete, "rename-from", p(old_path)),
                (SftpOp::Write, "rename-to", p(new_path)),
            ]
        }
        Request::Symlink {
            first_path,
            second_path,
            ..
        } => {
            vec![
                (SftpOp::Write, "symlink", p(first_path)),
                (SftpOp::Write, "symlink", p(second_path)),
            ]
        }
        Request::Fsetstat { handle, .. } => {
            // Changing attributes through a handle is a write of the file behind it.
            let known = lock(state).files.contains_key(handle);
            if !known {
                return Err("fsetstat on a handle the bastion did not see opened".into());
            }
            Vec::new()
        }
        Request::Extended { name, data, .. } => match name.as_str() {
            "posix-rename@openssh.com" | "hardlink@openssh.com" => {
                let (old, at) = ext_string(data, 0).ok_or("truncated extension data")?;
                let (new, _) = ext_string(data, at).ok_or("truncated extension data")?;
                let first = if name.starts_with("posix") {
                    (SftpOp::Delete, "rename-from")
                } else {
                    (SftpOp::Read, "hardlink-from")
                };
                vec![
                    (first.0, first.1, p(&old)),
                    (SftpOp::Write, "rename-to", p(&new)),
                ]
            }
            "lsetstat@openssh.com" => {
                let (path, _) = ext_string(data, 0).ok_or("truncated extension data")?;
                vec![(SftpOp::Write, "lsetstat", p(&path))]
            }
            "statvfs@openssh.com"
            | "fstatvfs@openssh.com"
            | "limits@openssh.com"
            | "expand-path@openssh.com"
            | "home-directory"
            | "fsync@openssh.com"
            | "users-groups-by-id@openssh.com" => Vec::new(),
            other => {
                return Err(format!(
                    "sftp extension {other} is not supported through the bastion"
                ))
            }
        },
        _ => Vec::new(),
    })
}

/// Decides and forwards one request; false ends the channel.
async fn handle_request(
    request: Request,
    packet: SftpPacket,
    down: &AsyncMutex<ChannelWriteHalf<server::Msg>>,
    up: &ChannelWriteHalf<russh::client::Msg>,
    gate: &SessionGate,
    state: &Shared,
) -> bool {
    let id = request.id().unwrap_or(0);
    if lock(state).pending.len() >= MAX_OUTSTANDING {
        malformed(down, id, "too many outstanding requests").await;
        return false;
    }
    let needed = match decisions(&request, state) {
        Ok(d) => d,
        Err(why) => {
            return send_down(
                down,
                Response::permission_denied(id, &format!("bastion: {why}")).raw,
            )
            .await
        }
    };
    let started = Instant::now();
    let mut seqs = Vec::new();
    for (op, verb, path) in &needed {
        match gate
            .admit(
                SshAction::File {
                    op: *op,
                    verb,
                    path,
                },
                |_| async {},
            )
            .await
        {
            Admission::Allowed { seq } => seqs.push(seq),
            Admission::Refused { message, .. } => {
                // The parts already allowed are not forwarded either.
                for seq in seqs {
                    let done = Finished {
                        outcome: "cancelled",
                        message: Some(format!("not forwarded: {verb} {path} was refused")),
                        ..Default::default()
                    };
                    gate.finish(seq, started, done).await;
                }
                return send_down(
                    down,
                    Response::permission_denied(id, &format!("bastion: {message}")).raw,
                )
                .await;
            }
        }
    }
    {
        let mut st = lock(state);
        match (&request, seqs.last().copied()) {
            (Request::Open { .. } | Request::Opendir { .. }, Some(seq)) => {
                st.pending.insert(id, Pending::Open { seq, started });
            }
            (_, Some(_)) => {
                st.pending.insert(id, Pending::Op { seqs, started });
            }
            (
                Request::Write {
                    handle,
                    offset,
                    data,
                    ..
                },
                None,
            ) => {
                if let Some(f) = st.files.get_mut(handle) {
                    f.bytes_in += data.len() as u64;
                    f.absorb(*offset, data);
                }
            }
            (Request::Read { handle, offset, .. }, None) if st.files.contains_key(handle) => {
                st.pending.insert(
                    id,
                    Pending::Read {
                        handle: handle.clone(),
                        offset: *offset,
                    },
                );
            }
            (Request::Close { handle, .. }, None) if st.files.contains_key(handle) => {
                st.pending.insert(
                    id,
                    Pending::Close {
                        handle: handle.clone(),
                    },
                );
            }
            _ => {}
        }
    }
    // Forward exactly the bytes that were decided on.
    up.data_bytes(packet.raw).await.is_ok()
}

async fn target_to_client(
    mut up_rx: ChannelReadHalf,
    down: Arc<AsyncMutex<ChannelWriteHalf<server::Msg>>>,
    gate: Arc<SessionGate>,
    state: Shared,
) {
    let mut buf = BytesMut::new();
    loop {
        match up_rx.wait().await {
            Some(ChannelMsg::Data { data }) => {
                gate.info.count(0, data.len() as u64);
                buf.extend_from_slice(&data);
                loop {
                    let packet = match decode_packet(&mut buf, MAX_SFTP_PACKET) {
                        Ok(Some(p)) => p,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(session = %gate.session_id, error = %e, "target sent a malformed sftp packet");
                            return;
                        }
                    };
                    if let Ok(response) = Response::decode(&packet) {
                        for (seq, started, done) in track_response(&response, &state) {
                            gate.finish(seq, started, done).await;
                        }
                    }
                    if !send_down(&down, packet.raw).await {
                        return;
                    }
                }
            }
            Some(ChannelMsg::ExtendedData { data, ext }) => {
                let _ = down.lock().await.extended_data_bytes(ext, data).await;
            }
            Some(ChannelMsg::Eof) => {
                let _ = down.lock().await.eof().await;
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                let _ = down.lock().await.exit_status(exit_status).await;
            }
            Some(ChannelMsg::Close) | None => return,
            Some(_) => {}
        }
    }
}

/// The outcome a STATUS reply gives a decided operation.
fn status_outcome(code: StatusCode, message: &str) -> Finished {
    let ok = code == StatusCode::OK;
    Finished {
        outcome: if ok { "ok" } else { "error" },
        message: (!ok).then(|| format!("{}: {message}", code.name())),
        ..Default::default()
    }
}

/// Updates the per-file records from a reply; returns outcomes to journal.
fn track_response(response: &Response, state: &Shared) -> Vec<(i64, Instant, Finished)> {
    let mut st = lock(state);
    let mut out = Vec::new();
    let Some(id) = response.id() else { return out };
    let Some(pending) = st.pending.remove(&id) else {
        return out;
    };
    match (pending, response) {
        (Pending::Open { seq, started }, Response::Handle { handle, .. }) => {
            st.files.insert(
                handle.clone(),
                OpenFile {
                    seq,
                    started,
                    bytes_in: 0,
                    bytes_out: 0,
                    hash: Sha256::new(),
                    next_offset: Some(0),
                },
            );
        }
        (Pending::Open { seq, started }, Response::Status { code, message, .. }) => {
            out.push((seq, started, status_outcome(*code, message)));
        }
        (Pending::Op { seqs, started }, Response::Status { code, message, .. }) => {
            for seq in seqs {
                out.push((seq, started, status_outcome(*code, message)));
            }
        }
        (Pending::Read { handle, offset }, Response::Data { data, .. }) => {
            if let Some(f) = st.files.get_mut(&handle) {
                f.bytes_out += data.len() as u64;
                f.absorb(offset, data);
            }
        }
        (Pending::Close { handle }, _) => {
            if let Some(f) = st.files.remove(&handle) {
                out.push(f.finished("ok"));
            }
        }
        _ => {}
    }
    out
}
