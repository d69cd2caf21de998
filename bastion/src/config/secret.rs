//! Secret references (`env:NAME`, `file:PATH`) and the secret bytes they resolve to.
//! Secrets are never written inline in the config; their `Debug` prints no secret.
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a secret lives.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable of the bastion process.
    Env(String),
    /// A file (relative paths are relative to the config file).
    File(PathBuf),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl SecretRef {
    /// Parses `env:NAME` or `file:PATH`; anything else is refused with the valid forms.
    pub fn parse(text: &str, base: &Path) -> Result<SecretRef, String> {
        if let Some(name) = text.strip_prefix("env:") {
            if name.is_empty() {
                return Err("`env:` needs a variable name, e.g. `env:PROD_DB_PASSWORD`".into());
            }
            return Ok(SecretRef::Env(name.to_string()));
        }
        if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err("`file:` needs a path, e.g. `file:secrets/prod-db.password`".into());
            }
            return Ok(SecretRef::File(base.join(path)));
        }
        Err(format!(
            "secrets are referenced, never inlined: expected `env:NAME` or `file:PATH`, found {:?}",
            redact_preview(text)
        ))
    }

    /// Reads the secret now. Trailing newlines of files are trimmed.
    pub fn load(&self) -> Result<Secret, String> {
        match self {
            SecretRef::Env(name) => std::env::var(name)
                .map(|v| Secret(v.into_bytes()))
                .map_err(|_| format!("environment variable {name} is not set")),
            SecretRef::File(path) => std::fs::read(path)
                .map(|mut v| {
                    while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        v.pop();
                    }
                    Secret(v)
                })
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display())),
        }
    }

    /// For `file:` secrets: a warning when group or others may read the file.
    pub fn permission_warning(&self) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let SecretRef::File(path) = self else {
            return None;
        };
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "secret file {} is readable by group or others (mode {:o}); run chmod 600",
                path.display(),
                mode & 0o777
            )
        })
    }
}

/// Shows at most the first 4 characters of something that may be a pasted secret.
fn redact_preview(text: &str) -> String {
    let head: String = text.chars().take(4).collect();
    if text.chars().count() > 4 {
        format!("{head}…")
    } else {
        head
    }
}

/// Secret bytes. `Debug` prints only the length.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// The secret's bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as UTF-8 text.
    pub fn expose_str(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.0).map_err(|_| "secret is not valid UTF-8".to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}
