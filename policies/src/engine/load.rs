//! Loading policy files: read, parse, validate against the shipped schema, read the bastion
//! annotations (`@id`, `@step_up`, `@approvers`, `@message`), and compile the set the
//! decider evaluates. Errors name `file:line:column`.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use std::sync::{Arc, RwLock};

use cedar_policy::{
    ActionConstraint, Effect, Entities, EntityUid, Policy, PolicyId, PolicySet,
    PrincipalConstraint, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;

use super::error::PolicyError;
use super::model::StepUp;

/// The schema shipped with the bastion (Cedar schema syntax).
pub const SCHEMA_TEXT: &str = include_str!("../../schema/bastion.cedarschema");

/// Parse the shipped schema.
pub(crate) fn schema() -> Result<Schema, PolicyError> {
    Schema::from_cedarschema_str(SCHEMA_TEXT)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| PolicyError::Schema(e.to_string()))
}

/// What the engine knows about one policy besides its Cedar meaning.
#[derive(Debug, Clone)]
pub(crate) struct PolicyMeta {
    /// `@id` if present, else `<file stem>:<cedar id>`.
    pub id: String,
    /// A `forbid` (plain or step-up).
    pub forbid: bool,
    /// For a `forbid` annotated `@step_up(...)`: what it asks for.
    pub step_up: Option<StepUp>,
    /// `@approvers("dba, oncall")`.
    pub approvers: Vec<String>,
    /// `@message("...")`: the reason shown to the user.
    pub message: Option<String>,
    /// Position in the loaded set (files in order, policies in source order): reports list
    /// deciding policies in this order, so they are stable.
    pub order: usize,
}

/// A loaded policy set, ready to evaluate.
///
/// Every policy is stored with effect `permit`, so one Cedar evaluation returns *every*
/// satisfied policy in `reason()`; `meta` remembers the real effect and the step-up
/// annotations, and the decider applies the bastion semantics on top.
#[derive(Debug)]
pub(crate) struct CompiledPolicies {
    /// All policies, as permits, with engine-assigned ids.
    pub set: PolicySet,
    /// Per engine-assigned id.
    pub meta: HashMap<PolicyId, PolicyMeta>,
    /// Some policy reads `context.time` (decisions then depend on the clock).
    pub uses_time: bool,
    /// Some policy reads `context.source_ip`.
    pub uses_source_ip: bool,
    /// Some policy reads `context.mfa_age`.
    pub uses_mfa_age: bool,
    /// Per (principal, action): only the policies whose scope can match them, built on first
    /// use. Cedar evaluates every policy of a set; most do not apply to a given pair.
    scoped: RwLock<HashMap<(EntityUid, EntityUid), Arc<PolicySet>>>,
}

/// `uid` is `constraint` or a descendant of it (Cedar's `uid in constraint`).
fn within(entities: &Entities, constraint: &EntityUid, uid: &EntityUid) -> bool {
    constraint == uid || entities.is_ancestor_of(constraint, uid)
}

impl CompiledPolicies {
    /// The policies whose principal and action scope can match `principal` and `action` (a
    /// policy whose scope the filter does not understand is kept).
    pub(crate) fn for_scope(
        &self,
        entities: &Entities,
        principal: &EntityUid,
        action: &EntityUid,
    ) -> Arc<PolicySet> {
        let key = (principal.clone(), action.clone());
        if let Some(set) = self.scoped.read().ok().and_then(|m| m.get(&key).cloned()) {
            return set;
        }
        let mut set = PolicySet::new();
        for policy in self.set.policies() {
            let principal_ok = match policy.principal_constraint() {
                PrincipalConstraint::Any => true,
                PrincipalConstraint::Eq(uid) => &uid == principal,
                PrincipalConstraint::In(uid) => within(entities, &uid, principal),
                _ => true,
            };
            let action_ok = match policy.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(uid) => &uid == action,
                ActionConstraint::In(uids) => uids.iter().any(|u| within(entities, u, action)),
            };
            if principal_ok && action_ok && set.add(policy.clone()).is_err() {
                // Cannot happen (ids are unique in `self.set`); fall back to every policy.
                return Arc::new(self.set.clone());
            }
        }
        let set = Arc::new(set);
        if let Ok(mut map) = self.scoped.write() {
            map.insert(key, Arc::clone(&set));
        }
        set
    }
}

/// Validate the policy files under `paths` against the shipped schema without building an
/// engine (`bastion check`). Returns the number of policies.
pub fn check_policy_files(paths: &[PathBuf]) -> Result<usize, PolicyError> {
    let schema = schema()?;
    compile(paths, &schema).map(|c| c.meta.len())
}

/// Expand directories into their `*.cedar` files (sorted by name); files are kept as given.
fn policy_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, PolicyError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| PolicyError::Read {
                path: path.clone(),
                source,
            })?;
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|source| PolicyError::Read {
                    path: path.clone(),
                    source,
                })?;
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "cedar") {
                    found.push(p);
                }
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Byte offset of the first label of a diagnostic, if any.
fn first_label_offset(diag: &dyn Diagnostic) -> Option<usize> {
    diag.labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset())
}

/// Cedar numbers the policies of one parsed text `policy0`, `policy1`, ... in source order.
fn source_order(id: &PolicyId) -> usize {
    id.to_string()
        .strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Byte offset of the `@id("...")` annotation carrying `id`, or of the n-th `permit`/`forbid`.
fn locate_policy(text: &str, id: Option<&str>, nth: usize) -> usize {
    if let Some(id) = id {
        if let Some(pos) = text.find(&format!("\"{id}\"")) {
            return pos;
        }
    }
    let mut count = 0;
    for (pos, _) in text.match_indices(['p', 'f']) {
        let rest = text.get(pos..).unwrap_or("");
        if rest.starts_with("permit") || rest.starts_with("forbid") {
            if count == nth {
                return pos;
            }
            count += 1;
        }
    }
    0
}

fn parse_step_up(value: &str) -> Option<StepUp> {
    let mut step_up = StepUp::default();
    for part in value.split(['+', ',']) {
        match part.trim() {
            "approval" => step_up.approval = true,
            "mfa" => step_up.mfa = true,
            _ => return None,
        }
    }
    (!step_up.is_empty()).then_some(step_up)
}

/// Read, parse and validate every file, and compile the result.
pub(crate) fn compile(paths: &[PathBuf], schema: &Schema) -> Result<CompiledPolicies, PolicyError> {
    let validator = Validator::new(schema.clone());
    let mut set = PolicySet::new();
    let mut meta = HashMap::new();
    let mut first_use: HashMap<String, String> = HashMap::new();
    let mut uses = (false, false, false);
    for (file_index, path) in policy_files(paths)?.iter().enumerate() {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.clone(),
            source,
        })?;
        let parsed = parse_file(path, &text)?;
        validate_file(path, &text, &validator, &parsed)?;
        let mut policies: Vec<&Policy> = parsed.policies().collect();
        policies.sort_by_key(|p| source_order(p.id()));
        for (nth, policy) in policies.into_iter().enumerate() {
            let at_id = policy.annotation("id").map(str::to_string);
            let offset = locate_policy(&text, at_id.as_deref(), nth);
            let (line, column) = line_col(&text, offset);
            let display_id = at_id.unwrap_or_else(|| {
                let stem = path
                    .file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                format!("{stem}:{}", policy.id())
            });
            if let Some(first) = first_use.get(&display_id) {
                return Err(PolicyError::DuplicateId {
                    path: path.clone(),
                    line,
                    column,
                    id: display_id,
                    first: first.clone(),
                });
            }
            first_use.insert(display_id.clone(), format!("{}:{line}", path.display()));
            let forbid = policy.effect() == Effect::Forbid;
            let step_up = match policy.annotation("step_up") {
                None => None,
                Some(value) => {
                    let parsed = parse_step_up(value).filter(|_| forbid);
                    if parsed.is_none() {
                        return Err(PolicyError::Annotation {
                            path: path.clone(),
                            line,
                            column,
                            policy: display_id,
                            message: format!(
                                "@step_up(\"{value}\") is not understood: it goes on a forbid, with \"approval\", \"mfa\" or \"approval+mfa\""
                            ),
                        });
                    }
                    parsed
                }
            };
            let approvers = policy
                .annotation("approvers")
                .map(|a| {
                    a.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let message = policy.annotation("message").map(str::to_string);
            let engine_id = PolicyId::new(format!("f{file_index}p{nth}"));
            let as_permit = to_permit(policy, engine_id.clone(), &mut uses).map_err(|message| {
                PolicyError::Annotation {
                    path: path.clone(),
                    line,
                    column,
                    policy: display_id.clone(),
                    message,
                }
            })?;
            set.add(as_permit).map_err(|e| PolicyError::Annotation {
                path: path.clone(),
                line,
                column,
                policy: display_id.clone(),
                message: e.to_string(),
            })?;
            meta.insert(
                engine_id,
                PolicyMeta {
                    id: display_id,
                    forbid,
                    step_up,
                    approvers,
                    message,
                    order: meta.len(),
                },
            );
        }
    }
    Ok(CompiledPolicies {
        set,
        meta,
        uses_time: uses.0,
        uses_source_ip: uses.1,
        uses_mfa_age: uses.2,
        scoped: RwLock::new(HashMap::new()),
    })
}

fn parse_file(path: &Path, text: &str) -> Result<PolicySet, PolicyError> {
    PolicySet::from_str(text).map_err(|errors| {
        let first = errors.iter().next();
        let offset = first.and_then(|e| first_label_offset(e)).unwrap_or(0);
        let message = first.map_or_else(|| errors.to_string(), |e| e.to_string());
        let (line, column) = line_col(text, offset);
        PolicyError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

fn validate_file(
    path: &Path,
    text: &str,
    validator: &Validator,
    parsed: &PolicySet,
) -> Result<(), PolicyError> {
    let result = validator.validate(parsed, ValidationMode::Strict);
    if let Some(error) = result.validation_errors().next() {
        let offset = first_label_offset(error).unwrap_or(0);
        let (line, column) = line_col(text, offset);
        let policy = parsed
            .policy(error.policy_id())
            .and_then(|p| p.annotation("id"))
            .map_or_else(|| error.policy_id().to_string(), str::to_string);
        let mut message = error.to_string();
        if let Some(help) = error.help() {
            message.push_str(&format!(" ({help})"));
        }
        return Err(PolicyError::Validation {
            path: path.to_path_buf(),
            line,
            column,
            policy,
            message,
        });
    }
    Ok(())
}

/// The same policy with effect `permit` and a new id (annotations kept). Notes in `uses`
/// whether its conditions read `context.time`, `context.source_ip`, `context.mfa_age`.
fn to_permit(
    policy: &Policy,
    id: PolicyId,
    uses: &mut (bool, bool, bool),
) -> Result<Policy, String> {
    let mut json = policy.to_json().map_err(|e| e.to_string())?;
    let conditions = json
        .get("conditions")
        .map(|c| c.to_string())
        .unwrap_or_default();
    uses.0 |= conditions.contains("\"attr\":\"time\"");
    uses.1 |= conditions.contains("\"attr\":\"source_ip\"");
    uses.2 |= conditions.contains("\"attr\":\"mfa_age\"");
    if let Some(effect) = json.get_mut("effect") {
        *effect = serde_json::Value::String("permit".to_string());
    }
    Policy::from_json(Some(id), json).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let text = "ab\ncdé\nx";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 8), (3, 1));
        assert_eq!(line_col(text, 7), (2, 4));
    }

    #[test]
    fn shipped_schema_loads() {
        assert!(schema().is_ok(), "{:?}", schema().err());
    }

    #[test]
    fn step_up_annotation_values() {
        assert_eq!(
            parse_step_up("approval"),
            Some(StepUp {
                approval: true,
                mfa: false
            })
        );
        assert_eq!(
            parse_step_up("approval+mfa"),
            Some(StepUp {
                approval: true,
                mfa: true
            })
        );
        assert_eq!(parse_step_up("otp"), None);
    }
}
