//! The admin API client the CLI uses: one HTTP/1.1 request per connection over the Unix socket
//! or, with `--admin-url https://...`, over TCP with TLS (certificate and host name verified
//! against `--ca` or the system roots), bearer token attached, JSON in and out. A non-2xx answer
//! becomes [`ClientError::Api`] carrying the status and the server's `error` text.
use super::http_client::{self, HttpError, HttpResponse, HttpUrl};
use super::tls_client::{self, TlsSetupError};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Method;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot reach the admin api at {path}: {source} (is `bastion serve` running?)")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The exchange failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The server refused.
    #[error("{message} (http {status})")]
    Api {
        /// Status code.
        status: u16,
        /// The server's `error` text.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from the admin api: {0}")]
    Decode(String),
    /// `--admin-url` is not an `https://host:port` URL.
    #[error(
        "admin url {0:?}: expected https://host:port (the admin api speaks only tls over tcp)"
    )]
    Url(String),
    /// The trust roots for the TLS connection could not be loaded.
    #[error("admin api tls: {0}")]
    Tls(#[from] TlsSetupError),
}

/// Where the API is.
#[derive(Clone)]
enum Endpoint {
    Unix(PathBuf),
    Tls {
        url: HttpUrl,
        config: Arc<rustls::ClientConfig>,
    },
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tls { url, .. } => write!(f, "https://{}", url.authority),
        }
    }
}

/// A client for one endpoint and token.
#[derive(Debug, Clone)]
pub struct AdminClient {
    endpoint: Endpoint,
    token: Option<String>,
}

impl AdminClient {
    /// A client of the API at `socket`, authenticating with `token` when given.
    pub fn new(socket: &Path, token: Option<String>) -> AdminClient {
        AdminClient {
            endpoint: Endpoint::Unix(socket.to_path_buf()),
            token,
        }
    }

    /// A client of the API's TLS listener at `url` (`https://host:port`), trusting only the
    /// certificates in the PEM file `ca` when given, else the system roots.
    pub fn tls(
        url: &str,
        ca: Option<&Path>,
        token: Option<String>,
    ) -> Result<AdminClient, ClientError> {
        let parsed = HttpUrl::parse(url).map_err(|_| ClientError::Url(url.to_string()))?;
        if !parsed.tls || parsed.path != "/" {
            return Err(ClientError::Url(url.to_string()));
        }
        let config = tls_client::client_config(tls_client::roots(ca)?)?;
        Ok(AdminClient {
            endpoint: Endpoint::Tls {
                url: parsed,
                config,
            },
            token,
        })
    }

    /// The client the CLI's options ask for: `admin_url` (with `ca`) when given, else the
    /// Unix socket `socket`, else the config's `server.admin_socket`.
    pub fn from_cli(
        config: &Path,
        socket: Option<&Path>,
        admin_url: Option<&str>,
        ca: Option<&Path>,
        token: String,
    ) -> anyhow::Result<AdminClient> {
        if let Some(url) = admin_url {
            return AdminClient::tls(url, ca, Some(token))
                .map_err(|e| crate::exit::UsageError(e.to_string()).into());
        }
        let socket = match socket {
            Some(s) => s.to_path_buf(),
            None => crate::config::load(config)?.server.admin_socket,
        };
        Ok(AdminClient::new(&socket, Some(token)))
    }

    /// Sends one request; any status is returned as is.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<HttpResponse, ClientError> {
        let host = match &self.endpoint {
            Endpoint::Unix(_) => "bastion",
            Endpoint::Tls { url, .. } => url.host_header.as_str(),
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host);
        if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let bytes = match body {
            Some(v) => {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(&v).map_err(|e| ClientError::Decode(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        let request = req.body(Full::new(bytes)).map_err(HttpError::from)?;
        match &self.endpoint {
            Endpoint::Unix(socket) => {
                let stream = tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(|source| ClientError::Connect {
                        path: socket.clone(),
                        source,
                    })?;
                Ok(http_client::send(stream, request).await?)
            }
            Endpoint::Tls { url, config } => {
                let stream = tls_client::connect(config.clone(), url).await?;
                Ok(http_client::send(stream, request).await?)
            }
        }
    }

    /// Sends one request and decodes a 2xx JSON answer; other statuses become errors.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ClientError> {
        let resp = self.checked(method, path, body).await?;
        serde_json::from_slice(&resp.body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Sends one request; a non-2xx answer becomes [`ClientError::Api`].
    pub async fn checked(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<HttpResponse, ClientError> {
        let resp = self.raw(method, path, body).await?;
        if (200..300).contains(&resp.status) {
            return Ok(resp);
        }
        let message = serde_json::from_slice::<serde_json::Value>(&resp.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&resp.body).into_owned());
        Err(ClientError::Api {
            status: resp.status,
            message,
        })
    }
}
