//! A minimal HTTP/1.1 client over any byte stream (the admin socket or TLS for the CLI, TCP or
//! TLS for webhooks): one request per connection, the whole body read into memory. Built on
//! hyper's connection API so framing (chunked bodies, keep-alive headers) is handled by a real
//! implementation. [`HttpUrl`] parses the `http(s)://` URLs both use.
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
    #[error("unsupported url {0:?}: expected https://host[:port]/path (or http:// for loopback)")]
    Url(String),
    /// The TLS handshake failed (certificate not trusted, wrong name, not TLS at all).
    #[error("tls with {target} failed: {source}")]
    Tls {
        /// What we tried to reach.
        target: String,
        /// The handshake error.
        source: std::io::Error,
    },
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

/// An `http://` or `https://` URL split into what a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https://`: the request goes over TLS.
    pub tls: bool,
    /// The host alone (brackets of an IPv6 literal removed): the TLS server name.
    pub host: String,
    /// `host:port` to connect to (port 80 or 443 when absent).
    pub authority: String,
    /// The `Host` header value (as written).
    pub host_header: String,
    /// Path and query (`/` when absent).
    pub path: String,
}

impl HttpUrl {
    /// Parses `http[s]://host[:port][/path]`; anything else (other schemes, credentials in the
    /// URL, no host, a bad port) is refused.
    pub fn parse(url: &str) -> Result<HttpUrl, HttpError> {
        let bad = || HttpError::Url(url.to_string());
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad());
        };
        let (authority_text, path) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        if authority_text.is_empty() || authority_text.contains('@') {
            return Err(bad());
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority_text.strip_prefix('[') {
            let (inside, after) = v6.split_once(']').ok_or_else(bad)?;
            inside.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            let port = match after {
                "" => default_port,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(bad)?,
            };
            (inside.to_string(), port)
        } else {
            match authority_text.split_once(':') {
                None => (authority_text.to_string(), default_port),
                Some((h, p)) => (h.to_string(), p.parse::<u16>().map_err(|_| bad())?),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c));
        if !host_ok || port == 0 {
            return Err(bad());
        }
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(HttpUrl {
            tls,
            host,
            authority,
            host_header: authority_text.to_string(),
            path,
        })
    }

    /// Whether the host is this machine: a loopback IP literal (127.0.0.0/8, `::1`) or
    /// `localhost`.
    pub fn is_loopback(&self) -> bool {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => self.host.eq_ignore_ascii_case("localhost"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_and_https_urls_and_refuses_others() {
        let u = HttpUrl::parse("http://127.0.0.1:9000/hooks/slack?x=1").unwrap();
        assert!(!u.tls);
        assert_eq!(u.authority, "127.0.0.1:9000");
        assert_eq!(u.host_header, "127.0.0.1:9000");
        assert_eq!(u.path, "/hooks/slack?x=1");
        let u = HttpUrl::parse("http://hooks.internal").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("hooks.internal:80", "/")
        );
        let u = HttpUrl::parse("https://hooks.slack.com/services/T0/B0").unwrap();
        assert!(u.tls);
        assert_eq!(u.host, "hooks.slack.com");
        assert_eq!(u.authority, "hooks.slack.com:443");
        assert_eq!(u.path, "/services/T0/B0");
        let u = HttpUrl::parse("https://[::1]:8443?q").unwrap();
        assert_eq!(
            (u.host.as_str(), u.authority.as_str()),
            ("::1", "[::1]:8443")
        );
        assert_eq!(u.path, "/?q");
        for bad in [
            "ftp://x",
            "http://",
            "https://",
            "http://user:pw@host/",
            "https://host:notaport/",
            "https://host:0/",
            "https://host:70000/",
            "https://[::1/",
            "https://[zz]/",
            "https://ho st/",
            "https://host\\evil/",
            "hooks",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_means_loopback_literals_and_localhost_only() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://127.8.9.10/",
            "http://[::1]:80/",
            "http://localhost:8080/",
            "http://LOCALHOST/",
        ] {
            assert!(HttpUrl::parse(url).unwrap().is_loopback(), "{url}");
        }
        for url in [
            "http://10.0.0.1/",
            "http://localhost.evil.example/",
            "http://127.0.0.1.nip.io/",
            "http://[::2]/",
            "http://0.0.0.0/",
        ] {
            assert!(!HttpUrl::parse(url).unwrap().is_loopback(), "{url}");
        }
    }
}
