//! Task-scoped grants (issue 10): `bastion grant --user agent-7 --target prod-db --action
//! sql:update --table app.orders --ttl 30m --reason "ticket 123"` adds a temporary permit for
//! one identity, one target and one action (optionally limited to tables), which expires by
//! itself and can be revoked early with `bastion grant revoke ID`. A grant stands in for a
//! missing Cedar `permit` and never overrides a `forbid` (see `policies::Grant`).
//!
//! The grants live in `<state_dir>/grants.json` (mode 0600, replaced atomically, edited under
//! the lock `<state_dir>/.grants.lock`); revoked and expired grants stay listed for the audit
//! until 30 days after their expiry. A running bastion checks the file's identity (inode, size,
//! modification time) at every decision and rebuilds its engine when it changed, so a grant or a
//! revocation takes effect at the next statement without a restart; each grant it picks up, and
//! each revocation, is also written as an `entries` row (`method = 'grant'`, `result` `granted`
//! or `revoked`, the grant in `reason`). A grants file that cannot be read counts as no grants.
use crate::admin::private_file::write_private_file;
use crate::config::Config;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The actions a grant may name (the engine's Cedar actions).
pub const GRANTABLE_ACTIONS: &[&str] = &[
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

/// Longest lifetime of a grant: a grant is for one task.
pub const MAX_GRANT_TTL_SECS: i64 = 24 * 3600;
/// Revoked and expired grants stay listed this long after expiry.
const KEEP_AFTER_EXPIRY_SECS: i64 = 30 * 86_400;

/// One grant as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGrant {
    /// Id (12 hex digits).
    pub id: String,
    /// Identity.
    pub user: String,
    /// Target.
    pub target: String,
    /// Cedar action, e.g. `sql:update`.
    pub action: String,
    /// Tables the SQL may touch (`schema.name` as PostgreSQL resolves it); empty: any.
    pub tables: Vec<String>,
    /// Created, seconds since the epoch.
    pub created_unix: i64,
    /// Expires, seconds since the epoch.
    pub expires_unix: i64,
    /// Why (the ticket, the task).
    pub reason: String,
    /// Who granted it (OS user of the CLI).
    pub granted_by: String,
    /// When it was revoked, if it was.
    #[serde(default)]
    pub revoked_unix: Option<i64>,
    /// Who revoked it.
    #[serde(default)]
    pub revoked_by: Option<String>,
}

impl StoredGrant {
    /// `active`, `expired` or `revoked` at `now`.
    pub fn state(&self, now: i64) -> &'static str {
        if self.revoked_unix.is_some() {
            "revoked"
        } else if now >= self.expires_unix {
            "expired"
        } else {
            "active"
        }
    }

    /// In force at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.state(now) == "active"
    }

    /// The engine's form.
    pub fn to_engine(&self) -> policies::Grant {
        policies::Grant {
            user: self.user.clone(),
            target: self.target.clone(),
            action: self.action.clone(),
            tables: self.tables.clone(),
            expires_unix: self.expires_unix,
        }
    }

    /// One line for logs and the `entries` row.
    pub fn describe(&self) -> String {
        let tables = if self.tables.is_empty() {
            String::new()
        } else {
            format!(" on {}", self.tables.join(", "))
        };
        format!(
            "grant {}: {} {}{} on {} until {}, by {}: {}",
            self.id,
            self.user,
            self.action,
            tables,
            self.target,
            crate::entry::machine_token::rfc3339(self.expires_unix),
            self.granted_by,
            self.reason
        )
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct GrantsFile {
    grants: Vec<StoredGrant>,
}

/// Reading or writing the grants file failed, or a grant request is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The file.
    #[error("grants {path}: {message}")]
    Storage {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A request the config or the rules refuse.
    #[error("{0}")]
    Invalid(String),
}

/// `<state_dir>/grants.json`.
pub fn grants_path(state_dir: &Path) -> PathBuf {
    state_dir.join("grants.json")
}

fn storage(path: &Path, e: impl ToString) -> GrantError {
    GrantError::Storage {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn read_file(path: &Path) -> Result<GrantsFile, GrantError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| storage(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(GrantsFile::default()),
        Err(e) => Err(storage(path, e)),
    }
}

/// Every grant in the state directory (revoked and expired ones included).
pub fn list(state_dir: &Path) -> Result<Vec<StoredGrant>, GrantError> {
    Ok(read_file(&grants_path(state_dir))?.grants)
}

/// The grants in force at `now`, in the engine's form.
pub fn live(state_dir: &Path, now: i64) -> Result<Vec<StoredGrant>, GrantError> {
    Ok(list(state_dir)?
        .into_iter()
        .filter(|g| g.is_live(now))
        .collect())
}

/// Runs `edit` on the grants file under its lock and writes the result.
fn edit<T>(
    state_dir: &Path,
    edit: impl FnOnce(&mut GrantsFile) -> Result<T, GrantError>,
) -> Result<T, GrantError> {
    let path = grants_path(state_dir);
    std::fs::create_dir_all(state_dir).map_err(|e| storage(state_dir, e))?;
    let lock_path = state_dir.join(".grants.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| storage(&lock_path, e))?;
    lock.lock().map_err(|e| storage(&lock_path, e))?;
    let mut file = read_file(&path)?;
    let out = edit(&mut file)?;
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| storage(&path, e))?;
    write_private_file(&path, &bytes).map_err(|e| storage(&path, e))?;
    let _ = lock.unlock();
    Ok(out)
}

/// What `bastion grant` asks for.
#[derive(Debug, Clone)]
pub struct GrantRequest {
    /// Identity.
    pub user: String,
    /// Target.
    pub target: String,
    /// Action.
    pub action: String,
    /// Tables (SQL actions only).
    pub tables: Vec<String>,
    /// Lifetime, seconds.
    pub ttl_secs: i64,
    /// Why.
    pub reason: String,
    /// Who.
    pub granted_by: String,
}

/// Checks a request against the config and the rules (known user, target and action; tables
/// only for SQL; a bounded lifetime; a reason).
pub fn validate(config: &Config, req: &GrantRequest) -> Result<(), GrantError> {
    let invalid = |m: String| Err(GrantError::Invalid(m));
    if !config.users.contains_key(&req.user) {
        return invalid(format!("unknown user {:?}", req.user));
    }
    if !config.targets.contains_key(&req.target) {
        return invalid(format!("unknown target {:?}", req.target));
    }
    if !GRANTABLE_ACTIONS.contains(&req.action.as_str()) {
        return invalid(format!(
            "unknown action {:?}; grantable actions: {}",
            req.action,
            GRANTABLE_ACTIONS.join(", ")
        ));
    }
    if !req.tables.is_empty() && !req.action.starts_with("sql:") {
        return invalid(format!(
            "--table applies to sql: actions, not {}",
            req.action
        ));
    }
    if req
        .tables
        .iter()
        .any(|t| t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return invalid("--table takes a table name such as app.orders".into());
    }
    if req.ttl_secs <= 0 || req.ttl_secs > MAX_GRANT_TTL_SECS {
        return invalid(format!(
            "--ttl must be between 1s and {}h: a grant is for one task",
            MAX_GRANT_TTL_SECS / 3600
        ));
    }
    if req.reason.trim().is_empty() {
        return invalid("--reason is required: say which task the grant is for".into());
    }
    Ok(())
}

/// Stores a new grant (already validated) and returns it.
pub fn add(state_dir: &Path, req: GrantRequest, now: i64) -> Result<StoredGrant, GrantError> {
    let mut id = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    let grant = StoredGrant {
        id: hex::encode(id),
        user: req.user,
        target: req.target,
        action: req.action,
        tables: req.tables,
        created_unix: now,
        expires_unix: now.saturating_add(req.ttl_secs),
        reason: req.reason,
        granted_by: req.granted_by,
        revoked_unix: None,
        revoked_by: None,
    };
    edit(state_dir, |file| {
        file.grants
            .retain(|g| g.expires_unix + KEEP_AFTER_EXPIRY_SECS > now);
        file.grants.push(grant.clone());
        Ok(grant.clone())
    })
}

/// Revokes grant `id`; an unknown or already revoked id is an error.
pub fn revoke(state_dir: &Path, id: &str, by: &str, now: i64) -> Result<StoredGrant, GrantError> {
    edit(state_dir, |file| {
        let Some(g) = file.grants.iter_mut().find(|g| g.id == id) else {
            return Err(GrantError::Invalid(format!(
                "no grant with id {id:?} (see `bastion grant list`)"
            )));
        };
        if g.revoked_unix.is_some() {
            return Err(GrantError::Invalid(format!(
                "grant {id} is already revoked"
            )));
        }
        g.revoked_unix = Some(now);
        g.revoked_by = Some(by.to_string());
        Ok(g.clone())
    })
}

/// The grants of `grants` that cover `user` on `target` for one of `actions` and every table in
/// `tables` (the engine's matching, for `policy eval --explain`).
pub fn applying<'a>(
    grants: &'a [StoredGrant],
    user: &str,
    target: &str,
    actions: &[String],
    tables: &[String],
) -> Vec<&'a StoredGrant> {
    grants
        .iter()
        .filter(|g| g.user == user && g.target == target)
        .filter(|g| actions.contains(&g.action))
        .filter(|g| {
            g.tables.is_empty()
                || tables.iter().all(|t| {
                    let bare = t.rsplit('.').next().unwrap_or(t);
                    g.tables.iter().any(|gt| gt == t || gt == bare)
                })
        })
        .collect()
}

/// File identity: changes whenever the CLI rewrites the file (it is replaced, not edited).
type Stamp = Option<(u64, i128, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.ino(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        m.len(),
    ))
}

struct Cache {
    stamp: Stamp,
    loaded: bool,
    grants: Vec<StoredGrant>,
    /// The base engine the applied one was built from, and the result.
    built: Option<(Arc<policies::Engine>, Arc<policies::Engine>)>,
    /// The earliest expiry among the grants in the built engine.
    next_expiry: i64,
    /// Grant ids already written to the trail, and whether as revoked.
    announced: std::collections::BTreeMap<String, bool>,
}

/// The running bastion's view of the grants: re-read when the file changes, applied to the
/// current policy engine, announced in the trail.
pub struct LiveGrants {
    path: PathBuf,
    /// Target name to protocol, for the `entries` rows.
    protocols: std::collections::BTreeMap<String, String>,
    recorder: Option<recorder::Recorder>,
    cache: Mutex<Cache>,
}

impl LiveGrants {
    /// Grants of `config`'s state directory; `recorder` receives an `entries` row per grant
    /// picked up and per revocation.
    pub fn new(config: &Config, recorder: Option<recorder::Recorder>) -> LiveGrants {
        LiveGrants {
            path: grants_path(&config.server.state_dir),
            protocols: config
                .targets
                .values()
                .map(|t| (t.name.clone(), t.protocol.as_str().to_string()))
                .collect(),
            recorder,
            cache: Mutex::new(Cache {
                stamp: None,
                loaded: false,
                grants: Vec::new(),
                built: None,
                next_expiry: i64::MAX,
                announced: Default::default(),
            }),
        }
    }

    /// `base` with the grants in force now (`base` itself when there are none).
    pub fn apply(&self, base: Arc<policies::Engine>) -> Arc<policies::Engine> {
        let now = chrono::Utc::now().timestamp();
        let current = stamp(&self.path);
        let mut guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let cache = &mut *guard;
        let file_changed = !cache.loaded || cache.stamp != current;
        if file_changed {
            cache.grants = match current {
                None => Vec::new(),
                Some(_) => match read_file(&self.path) {
                    Ok(f) => f.grants,
                    Err(e) => {
                        tracing::error!(error = %e, "grants unreadable; no grant is in force");
                        Vec::new()
                    }
                },
            };
            cache.stamp = current;
            cache.loaded = true;
            cache.built = None;
            self.announce(cache, now);
        }
        if let Some((built_from, applied)) = &cache.built {
            if Arc::ptr_eq(built_from, &base) && now < cache.next_expiry {
                return applied.clone();
            }
        }
        let live: Vec<&StoredGrant> = cache.grants.iter().filter(|g| g.is_live(now)).collect();
        cache.next_expiry = live
            .iter()
            .map(|g| g.expires_unix)
            .min()
            .unwrap_or(i64::MAX);
        let applied = if live.is_empty() {
            base.clone()
        } else {
            Arc::new(base.with_grants(live.iter().map(|g| g.to_engine()).collect()))
        };
        cache.built = Some((base, applied.clone()));
        applied
    }

    /// Writes `entries` rows for grants not yet announced and for new revocations.
    fn announce(&self, cache: &mut Cache, now: i64) {
        let mut rows = Vec::new();
        let ids: BTreeSet<&str> = cache.grants.iter().map(|g| g.id.as_str()).collect();
        cache.announced.retain(|id, _| ids.contains(id.as_str()));
        for g in &cache.grants {
            let revoked = g.revoked_unix.is_some();
            match cache.announced.get(&g.id) {
                None if g.is_live(now) => {
                    tracing::info!("{} (in force)", g.describe());
                    rows.push((g.clone(), "granted"));
                    cache.announced.insert(g.id.clone(), false);
                }
                Some(false) if revoked => {
                    tracing::info!(
                        "{} (revoked by {})",
                        g.describe(),
                        g.revoked_by.as_deref().unwrap_or("?")
                    );
                    rows.push((g.clone(), "revoked"));
                    cache.announced.insert(g.id.clone(), true);
                }
                _ => {}
            }
        }
        let (Some(recorder), Ok(runtime)) =
            (self.recorder.clone(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        if rows.is_empty() {
            return;
        }
        let protocols: Vec<String> = rows
            .iter()
            .map(|(g, _)| self.protocols.get(&g.target).cloned().unwrap_or_default())
            .collect();
        runtime.spawn(async move {
            for ((g, result), protocol) in rows.into_iter().zip(protocols) {
                let mut reason = g.describe();
                if let Some(by) = &g.revoked_by {
                    reason.push_str(&format!(" (revoked by {by})"));
                }
                let row = recorder::EntryRow {
                    time: recorder::now_micros(),
                    identity: g.user.clone(),
                    source: "bastion grant".to_string(),
                    protocol,
                    method: "grant".to_string(),
                    result: result.to_string(),
                    reason: Some(reason),
                    session_id: None,
                };
                if let Err(e) = recorder.entry(row).await {
                    tracing::error!(error = %e, "cannot record grant");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(action: &str, tables: &[&str], ttl: i64) -> GrantRequest {
        GrantRequest {
            user: "agent-7".into(),
            target: "prod-db".into(),
            action: action.into(),
            tables: tables.iter().map(|s| s.to_string()).collect(),
            ttl_secs: ttl,
            reason: "ticket 123".into(),
            granted_by: "dana".into(),
        }
    }

    #[test]
    fn add_list_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let g = add(dir.path(), req("sql:update", &["app.orders"], 1800), 1000).unwrap();
        assert_eq!(g.expires_unix, 2800);
        assert_eq!(live(dir.path(), 1001).unwrap(), vec![g.clone()]);
        assert!(live(dir.path(), 2800).unwrap().is_empty());
        let r = revoke(dir.path(), &g.id, "dana", 1100).unwrap();
        assert_eq!(r.state(1100), "revoked");
        assert!(live(dir.path(), 1101).unwrap().is_empty());
        assert!(revoke(dir.path(), &g.id, "dana", 1200).is_err());
        assert!(revoke(dir.path(), "nope", "dana", 1200).is_err());
        assert_eq!(list(dir.path()).unwrap().len(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(grants_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    fn engine(dir: &Path) -> Arc<policies::Engine> {
        let policy = dir.join("p.cedar");
        std::fs::write(
            &policy,
            "@id(\"READ\") permit (principal, action == Action::\"sql:select\", resource);\n",
        )
        .unwrap();
        let opts = policies::EngineOptions {
            policy_paths: vec![policy],
            ..Default::default()
        };
        let agent = policies::Principal {
            name: "agent-7".into(),
            kind: policies::PrincipalKind::Agent,
            groups: vec![],
        };
        let db = policies::TargetInfo {
            name: "prod-db".into(),
            protocol: policies::TargetProtocol::Postgres,
            tags: Default::default(),
        };
        Arc::new(policies::Engine::load(opts, vec![agent], vec![db]).unwrap())
    }

    #[test]
    fn live_grants_follow_the_file_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let live = LiveGrants {
            path: grants_path(dir.path()),
            protocols: Default::default(),
            recorder: None,
            cache: Mutex::new(Cache {
                stamp: None,
                loaded: false,
                grants: Vec::new(),
                built: None,
                next_expiry: i64::MAX,
                announced: Default::default(),
            }),
        };
        let base = engine(dir.path());
        let ctx = policies::RequestContext {
            now_unix: chrono::Utc::now().timestamp(),
            ..Default::default()
        };
        let update = "UPDATE app.orders SET status = 'x' WHERE id = 1";
        let decide = |e: &policies::Engine| {
            let mut s = policies::sql::SqlSession::default();
            e.decide_sql("agent-7", "prod-db", update, &mut s, &ctx)
                .decision
        };
        // No file: the base engine itself.
        assert!(Arc::ptr_eq(&live.apply(base.clone()), &base));
        assert_eq!(decide(&base), policies::Decision::Deny);
        let now = chrono::Utc::now().timestamp();
        let g = add(dir.path(), req("sql:update", &["app.orders"], 600), now).unwrap();
        let granted = live.apply(base.clone());
        assert_eq!(decide(&granted), policies::Decision::Allow);
        // Unchanged file and engine: the same built engine is reused.
        assert!(Arc::ptr_eq(&live.apply(base.clone()), &granted));
        // A reloaded policy set gets the grants too.
        let reloaded = engine(dir.path());
        assert_eq!(
            decide(&live.apply(reloaded.clone())),
            policies::Decision::Allow
        );
        revoke(dir.path(), &g.id, "dana", now).unwrap();
        assert_eq!(decide(&live.apply(reloaded)), policies::Decision::Deny);
        // A corrupt file means no grants.
        add(dir.path(), req("sql:update", &[], 600), now).unwrap();
        assert_eq!(decide(&live.apply(base.clone())), policies::Decision::Allow);
        std::fs::write(grants_path(dir.path()), b"{ not json").unwrap();
        assert_eq!(decide(&live.apply(base)), policies::Decision::Deny);
    }

    #[test]
    fn applying_matches_like_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let g = add(dir.path(), req("sql:update", &["app.orders"], 60), 0).unwrap();
        let all = vec![g];
        let upd = vec!["sql:update".to_string()];
        assert_eq!(
            applying(&all, "agent-7", "prod-db", &upd, &["app.orders".into()]).len(),
            1
        );
        assert!(applying(&all, "agent-7", "prod-db", &upd, &["app.customers".into()]).is_empty());
        assert!(applying(&all, "agent-7", "dev-db", &upd, &["app.orders".into()]).is_empty());
        assert!(applying(&all, "agent-8", "prod-db", &upd, &["app.orders".into()]).is_empty());
        let del = vec!["sql:delete".to_string()];
        assert!(applying(&all, "agent-7", "prod-db", &del, &["app.orders".into()]).is_empty());
    }
}
