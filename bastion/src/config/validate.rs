//! Stage two: check the raw TOML once and build [`Config`]. Errors carry the line of the value
//! at fault (from serde spans) and name the valid choices.
use super::raw::{RawConfig, RawTarget, RawUser};
use super::*;
use std::collections::BTreeSet;
use std::path::Path;
use toml::Spanned;

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        position: None,
        message: format!("cannot read config: {e}"),
    })?;
    let raw: RawConfig = toml::from_str(&source).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        position: e.span().map(|s| line_col(&source, s.start)),
        message: e.message().trim().to_string(),
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    Validator {
        file: path,
        source: &source,
        base: &base,
        warnings: Vec::new(),
    }
    .build(raw)
}

/// 1-based line and column of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

struct Validator<'a> {
    file: &'a Path,
    source: &'a str,
    base: &'a Path,
    warnings: Vec<String>,
}

impl Validator<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Result<T, ConfigError> {
        Err(ConfigError {
            file: self.file.to_path_buf(),
            position: Some(line_col(self.source, span.start)),
            message: message.into(),
        })
    }

    fn err_nowhere<T>(&self, message: impl Into<String>) -> Result<T, ConfigError> {
        Err(ConfigError {
            file: self.file.to_path_buf(),
            position: None,
            message: message.into(),
        })
    }

    fn path(&self, p: &str) -> PathBuf {
        self.base.join(p)
    }

    fn duration(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) => {
                parse_duration(v.get_ref()).or_else(|e| self.err(v.span(), format!("{key}: {e}")))
            }
        }
    }

    /// Parses a secret reference; a `file:` secret others may read is a warning.
    fn secret_ref(
        &mut self,
        value: &Spanned<String>,
        what: &str,
    ) -> Result<SecretRef, ConfigError> {
        let r = SecretRef::parse(value.get_ref(), self.base)
            .or_else(|e| self.err(value.span(), format!("{what}: {e}")))?;
        if let Some(w) = r.permission_warning() {
            self.warnings.push(format!("{what}: {w}"));
        }
        Ok(r)
    }

    /// Parses a secret reference and reads the secret now, so a missing one stops the start.
    fn loaded_secret(
        &mut self,
        value: &Spanned<String>,
        what: &str,
    ) -> Result<(SecretRef, Secret), ConfigError> {
        let r = self.secret_ref(value, what)?;
        let secret = r
            .load()
            .or_else(|e| self.err(value.span(), format!("{what}: {e}")))?;
        Ok((r, secret))
    }

    fn socket_addr(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
    ) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(v) = value else { return Ok(None) };
        v.get_ref().parse::<SocketAddr>().map(Some).or_else(|_| {
            self.err(
                v.span(),
                format!(
                    "{key}: {:?} is not an address; expected ip:port, e.g. \"127.0.0.1:6432\"",
                    v.get_ref()
                ),
            )
        })
    }

    fn build(mut self, raw: RawConfig) -> Result<Config, ConfigError> {
        let server = self.server(&raw)?;
        let users = self.users(&raw.users)?;
        let targets = self.targets(&raw.targets)?;
        let policies = self.policies(&raw)?;
        let recorder = self.recorder(&raw)?;
        let limits = self.limits(&raw)?;
        let approvals = Approvals {
            timeout: self.duration(
                &raw.approvals.timeout,
                "approvals.timeout",
                Duration::from_secs(300),
            )?,
            otp_fresh_for: self.duration(
                &raw.approvals.otp_fresh_for,
                "approvals.otp_fresh_for",
                Duration::from_secs(300),
            )?,
            webhooks: raw.approvals.webhooks.clone(),
        };
        Ok(Config {
            path: self.file.to_path_buf(),
            server,
            users,
            targets,
            policies,
            recorder,
            limits,
            approvals,
            warnings: self.warnings,
        })
    }

    fn server(&mut self, raw: &RawConfig) -> Result<Server, ConfigError> {
        let s = &raw.server;
        let postgres_listen = self.socket_addr(&s.postgres_listen, "server.postgres_listen")?;
        let ssh_listen = self.socket_addr(&s.ssh_listen, "server.ssh_listen")?;
        if postgres_listen.is_none() && ssh_listen.is_none() {
            return self.err_nowhere(
                "[server] sets neither postgres_listen nor ssh_listen: nothing to serve",
            );
        }
        let state_dir = self.path(s.state_dir.as_deref().unwrap_or("state"));
        let audit_dir = self.path(s.audit_dir.as_deref().unwrap_or("audit"));
        let admin_socket = s
            .admin_socket
            .as_deref()
            .map(|p| self.path(p))
            .unwrap_or_else(|| state_dir.join("admin.sock"));
        let tls = match (&s.tls_cert, &s.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let cert_path = self.path(cert.get_ref());
                let pem = std::fs::read(&cert_path).or_else(|e| {
                    self.err(cert.span(), format!("server.tls_cert: cannot read {}: {e}", cert_path.display()))
                })?;
                let n = rustls_pemfile::certs(&mut pem.as_slice()).filter(|c| c.is_ok()).count();
                if n == 0 {
                    return self.err(
                        cert.span(),
                        format!("server.tls_cert: {} holds no PEM certificate", cert_path.display()),
                    );
                }
                let (key_ref, key_secret) = self.loaded_secret(key, "server.tls_key")?;
                if !matches!(rustls_pemfile::private_key(&mut key_secret.expose()), Ok(Some(_))) {
                    return self.err(key.span(), format!("server.tls_key: {key_ref} holds no PEM private key"));
                }
                Some(TlsFiles { cert: cert_path, key: key_ref })
            }
            (Some(v), None) | (None, Some(v)) => {
                return self.err(v.span(), "server.tls_cert and server.tls_key go together: set both, or neither to generate a self-signed pair")
            }
        };
        let mut allow_plaintext_from = Vec::new();
        for net in &s.allow_plaintext_from {
            let parsed = net.get_ref().parse::<ipnet::IpNet>().or_else(|_| {
                self.err(
                    net.span(),
                    format!("server.allow_plaintext_from: {:?} is not a network; expected CIDR, e.g. \"127.0.0.1/32\"", net.get_ref()),
                )
            })?;
            allow_plaintext_from.push(parsed);
        }
        Ok(Server {
            node: s.node.clone().unwrap_or_else(|| "node1".into()),
            postgres_listen,
            ssh_listen,
            admin_socket,
            state_dir,
            audit_dir,
            tls,
            allow_plaintext_from,
            shutdown_grace: self.duration(
                &s.shutdown_grace,
                "server.shutdown_grace",
                Duration::from_secs(10),
            )?,
        })
    }

    fn name(
        &self,
        name: &Spanned<String>,
        what: &str,
        seen: &mut BTreeSet<String>,
    ) -> Result<String, ConfigError> {
        let n = name.get_ref();
        if n.is_empty() || n.contains('@') || n.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return self.err(
                name.span(),
                format!("{what} name {n:?} is invalid: use letters, digits, '-', '_' or '.', without '@' or spaces"),
            );
        }
        if !seen.insert(n.clone()) {
            return self.err(
                name.span(),
                format!("duplicate {what} name {n:?}: names must be unique"),
            );
        }
        Ok(n.clone())
    }

    fn users(&mut self, raw: &[RawUser]) -> Result<BTreeMap<String, User>, ConfigError> {
        let mut seen = BTreeSet::new();
        let mut out = BTreeMap::new();
        for u in raw {
            let name = self.name(&u.name, "user", &mut seen)?;
            let kind = match u.kind.get_ref().as_str() {
                "human" => UserKind::Human,
                "service" => UserKind::Service,
                "agent" => UserKind::Agent,
                other => {
                    return self.err(
                        u.kind.span(),
                        format!(
                        "user {name}: unknown kind {other:?}; valid kinds: human, service, agent"
                    ),
                    )
                }
            };
            let scram_verifier = match &u.scram_verifier {
                None => None,
                Some(v) => {
                    let (_, secret) =
                        self.loaded_secret(v, &format!("user {name}: scram_verifier"))?;
                    if !secret.expose().starts_with(b"SCRAM-SHA-256$") {
                        return self.err(
                            v.span(),
                            format!("user {name}: scram_verifier must hold a verifier of the form SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"),
                        );
                    }
                    Some(secret)
                }
            };
            let mut public_keys = Vec::new();
            for k in &u.public_keys {
                if russh::keys::PublicKey::from_openssh(k.get_ref()).is_err() {
                    return self.err(
                        k.span(),
                        format!("user {name}: public key is not an OpenSSH public key line (e.g. \"ssh-ed25519 AAAA... comment\")"),
                    );
                }
                public_keys.push(k.get_ref().clone());
            }
            let totp = match &u.totp {
                None => None,
                Some(t) => Some(self.secret_ref(t, &format!("user {name}: totp"))?),
            };
            if kind != UserKind::Human && totp.is_some() {
                self.warnings.push(format!(
                    "user {name} is a {} identity with a one-time-code secret: only humans hold a second factor",
                    kind.as_str()
                ));
            }
            out.insert(
                name.clone(),
                User {
                    name,
                    kind,
                    groups: u.groups.clone(),
                    scram_verifier,
                    public_keys,
                    totp,
                },
            );
        }
        Ok(out)
    }

    fn targets(&mut self, raw: &[RawTarget]) -> Result<BTreeMap<String, Target>, ConfigError> {
        let mut seen = BTreeSet::new();
        let mut out = BTreeMap::new();
        for t in raw {
            let name = self.name(&t.name, "target", &mut seen)?;
            let protocol = match t.protocol.get_ref().as_str() {
                "postgres" => Protocol::Postgres,
                "ssh" => Protocol::Ssh,
                other => {
                    return self.err(
                        t.protocol.span(),
                        format!(
                        "target {name}: unknown protocol {other:?}; valid protocols: postgres, ssh"
                    ),
                    )
                }
            };
            let address = t.address.get_ref().clone();
            let port_ok = address.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
            });
            if !port_ok {
                return self.err(
                    t.address.span(),
                    format!("target {name}: address {address:?} is not host:port, e.g. \"127.0.0.1:5432\""),
                );
            }
            let credential = if protocol == Protocol::Ssh && t.credential.get_ref() == "bastion:key"
            {
                None
            } else {
                let (r, _) =
                    self.loaded_secret(&t.credential, &format!("target {name}: credential"))?;
                Some(r)
            };
            let mut tls = None;
            let mut host_key = None;
            match protocol {
                Protocol::Postgres => {
                    let mode = t.tls.as_ref().map(|m| (m.get_ref().as_str(), m.span()));
                    tls = Some(match mode {
                        Some(("disable", _)) => UpstreamTls::Disable,
                        None | Some(("verify-full", _)) => {
                            let Some(root) = &t.tls_root else {
                                return self.err(
                                    t.name.span(),
                                    format!("target {name}: tls_root is required to verify the target (or set tls = \"disable\")"),
                                );
                            };
                            let path = self.path(root.get_ref());
                            let pem = std::fs::read(&path).or_else(|e| {
                                self.err(root.span(), format!("target {name}: tls_root: cannot read {}: {e}", path.display()))
                            })?;
                            if rustls_pemfile::certs(&mut pem.as_slice()).filter(|c| c.is_ok()).count() == 0 {
                                return self.err(
                                    root.span(),
                                    format!("target {name}: tls_root: {} holds no PEM certificate", path.display()),
                                );
                            }
                            UpstreamTls::VerifyFull { root: path }
                        }
                        Some((other, span)) => {
                            return self.err(
                                span,
                                format!("target {name}: unknown tls mode {other:?}; valid modes: verify-full, disable"),
                            )
                        }
                    });
                    if let Some(k) = &t.host_key {
                        return self.err(
                            k.span(),
                            format!("target {name}: host_key applies to ssh targets only"),
                        );
                    }
                }
                Protocol::Ssh => {
                    let Some(k) = &t.host_key else {
                        return self.err(
                            t.name.span(),
                            format!("target {name}: host_key is required for ssh targets (the target's pinned public host key)"),
                        );
                    };
                    if russh::keys::PublicKey::from_openssh(k.get_ref()).is_err() {
                        return self.err(
                            k.span(),
                            format!("target {name}: host_key is not an OpenSSH public key line (e.g. \"ssh-ed25519 AAAA...\")"),
                        );
                    }
                    host_key = Some(k.get_ref().clone());
                    for (key, v) in [("tls_root", &t.tls_root), ("tls", &t.tls)] {
                        if let Some(v) = v {
                            return self.err(
                                v.span(),
                                format!("target {name}: {key} applies to postgres targets only"),
                            );
                        }
                    }
                }
            }
            out.insert(
                name.clone(),
                Target {
                    name,
                    protocol,
                    address,
                    tags: t.tags.clone(),
                    upstream_user: t.upstream_user.get_ref().clone(),
                    credential,
                    database: t.database.clone(),
                    tls,
                    host_key,
                },
            );
        }
        Ok(out)
    }

    fn policy_files(&self, paths: &[Spanned<String>]) -> Result<Vec<PathBuf>, ConfigError> {
        let mut files = Vec::new();
        for p in paths {
            let path = self.path(p.get_ref());
            let meta = std::fs::metadata(&path).or_else(|e| {
                self.err(
                    p.span(),
                    format!("policies: cannot read {}: {e}", path.display()),
                )
            })?;
            if meta.is_dir() {
                let entries = std::fs::read_dir(&path).or_else(|e| {
                    self.err(
                        p.span(),
                        format!("policies: cannot list {}: {e}", path.display()),
                    )
                })?;
                let mut found: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| f.extension().is_some_and(|x| x == "cedar"))
                    .collect();
                found.sort();
                if found.is_empty() {
                    return self.err(
                        p.span(),
                        format!("policies: {} holds no .cedar file", path.display()),
                    );
                }
                files.extend(found);
            } else {
                files.push(path);
            }
        }
        Ok(files)
    }

    fn policies(&self, raw: &RawConfig) -> Result<Policies, ConfigError> {
        if raw.policies.paths.is_empty() {
            return self
                .err_nowhere("[policies] paths is empty: with no policy nothing would be allowed");
        }
        Ok(Policies {
            files: self.policy_files(&raw.policies.paths)?,
            shadow_files: self.policy_files(&raw.policies.shadow)?,
        })
    }

    fn recorder(&mut self, raw: &RawConfig) -> Result<Recorder, ConfigError> {
        let r = &raw.recorder;
        let durability = match r
            .durability
            .as_ref()
            .map(|d| (d.get_ref().as_str(), d.span()))
        {
            None | Some(("os", _)) => Durability::Os,
            Some(("fsync", _)) => Durability::Fsync,
            Some((other, span)) => {
                return self.err(
                    span,
                    format!(
                        "recorder.durability: unknown value {other:?}; valid values: os, fsync"
                    ),
                )
            }
        };
        let allow_on_error = match r.on_recorder_error.as_ref().map(|d| (d.get_ref().as_str(), d.span())) {
            None | Some(("deny", _)) => false,
            Some(("allow", _)) => {
                self.warnings.push(
                    "recorder.on_recorder_error = \"allow\": actions will run even when they cannot be recorded".into(),
                );
                true
            }
            Some((other, span)) => {
                return self.err(span, format!("recorder.on_recorder_error: unknown value {other:?}; valid values: deny, allow"))
            }
        };
        let signing_key = match &r.signing_key {
            None => None,
            Some(k) => Some(self.loaded_secret(k, "recorder.signing_key")?.0),
        };
        Ok(Recorder {
            durability,
            roll_max_rows: r.roll_max_rows.unwrap_or(100_000).max(1),
            roll_max_age: self.duration(
                &r.roll_max_age,
                "recorder.roll_max_age",
                Duration::from_secs(60),
            )?,
            queue_capacity: r.queue_capacity.unwrap_or(8192).max(1),
            retain_days: r.retain_days,
            allow_on_error,
            signing_key,
        })
    }

    fn limits(&self, raw: &RawConfig) -> Result<Limits, ConfigError> {
        let l = &raw.limits;
        Ok(Limits {
            max_connections: l.max_connections.unwrap_or(1024).max(1),
            max_sessions_per_identity: l.max_sessions_per_identity.unwrap_or(32).max(1),
            max_frame_bytes: l.max_frame_bytes.unwrap_or(32 << 20).max(1024),
            max_statement_bytes: l.max_statement_bytes.unwrap_or(1 << 20).max(64),
            idle_timeout: self.duration(
                &l.idle_timeout,
                "limits.idle_timeout",
                Duration::from_secs(3600),
            )?,
            max_session: self.duration(
                &l.max_session,
                "limits.max_session",
                Duration::from_secs(12 * 3600),
            )?,
            lockout_after: l.lockout_after.unwrap_or(5).max(1),
            lockout_for: self.duration(
                &l.lockout_for,
                "limits.lockout_for",
                Duration::from_secs(900),
            )?,
            login_timeout: self.duration(
                &l.login_timeout,
                "limits.login_timeout",
                Duration::from_secs(30),
            )?,
        })
    }
}
