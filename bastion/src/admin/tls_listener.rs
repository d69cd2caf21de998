//! The admin API over TCP with TLS (`[admin] listen`): the same router, tokens and scopes as the
//! Unix socket, for approvers who are not on the bastion's host. TLS is mandatory: a client that
//! does not complete a handshake within [`HANDSHAKE_TIMEOUT`] is dropped and never reaches
//! HTTP, so plaintext requests get no answer. Handshakes run in their own tasks (at most
//! [`MAX_HANDSHAKES`] at once) so a slow or silent client cannot hold up the others; finished
//! streams are handed to axum through a channel.
use super::server::{router, AdminError, AdminState};
use crate::config::{Config, TlsFiles};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Time a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; connections beyond are closed at once.
pub const MAX_HANDSHAKES: usize = 64;

/// A bound TCP admin listener, not yet serving.
pub struct AdminTlsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    addr: SocketAddr,
}

impl std::fmt::Debug for AdminTlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTlsListener")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl AdminTlsListener {
    /// Binds `addr` and serves TLS with `tls`.
    pub async fn bind(
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<AdminTlsListener, AdminError> {
        let io = |source| AdminError::Io {
            path: PathBuf::from(addr.to_string()),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        Ok(AdminTlsListener {
            listener,
            acceptor: TlsAcceptor::from(tls),
            addr,
        })
    }

    /// The listener of `[admin] listen`, with `[admin] tls_cert`/`tls_key` or else the
    /// bastion's own TLS identity; `None` when no TCP listener is configured.
    pub async fn from_config(config: &Config) -> anyhow::Result<Option<AdminTlsListener>> {
        let Some(addr) = config.admin.listen else {
            return Ok(None);
        };
        let identity = match &config.admin.tls {
            Some(files) => identity_from_files(files)?,
            None => crate::tls::TlsIdentity::load_or_generate(config)?,
        };
        let mut server_config = (*identity.server_config()?).clone();
        server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let listener = AdminTlsListener::bind(addr, Arc::new(server_config))
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for the admin api on {addr}: {e}"))?;
        Ok(Some(listener))
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` fires.
    pub async fn run(
        self,
        state: AdminState,
        shutdown: CancellationToken,
    ) -> Result<(), AdminError> {
        let addr = self.addr;
        tracing::info!(%addr, "admin api ready over tls");
        let (tx, rx) = mpsc::channel(MAX_HANDSHAKES);
        let acceptor = tokio::spawn(accept_loop(
            self.listener,
            self.acceptor,
            tx,
            shutdown.clone(),
        ));
        let served = axum::serve(HandshakenStreams { rx, addr }, router(state))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        acceptor.abort();
        served.map_err(|source| AdminError::Io {
            path: PathBuf::from(addr.to_string()),
            source,
        })
    }
}

/// The `[admin] tls_cert`/`tls_key` pair, loaded.
fn identity_from_files(files: &TlsFiles) -> anyhow::Result<crate::tls::TlsIdentity> {
    let pem = std::fs::read(&files.cert)
        .with_context(|| format!("admin.tls_cert: reading {}", files.cert.display()))?;
    let chain = rustls_pemfile::certs(&mut pem.as_slice()).collect::<Result<Vec<_>, _>>()?;
    let key_pem = files
        .key
        .load()
        .map_err(|e| anyhow::anyhow!("admin.tls_key: {e}"))?;
    let key = rustls_pemfile::private_key(&mut key_pem.expose())?
        .ok_or_else(|| anyhow::anyhow!("admin.tls_key: {} holds no PEM private key", files.key))?;
    Ok(crate::tls::TlsIdentity {
        chain,
        key,
        cert_path: files.cert.clone(),
    })
}

/// Accepts TCP connections and runs each TLS handshake in its own task.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    shutdown: CancellationToken,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "admin api: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "admin api: too many tls handshakes in progress; connection closed");
            continue;
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(e)) => tracing::info!(%peer, error = %e, "admin api: tls handshake failed"),
                Err(_) => tracing::info!(%peer, "admin api: tls handshake timed out"),
            }
        });
    }
}

/// TLS streams whose handshake is done, as axum's listener.
struct HandshakenStreams {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for HandshakenStreams {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept loop ended (shutdown): no more connections, ever.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
