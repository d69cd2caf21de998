//! Proof of identity on the SSH listener, as pure functions the connection handler calls:
//! a raw public key must be one of the identity's configured keys; an OpenSSH user certificate
//! must be signed by a trusted user CA, be inside its validity window, name the identity among
//! its principals, and carry no critical option the bastion does not enforce (`source-address`
//! is enforced; anything else — `force-command`, `verify-required`, unknown ones — refuses the
//! certificate, as sshd does). russh checks the signature and the window; we check again.
//!
//! Only the methods in the identity's `auth` are accepted ([`method_permitted`]). The `password`
//! method carries login tokens only; `keyboard-interactive` ([`KbdInteractive`]) asks
//! `Password:` and, unless the answer is a login token, then `One-time code:`; both answers are
//! checked together at the end, so the prompts never depend on whether the password was right.
use crate::config::{AuthMethod, User};
use crate::entry::machine_token::looks_like_token;
use crate::entry::proofs::not_allowed;
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::HashAlg;
use russh::keys::{Certificate, PublicKey};
use russh::server::Auth;
use std::borrow::Cow;
use std::net::IpAddr;

/// The first keyboard-interactive prompt.
pub const PASSWORD_PROMPT: &str = "Password: ";
/// The second keyboard-interactive prompt.
pub const CODE_PROMPT: &str = "One-time code: ";

/// `Ok` when `method` (an `entries` method name) is among the identity's `auth`; names that are
/// not auth methods (protocol errors) pass through to a proof that refuses them.
pub fn method_permitted(user: &User, method: &str) -> Result<(), String> {
    match AuthMethod::parse(method) {
        Some(m) if !user.accepts(m) => Err(not_allowed(user, m)),
        _ => Ok(()),
    }
}

/// Whether a refused attempt of `method` (an `entries` method name) counts toward lockout.
/// A public key or certificate reaches the handler only after russh verified the client's
/// signature, so its refusal (key not configured, method not in the identity's `auth`,
/// certificate outside its window) proves possession of a key, not a guess at a secret; every
/// OpenSSH client offers all its keys before asking for a password, so counting them would let
/// a user with two keys in the agent lock themselves out. Passwords, codes, tokens and
/// out-of-turn keyboard-interactive answers do count.
pub fn refusal_counts_toward_lockout(method: &str) -> bool {
    !matches!(
        AuthMethod::parse(method),
        Some(AuthMethod::PublicKey | AuthMethod::Certificate)
    )
}

/// The `password` method: a login token, nothing else.
pub fn password_is_token(password: &str) -> Result<(), String> {
    if looks_like_token(password) {
        Ok(())
    } else {
        Err("the password method takes login tokens only; people log in with keyboard-interactive (password and one-time code)".to_string())
    }
}

/// Where one connection's keyboard-interactive conversation is.
#[derive(Debug, Default)]
pub enum KbdInteractive {
    /// No conversation.
    #[default]
    Idle,
    /// `Password:` was asked.
    AwaitingPassword {
        /// The user name the conversation is for.
        user: String,
    },
    /// `One-time code:` was asked.
    AwaitingCode {
        /// The user name.
        user: String,
        /// The first answer, checked with the code.
        password: String,
    },
}

/// What the handler does next.
#[derive(Debug, PartialEq, Eq)]
pub enum KbdStep {
    /// Ask the client (an `Auth::Partial`).
    Ask(Auth),
    /// The first answer is a login token: check it.
    Token(String),
    /// Check the password and the code together.
    PasswordTotp {
        /// First answer.
        password: String,
        /// Second answer.
        code: String,
    },
    /// A response that does not fit the conversation: refuse, saying why.
    Refuse(String),
}

fn ask(prompt: &'static str) -> KbdStep {
    KbdStep::Ask(Auth::Partial {
        name: Cow::Borrowed(""),
        instructions: Cow::Borrowed(""),
        prompts: Cow::Owned(vec![(Cow::Borrowed(prompt), false)]),
    })
}

impl KbdInteractive {
    /// Advances the conversation for `user`: `answers` is `None` when the client starts the
    /// method, else its answers (`None` for one that is not UTF-8).
    pub fn step(&mut self, user: &str, answers: Option<Vec<Option<String>>>) -> KbdStep {
        let Some(answers) = answers else {
            *self = KbdInteractive::AwaitingPassword {
                user: user.to_string(),
            };
            return ask(PASSWORD_PROMPT);
        };
        let single = match answers.as_slice() {
            [Some(a)] => Some(a.clone()),
            _ => None,
        };
        match (std::mem::take(self), single) {
            (_, None) => KbdStep::Refuse("keyboard-interactive: expected one UTF-8 answer".into()),
            (KbdInteractive::AwaitingPassword { user: u }, Some(answer)) if u == user => {
                if looks_like_token(&answer) {
                    KbdStep::Token(answer)
                } else {
                    *self = KbdInteractive::AwaitingCode {
                        user: u,
                        password: answer,
                    };
                    ask(CODE_PROMPT)
                }
            }
            (KbdInteractive::AwaitingCode { user: u, password }, Some(code)) if u == user => {
                KbdStep::PasswordTotp { password, code }
            }
            _ => KbdStep::Refuse("keyboard-interactive: answer out of turn".into()),
        }
    }
}

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
        "no user certificate authority is trusted (set [server] ssh_user_ca, or put {} in the state directory's ssh/)",
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

    fn answers(a: &[&str]) -> Option<Vec<Option<String>>> {
        Some(a.iter().map(|s| Some(s.to_string())).collect())
    }

    #[test]
    fn only_secret_guesses_count_toward_lockout() {
        assert!(!refusal_counts_toward_lockout("publickey"));
        assert!(!refusal_counts_toward_lockout("certificate"));
        for method in [
            "password_totp",
            "token",
            "keyboard-interactive",
            "scram",
            "bogus",
        ] {
            assert!(refusal_counts_toward_lockout(method), "{method}");
        }
    }

    #[test]
    fn keyboard_interactive_asks_password_then_code() {
        let mut k = KbdInteractive::default();
        let first = k.step("carol@web1", None);
        assert!(
            matches!(&first, KbdStep::Ask(Auth::Partial { prompts, .. }) if prompts[0].0 == PASSWORD_PROMPT && !prompts[0].1)
        );
        let second = k.step("carol@web1", answers(&["secret password"]));
        assert!(
            matches!(&second, KbdStep::Ask(Auth::Partial { prompts, .. }) if prompts[0].0 == CODE_PROMPT)
        );
        assert_eq!(
            k.step("carol@web1", answers(&["123456"])),
            KbdStep::PasswordTotp {
                password: "secret password".into(),
                code: "123456".into()
            }
        );
        // The conversation is over: another answer is out of turn.
        assert!(matches!(
            k.step("carol@web1", answers(&["1"])),
            KbdStep::Refuse(_)
        ));
    }

    #[test]
    fn keyboard_interactive_takes_a_token_in_one_round_and_refuses_confusion() {
        let mut k = KbdInteractive::default();
        k.step("bot@web1", None);
        assert_eq!(
            k.step("bot@web1", answers(&["bt1.abc.def"])),
            KbdStep::Token("bt1.abc.def".into())
        );
        // Answers without a question, for another user, several at once, or not UTF-8.
        let mut k = KbdInteractive::default();
        assert!(matches!(k.step("a@b", answers(&["x"])), KbdStep::Refuse(_)));
        k.step("a@b", None);
        assert!(matches!(
            k.step("other@b", answers(&["x"])),
            KbdStep::Refuse(_)
        ));
        k.step("a@b", None);
        assert!(matches!(
            k.step("a@b", answers(&["x", "y"])),
            KbdStep::Refuse(_)
        ));
        k.step("a@b", None);
        assert!(matches!(
            k.step("a@b", Some(vec![None])),
            KbdStep::Refuse(_)
        ));
        k.step("a@b", None);
        assert!(matches!(k.step("a@b", Some(vec![])), KbdStep::Refuse(_)));
    }

    #[test]
    fn only_methods_in_auth_are_permitted() {
        let user = User {
            name: "bot".into(),
            kind: crate::config::UserKind::Service,
            groups: vec![],
            scram_verifier: None,
            public_keys: vec!["ssh-ed25519 AAAA".into()],
            totp: None,
            auth: vec![AuthMethod::Token],
            password_verifier: None,
            allowed_hours: None,
        };
        assert!(method_permitted(&user, "token").is_ok());
        let err = method_permitted(&user, "publickey").unwrap_err();
        assert!(
            err.contains("publickey is not among the identity's auth methods (token)"),
            "{err}"
        );
        assert!(method_permitted(&user, "certificate").is_err());
        assert!(method_permitted(&user, "password_totp").is_err());
    }

    #[test]
    fn password_method_takes_tokens_only() {
        assert!(password_is_token("bt1.a.b").is_ok());
        assert!(password_is_token("hunter2").is_err());
    }

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
