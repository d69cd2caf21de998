//! What every session is handed at start (STYLE.md 13: handles, not globals): the validated
//! config, the policy engine behind a swappable `Arc` (hot reload), the recorder handle, the
//! registry of live sessions, lockouts, and the PostgreSQL listener's TLS identity.
use crate::config::{Config, Protocol as TargetProto, UserKind};
use crate::entry::Lockouts;
use crate::sessions::SessionRegistry;
use anyhow::Context;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

/// Shared state of a running bastion.
pub struct Shared {
    /// The validated config this bastion started with.
    pub config: Arc<Config>,
    engine: RwLock<Arc<policies::Engine>>,
    /// The audit trail.
    pub recorder: recorder::Recorder,
    /// Live sessions.
    pub sessions: Arc<SessionRegistry>,
    /// Guessing control.
    pub lockouts: Arc<Lockouts>,
    /// PostgreSQL listener TLS.
    pub pg_tls: crate::postgres::tls::ServerTls,
    /// PostgreSQL cancel keys handed to clients.
    pub cancel_keys: crate::postgres::cancel::CancelKeys,
    /// Decoy secret for SCRAM exchanges of unknown users.
    pub scram_decoy: protocol::postgres::scram::DecoySecret,
    /// Step-up requests waiting for approval.
    pub broker: Arc<crate::broker::Broker>,
    /// Prometheus counters.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// One-time code verification (remembers used codes).
    pub totp: crate::totp::TotpVerifier,
    /// Login tokens, SSH password + one-time code, entry risk signals (both listeners).
    pub entry_proofs: Arc<crate::entry::EntryProofs>,
    /// Task-scoped grants, re-read when `grants.json` changes and applied in [`Shared::engine`].
    pub grants: Arc<crate::grants::LiveGrants>,
    /// Cancelled at shutdown; sessions derive their kill switch from it.
    pub shutdown: CancellationToken,
}

impl Shared {
    /// The current policy engine (cheap clone of an `Arc`), with the grants in force.
    pub fn engine(&self) -> Arc<policies::Engine> {
        let base = self
            .engine
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        self.grants.apply(base)
    }

    /// Reloads policies from the configured files; on error the old set stays.
    pub fn reload_policies(&self) -> Result<usize, policies::PolicyError> {
        let engine = load_engine(&self.config)?;
        let n = engine.policy_count();
        match self.engine.write() {
            Ok(mut g) => *g = Arc::new(engine),
            Err(e) => *e.into_inner() = Arc::new(engine),
        }
        Ok(n)
    }

    /// Builds the shared state (policies loaded, recorder opened).
    pub fn new(
        config: Arc<Config>,
        recorder: recorder::Recorder,
        pg_tls: crate::postgres::tls::ServerTls,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Shared> {
        let engine = load_engine(&config)?;
        let scram_decoy = protocol::postgres::scram::DecoySecret::new(
            state_secret(&config.server.state_dir, "scram-decoy.key")?,
            4096,
        );
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let mut broker = crate::broker::Broker::new(
            config.approvals.timeout,
            crate::broker::Directory::from_config(&config),
        )
        .with_metrics(metrics.clone());
        if !config.approvals.webhooks.is_empty() {
            let key = crate::broker::webhook::load_or_create_key(&config.server.state_dir)?;
            broker = broker.with_webhooks(crate::broker::WebhookNotifier::start(
                crate::broker::webhook::WebhookTargets::from_config(&config.approvals)?,
                key,
                crate::broker::RetryPolicy::default(),
            ));
        }
        let entry_proofs = Arc::new(crate::entry::EntryProofs::open(&config.server.state_dir)?);
        let grants = Arc::new(crate::grants::LiveGrants::new(
            &config,
            Some(recorder.clone()),
        ));
        // The login verifier's memory: one replay check per identity for every purpose.
        let totp = entry_proofs.login_totp.clone();
        Ok(Shared {
            entry_proofs,
            grants,
            lockouts: Arc::new(Lockouts::new(
                config.limits.lockout_after,
                config.limits.lockout_for,
            )),
            engine: RwLock::new(Arc::new(engine)),
            recorder,
            sessions: Arc::new(SessionRegistry::default()),
            pg_tls,
            cancel_keys: Default::default(),
            scram_decoy,
            totp,
            broker: Arc::new(broker),
            metrics,
            shutdown,
            config,
        })
    }
}

/// The policy engine for a config: principals and targets mapped to the engine's types.
pub fn load_engine(config: &Config) -> Result<policies::Engine, policies::PolicyError> {
    let principals = config
        .users
        .values()
        .map(|u| policies::Principal {
            name: u.name.clone(),
            kind: match u.kind {
                UserKind::Human => policies::PrincipalKind::Human,
                UserKind::Service => policies::PrincipalKind::Service,
                UserKind::Agent => policies::PrincipalKind::Agent,
            },
            groups: u.groups.clone(),
        })
        .collect();
    let targets = config
        .targets
        .values()
        .map(|t| policies::TargetInfo {
            name: t.name.clone(),
            protocol: match t.protocol {
                TargetProto::Postgres => policies::TargetProtocol::Postgres,
                TargetProto::Ssh => policies::TargetProtocol::Ssh,
            },
            tags: t.tags.clone(),
        })
        .collect();
    let opts = policies::EngineOptions {
        policy_paths: config.policies.files.clone(),
        shadow_paths: config.policies.shadow_files.clone(),
        mfa_freshness_secs: config.approvals.otp_fresh_for.as_secs(),
        // `limits.max_statement_bytes` bounds what is decided; the relay refuses longer ones
        // with its own message, the engine must not refuse shorter ones.
        sql_limits: policies::engine::SqlLimits {
            max_bytes: config.limits.max_statement_bytes,
            ..Default::default()
        },
        shell_limits: policies::engine::ShellLimits {
            max_bytes: config.limits.max_statement_bytes,
            ..Default::default()
        },
        ..Default::default()
    };
    policies::Engine::load(opts, principals, targets)
}

/// Recorder options from the config.
pub fn recorder_options(config: &Config) -> anyhow::Result<recorder::RecorderOptions> {
    let mut o = recorder::RecorderOptions::new(&config.server.audit_dir, &config.server.node);
    o.durability = match config.recorder.durability {
        crate::config::Durability::Os => recorder::Durability::Os,
        crate::config::Durability::Fsync => recorder::Durability::Fsync,
    };
    o.roll_max_rows = config.recorder.roll_max_rows;
    o.roll_max_age = config.recorder.roll_max_age;
    o.queue_capacity = config.recorder.queue_capacity;
    o.retain_days = config.recorder.retain_days;
    o.signing_key = match &config.recorder.signing_key {
        Some(crate::config::SecretRef::File(p)) => Some(p.clone()),
        Some(other) => {
            anyhow::bail!("recorder.signing_key must be a file: reference, found {other}")
        }
        None => None,
    };
    Ok(o)
}

/// A random 32-byte secret kept in the state directory (created 0600 on first use), so values
/// derived from it stay stable across restarts.
pub fn state_secret(state_dir: &std::path::Path, name: &str) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join(name);
    if let Ok(bytes) = std::fs::read(&path) {
        if bytes.len() >= 32 {
            return Ok(bytes);
        }
    }
    std::fs::create_dir_all(state_dir)?;
    let mut secret = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut secret);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut f, &secret)?;
    Ok(secret)
}

/// The kind string of a user (for the trail), `unknown` for names not in the config.
pub fn identity_kind(config: &Config, identity: &str) -> &'static str {
    config
        .users
        .get(identity)
        .map(|u| u.kind.as_str())
        .unwrap_or("unknown")
}

/// Used by both protocols: is this a known target of the given protocol?
pub fn target_of<'a>(
    config: &'a Config,
    name: &str,
    protocol: TargetProto,
) -> Option<&'a crate::config::Target> {
    config.targets.get(name).filter(|t| t.protocol == protocol)
}
