//! One `session` channel from the client: it waits for the request that says what the channel
//! is for (`exec`, `shell`, `subsystem sftp`), collects `pty-req` and `env` on the way, admits
//! the action through the [`SessionGate`] *before* the upstream channel runs anything, then
//! relays both directions in two tasks so neither direction can block the other. Each write
//! waits for the receiver's SSH window, and russh's per-channel queues are bounded, so a client
//! that stops reading stops the target instead of growing the bastion's memory.
//!
//! A refused exec prints `bastion: <message>` on stderr and exits with status 126 (the shell's
//! "cannot execute"), the documented refusal.
use super::action_gate::{Admission, Finished, SessionGate, SshAction};
use super::scp_command::parse_scp;
use super::upstream::Upstream;
use russh::{client, server, Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Pty, Sig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Exit status of a refused exec.
pub const REFUSED_EXIT_STATUS: u32 = 126;

/// Why a shell without a pty is refused.
pub const NO_PTY_SHELL_REFUSAL: &str = "a shell without a terminal cannot be decided line by line; \
run commands as `ssh host 'command'` (each one is decided) or use `ssh -t` for an interactive shell";

/// A `pty-req` to replay on the upstream channel.
#[derive(Debug, Clone)]
struct PtyRequest {
    term: String,
    cols: u32,
    rows: u32,
    pix_width: u32,
    pix_height: u32,
    modes: Vec<(Pty, u32)>,
}

/// What the channel turned out to be for.
enum Purpose {
    Exec(Vec<u8>),
    Shell,
    Sftp,
}

/// Runs a session channel to its end.
pub async fn run(
    down: Channel<server::Msg>,
    gate: Arc<SessionGate>,
    upstream: Arc<Upstream>,
    handle: server::Handle,
) {
    let (mut down_rx, down_tx) = down.split();
    let mut pty = None;
    let mut env = Vec::new();
    let purpose = loop {
        match down_rx.wait().await {
            Some(ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                pix_width,
                pix_height,
                terminal_modes,
                ..
            }) => {
                pty = Some(PtyRequest {
                    term,
                    cols: col_width,
                    rows: row_height,
                    pix_width,
                    pix_height,
                    modes: terminal_modes,
                });
            }
            Some(ChannelMsg::WindowChange {
                col_width,
                row_height,
                pix_width,
                pix_height,
            }) => {
                if let Some(p) = pty.as_mut() {
                    p.cols = col_width;
                    p.rows = row_height;
                    p.pix_width = pix_width;
                    p.pix_height = pix_height;
                }
            }
            Some(ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            }) => {
                if env.len() < 64 {
                    env.push((variable_name, variable_value));
                }
            }
            Some(ChannelMsg::Exec { command, .. }) => break Purpose::Exec(command),
            Some(ChannelMsg::RequestShell { .. }) => break Purpose::Shell,
            Some(ChannelMsg::RequestSubsystem { name, .. }) if name == "sftp" => {
                break Purpose::Sftp
            }
            Some(ChannelMsg::Eof) => {}
            Some(ChannelMsg::Close) | None => return,
            // Data before a request, agent/x11 requests (refused by the handler), other subsystems.
            Some(_) => {}
        }
    };
    let started = Instant::now();
    let (action_text, admission) = match &purpose {
        Purpose::Exec(command) => {
            let Ok(line) = std::str::from_utf8(command) else {
                refuse(&down_tx, "the command is not valid UTF-8").await;
                return;
            };
            let on_hold = |id: String| {
                let tx = &down_tx;
                async move {
                    let _ = tx
                        .extended_data_bytes(
                            1,
                            format!("bastion: waiting for approval {id}\n").into_bytes(),
                        )
                        .await;
                }
            };
            let admission = match parse_scp(line) {
                Some(scp) => {
                    let verb = match scp.op {
                        policies::engine::SftpOp::Write => "scp -t",
                        _ => "scp -f",
                    };
                    gate.admit(
                        SshAction::File {
                            op: scp.op,
                            verb,
                            path: &scp.path,
                        },
                        on_hold,
                    )
                    .await
                }
                None => gate.admit(SshAction::Exec(line), on_hold).await,
            };
            (line.to_string(), admission)
        }
        Purpose::Shell => (
            "shell".to_string(),
            gate.admit(SshAction::Shell, |_| async {}).await,
        ),
        Purpose::Sftp => {
            super::sftp_proxy::run(down_rx, down_tx, gate, upstream, started).await;
            return;
        }
    };
    let seq = match admission {
        Admission::Allowed { seq } => seq,
        Admission::Refused { message, .. } => {
            refuse(&down_tx, &message).await;
            return;
        }
    };
    // A shell without a terminal reads its commands from stdin (`ssh -T host`, `ssh host <
    // script`): there is no screen to read a line from, so nothing could be decided. Fail closed.
    if matches!(purpose, Purpose::Shell) && pty.is_none() {
        let message = NO_PTY_SHELL_REFUSAL.to_string();
        gate.finish(
            seq,
            started,
            Finished {
                outcome: "denied",
                message: Some(message.clone()),
                ..Default::default()
            },
        )
        .await;
        refuse(&down_tx, &message).await;
        return;
    }
    // A pty shell is relayed line by line (issue 8); its shell prints the prompt marker.
    let shell_pty = match (&purpose, pty.as_ref()) {
        (Purpose::Shell, Some(p)) => Some(super::shell_relay::PtySize {
            term: p.term.clone(),
            cols: p.cols,
            rows: p.rows,
        }),
        _ => None,
    };
    let env = match shell_pty {
        Some(_) => super::shell_relay::shell_env(env),
        None => env,
    };
    let up = match open_upstream(&upstream, pty.as_ref(), &env).await {
        Ok(c) => c,
        Err(e) => {
            let message = format!("cannot open a channel on target {}: {e}", gate.target);
            gate.finish(
                seq,
                started,
                Finished {
                    outcome: "error",
                    message: Some(message.clone()),
                    ..Default::default()
                },
            )
            .await;
            refuse(&down_tx, &message).await;
            return;
        }
    };
    let sent = match &purpose {
        Purpose::Exec(command) => up.exec(true, command.clone()).await,
        _ => up.request_shell(true).await,
    };
    if let Err(e) = sent {
        let message = format!("target {} refused {action_text:?}: {e}", gate.target);
        gate.finish(
            seq,
            started,
            Finished {
                outcome: "error",
                message: Some(message.clone()),
                ..Default::default()
            },
        )
        .await;
        refuse(&down_tx, &message).await;
        return;
    }
    let (up_rx, up_tx) = up.split();
    let done = match shell_pty {
        Some(size) => {
            super::shell_relay::run(down_rx, down_tx, up_rx, up_tx, handle, gate.clone(), size)
                .await
        }
        None => relay(down_rx, down_tx, up_rx, up_tx, handle, gate.clone()).await,
    };
    gate.finish(seq, started, done).await;
}

async fn open_upstream(
    upstream: &Upstream,
    pty: Option<&PtyRequest>,
    env: &[(String, String)],
) -> Result<Channel<client::Msg>, russh::Error> {
    let up = upstream.channel_open_session().await?;
    for (name, value) in env {
        up.set_env(false, name.clone(), value.clone()).await?;
    }
    if let Some(p) = pty {
        up.request_pty(
            false,
            &p.term,
            p.cols,
            p.rows,
            p.pix_width,
            p.pix_height,
            &p.modes,
        )
        .await?;
    }
    Ok(up)
}

/// Tells the client why, exits 126 and closes.
pub async fn refuse(down: &ChannelWriteHalf<server::Msg>, message: &str) {
    let _ = down
        .extended_data_bytes(1, format!("bastion: {message}\n").into_bytes())
        .await;
    let _ = down.exit_status(REFUSED_EXIT_STATUS).await;
    let _ = down.eof().await;
    let _ = down.close().await;
}

/// Relays a plain channel both ways until the target closes it; returns what happened.
async fn relay(
    mut down_rx: ChannelReadHalf,
    down_tx: ChannelWriteHalf<server::Msg>,
    mut up_rx: ChannelReadHalf,
    up_tx: ChannelWriteHalf<client::Msg>,
    handle: server::Handle,
    gate: Arc<SessionGate>,
) -> Finished {
    let info = gate.info.clone();
    let bytes_in = Arc::new(AtomicU64::new(0));
    let counter = bytes_in.clone();
    // The client closing its side ends the relay even if the target's close reply never comes
    // (russh drops it once we have closed our side), so the channel slot and its row are freed.
    let client_closed = Arc::new(tokio::sync::Notify::new());
    let closed_signal = client_closed.clone();
    let client_to_target = tokio::spawn(async move {
        loop {
            match down_rx.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                    info.count(data.len() as u64, 0);
                    if up_tx.data_bytes(data).await.is_err() {
                        break;
                    }
                }
                Some(ChannelMsg::ExtendedData { data, ext }) => {
                    counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                    if up_tx.extended_data_bytes(ext, data).await.is_err() {
                        break;
                    }
                }
                Some(ChannelMsg::Eof) => {
                    let _ = up_tx.eof().await;
                }
                Some(ChannelMsg::Signal { signal }) => {
                    let _ = up_tx.signal(signal).await;
                }
                Some(ChannelMsg::WindowChange {
                    col_width,
                    row_height,
                    pix_width,
                    pix_height,
                }) => {
                    let _ = up_tx
                        .window_change(col_width, row_height, pix_width, pix_height)
                        .await;
                }
                Some(ChannelMsg::Close) | None => {
                    let _ = up_tx.close().await;
                    closed_signal.notify_one();
                    break;
                }
                Some(_) => {}
            }
        }
    });
    let mut done = Finished {
        outcome: "unknown",
        ..Default::default()
    };
    let id = down_tx.id();
    // The target's end of output is held until its exit status (or close): a client that closes
    // on EOF (an OpenSSH multiplexing master) would otherwise lose the exit status.
    let mut eof_held = false;
    loop {
        let next = tokio::select! {
            msg = up_rx.wait() => msg,
            () = client_closed.notified() => {
                if done.exit_status.is_none() && done.message.is_none() {
                    done.outcome = "cancelled";
                    done.message = Some("the client closed the channel first".to_string());
                }
                break;
            }
        };
        match next {
            Some(ChannelMsg::Data { data }) => {
                done.bytes_out += data.len() as u64;
                gate.info.count(0, data.len() as u64);
                if down_tx.data_bytes(data).await.is_err() {
                    done.outcome = "cancelled";
                    break;
                }
            }
            Some(ChannelMsg::ExtendedData { data, ext }) => {
                done.bytes_out += data.len() as u64;
                gate.info.count(0, data.len() as u64);
                if down_tx.extended_data_bytes(ext, data).await.is_err() {
                    done.outcome = "cancelled";
                    break;
                }
            }
            Some(ChannelMsg::Eof) => {
                if done.exit_status.is_some() || done.message.is_some() {
                    let _ = down_tx.eof().await;
                } else {
                    eof_held = true;
                }
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                done.exit_status = i32::try_from(exit_status).ok();
                done.outcome = if exit_status == 0 { "ok" } else { "error" };
                let _ = down_tx.exit_status(exit_status).await;
                if std::mem::take(&mut eof_held) {
                    let _ = down_tx.eof().await;
                }
            }
            Some(ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            }) => {
                done.outcome = "error";
                done.message = Some(format!("killed by signal {}", signal_text(&signal_name)));
                let _ = handle
                    .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
                    .await;
                if std::mem::take(&mut eof_held) {
                    let _ = down_tx.eof().await;
                }
            }
            Some(ChannelMsg::Failure) => {
                // The target refused the exec/shell/pty request.
                done.outcome = "error";
                done.message = Some("the target refused the request".to_string());
            }
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    let _ = down_tx.eof().await;
    let _ = down_tx.close().await;
    // The target is done: whatever the client still sends has nowhere to go.
    client_to_target.abort();
    done.bytes_in = bytes_in.load(Ordering::Relaxed);
    done
}

fn signal_text(sig: &Sig) -> String {
    match sig {
        Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}
