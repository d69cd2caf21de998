//! The server: bind every configured listener up front (an address in use is a usage error,
//! exit 2, before anything starts), accept with a connection semaphore taken *before* accept,
//! one task per connection, and a designed shutdown — one cancellation token, a task tracker,
//! the grace period from config, then the recorder flushed last. `run(shutdown)` takes the
//! shutdown future so tests can trigger it (mini-redis `server::run`).
use crate::config::Config;
use crate::exit::UsageError;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A bound, not yet running, bastion.
pub struct Server {
    config: Arc<Config>,
    postgres: Option<TcpListener>,
    ssh: Option<TcpListener>,
    pg_tls: crate::postgres::tls::ServerTls,
    admin: crate::admin::AdminListener,
    admin_tls: Option<crate::admin::AdminTlsListener>,
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| UsageError(format!("cannot listen for {what} on {addr}: {e}")).into())
}

impl Server {
    /// Prepares directories and binds the listeners.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        for dir in [&config.server.state_dir, &config.server.audit_dir] {
            std::fs::create_dir_all(dir).map_err(|e| {
                UsageError(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        // The TLS identity exists before anything listens: clients may read the generated
        // certificate as soon as the port accepts.
        let pg_tls = crate::postgres::tls::ServerTls::load(&config)
            .map_err(|e| UsageError(format!("{e:#}")))?;
        crate::ssh::cert_authority::prepare(&config).map_err(|e| UsageError(e.to_string()))?;
        let admin = crate::admin::AdminListener::bind(&config.server.admin_socket)
            .map_err(|e| UsageError(format!("admin socket: {e}")))?;
        let admin_tls = crate::admin::AdminTlsListener::from_config(&config)
            .await
            .map_err(|e| UsageError(format!("{e:#}")))?;
        let postgres = match config.server.postgres_listen {
            Some(a) => Some(bind(a, "postgres").await?),
            None => None,
        };
        let ssh = match config.server.ssh_listen {
            Some(a) => Some(bind(a, "ssh").await?),
            None => None,
        };
        Ok(Server {
            config: Arc::new(config),
            postgres,
            ssh,
            pg_tls,
            admin,
            admin_tls,
        })
    }

    /// Runs until `shutdown` resolves, then stops accepting, gives sessions the grace period,
    /// and closes the recorder last so every row of every session is in the trail.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (recorder, recorder_task) =
            recorder::Recorder::open(crate::state::recorder_options(&self.config)?)
                .await
                .map_err(|e| {
                    UsageError(format!(
                        "cannot open the audit trail in {}: {e}",
                        self.config.server.audit_dir.display()
                    ))
                })?;
        let shared = Arc::new(
            crate::state::Shared::new(
                self.config.clone(),
                recorder,
                self.pg_tls,
                cancel.child_token(),
            )
            .map_err(|e| UsageError(format!("{e:#}")))?,
        );
        tracing::info!(policies = shared.engine().policy_count(), "policies loaded");
        let reloader = shared.clone();
        let admin_state = crate::admin::AdminState {
            broker: shared.broker.clone(),
            sessions: shared.sessions.clone(),
            lockouts: shared.lockouts.clone(),
            tokens: Arc::new(crate::admin::TokenStore::in_state_dir(
                &self.config.server.state_dir,
            )),
            reload: Arc::new(move || {
                reloader
                    .reload_policies()
                    .map(|n| format!("{n} policies loaded"))
                    .map_err(|e| e.to_string())
            }),
            metrics: shared.metrics.clone(),
        };
        if let Some(listener) = self.admin_tls {
            let (state, admin_cancel) = (admin_state.clone(), cancel.clone());
            tracker.spawn(async move {
                if let Err(e) = listener.run(state, admin_cancel).await {
                    tracing::error!(error = %e, "admin api over tls stopped");
                }
            });
        }
        let admin_cancel = cancel.clone();
        tracker.spawn(async move {
            if let Err(e) = self.admin.run(admin_state, admin_cancel).await {
                tracing::error!(error = %e, "admin api stopped");
            }
        });
        let ssh_services = match self.ssh {
            Some(_) => Some(Arc::new(
                crate::ssh::SshServices::from_shared(&shared, Some(shared.broker.clone()))
                    .map_err(|e| UsageError(format!("ssh: {e}")))?,
            )),
            None => None,
        };
        let permits = Arc::new(Semaphore::new(self.config.limits.max_connections));
        if let Some(listener) = self.postgres {
            tracing::info!(addr = %listener.local_addr()?, "postgres listener ready");
            tracker.spawn(accept_loop(
                listener,
                Listener::Postgres,
                shared.clone(),
                permits.clone(),
                cancel.clone(),
                tracker.clone(),
            ));
        }
        if let (Some(listener), Some(services)) = (self.ssh, ssh_services) {
            tracing::info!(addr = %listener.local_addr()?, "ssh listener ready");
            tracker.spawn(crate::ssh::run_listener(
                listener,
                services,
                permits.clone(),
                cancel.clone(),
                tracker.clone(),
            ));
        }
        tracker.spawn(reload_on_sighup(shared.clone(), cancel.clone()));
        tracker.spawn(crate::postgres::ephemeral_role::sweep_leftovers(
            self.config.clone(),
        ));
        shutdown.await;
        tracing::info!(grace = ?self.config.server.shutdown_grace, "shutting down: no new connections");
        // Held actions are refused, not left hanging, before sessions are told to end.
        shared.broker.shutdown();
        cancel.cancel();
        tracker.close();
        if tokio::time::timeout(self.config.server.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("grace period over: remaining sessions are dropped");
        }
        crate::postgres::ephemeral_role::finish_cleanups(self.config.server.shutdown_grace).await;
        drop(shared);
        if let Err(e) = recorder_task.shutdown().await {
            tracing::error!(error = %e, "recorder did not close cleanly");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Which protocol a listener speaks (SSH has its own accept loop in `crate::ssh`).
#[derive(Debug, Clone, Copy)]
enum Listener {
    Postgres,
}

/// Reloads policies on SIGHUP and when a policy file changes (polled every 2 s, so no watcher
/// dependency); a set that does not validate is refused and the old one stays in force.
async fn reload_on_sighup(shared: Arc<crate::state::Shared>, cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    let files: Vec<std::path::PathBuf> = shared
        .config
        .policies
        .files
        .iter()
        .chain(shared.config.policies.shadow_files.iter())
        .cloned()
        .collect();
    let stamp = |files: &[std::path::PathBuf]| -> Vec<Option<std::time::SystemTime>> {
        files
            .iter()
            .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect()
    };
    let mut seen = stamp(&files);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        let why = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = hup.recv() => "SIGHUP",
            _ = tick.tick() => {
                let now = stamp(&files);
                if now == seen { continue; }
                seen = now;
                "policy file changed"
            }
        };
        match shared.reload_policies() {
            Ok(n) => tracing::info!(policies = n, trigger = why, "policies reloaded"),
            Err(e) => {
                tracing::error!(error = %e, trigger = why, "policy reload refused; the previous policies stay in force")
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    kind: Listener,
    shared: Arc<crate::state::Shared>,
    permits: Arc<Semaphore>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => return,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, ?kind, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        tracker.spawn(async move {
            let _permit = permit;
            match kind {
                Listener::Postgres => crate::postgres::serve_connection(stream, peer, shared).await,
            }
        });
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install SIGTERM handler");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
