//! The bastion's own SSH keys, generated on first use and persisted under `<state_dir>/ssh/`:
//! `host_ed25519` (the host key clients pin) and `client_ed25519` (the point-of-use key the
//! bastion logs in to targets with; only the bastion holds it). Also the user-CA list
//! `user_ca.pub` (one OpenSSH public key line per CA whose user certificates are accepted).
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::{HashAlg, LineEnding};
use russh::keys::{PrivateKey, PublicKey};
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the host key under `<state_dir>/ssh/`.
pub const HOST_KEY_FILE: &str = "host_ed25519";
/// File name of the upstream client key under `<state_dir>/ssh/`.
pub const CLIENT_KEY_FILE: &str = "client_ed25519";
/// File name of the trusted user CA list under `<state_dir>/ssh/`.
pub const USER_CA_FILE: &str = "user_ca.pub";

/// A key file that cannot be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// I/O on the key file or its directory.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was attempted (`read`, `write`, `create directory`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file holds no valid OpenSSH key.
    #[error("{} is not a valid OpenSSH key: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
}

/// `<state_dir>/ssh`.
pub fn ssh_state_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("ssh")
}

/// Loads the Ed25519 key at `path`, or generates one and writes it (mode 0600) with its `.pub`.
pub fn load_or_generate(path: &Path, comment: &str) -> Result<PrivateKey, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => PrivateKey::from_openssh(text.as_bytes()).map_err(|e| KeyError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate(path, comment),
        Err(source) => Err(KeyError::Io {
            what: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn generate(path: &Path, comment: &str) -> Result<PrivateKey, KeyError> {
    use rand::RngCore;
    let io = |what, source| KeyError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create directory for", e))?;
    }
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let keypair = Ed25519Keypair::from_seed(&seed);
    seed.fill(0);
    let key =
        PrivateKey::new(KeypairData::from(keypair), comment).map_err(|e| KeyError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| KeyError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    // Write to a temporary name then rename, so a crash never leaves half a key behind.
    let tmp = path.with_extension("tmp");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("write", e))?;
        f.write_all(pem.as_bytes()).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("write", e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io("write", e))?;
    let public = public_line(key.public_key());
    let pub_path = path.with_extension("pub");
    std::fs::write(&pub_path, format!("{public}\n")).map_err(|source| KeyError::Io {
        what: "write",
        path: pub_path,
        source,
    })?;
    tracing::info!(path = %path.display(), fingerprint = %fingerprint(key.public_key()), "generated ssh key");
    Ok(key)
}

/// `ssh-ed25519 AAAA... comment`.
pub fn public_line(key: &PublicKey) -> String {
    key.to_openssh().unwrap_or_default()
}

/// `SHA256:...`, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Reads the trusted user CA keys (one OpenSSH public key per line; `#` comments and blank
/// lines skipped). A missing file means no CA is trusted.
pub fn load_user_cas(path: &Path) -> Result<Vec<PublicKey>, KeyError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(KeyError::Io {
                what: "read",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    parse_public_keys(&text).map_err(|(line, message)| KeyError::Parse {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    })
}

/// Parses OpenSSH public key lines; the error names the 1-based line.
pub fn parse_public_keys(text: &str) -> Result<Vec<PublicKey>, (usize, String)> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(PublicKey::from_openssh(line).map_err(|e| (i + 1, e.to_string()))?);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_persisted_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = ssh_state_dir(dir.path()).join(HOST_KEY_FILE);
        let first = load_or_generate(&path, "bastion host key").unwrap();
        let again = load_or_generate(&path, "bastion host key").unwrap();
        assert_eq!(first.public_key(), again.public_key());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        assert!(public.starts_with("ssh-ed25519 AAAA"), "{public}");
        assert!(fingerprint(first.public_key()).starts_with("SHA256:"));
    }

    #[test]
    fn garbage_key_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host_ed25519");
        std::fs::write(&path, "not a key").unwrap();
        let err = load_or_generate(&path, "x").unwrap_err().to_string();
        assert!(
            err.contains("host_ed25519") && err.contains("not a valid OpenSSH key"),
            "{err}"
        );
    }

    #[test]
    fn user_ca_file_lines_are_numbered_in_errors() {
        let err = parse_public_keys("# comment\n\nssh-ed25519 garbage\n").unwrap_err();
        assert_eq!(err.0, 3);
    }
}
