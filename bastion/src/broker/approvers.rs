//! Who may approve or deny what: the identity directory (name → kind, groups) and the rules of
//! STARTER-POLICIES.md "Approvals": an approver is a known human, not the requester, and in one of
//! the groups the policy names (any human other than the requester when it names none).
use crate::config::{Config, UserKind};
use std::collections::HashMap;

/// One identity as the broker needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Human, service or agent.
    pub kind: UserKind,
    /// Groups.
    pub groups: Vec<String>,
}

/// Identities by name.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    members: HashMap<String, Member>,
}

impl Directory {
    /// A directory of `(name, kind, groups)`.
    pub fn new<I, G>(users: I) -> Directory
    where
        I: IntoIterator<Item = (String, UserKind, G)>,
        G: IntoIterator<Item = String>,
    {
        let members = users
            .into_iter()
            .map(|(name, kind, groups)| {
                (
                    name,
                    Member {
                        kind,
                        groups: groups.into_iter().collect(),
                    },
                )
            })
            .collect();
        Directory { members }
    }

    /// The users of a validated config.
    pub fn from_config(config: &Config) -> Directory {
        Directory::new(
            config
                .users
                .values()
                .map(|u| (u.name.clone(), u.kind, u.groups.clone())),
        )
    }

    /// Looks up one identity.
    pub fn get(&self, name: &str) -> Option<&Member> {
        self.members.get(name)
    }

    /// `Ok` when `approver` may approve a request by `requester` that names `approver_groups`;
    /// otherwise the reason, phrased for the approver.
    pub fn may_approve(
        &self,
        approver: &str,
        requester: &str,
        approver_groups: &[String],
    ) -> Result<(), String> {
        if approver == requester {
            return Err(format!(
                "{approver} made this request and cannot approve it"
            ));
        }
        let Some(member) = self.get(approver) else {
            return Err(format!("{approver} is not a configured identity"));
        };
        if member.kind != UserKind::Human {
            return Err(format!(
                "{approver} is not a human ({} identity) and cannot approve",
                member.kind.as_str()
            ));
        }
        if approver_groups.is_empty() || member.groups.iter().any(|g| approver_groups.contains(g)) {
            Ok(())
        } else {
            Err(format!(
                "{approver} is not in an approver group ({})",
                approver_groups.join(", ")
            ))
        }
    }

    /// `Ok` when `by` may deny: anyone who could approve, and the requester (withdrawing).
    pub fn may_deny(
        &self,
        by: &str,
        requester: &str,
        approver_groups: &[String],
    ) -> Result<(), String> {
        if by == requester {
            return Ok(());
        }
        self.may_approve(by, requester, approver_groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starter() -> Directory {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Directory::new([
            ("alice".to_string(), UserKind::Human, s(&["engineers"])),
            (
                "dana".to_string(),
                UserKind::Human,
                s(&["dba", "engineers"]),
            ),
            (
                "deploy-bot".to_string(),
                UserKind::Service,
                s(&["deployers"]),
            ),
            (
                "agent-7".to_string(),
                UserKind::Agent,
                s(&["agents", "dba"]),
            ),
        ])
    }

    #[test]
    fn starter_pack_approver_rules() {
        let d = starter();
        let dba = vec!["dba".to_string()];
        assert_eq!(d.may_approve("dana", "alice", &dba), Ok(()));
        assert_eq!(
            d.may_approve("dana", "dana", &dba).unwrap_err(),
            "dana made this request and cannot approve it"
        );
        assert_eq!(
            d.may_approve("alice", "dana", &dba).unwrap_err(),
            "alice is not in an approver group (dba)"
        );
        // An agent in the right group is still not a human.
        assert_eq!(
            d.may_approve("agent-7", "alice", &dba).unwrap_err(),
            "agent-7 is not a human (agent identity) and cannot approve"
        );
        assert!(d.may_approve("deploy-bot", "alice", &[]).is_err());
        assert!(d.may_approve("mallory", "alice", &[]).is_err());
        assert_eq!(d.may_approve("alice", "dana", &[]), Ok(()));
    }

    #[test]
    fn requester_may_withdraw_but_not_approve() {
        let d = starter();
        assert_eq!(d.may_deny("alice", "alice", &["dba".to_string()]), Ok(()));
        assert!(d
            .may_deny("agent-7", "alice", &["dba".to_string()])
            .is_err());
    }
}
