//! The Cedar decision engine: the shipped schema (`schema/bastion.cedarschema`), policy loading
//! with `file:line:column` errors (`load`), configuration to entities (`entities`), facts to
//! request contexts (`context`, `derived`), the allow / deny / step-up semantics (`decide`),
//! the decision cache (`cache`, `sql_cache_key`) and the admin tooling behind `bastion policy
//! eval` / `bastion policy test` (`tooling`).
//!
//! ```no_run
//! use policies::engine::*;
//! # fn main() -> Result<(), PolicyError> {
//! let opts = EngineOptions { policy_paths: vec!["examples/policies".into()], ..Default::default() };
//! let alice = Principal { name: "alice".into(), kind: PrincipalKind::Human, groups: vec!["engineers".into()] };
//! let db = TargetInfo { name: "prod-db".into(), protocol: TargetProtocol::Postgres,
//!     tags: [("env".to_string(), "prod".to_string())].into() };
//! let engine = Engine::load(opts, vec![alice], vec![db])?;
//! let mut session = policies::sql::SqlSession::default();
//! let verdict = engine.decide_sql("alice", "prod-db", "DROP TABLE t", &mut session, &RequestContext::default());
//! assert_eq!(verdict.decision, Decision::Deny);
//! # Ok(()) }
//! ```
mod cache;
mod context;
mod decide;
mod derived;
mod entities;
mod error;
mod extractors;
mod load;
mod model;
mod sql_cache_key;
mod tooling;

use std::collections::HashMap;
use std::sync::Arc;

use cedar_policy::{Authorizer, Entities, EntityUid};

pub use error::PolicyError;
pub use extractors::{ShellLimits, SqlLimits};
pub use load::{check_policy_files, SCHEMA_TEXT};
pub use model::{
    Decision, EngineOptions, Grant, Principal, PrincipalKind, RequestContext, SftpOp, StepUp,
    TargetInfo, TargetProtocol, Verdict,
};
pub use tooling::{eval_jsonl, run_cases, CaseReport};

use cache::{CachedVerdict, DecisionCache};
use context::CommonFacts;
use decide::{Asker, Judgement, Unit};
use load::CompiledPolicies;
use sql_cache_key::SqlKey;

use crate::sql::SqlSession;

/// A loaded policy set with its identities and targets. Cheap to clone (shared inside); the
/// binary keeps one in an `Arc` and swaps it on reload.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
    grants: Arc<Vec<Grant>>,
}

struct EngineInner {
    opts: EngineOptions,
    authorizer: Authorizer,
    entities: Entities,
    enforced: CompiledPolicies,
    shadow: Option<CompiledPolicies>,
    users: HashMap<String, EntityUid>,
    targets: HashMap<String, (EntityUid, TargetInfo)>,
    actions: HashMap<&'static str, EntityUid>,
    connect_uid: EntityUid,
    cache: DecisionCache,
}

const ACTIONS: &[&str] = &[
    "connect",
    "sql:select",
    "sql:insert",
    "sql:update",
    "sql:delete",
    "sql:merge",
    "sql:ddl",
    "sql:dcl",
    "sql:copy_out",
    "sql:copy_in",
    "sql:call",
    "sql:session",
    "sql:other",
    "shell:run",
    "sftp:read",
    "sftp:write",
    "sftp:delete",
    "ssh:forward",
];

/// Seconds reported as `context.mfa_age` when the user never gave a one-time code.
const NEVER: i64 = i64::MAX / 2;

/// What kind of request, for cache keys and messages.
#[derive(Clone, Copy)]
enum Kind {
    Sql,
    Shell,
}

impl Engine {
    /// Load and validate the policies, and build the entities. Fails on any file that does not
    /// parse or validate (the error names `file:line:column`).
    pub fn load(
        opts: EngineOptions,
        principals: Vec<Principal>,
        targets: Vec<TargetInfo>,
    ) -> Result<Engine, PolicyError> {
        let schema = load::schema()?;
        let enforced = load::compile(&opts.policy_paths, &schema)?;
        let shadow = if opts.shadow_paths.is_empty() {
            None
        } else {
            Some(load::compile(&opts.shadow_paths, &schema)?)
        };
        let entities = entities::build(&schema, &principals, &targets)?;
        let mut users = HashMap::new();
        for p in &principals {
            users.insert(p.name.clone(), entities::uid("User", &p.name)?);
        }
        let mut target_map = HashMap::new();
        for t in targets {
            target_map.insert(t.name.clone(), (entities::uid("Target", &t.name)?, t));
        }
        let mut actions = HashMap::new();
        for action in ACTIONS {
            actions.insert(*action, entities::uid("Action", action)?);
        }
        let connect_uid = entities::uid("Action", "connect")?;
        let cache = DecisionCache::new(opts.cache_capacity);
        Ok(Engine {
            inner: Arc::new(EngineInner {
                opts,
                authorizer: Authorizer::new(),
                entities,
                enforced,
                shadow,
                users,
                targets: target_map,
                actions,
                connect_uid,
                cache,
            }),
            grants: Arc::new(Vec::new()),
        })
    }

    /// The same engine (sharing policies and cache) with these task-scoped grants active.
    /// Decisions for a user with a live grant bypass the cache. See [`Grant`].
    pub fn with_grants(&self, grants: Vec<Grant>) -> Engine {
        Engine {
            inner: Arc::clone(&self.inner),
            grants: Arc::new(grants),
        }
    }

    /// Number of policies enforced (for logs after a reload).
    pub fn policy_count(&self) -> usize {
        self.inner.enforced.meta.len()
    }

    /// May `user` connect to `target`?
    pub fn decide_connect(&self, user: &str, target: &str, ctx: &RequestContext) -> Verdict {
        let common = self.common(user, target, ctx, "connect", &[]);
        let unit = self.unit("connect", context::connect(&common), &common, "connect");
        let mut verdict = self.simple_verdict(user, target, ctx, vec![unit], "connect");
        verdict.objects = vec![target.to_string()];
        verdict
    }

    /// Decide one SQL message (a `Query` string or a `Parse`), which may hold several statements.
    /// `session` carries `standard_conforming_strings` and SQL-level prepared statements.
    pub fn decide_sql(
        &self,
        user: &str,
        target: &str,
        text: &str,
        session: &mut SqlSession,
        ctx: &RequestContext,
    ) -> Verdict {
        if let Some(denied) = self.unknown(user, target, text) {
            return denied;
        }
        let scs = session.standard_conforming_strings.unwrap_or(true);
        let key = match sql_cache_key::sql_key(text, scs) {
            SqlKey::Key(k) => self.cache_key(Kind::Sql, user, target, ctx, &format!("{scs}|{k}")),
            SqlKey::Uncacheable => None,
        };
        if let Some(hit) = key.as_deref().and_then(|k| self.inner.cache.get(k)) {
            let mut verdict = hit.verdict;
            if hit.text != text {
                verdict.redacted_text = extractors::redact_sql(text);
            }
            return verdict;
        }
        let facts = extractors::sql_facts(text, session, &self.inner.opts.sql_limits);
        let verdict = self.sql_verdict(user, target, text, &facts, ctx);
        if let Some(key) = key {
            self.inner.cache.put(
                key,
                CachedVerdict {
                    text: text.to_string(),
                    verdict: verdict.clone(),
                },
            );
        }
        verdict
    }

    /// Decide already extracted SQL facts (no cache): for callers that extract themselves and
    /// for tests. `text` is used for redaction and the fingerprint only.
    pub fn decide_sql_facts(
        &self,
        user: &str,
        target: &str,
        text: &str,
        facts: &crate::sql::SqlMessageFacts,
        ctx: &RequestContext,
    ) -> Verdict {
        if let Some(denied) = self.unknown(user, target, text) {
            return denied;
        }
        self.sql_verdict(user, target, text, facts, ctx)
    }

    fn sql_verdict(
        &self,
        user: &str,
        target: &str,
        text: &str,
        facts: &crate::sql::SqlMessageFacts,
        ctx: &RequestContext,
    ) -> Verdict {
        let mut units = Vec::new();
        let mut early = Vec::new();
        if let Some(why) = &facts.unparsed {
            early.push(Judgement::deny(
                "ANY-0",
                format!("the statement cannot be understood ({why})"),
            ));
        }
        let mut classes: Vec<&str> = Vec::new();
        let mut objects: Vec<String> = Vec::new();
        let mut risk_tags: Vec<String> = Vec::new();
        for s in &facts.statements {
            let class = context::class_name(s.class);
            if !classes.contains(&class) {
                classes.push(class);
            }
            for r in s.tables_written.iter().chain(&s.tables_read) {
                let q = context::qualified(r);
                if !objects.contains(&q) {
                    objects.push(q);
                }
            }
            for t in &s.risk_tags {
                if !risk_tags.contains(t) {
                    risk_tags.push(t.clone());
                }
            }
            if let Some(why) = &s.unparsed {
                early.push(Judgement::deny(
                    "ANY-0",
                    format!("{} cannot be understood ({why})", s.verb),
                ));
                continue;
            }
            let action = context::sql_action(s.class);
            let tables: Vec<String> = s
                .tables_read
                .iter()
                .chain(&s.tables_written)
                .map(context::qualified)
                .collect();
            let common = self.common(user, target, ctx, action, &tables);
            let label = if s.verb.is_empty() {
                class.to_uppercase()
            } else {
                s.verb.to_uppercase()
            };
            units.push(self.unit(action, context::sql(&common, s), &common, &label));
        }
        let mut verdict = self.verdict_from(user, target, ctx, early, &units);
        verdict.class = classes.join(",");
        verdict.objects = objects;
        verdict.risk_tags = risk_tags;
        verdict.redacted_text = extractors::redact_sql(text);
        verdict.fingerprint = extractors::fingerprint_sql(text);
        verdict.facts = serde_json::to_value(facts).unwrap_or(serde_json::Value::Null);
        verdict
    }

    /// Decide one shell command line (every simple command in it; the strictest wins).
    pub fn decide_shell(
        &self,
        user: &str,
        target: &str,
        line: &str,
        ctx: &RequestContext,
    ) -> Verdict {
        if let Some(denied) = self.unknown(user, target, line) {
            return denied;
        }
        let key = self.cache_key(Kind::Shell, user, target, ctx, line);
        if let Some(hit) = key.as_deref().and_then(|k| self.inner.cache.get(k)) {
            return hit.verdict;
        }
        let facts = extractors::shell_facts(line, &self.inner.opts.shell_limits);
        let verdict = self.shell_verdict(user, target, line, &facts, ctx);
        if let Some(key) = key {
            self.inner.cache.put(
                key,
                CachedVerdict {
                    text: line.to_string(),
                    verdict: verdict.clone(),
                },
            );
        }
        verdict
    }

    /// Decide already extracted shell facts (no cache): for callers that extract themselves
    /// and for tests. `line` is used for redaction and the fingerprint only.
    pub fn decide_shell_facts(
        &self,
        user: &str,
        target: &str,
        line: &str,
        facts: &crate::shell::ShellLineFacts,
        ctx: &RequestContext,
    ) -> Verdict {
        if let Some(denied) = self.unknown(user, target, line) {
            return denied;
        }
        self.shell_verdict(user, target, line, facts, ctx)
    }

    fn shell_verdict(
        &self,
        user: &str,
        target: &str,
        line: &str,
        facts: &crate::shell::ShellLineFacts,
        ctx: &RequestContext,
    ) -> Verdict {
        let mut early = Vec::new();
        if let Some(why) = &facts.unparsed {
            early.push(Judgement::deny(
                "ANY-0",
                format!("the command line cannot be understood ({why})"),
            ));
        }
        let common = self.common(user, target, ctx, "shell:run", &[]);
        let mut objects: Vec<String> = Vec::new();
        let mut units = Vec::new();
        for cmd in &facts.commands {
            let label = if cmd.name.is_empty() {
                "a dynamic command".to_string()
            } else {
                cmd.name.clone()
            };
            if !cmd.name.is_empty() && !objects.contains(&cmd.name) {
                objects.push(cmd.name.clone());
            }
            units.push(self.unit("shell:run", context::shell(&common, cmd), &common, &label));
        }
        let mut verdict = self.verdict_from(user, target, ctx, early, &units);
        verdict.class = "shell".to_string();
        verdict.objects = objects;
        verdict.risk_tags = shell_risk_tags(facts);
        verdict.redacted_text = extractors::redact_shell(line);
        verdict.fingerprint = line.split_whitespace().collect::<Vec<_>>().join(" ");
        verdict.facts = serde_json::to_value(facts).unwrap_or(serde_json::Value::Null);
        verdict
    }

    /// Decide one SFTP operation on `path`.
    pub fn decide_sftp(
        &self,
        user: &str,
        target: &str,
        op: SftpOp,
        path: &str,
        ctx: &RequestContext,
    ) -> Verdict {
        let action = match op {
            SftpOp::Read => "sftp:read",
            SftpOp::Write => "sftp:write",
            SftpOp::Delete => "sftp:delete",
        };
        let common = self.common(user, target, ctx, action, &[]);
        let unit = self.unit(action, context::sftp(&common, path), &common, action);
        let mut verdict = self.simple_verdict(user, target, ctx, vec![unit], path);
        verdict.objects = vec![path.to_string()];
        verdict.facts = serde_json::json!({ "op": op, "path": path });
        verdict
    }

    /// Decide a port forward to `host:port` through `target`.
    pub fn decide_forward(
        &self,
        user: &str,
        target: &str,
        host: &str,
        port: u16,
        ctx: &RequestContext,
    ) -> Verdict {
        let common = self.common(user, target, ctx, "ssh:forward", &[]);
        let unit = self.unit(
            "ssh:forward",
            context::forward(&common, host, port),
            &common,
            "port forwarding",
        );
        let text = format!("{host}:{port}");
        let mut verdict = self.simple_verdict(user, target, ctx, vec![unit], &text);
        verdict.objects = vec![text];
        verdict.facts = serde_json::json!({ "host": host, "port": port });
        verdict
    }

    fn simple_verdict(
        &self,
        user: &str,
        target: &str,
        ctx: &RequestContext,
        units: Vec<Unit>,
        text: &str,
    ) -> Verdict {
        if let Some(denied) = self.unknown(user, target, text) {
            return denied;
        }
        let mut verdict = self.verdict_from(user, target, ctx, Vec::new(), &units);
        verdict.class = units
            .first()
            .map(|u| u.action.id().unescaped().to_string())
            .unwrap_or_default();
        verdict.redacted_text = text.to_string();
        verdict.fingerprint = text.to_string();
        verdict
    }

    /// A deny for an unknown user or target, else `None`.
    fn unknown(&self, user: &str, target: &str, text: &str) -> Option<Verdict> {
        let reason = if !self.inner.users.contains_key(user) {
            format!("denied: unknown user {user}")
        } else if !self.inner.targets.contains_key(target) {
            format!("denied: unknown target {target}")
        } else {
            return None;
        };
        Some(Verdict {
            decision: Decision::Deny,
            step_up: None,
            policy_ids: vec!["unknown-identity".to_string()],
            message: reason,
            approver_groups: Vec::new(),
            class: String::new(),
            objects: Vec::new(),
            risk_tags: Vec::new(),
            redacted_text: text.to_string(),
            fingerprint: String::new(),
            facts: serde_json::Value::Null,
            shadow: None,
            matched: Vec::new(),
        })
    }

    fn mfa_fresh(&self, ctx: &RequestContext) -> bool {
        ctx.mfa_age_secs
            .is_some_and(|age| age <= self.inner.opts.mfa_freshness_secs)
    }

    /// The live grants of `user` on `target` covering `action` and every table in `tables`.
    fn granted_actions(
        &self,
        user: &str,
        target: &str,
        now: i64,
        action: &str,
        tables: &[String],
    ) -> Vec<String> {
        self.grants
            .iter()
            .filter(|g| g.user == user && g.target == target && g.expires_unix > now)
            .filter(|g| g.action == action || g.action == "*")
            .filter(|g| {
                g.tables.is_empty()
                    || tables.iter().all(|t| {
                        let bare = t.rsplit('.').next().unwrap_or(t);
                        g.tables.iter().any(|gt| gt == t || gt == bare)
                    })
            })
            .map(|_| action.to_string())
            .collect()
    }

    fn common(
        &self,
        user: &str,
        target: &str,
        ctx: &RequestContext,
        action: &str,
        tables: &[String],
    ) -> CommonFacts {
        let mut grants = self.granted_actions(user, target, ctx.now_unix, action, tables);
        grants.dedup();
        CommonFacts {
            source_ip: ctx.source_ip,
            time: ctx.now_unix,
            mfa_age: ctx
                .mfa_age_secs
                .map_or(NEVER, |a| i64::try_from(a).unwrap_or(NEVER)),
            grants,
            risk: ctx.risk.clone(),
        }
    }

    fn unit(
        &self,
        action: &'static str,
        context: Result<cedar_policy::Context, String>,
        common: &CommonFacts,
        label: &str,
    ) -> Unit {
        match self.inner.actions.get(action) {
            Some(uid) => Unit {
                action: uid.clone(),
                context,
                granted: !common.grants.is_empty(),
                label: label.to_string(),
            },
            // Not reachable (ACTIONS lists every action used); fail closed anyway.
            None => Unit {
                action: self.inner.connect_uid.clone(),
                context: Err(format!("unknown action {action}")),
                granted: false,
                label: label.to_string(),
            },
        }
    }

    fn verdict_from(
        &self,
        user: &str,
        target: &str,
        ctx: &RequestContext,
        early: Vec<Judgement>,
        units: &[Unit],
    ) -> Verdict {
        let (Some(principal), Some((resource, _))) =
            (self.inner.users.get(user), self.inner.targets.get(target))
        else {
            return self
                .unknown(user, target, "")
                .unwrap_or_else(|| unknown_fallback(user));
        };
        let asker = Asker {
            authorizer: &self.inner.authorizer,
            entities: &self.inner.entities,
            principal,
            resource,
            mfa_fresh: self.mfa_fresh(ctx),
        };
        let parts = units.iter().map(|u| asker.judge(&self.inner.enforced, u));
        let judgement = decide::combine(early.iter().cloned().chain(parts));
        let shadow = self.inner.shadow.as_ref().map(|policies| {
            let parts = units.iter().map(|u| asker.judge(policies, u));
            decide::combine(early.iter().cloned().chain(parts)).decision
        });
        let message = message(&judgement, target);
        Verdict {
            decision: judgement.decision,
            step_up: (judgement.decision == Decision::StepUp).then_some(judgement.step_up),
            policy_ids: judgement.deciding,
            message,
            approver_groups: judgement.approvers,
            class: String::new(),
            objects: Vec::new(),
            risk_tags: Vec::new(),
            redacted_text: String::new(),
            fingerprint: String::new(),
            facts: serde_json::Value::Null,
            shadow,
            matched: judgement.matched,
        }
    }

    /// The cache key for a request, or `None` when it must not be cached.
    fn cache_key(
        &self,
        kind: Kind,
        user: &str,
        target: &str,
        ctx: &RequestContext,
        text_key: &str,
    ) -> Option<String> {
        if self.inner.opts.cache_capacity == 0 {
            return None;
        }
        if self
            .grants
            .iter()
            .any(|g| g.user == user && g.target == target)
        {
            return None;
        }
        let p = &self.inner.enforced;
        let s = self.inner.shadow.as_ref();
        let uses_time = p.uses_time || s.is_some_and(|s| s.uses_time);
        let uses_ip = p.uses_source_ip || s.is_some_and(|s| s.uses_source_ip);
        let uses_mfa_age = p.uses_mfa_age || s.is_some_and(|s| s.uses_mfa_age);
        let kind = match kind {
            Kind::Sql => 's',
            Kind::Shell => 'h',
        };
        let mut key = format!("{kind}\u{0}{user}\u{0}{target}\u{0}{}", self.mfa_fresh(ctx));
        if uses_time {
            key.push_str(&format!("\u{0}t{}", ctx.now_unix));
        }
        if uses_ip {
            key.push_str(&format!("\u{0}i{:?}", ctx.source_ip));
        }
        if uses_mfa_age {
            key.push_str(&format!("\u{0}m{:?}", ctx.mfa_age_secs));
        }
        if !ctx.risk.is_empty() {
            key.push_str(&format!("\u{0}r{}", ctx.risk.join(",")));
        }
        key.push('\u{0}');
        key.push_str(text_key);
        Some(key)
    }
}

fn unknown_fallback(user: &str) -> Verdict {
    Verdict {
        decision: Decision::Deny,
        step_up: None,
        policy_ids: vec!["unknown-identity".to_string()],
        message: format!("denied: unknown user or target for {user}"),
        approver_groups: Vec::new(),
        class: String::new(),
        objects: Vec::new(),
        risk_tags: Vec::new(),
        redacted_text: String::new(),
        fingerprint: String::new(),
        facts: serde_json::Value::Null,
        shadow: None,
        matched: Vec::new(),
    }
}

/// The user-facing message of a judgement.
fn message(j: &Judgement, target: &str) -> String {
    let ids = j.deciding.join(", ");
    let policies = if j.deciding.len() > 1 {
        "policies"
    } else {
        "policy"
    };
    match j.decision {
        Decision::Allow => format!("allowed by {policies} {ids}"),
        Decision::Deny if j.deciding == ["default-deny"] => {
            format!("denied: {} on {target}", j.reason)
        }
        Decision::Deny => format!("denied by {policies} {ids}: {} on {target}", j.reason),
        Decision::StepUp => {
            let what = match (j.step_up.approval, j.step_up.mfa) {
                (true, true) => "approval and a one-time code required",
                (false, true) => "one-time code required",
                _ => "approval required",
            };
            format!("{what} by {policies} {ids}: {} on {target}", j.reason)
        }
    }
}

fn shell_risk_tags(facts: &crate::shell::ShellLineFacts) -> Vec<String> {
    let mut tags = Vec::new();
    let mut add = |t: &str| {
        if !tags.iter().any(|x: &String| x == t) {
            tags.push(t.to_string());
        }
    };
    for c in &facts.commands {
        if c.dynamic {
            add("dynamic");
        }
        if c.runs_download {
            add("runs_download");
        }
        if !c.wrappers.is_empty() {
            add("wrapped");
        }
    }
    if facts.unparsed.is_some() {
        add("unparsed");
    }
    tags
}

#[cfg(test)]
mod tests;
