//! The admin API: HTTP/1.1 + JSON (axum) on a Unix socket created mode 0600. Every endpoint but
//! `/v1/healthz` and `/v1/readyz` needs `Authorization: Bearer <token>`; a missing or bad token
//! is 401 and a token of the wrong scope 403, both with a bare `{"error": ...}` that tells nothing
//! more. `approve` tokens reach only the approval endpoints; the approver is always the token's
//! user. Errors are `{"error": "..."}` with 404 (unknown), 409 (resolved, expired, mismatched)
//! or 403 (not allowed to act on this request).
use super::tokens::{Caller, Scope, TokenStore};
use crate::broker::{rfc3339, Broker, BrokerError};
use crate::entry::lockout::Lockouts;
use crate::metrics::Metrics;
use crate::sessions::SessionRegistry;
use axum::extract::{FromRequestParts, Path as UrlPath, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

/// Reloads policies; `Ok` carries a summary, `Err` what is wrong (the old policies stay).
pub type ReloadFn = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// What the handlers reach.
#[derive(Clone)]
pub struct AdminState {
    /// Step-up requests.
    pub broker: Arc<Broker>,
    /// Live sessions.
    pub sessions: Arc<SessionRegistry>,
    /// Entry lockouts.
    pub lockouts: Arc<Lockouts>,
    /// API tokens.
    pub tokens: Arc<TokenStore>,
    /// Policy reload.
    pub reload: ReloadFn,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// A live session as `GET /v1/sessions` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// Session id.
    pub id: String,
    /// Identity.
    pub identity: String,
    /// Target.
    pub target: String,
    /// `postgres` or `ssh`.
    pub protocol: String,
    /// Client address.
    pub peer: String,
    /// Start (RFC 3339).
    pub started: String,
    /// Bytes from the client.
    pub bytes_in: u64,
    /// Bytes to the client.
    pub bytes_out: u64,
    /// Last decided action (redacted).
    pub last_action: Option<String>,
}

/// Binding the admin socket failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Another process answers on the socket.
    #[error("admin socket {0} is in use by another running bastion")]
    InUse(PathBuf),
    /// Something that is not a socket sits at the path.
    #[error(
        "admin socket path {0} exists and is not a socket; remove it or set server.admin_socket"
    )]
    NotASocket(PathBuf),
    /// An OS error.
    #[error("admin socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// An error response: `{"error": message}` with `status`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> ApiError {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::CONFLICT);
        ApiError::new(status, e.to_string())
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized")
}

fn forbidden() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden")
}

/// An authenticated caller (any scope).
struct Authed(Caller);

impl FromRequestParts<AdminState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?
            .to_string();
        let tokens = state.tokens.clone();
        let caller = tokio::task::spawn_blocking(move || tokens.authenticate(&presented))
            .await
            .ok()
            .flatten()
            .ok_or_else(unauthorized)?;
        Ok(Authed(caller))
    }
}

/// An authenticated caller with `admin` scope.
struct Admin(Caller);

impl FromRequestParts<AdminState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let Authed(caller) = Authed::from_request_parts(parts, state).await?;
        if caller.scope != Scope::Admin {
            return Err(forbidden());
        }
        Ok(Admin(caller))
    }
}

/// The `/v1` routes over `state`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/v1/healthz", get(healthz))
        .route("/v1/readyz", get(readyz))
        .route("/v1/metrics", get(metrics))
        .route("/v1/approvals", get(list_approvals))
        .route("/v1/approvals/{id}", get(show_approval))
        .route("/v1/approvals/{id}/approve", post(approve))
        .route("/v1/approvals/{id}/deny", post(deny))
        .route("/v1/sessions", get(list_sessions))
        .route("/v1/sessions/{id}/kill", post(kill_session))
        .route("/v1/lockouts", get(list_lockouts))
        .route("/v1/lockouts/clear", post(clear_lockouts))
        .route("/v1/policies/reload", post(reload_policies))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if state.broker.is_shut_down() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "shutting down" })),
        )
            .into_response()
    } else {
        Json(serde_json::json!({ "status": "ready" })).into_response()
    }
}

async fn metrics(_: Admin, State(state): State<AdminState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    all: bool,
}

async fn list_approvals(
    _: Authed,
    State(state): State<AdminState>,
    Query(q): Query<ListQuery>,
) -> Json<Vec<crate::broker::ApprovalView>> {
    Json(state.broker.list(q.all))
}

async fn show_approval(
    _: Authed,
    State(state): State<AdminState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<crate::broker::ApprovalView>, ApiError> {
    state
        .broker
        .get(&id)
        .map(Json)
        .ok_or_else(|| BrokerError::NotFound(id).into())
}

/// `POST /v1/approvals/{id}/approve` body (optional).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ApproveBody {
    /// Hex digest of the action the approver was shown; approve only if it still matches.
    #[serde(default)]
    pub digest: Option<String>,
}

/// `POST /v1/approvals/{id}/deny` body.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DenyBody {
    /// Why (shown to the requester).
    #[serde(default)]
    pub reason: Option<String>,
}

fn parse_body<T: Default + serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad json body: {e}")))
}

async fn approve(
    Authed(caller): Authed,
    State(state): State<AdminState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Json<crate::broker::ApprovalView>, ApiError> {
    let body: ApproveBody = parse_body(&body)?;
    let digest = match body.digest {
        None => None,
        Some(hex_digest) => Some(
            hex::decode(hex_digest.trim())
                .ok()
                .and_then(|d| <[u8; 32]>::try_from(d).ok())
                .ok_or_else(|| {
                    ApiError::new(StatusCode::BAD_REQUEST, "digest must be 64 hex characters")
                })?,
        ),
    };
    let result = state.broker.approve(&id, &caller.user, digest);
    tracing::info!(request = %id, approver = %caller.user, token = %caller.token_id, ok = result.is_ok(), "approve");
    Ok(Json(result?))
}

async fn deny(
    Authed(caller): Authed,
    State(state): State<AdminState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Json<crate::broker::ApprovalView>, ApiError> {
    let body: DenyBody = parse_body(&body)?;
    let result = state
        .broker
        .deny(&id, &caller.user, body.reason.as_deref().unwrap_or(""));
    tracing::info!(request = %id, by = %caller.user, token = %caller.token_id, ok = result.is_ok(), "deny");
    Ok(Json(result?))
}

async fn list_sessions(_: Admin, State(state): State<AdminState>) -> Json<Vec<SessionView>> {
    let views = state
        .sessions
        .list()
        .iter()
        .map(|s| SessionView {
            id: s.id.clone(),
            identity: s.identity.clone(),
            target: s.target.clone(),
            protocol: s.protocol.to_string(),
            peer: s.peer.to_string(),
            started: rfc3339(s.started),
            bytes_in: s.bytes_in.load(Ordering::Relaxed),
            bytes_out: s.bytes_out.load(Ordering::Relaxed),
            last_action: s.last_action.lock().ok().and_then(|g| g.clone()),
        })
        .collect();
    Json(views)
}

async fn kill_session(
    Admin(caller): Admin,
    State(state): State<AdminState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let reason = format!("killed by {} through the admin api", caller.user);
    if state.sessions.kill(&id, &reason) {
        tracing::info!(session = %id, by = %caller.user, "session killed");
        Ok(Json(serde_json::json!({ "killed": id })))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no live session {id}"),
        ))
    }
}

async fn list_lockouts(
    _: Admin,
    State(state): State<AdminState>,
) -> Json<Vec<crate::entry::lockout::LockoutStatus>> {
    Json(state.lockouts.list())
}

async fn clear_lockouts(
    Admin(caller): Admin,
    State(state): State<AdminState>,
) -> Json<serde_json::Value> {
    let cleared = state.lockouts.clear();
    tracing::info!(by = %caller.user, cleared, "lockouts cleared");
    Json(serde_json::json!({ "cleared": cleared }))
}

async fn reload_policies(
    Admin(caller): Admin,
    State(state): State<AdminState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let reload = state.reload.clone();
    let result = tokio::task::spawn_blocking(move || reload())
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "policy reload failed"))?;
    tracing::info!(by = %caller.user, ok = result.is_ok(), "policy reload");
    match result {
        Ok(message) => Ok(Json(serde_json::json!({ "message": message }))),
        Err(message) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)),
    }
}

/// A bound admin socket, not yet serving.
#[derive(Debug)]
pub struct AdminListener {
    listener: UnixListener,
    path: PathBuf,
}

impl AdminListener {
    /// Binds `socket` (mode 0600), removing a stale socket left by a previous run; refuses when
    /// another process still answers there. Call inside a tokio runtime.
    pub fn bind(socket: &Path) -> Result<AdminListener, AdminError> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let io = |source| AdminError::Io {
            path: socket.to_path_buf(),
            source,
        };
        if let Ok(meta) = std::fs::symlink_metadata(socket) {
            if !meta.file_type().is_socket() {
                return Err(AdminError::NotASocket(socket.to_path_buf()));
            }
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Err(AdminError::InUse(socket.to_path_buf()));
            }
            std::fs::remove_file(socket).map_err(io)?;
        }
        if let Some(parent) = socket.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let listener = UnixListener::bind(socket).map_err(io)?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        Ok(AdminListener {
            listener,
            path: socket.to_path_buf(),
        })
    }

    /// Serves until `shutdown` fires, then removes the socket file.
    pub async fn run(
        self,
        state: AdminState,
        shutdown: CancellationToken,
    ) -> Result<(), AdminError> {
        tracing::info!(socket = %self.path.display(), "admin api ready");
        let served = axum::serve(self.listener, router(state))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        let _ = std::fs::remove_file(&self.path);
        served.map_err(|source| AdminError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Binds `socket` and serves the admin API until `shutdown` fires.
pub async fn serve_admin(
    socket: &Path,
    state: AdminState,
    shutdown: CancellationToken,
) -> Result<(), AdminError> {
    AdminListener::bind(socket)?.run(state, shutdown).await
}
