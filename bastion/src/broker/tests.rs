//! Broker behaviour as sessions and approvers see it.
use super::*;
use crate::config::{Protocol, UserKind};

fn directory() -> Directory {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Directory::new([
        ("alice".to_string(), UserKind::Human, s(&["engineers"])),
        (
            "dana".to_string(),
            UserKind::Human,
            s(&["dba", "engineers"]),
        ),
        ("erin".to_string(), UserKind::Human, s(&["dba"])),
        (
            "agent-7".to_string(),
            UserKind::Agent,
            s(&["agents", "dba"]),
        ),
    ])
}

fn request(identity: &str, text: &str, kind: StepUpKind) -> StepUpRequest {
    StepUpRequest {
        session_id: "s1".into(),
        seq: 7,
        identity: identity.into(),
        identity_kind: UserKind::Human,
        target: "prod-db".into(),
        protocol: Protocol::Postgres,
        text: text.into(),
        digest: action_digest("s1", 7, text.as_bytes()),
        facts: serde_json::json!({"class": "delete"}),
        policy_ids: vec!["SQL-3".into()],
        approver_groups: vec!["dba".into()],
        kind,
        cancel: CancellationToken::new(),
    }
}

fn broker() -> Broker {
    Broker::new(Duration::from_secs(60), directory())
}

#[tokio::test]
async fn approve_resolves_the_waiting_session_once() {
    let b = broker();
    let (id, wait) = b.submit(request("alice", "DELETE FROM t", StepUpKind::Approval));
    let waiter = tokio::spawn(wait);
    let listed = b.list(false);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].text, "DELETE FROM t");
    assert_eq!(listed[0].waiting_for, vec!["approval"]);
    let digest = action_digest("s1", 7, b"DELETE FROM t");
    let view = b.approve(id.as_str(), "dana", Some(digest)).unwrap();
    assert_eq!(view.status, "approved");
    match waiter.await.unwrap() {
        StepUpOutcome::Approved { approver, .. } => assert_eq!(approver, "dana"),
        other => panic!("expected approval, got {other:?}"),
    }
    // Single use: a second approval, or a late denial, is a conflict.
    let again = b.approve(id.as_str(), "erin", None).unwrap_err();
    assert_eq!(again.http_status(), 409);
    assert_eq!(
        again.to_string(),
        format!("approval request {id} is already approved")
    );
    assert_eq!(
        b.deny(id.as_str(), "erin", "no").unwrap_err().http_status(),
        409
    );
    assert!(b.list(false).is_empty());
    assert_eq!(b.list(true).len(), 1);
}

#[tokio::test]
async fn deny_carries_who_and_why() {
    let b = broker();
    let (id, wait) = b.submit(request("alice", "DROP TABLE t", StepUpKind::Approval));
    b.deny(id.as_str(), "dana", "not during business hours\u{7}")
        .unwrap();
    assert_eq!(
        wait.await,
        StepUpOutcome::Denied {
            by: "dana".into(),
            reason: "not during business hours".into()
        }
    );
}

#[tokio::test]
async fn requester_agent_and_non_member_cannot_approve() {
    let b = broker();
    let (id, wait) = b.submit(request("dana", "DELETE FROM t", StepUpKind::Approval));
    for (who, why) in [
        ("dana", "dana made this request and cannot approve it"),
        (
            "agent-7",
            "agent-7 is not a human (agent identity) and cannot approve",
        ),
        ("alice", "alice is not in an approver group (dba)"),
        ("mallory", "mallory is not a configured identity"),
    ] {
        let e = b.approve(id.as_str(), who, None).unwrap_err();
        assert_eq!((e.http_status(), e.to_string()), (403, why.to_string()));
    }
    // Still pending after every refused attempt; a legitimate approver can still act.
    assert_eq!(b.get(id.as_str()).unwrap().status, "pending");
    b.approve(id.as_str(), "erin", None).unwrap();
    assert!(matches!(wait.await, StepUpOutcome::Approved { .. }));
}

#[tokio::test]
async fn digest_mismatch_approves_nothing() {
    let b = broker();
    let (id, _wait) = b.submit(request("alice", "DELETE FROM t", StepUpKind::Approval));
    let other = action_digest("s1", 7, b"DELETE FROM t; DROP TABLE u");
    let e = b.approve(id.as_str(), "dana", Some(other)).unwrap_err();
    assert_eq!(e.http_status(), 409);
    assert_eq!(b.get(id.as_str()).unwrap().status, "pending");
}

#[tokio::test]
async fn unknown_id_is_not_found() {
    let b = broker();
    let e = b.approve("0123456789", "dana", None).unwrap_err();
    assert_eq!(
        (e.http_status(), e.to_string()),
        (404, "no approval request 0123456789".to_string())
    );
}

#[tokio::test]
async fn timeout_resolves_and_late_approval_conflicts() {
    let b = Broker::new(Duration::from_millis(100), directory());
    let (id, wait) = b.submit(request("alice", "DELETE FROM t", StepUpKind::Approval));
    assert_eq!(wait.await, StepUpOutcome::TimedOut);
    let e = b.approve(id.as_str(), "dana", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("approval request {id} is already timed_out")
    );
}

#[tokio::test]
async fn expired_request_whose_session_is_not_waiting_cannot_be_approved() {
    let b = Broker::new(Duration::from_millis(100), directory());
    let (id, wait) = b.submit(request("alice", "DELETE FROM t", StepUpKind::Approval));
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The future was never polled, so only the deadline check in `approve` sees the expiry.
    let e = b.approve(id.as_str(), "dana", None).unwrap_err();
    assert_eq!(e.http_status(), 409);
    assert_eq!(wait.await, StepUpOutcome::TimedOut);
}

#[tokio::test]
async fn session_cancellation_and_dropped_future_cancel_the_request() {
    let b = broker();
    let req = request("alice", "DELETE FROM t", StepUpKind::Approval);
    let cancel = req.cancel.clone();
    let (id, wait) = b.submit(req);
    let waiter = tokio::spawn(wait);
    cancel.cancel();
    assert_eq!(waiter.await.unwrap(), StepUpOutcome::Cancelled);
    assert_eq!(b.get(id.as_str()).unwrap().status, "cancelled");

    let (id2, wait2) = b.submit(request("alice", "DELETE FROM u", StepUpKind::Approval));
    let polled = tokio::spawn(wait2);
    tokio::task::yield_now().await;
    polled.abort();
    let _ = polled.await;
    assert_eq!(b.get(id2.as_str()).unwrap().status, "cancelled");
    assert_eq!(
        b.approve(id2.as_str(), "dana", None)
            .unwrap_err()
            .http_status(),
        409
    );
}

#[tokio::test]
async fn shutdown_fails_pending_requests_closed() {
    let b = broker();
    let (_id, wait) = b.submit(request("alice", "DELETE FROM t", StepUpKind::Approval));
    let waiter = tokio::spawn(wait);
    b.shutdown();
    match waiter.await.unwrap() {
        StepUpOutcome::Denied { by, reason } => {
            assert_eq!(by, "bastion");
            assert!(reason.contains("shutting down"), "{reason}");
        }
        other => panic!("expected denial, got {other:?}"),
    }
    // Later submissions are refused at once rather than hanging.
    let (_id, wait) = b.submit(request("alice", "DELETE FROM t", StepUpKind::Approval));
    assert!(matches!(wait.await, StepUpOutcome::Denied { .. }));
}

#[tokio::test]
async fn mfa_only_is_resolved_by_the_requesters_code_not_by_approvers() {
    let b = broker();
    let (id, wait) = b.submit(request("alice", "SELECT * FROM payroll", StepUpKind::Mfa));
    assert_eq!(
        b.approve(id.as_str(), "dana", None)
            .unwrap_err()
            .http_status(),
        409
    );
    assert_eq!(
        b.confirm_mfa(id.as_str(), "dana")
            .unwrap_err()
            .http_status(),
        403
    );
    b.confirm_mfa(id.as_str(), "alice").unwrap();
    assert!(matches!(wait.await, StepUpOutcome::Approved { approver, .. } if approver == "alice"));
}

#[tokio::test]
async fn both_needs_approval_and_code() {
    let b = broker();
    let (id, wait) = b.submit(request("alice", "COPY payroll TO STDOUT", StepUpKind::Both));
    let waiter = tokio::spawn(wait);
    let v = b.approve(id.as_str(), "dana", None).unwrap();
    assert_eq!(
        (v.status.as_str(), v.waiting_for.clone()),
        ("pending", vec!["mfa".to_string()])
    );
    assert!(!waiter.is_finished());
    let v = b.confirm_mfa(id.as_str(), "alice").unwrap();
    assert_eq!(v.status, "approved");
    assert!(
        matches!(waiter.await.unwrap(), StepUpOutcome::Approved { approver, .. } if approver == "dana")
    );
}

#[tokio::test]
async fn racing_approvals_resolve_exactly_once() {
    let b = Arc::new(broker());
    let (id, wait) = b.submit(request("alice", "DELETE FROM t", StepUpKind::Approval));
    let mut tasks = Vec::new();
    for who in ["dana", "erin", "dana", "erin"] {
        let (b, id) = (b.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            b.approve(id.as_str(), who, None).is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 1);
    assert!(matches!(wait.await, StepUpOutcome::Approved { .. }));
}

#[tokio::test]
async fn metrics_follow_pending_and_outcomes() {
    let m = Arc::new(Metrics::new());
    let b = broker().with_metrics(m.clone());
    let (id, wait) = b.submit(request("alice", "DELETE FROM t", StepUpKind::Approval));
    assert_eq!(m.step_up_pending(), 1);
    b.deny(id.as_str(), "dana", "no").unwrap();
    wait.await;
    assert_eq!(m.step_up_pending(), 0);
    assert!(m
        .render()
        .contains("bastion_step_up_requests_total{outcome=\"denied\"} 1"));
}
