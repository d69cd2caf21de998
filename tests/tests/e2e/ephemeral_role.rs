//! Just-in-time PostgreSQL credentials (issue 10 item 3): with `upstream_auth =
//! "ephemeral_role"` each session logs in as a role made for it (`bastion_<session>`, member of
//! the role its identity maps to), which exists in `pg_roles` while the session lives, is
//! dropped after it, and is swept at the next start when the bastion was killed. Real
//! PostgreSQL, the real `bastion` binary, tokio-postgres as the client.
use std::time::{Duration, Instant};
use tests::bastion::BastionProcess;
use tests::pg::PgServer;

const ADMIN_PASSWORD: &str = "admin-secret-never-shown";

struct Setup {
    pg: PgServer,
    bastion: BastionProcess,
    _secrets: tempfile::TempDir,
}

/// PostgreSQL with roles `app_rw` (reads and writes `app.orders`) and `app_ro` (reads
/// `app.customers` only), an admin login with CREATEROLE, and a bastion whose `shop-db` target
/// maps identities with `role_map`.
fn setup(role_map: &str) -> Setup {
    let pg = PgServer::start().expect("postgres starts");
    pg.create_role("bastion_admin", ADMIN_PASSWORD, "CREATEROLE")
        .unwrap();
    pg.psql(
        "postgres",
        "CREATE ROLE app_rw NOLOGIN; CREATE ROLE app_ro NOLOGIN",
    )
    .unwrap();
    // CREATE DATABASE cannot share psql's one implicit transaction with other statements.
    pg.psql("postgres", "CREATE DATABASE shop").unwrap();
    pg.psql(
        "shop",
        "CREATE SCHEMA app;
         CREATE TABLE app.customers (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE app.orders (id serial PRIMARY KEY, total numeric(10,2));
         INSERT INTO app.customers (name) VALUES ('Ada'), ('Grace');
         GRANT USAGE ON SCHEMA app TO app_rw, app_ro;
         GRANT SELECT ON app.customers TO app_rw, app_ro;
         GRANT SELECT, INSERT ON app.orders TO app_rw;
         GRANT USAGE ON SEQUENCE app.orders_id_seq TO app_rw;
         GRANT CREATE ON SCHEMA app TO app_rw;",
    )
    .unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let d = secrets.path();
    std::fs::write(d.join("admin.password"), ADMIN_PASSWORD).unwrap();
    let mut users = String::new();
    for name in ["alice", "bob"] {
        let verifier =
            protocol::postgres::scram::make_verifier(&format!("{name}-pw"), 4096).unwrap();
        std::fs::write(d.join(format!("{name}.scram")), verifier).unwrap();
        users.push_str(&format!(
            "[[users]]\nname = \"{name}\"\nkind = \"human\"\nscram_verifier = \"file:{}/{name}.scram\"\n\n",
            d.display()
        ));
    }
    std::fs::write(
        d.join("allow.cedar"),
        "@id(\"ALLOW-all\")\npermit (principal, action, resource);\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(d).unwrap() {
        std::fs::set_permissions(
            entry.unwrap().path(),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let config = format!(
        r#"[server]
node = "node-a"
postgres_listen = "127.0.0.1:{{PG_PORT}}"
state_dir = "{{DIR}}/state"
audit_dir = "{{DIR}}/audit"
shutdown_grace = "3s"

{users}
[[targets]]
name = "shop-db"
protocol = "postgres"
address = "127.0.0.1:{port}"
database = "shop"
upstream_user = "bastion_admin"
credential = "file:{d}/admin.password"
tls_root = "{ca}"
upstream_auth = "ephemeral_role"
role_map = {role_map}
role_valid_for = "5m"

[policies]
paths = ["{d}/allow.cedar"]

[recorder]
roll_max_age = "1s"
"#,
        port = pg.port(),
        d = d.display(),
        ca = pg.ca_path().display(),
    );
    let bastion = BastionProcess::start(&config).expect("bastion starts");
    Setup {
        pg,
        bastion,
        _secrets: secrets,
    }
}

impl Setup {
    async fn connect(
        &self,
        identity: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let ca = std::fs::read(self.bastion.dir.path().join("state/tls/bastion.crt")).unwrap();
        let tls = tests::pg::make_tls(&ca).unwrap();
        let mut cfg = tokio_postgres::Config::new();
        cfg.host("127.0.0.1")
            .port(self.bastion.pg_port)
            .user(format!("{identity}@shop-db"))
            .password(format!("{identity}-pw"))
            .dbname("shop")
            .ssl_mode(tokio_postgres::config::SslMode::Require);
        let (client, conn) = cfg.connect(tls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// `(session_user, current_user)` of a connected client.
    async fn whoami(client: &tokio_postgres::Client) -> (String, String) {
        let row = client
            .query_one("SELECT session_user::text, current_user::text", &[])
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }

    /// `bastion audit query --format json`, polled until `done` accepts the rows (guard 30 s).
    fn audit_until(
        &self,
        sql: &str,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        self.bastion.audit_until(sql, done)
    }
}

/// Polls `cond` until it holds; a deadlock guard of 30 s, not a timing assertion.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still not true after 30 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn session_role_exists_during_the_session_has_the_mapped_privileges_and_is_dropped_after() {
    let mut s = setup(r#"{ alice = "app_rw", "*" = "app_ro" }"#);
    let alice = s.connect("alice").await.unwrap_or_else(|e| {
        panic!("alice connects: {e}\n{}", s.bastion.log());
    });
    let (session_role, current) = Setup::whoami(&alice).await;
    assert!(
        session_role.starts_with("bastion_") && session_role.len() == "bastion_".len() + 16,
        "{session_role}"
    );
    assert_eq!(current, "app_rw", "statements run as the mapped role");

    // Seen from a direct superuser connection: a login role with an expiry, one connection,
    // member of app_rw only, marked with this node's name.
    let facts = s
        .pg
        .psql(
            "postgres",
            &format!(
                "SELECT rolcanlogin, rolvaliduntil > now(), rolvaliduntil < now() + interval '6 minutes', \
                 rolconnlimit, rolsuper OR rolcreaterole OR rolcreatedb, \
                 (SELECT string_agg(b.rolname, ',') FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid), \
                 shobj_description(r.oid, 'pg_authid') LIKE 'bastion ephemeral role run=% node=node-a' \
                 FROM pg_roles r WHERE rolname = '{session_role}'"
            ),
        )
        .unwrap();
    assert_eq!(facts, "t|t|t|1|f|app_rw|t");

    // The mapped role's privileges: alice (app_rw) writes orders; bob ("*" = app_ro) reads
    // customers but the server refuses his read of orders.
    let n = alice
        .execute("INSERT INTO app.orders (total) VALUES (12.50)", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    alice
        .batch_execute("CREATE TABLE app.scratch (x int)")
        .await
        .unwrap();
    let bob = s.connect("bob").await.unwrap();
    let (bob_role, bob_current) = Setup::whoami(&bob).await;
    assert_ne!(bob_role, session_role, "one role per session");
    assert_eq!(bob_current, "app_ro");
    let names = bob
        .query("SELECT name FROM app.customers ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(names.len(), 2);
    let err = bob
        .query("SELECT * FROM app.orders", &[])
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "42501");
    assert_eq!(db.message(), "permission denied for table orders");

    // Both roles are gone once their clients are.
    drop(alice);
    drop(bob);
    eventually("alice's session role dropped", || {
        !s.pg.role_exists(&session_role).unwrap()
    });
    eventually("bob's session role dropped", || {
        !s.pg.role_exists(&bob_role).unwrap()
    });
    // What alice created belongs to the mapped role, so nothing blocked the drop.
    assert_eq!(
        s.pg.psql(
            "shop",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'scratch'"
        )
        .unwrap(),
        "app_rw"
    );

    // The trail names the role each session used.
    let sql = "SELECT identity, seq, kind, statement_class, text, outcome, message FROM actions WHERE kind = 'upstream_credential' ORDER BY identity";
    let rows = s.audit_until(sql, |r| r.len() == 2);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["identity"], "alice");
    assert_eq!(rows[0]["seq"], 0);
    assert_eq!(rows[0]["statement_class"], "ephemeral_role");
    assert_eq!(rows[0]["outcome"], "ok");
    let text = rows[0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("CREATE ROLE {session_role} LOGIN IN ROLE app_rw")),
        "{text}"
    );
    let message = rows[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "role {session_role} member of app_rw valid until "
        )),
        "{message}"
    );
    assert!(
        rows[1]["text"]
            .as_str()
            .unwrap_or_default()
            .contains(&bob_role),
        "{rows:?}"
    );
    // The password never reaches the log.
    assert!(!s.bastion.log().contains("SCRAM-SHA-256$"));
    // The credential rows (seq 0) chain like every other row.
    assert!(s.bastion.stop().unwrap().success());
    let out = s.bastion.cli(&["audit", "verify"]).unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_bastion_leaves_its_role_and_the_restart_sweeps_it_but_not_other_nodes_roles() {
    let mut s = setup(r#"{ "*" = "app_ro" }"#);
    // A role another node made (same marker, another node name) must survive our sweep.
    s.pg.psql(
        "postgres",
        "CREATE ROLE bastion_feedfacefeedface LOGIN; \
         COMMENT ON ROLE bastion_feedfacefeedface IS 'bastion ephemeral role run=0 session=feedfacefeedface node=node-b'",
    )
    .unwrap();
    let alice = s.connect("alice").await.unwrap();
    let (role, _) = Setup::whoami(&alice).await;
    assert!(s.pg.role_exists(&role).unwrap());

    s.bastion.kill9().unwrap();
    drop(alice);
    // With the bastion gone its upstream connection closes; nobody dropped the role.
    eventually("the killed session's backend ends", || {
        s.pg.backends_of(&role).unwrap() == 0
    });
    assert!(
        s.pg.role_exists(&role).unwrap(),
        "kill -9 leaves the role behind"
    );

    s.bastion.spawn().unwrap();
    eventually("the restarted bastion sweeps the leftover role", || {
        !s.pg.role_exists(&role).unwrap()
    });
    assert!(s.pg.role_exists("bastion_feedfacefeedface").unwrap());
    assert!(s.bastion.log().contains("dropped leftover session roles"));

    // Sessions of the new run work, and their roles are not swept.
    let again = s.connect("alice").await.unwrap();
    let (new_role, current) = Setup::whoami(&again).await;
    assert_eq!(current, "app_ro");
    assert!(s.pg.role_exists(&new_role).unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_with_no_mapped_role_is_refused_and_no_role_is_made() {
    let s = setup(r#"{ alice = "app_rw" }"#);
    let before =
        s.pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'bastion\\_%'",
        )
        .unwrap();
    let Err(err) = s.connect("bob").await else {
        panic!("bob is refused");
    };
    let db = err.as_db_error().expect("a server-style error");
    assert_eq!(db.code().code(), "28000");
    assert!(
        db.message()
            .contains("identity bob has no role in the role_map of target shop-db"),
        "{}",
        db.message()
    );
    let after =
        s.pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'bastion\\_%'",
        )
        .unwrap();
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapped_role_the_admin_cannot_grant_fails_the_login_with_the_servers_reason() {
    let s = setup(r#"{ "*" = "no_such_role" }"#);
    let Err(err) = s.connect("alice").await else {
        panic!("login fails");
    };
    let db = err.as_db_error().expect("a server-style error");
    assert!(
        db.message().contains("cannot create the session role")
            && db
                .message()
                .contains("role \"no_such_role\" does not exist"),
        "{}",
        db.message()
    );
}

#[test]
fn config_mistakes_are_refused_with_the_key_and_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.cedar"),
        "permit (principal, action, resource);\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("pw"), "x").unwrap();
    let base = |target: &str| {
        format!(
            "[server]\npostgres_listen = \"127.0.0.1:1\"\nstate_dir = \"{d}/state\"\n\n\
             [[users]]\nname = \"alice\"\nkind = \"human\"\n\n{target}\n\
             [policies]\npaths = [\"{d}/p.cedar\"]\n",
            d = dir.path().display()
        )
    };
    let target = |extra: &str| {
        format!(
            "[[targets]]\nname = \"db\"\nprotocol = \"postgres\"\naddress = \"127.0.0.1:5432\"\n\
             upstream_user = \"admin\"\ncredential = \"file:{}/pw\"\ntls = \"disable\"\n{extra}\n",
            dir.path().display()
        )
    };
    let cases = [
        (
            target("upstream_auth = \"ephemeral_role\"\nrole_map = { mallory = \"app\" }"),
            "role_map names \"mallory\", which is no [[users]] name",
        ),
        (
            target("upstream_auth = \"ephemeral_role\""),
            "needs role_map",
        ),
        (
            target("upstream_auth = \"certificate\""),
            "upstream_auth = \"certificate\" does not apply to postgres targets",
        ),
        (
            target("upstream_auth = \"jit\""),
            "unknown upstream_auth \"jit\"; valid values: static, ephemeral_role (postgres), certificate (ssh)",
        ),
        (
            target("role_map = { alice = \"app\" }"),
            "role_map does not apply with upstream_auth = \"static\"",
        ),
        (
            target("upstream_auth = \"ephemeral_role\"\nrole_map = { alice = \"\" }"),
            "is not a PostgreSQL role name",
        ),
    ];
    for (i, (t, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, base(t)).unwrap();
        let out = tests::bastion::run_bastion(&["check", "--config", &path.display().to_string()])
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        assert!(
            err.contains(expected),
            "case {i}: expected {expected:?} in {err}"
        );
    }
}
