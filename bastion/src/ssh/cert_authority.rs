//! The bastion as an SSH user certificate authority for its targets (`upstream_auth =
//! "certificate"`). The CA key is an Ed25519 key generated on first use at
//! `<state_dir>/ssh/upstream_ca_ed25519` (mode 0600; `bastion ca export` prints the public line
//! targets list in `TrustedUserCAKeys`). Per session the bastion makes a fresh key pair that
//! never leaves its memory and signs a user certificate for it: one principal (the target's
//! `upstream_user`), a key id naming the identity and the session, a validity of minutes
//! (starting a little in the past for clock skew), and the `source-address` critical option, so
//! the certificate is worth nothing after it expires or from anywhere but the bastion.
use super::keys::{self, KeyError};
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{Certificate, HashAlg, PrivateKey};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// File name of the CA key under `<state_dir>/ssh/` (its public half is `<name>.pub`).
/// Distinct from `user_ca.pub`, the CAs whose certificates *clients* may present.
pub const CA_KEY_FILE: &str = "upstream_ca_ed25519";

/// Comment of the generated CA key (shown by `bastion ca export`).
const CA_COMMENT: &str = "bastion upstream user CA";

/// How far before "now" a certificate starts, so a target whose clock is a little behind
/// still accepts it.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(30);

/// Extensions granted: what the bastion relays (terminals and port forwarding), nothing more
/// (no agent or X11 forwarding, no `~/.ssh/rc`).
const EXTENSIONS: &[&str] = &["permit-port-forwarding", "permit-pty"];

/// Why a certificate could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The CA key file cannot be read, parsed or created.
    #[error("ssh certificate authority: {0}")]
    Key(#[from] KeyError),
    /// The CA key is not an Ed25519 key (someone replaced the file).
    #[error("ssh certificate authority key {path} is {algorithm}, expected ssh-ed25519")]
    NotEd25519 {
        /// The file.
        path: String,
        /// What it holds.
        algorithm: String,
    },
    /// The request is unusable (empty principal: a certificate valid for every user).
    #[error("refusing to issue a certificate: {0}")]
    Refused(String),
    /// Building or signing failed.
    #[error("cannot sign the session certificate: {0}")]
    Sign(String),
}

/// Loads the CA key at `path`, generating it (0600, with its `.pub`) on first use.
pub fn load_or_generate(path: &Path) -> Result<PrivateKey, CaError> {
    let key = keys::load_or_generate(path, CA_COMMENT)?;
    if key.algorithm() != russh::keys::Algorithm::Ed25519 {
        return Err(CaError::NotEd25519 {
            path: path.display().to_string(),
            algorithm: key.algorithm().to_string(),
        });
    }
    Ok(key)
}

/// At start: makes sure the CA key of every `upstream_auth = "certificate"` target exists and
/// is usable, so a broken key stops the start instead of every session.
pub fn prepare(config: &crate::config::Config) -> Result<(), CaError> {
    for target in config.targets.values() {
        if let crate::config::UpstreamAuth::Certificate(settings) = &target.upstream_auth {
            load_or_generate(&settings.ca_key)?;
        }
    }
    Ok(())
}

/// What to certify.
#[derive(Debug, Clone)]
pub struct CertificateRequest<'a> {
    /// The one login name the certificate is valid for.
    pub principal: &'a str,
    /// Names the identity and session; the target logs it (`sshd`: `ID ...`).
    pub key_id: String,
    /// Validity from `now`.
    pub valid_for: Duration,
    /// The `source-address` networks; must not be empty.
    pub source_address: &'a [ipnet::IpNet],
    /// Issue time.
    pub now: SystemTime,
}

/// A signed certificate and the private key it certifies (kept in memory only).
pub struct IssuedCertificate {
    /// The session's private key.
    pub key: PrivateKey,
    /// The certificate for its public half.
    pub certificate: Certificate,
}

impl IssuedCertificate {
    /// One line for the trail: serial, key fingerprint, validity window (UTC) and source.
    pub fn summary(&self) -> String {
        let c = &self.certificate;
        let when = |secs: u64| {
            i64::try_from(secs)
                .ok()
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| secs.to_string())
        };
        format!(
            "serial {} key {} valid {} to {} source-address {}",
            c.serial(),
            self.key.public_key().fingerprint(HashAlg::Sha256),
            when(c.valid_after()),
            when(c.valid_before()),
            c.critical_options()
                .get("source-address")
                .map(String::as_str)
                .unwrap_or("-"),
        )
    }
}

/// `source-address` text: comma-separated CIDR networks, as OpenSSH expects.
pub fn source_address_option(nets: &[ipnet::IpNet]) -> String {
    nets.iter()
        .map(|n| n.trunc().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Makes a fresh Ed25519 key pair and signs a user certificate for it with `ca`.
pub fn issue(ca: &PrivateKey, req: &CertificateRequest<'_>) -> Result<IssuedCertificate, CaError> {
    use rand::RngCore;
    if req.principal.is_empty() {
        return Err(CaError::Refused("no principal".into()));
    }
    if req.source_address.is_empty() {
        return Err(CaError::Refused("no source address".into()));
    }
    let sign_err = |e: russh::keys::ssh_key::Error| CaError::Sign(e.to_string());
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let keypair = Ed25519Keypair::from_seed(&seed);
    seed.fill(0);
    let key = PrivateKey::new(KeypairData::from(keypair), req.key_id.as_str()).map_err(sign_err)?;
    let now = req
        .now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CaError::Refused("the clock is before 1970".into()))?
        .as_secs();
    let valid_after = now.saturating_sub(CLOCK_SKEW_ALLOWANCE.as_secs());
    let valid_before = now.saturating_add(req.valid_for.as_secs().max(1));
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut builder = Builder::new(
        nonce.to_vec(),
        key.public_key().key_data().clone(),
        valid_after,
        valid_before,
    )
    .map_err(sign_err)?;
    builder
        .serial(rand::rngs::OsRng.next_u64())
        .and_then(|b| b.cert_type(CertType::User))
        .and_then(|b| b.key_id(req.key_id.as_str()))
        .and_then(|b| b.valid_principal(req.principal))
        .and_then(|b| {
            b.critical_option("source-address", source_address_option(req.source_address))
        })
        .map_err(sign_err)?;
    for ext in EXTENSIONS {
        builder.extension(*ext, "").map_err(sign_err)?;
    }
    let certificate = builder.sign(ca).map_err(sign_err)?;
    Ok(IssuedCertificate { key, certificate })
}

/// Debug builds only: when `BASTION_TEST_ISSUED_CERT_DIR` is set, writes the session's private
/// key (`<dir>/<session>`, 0600) and certificate (`<dir>/<session>-cert.pub`) there, so
/// end-to-end tests can show the certificate is useless after expiry. Release builds never
/// write a session key anywhere.
#[cfg(debug_assertions)]
pub fn write_for_tests(session_id: &str, issued: &IssuedCertificate) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let Some(dir) = std::env::var_os("BASTION_TEST_ISSUED_CERT_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let write = || -> Result<(), String> {
        let pem = issued
            .key
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .map_err(|e| e.to_string())?;
        let cert = issued.certificate.to_openssh().map_err(|e| e.to_string())?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join(session_id))
            .map_err(|e| e.to_string())?;
        f.write_all(pem.as_bytes()).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join(format!("{session_id}-cert.pub")),
            format!("{cert}\n"),
        )
        .map_err(|e| e.to_string())
    };
    if let Err(e) = write() {
        tracing::warn!(error = %e, "BASTION_TEST_ISSUED_CERT_DIR: cannot write the certificate");
    }
}

/// Release builds: nothing is written.
#[cfg(not(debug_assertions))]
pub fn write_for_tests(_session_id: &str, _issued: &IssuedCertificate) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(nets: &'a [ipnet::IpNet], now: SystemTime) -> CertificateRequest<'a> {
        CertificateRequest {
            principal: "deploy",
            key_id: "alice@web1 session 0011223344556677".into(),
            valid_for: Duration::from_secs(120),
            source_address: nets,
            now,
        }
    }

    fn new_ca() -> (tempfile::TempDir, PrivateKey) {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_generate(&dir.path().join(CA_KEY_FILE)).unwrap();
        (dir, key)
    }

    #[test]
    fn certificate_is_signed_by_the_ca_for_one_principal_with_source_and_window() {
        let (_dir, ca) = new_ca();
        let nets = ["127.0.0.1/32".parse().unwrap()];
        let now = SystemTime::now();
        let issued = issue(&ca, &request(&nets, now)).unwrap();
        let c = &issued.certificate;
        let ca_fp = ca.public_key().fingerprint(HashAlg::Sha256);
        let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        c.validate_at(secs, [&ca_fp]).unwrap();
        assert_eq!(c.valid_principals(), ["deploy".to_string()]);
        assert_eq!(c.cert_type(), CertType::User);
        assert_eq!(c.key_id(), "alice@web1 session 0011223344556677");
        assert_eq!(c.valid_before() - secs, 120);
        assert_eq!(secs - c.valid_after(), CLOCK_SKEW_ALLOWANCE.as_secs());
        assert_eq!(
            c.critical_options()
                .get("source-address")
                .map(String::as_str),
            Some("127.0.0.1/32")
        );
        let exts: Vec<&String> = c.extensions().keys().collect();
        assert_eq!(exts, ["permit-port-forwarding", "permit-pty"]);
        assert_eq!(c.public_key(), issued.key.public_key().key_data());
        assert!(issued.summary().contains("source-address 127.0.0.1/32"));
    }

    #[test]
    fn certificate_is_refused_after_expiry_and_by_another_ca() {
        let (_dir, ca) = new_ca();
        let (_other_dir, other) = new_ca();
        let nets = ["10.0.0.0/8".parse().unwrap()];
        let now = SystemTime::now();
        let issued = issue(&ca, &request(&nets, now)).unwrap();
        let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let ca_fp = ca.public_key().fingerprint(HashAlg::Sha256);
        assert!(issued
            .certificate
            .validate_at(secs + 121, [&ca_fp])
            .is_err());
        let other_fp = other.public_key().fingerprint(HashAlg::Sha256);
        assert!(issued.certificate.validate_at(secs, [&other_fp]).is_err());
    }

    #[test]
    fn every_session_gets_its_own_key_and_serial() {
        let (_dir, ca) = new_ca();
        let nets = ["127.0.0.1/32".parse().unwrap()];
        let a = issue(&ca, &request(&nets, SystemTime::now())).unwrap();
        let b = issue(&ca, &request(&nets, SystemTime::now())).unwrap();
        assert_ne!(a.key.public_key(), b.key.public_key());
        assert_ne!(a.certificate.serial(), b.certificate.serial());
    }

    #[test]
    fn golden_tickets_and_unbound_certificates_are_refused() {
        let (_dir, ca) = new_ca();
        let nets = ["127.0.0.1/32".parse().unwrap()];
        let mut r = request(&nets, SystemTime::now());
        r.principal = "";
        assert!(matches!(issue(&ca, &r), Err(CaError::Refused(_))));
        let r = request(&[], SystemTime::now());
        assert!(matches!(issue(&ca, &r), Err(CaError::Refused(_))));
    }

    #[test]
    fn source_networks_are_written_as_networks() {
        let nets: Vec<ipnet::IpNet> =
            vec!["192.0.2.77/24".parse().unwrap(), "::1/128".parse().unwrap()];
        assert_eq!(source_address_option(&nets), "192.0.2.0/24,::1/128");
    }
}
