//! What the bastion remembers about login tokens, in `<state_dir>/tokens/` (directory 0700,
//! files 0600, replaced atomically): `revoked.json` (ids revoked by `bastion token revoke`),
//! `uses.json` (how often each token was accepted) and `issued.json` (what `bastion token
//! issue` minted, without signatures, for `bastion token list`; the server never reads it — a
//! token is valid by its signature). Every read-modify-write holds an exclusive lock on
//! `tokens/.lock`, so the CLI and a running server (or two servers on one state directory)
//! never lose each other's updates. A missing file is empty; a corrupt `revoked.json` or
//! `uses.json` fails closed (every token refused).
use crate::admin::private_file::write_private_file;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Reading or writing a ledger file failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token state {path}: {message}")]
pub struct LedgerError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

/// A minted login token as `token list` shows it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    /// Token id (inside the token).
    pub id: String,
    /// Identity it logs in as.
    pub user: String,
    /// Issued at, seconds since the epoch.
    pub issued_unix: i64,
    /// Expiry, seconds since the epoch.
    pub expires_unix: i64,
    /// The only target it is good for, if bound.
    pub target: Option<String>,
    /// The source network it is bound to, if bound.
    pub source: Option<String>,
    /// Most logins it allows, if bounded.
    pub max_uses: Option<u32>,
    /// Why it was issued.
    pub reason: Option<String>,
    /// Who issued it (the OS user running the CLI).
    pub issued_by: String,
}

/// One revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Token id.
    pub id: String,
    /// When, seconds since the epoch.
    pub revoked_unix: i64,
    /// The token's expiry when known (revocations of long-expired tokens are pruned).
    pub expires_unix: Option<i64>,
}

/// Use count of one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UseCount {
    /// Accepted logins so far.
    pub count: u32,
    /// The token's expiry (counts of expired tokens are pruned).
    pub expires_unix: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IssuedFile {
    tokens: Vec<IssuedToken>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RevokedFile {
    revoked: Vec<Revocation>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UsesFile {
    uses: BTreeMap<String, UseCount>,
}

/// Revocations and use counts older than this past expiry are dropped.
const PRUNE_AFTER_SECS: i64 = 7 * 86_400;

/// The ledger directory.
#[derive(Debug, Clone)]
pub struct TokenLedger {
    dir: PathBuf,
}

/// An exclusive lock on the ledger, released on drop.
pub struct LedgerLock {
    file: std::fs::File,
}

impl Drop for LedgerLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl TokenLedger {
    /// The ledger in `<state_dir>/tokens/`.
    pub fn in_state_dir(state_dir: &Path) -> TokenLedger {
        TokenLedger {
            dir: tokens_dir(state_dir),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn err(&self, name: &str, message: impl ToString) -> LedgerError {
        LedgerError {
            path: self.path(name),
            message: message.to_string(),
        }
    }

    /// Takes the ledger lock (blocking), creating the directory when missing.
    pub fn lock(&self) -> Result<LedgerLock, LedgerError> {
        create_private_dir(&self.dir).map_err(|e| self.err("", e))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path(".lock"))
            .map_err(|e| self.err(".lock", e))?;
        file.lock().map_err(|e| self.err(".lock", e))?;
        Ok(LedgerLock { file })
    }

    fn read<T: Default + for<'de> Deserialize<'de>>(&self, name: &str) -> Result<T, LedgerError> {
        match std::fs::read(self.path(name)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.err(name, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(self.err(name, e)),
        }
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), LedgerError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| self.err(name, e))?;
        write_private_file(&self.path(name), &bytes).map_err(|e| self.err(name, e))
    }

    /// Records a minted token (caller holds the lock).
    pub fn record_issued(&self, _lock: &LedgerLock, token: IssuedToken) -> Result<(), LedgerError> {
        let mut file: IssuedFile = self.read("issued.json")?;
        file.tokens.push(token);
        self.write("issued.json", &file)
    }

    /// Every minted token still listed.
    pub fn issued(&self) -> Result<Vec<IssuedToken>, LedgerError> {
        Ok(self.read::<IssuedFile>("issued.json")?.tokens)
    }

    /// Revocations now in force.
    pub fn revocations(&self) -> Result<Vec<Revocation>, LedgerError> {
        Ok(self.read::<RevokedFile>("revoked.json")?.revoked)
    }

    /// Use counts by token id.
    pub fn use_counts(&self) -> Result<BTreeMap<String, UseCount>, LedgerError> {
        Ok(self.read::<UsesFile>("uses.json")?.uses)
    }

    /// Revokes `id` (caller holds the lock). `false` when it was revoked already.
    pub fn revoke(
        &self,
        _lock: &LedgerLock,
        id: &str,
        expires_unix: Option<i64>,
        now: i64,
    ) -> Result<bool, LedgerError> {
        let mut file: RevokedFile = self.read("revoked.json")?;
        if file.revoked.iter().any(|r| r.id == id) {
            return Ok(false);
        }
        file.revoked
            .retain(|r| r.expires_unix.is_none_or(|e| e + PRUNE_AFTER_SECS > now));
        file.revoked.push(Revocation {
            id: id.to_string(),
            revoked_unix: now,
            expires_unix,
        });
        self.write("revoked.json", &file)?;
        Ok(true)
    }

    /// Counts one accepted use of `id` unless that would exceed `max` (caller holds the lock).
    /// Returns the uses so far before this one in `Err` when the token is used up.
    pub fn consume_use(
        &self,
        _lock: &LedgerLock,
        id: &str,
        max: Option<u32>,
        expires_unix: i64,
        now: i64,
    ) -> Result<Result<u32, u32>, LedgerError> {
        let mut file: UsesFile = self.read("uses.json")?;
        let used = file.uses.get(id).map_or(0, |u| u.count);
        if max.is_some_and(|m| used >= m) {
            return Ok(Err(used));
        }
        file.uses
            .retain(|_, u| u.expires_unix + PRUNE_AFTER_SECS > now);
        file.uses.insert(
            id.to_string(),
            UseCount {
                count: used.saturating_add(1),
                expires_unix,
            },
        );
        self.write("uses.json", &file)?;
        Ok(Ok(used + 1))
    }
}

/// `<state_dir>/tokens`.
pub fn tokens_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("tokens")
}

/// Creates `dir` (and parents) with mode 0700 when missing.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_are_counted_up_to_the_maximum_and_survive_a_new_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = TokenLedger::in_state_dir(dir.path());
        let lock = ledger.lock().unwrap();
        assert_eq!(
            ledger.consume_use(&lock, "a", Some(2), 100, 10).unwrap(),
            Ok(1)
        );
        assert_eq!(
            ledger.consume_use(&lock, "a", Some(2), 100, 10).unwrap(),
            Ok(2)
        );
        assert_eq!(
            ledger.consume_use(&lock, "a", Some(2), 100, 10).unwrap(),
            Err(2)
        );
        drop(lock);
        let again = TokenLedger::in_state_dir(dir.path());
        let lock = again.lock().unwrap();
        assert_eq!(
            again.consume_use(&lock, "a", Some(2), 100, 10).unwrap(),
            Err(2)
        );
        assert_eq!(again.consume_use(&lock, "b", None, 100, 10).unwrap(), Ok(1));
        assert_eq!(again.use_counts().unwrap()["a"].count, 2);
    }

    #[test]
    fn revocations_are_idempotent_and_corrupt_files_fail_closed() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = TokenLedger::in_state_dir(dir.path());
        let lock = ledger.lock().unwrap();
        assert!(ledger.revoke(&lock, "a", Some(100), 10).unwrap());
        assert!(!ledger.revoke(&lock, "a", Some(100), 11).unwrap());
        assert_eq!(ledger.revocations().unwrap().len(), 1);
        std::fs::write(tokens_dir(dir.path()).join("revoked.json"), b"{oops").unwrap();
        assert!(ledger.revocations().is_err());
        std::fs::write(tokens_dir(dir.path()).join("uses.json"), b"[").unwrap();
        assert!(ledger.consume_use(&lock, "b", None, 100, 10).is_err());
    }

    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ledger = TokenLedger::in_state_dir(dir.path());
        let lock = ledger.lock().unwrap();
        ledger.revoke(&lock, "a", None, 1).unwrap();
        let d = tokens_dir(dir.path());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&d.join("revoked.json")), 0o600);
    }
}
