//! Policies: the point of interaction's brain. Facts from SQL (`sql/`, sqlparser with the
//! PostgreSQL dialect) and from shell command lines (`shell/`, brush-parser); the Cedar engine
//! that turns identity + target + facts into allow / deny / step-up (`engine/`); redaction and
//! fingerprints of recorded text (`redact`). No network I/O; the only files read are policies.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod engine;
pub mod fingerprint;
pub mod redact;
pub mod shell;
pub mod sql;

pub use engine::{
    check_policy_files, eval_jsonl, run_cases, CaseReport, Decision, Engine, EngineOptions, Grant,
    PolicyError, Principal, PrincipalKind, RequestContext, SftpOp, StepUp, TargetInfo,
    TargetProtocol, Verdict,
};
