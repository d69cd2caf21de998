//! The harness itself: real PostgreSQL and sshd start, answer real clients, and are gone after drop.
use tests::os::port_closed;
use tests::pg::PgServer;
use tests::ssh::{generate_key, SshServer};

#[tokio::test]
async fn postgres_starts_answers_tokio_postgres_over_tls_and_is_torn_down() {
    let pg = PgServer::start().expect("postgres starts");
    let port = pg.port();
    let data = pg.socket_dir().to_path_buf();
    let client = pg
        .connect("postgres")
        .await
        .expect("tokio-postgres connects over verified TLS");
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "connection is TLS");
    pg.create_role("app", "app-password", "").unwrap();
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'app'"
        )
        .unwrap(),
        "1"
    );
    drop(client);
    drop(pg);
    assert!(port_closed(port), "postgres still listening after drop");
    assert!(!data.exists(), "data directory left behind");
}

#[test]
fn sshd_starts_answers_openssh_client_and_is_torn_down() {
    let sshd = SshServer::start().expect("sshd starts");
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "client").unwrap();
    sshd.authorize(&key.public).unwrap();
    let out = sshd
        .ssh_command(&key.private)
        .unwrap()
        .arg("echo hello from $(whoami)")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh failed: {}\nsshd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("hello from {}", sshd.user())
    );
    let port = sshd.port();
    let dir = sshd.dir().to_path_buf();
    drop(sshd);
    assert!(port_closed(port), "sshd still listening after drop");
    assert!(!dir.exists(), "sshd directory left behind");
}
