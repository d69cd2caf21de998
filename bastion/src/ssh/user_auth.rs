//! Proof of identity on the SSH listener, as pure functions the connection handler calls:
//! a raw public key must be one of the identity's configured keys; an OpenSSH user certificate
//! must be signed by a trusted user CA, be inside its validity window, name the identity among
//! its principals, and carry no critical option the bastion does not enforce (`source-address`
//! is enforced; anything else — `force-command`, `verify-required`, unknown ones — refuses the
//! certificate, as sshd does). russh checks the signature and the window; we check again.
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::HashAlg;
use russh::keys::{Certificate, PublicKey};
use std::net::IpAddr;

/// True when `key` is one of `allowed` (OpenSSH one-line public keys; comments ignored).
pub fn key_is_authorized(allowed: &[String], key: &PublicKey) -> bool {
    allowed
        .iter()
        .filter_map(|line| PublicKey::from_openssh(line.trim()).ok())
        .any(|k| k.key_data() == key.key_data())
}

/// Why a certificate was refused (recorded in the `entries` row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertRejection {
    /// No user CA is configured.
    #[error(
        "no user certificate authority is trusted ({})",
        super::keys::USER_CA_FILE
    )]
    NoTrustedCa,
    /// Host certificate presented as a user certificate.
    #[error("certificate is not a user certificate")]
    NotUserCertificate,
    /// Signed by a CA the bastion does not trust, or the signature is bad.
    #[error("certificate is not signed by a trusted user CA")]
    UntrustedCa,
    /// Not yet valid.
    #[error("certificate is not valid yet (valid after {0})")]
    NotYetValid(u64),
    /// Expired.
    #[error("certificate expired (valid before {0})")]
    Expired(u64),
    /// The identity is not among the principals.
    #[error("certificate principals {principals:?} do not include {identity}")]
    Principal {
        /// Principals listed.
        principals: Vec<String>,
        /// Identity claimed.
        identity: String,
    },
    /// The client address is outside `source-address`.
    #[error(
        "source address {source_ip} is not allowed by the certificate (source-address {allowed})"
    )]
    SourceAddress {
        /// Client address.
        source_ip: IpAddr,
        /// The option's value.
        allowed: String,
    },
    /// A critical option the bastion does not enforce.
    #[error("certificate critical option {0} is not supported")]
    CriticalOption(String),
}

/// Checks an OpenSSH user certificate for `identity` connecting from `source_ip` at `now_unix`.
pub fn check_certificate(
    cert: &Certificate,
    cas: &[PublicKey],
    identity: &str,
    source_ip: IpAddr,
    now_unix: u64,
) -> Result<(), CertRejection> {
    if cas.is_empty() {
        return Err(CertRejection::NoTrustedCa);
    }
    if cert.cert_type() != CertType::User {
        return Err(CertRejection::NotUserCertificate);
    }
    if now_unix < cert.valid_after() {
        return Err(CertRejection::NotYetValid(cert.valid_after()));
    }
    if now_unix >= cert.valid_before() {
        return Err(CertRejection::Expired(cert.valid_before()));
    }
    let fingerprints: Vec<_> = cas.iter().map(|k| k.fingerprint(HashAlg::Sha256)).collect();
    if !cas.iter().any(|ca| ca.key_data() == cert.signature_key())
        || cert.validate_at(now_unix, fingerprints.iter()).is_err()
    {
        return Err(CertRejection::UntrustedCa);
    }
    // sshd requires a principal list for user certificates; an empty list is refused too.
    if !cert.valid_principals().iter().any(|p| p == identity) {
        return Err(CertRejection::Principal {
            principals: cert.valid_principals().to_vec(),
            identity: identity.to_string(),
        });
    }
    for (name, value) in cert.critical_options().iter() {
        match name.as_str() {
            "source-address" => {
                if !source_allowed(value, source_ip) {
                    return Err(CertRejection::SourceAddress {
                        source_ip,
                        allowed: value.clone(),
                    });
                }
            }
            other => return Err(CertRejection::CriticalOption(other.to_string())),
        }
    }
    Ok(())
}

/// `source-address` is a comma-separated list of addresses and CIDR networks. An entry that
/// does not parse matches nothing (fail closed).
fn source_allowed(list: &str, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    list.split(',').map(str::trim).any(|entry| {
        if let Ok(net) = entry.parse::<ipnet::IpNet>() {
            net.contains(&ip)
        } else {
            entry.parse::<IpAddr>().is_ok_and(|a| a == ip)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_address_lists() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(source_allowed("10.0.0.0/8", ip));
        assert!(source_allowed("192.168.0.1, 10.1.2.3", ip));
        assert!(!source_allowed("192.168.0.0/16", ip));
        assert!(!source_allowed("garbage", ip));
        assert!(!source_allowed("", ip));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(source_allowed("10.0.0.0/8", mapped));
    }

    #[test]
    fn configured_key_matches_regardless_of_comment() {
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDyRiHdS0u6+6Q5Z3Y8d2q9FpVZfMRbHq5xv7o8gXH8B alice";
        let key = PublicKey::from_openssh(line).unwrap();
        assert!(key_is_authorized(&[line.replace(" alice", " other")], &key));
        assert!(!key_is_authorized(&["ssh-ed25519 garbage".into()], &key));
        assert!(!key_is_authorized(&[], &key));
    }
}
