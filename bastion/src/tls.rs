//! The bastion's own TLS identity for PostgreSQL clients: the configured certificate and key, or
//! a self-signed pair generated in the state directory on first start (and reused after).
use crate::config::Config;
use anyhow::{anyhow, Context};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Certificate chain and key, loaded.
pub struct TlsIdentity {
    /// Chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Private key.
    pub key: PrivateKeyDer<'static>,
    /// Where the leaf certificate came from (for logs and client instructions).
    pub cert_path: PathBuf,
}

impl TlsIdentity {
    /// Loads the configured pair, or the generated one (creating it if missing).
    pub fn load_or_generate(config: &Config) -> anyhow::Result<TlsIdentity> {
        if let Some(files) = &config.server.tls {
            let pem = std::fs::read(&files.cert)
                .with_context(|| format!("reading {}", files.cert.display()))?;
            let key = files.key.load().map_err(|e| anyhow!(e))?;
            return Self::from_pem(&pem, key.expose(), files.cert.clone());
        }
        let dir = config.server.state_dir.join("tls");
        let cert_path = dir.join("bastion.crt");
        let key_path = dir.join("bastion.key");
        if !cert_path.exists() || !key_path.exists() {
            generate(&dir, &cert_path, &key_path)?;
            tracing::info!(cert = %cert_path.display(), "no tls_cert configured: generated a self-signed certificate for the PostgreSQL listener (clients: sslrootcert={})", cert_path.display());
        }
        let pem = std::fs::read(&cert_path)
            .with_context(|| format!("reading {}", cert_path.display()))?;
        let key =
            std::fs::read(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
        Self::from_pem(&pem, &key, cert_path)
    }

    fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_path: PathBuf,
    ) -> anyhow::Result<TlsIdentity> {
        let chain = rustls_pemfile::certs(&mut &cert_pem[..]).collect::<Result<Vec<_>, _>>()?;
        let key = rustls_pemfile::private_key(&mut &key_pem[..])?
            .ok_or_else(|| anyhow!("no private key in PEM"))?;
        Ok(TlsIdentity {
            chain,
            key,
            cert_path,
        })
    }

    /// A rustls server config for this identity.
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        Ok(Arc::new(cfg))
    }
}

fn generate(dir: &Path, cert_path: &Path, key_path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "bastion".to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let mut key_file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key_path)
        .with_context(|| format!("creating {}", key_path.display()))?;
    std::io::Write::write_all(&mut key_file, certified.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, certified.cert.pem())?;
    Ok(())
}
