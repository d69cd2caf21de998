//! The bastion's own SSH keys, generated on first use and persisted under `<state_dir>/ssh/`:
//! `host_ed25519` (the host key clients pin) and `client_ed25519` (the point-of-use key the
//! bastion logs in to targets with; only the bastion holds it). Generation is safe against a
//! concurrent `bastion keys` and `serve`: the first key written wins and the other reads it.
//! Also the trusted user CAs: the file `[server] ssh_user_ca` names, else `user_ca.pub` (one
//! OpenSSH public key line per CA whose user certificates are accepted).
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
    match load_existing(path) {
        Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            generate(path, comment)
        }
        other => other,
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
    // Write to a name no other process uses, then link it to the final name: a crash never
    // leaves half a key behind, and of two processes generating at once (`serve` and
    // `bastion keys client-public`) the first to link wins and the other reads its key.
    let tmp = unique_temp_path(path);
    let written = write_private(&tmp, pem.as_bytes());
    let placed = written.and_then(|()| place_first(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match placed.map_err(|e| io("write", e))? {
        Placed::Won => {}
        Placed::Lost => return load_existing(path),
    }
    let public = public_line(key.public_key());
    let pub_path = path.with_extension("pub");
    let pub_tmp = unique_temp_path(&pub_path);
    std::fs::write(&pub_tmp, format!("{public}\n"))
        .and_then(|()| std::fs::rename(&pub_tmp, &pub_path))
        .map_err(|source| {
            let _ = std::fs::remove_file(&pub_tmp);
            KeyError::Io {
                what: "write",
                path: pub_path,
                source,
            }
        })?;
    tracing::info!(path = %path.display(), fingerprint = %fingerprint(key.public_key()), "generated ssh key");
    Ok(key)
}

/// `<dir>/.<name>.<pid>.<random>.tmp`: unique per process and call.
fn unique_temp_path(path: &Path) -> PathBuf {
    use rand::RngCore;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tag = rand::rngs::OsRng.next_u64();
    path.with_file_name(format!(".{name}.{}.{tag:016x}.tmp", std::process::id()))
}

/// Creates `tmp` (mode 0600, never an existing file) with `bytes`, synced to disk.
fn write_private(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Whether this process's key became the file.
enum Placed {
    Won,
    Lost,
}

/// Gives the complete file `tmp` the name `path` unless `path` already exists. A hard link
/// fails on an existing name, so exactly one of several racing writers wins; where links are
/// not supported, an existence check then a rename (a smaller window, still never half a file).
fn place_first(tmp: &Path, path: &Path) -> std::io::Result<Placed> {
    match std::fs::hard_link(tmp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(Placed::Lost),
        Err(_) => {
            if path.exists() {
                return Ok(Placed::Lost);
            }
            std::fs::rename(tmp, path)?;
        }
    }
    if let Some(dir) = path.parent() {
        // Make the new name durable too (best effort: not every file system allows it).
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(Placed::Won)
}

/// Reads the key another process just placed at `path`.
fn load_existing(path: &Path) -> Result<PrivateKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        what: "read",
        path: path.to_path_buf(),
        source,
    })?;
    PrivateKey::from_openssh(text.as_bytes()).map_err(|e| KeyError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// `ssh-ed25519 AAAA... comment`.
pub fn public_line(key: &PublicKey) -> String {
    key.to_openssh().unwrap_or_default()
}

/// `SHA256:...`, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The trusted user CA keys: the file `[server] ssh_user_ca` names (it must exist and hold at
/// least one key; the config check already said so), else `<state_dir>/ssh/user_ca.pub` if it
/// exists, else none.
pub fn configured_user_cas(server: &crate::config::Server) -> Result<Vec<PublicKey>, KeyError> {
    match &server.ssh_user_ca {
        Some(path) => {
            let keys = load_user_cas(path)?;
            let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no public key in it");
            if keys.is_empty() {
                return Err(KeyError::Io {
                    what: "use the user CA file",
                    path: path.clone(),
                    source: missing,
                });
            }
            Ok(keys)
        }
        None => load_user_cas(&ssh_state_dir(&server.state_dir).join(USER_CA_FILE)),
    }
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
    fn concurrent_generation_agrees_on_one_key() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = ssh_state_dir(dir.path()).join(CLIENT_KEY_FILE);
            let start = std::sync::Arc::new(std::sync::Barrier::new(6));
            let threads: Vec<_> = (0..6)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        load_or_generate(&path, "bastion upstream key")
                    })
                })
                .collect();
            let keys: Vec<_> = threads
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap()
                        .unwrap_or_else(|e| panic!("round {round}: {e}"))
                })
                .collect();
            let on_disk = load_or_generate(&path, "x").unwrap();
            for k in &keys {
                assert_eq!(k.public_key(), on_disk.public_key(), "round {round}");
            }
            let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
            assert_eq!(public.trim(), public_line(on_disk.public_key()));
            // No temporary file is left behind.
            let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        }
    }

    #[test]
    fn configured_user_ca_file_wins_over_the_state_dir_one() {
        let dir = tempfile::tempdir().unwrap();
        let ours =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDyRiHdS0u6+6Q5Z3Y8d2q9FpVZfMRbHq5xv7o8gXH8B";
        let theirs =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN+IykXWjP2Br4kkhimPBDuh+jEy+5yaT7libx0Dqoi";
        let ssh_dir = ssh_state_dir(&dir.path().join("state"));
        std::fs::create_dir_all(&ssh_dir).unwrap();
        std::fs::write(ssh_dir.join(USER_CA_FILE), format!("{theirs}\n")).unwrap();
        std::fs::write(
            dir.path().join("cas.pub"),
            format!("# ours\n{ours} a\n{ours} b\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("p.cedar"),
            "permit (principal, action, resource);\n",
        )
        .unwrap();
        let load = |extra: &str| {
            let path = dir.path().join("bastion.toml");
            let toml = format!(
                "[server]\nssh_listen = \"127.0.0.1:1\"\nstate_dir = \"state\"\n{extra}\n\
                 [policies]\npaths = [\"p.cedar\"]\n"
            );
            std::fs::write(&path, toml).unwrap();
            crate::config::load(&path).unwrap()
        };
        let configured = configured_user_cas(&load("ssh_user_ca = \"cas.pub\"").server).unwrap();
        assert_eq!(configured.len(), 2);
        assert!(configured
            .iter()
            .all(|k| k.key_data() == PublicKey::from_openssh(ours).unwrap().key_data()));
        let fallback = configured_user_cas(&load("").server).unwrap();
        assert_eq!(fallback, vec![PublicKey::from_openssh(theirs).unwrap()]);
    }

    #[test]
    fn user_ca_file_lines_are_numbered_in_errors() {
        let err = parse_public_keys("# comment\n\nssh-ed25519 garbage\n").unwrap_err();
        assert_eq!(err.0, 3);
    }
}
