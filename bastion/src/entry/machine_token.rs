//! Short-lived login tokens for machine identities (issue 10): `bastion token issue --user
//! deploy-bot --ttl 15m [--target prod-db] [--source 10.0.0.0/8] [--uses N]` mints
//! `bt1.<claims>.<signature>` — base64url JSON claims (id, identity, issue and expiry time,
//! optional target, source network and use limit) signed with the bastion's Ed25519 token key
//! (`<state_dir>/tokens/signing.key`, generated on first use, mode 0600). A token is given as
//! the password (PostgreSQL cleartext over TLS, SSH password / keyboard-interactive) by an
//! identity whose `auth` includes `token`.
//!
//! The checks run in a fixed order and the first that fails names itself in the `entries` row
//! (the client only sees a generic failure): format, signature, identity, revocation, expiry,
//! target, source, uses. Revocations and use counts are read from the ledger on every use, so a
//! `bastion token revoke` takes effect at the next login without a restart.
use super::token_ledger::{
    create_private_dir, tokens_dir, IssuedToken, LedgerError, LedgerLock, TokenLedger,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What every login token starts with (format version 1).
pub const TOKEN_PREFIX: &str = "bt1.";
/// Longest token text considered; anything longer is malformed without decoding.
const MAX_TOKEN_LEN: usize = 2048;
/// Seconds a token's issue time may lie in the future (clock skew between nodes).
const CLOCK_SKEW_SECS: i64 = 60;

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenClaims {
    /// Unique id (16 hex digits), what `token list` and `token revoke` name.
    pub id: String,
    /// The identity it logs in as.
    pub sub: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch (refused from this second on).
    pub exp: i64,
    /// The only target it is good for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The network the client must connect from (CIDR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// Most logins it allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
}

/// Why a presented token was refused. The text goes to the `entries` row, never to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// Not `bt1.<claims>.<signature>` in base64url, or the claims are not the expected JSON.
    #[error("token is malformed")]
    Malformed,
    /// The signature does not verify with this bastion's token key.
    #[error("token signature does not verify (not issued by this bastion, or altered)")]
    BadSignature,
    /// Issued for another identity.
    #[error("token {id} is for identity {token_user}, not {claimed}")]
    WrongIdentity {
        /// Token id.
        id: String,
        /// Identity in the token.
        token_user: String,
        /// Identity the client claimed.
        claimed: String,
    },
    /// Revoked with `bastion token revoke`.
    #[error("token {0} was revoked")]
    Revoked(String),
    /// Past its expiry.
    #[error("token {id} expired at {at}")]
    Expired {
        /// Token id.
        id: String,
        /// Expiry, RFC 3339.
        at: String,
    },
    /// Issued in the future (clock skew beyond a minute, or a forged time).
    #[error("token {0} is not valid yet")]
    NotYetValid(String),
    /// Bound to another target.
    #[error("token {id} is for target {audience}, not {target}")]
    WrongTarget {
        /// Token id.
        id: String,
        /// Target in the token.
        audience: String,
        /// Target the client asked for.
        target: String,
    },
    /// The client's address is outside the token's source network.
    #[error("token {id} is bound to source {allowed}; the client connected from {source_ip}")]
    WrongSource {
        /// Token id.
        id: String,
        /// The token's network.
        allowed: String,
        /// The client's address.
        source_ip: IpAddr,
    },
    /// Used as often as it allows.
    #[error("token {id} uses are exhausted ({max} of {max} used)")]
    UsesExhausted {
        /// Token id.
        id: String,
        /// Its limit.
        max: u32,
    },
    /// Revocations or use counts cannot be read: every token is refused.
    #[error("token state unreadable, refusing every token: {0}")]
    LedgerUnavailable(String),
}

/// Loading or creating the token key, or writing the ledger, failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The key file.
    #[error("token key {path}: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The ledger.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// `<state_dir>/tokens/signing.key`: the 32-byte Ed25519 seed in hex.
pub fn key_path(state_dir: &Path) -> PathBuf {
    tokens_dir(state_dir).join("signing.key")
}

/// Loads the token signing key, generating it (mode 0600, never replaced) on first use.
pub fn load_or_create_key(state_dir: &Path) -> Result<SigningKey, TokenError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = key_path(state_dir);
    let err = |message: String| TokenError::Key {
        path: path.clone(),
        message,
    };
    let parse = |text: &str| -> Result<SigningKey, TokenError> {
        let bytes = hex::decode(text.trim()).map_err(|_| err("not a hex key".into()))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| err("not a 32-byte key".into()))?;
        Ok(SigningKey::from_bytes(&seed))
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => return parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e.to_string())),
    }
    create_private_dir(&tokens_dir(state_dir)).map_err(|e| err(e.to_string()))?;
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    // create_new: two processes racing to create the key both end up with the winner's.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut f) => {
            f.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| err(e.to_string()))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
            parse(&text)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// Encodes and signs `claims`.
pub fn sign(key: &SigningKey, claims: &TokenClaims) -> String {
    // Serialising a struct of strings and integers cannot fail.
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let signed = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
    let signature = key.sign(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// True when `text` has the shape of a login token (used to tell a token from a password).
pub fn looks_like_token(text: &str) -> bool {
    text.starts_with(TOKEN_PREFIX)
}

/// Checks the format and the signature and returns the claims; nothing else is checked.
pub fn verify_signature(key: &VerifyingKey, presented: &str) -> Result<TokenClaims, TokenRefusal> {
    if presented.len() > MAX_TOKEN_LEN {
        return Err(TokenRefusal::Malformed);
    }
    let rest = presented
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(TokenRefusal::Malformed)?;
    let (claims_b64, sig_b64) = rest.split_once('.').ok_or(TokenRefusal::Malformed)?;
    let sig_bytes: [u8; 64] = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| TokenRefusal::Malformed)?
        .try_into()
        .map_err(|_| TokenRefusal::Malformed)?;
    let claims_json = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .map_err(|_| TokenRefusal::Malformed)?;
    let signed_len = TOKEN_PREFIX.len() + claims_b64.len();
    let signed = presented.get(..signed_len).ok_or(TokenRefusal::Malformed)?;
    key.verify_strict(signed.as_bytes(), &Signature::from_bytes(&sig_bytes))
        .map_err(|_| TokenRefusal::BadSignature)?;
    serde_json::from_slice(&claims_json).map_err(|_| TokenRefusal::Malformed)
}

/// Compares addresses with IPv4-mapped IPv6 seen as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Parses a `--source` value: a CIDR network, or one address (as a /32 or /128).
pub fn parse_source(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

/// What the caller knows about the login a token is presented for.
#[derive(Debug, Clone, Copy)]
pub struct Presentation<'a> {
    /// The identity the client claimed (`deploy-bot` in `deploy-bot@prod-db`).
    pub identity: &'a str,
    /// The target it asked for.
    pub target: &'a str,
    /// The client's address.
    pub source: IpAddr,
    /// Now, seconds since the epoch.
    pub now: i64,
}

/// Verifies presented tokens (the server side): the public key and the ledger.
#[derive(Debug)]
pub struct TokenVerifier {
    key: VerifyingKey,
    ledger: TokenLedger,
}

impl TokenVerifier {
    /// The verifier for tokens issued from `state_dir` (creates the key on first use).
    pub fn open(state_dir: &Path) -> Result<TokenVerifier, TokenError> {
        Ok(TokenVerifier {
            key: load_or_create_key(state_dir)?.verifying_key(),
            ledger: TokenLedger::in_state_dir(state_dir),
        })
    }

    /// Runs every check in order and, when all pass, counts the use. Blocking (file I/O under
    /// the ledger lock; a few small files).
    pub fn check(&self, presented: &str, p: Presentation<'_>) -> Result<TokenClaims, TokenRefusal> {
        let claims = verify_signature(&self.key, presented)?;
        let id = claims.id.clone();
        if claims.sub != p.identity {
            return Err(TokenRefusal::WrongIdentity {
                id,
                token_user: claims.sub,
                claimed: p.identity.to_string(),
            });
        }
        let unavailable = |e: LedgerError| TokenRefusal::LedgerUnavailable(e.to_string());
        let lock: LedgerLock = self.ledger.lock().map_err(unavailable)?;
        if self
            .ledger
            .revocations()
            .map_err(unavailable)?
            .iter()
            .any(|r| r.id == id)
        {
            return Err(TokenRefusal::Revoked(id));
        }
        if p.now >= claims.exp {
            return Err(TokenRefusal::Expired {
                id,
                at: rfc3339(claims.exp),
            });
        }
        if claims.iat > p.now + CLOCK_SKEW_SECS {
            return Err(TokenRefusal::NotYetValid(id));
        }
        if let Some(audience) = &claims.aud {
            if audience != p.target {
                return Err(TokenRefusal::WrongTarget {
                    id,
                    audience: audience.clone(),
                    target: p.target.to_string(),
                });
            }
        }
        if let Some(src) = &claims.src {
            // A network that does not parse matches nothing (fail closed).
            let inside = parse_source(src).is_some_and(|net| net.contains(&canonical(p.source)));
            if !inside {
                return Err(TokenRefusal::WrongSource {
                    id,
                    allowed: src.clone(),
                    source_ip: canonical(p.source),
                });
            }
        }
        match self
            .ledger
            .consume_use(&lock, &id, claims.uses, claims.exp, p.now)
            .map_err(unavailable)?
        {
            Ok(_) => Ok(claims),
            Err(_) => Err(TokenRefusal::UsesExhausted {
                id,
                max: claims.uses.unwrap_or(0),
            }),
        }
    }
}

/// What `bastion token issue` asks for.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// Identity.
    pub user: String,
    /// Lifetime in seconds.
    pub ttl_secs: i64,
    /// Target binding.
    pub target: Option<String>,
    /// Source binding (already validated network text).
    pub source: Option<ipnet::IpNet>,
    /// Use limit.
    pub max_uses: Option<u32>,
    /// Why.
    pub reason: Option<String>,
    /// Who issues it.
    pub issued_by: String,
}

/// Mints a token: signs it with the state directory's key and records it for `token list`.
/// Returns the listing and the token text (shown once, stored nowhere).
pub fn issue(
    state_dir: &Path,
    req: IssueRequest,
    now: i64,
) -> Result<(IssuedToken, String), TokenError> {
    let key = load_or_create_key(state_dir)?;
    let mut id = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    let claims = TokenClaims {
        id: hex::encode(id),
        sub: req.user.clone(),
        iat: now,
        exp: now.saturating_add(req.ttl_secs),
        aud: req.target.clone(),
        src: req.source.map(|n| n.to_string()),
        uses: req.max_uses,
    };
    let token = sign(&key, &claims);
    let issued = IssuedToken {
        id: claims.id.clone(),
        user: req.user,
        issued_unix: claims.iat,
        expires_unix: claims.exp,
        target: claims.aud.clone(),
        source: claims.src.clone(),
        max_uses: claims.uses,
        reason: req.reason,
        issued_by: req.issued_by,
    };
    let ledger = TokenLedger::in_state_dir(state_dir);
    let lock = ledger.lock()?;
    ledger.record_issued(&lock, issued.clone())?;
    Ok((issued, token))
}

/// RFC 3339 (UTC, seconds) of a Unix time.
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn at<'a>(identity: &'a str, target: &'a str, source: &str, now: i64) -> Presentation<'a> {
        Presentation {
            identity,
            target,
            source: source.parse().unwrap(),
            now,
        }
    }

    fn mint(
        dir: &Path,
        ttl: i64,
        target: Option<&str>,
        src: Option<&str>,
        uses: Option<u32>,
    ) -> String {
        issue(
            dir,
            IssueRequest {
                user: "deploy-bot".into(),
                ttl_secs: ttl,
                target: target.map(str::to_string),
                source: src.map(|s| parse_source(s).unwrap()),
                max_uses: uses,
                reason: Some("test".into()),
                issued_by: "tester".into(),
            },
            NOW,
        )
        .unwrap()
        .1
    }

    #[test]
    fn a_bound_token_passes_only_every_check() {
        let dir = tempfile::tempdir().unwrap();
        let token = mint(dir.path(), 900, Some("prod-db"), Some("10.0.0.0/8"), None);
        assert!(looks_like_token(&token));
        let v = TokenVerifier::open(dir.path()).unwrap();
        let ok = v
            .check(&token, at("deploy-bot", "prod-db", "10.1.2.3", NOW + 10))
            .unwrap();
        assert_eq!(ok.sub, "deploy-bot");
        // IPv4-mapped IPv6 is the same client.
        assert!(v
            .check(&token, at("deploy-bot", "prod-db", "::ffff:10.1.2.3", NOW))
            .is_ok());
        assert!(matches!(
            v.check(&token, at("deploy-bot", "dev-db", "10.1.2.3", NOW)),
            Err(TokenRefusal::WrongTarget { .. })
        ));
        assert!(matches!(
            v.check(&token, at("deploy-bot", "prod-db", "192.168.1.1", NOW)),
            Err(TokenRefusal::WrongSource { .. })
        ));
        assert!(matches!(
            v.check(&token, at("alice", "prod-db", "10.1.2.3", NOW)),
            Err(TokenRefusal::WrongIdentity { .. })
        ));
        assert!(matches!(
            v.check(&token, at("deploy-bot", "prod-db", "10.1.2.3", NOW + 900)),
            Err(TokenRefusal::Expired { .. })
        ));
        assert!(matches!(
            v.check(&token, at("deploy-bot", "prod-db", "10.1.2.3", NOW - 3600)),
            Err(TokenRefusal::NotYetValid(_))
        ));
    }

    #[test]
    fn revocation_and_use_limits_are_read_from_the_ledger_on_every_use() {
        let dir = tempfile::tempdir().unwrap();
        let token = mint(dir.path(), 900, None, None, Some(2));
        let v = TokenVerifier::open(dir.path()).unwrap();
        let p = at("deploy-bot", "any", "127.0.0.1", NOW);
        let id = v.check(&token, p).unwrap().id;
        assert!(v.check(&token, p).is_ok());
        assert_eq!(
            v.check(&token, p),
            Err(TokenRefusal::UsesExhausted {
                id: id.clone(),
                max: 2
            })
        );
        let other = mint(dir.path(), 900, None, None, None);
        let other_id = v.check(&other, p).unwrap().id;
        // The CLI revokes through its own ledger handle; the verifier sees it at once.
        let ledger = TokenLedger::in_state_dir(dir.path());
        let lock = ledger.lock().unwrap();
        assert!(ledger.revoke(&lock, &other_id, None, NOW).unwrap());
        drop(lock);
        assert_eq!(v.check(&other, p), Err(TokenRefusal::Revoked(other_id)));
        // A corrupt revocation list refuses every token.
        std::fs::write(tokens_dir(dir.path()).join("revoked.json"), "nope").unwrap();
        let fresh = mint(dir.path(), 900, None, None, None);
        assert!(matches!(
            v.check(&fresh, p),
            Err(TokenRefusal::LedgerUnavailable(_))
        ));
    }

    #[test]
    fn forged_altered_and_foreign_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let token = mint(dir.path(), 900, Some("prod-db"), None, None);
        let v = TokenVerifier::open(dir.path()).unwrap();
        let p = at("deploy-bot", "dev-db", "127.0.0.1", NOW);
        // Re-sign claims widened to every target with another key: bad signature.
        let foreign = SigningKey::from_bytes(&[7u8; 32]);
        let mut claims = verify_signature(&v.key, &token).unwrap();
        claims.aud = None;
        assert_eq!(
            v.check(&sign(&foreign, &claims), p),
            Err(TokenRefusal::BadSignature)
        );
        // Same claims, this bastion's signature over the *original* claims: bad signature.
        let (_, sig) = token.rsplit_once('.').unwrap();
        let spliced = format!(
            "{TOKEN_PREFIX}{}.{sig}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        assert_eq!(v.check(&spliced, p), Err(TokenRefusal::BadSignature));
        // Every single-character change is refused (malformed or bad signature), never accepted.
        let good = at("deploy-bot", "prod-db", "127.0.0.1", NOW);
        for i in TOKEN_PREFIX.len()..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered == token {
                continue;
            }
            let r = v.check(&altered, good);
            assert!(
                matches!(r, Err(TokenRefusal::Malformed | TokenRefusal::BadSignature)),
                "position {i}: {r:?}"
            );
        }
        for junk in [
            "",
            "bt1.",
            "bt1..",
            "bt1.e30.",
            "bt2.e30.AAAA",
            &"bt1.".repeat(1000),
            &format!("{token}.extra"),
            &format!(" {token}"),
        ] {
            assert!(v.check(junk, good).is_err(), "{junk:?}");
        }
        // Unknown claim fields are refused even when signed (a newer format is not guessed at).
        let key = load_or_create_key(dir.path()).unwrap();
        let mut value = serde_json::to_value(verify_signature(&v.key, &token).unwrap()).unwrap();
        value["admin"] = serde_json::json!(true);
        let signed = format!(
            "{TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&value).unwrap())
        );
        let sig = key.sign(signed.as_bytes());
        let extra = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()));
        assert_eq!(v.check(&extra, good), Err(TokenRefusal::Malformed));
    }

    #[test]
    fn key_is_private_stable_and_issued_tokens_are_listed_without_the_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_key(dir.path()).unwrap();
        let b = load_or_create_key(dir.path()).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        let mode = std::fs::metadata(key_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let token = mint(dir.path(), 60, None, Some("10.0.0.1"), Some(1));
        let listed = TokenLedger::in_state_dir(dir.path()).issued().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].source.as_deref(), Some("10.0.0.1/32"));
        let text = std::fs::read_to_string(tokens_dir(dir.path()).join("issued.json")).unwrap();
        let (_, sig) = token.rsplit_once('.').unwrap();
        assert!(!text.contains(sig));
    }
}
