//! The SSH path (issue 7): a russh server that routes `identity@target` user names, proves the
//! identity (configured public keys, OpenSSH user certificates from a trusted CA), decides
//! `connect`, logs in to the target with a key only the bastion holds after checking the
//! target's pinned host key, and then decides and records every action inside the session
//! before the target sees it: exec lines, classic scp, each SFTP file operation, forwards.
//!
//! Parts: `keys` (host and client keys, generated on first use and persisted; the user CA
//! list), `user_auth` (key and certificate checks), `connection` (the russh handler: entry,
//! session rows, channel dispatch), `upstream` (the pinned client connection), `action_gate`
//! (decide → journal → step-up for one session), `session_channel` (exec/shell relay with flow
//! control), `scp_command` (recognising `scp -t/-f`), `sftp_proxy` (per-request decisions,
//! per-file records), `forward` (`-L` and `-R`), `shell_relay` (pty shells: each command line
//! read from the screen at Enter and decided, the terminal recorded).
mod action_gate;
pub mod cert_authority;
mod connection;
mod forward;
pub mod keys;
mod scp_command;
mod session_channel;
mod sftp_proxy;
mod shell_relay;
mod upstream;
pub mod user_auth;

pub use action_gate::{Admission, Finished, SessionGate, SshAction};
pub use connection::serve_connection;
pub use session_channel::REFUSED_EXIT_STATUS;
pub use upstream::UpstreamError;

use crate::broker::Broker;
use crate::config::Config;
use crate::entry::Lockouts;
use crate::sessions::SessionRegistry;
use policies::engine::Engine;
use russh::keys::{PrivateKey, PublicKey};
use std::sync::Arc;
use std::time::Duration;

/// The current policy engine (hot reload swaps what this returns).
pub type EngineSource = Arc<dyn Fn() -> Arc<Engine> + Send + Sync>;

/// Default of `[limits] max_channels_per_connection` (OpenSSH `MaxSessions` is 10).
pub const MAX_CHANNELS_PER_CONNECTION: usize = 10;

/// Everything the SSH listener needs, built once at start.
pub struct SshServices {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Live sessions (admin list / kill).
    pub sessions: Arc<SessionRegistry>,
    /// Failed-login counting.
    pub lockouts: Arc<Lockouts>,
    /// The audit trail.
    pub recorder: recorder::Recorder,
    /// The policy engine.
    pub engine: EngineSource,
    /// Step-up broker; `None` refuses every step-up.
    pub broker: Option<Arc<Broker>>,
    /// Login tokens, password + one-time code, entry risk signals (shared with PostgreSQL).
    pub entry_proofs: Arc<crate::entry::EntryProofs>,
    /// russh server settings (host key, rejection timing, limits).
    server_config: Arc<russh::server::Config>,
    /// The point-of-use key the bastion logs in to targets with.
    client_key: Arc<PrivateKey>,
    /// Trusted user CAs.
    user_cas: Vec<PublicKey>,
}

/// Accepts SSH connections until `shutdown`, one task per connection on `tracker`, each
/// holding a permit of `permits` (taken before accept).
pub async fn run_listener(
    listener: tokio::net::TcpListener,
    services: Arc<SshServices>,
    permits: Arc<tokio::sync::Semaphore>,
    shutdown: tokio_util::sync::CancellationToken,
    tracker: tokio_util::task::TaskTracker,
) {
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "ssh accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (services, shutdown) = (services.clone(), shutdown.clone());
        tracker.spawn(async move {
            let _permit = permit;
            serve_connection(stream, peer, services, shutdown).await;
        });
    }
}

/// A key or CA file problem at start.
pub type SetupError = keys::KeyError;

impl SshServices {
    /// Loads (or generates) the host and client keys under `<state_dir>/ssh/` and the user CA
    /// list, and prepares the server settings.
    pub fn new(
        config: Arc<Config>,
        sessions: Arc<SessionRegistry>,
        lockouts: Arc<Lockouts>,
        recorder: recorder::Recorder,
        engine: EngineSource,
        broker: Option<Arc<Broker>>,
    ) -> Result<SshServices, SetupError> {
        let dir = keys::ssh_state_dir(&config.server.state_dir);
        let host_key = keys::load_or_generate(&dir.join(keys::HOST_KEY_FILE), "bastion host key")?;
        let client_key =
            keys::load_or_generate(&dir.join(keys::CLIENT_KEY_FILE), "bastion upstream key")?;
        let user_cas = keys::configured_user_cas(&config.server)?;
        let entry_proofs = crate::entry::EntryProofs::open(&config.server.state_dir)
            .map(Arc::new)
            .map_err(|e| keys::KeyError::Io {
                what: "open the token key in",
                path: config.server.state_dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let server_config = russh::server::Config {
            server_id: russh::SshId::Standard("SSH-2.0-bastion".into()),
            // Password carries login tokens; keyboard-interactive carries tokens and password +
            // one-time code (`user_auth`).
            methods: russh::MethodSet::from(
                &[
                    russh::MethodKind::PublicKey,
                    russh::MethodKind::KeyboardInteractive,
                    russh::MethodKind::Password,
                ][..],
            ),
            // Every rejection takes the same time, known identity or not.
            auth_rejection_time: Duration::from_millis(300),
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![host_key],
            inactivity_timeout: Some(config.limits.idle_timeout),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            max_auth_attempts: 6,
            window_size: 2 * 1024 * 1024,
            maximum_packet_size: 32768,
            channel_buffer_size: 64,
            nodelay: true,
            ..Default::default()
        };
        Ok(SshServices {
            config,
            sessions,
            lockouts,
            recorder,
            engine,
            broker,
            server_config: Arc::new(server_config),
            client_key: Arc::new(client_key),
            user_cas,
            entry_proofs,
        })
    }

    /// Builds the services from the running bastion's shared state (engine hot reload kept).
    pub fn from_shared(
        shared: &Arc<crate::state::Shared>,
        broker: Option<Arc<Broker>>,
    ) -> Result<SshServices, SetupError> {
        let source = shared.clone();
        let mut services = SshServices::new(
            shared.config.clone(),
            shared.sessions.clone(),
            shared.lockouts.clone(),
            shared.recorder.clone(),
            Arc::new(move || source.engine()),
            broker,
        )?;
        // One set of token use counts, seen sources and used codes for both listeners.
        services.entry_proofs = shared.entry_proofs.clone();
        Ok(services)
    }

    /// The host key's public half (what clients pin).
    pub fn host_public_key(&self) -> Option<&PublicKey> {
        self.server_config.keys.first().map(|k| k.public_key())
    }
}

#[cfg(test)]
mod tests;
