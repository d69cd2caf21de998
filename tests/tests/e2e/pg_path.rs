//! The PostgreSQL path end to end: real PostgreSQL, real `bastion serve`, real clients (psql,
//! pgbench, tokio-postgres). Each test asserts what a user sees: output, error text, SQLSTATE,
//! exit status, and the rows in the audit trail.
use std::io::Write;
use std::process::Command;
use tests::pg_fixture::PgPath;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn psql_reads_are_allowed_and_drop_is_denied_with_42501() {
    let p = PgPath::start("").unwrap();
    let ok = p.psql(
        "alice@prod-db",
        "shop",
        &["-At", "-c", "SELECT count(*) FROM app.orders"],
    );
    assert!(ok.status.success(), "{}\n{}", stderr(&ok), p.bastion.log());
    assert_eq!(stdout(&ok).trim(), "3");

    let denied = p.psql("alice@prod-db", "shop", &["-c", "DROP TABLE app.orders"]);
    assert_eq!(denied.status.code(), Some(1));
    let err = stderr(&denied);
    assert!(err.contains("ERROR:  denied by policy SQL-5"), "{err}");
    assert!(err.contains("HINT:  policy: SQL-5"), "{err}");
    assert!(
        !err.contains("CONTEXT"),
        "the bastion's own DO block must not show: {err}"
    );
    // Nothing denied reached the server: the table is still there.
    assert_eq!(
        p.pg.psql("shop", "SELECT count(*) FROM app.orders")
            .unwrap(),
        "3"
    );

    // The password of the target never reaches the client, and the trail has both actions.
    let rows = p
        .audit("SELECT text, decision, policy_ids FROM actions ORDER BY time")
        .unwrap();
    let text = serde_json::to_string(&rows).unwrap();
    assert!(text.contains("SELECT count(*) FROM app.orders"), "{text}");
    assert!(text.contains("DROP TABLE app.orders"), "{text}");
    assert!(text.contains("\"deny\""), "{text}");
}

#[test]
fn psql_script_with_several_statements_and_verbose_sqlstate() {
    let p = PgPath::start("").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.sql");
    let mut f = std::fs::File::create(&script).unwrap();
    writeln!(f, "\\set VERBOSITY verbose\nSELECT 1 AS one;\nINSERT INTO app.orders (customer_id, total) VALUES (2, 1.00);\nSELECT count(*) FROM app.orders;\nGRANT SELECT ON app.orders TO PUBLIC;").unwrap();
    let out = p.psql("alice@prod-db", "shop", &["-f", script.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "psql -f stops at the denied GRANT: {}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("INSERT 0 1"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("ERROR:  42501: denied by policy SQL-6"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn denied_statement_inside_transaction_fails_the_transaction() {
    let p = PgPath::start("").unwrap();
    let client = p.connect("alice@prod-db", "shop").await.unwrap();
    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute("INSERT INTO app.orders (customer_id, total) VALUES (1, 555.55)")
        .await
        .unwrap();
    let err = client
        .batch_execute("TRUNCATE app.orders")
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "42501");
    assert!(
        db.message().contains("denied by policy SQL-5"),
        "{}",
        db.message()
    );
    // The server's transaction is failed too: COMMIT rolls back.
    let msgs = client.simple_query("COMMIT").await.unwrap();
    let tag = msgs.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    });
    assert_eq!(tag, Some(0));
    assert_eq!(
        p.pg.psql(
            "shop",
            "SELECT count(*) FROM app.orders WHERE total = 555.55"
        )
        .unwrap(),
        "0"
    );
    assert_eq!(
        p.pg.psql("shop", "SELECT count(*) FROM app.orders")
            .unwrap(),
        "3"
    );
}

#[tokio::test]
async fn tokio_postgres_prepared_pipelined_copy_and_cancel() {
    let p = PgPath::start("").unwrap();
    let client = p.connect("alice@dev-db", "shopdev").await.unwrap();
    // Prepared statements (extended protocol), several executions.
    let stmt = client
        .prepare("SELECT total::float8 FROM app.orders WHERE id = $1")
        .await
        .unwrap();
    let mut sum = 0.0;
    for id in 1..=3i32 {
        let row = client.query_one(&stmt, &[&id]).await.unwrap();
        sum += row.get::<_, f64>(0);
    }
    assert!((sum - 148.75).abs() < 1e-9, "{sum}");
    // Pipelining: several queries in flight at once.
    let (a, b, c) = tokio::join!(
        client.query_one("SELECT 1::int4", &[]),
        client.query_one("SELECT 2::int4", &[]),
        client.query_one("SELECT 3::int4", &[]),
    );
    assert_eq!(
        a.unwrap().get::<_, i32>(0) + b.unwrap().get::<_, i32>(0) + c.unwrap().get::<_, i32>(0),
        6
    );
    // A denied Parse in the pipeline does not disturb the others (ANY-1 applies on dev too).
    let (ok, bad) = tokio::join!(
        client.query_one("SELECT 41 + 1", &[]),
        client.query_one("SELECT pg_read_file('/etc/passwd')", &[]),
    );
    assert_eq!(ok.unwrap().get::<_, i32>(0), 42);
    let bad = bad.unwrap_err();
    assert_eq!(
        bad.as_db_error().map(|e| e.code().code()),
        Some("42501"),
        "{bad}"
    );
    // COPY in and out.
    {
        use futures::{SinkExt, StreamExt};
        let sink = client
            .copy_in("COPY app.customers (name) FROM STDIN")
            .await
            .unwrap();
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"Linus\nKen\n"))
            .await
            .unwrap();
        assert_eq!(sink.finish().await.unwrap(), 2);
        let stream = client
            .copy_out("COPY app.customers (name) TO STDOUT")
            .await
            .unwrap();
        futures::pin_mut!(stream);
        let mut all = Vec::new();
        while let Some(chunk) = stream.next().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(String::from_utf8_lossy(&all), "Ada\nGrace\nLinus\nKen\n");
    }
    // Cancel reaches the right backend.
    let token = client.cancel_token();
    let sleeper = tokio::spawn(async move { client.batch_execute("SELECT pg_sleep(30)").await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let tls = tests::pg::make_tls(&std::fs::read(p.bastion_cert()).unwrap()).unwrap();
    token.cancel_query(tls).await.unwrap();
    let err = sleeper.await.unwrap().unwrap_err();
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("57014"),
        "{err}"
    );
}

#[test]
fn pgbench_initialises_and_runs_every_protocol_mode_on_dev() {
    let p = PgPath::start("").unwrap();
    let bench = |args: &[&str]| {
        Command::new("pgbench")
            .args(args)
            .arg(p.conninfo("dana@dev-db", "shopdev"))
            .env("PGPASSWORD", "dana-pw")
            .output()
            .unwrap()
    };
    let init = bench(&["-i", "-s", "1", "-q"]);
    assert!(
        init.status.success(),
        "pgbench -i: {}\n{}",
        stderr(&init),
        p.bastion.log()
    );
    for mode in ["simple", "extended", "prepared"] {
        let run = bench(&["-M", mode, "-c", "2", "-t", "30", "-n"]);
        assert!(run.status.success(), "pgbench -M {mode}: {}", stderr(&run));
        assert!(
            stdout(&run).contains("number of transactions actually processed: 60/60"),
            "{}",
            stdout(&run)
        );
    }
}

#[test]
fn wrong_password_and_unknown_user_look_the_same_and_are_recorded() {
    let p = PgPath::start("").unwrap();
    let run = |user: &str, pw: &str| {
        Command::new("psql")
            .arg(p.conninfo(user, "shop"))
            .args(["-X", "-c", "SELECT 1"])
            .env("PGPASSWORD", pw)
            .output()
            .unwrap()
    };
    let wrong = run("alice@prod-db", "not-her-password");
    let unknown = run("mallory@prod-db", "whatever");
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("password authentication failed for user \"alice@prod-db\""),
        "{}",
        stderr(&wrong)
    );
    assert!(
        stderr(&unknown).contains("password authentication failed for user \"mallory@prod-db\""),
        "{}",
        stderr(&unknown)
    );
    let rows = p
        .audit("SELECT identity, result FROM entries WHERE result = 'fail' ORDER BY time")
        .unwrap();
    let text = serde_json::to_string(&rows).unwrap();
    assert!(text.contains("alice") && text.contains("mallory"), "{text}");
}

#[test]
fn plaintext_is_refused_and_dangerous_startup_parameters_too() {
    let p = PgPath::start("").unwrap();
    let plain = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=alice@prod-db dbname=shop sslmode=disable",
            p.bastion.pg_port
        ))
        .args(["-X", "-c", "SELECT 1"])
        .env("PGPASSWORD", "alice-pw")
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(2));
    assert!(
        stderr(&plain).contains("the bastion requires TLS"),
        "{}",
        stderr(&plain)
    );

    let role = Command::new("psql")
        .arg(format!(
            "{} options='-c role=postgres'",
            p.conninfo("alice@prod-db", "shop")
        ))
        .args(["-X", "-c", "SELECT 1"])
        .env("PGPASSWORD", "alice-pw")
        .output()
        .unwrap();
    assert_eq!(role.status.code(), Some(2));
    assert!(
        stderr(&role).contains("startup option \"role\" is not allowed"),
        "{}",
        stderr(&role)
    );
}

#[test]
fn one_time_code_unlocks_payroll_for_a_human() {
    let p = PgPath::start("").unwrap();
    let first = p.psql(
        "dana@prod-db",
        "shop",
        &["-c", "SELECT count(*) FROM payroll"],
    );
    assert_eq!(first.status.code(), Some(1));
    assert!(
        stderr(&first).contains("SET bastion.otp"),
        "{}",
        stderr(&first)
    );
    let secret = tests::pg_fixture::totp_code(tests::pg_fixture::TOTP_SECRET);
    let set = format!("SET bastion.otp = '{secret}'");
    let second = p.psql(
        "dana@prod-db",
        "shop",
        &["-At", "-c", &set, "-c", "SELECT count(*) FROM payroll"],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stdout(&second).contains('1'), "{}", stdout(&second));
    // The code itself is in no recorded text.
    let rows = p.audit("SELECT text FROM actions").unwrap();
    assert!(!serde_json::to_string(&rows).unwrap().contains(&secret));
}

#[test]
fn garbage_instead_of_startup_gets_a_protocol_error_and_the_bastion_lives_on() {
    use std::io::Read;
    let p = PgPath::start("").unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p.bastion.pg_port)).unwrap();
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4]).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert_eq!(reply.first(), Some(&b'E'), "an ErrorResponse: {reply:?}");
    assert!(String::from_utf8_lossy(&reply).contains("08P01"));
    let ok = p.psql("alice@prod-db", "shop", &["-At", "-c", "SELECT 1"]);
    assert!(ok.status.success());
}

#[test]
fn target_with_wrong_certificate_is_refused_with_a_clear_error() {
    let other_ca = tests::pg::TestPki::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong-ca.crt");
    std::fs::write(&wrong, other_ca.ca_pem).unwrap();
    let p = PgPath::start("").unwrap();
    // Point prod-db at the wrong root by rewriting the config and restarting.
    let cfg = std::fs::read_to_string(&p.bastion.config).unwrap();
    let fixed = cfg.replacen(
        &p.pg.ca_path().display().to_string(),
        &wrong.display().to_string(),
        1,
    );
    std::fs::write(&p.bastion.config, fixed).unwrap();
    let mut p = p;
    p.bastion.stop().unwrap();
    p.bastion.spawn().unwrap();
    let out = p.psql("alice@prod-db", "shop", &["-c", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("target prod-db failed TLS verification"),
        "{}",
        stderr(&out)
    );
}
