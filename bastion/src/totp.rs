//! One-time codes (RFC 6238 TOTP: HMAC-SHA-1, 30-second steps, 6 digits). [`TotpVerifier`]
//! accepts the current step and one step either side, refuses a code of a step at or before the
//! last one accepted for the same user (so a code cannot be replayed, not even in its own
//! window), and reports every failure to the caller, who counts it toward lockout. Secrets come
//! from the user's `totp` reference in the config or from the state directory, where
//! `bastion users enroll-totp` puts them (mode 0600).
use crate::admin::private_file::write_private_file;
use crate::config::User;
use hmac::{Hmac, Mac};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;

/// A TOTP shared secret. `Debug` prints no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TotpSecret({} bytes)", self.0.len())
    }
}

impl TotpSecret {
    /// Wraps raw secret bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> TotpSecret {
        TotpSecret(bytes)
    }

    /// A new random 160-bit secret (the size RFC 4226 recommends).
    pub fn generate() -> TotpSecret {
        use rand::RngCore;
        let mut b = vec![0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut b);
        TotpSecret(b)
    }

    /// Parses base32 as authenticator apps show it: case, spaces, dashes and `=` padding ignored.
    pub fn from_base32(text: &str) -> Result<TotpSecret, TotpError> {
        let clean: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = data_encoding::BASE32_NOPAD
            .decode(clean.as_bytes())
            .map_err(|_| TotpError::BadSecret)?;
        if bytes.len() < 10 {
            return Err(TotpError::BadSecret);
        }
        Ok(TotpSecret(bytes))
    }

    /// The secret in unpadded base32, as `otpauth://` URIs carry it.
    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }
}

/// Why a code was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// Not six digits.
    #[error("one-time code must be {DIGITS} digits")]
    Malformed,
    /// Wrong code for the current time window.
    #[error("one-time code is not valid")]
    Invalid,
    /// A code of a step already used.
    #[error("one-time code was already used")]
    Replayed,
    /// The stored secret is not base32 of at least 80 bits.
    #[error("totp secret is not valid base32 of at least 80 bits")]
    BadSecret,
    /// The user has no TOTP secret.
    #[error("user {0} has no one-time code enrolled (run `bastion users enroll-totp {0}`)")]
    NotEnrolled(String),
    /// Reading or writing the secret failed.
    #[error("totp secret {path}: {message}")]
    Storage {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// HOTP (RFC 4226) with `digits` digits.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        // HMAC accepts keys of any length; this branch is unreachable in practice.
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h.last().copied().unwrap_or(0) & 0x0f);
    let word = h
        .get(offset..offset + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| u32::from_be_bytes(b) & 0x7fff_ffff);
    word % 10u32.pow(digits)
}

/// The 6-digit code for `secret` at `unix_secs`.
pub fn code_at(secret: &TotpSecret, unix_secs: u64) -> String {
    format!("{:06}", hotp(&secret.0, unix_secs / STEP_SECS, DIGITS))
}

/// Seconds since the epoch of `t` (0 before 1970).
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Verifies codes and remembers, per user, the last step accepted. Clones share that memory:
/// the bastion keeps one per process, so a code accepted for a login is refused for a step-up
/// and the other way round (one checker per identity, whatever the purpose).
#[derive(Debug, Default, Clone)]
pub struct TotpVerifier {
    last_step: Arc<Mutex<HashMap<String, u64>>>,
}

impl TotpVerifier {
    /// A verifier that has accepted nothing yet.
    pub fn new() -> TotpVerifier {
        TotpVerifier::default()
    }

    /// Checks `code` for `user` at `now` (±1 step). On success the step is consumed: the same
    /// code, or any earlier one, is refused from then on. Every `Err` is a failed attempt the
    /// caller counts toward lockout.
    pub fn verify(
        &self,
        user: &str,
        secret: &TotpSecret,
        code: &str,
        now: SystemTime,
    ) -> Result<(), TotpError> {
        let code = code.trim();
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TotpError::Malformed);
        }
        let now_step = unix_secs(now) / STEP_SECS;
        // Compare against every candidate so timing does not tell which window matched.
        let mut matched = None;
        for step in [now_step.saturating_sub(1), now_step, now_step + 1] {
            let expected = format!("{:06}", hotp(&secret.0, step, DIGITS));
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                matched = Some(step);
            }
        }
        let step = matched.ok_or(TotpError::Invalid)?;
        let mut last = self.last_step.lock().unwrap_or_else(|e| e.into_inner());
        if last.get(user).is_some_and(|used| *used >= step) {
            return Err(TotpError::Replayed);
        }
        last.insert(user.to_string(), step);
        Ok(())
    }
}

/// Where `enroll-totp` keeps a user's secret: `<state_dir>/totp/<user>.base32`.
pub fn secret_path(state_dir: &Path, user: &str) -> PathBuf {
    state_dir.join("totp").join(format!("{user}.base32"))
}

/// The user's secret: the config's `totp` reference when set, else the enrolled file.
pub fn load_secret(state_dir: &Path, user: &User) -> Result<TotpSecret, TotpError> {
    if let Some(r) = &user.totp {
        let s = r.load().map_err(|message| TotpError::Storage {
            path: PathBuf::from(r.to_string()),
            message,
        })?;
        let text = s.expose_str().map_err(|_| TotpError::BadSecret)?;
        return TotpSecret::from_base32(text);
    }
    let path = secret_path(state_dir, &user.name);
    match std::fs::read_to_string(&path) {
        Ok(text) => TotpSecret::from_base32(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(TotpError::NotEnrolled(user.name.clone()))
        }
        Err(e) => Err(TotpError::Storage {
            path,
            message: e.to_string(),
        }),
    }
}

/// The result of enrolling a user.
#[derive(Debug)]
pub struct Enrollment {
    /// Where the secret was written.
    pub path: PathBuf,
    /// The `otpauth://` URI to put into an authenticator app.
    pub uri: String,
}

/// Creates a new secret for `user` in the state directory (mode 0600). Refuses to replace an
/// existing one unless `replace`.
pub fn enroll(state_dir: &Path, user: &str, replace: bool) -> Result<Enrollment, TotpError> {
    let path = secret_path(state_dir, user);
    if !user_name_is_safe(user) {
        return Err(TotpError::Storage {
            path,
            message: "user name cannot be used as a file name".into(),
        });
    }
    if path.exists() && !replace {
        return Err(TotpError::Storage {
            path,
            message: "already enrolled (pass --replace to issue a new secret)".into(),
        });
    }
    let secret = TotpSecret::generate();
    write_private_file(&path, format!("{}\n", secret.to_base32()).as_bytes()).map_err(|e| {
        TotpError::Storage {
            path: path.clone(),
            message: e.to_string(),
        }
    })?;
    Ok(Enrollment {
        path,
        uri: otpauth_uri(user, &secret),
    })
}

fn user_name_is_safe(user: &str) -> bool {
    !user.is_empty()
        && !user.starts_with('.')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

/// `otpauth://totp/bastion:<user>?secret=…&issuer=bastion&algorithm=SHA1&digits=6&period=30`.
pub fn otpauth_uri(user: &str, secret: &TotpSecret) -> String {
    let label: String = user
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!(
        "otpauth://totp/bastion:{label}?secret={}&issuer=bastion&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        secret.to_base32()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 column (8 digits).
        let s = rfc_secret();
        for (t, want) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(&s.0, t / STEP_SECS, 8), want, "t={t}");
        }
        // The 6-digit code is the last six digits of the same truncation.
        assert_eq!(code_at(&s, 59), "287082");
    }

    #[test]
    fn accepts_one_step_either_side_only() {
        let s = rfc_secret();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let v = TotpVerifier::new();
        let prev = code_at(&s, 1_700_000_000 - 30);
        assert_eq!(v.verify("alice", &s, &prev, now), Ok(()));
        let next = code_at(&s, 1_700_000_000 + 30);
        assert_eq!(v.verify("alice", &s, &next, now), Ok(()));
        let far = code_at(&s, 1_700_000_000 + 90);
        assert_eq!(
            TotpVerifier::new().verify("alice", &s, &far, now),
            Err(TotpError::Invalid)
        );
        let old = code_at(&s, 1_700_000_000 - 90);
        assert_eq!(
            TotpVerifier::new().verify("alice", &s, &old, now),
            Err(TotpError::Invalid)
        );
    }

    #[test]
    fn replayed_code_is_refused_but_other_users_are_independent() {
        let s = rfc_secret();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let code = code_at(&s, 1_700_000_000);
        let v = TotpVerifier::new();
        assert_eq!(v.verify("alice", &s, &code, now), Ok(()));
        assert_eq!(v.verify("alice", &s, &code, now), Err(TotpError::Replayed));
        // An older, still-in-window code cannot be used after a newer one either.
        let prev = code_at(&s, 1_700_000_000 - 30);
        assert_eq!(v.verify("alice", &s, &prev, now), Err(TotpError::Replayed));
        assert_eq!(v.verify("dana", &s, &code, now), Ok(()));
    }

    #[test]
    fn clones_share_one_memory_so_a_code_serves_one_purpose_once() {
        let s = rfc_secret();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let code = code_at(&s, 1_700_000_000);
        let login = TotpVerifier::new();
        let step_up = login.clone();
        assert_eq!(login.verify("alice", &s, &code, now), Ok(()));
        assert_eq!(
            step_up.verify("alice", &s, &code, now),
            Err(TotpError::Replayed)
        );
        // And the other way round, with the next step's code.
        let next = code_at(&s, 1_700_000_030);
        assert_eq!(step_up.verify("alice", &s, &next, now), Ok(()));
        assert_eq!(
            login.verify("alice", &s, &next, now),
            Err(TotpError::Replayed)
        );
    }

    #[test]
    fn malformed_codes_are_refused_before_any_hmac() {
        let s = rfc_secret();
        let v = TotpVerifier::new();
        for bad in [
            "",
            "12345",
            "1234567",
            "12a456",
            "١٢٣٤٥٦",
            "+12345",
            " 1234 5",
        ] {
            assert_eq!(
                v.verify("alice", &s, bad, SystemTime::now()),
                Err(TotpError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn enroll_writes_private_secret_and_uri_round_trips() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let e = enroll(dir.path(), "alice", false).unwrap();
        let mode = std::fs::metadata(&e.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            e.uri.starts_with("otpauth://totp/bastion:alice?secret="),
            "{}",
            e.uri
        );
        assert!(e
            .uri
            .ends_with("&issuer=bastion&algorithm=SHA1&digits=6&period=30"));
        let stored = std::fs::read_to_string(&e.path).unwrap();
        assert!(e.uri.contains(stored.trim()));
        let user = User {
            name: "alice".into(),
            kind: crate::config::UserKind::Human,
            groups: vec![],
            scram_verifier: None,
            public_keys: vec![],
            totp: None,
            auth: crate::config::AuthMethod::defaults(),
            password_verifier: None,
            allowed_hours: None,
        };
        let secret = load_secret(dir.path(), &user).unwrap();
        let now = SystemTime::now();
        let code = code_at(&secret, unix_secs(now));
        assert_eq!(
            TotpVerifier::new().verify("alice", &secret, &code, now),
            Ok(())
        );
        // A second enrollment does not silently replace the secret.
        assert!(matches!(
            enroll(dir.path(), "alice", false),
            Err(TotpError::Storage { .. })
        ));
        assert!(enroll(dir.path(), "alice", true).is_ok());
    }

    #[test]
    fn path_traversal_user_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../x", "a/b", "..", ""] {
            assert!(enroll(dir.path(), bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn base32_parsing_is_lenient_about_format_not_content() {
        let s = TotpSecret::generate();
        let spaced = s
            .to_base32()
            .to_lowercase()
            .chars()
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(TotpSecret::from_base32(&spaced).unwrap(), s);
        assert_eq!(
            TotpSecret::from_base32("not base32!"),
            Err(TotpError::BadSecret)
        );
        assert_eq!(TotpSecret::from_base32("AAAA"), Err(TotpError::BadSecret));
    }
}
