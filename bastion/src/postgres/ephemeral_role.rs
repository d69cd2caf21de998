//! Just-in-time PostgreSQL credentials (`upstream_auth = "ephemeral_role"`). Per session the
//! bastion logs in with its admin credential (a CREATEROLE role), creates the login role
//! `bastion_<session id>` with a random 32-byte password (sent only as a SCRAM verifier), a
//! `VALID UNTIL` minutes ahead on the server's clock, one connection, membership in the role the
//! identity maps to (`role_map`) and that role as its default `role`, so statements run with
//! exactly the mapped role's privileges and objects it creates belong to the mapped role. The
//! session then logs in as the new role; when the session ends ([`RoleLease`] dropped) the role
//! is dropped once its backend is gone (leftover backends are terminated first).
//!
//! Every role carries a comment naming this node and this process run ([`MARKER`]): at start
//! [`sweep_leftovers`] drops this node's roles from earlier runs (a crash, a kill -9) and leaves
//! other nodes' roles and this run's alone.
use super::upstream::{self, Upstream, UpstreamError};
use crate::config::{Config, EphemeralRoleSettings, Target, UpstreamAuth};
use crate::upstream_login::SessionLogin;
use bytes::BytesMut;
use protocol::postgres::frontend::{Query, Terminate};
use protocol::postgres::BackendMessage;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// Prefix of every session role's name.
pub const ROLE_PREFIX: &str = "bastion_";

/// Start of every session role's comment; `run=`, `session=` and `node=` follow.
pub const MARKER: &str = "bastion ephemeral role";

/// How long a role's drop waits for the session's backend to end before terminating it.
const BACKEND_GONE_WAIT: Duration = Duration::from_secs(5);

/// SCRAM iterations of the session role's verifier (PostgreSQL's default).
const SCRAM_ITERATIONS: u32 = 4096;

/// This process run, in every role comment: the sweep at start must not drop roles of sessions
/// this run opened (they may start before the sweep ends). Process-wide because a run is.
fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        use rand::RngCore;
        let mut b = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut b);
        hex::encode(b)
    })
}

/// Role drops still running. Process-wide because a lease is dropped wherever the session ends
/// (the relay holds no handle to give it); `serve` waits for them at shutdown.
fn cleanups() -> &'static TaskTracker {
    static CLEANUPS: OnceLock<TaskTracker> = OnceLock::new();
    CLEANUPS.get_or_init(TaskTracker::new)
}

/// Waits (at most `limit`) for session roles still being dropped; called at shutdown.
pub async fn finish_cleanups(limit: Duration) {
    let tracker = cleanups();
    tracker.close();
    if tokio::time::timeout(limit, tracker.wait()).await.is_err() {
        tracing::warn!("session roles still being dropped at exit; the next start sweeps them");
    }
}

/// `"name"` with inner quotes doubled: safe for any role name without NUL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with inner quotes doubled: safe when `standard_conforming_strings` is on (checked
/// on every admin connection) and the text has no NUL.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The role name of a session; `None` unless the id is lower-case hex (as the bastion makes
/// them), so a name can never need quoting or collide with another session's.
pub fn role_name(session_id: &str) -> Option<String> {
    let ok = !session_id.is_empty()
        && session_id.len() <= 32
        && session_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| format!("{ROLE_PREFIX}{session_id}"))
}

/// The comment written on a session role.
fn marker(node: &str, run: &str, session_id: &str) -> String {
    format!("{MARKER} run={run} session={session_id} node={node}")
}

/// A role comment's run and node, when it is a bastion marker (node is last: it may hold spaces).
fn parse_marker(comment: &str) -> Option<(&str, &str)> {
    let rest = comment.strip_prefix(MARKER)?.strip_prefix(" run=")?;
    let (run, rest) = rest.split_once(" session=")?;
    let (_, node) = rest.split_once(" node=")?;
    Some((run, node))
}

/// Whether the sweep of `node` in run `run` drops a role with this comment.
fn swept_by(comment: &str, node: &str, run: &str) -> bool {
    parse_marker(comment).is_some_and(|(r, n)| n == node && r != run)
}

/// The admin login of one target: what creates and drops session roles.
#[derive(Clone)]
pub struct Admin {
    target: Target,
    settings: EphemeralRoleSettings,
    password: String,
    database: String,
    max_frame: usize,
    timeout: Duration,
}

impl Admin {
    /// The admin login for `target` (its `upstream_user`, with `password`) on `database`.
    pub fn new(
        target: &Target,
        settings: &EphemeralRoleSettings,
        password: &str,
        database: &str,
        max_frame: usize,
        timeout: Duration,
    ) -> Admin {
        Admin {
            target: target.clone(),
            settings: settings.clone(),
            password: password.to_string(),
            database: database.to_string(),
            max_frame,
            timeout,
        }
    }

    fn login_failed(&self, reason: String) -> UpstreamError {
        UpstreamError::Login {
            target: self.target.name.clone(),
            reason,
        }
    }

    async fn session(&self) -> Result<AdminSession, UpstreamError> {
        let up = upstream::connect_as(
            &self.target,
            &self.target.upstream_user,
            &self.password,
            &self.database,
            &[("application_name".into(), "bastion".into())],
            self.max_frame,
        )
        .await?;
        // Literals are quoted for standard_conforming_strings = on; anything else fails closed.
        if up.standard_conforming_strings != Some(true) {
            return Err(self.login_failed(
                "standard_conforming_strings is off for the bastion's admin role; it must be on"
                    .into(),
            ));
        }
        Ok(AdminSession {
            buf: BytesMut::new(),
            up,
            max_frame: self.max_frame,
        })
    }
}

/// A failed admin statement.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The server refused the statement.
    #[error("{message} ({code})")]
    Server {
        /// SQLSTATE.
        code: String,
        /// Server message.
        message: String,
    },
    /// The connection broke or spoke nonsense.
    #[error("{0}")]
    Connection(String),
}

/// One admin connection, running simple queries.
struct AdminSession {
    up: Upstream,
    buf: BytesMut,
    max_frame: usize,
}

impl AdminSession {
    /// Runs `sql` (possibly several statements: one implicit transaction) and returns the text
    /// of every row's columns; the first error fails the whole query.
    async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, AdminError> {
        if sql.contains('\0') {
            return Err(AdminError::Connection("statement holds a NUL byte".into()));
        }
        let mut out = BytesMut::new();
        Query::new(sql).encode(&mut out);
        super::stream::send(&mut self.up.stream, &out)
            .await
            .map_err(|e| AdminError::Connection(e.to_string()))?;
        if self.buf.is_empty() {
            self.buf = std::mem::take(&mut self.up.leftover);
        }
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let frame = upstream::read_frame(&mut self.up.stream, &mut self.buf, self.max_frame)
                .await
                .map_err(AdminError::Connection)?;
            let msg = BackendMessage::decode(&frame)
                .map_err(|e| AdminError::Connection(e.to_string()))?;
            match msg {
                BackendMessage::DataRow(row) => rows.push(
                    row.values
                        .iter()
                        .map(|v| v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
                        .collect(),
                ),
                BackendMessage::ErrorResponse(e) => {
                    error.get_or_insert(AdminError::Server {
                        code: e.fields.code().unwrap_or("?????").to_string(),
                        message: e.fields.message().unwrap_or("error").to_string(),
                    });
                }
                BackendMessage::ReadyForQuery(_) => break,
                BackendMessage::CopyInResponse(_) | BackendMessage::CopyBothResponse(_) => {
                    return Err(AdminError::Connection("unexpected COPY".into()))
                }
                _ => {}
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(rows),
        }
    }

    /// The first column of the first row.
    async fn scalar(&mut self, sql: &str) -> Result<String, AdminError> {
        self.query(sql)
            .await?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .ok_or_else(|| AdminError::Connection(format!("no value from {sql:?}")))
    }

    async fn close(mut self) {
        let mut out = BytesMut::new();
        Terminate.encode(&mut out);
        let _ = super::stream::send(&mut self.up.stream, &out).await;
    }
}

/// A session role that exists; dropping the lease drops the role (in a background task, once
/// the session's backend has ended).
pub struct RoleLease {
    role: String,
    admin: Option<Admin>,
}

impl RoleLease {
    /// The role's name.
    pub fn role(&self) -> &str {
        &self.role
    }
}

impl Drop for RoleLease {
    fn drop(&mut self) {
        let Some(admin) = self.admin.take() else {
            return;
        };
        let role = std::mem::take(&mut self.role);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(%role, "no runtime to drop the session role; the next start sweeps it");
            return;
        };
        cleanups().spawn_on(
            async move {
                let limit = admin.timeout + BACKEND_GONE_WAIT + admin.timeout;
                match tokio::time::timeout(limit, drop_role(&admin, &role)).await {
                    Ok(Ok(())) => tracing::info!(%role, target = %admin.target.name, "session role dropped"),
                    Ok(Err(e)) => tracing::error!(%role, target = %admin.target.name, error = %e, "cannot drop the session role; it expires by itself and the next start sweeps it"),
                    Err(_) => tracing::error!(%role, target = %admin.target.name, "dropping the session role timed out; the next start sweeps it"),
                }
            },
            &runtime,
        );
    }
}

/// Waits for `role`'s backends to end (terminating them after [`BACKEND_GONE_WAIT`]), then
/// drops it.
async fn drop_role(admin: &Admin, role: &str) -> Result<(), String> {
    let mut s = admin.session().await.map_err(|e| e.to_string())?;
    let lit = quote_literal(role);
    let count = format!("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE usename = {lit}");
    let deadline = tokio::time::Instant::now() + BACKEND_GONE_WAIT;
    loop {
        let n = s.scalar(&count).await.map_err(|e| e.to_string())?;
        if n == "0" {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            // Needs pg_signal_backend (or superuser); without it the drop below still runs.
            if let Err(e) = s
                .query(&format!("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = {lit}"))
                .await
            {
                tracing::warn!(%role, error = %e, "cannot terminate the session role's backend");
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let result = s
        .query(&format!("DROP ROLE IF EXISTS {}", quote_ident(role)))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    s.close().await;
    result
}

/// Creates the session role for `login`, records it, and logs in as it.
pub async fn open(
    admin: Admin,
    client_params: &[(String, String)],
    login: &SessionLogin<'_>,
) -> Result<Upstream, UpstreamError> {
    let target = &admin.target;
    let Some(mapped) = admin
        .settings
        .mapped_role(login.identity)
        .map(str::to_string)
    else {
        return Err(admin.login_failed(format!(
            "identity {} has no role in the role_map of target {}",
            login.identity, target.name
        )));
    };
    let Some(role) = role_name(login.session_id) else {
        return Err(admin.login_failed("session id unusable as a role name".into()));
    };
    let valid_for = admin.settings.valid_for.as_secs().max(1);
    login
        .record_issue(
            target,
            "ephemeral_role",
            &role,
            format!("CREATE ROLE {role} LOGIN IN ROLE {mapped} VALID UNTIL now() + {valid_for}s"),
        )
        .await
        .map_err(|e| admin.login_failed(e.to_string()))?;
    let result = create_and_login(&admin, &role, &mapped, valid_for, client_params, login).await;
    match &result {
        Ok((_, until)) => {
            login
                .record_outcome(Ok(format!(
                    "role {role} member of {mapped} valid until {until}"
                )))
                .await
        }
        Err(e) => login.record_outcome(Err(e.to_string())).await,
    }
    result.map(|(up, _)| up)
}

async fn create_and_login(
    admin: &Admin,
    role: &str,
    mapped: &str,
    valid_for: u64,
    client_params: &[(String, String)],
    login: &SessionLogin<'_>,
) -> Result<(Upstream, String), UpstreamError> {
    let failed = |what: &str, e: AdminError| admin.login_failed(format!("{what}: {e}"));
    let mut s = admin.session().await?;
    // The server's clock decides expiry; ISO 8601 in UTC reads back whatever the DateStyle.
    let until = s
        .scalar(&format!(
            "SELECT to_char((now() + make_interval(secs => {valid_for})) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || 'Z'"
        ))
        .await
        .map_err(|e| failed("cannot read the server's clock", e))?;
    let password = random_password();
    let verifier = protocol::postgres::scram::make_verifier(&password, SCRAM_ITERATIONS)
        .map_err(|e| admin.login_failed(format!("cannot make a verifier: {e}")))?;
    let sql = create_role_sql(
        role,
        mapped,
        &verifier,
        &until,
        &marker(&admin.settings.node, run_id(), login.session_id),
    );
    s.query(&sql)
        .await
        .map_err(|e| failed("cannot create the session role (the admin role needs CREATEROLE, and on PostgreSQL 16+ ADMIN OPTION on the mapped role)", e))?;
    s.close().await;
    // From here on the role exists: any failure below drops it with the lease.
    let lease = RoleLease {
        role: role.to_string(),
        admin: Some(admin.clone()),
    };
    let mut up = upstream::connect_as(
        &admin.target,
        role,
        &password,
        &admin.database,
        client_params,
        admin.max_frame,
    )
    .await?;
    up.ephemeral_role = Some(lease);
    tracing::info!(%role, %mapped, %until, "session role created");
    Ok((up, until))
}

/// The statements that create a session role (one implicit transaction: all or nothing).
fn create_role_sql(role: &str, mapped: &str, verifier: &str, until: &str, comment: &str) -> String {
    let (r, m) = (quote_ident(role), quote_ident(mapped));
    format!(
        "CREATE ROLE {r} WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
         NOBYPASSRLS CONNECTION LIMIT 1 PASSWORD {pw} VALID UNTIL {until} IN ROLE {m}; \
         COMMENT ON ROLE {r} IS {comment}; \
         ALTER ROLE {r} SET role = {mapped_lit}",
        pw = quote_literal(verifier),
        until = quote_literal(until),
        comment = quote_literal(comment),
        mapped_lit = quote_literal(mapped),
    )
}

/// 32 random bytes, base64url: never shown, never stored, sent only inside SCRAM.
fn random_password() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    b.fill(0);
    text
}

/// At start: for every `ephemeral_role` target, drops the session roles this node left from
/// earlier runs. Failures are logged (a target may be down); the roles expire by themselves.
pub async fn sweep_leftovers(config: Arc<Config>) {
    for target in config.targets.values() {
        let UpstreamAuth::EphemeralRole(settings) = &target.upstream_auth else {
            continue;
        };
        let password = match target.credential.as_ref().map(|c| c.load()) {
            Some(Ok(s)) => s.expose_str().map(str::to_string).unwrap_or_default(),
            Some(Err(e)) => {
                tracing::error!(target = %target.name, error = %e, "sweep: admin credential unavailable");
                continue;
            }
            None => continue,
        };
        let database = target.database.clone().unwrap_or_else(|| "postgres".into());
        let admin = Admin::new(
            target,
            settings,
            &password,
            &database,
            config.limits.max_frame_bytes,
            config.limits.login_timeout,
        );
        let limit = config.limits.login_timeout * 4 + BACKEND_GONE_WAIT;
        match tokio::time::timeout(limit, sweep_target(&admin)).await {
            Ok(Ok(dropped)) if dropped.is_empty() => {
                tracing::debug!(target = %target.name, "sweep: no leftover session roles")
            }
            Ok(Ok(dropped)) => {
                tracing::info!(target = %target.name, roles = ?dropped, "sweep: dropped leftover session roles")
            }
            Ok(Err(e)) => {
                tracing::warn!(target = %target.name, error = %e, "sweep of leftover session roles failed")
            }
            Err(_) => {
                tracing::warn!(target = %target.name, "sweep of leftover session roles timed out")
            }
        }
    }
}

async fn sweep_target(admin: &Admin) -> Result<Vec<String>, String> {
    let mut s = admin.session().await.map_err(|e| e.to_string())?;
    let rows = s
        .query(&format!(
            "SELECT r.rolname, d.description FROM pg_catalog.pg_roles r \
             JOIN pg_catalog.pg_shdescription d \
               ON d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_authid'::pg_catalog.regclass \
             WHERE r.rolname LIKE {}",
            quote_literal(&format!("{}%", ROLE_PREFIX.replace('_', "\\_")))
        ))
        .await
        .map_err(|e| e.to_string())?;
    s.close().await;
    let mut dropped = Vec::new();
    for row in rows {
        let (Some(Some(name)), Some(Some(comment))) = (row.first(), row.get(1)) else {
            continue;
        };
        if !swept_by(comment, &admin.settings.node, run_id()) {
            continue;
        }
        drop_role(admin, name).await?;
        dropped.push(name.clone());
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_cannot_break_out() {
        assert_eq!(quote_ident("app_rw"), "\"app_rw\"");
        assert_eq!(
            quote_ident("x\"; DROP ROLE postgres; --"),
            "\"x\"\"; DROP ROLE postgres; --\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(
            quote_literal("'; DROP ROLE postgres; --"),
            "'''; DROP ROLE postgres; --'"
        );
        let sql = create_role_sql(
            "bastion_00ff",
            "evil\"; ALTER ROLE admin SUPERUSER; --",
            "SCRAM-SHA-256$4096:c2FsdA==$a:b",
            "2030-01-01T00:00:00Z",
            &marker("node 'one'", "r1", "00ff"),
        );
        // The hostile role name stays inside one quoted identifier (twice: IN ROLE and the
        // default role literal), and the node name inside the comment literal.
        assert!(
            sql.contains("IN ROLE \"evil\"\"; ALTER ROLE admin SUPERUSER; --\";"),
            "{sql}"
        );
        assert!(
            sql.contains("SET role = 'evil\"; ALTER ROLE admin SUPERUSER; --'"),
            "{sql}"
        );
        assert!(sql.contains("node=node ''one'''"), "{sql}");
    }

    #[test]
    fn role_names_come_only_from_bastion_session_ids() {
        assert_eq!(
            role_name("0123456789abcdef").as_deref(),
            Some("bastion_0123456789abcdef")
        );
        for bad in [
            "",
            "ABC",
            "12 34",
            "x\"y",
            "0123456789abcdef0123456789abcdef0",
        ] {
            assert_eq!(role_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sweep_takes_this_nodes_roles_from_earlier_runs_only() {
        let m = marker("node one", "run-a", "00ff");
        assert_eq!(parse_marker(&m), Some(("run-a", "node one")));
        assert!(swept_by(&m, "node one", "run-b"));
        assert!(!swept_by(&m, "node one", "run-a"), "this run's role");
        assert!(!swept_by(&m, "node", "run-b"), "another node's role");
        assert!(!swept_by(&m, "node one two", "run-b"));
        assert!(!swept_by("a role someone commented", "node one", "run-b"));
        assert!(!swept_by(
            &format!("{MARKER} run=x node=node one"),
            "node one",
            "run-b"
        ));
    }

    #[test]
    fn passwords_are_random_and_long() {
        let (a, b) = (random_password(), random_password());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
