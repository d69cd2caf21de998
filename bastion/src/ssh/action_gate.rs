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
    /// A command line submitted in an interactive shell, as read from the screen at Enter.
    ShellLine(&'a str),
    /// A line typed to an interpreter started from the shell (`python3`, `psql`): recorded as
    /// its input, not decided (shell rules do not apply to another language).
    ProgramInput {
        /// The interpreter's name.
        program: &'a str,
        /// The line as read from the screen.
        line: &'a str,
    },
    /// A submitted line that cannot be read from the screen: denied as a line whose meaning
    /// cannot be established (ANY-0).
    UnreadableLine {
        /// Why it cannot be read.
        reason: &'a str,
    },
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
            SshAction::Shell
            | SshAction::ShellLine(_)
            | SshAction::ProgramInput { .. }
            | SshAction::UnreadableLine { .. } => "shell",
            SshAction::File { .. } => "sftp",
            SshAction::Forward { .. } => "forward",
        }
    }

    fn text(&self) -> String {
        match self {
            SshAction::Exec(line) => line.to_string(),
            SshAction::Shell => "shell".to_string(),
            SshAction::ShellLine(line) => line.to_string(),
            SshAction::ProgramInput { line, .. } => policies::redact::redact_shell(line),
            SshAction::UnreadableLine { reason } => format!("(unreadable line: {reason})"),
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
    /// Terminal recordings of this session's shell channels, relative to the audit directory.
    recordings: std::sync::Mutex<Vec<String>>,
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
            recordings: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The session's kill switch (admin kill, shutdown).
    pub fn cancelled(&self) -> CancellationToken {
        self.info.kill.clone()
    }

    /// Notes a terminal recording of this session (a path relative to the audit directory), for
    /// the session's row.
    pub fn note_recording(&self, relative_path: String) {
        self.recordings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(relative_path);
    }

    /// The session's terminal recordings so far, relative to the audit directory.
    pub fn recordings(&self) -> Vec<String> {
        self.recordings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The configuration the session runs under (audit directory, recorder error policy).
    pub fn config(&self) -> &crate::config::Config {
        &self.services.config
    }

    fn context(&self) -> RequestContext {
        RequestContext {
            source_ip: Some(self.source_ip),
            mfa_age_secs: None,
            now_unix: chrono::Utc::now().timestamp(),
            risk: Vec::new(),
        }
    }

    fn decide(&self, action: &SshAction<'_>) -> Verdict {
        let engine = (self.services.engine)();
        let ctx = self.context();
        match action {
            SshAction::Exec(line) | SshAction::ShellLine(line) => {
                engine.decide_shell(&self.identity, &self.target, line, &ctx)
            }
            SshAction::ProgramInput { program, .. } => program_input_verdict(program),
            SshAction::UnreadableLine { reason } => {
                let facts = policies::shell::ShellLineFacts {
                    unparsed: Some(format!("it cannot be read from the screen: {reason}")),
                    ..Default::default()
                };
                let text = format!("(unreadable line: {reason})");
                engine.decide_shell_facts(&self.identity, &self.target, &text, &facts, &ctx)
            }
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
        self.admit_cancellable(action, on_hold, self.info.kill.clone())
            .await
    }

    /// [`admit`](Self::admit) with a step-up wait that `cancel` ends (a shell line's Ctrl-C); pass
    /// a child of [`cancelled`](Self::cancelled) so a session kill ends it too.
    pub async fn admit_cancellable<F, Fut>(
        &self,
        action: SshAction<'_>,
        on_hold: F,
        cancel: CancellationToken,
    ) -> Admission
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let verdict = self.decide(&action);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let time = now_micros();
        let text = match &action {
            SshAction::Exec(_) | SshAction::ShellLine(_) if !verdict.redacted_text.is_empty() => {
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
                self.hold(seq, time, &action, &text, &verdict, on_hold, cancel)
                    .await
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // one call site; the pieces are the action's facts
    async fn hold<F, Fut>(
        &self,
        seq: i64,
        time: Micros,
        action: &SshAction<'_>,
        text: &str,
        verdict: &Verdict,
        on_hold: F,
        cancel: CancellationToken,
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
            SshAction::Exec(line) | SshAction::ShellLine(line) => line.to_string(),
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
            cancel,
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

/// The verdict recorded for a line typed to an interpreter: passed through and recorded, with
/// no policy deciding it (the interpreter itself was decided when its command line ran).
fn program_input_verdict(program: &str) -> Verdict {
    Verdict {
        decision: Decision::Allow,
        step_up: None,
        policy_ids: Vec::new(),
        message: format!("input to {program}, recorded and not decided"),
        approver_groups: Vec::new(),
        class: format!("input:{program}"),
        objects: Vec::new(),
        risk_tags: vec!["interpreter_input".to_string()],
        redacted_text: String::new(),
        fingerprint: String::new(),
        facts: serde_json::Value::Null,
        shadow: None,
        matched: Vec::new(),
    }
}
