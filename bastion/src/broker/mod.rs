//! The step-up broker: a held action waits here until a second person approves or denies it,
//! its requester proves a one-time code, it times out, its session ends, or the bastion shuts
//! down. [`Broker::submit`] returns the request's id at once (the session shows it to the client)
//! and a future of the [`StepUpOutcome`]; approvers act through [`Broker::approve`] and
//! [`Broker::deny`] (the admin API). Every resolution happens under one lock, so a request is
//! resolved exactly once however approve, deny, timeout and cancellation race. State is in
//! memory: a restart has nothing pending, and shutdown denies whatever still waits (fail closed).
//!
//! Parts: `request` (the request, outcome, id, digest and view types), `approvers` (who may
//! approve), `webhook` (signed notifications with retries).
mod approvers;
mod request;
pub mod webhook;

pub use approvers::{Directory, Member};
pub use request::{
    action_digest, rfc3339, ApprovalView, RequestId, StepUpKind, StepUpOutcome, StepUpRequest,
};
pub use webhook::{RetryPolicy, WebhookNotifier, WebhookTargets};

use crate::metrics::{Metrics, StepUpLabel};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Resolved requests are kept this long for `show` and for clear 409s.
const KEEP_RESOLVED: Duration = Duration::from_secs(3600);
/// At most this many resolved requests are kept.
const MAX_RESOLVED: usize = 10_000;
/// Longest denial reason kept (characters).
const MAX_REASON: usize = 500;
/// Who denies when the bastion itself does.
pub const BASTION: &str = "bastion";

/// Why an approver's action was refused. [`BrokerError::http_status`] gives the admin API status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// No such request (never existed, or forgotten long ago).
    #[error("no approval request {0}")]
    NotFound(String),
    /// Already approved, denied, timed out or cancelled.
    #[error("approval request {id} is already {status}")]
    AlreadyResolved {
        /// Request id.
        id: String,
        /// Its final status.
        status: String,
    },
    /// The digest the approver saw is not the request's.
    #[error("approval request {0} does not match the expected digest; nothing was approved")]
    DigestMismatch(String),
    /// The request does not need what was offered (e.g. an approval for a code-only request).
    #[error("approval request {id}: {message}")]
    WrongKind {
        /// Request id.
        id: String,
        /// What it needs instead.
        message: String,
    },
    /// This identity may not act on this request.
    #[error("{0}")]
    NotAllowed(String),
}

impl BrokerError {
    /// 404 for unknown, 403 for not allowed, 409 for everything that conflicts with the state.
    pub fn http_status(&self) -> u16 {
        match self {
            BrokerError::NotFound(_) => 404,
            BrokerError::NotAllowed(_) => 403,
            BrokerError::AlreadyResolved { .. }
            | BrokerError::DigestMismatch(_)
            | BrokerError::WrongKind { .. } => 409,
        }
    }
}

/// One request and its progress.
struct Entry {
    request: StepUpRequest,
    created: SystemTime,
    started: Instant,
    deadline: Instant,
    expires: SystemTime,
    approval: Option<(String, SystemTime)>,
    mfa_done: bool,
    resolved: Option<(StepUpOutcome, SystemTime)>,
    wake: Arc<Notify>,
}

impl Entry {
    fn view(&self, id: &RequestId) -> ApprovalView {
        let r = &self.request;
        let mut waiting_for = Vec::new();
        if self.resolved.is_none() {
            if r.kind.needs_approval() && self.approval.is_none() {
                waiting_for.push("approval".to_string());
            }
            if r.kind.needs_mfa() && !self.mfa_done {
                waiting_for.push("mfa".to_string());
            }
        }
        let (status, denied_by, reason, resolved_at) = match &self.resolved {
            None => ("pending", None, None, None),
            Some((outcome, at)) => {
                let (by, reason) = match outcome {
                    StepUpOutcome::Denied { by, reason } => {
                        (Some(by.clone()), Some(reason.clone()))
                    }
                    _ => (None, None),
                };
                (outcome.status(), by, reason, Some(rfc3339(*at)))
            }
        };
        let approver = match &self.resolved {
            Some((StepUpOutcome::Approved { approver, .. }, _)) => Some(approver.clone()),
            _ => self.approval.as_ref().map(|(a, _)| a.clone()),
        };
        ApprovalView {
            id: id.clone(),
            status: status.to_string(),
            kind: r.kind,
            session_id: r.session_id.clone(),
            seq: r.seq,
            identity: r.identity.clone(),
            identity_kind: r.identity_kind.as_str().to_string(),
            target: r.target.clone(),
            protocol: r.protocol.as_str().to_string(),
            text: r.text.clone(),
            digest: hex::encode(r.digest),
            facts: r.facts.clone(),
            policy_ids: r.policy_ids.clone(),
            approver_groups: r.approver_groups.clone(),
            created_at: rfc3339(self.created),
            expires_at: rfc3339(self.expires),
            waiting_for,
            approver,
            denied_by,
            reason,
            resolved_at,
        }
    }
}

struct Inner {
    timeout: Duration,
    directory: RwLock<Directory>,
    entries: Mutex<HashMap<RequestId, Entry>>,
    shutdown: CancellationToken,
    metrics: OnceLock<Arc<Metrics>>,
    notifier: OnceLock<WebhookNotifier>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<RequestId, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves `entry` unless it already is; returns the final outcome either way.
    fn resolve_entry(&self, entry: &mut Entry, outcome: StepUpOutcome) -> StepUpOutcome {
        if let Some((existing, _)) = &entry.resolved {
            return existing.clone();
        }
        entry.resolved = Some((outcome.clone(), SystemTime::now()));
        if let Some(m) = self.metrics.get() {
            let label = match outcome {
                StepUpOutcome::Approved { .. } => StepUpLabel::Approved,
                StepUpOutcome::Denied { .. } => StepUpLabel::Denied,
                StepUpOutcome::TimedOut => StepUpLabel::TimedOut,
                StepUpOutcome::Cancelled => StepUpLabel::Cancelled,
            };
            m.step_up_resolved(label, entry.started.elapsed());
        }
        entry.wake.notify_one();
        outcome
    }

    /// Resolves the request `id` unless it already is; returns its final outcome.
    fn resolve(&self, id: &RequestId, outcome: StepUpOutcome) -> StepUpOutcome {
        let mut entries = self.lock();
        match entries.get_mut(id) {
            Some(entry) => self.resolve_entry(entry, outcome),
            // Forgotten (pruned) requests fail closed.
            None => StepUpOutcome::Denied {
                by: BASTION.into(),
                reason: "the request was lost".into(),
            },
        }
    }

    /// The pending entry `id`, or the error an approver sees. An entry past its deadline whose
    /// session has not noticed yet is resolved as timed out here.
    fn pending<'a>(
        &self,
        entries: &'a mut HashMap<RequestId, Entry>,
        id: &str,
    ) -> Result<&'a mut Entry, BrokerError> {
        let key = RequestId(id.to_string());
        let entry = entries
            .get_mut(&key)
            .ok_or_else(|| BrokerError::NotFound(id.to_string()))?;
        if entry.resolved.is_none() && Instant::now() >= entry.deadline {
            self.resolve_entry(entry, StepUpOutcome::TimedOut);
        }
        if let Some((outcome, _)) = &entry.resolved {
            return Err(BrokerError::AlreadyResolved {
                id: id.to_string(),
                status: outcome.status().to_string(),
            });
        }
        Ok(entry)
    }

    fn prune(&self, entries: &mut HashMap<RequestId, Entry>) {
        let now = SystemTime::now();
        entries.retain(|_, e| match &e.resolved {
            Some((_, at)) => now.duration_since(*at).unwrap_or_default() < KEEP_RESOLVED,
            None => true,
        });
        let resolved = entries.values().filter(|e| e.resolved.is_some()).count();
        if resolved > MAX_RESOLVED {
            let mut old: Vec<(SystemTime, RequestId)> = entries
                .iter()
                .filter_map(|(id, e)| e.resolved.as_ref().map(|(_, at)| (*at, id.clone())))
                .collect();
            old.sort();
            for (_, id) in old.into_iter().take(resolved - MAX_RESOLVED) {
                entries.remove(&id);
            }
        }
    }
}

/// Marks the request cancelled if its future is dropped before it resolved (the session went
/// away mid-wait), so approvers see it end and nobody can approve it afterwards.
struct CancelOnDrop {
    inner: Arc<Inner>,
    id: RequestId,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.inner.resolve(&self.id, StepUpOutcome::Cancelled);
        }
    }
}

/// Holds step-up requests until they resolve.
pub struct Broker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker whose requests time out after `timeout` (config `approvals.timeout`), with the
    /// identities in `users` as possible approvers.
    pub fn new(timeout: Duration, users: Directory) -> Broker {
        Broker {
            inner: Arc::new(Inner {
                timeout,
                directory: RwLock::new(users),
                entries: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                metrics: OnceLock::new(),
                notifier: OnceLock::new(),
            }),
        }
    }

    /// Counts requests in `metrics` (pending gauge, outcomes, wait time). Set once.
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Broker {
        let _ = self.inner.metrics.set(metrics);
        self
    }

    /// Notifies `notifier` of each new request. Set once.
    pub fn with_webhooks(self, notifier: WebhookNotifier) -> Broker {
        let _ = self.inner.notifier.set(notifier);
        self
    }

    /// Replaces the identity directory (config reload); pending requests are judged by the new one.
    pub fn set_directory(&self, users: Directory) {
        *self
            .inner
            .directory
            .write()
            .unwrap_or_else(|e| e.into_inner()) = users;
    }

    /// The configured timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Holds `req`: returns its id at once and a future that resolves when it is approved, denied,
    /// times out, its session's `cancel` fires, or the broker shuts down. Dropping the future
    /// cancels the request.
    pub fn submit(
        &self,
        req: StepUpRequest,
    ) -> (
        RequestId,
        impl Future<Output = StepUpOutcome> + Send + 'static,
    ) {
        let wake = Arc::new(Notify::new());
        let cancel = req.cancel.clone();
        let now = Instant::now();
        let deadline = now + self.inner.timeout;
        let mut entries = self.inner.lock();
        self.inner.prune(&mut entries);
        let mut id = RequestId::random();
        while entries.contains_key(&id) {
            id = RequestId::random();
        }
        let created = SystemTime::now();
        let mut entry = Entry {
            request: req,
            created,
            started: now,
            deadline,
            expires: created + self.inner.timeout,
            approval: None,
            mfa_done: false,
            resolved: None,
            wake: wake.clone(),
        };
        if let Some(m) = self.inner.metrics.get() {
            m.step_up_submitted();
        }
        if self.inner.shutdown.is_cancelled() {
            self.inner.resolve_entry(&mut entry, shutdown_denial());
        } else if let Some(n) = self.inner.notifier.get() {
            n.notify(&entry.view(&id));
        }
        entries.insert(id.clone(), entry);
        drop(entries);

        let inner = self.inner.clone();
        let shutdown = self.inner.shutdown.clone();
        let key = id.clone();
        let wait = async move {
            let mut guard = CancelOnDrop {
                inner: inner.clone(),
                id: key.clone(),
                armed: true,
            };
            let outcome = tokio::select! {
                // Woken only after someone resolved it: `resolve` then returns that outcome.
                _ = wake.notified() => inner.resolve(&key, StepUpOutcome::Cancelled),
                _ = tokio::time::sleep_until(deadline.into()) => inner.resolve(&key, StepUpOutcome::TimedOut),
                _ = cancel.cancelled() => inner.resolve(&key, StepUpOutcome::Cancelled),
                _ = shutdown.cancelled() => inner.resolve(&key, shutdown_denial()),
            };
            guard.armed = false;
            outcome
        };
        (id, wait)
    }

    /// `approver` approves request `id`. With `expected_digest`, only if the request is exactly
    /// the action the approver was shown. Single use: a resolved request answers 409.
    pub fn approve(
        &self,
        id: &str,
        approver: &str,
        expected_digest: Option<[u8; 32]>,
    ) -> Result<ApprovalView, BrokerError> {
        let directory = self
            .inner
            .directory
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut entries = self.inner.lock();
        let entry = self.inner.pending(&mut entries, id)?;
        let key = &RequestId(id.to_string());
        if expected_digest.is_some_and(|d| d != entry.request.digest) {
            return Err(BrokerError::DigestMismatch(id.to_string()));
        }
        let kind = entry.request.kind;
        if !kind.needs_approval() {
            return Err(BrokerError::WrongKind {
                id: id.to_string(),
                message: "it needs the requester's one-time code, not an approval".into(),
            });
        }
        if let Some((by, _)) = &entry.approval {
            return Err(BrokerError::WrongKind {
                id: id.to_string(),
                message: format!(
                    "already approved by {by}; it waits for the requester's one-time code"
                ),
            });
        }
        directory
            .may_approve(
                approver,
                &entry.request.identity,
                &entry.request.approver_groups,
            )
            .map_err(BrokerError::NotAllowed)?;
        let at = SystemTime::now();
        entry.approval = Some((approver.to_string(), at));
        if !kind.needs_mfa() || entry.mfa_done {
            self.inner.resolve_entry(
                entry,
                StepUpOutcome::Approved {
                    approver: approver.to_string(),
                    at,
                },
            );
        }
        Ok(entry.view(key))
    }

    /// The requester proved a one-time code for request `id` (the session verified it with
    /// [`crate::totp::TotpVerifier`]). A code-only request resolves as approved by the requester;
    /// one that also needs approval resolves when both are in.
    pub fn confirm_mfa(&self, id: &str, identity: &str) -> Result<ApprovalView, BrokerError> {
        let mut entries = self.inner.lock();
        let entry = self.inner.pending(&mut entries, id)?;
        let key = &RequestId(id.to_string());
        if entry.request.identity != identity {
            return Err(BrokerError::NotAllowed(format!(
                "only {} can prove this request's code",
                entry.request.identity
            )));
        }
        if !entry.request.kind.needs_mfa() {
            return Err(BrokerError::WrongKind {
                id: id.to_string(),
                message: "it needs an approval, not a code".into(),
            });
        }
        entry.mfa_done = true;
        let at = SystemTime::now();
        if !entry.request.kind.needs_approval() {
            self.inner.resolve_entry(
                entry,
                StepUpOutcome::Approved {
                    approver: identity.to_string(),
                    at,
                },
            );
        } else if let Some((approver, at)) = entry.approval.clone() {
            self.inner
                .resolve_entry(entry, StepUpOutcome::Approved { approver, at });
        }
        Ok(entry.view(key))
    }

    /// `by` denies request `id` with `reason` (approvers, and the requester withdrawing).
    pub fn deny(&self, id: &str, by: &str, reason: &str) -> Result<ApprovalView, BrokerError> {
        let directory = self
            .inner
            .directory
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut entries = self.inner.lock();
        let entry = self.inner.pending(&mut entries, id)?;
        let key = &RequestId(id.to_string());
        directory
            .may_deny(by, &entry.request.identity, &entry.request.approver_groups)
            .map_err(BrokerError::NotAllowed)?;
        let reason = clean_reason(reason);
        self.inner.resolve_entry(
            entry,
            StepUpOutcome::Denied {
                by: by.to_string(),
                reason,
            },
        );
        Ok(entry.view(key))
    }

    /// Requests, oldest first: pending ones, and with `include_resolved` the recent resolved too.
    pub fn list(&self, include_resolved: bool) -> Vec<ApprovalView> {
        let entries = self.inner.lock();
        let mut v: Vec<(SystemTime, ApprovalView)> = entries
            .iter()
            .filter(|(_, e)| include_resolved || e.resolved.is_none())
            .map(|(id, e)| (e.created, e.view(id)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        v.into_iter().map(|(_, view)| view).collect()
    }

    /// One request, pending or recently resolved.
    pub fn get(&self, id: &str) -> Option<ApprovalView> {
        let key = RequestId(id.to_string());
        self.inner.lock().get(&key).map(|e| e.view(&key))
    }

    /// Requests waiting now.
    pub fn pending_count(&self) -> usize {
        self.inner
            .lock()
            .values()
            .filter(|e| e.resolved.is_none())
            .count()
    }

    /// Whether [`Broker::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Denies everything pending (fail closed: the sessions see a refusal, not a hang) and every
    /// later submission.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let mut entries = self.inner.lock();
        for entry in entries.values_mut() {
            self.inner.resolve_entry(entry, shutdown_denial());
        }
    }
}

fn shutdown_denial() -> StepUpOutcome {
    StepUpOutcome::Denied {
        by: BASTION.into(),
        reason: "the bastion is shutting down; pending approvals fail closed".into(),
    }
}

/// A reason as given, without control characters, at most [`MAX_REASON`] characters.
fn clean_reason(reason: &str) -> String {
    let r: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON)
        .collect();
    if r.trim().is_empty() {
        "no reason given".into()
    } else {
        r.trim().to_string()
    }
}

#[cfg(test)]
mod tests;
