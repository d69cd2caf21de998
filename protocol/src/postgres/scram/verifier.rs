//! Stored SCRAM verifiers in PostgreSQL's `pg_authid` format, parsed and created.

use std::fmt;

use super::error::ScramError;
use super::primitives::{
    b64, client_and_server_keys, random_bytes, salted_password, sha256, unb64, unb64_key, Key,
};

/// A parsed verifier: what the server stores instead of the password. `Debug` hides the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// Salt.
    pub salt: Vec<u8>,
    pub(crate) stored_key: Key,
    pub(crate) server_key: Key,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Verifier {{ iterations: {}, salt: <{} bytes>, keys: <redacted> }}",
            self.iterations,
            self.salt.len()
        )
    }
}

/// The PostgreSQL text form, `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            b64(&self.salt),
            b64(&self.stored_key),
            b64(&self.server_key)
        )
    }
}

impl Verifier {
    /// Parses PostgreSQL's text form.
    pub fn parse(text: &str) -> Result<Self, ScramError> {
        let bad = |why: &str| ScramError::InvalidVerifier(why.to_owned());
        let rest = text
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or_else(|| bad("it does not start with SCRAM-SHA-256$"))?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or_else(|| bad("expected <iterations>:<salt>$<StoredKey>:<ServerKey>"))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or_else(|| bad("expected <iterations>:<salt>"))?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or_else(|| bad("expected <StoredKey>:<ServerKey>"))?;
        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|i| *i > 0)
            .ok_or_else(|| bad("iteration count is not a positive integer"))?;
        let salt = unb64(salt, "salt").map_err(|_| bad("salt is not valid base64"))?;
        if salt.is_empty() {
            return Err(bad("salt is empty"));
        }
        let stored_key = unb64_key(stored, "StoredKey").map_err(|e| bad(&e.to_string()))?;
        let server_key = unb64_key(server, "ServerKey").map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            iterations,
            salt,
            stored_key,
            server_key,
        })
    }

    /// Derives the verifier for `password` with a given salt (RFC test vectors, migrations).
    ///
    /// The password is used as UTF-8 bytes without SASLprep, which equals PostgreSQL's result
    /// for every password that SASLprep leaves unchanged (all printable ASCII).
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> Result<Self, ScramError> {
        if iterations == 0 {
            return Err(ScramError::InvalidVerifier("iteration count is 0".into()));
        }
        let salted = salted_password(password.as_bytes(), salt, iterations)?;
        let (client_key, server_key) = client_and_server_keys(&salted)?;
        Ok(Self {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&client_key),
            server_key,
        })
    }
}

/// Creates a verifier in PostgreSQL's text form for `password`, with a random 16-byte salt.
pub fn make_verifier(password: &str, iterations: u32) -> Result<String, ScramError> {
    let salt: [u8; 16] = random_bytes();
    Verifier::from_password(password, &salt, iterations).map(|v| v.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn made_verifier_parses_and_prints_back() {
        let text = make_verifier("correct horse", 4096).unwrap();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"), "{text}");
        let verifier = Verifier::parse(&text).unwrap();
        assert_eq!(verifier.to_string(), text);
        assert_eq!(verifier.salt.len(), 16);
        assert_ne!(
            make_verifier("correct horse", 4096).unwrap(),
            text,
            "salt is random"
        );
    }

    #[test]
    fn matches_a_verifier_postgresql_made() {
        // CREATE ROLE ... PASSWORD 'pencil' with the RFC 7677 salt, computed independently.
        let v = Verifier::from_password(
            "pencil",
            &unb64("W22ZaJ0SNY7soEsUEjb6gQ==", "s").unwrap(),
            4096,
        )
        .unwrap();
        assert_eq!(
            v.to_string(),
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn debug_hides_keys() {
        let v = Verifier::parse(&make_verifier("pw", 16).unwrap()).unwrap();
        let debug = format!("{v:?}");
        assert!(!debug.contains(&b64(&v.stored_key)), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn rejects_malformed_verifiers() {
        for (text, why) in [
            ("md5abc", "SCRAM-SHA-256$"),
            ("SCRAM-SHA-256$4096:c2FsdA==", "expected"),
            ("SCRAM-SHA-256$0:c2FsdA==$a:b", "positive"),
            ("SCRAM-SHA-256$x:c2FsdA==$a:b", "positive"),
            ("SCRAM-SHA-256$4096:!!$a:b", "salt"),
            (
                "SCRAM-SHA-256$4096:c2FsdA==$YQ==:YQ==",
                "StoredKey is 1 bytes",
            ),
        ] {
            let err = Verifier::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
