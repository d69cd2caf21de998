//! Limits, ends and faults of the PostgreSQL path, end to end: a real PostgreSQL, a real
//! `bastion serve`, real clients (psql, tokio-postgres, and a hand-written client over TLS for
//! what no driver sends). Each test asserts what the user sees — SQLSTATE, message, exit status —
//! and the rows the trail keeps (`sessions.end_reason`, `entries`, action outcomes). Times in
//! these tests are deadlock guards, never assertions.
use bytes::{Buf, BufMut, BytesMut};
use protocol::postgres::backend::{Authentication, ErrorResponse, NegotiateProtocolVersion};
use protocol::postgres::frontend::{Query, SaslInitialResponse, SaslResponse};
use protocol::postgres::scram::{ChannelBinding, ScramClient};
use protocol::postgres::{decode_frame, Frame, StartupPacket};
use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::pg_fixture::{proc_status_kib, PgPath};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Polls `bastion audit query` until `sql` returns at least one row.
fn wait_for_rows(p: &PgPath, sql: &str) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = p.audit(sql).unwrap();
        if !rows.is_empty() {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "no rows for {sql}:\n{}",
            p.bastion.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls the target (as its superuser) until `sql` returns a non-empty answer.
fn wait_on_target(p: &PgPath, sql: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = p.pg.psql("shop", sql).unwrap_or_default();
        if !out.is_empty() {
            return out;
        }
        assert!(Instant::now() < deadline, "target never answered {sql}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The code and message of a server error carried by a tokio-postgres error.
fn db_error(e: &tokio_postgres::Error) -> (String, String) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e:?}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// Waits (as a deadlock guard) for a watched connection to end; returns its error.
async fn connection_error(
    conn: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) -> tokio_postgres::Error {
    let ended = tokio::time::timeout(Duration::from_secs(60), conn)
        .await
        .expect("the connection did not end")
        .expect("connection task panicked");
    ended.expect_err("the connection ended without an error")
}

fn psql_ok(p: &PgPath, user: &str) {
    let ok = p.psql(user, "shop", &["-At", "-c", "SELECT 40 + 2"]);
    assert!(ok.status.success(), "{}\n{}", stderr(&ok), p.bastion.log());
    assert_eq!(stdout(&ok).trim(), "42");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_session_is_closed_with_57p05_and_the_row_says_idle_timeout() {
    let p = PgPath::start("[limits]\nidle_timeout = \"2s\"\n").unwrap();
    let (client, conn) = p.connect_watched("alice@prod-db", "shop").await.unwrap();
    // A statement that runs longer than the idle timeout is not idleness.
    client.batch_execute("SELECT pg_sleep(3)").await.unwrap();
    let err = connection_error(conn).await;
    let (code, message) = db_error(&err);
    assert_eq!(code, "57P05", "{message}");
    assert!(
        message.contains("terminating connection due to idle-session timeout"),
        "{message}"
    );
    assert!(client.is_closed());
    let rows = wait_for_rows(
        &p,
        "SELECT end_reason FROM sessions WHERE end_reason IS NOT NULL",
    );
    assert_eq!(rows[0]["end_reason"], "idle_timeout", "{rows:?}");

    // psql sees the same FATAL on its next statement after idling.
    let mut child = Command::new("psql")
        .arg(p.conninfo("alice@prod-db", "shop"))
        .args(["-X", "-At"])
        .env("PGPASSWORD", "alice-pw")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "SELECT 'first';").unwrap();
    // Wait until the bastion has ended this second session, then send the next statement.
    wait_for_rows(
        &p,
        "SELECT count(*) AS n FROM sessions WHERE end_reason = 'idle_timeout' HAVING count(*) = 2",
    );
    let _ = writeln!(stdin, "SELECT 'second';");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(stdout(&out).contains("first"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("second"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("FATAL:  terminating connection due to idle-session timeout"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_beyond_the_identity_limit_get_53300_and_an_entries_row() {
    let p = PgPath::start("[limits]\nmax_sessions_per_identity = 2\n").unwrap();
    let first = p.connect("alice@prod-db", "shop").await.unwrap();
    let second = p.connect("alice@prod-db", "shop").await.unwrap();
    let third = p
        .connect("alice@prod-db", "shop")
        .await
        .map(|_| ())
        .unwrap_err();
    let pg_err = third
        .downcast_ref::<tokio_postgres::Error>()
        .expect("a tokio-postgres error");
    let (code, message) = db_error(pg_err);
    assert_eq!(code, "53300", "{message}");
    assert!(
        message.contains("too many connections for identity \"alice\""),
        "{message}"
    );
    let out = p.psql("alice@prod-db", "shop", &["-c", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("FATAL:  too many connections for identity \"alice\""),
        "{}",
        stderr(&out)
    );
    // The limit is per identity: dana gets in.
    psql_ok(&p, "dana@prod-db");
    let rows = p
        .audit(
            "SELECT identity, result, reason FROM entries \
             WHERE reason LIKE 'too many connections for identity%'",
        )
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r["identity"] == "alice" && r["result"] == "fail"));

    // Once one of alice's sessions ends, she can open another.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = p.psql("alice@prod-db", "shop", &["-At", "-c", "SELECT 1"]);
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(200));
    }
    second.batch_execute("SELECT 1").await.unwrap();
}

/// `sessions list --format json` until a session of `identity` shows `last_action` containing
/// `text`; returns its id.
fn live_session(p: &PgPath, token: &str, identity: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = p
            .api(token, &["sessions", "list", "--format", "json"])
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(s) = list.iter().find(|s| {
            s["identity"] == identity && s["last_action"].as_str().is_some_and(|a| a.contains(text))
        }) {
            return s["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no live session: {list:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_kill_ends_live_sessions_with_57p01_and_records_who() {
    let p = PgPath::start("").unwrap();
    let token = p.issue_token("dana", "admin").unwrap();

    // A tokio-postgres session between statements.
    let (client, conn) = p.connect_watched("alice@prod-db", "shop").await.unwrap();
    client.batch_execute("SELECT 'kill me'").await.unwrap();
    let id = live_session(&p, &token, "alice", "kill me");
    let out = p.api(&token, &["sessions", "kill", &id]).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("killed session {id}"));
    let (code, message) = db_error(&connection_error(conn).await);
    assert_eq!(code, "57P01", "{message}");
    assert!(
        message.contains("terminating connection due to administrator command")
            && message.contains("killed by dana"),
        "{message}"
    );
    let rows = wait_for_rows(
        &p,
        &format!(
            "SELECT end_reason FROM sessions WHERE session_id = '{id}' AND end_reason IS NOT NULL"
        ),
    );
    assert_eq!(
        rows[0]["end_reason"], "killed: killed by dana through the admin api",
        "{rows:?}"
    );

    // A psql session in the middle of a long statement: psql gets the FATAL, and the statement
    // does not go on running on the target.
    let conninfo = p.conninfo("alice@prod-db", "shop");
    let psql = std::thread::spawn(move || {
        Command::new("psql")
            .arg(conninfo)
            .args(["-X", "-c", "SELECT pg_sleep(120)"])
            .env("PGPASSWORD", "alice-pw")
            .output()
            .unwrap()
    });
    let id = live_session(&p, &token, "alice", "pg_sleep(120)");
    wait_on_target(
        &p,
        "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(120)'",
    );
    let out = p.api(&token, &["sessions", "kill", &id]).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = psql.join().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("FATAL:  terminating connection due to administrator command"),
        "{}",
        stderr(&out)
    );
    wait_on_target(
        &p,
        "SELECT 'gone' WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity \
         WHERE query = 'SELECT pg_sleep(120)' AND state = 'active')",
    );
    let rows = wait_for_rows(
        &p,
        "SELECT outcome, message FROM actions WHERE text = 'SELECT pg_sleep(120)' AND message IS NOT NULL",
    );
    assert_eq!(rows[0]["outcome"], "unknown", "{rows:?}");
    assert_eq!(
        rows[0]["message"], "session ended: killed: killed by dana through the admin api",
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn target_dying_mid_query_gives_the_client_a_clear_error_and_the_bastion_serves_on() {
    let p = PgPath::start("").unwrap();

    // 1. pg_terminate_backend from a superuser: the target's own FATAL 57P01 reaches the client.
    let client = p.connect("alice@prod-db", "shop").await.unwrap();
    let running = tokio::spawn(async move { client.batch_execute("SELECT pg_sleep(61)").await });
    let pid = wait_on_target(
        &p,
        "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(61)' AND state = 'active'",
    );
    p.pg.psql("shop", &format!("SELECT pg_terminate_backend({pid})"))
        .unwrap();
    let err = running.await.unwrap().unwrap_err();
    let (code, message) = db_error(&err);
    assert_eq!(code, "57P01", "{message}");
    assert!(
        message.contains("terminating connection due to administrator command"),
        "{message}"
    );
    let rows = wait_for_rows(
        &p,
        "SELECT outcome, sqlstate FROM actions WHERE text = 'SELECT pg_sleep(61)' AND outcome <> 'unknown'",
    );
    assert_eq!(
        (&rows[0]["outcome"], &rows[0]["sqlstate"]),
        (&"error".into(), &"57P01".into()),
        "{rows:?}"
    );
    wait_for_rows(
        &p,
        "SELECT 1 FROM sessions WHERE end_reason = 'server_gone'",
    );
    psql_ok(&p, "alice@prod-db");

    // 2. The backend vanishes without a word (SIGKILL): the bastion says so with 08006, the
    //    action's outcome is unknown.
    let client = p.connect("alice@prod-db", "shop").await.unwrap();
    let running = tokio::spawn(async move { client.batch_execute("SELECT pg_sleep(62)").await });
    let pid = wait_on_target(
        &p,
        "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(62)' AND state = 'active'",
    );
    let kill = Command::new("kill").args(["-KILL", &pid]).output().unwrap();
    assert!(kill.status.success(), "{}", stderr(&kill));
    let err = running.await.unwrap().unwrap_err();
    let (code, message) = db_error(&err);
    assert_eq!(code, "08006", "{message}");
    assert!(
        message.contains("the target prod-db closed the connection"),
        "{message}"
    );
    let rows = wait_for_rows(
        &p,
        "SELECT outcome, message FROM actions WHERE text = 'SELECT pg_sleep(62)' AND message IS NOT NULL",
    );
    assert_eq!(rows[0]["outcome"], "unknown", "{rows:?}");
    assert_eq!(rows[0]["message"], "session ended: server_gone", "{rows:?}");
    // PostgreSQL restarts all backends after a crash; the bastion serves once it is back.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = p.psql("alice@prod-db", "shop", &["-At", "-c", "SELECT 40 + 2"]);
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(300));
    }

    // 3. The target is stopped: the session gets the server's shutdown FATAL, new connections a
    //    clear refusal, and all works again once the target is back.
    let client = p.connect("alice@prod-db", "shop").await.unwrap();
    let running = tokio::spawn(async move { client.batch_execute("SELECT pg_sleep(63)").await });
    wait_on_target(
        &p,
        "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(63)' AND state = 'active'",
    );
    p.stop_target("fast").unwrap();
    let err = running.await.unwrap().unwrap_err();
    let (code, message) = db_error(&err);
    assert_eq!(code, "57P01", "{message}");
    let down = p.psql("alice@prod-db", "shop", &["-c", "SELECT 1"]);
    assert_eq!(down.status.code(), Some(2));
    assert!(
        stderr(&down).contains("cannot reach target prod-db"),
        "{}",
        stderr(&down)
    );
    p.start_target().unwrap();
    psql_ok(&p, "alice@prod-db");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_stalls_the_target_not_the_bastions_memory() {
    let p = PgPath::start("").unwrap();
    let pid = p.bastion_pid().expect("the bastion's pid");
    let client = p.connect("alice@prod-db", "shop").await.unwrap();
    client.batch_execute("SELECT 1").await.unwrap();
    let rss_start = proc_status_kib(pid, "VmRSS").unwrap();

    // About 200 MB of rows; read one, then stop reading.
    let sql = "SELECT repeat('x', 1000) AS filler FROM generate_series(1, 200000)";
    let no_params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
    let rows = client.query_raw(sql, no_params).await.unwrap();
    futures::pin_mut!(rows);
    use futures::StreamExt;
    let first = rows.next().await.unwrap().unwrap();
    assert_eq!(first.get::<_, String>(0).len(), 1000);

    // The target ends up blocked writing to the bastion, the query unfinished: the bastion
    // stopped reading it because it could not write to the client.
    let state = format!(
        "SELECT state || '/' || coalesce(wait_event, '') FROM pg_stat_activity WHERE query = '{}'",
        sql.replace('\'', "''")
    );
    let mut stalled = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while stalled < 10 {
        let now = p.pg.psql("shop", &state).unwrap();
        assert_ne!(
            now, "idle/ClientRead",
            "the target finished sending the whole result to a client that reads nothing"
        );
        if now == "active/ClientWrite" {
            stalled += 1;
        } else {
            stalled = 0;
        }
        assert!(Instant::now() < deadline, "target state: {now}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let rss_stalled = proc_status_kib(pid, "VmRSS").unwrap();
    assert!(
        rss_stalled < rss_start + 200 * 1024,
        "bastion RSS grew from {rss_start} KiB to {rss_stalled} KiB"
    );

    // Reading again gets every row, and the bastion's peak stayed bounded throughout.
    let mut n = 1;
    while let Some(row) = rows.next().await {
        assert_eq!(row.unwrap().get::<_, String>(0).len(), 1000);
        n += 1;
    }
    assert_eq!(n, 200_000);
    let peak = proc_status_kib(pid, "VmHWM").unwrap();
    assert!(
        peak < rss_start + 200 * 1024,
        "bastion peak RSS {peak} KiB, {rss_start} KiB at start"
    );
    eprintln!("bastion RSS: start {rss_start} KiB, stalled {rss_stalled} KiB, peak {peak} KiB");
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_megabyte_messages_pass_and_oversize_ones_end_the_session_cleanly() {
    let p = PgPath::start("[limits]\nmax_frame_bytes = 23000000\n").unwrap();
    let client = p.connect("alice@dev-db", "shopdev").await.unwrap();
    // A 20 MB bind parameter.
    let big = "b".repeat(20_000_000);
    let row = client
        .query_one("SELECT length($1::text)::int8, right($1::text, 3)", &[&big])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 20_000_000);
    assert_eq!(row.get::<_, String>(1), "bbb");
    // A 20 MB Query message fits the frame limit but not max_statement_bytes (1 MiB by
    // default): it is denied in the protocol's terms, not parsed, and the session goes on.
    let text = format!("SELECT length('{}')", "q".repeat(20_000_000));
    let err = client.simple_query(&text).await.unwrap_err();
    let (code, message) = db_error(&err);
    assert_eq!(code, "42501", "{message}");
    assert!(
        message.contains("statement of 20000017 bytes exceeds the limit of 1048576 bytes (limits.max_statement_bytes)"),
        "{message}"
    );
    let rows = p
        .audit("SELECT text, decision FROM actions WHERE decision = 'deny'")
        .unwrap();
    assert_eq!(
        rows[0]["text"], "[20000017 bytes, not recorded: over the statement limit]",
        "{rows:?}"
    );
    // A 20 MB value back from the server.
    let row = client
        .query_one("SELECT repeat('r', 20000000)", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0).len(), 20_000_000);

    // Over max_frame_bytes: FATAL 54000, the session ends (the stream cannot be resynchronised).
    let (client, conn) = p.connect_watched("alice@dev-db", "shopdev").await.unwrap();
    let too_big = "t".repeat(24_000_000);
    let err = client
        .query_one("SELECT length($1::text)", &[&too_big])
        .await
        .unwrap_err();
    let (code, message) = db_error(&err);
    assert_eq!(code, "54000", "{message}");
    assert!(message.contains("message too large"), "{message}");
    assert!(message.contains("limits.max_frame_bytes"), "{message}");
    let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
    wait_for_rows(
        &p,
        "SELECT 1 FROM sessions WHERE end_reason = 'protocol_error'",
    );
    let again = p.psql("alice@dev-db", "shopdev", &["-At", "-c", "SELECT 7"]);
    assert!(again.status.success(), "{}", stderr(&again));

    // A length prefix of 2 GiB: refused at once, without waiting for (or allocating) the body.
    let pid = p.bastion_pid().expect("the bastion's pid");
    let vm_before = proc_status_kib(pid, "VmSize").unwrap();
    let mut raw = RawClient::connect(&p, "alice@dev-db", "alice-pw", 0x0003_0000, &[]);
    raw.write(&[b'Q', 0x7f, 0xff, 0xff, 0xf0]);
    let (tag, body) = raw.read_message().expect("an answer");
    assert_eq!(tag, b'E');
    let e = error_fields(tag, &body);
    assert_eq!(e.fields.severity(), Some("FATAL"));
    assert_eq!(e.fields.code(), Some("54000"));
    assert!(
        e.fields
            .message()
            .unwrap_or_default()
            .contains("message too large"),
        "{e:?}"
    );
    assert!(
        raw.read_message().is_none(),
        "the bastion closes after the FATAL"
    );
    let vm_peak = proc_status_kib(pid, "VmPeak").unwrap();
    assert!(
        vm_peak < vm_before + 1024 * 1024,
        "virtual size went from {vm_before} KiB to a peak of {vm_peak} KiB"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_lock_the_identity_out_until_an_admin_clears_it() {
    let p = PgPath::start("[limits]\nlockout_after = 3\nlockout_for = \"10m\"\n").unwrap();
    let login = |pw: &str| {
        Command::new("psql")
            .arg(p.conninfo("alice@prod-db", "shop"))
            .args(["-X", "-At", "-c", "SELECT 'in'"])
            .env("PGPASSWORD", pw)
            .output()
            .unwrap()
    };
    for _ in 0..3 {
        let out = login("guess");
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("password authentication failed for user \"alice@prod-db\""),
            "{}",
            stderr(&out)
        );
    }
    // Locked: even the right password is refused, before any password exchange.
    let out = login("alice-pw");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("FATAL:  too many failed login attempts; try again in"),
        "{}",
        stderr(&out)
    );
    let err = p
        .connect("alice@prod-db", "shop")
        .await
        .map(|_| ())
        .unwrap_err();
    let (code, _) = db_error(err.downcast_ref::<tokio_postgres::Error>().unwrap());
    assert_eq!(code, "28000");
    let rows = p
        .audit("SELECT identity, result, reason FROM entries WHERE result = 'locked'")
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["identity"] == "alice"
        && r["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("locked out for")));

    let token = p.issue_token("dana", "admin").unwrap();
    let list = p.api(&token, &["lockouts", "list"]).unwrap();
    assert!(
        stdout(&list).contains("identity:alice"),
        "{}",
        stdout(&list)
    );
    let cleared = p.api(&token, &["lockouts", "clear"]).unwrap();
    assert!(cleared.status.success(), "{}", stderr(&cleared));
    assert!(stdout(&cleared).contains("cleared"), "{}", stdout(&cleared));
    let out = login("alice-pw");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "in");
}

#[test]
fn a_client_asking_for_protocol_3_2_and_pq_options_is_negotiated_down_and_works() {
    let p = PgPath::start("").unwrap();
    let mut raw = RawClient::connect(
        &p,
        "alice@prod-db",
        "alice-pw",
        0x0003_0002,
        &[("_pq_.test_protocol_option", "on")],
    );
    let offer = raw.negotiated.clone().expect("NegotiateProtocolVersion");
    assert_eq!(offer.newest_minor, 0);
    assert_eq!(
        offer.unrecognized,
        vec!["_pq_.test_protocol_option".to_string()]
    );
    // The session works in 3.0.
    let mut q = BytesMut::new();
    Query::new("SELECT count(*) FROM app.orders").encode(&mut q);
    raw.write(&q);
    let mut seen = Vec::new();
    loop {
        let (tag, body) = raw.read_message().expect("an answer");
        seen.push(tag);
        if tag == b'D' {
            // One column: int16 count, int32 length, value.
            assert_eq!(&body[6..], b"3");
        }
        if tag == b'Z' {
            break;
        }
    }
    assert_eq!(seen, b"TDCZ".to_vec());
    // A 3.0 client without options gets no negotiation message.
    let plain = RawClient::connect(&p, "alice@prod-db", "alice-pw", 0x0003_0000, &[]);
    assert!(plain.negotiated.is_none());
}

#[test]
fn an_unknown_message_type_after_login_gets_08p01_and_the_session_ends_cleanly() {
    let p = PgPath::start("").unwrap();
    let mut raw = RawClient::connect(&p, "alice@prod-db", "alice-pw", 0x0003_0000, &[]);
    raw.write(&[b'z', 0, 0, 0, 4]);
    let (tag, body) = raw.read_message().expect("an answer");
    let e = error_fields(tag, &body);
    assert_eq!(
        (e.fields.severity(), e.fields.code()),
        (Some("FATAL"), Some("08P01")),
        "{e:?}"
    );
    assert!(
        e.fields
            .message()
            .unwrap_or_default()
            .contains("unexpected message type 'z' (0x7a) from client"),
        "{e:?}"
    );
    assert!(
        raw.read_message().is_none(),
        "the bastion closes after the FATAL"
    );
    wait_for_rows(
        &p,
        "SELECT 1 FROM sessions WHERE end_reason = 'protocol_error'",
    );
    psql_ok(&p, "alice@prod-db");
}

/// A PostgreSQL client written by hand over TLS (rustls, verifying the bastion's certificate),
/// for what drivers never send: other protocol versions, absurd length prefixes.
struct RawClient {
    tls: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    buf: BytesMut,
    /// The NegotiateProtocolVersion the bastion sent, if any.
    negotiated: Option<NegotiateProtocolVersion>,
}

impl RawClient {
    /// SSLRequest, TLS, startup with `version` and `extra` parameters, SCRAM; returns at the
    /// first ReadyForQuery.
    fn connect(
        p: &PgPath,
        user: &str,
        password: &str,
        version: u32,
        extra: &[(&str, &str)],
    ) -> RawClient {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", p.bastion.pg_port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut ssl = BytesMut::new();
        ssl.put_u32(8);
        ssl.put_u32(80_877_103);
        tcp.write_all(&ssl).unwrap();
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"S");
        let ca = std::fs::read(p.bastion_cert()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut &ca[..]) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut raw = RawClient {
            tls: rustls::StreamOwned::new(conn, tcp),
            buf: BytesMut::new(),
            negotiated: None,
        };
        let mut params = vec![
            ("user".to_string(), user.to_string()),
            ("database".to_string(), "shop".to_string()),
        ];
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut startup = BytesMut::new();
        StartupPacket::encode_startup(&mut startup, version, &params);
        raw.write(&startup);
        let mut scram = ScramClient::new(password, ChannelBinding::NotSupported);
        loop {
            let (tag, body) = raw.read_message().expect("the bastion closed during login");
            let frame = frame_of(tag, &body);
            match tag {
                b'v' => raw.negotiated = Some(NegotiateProtocolVersion::decode(&frame).unwrap()),
                b'R' => match Authentication::decode(&frame).unwrap() {
                    Authentication::Sasl { .. } => {
                        let mut out = BytesMut::new();
                        SaslInitialResponse {
                            mechanism: scram.mechanism().to_string(),
                            data: Some(scram.client_first().into()),
                        }
                        .encode(&mut out);
                        raw.write(&out);
                    }
                    Authentication::SaslContinue { data } => {
                        let reply = scram.handle_server_first(&data).unwrap();
                        let mut out = BytesMut::new();
                        SaslResponse { data: reply.into() }.encode(&mut out);
                        raw.write(&out);
                    }
                    Authentication::SaslFinal { data } => scram.verify_server_final(&data).unwrap(),
                    Authentication::Ok => {}
                    other => panic!("unexpected authentication request {other:?}"),
                },
                b'E' => panic!("login refused: {:?}", error_fields(tag, &body)),
                b'Z' => return raw,
                _ => {}
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).unwrap();
        self.tls.flush().unwrap();
    }

    /// The next message (type, body), or `None` when the bastion closed.
    fn read_message(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some(frame) = decode_frame(&mut self.buf, 64 * 1024 * 1024).unwrap() {
                let mut raw = frame.raw.clone();
                let tag = raw.get_u8();
                raw.advance(4);
                return Some((tag, raw.to_vec()));
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.tls.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

fn frame_of(tag: u8, body: &[u8]) -> Frame {
    let mut b = BytesMut::new();
    b.put_u8(tag);
    b.put_u32(u32::try_from(body.len() + 4).unwrap());
    b.extend_from_slice(body);
    decode_frame(&mut b, usize::MAX).unwrap().unwrap()
}

fn error_fields(tag: u8, body: &[u8]) -> ErrorResponse {
    ErrorResponse::decode(&frame_of(tag, body)).unwrap()
}
