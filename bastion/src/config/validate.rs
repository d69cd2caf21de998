//! Stage two: check the raw TOML once and build [`Config`]. Errors carry the line of the value
//! at fault (from serde spans) and name the valid choices.
use super::raw::{RawConfig, RawTarget, RawUser};
use super::*;
use std::collections::BTreeSet;
use std::path::Path;
use toml::Spanned;

mod approvals_admin;

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
        let users = self.users(&raw.users, server.forbid_static_machine_credentials)?;
        let mut targets = self.targets(&raw.targets)?;
        self.upstream_auth(&raw.targets, &server, &users, &mut targets)?;
        let policies = self.policies(&raw)?;
        let recorder = self.recorder(&raw)?;
        let limits = self.limits(&raw)?;
        let approvals = self.approvals(&raw)?;
        let admin = self.admin_api(&raw, &server)?;
        Ok(Config {
            path: self.file.to_path_buf(),
            server,
            users,
            targets,
            policies,
            recorder,
            limits,
            approvals,
            admin,
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
            forbid_static_machine_credentials: s.forbid_static_machine_credentials.unwrap_or(false),
            ssh_user_ca: self.ssh_user_ca(&s.ssh_user_ca)?,
        })
    }

    /// `server.ssh_user_ca`: a readable file of at least one OpenSSH public key line.
    fn ssh_user_ca(&self, value: &Option<Spanned<String>>) -> Result<Option<PathBuf>, ConfigError> {
        let Some(v) = value else { return Ok(None) };
        let path = self.path(v.get_ref());
        let shown = path.display();
        let text = std::fs::read_to_string(&path).or_else(|e| {
            self.err(
                v.span(),
                format!("server.ssh_user_ca: cannot read {shown}: {e}"),
            )
        })?;
        match crate::ssh::keys::parse_public_keys(&text) {
            Ok(keys) if keys.is_empty() => self.err(
                v.span(),
                format!(
                    "server.ssh_user_ca: {shown} holds no public key; expected OpenSSH lines \
                     like \"ssh-ed25519 AAAA... ca\""
                ),
            ),
            Ok(_) => Ok(Some(path.clone())),
            Err((line, message)) => self.err(
                v.span(),
                format!(
                    "server.ssh_user_ca: {shown} line {line} is not an OpenSSH public key: \
                     {message}"
                ),
            ),
        }
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

    fn users(
        &mut self,
        raw: &[RawUser],
        forbid_static: bool,
    ) -> Result<BTreeMap<String, User>, ConfigError> {
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
            let auth = self.auth_methods(u, &name, kind)?;
            let password_verifier = match &u.password_verifier {
                None => None,
                Some(v) => {
                    let what = format!("user {name}: password_verifier");
                    let (r, secret) = self.loaded_secret(v, &what)?;
                    if !secret.expose().starts_with(b"SCRAM-SHA-256$") {
                        return self.err(
                            v.span(),
                            format!("{what} must hold a verifier of the form SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (`bastion users set-password` writes one)"),
                        );
                    }
                    Some(r)
                }
            };
            let allowed_hours =
                match &u.allowed_hours {
                    None => None,
                    Some(h) => Some(HourWindow::parse(h.get_ref()).or_else(|e| {
                        self.err(h.span(), format!("user {name}: allowed_hours: {e}"))
                    })?),
                };
            if kind != UserKind::Human {
                self.static_machine_credentials(u, &name, kind, forbid_static)?;
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
                    auth,
                    password_verifier,
                    allowed_hours,
                },
            );
        }
        Ok(out)
    }

    /// `auth = [...]`: known names, not empty, `password_totp` for humans only.
    fn auth_methods(
        &mut self,
        u: &RawUser,
        name: &str,
        kind: UserKind,
    ) -> Result<Vec<AuthMethod>, ConfigError> {
        let Some(list) = &u.auth else {
            return Ok(AuthMethod::defaults());
        };
        let mut methods = Vec::new();
        for m in list {
            let Some(method) = AuthMethod::parse(m.get_ref()) else {
                let valid: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.as_str()).collect();
                return self.err(
                    m.span(),
                    format!(
                        "user {name}: unknown auth method {:?}; valid methods: {}",
                        m.get_ref(),
                        valid.join(", ")
                    ),
                );
            };
            if method == AuthMethod::PasswordTotp && kind != UserKind::Human {
                return self.err(
                    m.span(),
                    format!("user {name}: password_totp is for humans; a {} identity logs in with tokens, keys or certificates", kind.as_str()),
                );
            }
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        if methods.is_empty() {
            return self.err(
                u.name.span(),
                format!("user {name}: auth = [] leaves no way to log in; list at least one method or remove the user"),
            );
        }
        if methods.contains(&AuthMethod::Scram) && u.scram_verifier.is_none() {
            self.warnings.push(format!(
                "user {name}: auth lists scram but the user has no scram_verifier; scram logins will fail"
            ));
        }
        if methods.contains(&AuthMethod::PublicKey) && u.public_keys.is_empty() && u.auth.is_some()
        {
            self.warnings.push(format!(
                "user {name}: auth lists publickey but the user has no public_keys; key logins will fail"
            ));
        }
        Ok(methods)
    }

    /// Service and agent identities should hold no long-lived secret: each static credential is
    /// a warning, or an error with `server.forbid_static_machine_credentials = true`.
    fn static_machine_credentials(
        &mut self,
        u: &RawUser,
        name: &str,
        kind: UserKind,
        forbid: bool,
    ) -> Result<(), ConfigError> {
        let found = u
            .scram_verifier
            .as_ref()
            .map(|v| ("scram_verifier", v.span()))
            .into_iter()
            .chain(u.public_keys.first().map(|k| ("public_keys", k.span())));
        for (key, span) in found {
            let message = format!(
                "user {name} is a {} identity with a long-lived static credential ({key}); give it short-lived tokens instead (auth = [\"token\"], `bastion token issue`)",
                kind.as_str()
            );
            if forbid {
                return self.err(
                    span,
                    format!(
                        "{message}; server.forbid_static_machine_credentials = true forbids it"
                    ),
                );
            }
            self.warnings.push(message);
        }
        Ok(())
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
            // A missing credential is checked with the mode (`Validator::upstream_auth`).
            let credential = match &t.credential {
                Some(c) if !(protocol == Protocol::Ssh && c.get_ref() == "bastion:key") => {
                    let (r, _) = self.loaded_secret(c, &format!("target {name}: credential"))?;
                    Some(r)
                }
                _ => None,
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
                    upstream_auth: UpstreamAuth::Static,
                },
            );
        }
        Ok(out)
    }

    /// `upstream_auth` and its keys, per target: which keys go with which mode and protocol,
    /// the credential each mode needs, role names and identities in `role_map`.
    fn upstream_auth(
        &mut self,
        raw: &[RawTarget],
        server: &Server,
        users: &BTreeMap<String, User>,
        targets: &mut BTreeMap<String, Target>,
    ) -> Result<(), ConfigError> {
        for t in raw {
            let name = t.name.get_ref();
            let Some(target) = targets.get_mut(name) else {
                continue;
            };
            let (mode, mode_span) = match &t.upstream_auth {
                Some(m) => (m.get_ref().as_str(), m.span()),
                None => ("static", t.name.span()),
            };
            let role_keys = t.role_map.values().next().map(|v| ("role_map", v.span()));
            let role_keys = role_keys.or(t
                .role_valid_for
                .as_ref()
                .map(|v| ("role_valid_for", v.span())));
            let cert_keys = t
                .certificate_valid_for
                .as_ref()
                .map(|v| ("certificate_valid_for", v.span()));
            let cert_keys = cert_keys.or(t
                .certificate_source_address
                .first()
                .map(|v| ("certificate_source_address", v.span())));
            let stray = match mode {
                "ephemeral_role" => cert_keys,
                "certificate" => role_keys,
                _ => role_keys.or(cert_keys),
            };
            if let Some((key, span)) = stray {
                return self.err(
                    span,
                    format!("target {name}: {key} does not apply with upstream_auth = {mode:?}"),
                );
            }
            target.upstream_auth = match (mode, target.protocol) {
                ("static", _) => {
                    if t.credential.is_none() {
                        return self.err(
                            t.name.span(),
                            format!("target {name}: credential is required (`file:PATH`, `env:NAME`{}), unless upstream_auth says otherwise", if target.protocol == Protocol::Ssh { " or `bastion:key`" } else { "" }),
                        );
                    }
                    UpstreamAuth::Static
                }
                ("ephemeral_role", Protocol::Postgres) => {
                    if t.credential.is_none() {
                        return self.err(
                            t.name.span(),
                            format!("target {name}: upstream_auth = \"ephemeral_role\" needs credential: the password of upstream_user, the admin login (CREATEROLE) that creates the session roles"),
                        );
                    }
                    if t.role_map.is_empty() {
                        return self.err(
                            mode_span,
                            format!("target {name}: upstream_auth = \"ephemeral_role\" needs role_map, e.g. role_map = {{ alice = \"app_rw\", \"*\" = \"app_ro\" }}"),
                        );
                    }
                    let mut role_map = BTreeMap::new();
                    for (identity, role) in &t.role_map {
                        if identity != "*" && !users.contains_key(identity) {
                            return self.err(
                                role.span(),
                                format!("target {name}: role_map names {identity:?}, which is no [[users]] name; keys are identity names or \"*\""),
                            );
                        }
                        let r = role.get_ref();
                        if r.is_empty() || r.len() > 63 || r.contains('\0') {
                            return self.err(
                                role.span(),
                                format!("target {name}: role_map: {r:?} is not a PostgreSQL role name (1 to 63 bytes, no NUL)"),
                            );
                        }
                        role_map.insert(identity.clone(), r.clone());
                    }
                    let valid_for = self.duration(
                        &t.role_valid_for,
                        &format!("target {name}: role_valid_for"),
                        Duration::from_secs(300),
                    )?;
                    if valid_for < Duration::from_secs(1) {
                        if let Some(v) = &t.role_valid_for {
                            return self.err(
                                v.span(),
                                format!("target {name}: role_valid_for must be at least 1s"),
                            );
                        }
                    }
                    UpstreamAuth::EphemeralRole(EphemeralRoleSettings {
                        role_map,
                        valid_for,
                        node: server.node.clone(),
                    })
                }
                ("certificate", Protocol::Ssh) => {
                    if let Some(c) = &t.credential {
                        return self.err(
                            c.span(),
                            format!("target {name}: credential does not apply with upstream_auth = \"certificate\": the bastion signs a certificate per session (install `bastion ca export` in the target's TrustedUserCAKeys)"),
                        );
                    }
                    let valid_for = self.duration(
                        &t.certificate_valid_for,
                        &format!("target {name}: certificate_valid_for"),
                        Duration::from_secs(120),
                    )?;
                    if valid_for < Duration::from_secs(1) {
                        if let Some(v) = &t.certificate_valid_for {
                            return self.err(
                                v.span(),
                                format!("target {name}: certificate_valid_for must be at least 1s"),
                            );
                        }
                    }
                    let mut source_address = Vec::new();
                    for a in &t.certificate_source_address {
                        let text = a.get_ref();
                        let net = text.parse::<ipnet::IpNet>().ok().or_else(|| {
                            text.parse::<std::net::IpAddr>()
                                .ok()
                                .map(ipnet::IpNet::from)
                        });
                        match net {
                            Some(n) => source_address.push(n),
                            None => {
                                return self.err(
                                    a.span(),
                                    format!("target {name}: certificate_source_address: {text:?} is not an address or network, e.g. \"192.0.2.10/32\""),
                                )
                            }
                        }
                    }
                    UpstreamAuth::Certificate(CertificateSettings {
                        valid_for,
                        source_address,
                        ca_key: crate::ssh::keys::ssh_state_dir(&server.state_dir)
                            .join(crate::ssh::cert_authority::CA_KEY_FILE),
                    })
                }
                ("ephemeral_role" | "certificate", protocol) => {
                    return self.err(
                        mode_span,
                        format!("target {name}: upstream_auth = {mode:?} does not apply to {} targets; ephemeral_role is for postgres, certificate for ssh", protocol.as_str()),
                    );
                }
                (other, _) => {
                    return self.err(
                        mode_span,
                        format!("target {name}: unknown upstream_auth {other:?}; valid values: static, ephemeral_role (postgres), certificate (ssh)"),
                    );
                }
            };
        }
        Ok(())
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
            max_channels_per_connection: l
                .max_channels_per_connection
                .unwrap_or(crate::ssh::MAX_CHANNELS_PER_CONNECTION)
                .max(1),
        })
    }
}
