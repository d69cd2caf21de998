//! The admin API client the CLI uses: one HTTP/1.1 request per connection over the Unix socket,
//! bearer token attached, JSON in and out. A non-2xx answer becomes [`ClientError::Api`] carrying
//! the status and the server's `error` text.
use super::http_client::{self, HttpError, HttpResponse};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Method;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

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
}

/// A client for one socket and token.
#[derive(Debug, Clone)]
pub struct AdminClient {
    socket: PathBuf,
    token: Option<String>,
}

impl AdminClient {
    /// A client of the API at `socket`, authenticating with `token` when given.
    pub fn new(socket: &Path, token: Option<String>) -> AdminClient {
        AdminClient {
            socket: socket.to_path_buf(),
            token,
        }
    }

    /// Sends one request; any status is returned as is.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<HttpResponse, ClientError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: self.socket.clone(),
                source,
            })?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "bastion");
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
        Ok(http_client::send(stream, request).await?)
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
