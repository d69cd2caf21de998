//! The proofs both listeners share beyond SCRAM and SSH keys, with what they need at run time:
//! login tokens (`machine_token`), password + one-time code (`password`, `crate::totp`) and the
//! risk signals every attempt feeds (`risk`). One [`EntryProofs`] per running bastion, shared by
//! the PostgreSQL and SSH listeners. Each proof returns `Err(reason)` with the text for the
//! `entries` row; the client only ever sees a generic failure.
use super::machine_token::{Presentation, TokenError, TokenRefusal, TokenVerifier};
use super::password::{load_verifier, PasswordChecker, PasswordError};
use super::risk::{annotate, RiskFlag, RiskSignals};
use crate::config::{AuthMethod, User, UserKind};
use crate::totp::TotpVerifier;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Token, password and one-time-code checking, and the risk signals.
#[derive(Debug)]
pub struct EntryProofs {
    /// Login tokens.
    pub tokens: TokenVerifier,
    /// First sources, failure bursts, hours.
    pub risk: RiskSignals,
    /// Password verifiers (with a decoy for identities without one).
    pub passwords: PasswordChecker,
    /// One-time codes given at login. The step-up check uses a clone of this verifier
    /// (`Shared::totp`), so a code is accepted once whatever it is given for.
    pub login_totp: TotpVerifier,
    state_dir: PathBuf,
}

impl EntryProofs {
    /// Opens the token key and ledger and the seen sources of `state_dir`.
    pub fn open(state_dir: &Path) -> Result<EntryProofs, TokenError> {
        Ok(EntryProofs {
            tokens: TokenVerifier::open(state_dir)?,
            risk: RiskSignals::open(state_dir),
            passwords: PasswordChecker::new(),
            login_totp: TotpVerifier::new(),
            state_dir: state_dir.to_path_buf(),
        })
    }

    /// A token given as the password by `user` for `target` from `source`. The reason of a
    /// refusal names the failed check; a revoked token is flagged `revoked_token_reuse`.
    pub fn token(
        &self,
        user: &User,
        presented: &str,
        target: &str,
        source: IpAddr,
    ) -> Result<(), String> {
        if !user.accepts(AuthMethod::Token) {
            return Err(not_allowed(user, AuthMethod::Token));
        }
        let now = chrono::Utc::now().timestamp();
        let p = Presentation {
            identity: &user.name,
            target,
            source,
            now,
        };
        match self.tokens.check(presented, p) {
            Ok(claims) => {
                tracing::info!(token = %claims.id, user = %user.name, target, "login token accepted");
                Ok(())
            }
            Err(r @ TokenRefusal::Revoked(_)) => Err(annotate(
                Some(r.to_string()),
                &[RiskFlag::RevokedTokenReuse],
            )
            .unwrap_or_default()),
            Err(r) => Err(r.to_string()),
        }
    }

    /// A password and a one-time code (SSH keyboard-interactive) for a human whose `auth`
    /// includes `password_totp`. The password is always derived (against a decoy when there
    /// is no verifier); the code is only consumed when the password matched.
    pub fn password_totp(&self, user: &User, password: &str, code: &str) -> Result<(), String> {
        let verifier = load_verifier(&self.state_dir, user);
        let matched = self.passwords.check(verifier.as_ref().ok(), password);
        if user.kind != UserKind::Human || !user.accepts(AuthMethod::PasswordTotp) {
            return Err(not_allowed(user, AuthMethod::PasswordTotp));
        }
        match verifier {
            Err(e @ PasswordError::NotSet(_)) => return Err(e.to_string()),
            Err(e) => {
                tracing::error!(user = %user.name, error = %e, "password verifier unusable");
                return Err(e.to_string());
            }
            Ok(_) if !matched => return Err("wrong password".to_string()),
            Ok(_) => {}
        }
        let secret = crate::totp::load_secret(&self.state_dir, user).map_err(|e| e.to_string())?;
        self.login_totp
            .verify(&user.name, &secret, code, SystemTime::now())
            .map_err(|e| format!("password matched; {e}"))
    }
}

/// The reason for a method outside the identity's `auth`.
pub fn not_allowed(user: &User, method: AuthMethod) -> String {
    let allowed: Vec<&str> = user.auth.iter().map(|m| m.as_str()).collect();
    format!(
        "{method} is not among the identity's auth methods ({})",
        allowed.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretRef;

    fn user(kind: UserKind, auth: &[AuthMethod], totp: Option<SecretRef>) -> User {
        User {
            name: "carol".into(),
            kind,
            groups: vec![],
            scram_verifier: None,
            public_keys: vec![],
            totp,
            auth: auth.to_vec(),
            password_verifier: None,
            allowed_hours: None,
        }
    }

    #[test]
    fn password_and_code_must_both_match() {
        let dir = tempfile::tempdir().unwrap();
        let proofs = EntryProofs::open(dir.path()).unwrap();
        let secret_file = dir.path().join("carol.totp");
        std::fs::write(&secret_file, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").unwrap();
        let carol = user(
            UserKind::Human,
            &[AuthMethod::PasswordTotp],
            Some(SecretRef::File(secret_file)),
        );
        let err = proofs
            .password_totp(&carol, "a long password", "000000")
            .unwrap_err();
        assert!(err.contains("no password"), "{err}");
        super::super::password::set_password(dir.path(), "carol", "a long password").unwrap();
        let secret = crate::totp::load_secret(dir.path(), &carol).unwrap();
        let now = chrono::Utc::now().timestamp() as u64;
        let code = crate::totp::code_at(&secret, now);
        let wrong_code = (0..1_000_000)
            .map(|n| format!("{n:06}"))
            .find(|c| {
                [now - 30, now, now + 30]
                    .iter()
                    .all(|t| crate::totp::code_at(&secret, *t) != *c)
            })
            .unwrap();
        assert_eq!(
            proofs
                .password_totp(&carol, "a wrong password", &code)
                .unwrap_err(),
            "wrong password"
        );
        let err = proofs
            .password_totp(&carol, "a long password", &wrong_code)
            .unwrap_err();
        assert!(err.contains("one-time code is not valid"), "{err}");
        assert_eq!(
            proofs.password_totp(&carol, "a long password", &code),
            Ok(())
        );
        // The same code is not accepted twice.
        let err = proofs
            .password_totp(&carol, "a long password", &code)
            .unwrap_err();
        assert!(err.contains("already used"), "{err}");
    }

    #[test]
    fn methods_outside_auth_are_refused_even_with_valid_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let proofs = EntryProofs::open(dir.path()).unwrap();
        super::super::password::set_password(dir.path(), "carol", "a long password").unwrap();
        let only_keys = user(UserKind::Human, &[AuthMethod::PublicKey], None);
        let err = proofs
            .password_totp(&only_keys, "a long password", "123456")
            .unwrap_err();
        assert!(err.contains("password_totp is not among"), "{err}");
        let bot = user(UserKind::Service, &[AuthMethod::Scram], None);
        let err = proofs
            .token(&bot, "bt1.x.y", "prod-db", "127.0.0.1".parse().unwrap())
            .unwrap_err();
        assert!(err.contains("token is not among"), "{err}");
    }
}
