//! Live sessions of every protocol: what `bastion sessions list` shows and `kill` ends. A session
//! registers on start and is removed when its [`SessionHandle`] drops; the kill switch is a
//! cancellation token the session loop watches.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// What the registry knows of one live session.
#[derive(Debug)]
pub struct SessionInfo {
    /// Session id (also the `session_id` in the trail).
    pub id: String,
    /// Authenticated identity.
    pub identity: String,
    /// Target name.
    pub target: String,
    /// `postgres` or `ssh`.
    pub protocol: &'static str,
    /// Client address.
    pub peer: SocketAddr,
    /// Start time.
    pub started: SystemTime,
    /// Bytes from the client.
    pub bytes_in: AtomicU64,
    /// Bytes to the client.
    pub bytes_out: AtomicU64,
    /// Text of the last decided action (redacted).
    pub last_action: Mutex<Option<String>>,
    /// Cancelled by `kill` or shutdown.
    pub kill: CancellationToken,
    /// Why it was killed, when it was.
    pub kill_reason: Mutex<Option<String>>,
}

impl SessionInfo {
    /// Adds to the byte counters.
    pub fn count(&self, bytes_in: u64, bytes_out: u64) {
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
    }

    /// Remembers the last action's (redacted) text.
    pub fn set_last_action(&self, text: &str) {
        if let Ok(mut g) = self.last_action.lock() {
            *g = Some(text.chars().take(200).collect());
        }
    }
}

/// All live sessions.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    map: Mutex<HashMap<String, Arc<SessionInfo>>>,
}

/// Membership in the registry; dropping it removes the session.
pub struct SessionHandle {
    registry: Arc<SessionRegistry>,
    /// The session's entry.
    pub info: Arc<SessionInfo>,
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        if let Ok(mut m) = self.registry.map.lock() {
            m.remove(&self.info.id);
        }
    }
}

/// Refusal to open a session.
#[derive(Debug, thiserror::Error)]
#[error("identity {identity} already has {limit} sessions open (limits.max_sessions_per_identity)")]
pub struct TooManySessions {
    /// The identity.
    pub identity: String,
    /// The configured limit.
    pub limit: usize,
}

impl SessionRegistry {
    /// Registers a session unless `identity` is at `limit`; `parent` cancels it on shutdown.
    // Every argument is a column of the registry row; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        self: &Arc<Self>,
        id: String,
        identity: &str,
        target: &str,
        protocol: &'static str,
        peer: SocketAddr,
        limit: usize,
        parent: &CancellationToken,
    ) -> Result<SessionHandle, TooManySessions> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let open = map.values().filter(|s| s.identity == identity).count();
        if open >= limit {
            return Err(TooManySessions {
                identity: identity.to_string(),
                limit,
            });
        }
        let info = Arc::new(SessionInfo {
            id: id.clone(),
            identity: identity.to_string(),
            target: target.to_string(),
            protocol,
            peer,
            started: SystemTime::now(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            last_action: Mutex::new(None),
            kill: parent.child_token(),
            kill_reason: Mutex::new(None),
        });
        map.insert(id, info.clone());
        Ok(SessionHandle {
            registry: self.clone(),
            info,
        })
    }

    /// Snapshot of live sessions, oldest first.
    pub fn list(&self) -> Vec<Arc<SessionInfo>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = map.values().cloned().collect();
        v.sort_by_key(|s| s.started);
        v
    }

    /// Ends a session; false when no such session is live.
    pub fn kill(&self, id: &str, reason: &str) -> bool {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(id) {
            Some(s) => {
                if let Ok(mut r) = s.kill_reason.lock() {
                    *r = Some(reason.to_string());
                }
                s.kill.cancel();
                true
            }
            None => false,
        }
    }
}

/// A new random session id (16 hex characters).
pub fn new_session_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}
