//! Per-user API tokens for the admin API. A token is `bst_<id>_<secret>`; only its SHA-256 is
//! stored, in `<state_dir>/api_tokens.json` (mode 0600), with its user, scope (`admin` or
//! `approve`), creation time, optional expiry and revocation flag. The file is read on every
//! authentication, so `bastion token issue|revoke` (which edit it directly, no running server
//! needed) take effect at once. A missing file means no tokens; an unreadable one fails closed.
use super::private_file::write_private_file;
use crate::broker::rfc3339;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything in the admin API.
    Admin,
    /// Only list, show, approve and deny approvals.
    Approve,
}

impl Scope {
    /// `admin` or `approve`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Approve => "approve",
        }
    }
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Public id (also inside the token).
    pub id: String,
    /// The user the token acts as (an approval's approver).
    pub user: String,
    /// Scope.
    pub scope: Scope,
    /// Issued at (RFC 3339).
    pub created: String,
    /// Expiry, seconds since the epoch; none: no expiry.
    pub expires_unix: Option<u64>,
    /// Revoked tokens stay listed.
    pub revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredToken {
    #[serde(flatten)]
    info: TokenInfo,
    /// Hex SHA-256 of the whole token.
    sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<StoredToken>,
}

/// Who an authenticated request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's user.
    pub user: String,
    /// The token's scope.
    pub scope: Scope,
    /// The token's id.
    pub token_id: String,
}

/// Reading or writing the token file failed.
#[derive(Debug, thiserror::Error)]
#[error("api token store {path}: {message}")]
pub struct TokenStoreError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

/// The token file.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    write: Mutex<()>,
}

impl TokenStore {
    /// The store at `<state_dir>/api_tokens.json`.
    pub fn in_state_dir(state_dir: &Path) -> TokenStore {
        TokenStore {
            path: state_dir.join("api_tokens.json"),
            write: Mutex::new(()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, message: impl ToString) -> TokenStoreError {
        TokenStoreError {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    fn load(&self) -> Result<TokenFile, TokenStoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
            Err(e) => Err(self.err(e)),
        }
    }

    fn save(&self, file: &TokenFile) -> Result<(), TokenStoreError> {
        let bytes = serde_json::to_vec_pretty(file).map_err(|e| self.err(e))?;
        write_private_file(&self.path, &bytes).map_err(|e| self.err(e))
    }

    /// Issues a token for `user` with `scope`, valid for `ttl` (none: until revoked). Returns its
    /// listing and the token itself, which is shown once and never stored.
    pub fn issue(
        &self,
        user: &str,
        scope: Scope,
        ttl: Option<Duration>,
    ) -> Result<(TokenInfo, String), TokenStoreError> {
        use rand::RngCore;
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = self.load()?;
        let mut id_bytes = [0u8; 5];
        let mut secret = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut id_bytes);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let id = hex::encode(id_bytes);
        let token = format!("bst_{id}_{}", hex::encode(secret));
        let now = SystemTime::now();
        let info = TokenInfo {
            id,
            user: user.to_string(),
            scope,
            created: rfc3339(now),
            expires_unix: ttl.map(|t| unix(now + t)),
            revoked: false,
        };
        file.tokens.push(StoredToken {
            info: info.clone(),
            sha256: hex::encode(Sha256::digest(token.as_bytes())),
        });
        self.save(&file)?;
        Ok((info, token))
    }

    /// Every token, revoked ones included.
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenStoreError> {
        Ok(self.load()?.tokens.into_iter().map(|t| t.info).collect())
    }

    /// Revokes the token `id`; false when there is none.
    pub fn revoke(&self, id: &str) -> Result<bool, TokenStoreError> {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = self.load()?;
        let Some(t) = file.tokens.iter_mut().find(|t| t.info.id == id) else {
            return Ok(false);
        };
        t.info.revoked = true;
        self.save(&file)?;
        Ok(true)
    }

    /// The caller a presented token stands for, or `None` (unknown, wrong, revoked, expired, or
    /// the store unreadable). The hash comparison is constant-time.
    pub fn authenticate(&self, presented: &str) -> Option<Caller> {
        let id = presented.strip_prefix("bst_")?.split('_').next()?;
        let file = match self.load() {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "api tokens unreadable; refusing every token");
                return None;
            }
        };
        let digest = hex::encode(Sha256::digest(presented.as_bytes()));
        let t = file.tokens.iter().find(|t| t.info.id == id)?;
        let matches: bool = t.sha256.as_bytes().ct_eq(digest.as_bytes()).into();
        let expired = t
            .info
            .expires_unix
            .is_some_and(|e| unix(SystemTime::now()) >= e);
        (matches && !t.info.revoked && !expired).then(|| Caller {
            user: t.info.user.clone(),
            scope: t.info.scope,
            token_id: t.info.id.clone(),
        })
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_authenticate_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::in_state_dir(dir.path());
        let (info, token) = store.issue("dana", Scope::Approve, None).unwrap();
        let caller = store.authenticate(&token).unwrap();
        assert_eq!(
            (caller.user.as_str(), caller.scope),
            ("dana", Scope::Approve)
        );
        // Only the hash is at rest.
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains(&token) && !text.contains(token.rsplit('_').next().unwrap()));
        assert!(store.revoke(&info.id).unwrap());
        assert_eq!(store.authenticate(&token), None);
        assert!(store.list().unwrap()[0].revoked);
        assert!(!store.revoke("nope").unwrap());
    }

    #[test]
    fn forged_and_mangled_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::in_state_dir(dir.path());
        let (info, token) = store.issue("dana", Scope::Admin, None).unwrap();
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        for bad in [
            String::new(),
            "bst_".into(),
            format!("bst_{}_", info.id),
            format!("bst_{}", info.id),
            flipped,
            format!("{token}x"),
            token.to_uppercase(),
            format!(" {token}"),
        ] {
            assert_eq!(store.authenticate(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn expired_tokens_are_refused_and_corrupt_store_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::in_state_dir(dir.path());
        let (_, token) = store
            .issue("dana", Scope::Admin, Some(Duration::ZERO))
            .unwrap();
        assert_eq!(store.authenticate(&token), None);
        let (_, good) = store.issue("dana", Scope::Admin, None).unwrap();
        std::fs::write(store.path(), b"{not json").unwrap();
        assert_eq!(store.authenticate(&good), None);
    }
}
