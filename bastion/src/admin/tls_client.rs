//! TLS for the bastion's outgoing HTTP (webhooks, the CLI talking to a TCP admin API): which
//! roots to trust, and the rustls client config built on them. Roots are a PEM file the operator
//! names (`approvals.webhook_ca`, `--ca`), which then is the *only* trust, or else the operating
//! system's store (`rustls-native-certs`: the roots the host's package manager keeps current,
//! corporate CAs included, without rebuilding the bastion). Certificates and host names are
//! always verified; there is no switch to turn that off.
use super::http_client::{HttpError, HttpUrl};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why no TLS client could be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file could not be read.
    #[error("cannot read CA file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("CA file {0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    /// The system store is empty or unreadable.
    #[error("no CA certificates found in the system store ({0}); name a CA file instead")]
    NoSystemRoots(String),
    /// rustls refused the configuration.
    #[error("tls setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Every certificate of the PEM file at `path` as a root store.
pub fn roots_from_pem_file(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let pem = std::fs::read(path).map_err(|source| TlsSetupError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsSetupError::NoCertificate(path.to_path_buf()));
    }
    Ok(roots)
}

/// The operating system's roots.
pub fn system_roots() -> Result<RootCertStore, TlsSetupError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "the store is empty".into());
        return Err(TlsSetupError::NoSystemRoots(why));
    }
    Ok(roots)
}

/// The roots of `ca` when given, else the system's.
pub fn roots(ca: Option<&Path>) -> Result<RootCertStore, TlsSetupError> {
    match ca {
        Some(path) => roots_from_pem_file(path),
        None => system_roots(),
    }
}

/// A client config trusting `roots`, speaking HTTP/1.1 (ALPN), TLS 1.2 or 1.3.
pub fn client_config(roots: RootCertStore) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Connects to `url` (TCP, then a TLS handshake verifying the certificate for `url.host`).
pub async fn connect(
    config: Arc<rustls::ClientConfig>,
    url: &HttpUrl,
) -> Result<TlsStream<TcpStream>, HttpError> {
    let tcp = TcpStream::connect(&url.authority)
        .await
        .map_err(|source| HttpError::Connect {
            target: url.authority.clone(),
            source,
        })?;
    let name = ServerName::try_from(url.host.clone()).map_err(|e| HttpError::Tls {
        target: url.authority.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
    })?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|source| HttpError::Tls {
            target: url.authority.clone(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            roots_from_pem_file(&missing),
            Err(TlsSetupError::Read { .. })
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(matches!(
            roots_from_pem_file(&empty),
            Err(TlsSetupError::NoCertificate(_))
        ));
        let good = dir.path().join("ca.pem");
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_string()]).unwrap();
        std::fs::write(&good, ca.cert.pem()).unwrap();
        assert_eq!(roots_from_pem_file(&good).unwrap().len(), 1);
    }
}
