//! A minimal HTTP/1.1 client over any byte stream (a Unix socket for the CLI, TCP for webhooks):
//! one request per connection, the whole body read into memory. Built on hyper's connection
//! API so framing (chunked bodies, keep-alive headers) is handled by a real implementation.
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// A response with its body read.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, when given.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// Why a request did not get a response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting failed.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// What we tried to reach.
        target: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The exchange failed.
    #[error("http exchange failed: {0}")]
    Exchange(#[from] hyper::Error),
    /// Building the request failed.
    #[error("bad http request: {0}")]
    Build(#[from] hyper::http::Error),
    /// A URL this client cannot use.
    #[error("unsupported url {0:?}: only http://host[:port]/path is supported")]
    Url(String),
}

/// Sends `request` over `io` and reads the whole response.
pub async fn send<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<HttpResponse, HttpError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let driver = tokio::spawn(async move {
        // The connection's own error surfaces through `send_request` below as well.
        let _ = connection.await;
    });
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.into_body().collect().await?.to_bytes();
    drop(sender);
    driver.abort();
    Ok(HttpResponse {
        status,
        content_type,
        body,
    })
}

/// An `http://` URL split into what a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port` to connect to (port 80 when absent).
    pub authority: String,
    /// The `Host` header value (as written).
    pub host_header: String,
    /// Path and query (`/` when absent).
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path]`; anything else (https, credentials in the URL, no host)
    /// is refused.
    pub fn parse(url: &str) -> Result<HttpUrl, HttpError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| HttpError::Url(url.to_string()))?;
        let (host, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if host.is_empty() || host.contains('@') {
            return Err(HttpError::Url(url.to_string()));
        }
        let has_port = match host.rfind(':') {
            Some(i) => {
                !host.ends_with(']') && host.get(i + 1..).is_some_and(|p| p.parse::<u16>().is_ok())
            }
            None => false,
        };
        let authority = if has_port {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        Ok(HttpUrl {
            authority,
            host_header: host.to_string(),
            path: path.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_urls_and_refuses_others() {
        let u = HttpUrl::parse("http://127.0.0.1:9000/hooks/slack?x=1").unwrap();
        assert_eq!(u.authority, "127.0.0.1:9000");
        assert_eq!(u.host_header, "127.0.0.1:9000");
        assert_eq!(u.path, "/hooks/slack?x=1");
        let u = HttpUrl::parse("http://hooks.internal").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("hooks.internal:80", "/")
        );
        for bad in [
            "https://hooks.slack.com/x",
            "ftp://x",
            "http://",
            "http://user:pw@host/",
            "hooks",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
