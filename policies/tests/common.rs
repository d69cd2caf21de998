//! The starter pack's identities and targets (examples/bastion.toml), shared by the tests.
#![allow(dead_code, clippy::unwrap_used)]
use std::path::PathBuf;

use policies::engine::*;

pub fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

pub fn identities() -> (Vec<Principal>, Vec<TargetInfo>) {
    let p = |name: &str, kind, groups: &[&str]| Principal {
        name: name.into(),
        kind,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    let t = |name: &str, protocol, env: &str| TargetInfo {
        name: name.into(),
        protocol,
        tags: [("env".to_string(), env.to_string())].into(),
    };
    (
        vec![
            p("alice", PrincipalKind::Human, &["engineers"]),
            p("dana", PrincipalKind::Human, &["dba", "engineers"]),
            p("deploy-bot", PrincipalKind::Service, &["deployers"]),
            p("agent-7", PrincipalKind::Agent, &["agents"]),
        ],
        vec![
            t("prod-db", TargetProtocol::Postgres, "prod"),
            t("dev-db", TargetProtocol::Postgres, "dev"),
            t("web1", TargetProtocol::Ssh, "prod"),
            t("dev-box", TargetProtocol::Ssh, "dev"),
        ],
    )
}

pub fn engine_with_cache(cache_capacity: usize) -> Engine {
    let (p, t) = identities();
    let opts = EngineOptions {
        policy_paths: vec![examples().join("policies")],
        cache_capacity,
        ..Default::default()
    };
    Engine::load(opts, p, t).unwrap()
}

pub fn engine() -> Engine {
    engine_with_cache(1000)
}
