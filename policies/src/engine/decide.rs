//! The bastion's decision semantics on top of Cedar. One Cedar evaluation per unit (statement,
//! simple command, file operation) returns every satisfied policy (the compiled set holds all
//! policies as permits); then:
//! - a satisfied plain `forbid` (or a `forbid` that failed to evaluate) denies;
//! - no satisfied `permit` (and no task grant) denies: Cedar's default;
//! - satisfied `@step_up` forbids ask for their step-ups combined, except that an `mfa` step-up
//!   is already met when the user's last one-time code is fresh;
//! - else allow.
//!
//! Several units (a multi-statement message, a multi-command line) take the strictest outcome:
//! deny > step-up > allow, with step-ups combined.
use std::collections::BTreeSet;

use cedar_policy::{Authorizer, Context, Entities, EntityUid, Request};

use super::load::CompiledPolicies;
use super::model::{Decision, StepUp};

/// One thing to decide.
pub(crate) struct Unit {
    /// The Cedar action uid.
    pub action: EntityUid,
    /// Its context, or why it could not be built (denied).
    pub context: Result<Context, String>,
    /// Covered by an active task grant (stands in for a missing permit).
    pub granted: bool,
    /// What the user did, for messages: `DROP`, `rm`, `sftp:write`.
    pub label: String,
}

/// The outcome for one unit or, combined, for a whole message or line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Judgement {
    /// Allow, step-up or deny.
    pub decision: Decision,
    /// What the step-up needs (for `StepUp`).
    pub step_up: StepUp,
    /// Ids of the policies that decided.
    pub deciding: Vec<String>,
    /// Why, in words, without the "denied by policy X:" prefix and the target.
    pub reason: String,
    /// Groups that may approve.
    pub approvers: Vec<String>,
    /// Every satisfied policy (permits too).
    pub matched: Vec<String>,
}

impl Judgement {
    /// A deny that no policy produced (unknown user, unparsable input).
    pub(crate) fn deny(id: &str, reason: String) -> Judgement {
        Judgement {
            decision: Decision::Deny,
            step_up: StepUp::default(),
            deciding: if id.is_empty() {
                Vec::new()
            } else {
                vec![id.to_string()]
            },
            reason,
            approvers: Vec::new(),
            matched: Vec::new(),
        }
    }

    /// An allow that no policy produced (an empty message).
    pub(crate) fn allow_empty() -> Judgement {
        Judgement {
            decision: Decision::Allow,
            step_up: StepUp::default(),
            deciding: Vec::new(),
            reason: "nothing to run".to_string(),
            approvers: Vec::new(),
            matched: Vec::new(),
        }
    }
}

/// Everything needed to evaluate units for one principal on one target.
pub(crate) struct Asker<'a> {
    /// The Cedar authorizer.
    pub authorizer: &'a Authorizer,
    /// The entity store.
    pub entities: &'a Entities,
    /// `User::"..."`.
    pub principal: &'a EntityUid,
    /// `Target::"..."`.
    pub resource: &'a EntityUid,
    /// The user's one-time code is fresh: `mfa` step-ups are met.
    pub mfa_fresh: bool,
}

impl Asker<'_> {
    /// Judge one unit against one compiled set.
    pub(crate) fn judge(&self, policies: &CompiledPolicies, unit: &Unit) -> Judgement {
        let context = match &unit.context {
            Ok(context) => context.clone(),
            Err(e) => {
                return Judgement::deny("ANY-0", format!("cannot describe {}: {e}", unit.label))
            }
        };
        let request = match Request::new(
            self.principal.clone(),
            unit.action.clone(),
            self.resource.clone(),
            context,
            None,
        ) {
            Ok(r) => r,
            Err(e) => {
                return Judgement::deny("ANY-0", format!("cannot ask about {}: {e}", unit.label))
            }
        };
        let scoped = policies.for_scope(self.entities, self.principal, &unit.action);
        let response = self
            .authorizer
            .is_authorized(&request, &scoped, self.entities);
        let diagnostics = response.diagnostics();
        let mut plain = Vec::new();
        let mut step_ups = Vec::new();
        let mut permits = Vec::new();
        let mut matched = Vec::new();
        for id in diagnostics.reason() {
            if let Some(meta) = policies.meta.get(id) {
                matched.push(meta.id.clone());
                match (meta.forbid, meta.step_up) {
                    (false, _) => permits.push(meta),
                    (true, None) => plain.push(meta),
                    (true, Some(s)) => step_ups.push((meta, s)),
                }
            }
        }
        // Fail closed: a forbid whose condition errored counts as satisfied, and as a plain deny.
        for error in diagnostics.errors() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(error) = error;
            if let Some(meta) = policies.meta.get(error.policy_id()) {
                if meta.forbid {
                    plain.push(meta);
                    matched.push(meta.id.clone());
                }
            }
        }
        matched.sort();
        matched.dedup();
        plain.sort_by_key(|m| m.order);
        plain.dedup_by_key(|m| m.order);
        permits.sort_by_key(|m| m.order);
        step_ups.sort_by_key(|(m, _)| m.order);
        if !plain.is_empty() {
            return Judgement {
                decision: Decision::Deny,
                step_up: StepUp::default(),
                deciding: ids(plain.iter().map(|m| m.id.as_str())),
                reason: plain
                    .iter()
                    .find_map(|m| m.message.clone())
                    .unwrap_or_else(|| format!("{} is not allowed", unit.label)),
                approvers: Vec::new(),
                matched,
            };
        }
        if permits.is_empty() && !unit.granted {
            return Judgement {
                decision: Decision::Deny,
                step_up: StepUp::default(),
                deciding: vec!["default-deny".to_string()],
                reason: format!("no policy allows {}", unit.label),
                approvers: Vec::new(),
                matched,
            };
        }
        let mut needed = StepUp::default();
        let mut deciding = Vec::new();
        let mut reason = None;
        let mut approvers = BTreeSet::new();
        for (meta, step_up) in step_ups {
            let step_up = StepUp {
                approval: step_up.approval,
                mfa: step_up.mfa && !self.mfa_fresh,
            };
            if step_up.is_empty() {
                continue;
            }
            needed = needed.combine(step_up);
            deciding.push(meta.id.as_str());
            if reason.is_none() {
                reason = meta.message.clone();
            }
            approvers.extend(meta.approvers.iter().cloned());
        }
        if !needed.is_empty() {
            return Judgement {
                decision: Decision::StepUp,
                step_up: needed,
                deciding: ids(deciding),
                reason: reason.unwrap_or_else(|| format!("{} needs a step-up", unit.label)),
                approvers: approvers.into_iter().collect(),
                matched,
            };
        }
        let mut deciding = ids(permits.iter().map(|m| m.id.as_str()));
        if permits.is_empty() {
            deciding.push("grant".to_string());
        }
        Judgement {
            decision: Decision::Allow,
            step_up: StepUp::default(),
            deciding,
            reason: format!("{} is allowed", unit.label),
            approvers: Vec::new(),
            matched,
        }
    }
}

fn ids<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in items {
        if !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    }
    out
}

/// The strictest of several judgements: deny > step-up > allow; step-ups combine; the ids,
/// reasons and approvers of the parts that share the final decision are kept.
pub(crate) fn combine(parts: impl IntoIterator<Item = Judgement>) -> Judgement {
    let parts: Vec<Judgement> = parts.into_iter().collect();
    let Some(decision) = parts.iter().map(|j| j.decision).max() else {
        return Judgement::allow_empty();
    };
    let mut out = Judgement {
        decision,
        step_up: StepUp::default(),
        deciding: Vec::new(),
        reason: String::new(),
        approvers: Vec::new(),
        matched: Vec::new(),
    };
    for part in parts {
        for m in part.matched {
            if !out.matched.contains(&m) {
                out.matched.push(m);
            }
        }
        if part.decision != decision {
            continue;
        }
        out.step_up = out.step_up.combine(part.step_up);
        for id in part.deciding {
            if !out.deciding.contains(&id) {
                out.deciding.push(id);
            }
        }
        for a in part.approvers {
            if !out.approvers.contains(&a) {
                out.approvers.push(a);
            }
        }
        if out.reason.is_empty() {
            out.reason = part.reason;
        } else if decision != Decision::Allow && !out.reason.contains(&part.reason) {
            out.reason = format!("{}; {}", out.reason, part.reason);
        }
    }
    out.matched.sort();
    out
}
