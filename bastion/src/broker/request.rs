//! What a held action asks for ([`StepUpRequest`]), how it ends ([`StepUpOutcome`]), and what
//! approvers and the admin API see of it ([`ApprovalView`]). The digest binds an approval to one
//! session, one sequence number and the exact bytes shown.
use crate::config::{Protocol, UserKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// A request's short random id (10 lower-case hex characters), shown to the client at once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub String);

impl RequestId {
    /// A new random id.
    pub fn random() -> RequestId {
        use rand::RngCore;
        let mut b = [0u8; 5];
        rand::rngs::OsRng.fill_bytes(&mut b);
        RequestId(hex::encode(b))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What must happen before the action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepUpKind {
    /// A second person approves.
    #[serde(rename = "approval")]
    Approval,
    /// The requester re-proves with a one-time code.
    #[serde(rename = "mfa")]
    Mfa,
    /// Both.
    #[serde(rename = "approval+mfa")]
    Both,
}

impl StepUpKind {
    /// The name used by `policy eval` and the trail: `approval`, `mfa`, `approval+mfa`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepUpKind::Approval => "approval",
            StepUpKind::Mfa => "mfa",
            StepUpKind::Both => "approval+mfa",
        }
    }

    /// Whether a second person must approve.
    pub fn needs_approval(self) -> bool {
        matches!(self, StepUpKind::Approval | StepUpKind::Both)
    }

    /// Whether the requester must present a one-time code.
    pub fn needs_mfa(self) -> bool {
        matches!(self, StepUpKind::Mfa | StepUpKind::Both)
    }
}

/// A held action, as the session loop submits it.
#[derive(Debug, Clone)]
pub struct StepUpRequest {
    /// The session holding the action.
    pub session_id: String,
    /// The action's sequence number in the session.
    pub seq: u64,
    /// The requester.
    pub identity: String,
    /// The requester's kind.
    pub identity_kind: UserKind,
    /// Target name.
    pub target: String,
    /// Protocol of the session.
    pub protocol: Protocol,
    /// The redacted text the approver sees.
    pub text: String,
    /// [`action_digest`] of the session id, sequence number and exact action bytes.
    pub digest: [u8; 32],
    /// The facts the policies decided on.
    pub facts: serde_json::Value,
    /// Ids of the policies that asked for step-up.
    pub policy_ids: Vec<String>,
    /// Groups an approver must belong to (one of); empty: any human other than the requester.
    pub approver_groups: Vec<String>,
    /// Approval, one-time code, or both.
    pub kind: StepUpKind,
    /// The session's cancellation (kill, disconnect): resolves the request as cancelled.
    pub cancel: CancellationToken,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepUpOutcome {
    /// Approved: run exactly the held bytes, once. For a one-time-code-only request the approver
    /// is the requester, who proved the code.
    Approved {
        /// Who approved (the token's user).
        approver: String,
        /// When.
        at: SystemTime,
    },
    /// Denied by a person, or by the bastion itself (`by = "bastion"`, e.g. on shutdown).
    Denied {
        /// Who denied.
        by: String,
        /// Why, as given.
        reason: String,
    },
    /// Nobody decided within `approvals.timeout`.
    TimedOut,
    /// The session ended or was killed first.
    Cancelled,
}

impl StepUpOutcome {
    /// `approved`, `denied`, `timed_out` or `cancelled`.
    pub fn status(&self) -> &'static str {
        match self {
            StepUpOutcome::Approved { .. } => "approved",
            StepUpOutcome::Denied { .. } => "denied",
            StepUpOutcome::TimedOut => "timed_out",
            StepUpOutcome::Cancelled => "cancelled",
        }
    }
}

/// SHA-256 over the session id (length-prefixed), the sequence number (big-endian) and the exact
/// action bytes: different sessions, positions or bytes never share a digest.
pub fn action_digest(session_id: &str, seq: u64, action: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((session_id.len() as u64).to_be_bytes());
    h.update(session_id.as_bytes());
    h.update(seq.to_be_bytes());
    h.update(action);
    h.finalize().into()
}

/// A request as the admin API and the CLI show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalView {
    /// Request id.
    pub id: RequestId,
    /// `pending`, `approved`, `denied`, `timed_out` or `cancelled`.
    pub status: String,
    /// `approval`, `mfa` or `approval+mfa`.
    pub kind: StepUpKind,
    /// Session id.
    pub session_id: String,
    /// Sequence number in the session.
    pub seq: u64,
    /// Requester.
    pub identity: String,
    /// Requester's kind (`human`, `service`, `agent`).
    pub identity_kind: String,
    /// Target.
    pub target: String,
    /// `postgres` or `ssh`.
    pub protocol: String,
    /// The redacted action text.
    pub text: String,
    /// Hex of the action digest (pass it back to approve exactly this).
    pub digest: String,
    /// Facts the policies decided on.
    pub facts: serde_json::Value,
    /// Policies that asked for step-up.
    pub policy_ids: Vec<String>,
    /// Groups allowed to approve (empty: any human but the requester).
    pub approver_groups: Vec<String>,
    /// Submitted at (RFC 3339, UTC).
    pub created_at: String,
    /// Times out at (RFC 3339, UTC).
    pub expires_at: String,
    /// What it still waits for: `approval`, `mfa` (empty once resolved).
    pub waiting_for: Vec<String>,
    /// Who approved, once someone has.
    pub approver: Option<String>,
    /// Who denied, once someone has.
    pub denied_by: Option<String>,
    /// The denial reason.
    pub reason: Option<String>,
    /// Resolved at (RFC 3339, UTC).
    pub resolved_at: Option<String>,
}

/// RFC 3339 in UTC with second precision.
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_separates_session_seq_and_bytes() {
        let base = action_digest("s1", 1, b"DELETE FROM t");
        assert_ne!(base, action_digest("s1", 2, b"DELETE FROM t"));
        assert_ne!(base, action_digest("s2", 1, b"DELETE FROM t"));
        assert_ne!(base, action_digest("s1", 1, b"DELETE FROM t "));
        // Moving bytes between the session id and the action cannot collide.
        assert_ne!(action_digest("s1x", 1, b"y"), action_digest("s1", 1, b"xy"));
        assert_eq!(base, action_digest("s1", 1, b"DELETE FROM t"));
    }

    #[test]
    fn ids_are_short_hex_and_differ() {
        let a = RequestId::random();
        assert_eq!(a.as_str().len(), 10);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, RequestId::random());
    }
}
