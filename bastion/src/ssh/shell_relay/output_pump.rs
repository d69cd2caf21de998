//! The target → client direction of a shell channel: every chunk the target writes is fed to the
//! line tracker and the recording, then written to the client (waiting for its window, so a
//! client that stops reading stops the target). It also writes the bastion's notices, in order
//! with the output, and journals the exit status of an allowed line when the shell's prompt
//! marker reports it.
//!
//! The channel ends when the target closes it, or when the client closed it first (the input
//! side has closed the upstream channel then; the target's reply may never be delivered). The
//! target's end of output is passed on only after its exit status: a client that closes the
//! channel on EOF (an OpenSSH multiplexing master) would otherwise lose the status.
use super::terminal_state::SharedTerminal;
use crate::ssh::action_gate::{Finished, SessionGate};
use russh::{server, ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The outcome message of a shell whose client closed the channel before the shell ended.
pub(super) const CLIENT_CLOSED_FIRST: &str = "the client closed the channel first";

/// Runs until the target closes the channel or `client_closed` fires; returns what happened to
/// the shell.
pub(super) async fn run(
    mut up_rx: ChannelReadHalf,
    down_tx: Arc<ChannelWriteHalf<server::Msg>>,
    handle: server::Handle,
    term: Arc<SharedTerminal>,
    gate: Arc<SessionGate>,
    mut notices: mpsc::Receiver<Vec<u8>>,
    client_closed: CancellationToken,
) -> Finished {
    let mut done = Finished {
        outcome: "unknown",
        ..Default::default()
    };
    let mut notices_open = true;
    let mut eof_held = false;
    loop {
        let msg = tokio::select! {
            msg = up_rx.wait() => msg,
            () = client_closed.cancelled() => {
                if done.exit_status.is_none() && done.message.is_none() {
                    done.outcome = "cancelled";
                    done.message = Some(CLIENT_CLOSED_FIRST.to_string());
                }
                break;
            }
            notice = notices.recv(), if notices_open => {
                match notice {
                    Some(notice) => {
                        term.lock().record_notice(&notice);
                        if down_tx.data_bytes(notice).await.is_err() {
                            done.outcome = "cancelled";
                            break;
                        }
                    }
                    None => notices_open = false,
                }
                continue;
            }
        };
        match msg {
            Some(ChannelMsg::Data { data }) => {
                if !forward_output(&data, None, &down_tx, &term, &gate, &mut done).await {
                    break;
                }
            }
            Some(ChannelMsg::ExtendedData { data, ext }) => {
                if !forward_output(&data, Some(ext), &down_tx, &term, &gate, &mut done).await {
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
                    .exit_signal_request(
                        down_tx.id(),
                        signal_name,
                        core_dumped,
                        error_message,
                        lang_tag,
                    )
                    .await;
                if std::mem::take(&mut eof_held) {
                    let _ = down_tx.eof().await;
                }
            }
            Some(ChannelMsg::Failure) => {
                done.outcome = "error";
                done.message = Some("the target refused the request".to_string());
            }
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    // Notices still queued (a refusal printed as the shell exits) are written before the end.
    while let Ok(notice) = notices.try_recv() {
        term.lock().record_notice(&notice);
        let _ = down_tx.data_bytes(notice).await;
    }
    let _ = down_tx.eof().await;
    let _ = down_tx.close().await;
    done
}

/// Feeds one chunk of target output to the tracker and the recording, journals the exit status
/// it reports, and writes it to the client (on stream `ext` when set). False when the client is
/// gone.
async fn forward_output(
    data: &bytes::Bytes,
    ext: Option<u32>,
    down_tx: &ChannelWriteHalf<server::Msg>,
    term: &SharedTerminal,
    gate: &SessionGate,
    done: &mut Finished,
) -> bool {
    done.bytes_out += data.len() as u64;
    gate.info.count(0, data.len() as u64);
    let finished = term.lock().on_output(data);
    term.output_fed();
    if let Some((line, status)) = finished {
        let note = line.note();
        gate.finish(
            line.seq,
            line.started,
            Finished {
                outcome: if status == 0 { "ok" } else { "error" },
                exit_status: Some(status),
                message: note,
                ..Default::default()
            },
        )
        .await;
    }
    let written = match ext {
        Some(ext) => down_tx.extended_data_bytes(ext, data.clone()).await,
        None => down_tx.data_bytes(data.clone()).await,
    };
    if written.is_err() {
        done.outcome = "cancelled";
        return false;
    }
    true
}

fn signal_text(sig: &Sig) -> String {
    match sig {
        Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}
