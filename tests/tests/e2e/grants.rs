//! Task-scoped grants end to end (issue 10 item 5): a real PostgreSQL behind the real bastion,
//! an agent whose policies allow reads only, and `bastion grant` / `grant revoke` run while its
//! session stays open. The same UPDATE is denied before the grant, runs with it, and is denied
//! again after the revocation and after expiry; a grant never overrides a `forbid`.
use std::process::{Command, Output};
use std::time::Duration;
use tests::bastion::BastionProcess;
use tests::pg::PgServer;

const UPSTREAM_PASSWORD: &str = "upstream-secret-never-shown";

/// Reads for agents, nothing else; TRUNCATE forbidden for everyone.
const POLICIES: &str = r#"
@id("CONNECT-agents")
permit (principal in Group::"agents", action == Action::"connect", resource);

@id("AGENT-read")
permit (principal in Group::"agents", action in [Action::"sql:select", Action::"sql:session"], resource);

@id("NO-TRUNCATE")
@message("TRUNCATE is never allowed")
forbid (principal, action in Action::"sql", resource)
when { context.verb == "TRUNCATE" };
"#;

struct Setup {
    _pg: PgServer,
    bastion: BastionProcess,
    _secrets: tempfile::TempDir,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn setup() -> Setup {
    let pg = PgServer::start().unwrap();
    pg.create_role("bastion_up", UPSTREAM_PASSWORD, "").unwrap();
    pg.create_database("shop", "bastion_up").unwrap();
    pg.psql(
        "shop",
        "SET ROLE bastion_up; CREATE SCHEMA app; \
         CREATE TABLE app.orders (id int PRIMARY KEY, status text); \
         CREATE TABLE app.customers (id int PRIMARY KEY, name text); \
         INSERT INTO app.orders VALUES (1, 'new'), (2, 'new'); INSERT INTO app.customers VALUES (1, 'Ada');",
    )
    .unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let d = secrets.path();
    let verifier = protocol::postgres::scram::make_verifier("agent-7-pw", 4096).unwrap();
    std::fs::write(d.join("agent-7.scram"), verifier).unwrap();
    std::fs::write(d.join("upstream.password"), UPSTREAM_PASSWORD).unwrap();
    std::fs::write(d.join("policies.cedar"), POLICIES).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in ["agent-7.scram", "upstream.password"] {
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = format!(
        r#"[server]
postgres_listen = "127.0.0.1:{{PG_PORT}}"
state_dir = "{{DIR}}/state"
audit_dir = "{{DIR}}/audit"

[[users]]
name = "agent-7"
kind = "agent"
groups = ["agents"]
scram_verifier = "file:{d}/agent-7.scram"

[[targets]]
name = "prod-db"
protocol = "postgres"
address = "127.0.0.1:{port}"
database = "shop"
tags = {{ env = "prod" }}
upstream_user = "bastion_up"
credential = "file:{d}/upstream.password"
tls_root = "{ca}"

[policies]
paths = ["{d}/policies.cedar"]

[recorder]
roll_max_age = "1s"
"#,
        d = d.display(),
        port = pg.port(),
        ca = pg.ca_path().display(),
    );
    let bastion = BastionProcess::start(&config).unwrap();
    Setup {
        _pg: pg,
        bastion,
        _secrets: secrets,
    }
}

impl Setup {
    async fn agent(&self) -> tokio_postgres::Client {
        let ca = std::fs::read(self.bastion.dir.path().join("state/tls/bastion.crt")).unwrap();
        let tls = tests::pg::make_tls(&ca).unwrap();
        let mut cfg = tokio_postgres::Config::new();
        cfg.host("127.0.0.1")
            .port(self.bastion.pg_port)
            .user("agent-7@prod-db")
            .password("agent-7-pw")
            .dbname("shop")
            .ssl_mode(tokio_postgres::config::SslMode::Require);
        let (client, conn) = cfg.connect(tls).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.bastion.cli(args).unwrap()
    }

    fn grant(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["grant", "--format", "json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "grant {args:?}: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn eval(&self, line: &str) -> serde_json::Value {
        use std::io::Write;
        let mut child = Command::new(tests::bastion::bastion_bin())
            .args(["policy", "eval", "--explain", "--config"])
            .arg(&self.bastion.config)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn audit_until(
        &self,
        sql: &str,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        self.bastion.audit_until(sql, done)
    }
}

/// `Ok(rows affected)` or `Err("SQLSTATE: message")`.
async fn run(client: &tokio_postgres::Client, sql: &str) -> Result<u64, String> {
    client.execute(sql, &[]).await.map_err(|e| {
        e.as_db_error()
            .map(|d| format!("{}: {}", d.code().code(), d.message()))
            .unwrap_or_else(|| e.to_string())
    })
}

const UPDATE: &str = "UPDATE app.orders SET status = 'shipped' WHERE id = 1";

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_permits_its_statement_until_revoked_or_expired() {
    let s = setup();
    let agent = s.agent().await;

    let before = run(&agent, UPDATE).await.unwrap_err();
    assert!(before.starts_with("42501: "), "{before}");
    assert!(before.contains("no policy allows UPDATE"), "{before}");

    // Granted while the session is open: the next statement runs.
    let g = s.grant(&[
        "--user",
        "agent-7",
        "--target",
        "prod-db",
        "--action",
        "sql:update",
        "--table",
        "app.orders",
        "--ttl",
        "30m",
        "--reason",
        "ticket 123",
    ]);
    let id = g["id"].as_str().unwrap().to_string();
    assert_eq!(run(&agent, UPDATE).await, Ok(1));
    // Exactly that table: another table stays denied.
    let other = run(&agent, "UPDATE app.customers SET name = 'x' WHERE id = 1").await;
    assert!(other.unwrap_err().starts_with("42501"));

    // `policy eval --explain` shows the grant that decided it.
    let explained = s.eval(&format!(
        r#"{{"user":"agent-7","target":"prod-db","kind":"sql","text":"{UPDATE}"}}"#
    ));
    assert_eq!(explained["decision"], "allow", "{explained}");
    assert_eq!(
        explained["policies"],
        serde_json::json!(["grant"]),
        "{explained}"
    );
    assert_eq!(explained["grants"][0]["id"], id.as_str(), "{explained}");
    assert_eq!(
        explained["grants"][0]["reason"], "ticket 123",
        "{explained}"
    );

    let list = s.cli(&["grant", "list"]);
    assert!(text(&list.stdout).contains(&id), "{}", text(&list.stdout));
    assert!(
        text(&list.stdout).contains("active"),
        "{}",
        text(&list.stdout)
    );

    // Revoked: denied again, same session.
    let out = s.cli(&["grant", "revoke", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = run(&agent, UPDATE).await.unwrap_err();
    assert!(after.starts_with("42501: "), "{after}");
    let explained = s.eval(&format!(
        r#"{{"user":"agent-7","target":"prod-db","kind":"sql","text":"{UPDATE}"}}"#
    ));
    assert_eq!(explained["decision"], "deny", "{explained}");

    // Expired: a one-second grant, used after it ended.
    s.grant(&[
        "--user",
        "agent-7",
        "--target",
        "prod-db",
        "--action",
        "sql:update",
        "--ttl",
        "1s",
        "--reason",
        "ticket 124",
    ]);
    std::thread::sleep(Duration::from_millis(2100));
    let expired = run(&agent, UPDATE).await.unwrap_err();
    assert!(expired.starts_with("42501: "), "{expired}");
    let list = s.cli(&["grant", "list", "--format", "json"]);
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    let states: Vec<&str> = listed
        .iter()
        .map(|g| g["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["revoked", "expired"]);

    // The trail shows the grant and its revocation.
    let rows = s.audit_until(
        "SELECT result, reason FROM entries WHERE method = 'grant' ORDER BY time",
        |rows| rows.len() >= 2,
    );
    // The one-second grant was never seen in force (it had expired by the next decision).
    let results: Vec<&str> = rows.iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["granted", "revoked"], "{rows:?}");
    assert!(
        rows[0]["reason"].as_str().unwrap().contains("ticket 123"),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_never_overrides_a_forbid_and_bad_grants_are_refused() {
    let s = setup();
    let agent = s.agent().await;
    s.grant(&[
        "--user", "agent-7", "--target", "prod-db", "--action", "sql:ddl", "--ttl", "10m",
        "--reason", "cleanup",
    ]);
    let truncate = run(&agent, "TRUNCATE app.orders").await.unwrap_err();
    assert!(truncate.contains("TRUNCATE is never allowed"), "{truncate}");
    assert_eq!(run(&agent, "SELECT 1").await, Ok(1), "reads keep working");
    for bad in [
        vec![
            "--user",
            "agent-7",
            "--target",
            "prod-db",
            "--action",
            "sql:everything",
            "--ttl",
            "1m",
            "--reason",
            "x",
        ],
        vec![
            "--user",
            "agent-7",
            "--target",
            "prod-db",
            "--action",
            "shell:run",
            "--table",
            "t",
            "--ttl",
            "1m",
            "--reason",
            "x",
        ],
        vec![
            "--user",
            "agent-7",
            "--target",
            "prod-db",
            "--action",
            "sql:update",
            "--ttl",
            "25h",
            "--reason",
            "x",
        ],
        vec![
            "--user",
            "agent-7",
            "--target",
            "prod-db",
            "--action",
            "sql:update",
            "--ttl",
            "1m",
        ],
        vec![
            "--user",
            "nobody",
            "--target",
            "prod-db",
            "--action",
            "sql:update",
            "--ttl",
            "1m",
            "--reason",
            "x",
        ],
        vec![
            "--user",
            "agent-7",
            "--target",
            "nowhere",
            "--action",
            "sql:update",
            "--ttl",
            "1m",
            "--reason",
            "x",
        ],
    ] {
        let mut all = vec!["grant"];
        all.extend(bad.iter().copied());
        let out = s.cli(&all);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
    let out = s.cli(&["grant", "revoke", "000000000000"]);
    assert_eq!(out.status.code(), Some(2));
}
