//! The PostgreSQL listener's TLS: the acceptor, and the `tls-server-end-point` hash of the
//! bastion's certificate for SCRAM-SHA-256-PLUS channel binding.
use crate::config::Config;
use crate::tls::TlsIdentity;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// TLS for the PostgreSQL listener.
#[derive(Clone)]
pub struct ServerTls {
    /// The acceptor.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// `tls-server-end-point` hash, when the certificate's signature hash is SHA-256 (the only
    /// case computed here; other certificates simply do not offer SCRAM-SHA-256-PLUS).
    pub cert_hash: Option<Vec<u8>>,
}

/// DER encodings of the signature algorithm OIDs hashed with SHA-256:
/// ecdsa-with-SHA256 (1.2.840.10045.4.3.2) and sha256WithRSAEncryption (1.2.840.113549.1.1.11).
const SHA256_SIG_OIDS: [&[u8]; 2] = [
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
    &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
    ],
];

impl ServerTls {
    /// Loads the configured certificate or the generated one.
    pub fn load(config: &Config) -> anyhow::Result<ServerTls> {
        let identity = TlsIdentity::load_or_generate(config)?;
        let cert_hash = identity.chain.first().and_then(|leaf| {
            let der = leaf.as_ref();
            let sha256_signed = SHA256_SIG_OIDS
                .iter()
                .any(|oid| der.windows(oid.len()).any(|w| w == *oid));
            sha256_signed.then(|| Sha256::digest(der).to_vec())
        });
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(identity.server_config()?),
            cert_hash,
        })
    }
}

/// Keeps `Arc` in the public signature tidy for callers that share it.
pub type SharedTls = Arc<ServerTls>;
