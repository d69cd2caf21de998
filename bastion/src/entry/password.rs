//! Passwords for SSH password + one-time code logins (humans, `auth` including
//! `password_totp`). The bastion stores a SCRAM-SHA-256 verifier (PostgreSQL's `pg_authid`
//! format: PBKDF2-HMAC-SHA-256 with a random salt, 4096 iterations by default), never the
//! password: the config's `password_verifier` reference, else `<state_dir>/passwords/<user>.scram`
//! written by `bastion users set-password` (mode 0600). Checking derives the verifier from the
//! presented password with the stored salt and compares in constant time; an identity without a
//! verifier is checked against a decoy so the work, and the time, are the same.
use crate::admin::private_file::write_private_file;
use crate::config::User;
use protocol::postgres::scram::{make_verifier, Verifier, DEFAULT_ITERATIONS};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// Longest password considered (longer ones are refused after the same work).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Why a verifier could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// No verifier configured or set.
    #[error("user {0} has no password (run `bastion users set-password {0}`)")]
    NotSet(String),
    /// The stored verifier does not parse.
    #[error("password verifier of {user} is not a SCRAM-SHA-256 verifier: {message}")]
    BadVerifier {
        /// The user.
        user: String,
        /// Why.
        message: String,
    },
    /// Reading or writing failed.
    #[error("password verifier {path}: {message}")]
    Storage {
        /// The file or reference.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The password is unusable (empty, too long, control characters).
    #[error("{0}")]
    Unacceptable(String),
}

/// `<state_dir>/passwords/<user>.scram`.
pub fn verifier_path(state_dir: &Path, user: &str) -> PathBuf {
    state_dir.join("passwords").join(format!("{user}.scram"))
}

/// The user's verifier: the config's `password_verifier` when set, else the one in the state
/// directory.
pub fn load_verifier(state_dir: &Path, user: &User) -> Result<Verifier, PasswordError> {
    let text = match &user.password_verifier {
        Some(r) => {
            let secret = r.load().map_err(|message| PasswordError::Storage {
                path: PathBuf::from(r.to_string()),
                message,
            })?;
            secret.expose_str().map(str::to_string).map_err(|message| {
                PasswordError::BadVerifier {
                    user: user.name.clone(),
                    message,
                }
            })?
        }
        None => {
            let path = verifier_path(state_dir, &user.name);
            match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(PasswordError::NotSet(user.name.clone()))
                }
                Err(e) => {
                    return Err(PasswordError::Storage {
                        path,
                        message: e.to_string(),
                    })
                }
            }
        }
    };
    Verifier::parse(text.trim()).map_err(|e| PasswordError::BadVerifier {
        user: user.name.clone(),
        message: e.to_string(),
    })
}

/// Checks a new password's shape (the CLI refuses before storing).
pub fn acceptable(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < 12 {
        return Err(PasswordError::Unacceptable(
            "password must be at least 12 characters".into(),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN || password.chars().any(char::is_control) {
        return Err(PasswordError::Unacceptable(format!(
            "password must be at most {MAX_PASSWORD_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// Stores a verifier of `password` for `user` in the state directory (mode 0600).
pub fn set_password(
    state_dir: &Path,
    user: &str,
    password: &str,
) -> Result<PathBuf, PasswordError> {
    acceptable(password)?;
    let path = verifier_path(state_dir, user);
    let safe = !user.is_empty()
        && !user.starts_with('.')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !safe {
        return Err(PasswordError::Storage {
            path,
            message: "user name cannot be used as a file name".into(),
        });
    }
    let verifier =
        make_verifier(password, DEFAULT_ITERATIONS).map_err(|e| PasswordError::Storage {
            path: path.clone(),
            message: e.to_string(),
        })?;
    write_private_file(&path, format!("{verifier}\n").as_bytes()).map_err(|e| {
        PasswordError::Storage {
            path: path.clone(),
            message: e.to_string(),
        }
    })?;
    Ok(path)
}

/// Compares passwords with verifiers, doing the same work when there is no verifier.
#[derive(Debug)]
pub struct PasswordChecker {
    decoy_salt: [u8; 16],
}

impl Default for PasswordChecker {
    fn default() -> Self {
        PasswordChecker::new()
    }
}

impl PasswordChecker {
    /// A checker with a fresh random decoy salt.
    pub fn new() -> PasswordChecker {
        let mut decoy_salt = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut decoy_salt);
        PasswordChecker { decoy_salt }
    }

    /// True only when `verifier` is present and `password` matches it. Without a verifier (or
    /// with an over-long password) a decoy is derived instead and the answer is false.
    pub fn check(&self, verifier: Option<&Verifier>, password: &str) -> bool {
        let too_long = password.len() > MAX_PASSWORD_LEN;
        let presented = if too_long { "" } else { password };
        let Some(stored) = verifier else {
            let _ = Verifier::from_password(presented, &self.decoy_salt, DEFAULT_ITERATIONS);
            return false;
        };
        let Ok(derived) = Verifier::from_password(presented, &stored.salt, stored.iterations)
        else {
            return false;
        };
        let equal: bool = derived
            .to_string()
            .as_bytes()
            .ct_eq(stored.to_string().as_bytes())
            .into();
        equal && !too_long
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthMethod, SecretRef, UserKind};

    fn user(name: &str, verifier: Option<SecretRef>) -> User {
        User {
            name: name.into(),
            kind: UserKind::Human,
            groups: vec![],
            scram_verifier: None,
            public_keys: vec![],
            totp: None,
            auth: AuthMethod::defaults(),
            password_verifier: verifier,
            allowed_hours: None,
        }
    }

    #[test]
    fn set_password_round_trips_and_wrong_passwords_fail() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load_verifier(dir.path(), &user("carol", None)),
            Err(PasswordError::NotSet("carol".into()))
        );
        let path = set_password(dir.path(), "carol", "correct horse battery").unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("SCRAM-SHA-256$4096:") && !text.contains("horse"));
        let v = load_verifier(dir.path(), &user("carol", None)).unwrap();
        let c = PasswordChecker::new();
        assert!(c.check(Some(&v), "correct horse battery"));
        for wrong in [
            "",
            "correct horse batter",
            "correct horse battery ",
            "CORRECT HORSE BATTERY",
        ] {
            assert!(!c.check(Some(&v), wrong), "{wrong:?}");
        }
        assert!(!c.check(None, "correct horse battery"));
        assert!(!c.check(Some(&v), &"x".repeat(MAX_PASSWORD_LEN + 1)));
    }

    #[test]
    fn config_reference_wins_and_bad_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v");
        std::fs::write(&file, make_verifier("from the config!", 4096).unwrap()).unwrap();
        set_password(dir.path(), "carol", "from the state dir").unwrap();
        let v = load_verifier(dir.path(), &user("carol", Some(SecretRef::File(file)))).unwrap();
        assert!(PasswordChecker::new().check(Some(&v), "from the config!"));
        assert!(set_password(dir.path(), "carol", "short").is_err());
        assert!(set_password(dir.path(), "carol", "twelve chars\u{7}!").is_err());
        for bad in ["../x", "a/b", ".hidden", ""] {
            assert!(
                set_password(dir.path(), bad, "long enough password").is_err(),
                "{bad:?}"
            );
        }
    }
}
