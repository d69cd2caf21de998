//! One SSH session's door to policy, approval and audit: every action (exec line, pty shell,
//! SFTP file operation, forward) goes through [`SessionGate::admit`], which decides with the
//! policy engine, journals the action row *before* the caller forwards anything (record before
//! forward; a recorder that cannot write refuses the action unless `on_recorder_error` allows),
//! and on step-up holds the action at the broker until it is approved, denied or times out.
//! [`SessionGate::finish`] journals the outcome (exit status, bytes, SHA-256 in the message).
use super::SshServices;
use crate::broker::{action_digest, StepUpKind, StepUpOutcome, StepUpRequest};
use crate::config::{Protocol, UserKind};
use crate::sessions::SessionInfo;
use policies::engine::{Decision, RequestContext, SftpOp, Verdict};
use recorder::{now_micros, ActionOutcome, ActionRow, Micros};
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// An action inside an SSH session, as decided.
#[derive(Debug, Clone)]
pub enum SshAction<'a> {
    /// An exec request's command line (also classic scp, decided as a file op instead).
    Exec(&'a str),
    /// An interactive shell (issue 8 decides its lines; here it is one action).
    Shell,
    /// An SFTP or classic scp file operation on a path.
    File {
        /// Read, write or delete.
        op: SftpOp,
        /// What the client asked (`open`, `remove`, `scp -t`, ...), for the recorded text.
        verb: &'a str,
        /// The path.
        path: &'a str,
    },
    /// A port forward.
    Forward {
        /// `direct-tcpip` or `tcpip-forward`.
        kind: &'a str,
        /// Host.
        host: &'a str,
        /// Port.
        port: u16,
    },
}

impl SshAction<'_> {
    fn kind(&self) -> &'static str {
        match self {
            SshAction::Exec(_) => "exec",
            SshAction::Shell => "shell",
            SshAction::File { .. } => "sftp",
            SshAction::Forward { .. } => "forward",
        }
    }

    fn text(&self) -> String {
        match self {
            SshAction::Exec(line) => line.to_string(),
            SshAction::Shell => "shell".to_string(),
            SshAction::File { verb, path, .. } => format!("{verb} {path}"),
            SshAction::Forward { kind, host, port } => format!("{kind} {host}:{port}"),
        }
    }
}

/// What the caller may do with the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Forward it; `seq` identifies it for [`SessionGate::finish`].
    Allowed {
        /// The action's sequence number.
        seq: i64,
    },
    /// Refuse it in the protocol's terms with `message` (already journaled, outcome included).
    Refused {
        /// The action's sequence number.
        seq: i64,
        /// Text for the user, e.g. `denied by policy FWD-prod: port forwarding is not allowed`.
        message: String,
    },
}

/// What happened to an allowed action.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// `ok`, `error`, `cancelled` or `unknown`.
    pub outcome: &'static str,
    /// Exit status of a command.
    pub exit_status: Option<i32>,
    /// Bytes client → target.
    pub bytes_in: u64,
    /// Bytes target → client.
    pub bytes_out: u64,
    /// Extra text (exit signal, SHA-256 of a file, error status).
    pub message: Option<String>,
}

/// Policy, approval and audit for one session.
pub struct SessionGate {
    services: Arc<SshServices>,
    /// Session id (the trail's `session_id`).
    pub session_id: String,
    /// The proven identity.
    pub identity: String,
    /// Its kind.
    pub identity_kind: UserKind,
    /// Target name.
    pub target: String,
    /// Client address.
    pub source_ip: IpAddr,
    /// The registry entry (counters, last action, kill switch).
    pub info: Arc<SessionInfo>,
    seq: AtomicI64,
}

impl SessionGate {
    /// A gate for a registered session.
    pub fn new(
        services: Arc<SshServices>,
        info: Arc<SessionInfo>,
        identity_kind: UserKind,
        source_ip: IpAddr,
    ) -> SessionGate {
        SessionGate {
            services,
            session_id: info.id.clone(),
            identity: info.identity.clone(),
            identity_kind,
            target: info.target.clone(),
            source_ip,
            info,
            seq: AtomicI64::new(0),
        }
    }

    /// The session's kill switch (admin kill, shutdown).
    pub fn cancelled(&self) -> CancellationToken {
        self.info.kill.clone()
    }

    fn context(&self) -> RequestContext {
        RequestContext {
            source_ip: Some(self.source_ip),
            mfa_age_secs: None,
            now_unix: chrono::Utc::now().timestamp(),
        }
    }

    fn decide(&self, action: &SshAction<'_>) -> Verdict {
        let engine = (self.services.engine)();
        let ctx = self.context();
        match action {
            SshAction::Exec(line) => engine.decide_shell(&self.identity, &self.target, line, &ctx),
            // The pty shell's lines are issue 8's; entering the shell is decided as connecting.
            SshAction::Shell => engine.decide_connect(&self.identity, &self.target, &ctx),
            SshAction::File { op, path, .. } => {
                engine.decide_sftp(&self.identity, &self.target, *op, path, &ctx)
            }
            SshAction::Forward { host, port, .. } => {
                engine.decide_forward(&self.identity, &self.target, host, *port, &ctx)
            }
        }
    }

    /// Decides `action`, journals it, and holds it for step-up. `on_hold` is told the approval
    /// request id once (e.g. to print `waiting for approval <id>` on stderr).
    pub async fn admit<F, Fut>(&self, action: SshAction<'_>, on_hold: F) -> Admission
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let verdict = self.decide(&action);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let time = now_micros();
        let text = match &action {
            SshAction::Exec(_) if !verdict.redacted_text.is_empty() => {
                verdict.redacted_text.clone()
            }
            _ => action.text(),
        };
        self.info.set_last_action(&text);
        let row = ActionRow {
            time,
            session_id: self.session_id.clone(),
            seq,
            node: String::new(),
            identity: self.identity.clone(),
            identity_kind: self.identity_kind.as_str().to_string(),
            target: self.target.clone(),
            protocol: "ssh".to_string(),
            kind: action.kind().to_string(),
            text: text.clone(),
            fingerprint: (!verdict.fingerprint.is_empty()).then(|| verdict.fingerprint.clone()),
            statement_class: (!verdict.class.is_empty()).then(|| verdict.class.clone()),
            objects: verdict.objects.clone(),
            risk_tags: verdict.risk_tags.clone(),
            decision: verdict.decision.as_str().to_string(),
            policy_ids: verdict.policy_ids.clone(),
            shadow_decision: verdict.shadow.map(|d| d.as_str().to_string()),
            step_up: verdict.step_up.map(|s| s.to_string()),
            approver: None,
            approved_at: None,
        };
        if let Err(e) = self.services.recorder.action(row).await {
            if !self.services.config.recorder.allow_on_error {
                tracing::error!(error = %e, session = %self.session_id, "cannot record action: refused");
                return Admission::Refused {
                    seq,
                    message: format!("bastion: the action cannot be recorded ({e}); refused"),
                };
            }
            tracing::error!(error = %e, session = %self.session_id, "cannot record action: allowed by on_recorder_error");
        }
        match verdict.decision {
            Decision::Allow => Admission::Allowed { seq },
            Decision::Deny => {
                let message = verdict.message.clone();
                self.refused(seq, time, "denied", &message, None).await;
                Admission::Refused { seq, message }
            }
            Decision::StepUp => {
                self.hold(seq, time, &action, &text, &verdict, on_hold)
                    .await
            }
        }
    }

    async fn hold<F, Fut>(
        &self,
        seq: i64,
        time: Micros,
        action: &SshAction<'_>,
        text: &str,
        verdict: &Verdict,
        on_hold: F,
    ) -> Admission
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let Some(broker) = self.services.broker.clone() else {
            let message = format!("{} (no approval service is running)", verdict.message);
            self.refused(seq, time, "denied", &message, None).await;
            return Admission::Refused { seq, message };
        };
        let step = verdict.step_up.unwrap_or_default();
        let kind = match (step.approval, step.mfa) {
            (true, true) => StepUpKind::Both,
            (false, true) => StepUpKind::Mfa,
            _ => StepUpKind::Approval,
        };
        let exact = match action {
            SshAction::Exec(line) => line.to_string(),
            other => other.text(),
        };
        let request = StepUpRequest {
            session_id: self.session_id.clone(),
            seq: u64::try_from(seq).unwrap_or_default(),
            identity: self.identity.clone(),
            identity_kind: self.identity_kind,
            target: self.target.clone(),
            protocol: Protocol::Ssh,
            text: text.to_string(),
            digest: action_digest(
                &self.session_id,
                u64::try_from(seq).unwrap_or_default(),
                exact.as_bytes(),
            ),
            facts: verdict.facts.clone(),
            policy_ids: verdict.policy_ids.clone(),
            approver_groups: verdict.approver_groups.clone(),
            kind,
            cancel: self.info.kill.clone(),
        };
        let (id, wait) = broker.submit(request);
        on_hold(id.to_string()).await;
        match wait.await {
            StepUpOutcome::Approved { approver, at } => {
                let at = chrono::DateTime::<chrono::Utc>::from(at).timestamp_micros();
                // The approval is journaled now; the final outcome row repeats it.
                let row = ActionOutcome {
                    session_id: self.session_id.clone(),
                    seq,
                    time: now_micros(),
                    outcome: "approved".to_string(),
                    approver: Some(approver),
                    approved_at: Some(at),
                    message: Some(format!("approval {id}")),
                    ..Default::default()
                };
                if let Err(e) = self.services.recorder.outcome(row).await {
                    if !self.services.config.recorder.allow_on_error {
                        return Admission::Refused {
                            seq,
                            message: format!(
                                "bastion: the approval cannot be recorded ({e}); refused"
                            ),
                        };
                    }
                }
                Admission::Allowed { seq }
            }
            StepUpOutcome::Denied { by, reason } => {
                let message = format!(
                    "{} (request {id} denied by {by}: {reason})",
                    verdict.message
                );
                self.refused(seq, time, "denied", &message, None).await;
                Admission::Refused { seq, message }
            }
            StepUpOutcome::TimedOut => {
                let message = format!("{} (request {id} timed out)", verdict.message);
                self.refused(seq, time, "denied", &message, None).await;
                Admission::Refused { seq, message }
            }
            StepUpOutcome::Cancelled => {
                let message = format!("{} (request {id} cancelled)", verdict.message);
                self.refused(seq, time, "cancelled", &message, None).await;
                Admission::Refused { seq, message }
            }
        }
    }

    async fn refused(
        &self,
        seq: i64,
        started: Micros,
        outcome: &str,
        message: &str,
        exit_status: Option<i32>,
    ) {
        let now = now_micros();
        let row = ActionOutcome {
            session_id: self.session_id.clone(),
            seq,
            time: now,
            outcome: outcome.to_string(),
            exit_status,
            duration_us: Some(now.saturating_sub(started)),
            message: Some(message.to_string()),
            ..Default::default()
        };
        if let Err(e) = self.services.recorder.outcome(row).await {
            tracing::error!(error = %e, session = %self.session_id, "cannot record refusal");
        }
    }

    /// Journals what happened to an allowed action.
    pub async fn finish(&self, seq: i64, started: std::time::Instant, done: Finished) {
        let row = ActionOutcome {
            session_id: self.session_id.clone(),
            seq,
            time: now_micros(),
            outcome: done.outcome.to_string(),
            exit_status: done.exit_status,
            duration_us: Some(i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX)),
            bytes_in: i64::try_from(done.bytes_in).unwrap_or(i64::MAX),
            bytes_out: i64::try_from(done.bytes_out).unwrap_or(i64::MAX),
            message: done.message,
            ..Default::default()
        };
        if let Err(e) = self.services.recorder.outcome(row).await {
            tracing::error!(error = %e, session = %self.session_id, "cannot record outcome");
        }
    }
}
