//! `PgServer`: a real, throwaway PostgreSQL cluster for one test. initdb as the unprivileged
//! `bastion-pg` user (PostgreSQL refuses root), scram-sha-256 for TCP logins, TLS on with a
//! certificate from a CA generated per server, listening on a free 127.0.0.1 port. Dropping it
//! stops the server (`pg_ctl stop -m immediate`) and removes the data directory.
use crate::os;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// Password of the `postgres` superuser of every test cluster.
pub const SUPERUSER_PASSWORD: &str = "test-superuser-password";

/// A running PostgreSQL cluster.
pub struct PgServer {
    dir: TempDir,
    port: u16,
    os_user: String,
}

/// A CA and a leaf certificate for `localhost` / `127.0.0.1`, PEM encoded.
pub struct TestPki {
    /// CA certificate.
    pub ca_pem: String,
    /// Leaf certificate.
    pub cert_pem: String,
    /// Leaf private key.
    pub key_pem: String,
}

impl TestPki {
    /// Generates a fresh CA and server certificate.
    pub fn generate() -> anyhow::Result<TestPki> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "bastion test CA");
        let ca_key = KeyPair::generate()?;
        let ca = ca_params.self_signed(&ca_key)?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        Ok(TestPki {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl PgServer {
    /// Starts a cluster; retries on another port if the chosen one was taken meanwhile.
    pub fn start() -> anyhow::Result<PgServer> {
        let mut last = None;
        for _ in 0..3 {
            match Self::start_once() {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("postgres did not start")))
    }

    fn start_once() -> anyhow::Result<PgServer> {
        let os_user = if os::is_root() {
            os::PG_OS_USER.to_string()
        } else {
            os::current_user()
        };
        let dir = tempfile::Builder::new().prefix("bastion-pg-").tempdir()?;
        os::open_dir(dir.path())?;
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD)?;
        let pki = TestPki::generate()?;
        std::fs::write(dir.path().join("ca.crt"), &pki.ca_pem)?;
        std::fs::write(dir.path().join("server.crt"), &pki.cert_pem)?;
        write_private(&dir.path().join("server.key"), &pki.key_pem)?;
        os::chown_to(&os_user, dir.path())?;
        os::run(
            os::command_as(&os_user, &pg_bin("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ])
                .arg(format!("--pwfile={}", pwfile.display())),
        )
        .context(
            "initdb (is postgresql installed and the bastion-pg user created? run ./scripts/test)",
        )?;
        let port = os::free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{sock}'\n\
             ssl = on\nssl_cert_file = '{d}/server.crt'\nssl_key_file = '{d}/server.key'\n\
             password_encryption = 'scram-sha-256'\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nmax_connections = 300\nshared_buffers = 32MB\n\
             max_prepared_transactions = 10\nlog_min_messages = warning\n",
            sock = dir.path().display(),
            d = dir.path().display()
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))?;
        std::io::Write::write_all(&mut f, conf.as_bytes())?;
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )?;
        os::chown_to(&os_user, dir.path())?;
        let server = PgServer { dir, port, os_user };
        os::run(
            os::command_as(&server.os_user, &pg_bin("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(server.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "start"]),
        )
        .with_context(|| format!("pg_ctl start: {}", server.log()))?;
        if !os::wait_for_port(port, Duration::from_secs(30)) {
            bail!("postgres did not listen on {port}: {}", server.log());
        }
        Ok(server)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Path of the CA certificate that signed the server's certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Directory of the Unix socket (for `psql -h`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs SQL as the superuser through `psql` on the Unix socket; returns stdout (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let out = os::run(
            os::command_as(&self.os_user, "psql")
                .args([
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-U",
                    "postgres",
                    "-h",
                ])
                .arg(self.dir.path())
                .args(["-p", &self.port.to_string(), "-d", db, "-c", sql]),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Creates a login role with a password.
    pub fn create_role(&self, name: &str, password: &str, extra: &str) -> anyhow::Result<()> {
        self.psql(
            "postgres",
            &format!("CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}' {extra}"),
        )?;
        Ok(())
    }

    /// Whether a role named `name` exists (`pg_roles`, checked as the superuser).
    pub fn role_exists(&self, name: &str) -> anyhow::Result<bool> {
        let n = self.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_roles WHERE rolname = '{}'",
                name.replace('\'', "''")
            ),
        )?;
        Ok(n == "1")
    }

    /// How many backends are logged in as `name` (`pg_stat_activity`).
    pub fn backends_of(&self, name: &str) -> anyhow::Result<usize> {
        let n = self.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}'",
                name.replace('\'', "''")
            ),
        )?;
        Ok(n.parse()?)
    }

    /// Creates a database owned by `owner`.
    pub fn create_database(&self, name: &str, owner: &str) -> anyhow::Result<()> {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE \"{name}\" OWNER \"{owner}\""),
        )?;
        Ok(())
    }

    /// A libpq connection string for `user`/`password` over verified TLS.
    pub fn conninfo(&self, db: &str, user: &str, password: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={db} user={user} password={password} sslmode=verify-full sslrootcert={}",
            self.port,
            self.ca_path().display()
        )
    }

    /// Connects with tokio-postgres as the superuser over TLS verified against the test CA.
    pub async fn connect(&self, db: &str) -> anyhow::Result<tokio_postgres::Client> {
        connect_tls(
            &format!("host=127.0.0.1 port={} dbname={db} user=postgres password={SUPERUSER_PASSWORD} sslmode=require", self.port),
            &std::fs::read(self.ca_path())?,
        )
        .await
    }
}

/// Connects with tokio-postgres over rustls, trusting only `ca_pem`; drives the connection in a task.
pub async fn connect_tls(conninfo: &str, ca_pem: &[u8]) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(conninfo, make_tls(ca_pem)?).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A tokio-postgres TLS connector trusting only `ca_pem`.
pub fn make_tls(ca_pem: &[u8]) -> anyhow::Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut f, contents.as_bytes())?;
    Ok(())
}

/// Path of a PostgreSQL server binary (Debian keeps them out of PATH).
pub fn pg_bin(name: &str) -> String {
    for version in ["17", "16", "15", "14", "13"] {
        let p = format!("/usr/lib/postgresql/{version}/bin/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    name.to_string()
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = os::command_as(&self.os_user, &pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
