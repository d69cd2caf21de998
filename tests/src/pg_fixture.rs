//! A whole PostgreSQL path for one test: a real PostgreSQL with the sample schema, and a real
//! `bastion serve` in front of it with the starter policy pack and the starter identities
//! (alice, dana, deploy-bot, agent-7; targets prod-db and dev-db on the same server, databases
//! `shop` and `shopdev`). Clients connect with `conninfo("alice@prod-db")` and the user's
//! password `<user>-pw`.
use crate::bastion::BastionProcess;
use crate::pg::PgServer;
use std::path::PathBuf;

/// Password of the bastion's upstream role.
pub const UPSTREAM_PASSWORD: &str = "upstream-secret-never-shown";
/// Base32 TOTP secret of alice and dana.
pub const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// PostgreSQL + bastion.
pub struct PgPath {
    /// The target server.
    pub pg: PgServer,
    /// The bastion in front of it.
    pub bastion: BastionProcess,
    /// Verifiers, TOTP secrets and the upstream password the config points at.
    pub secrets: tempfile::TempDir,
}

/// The repository's root (for `examples/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

const SCHEMA: &str = "
CREATE SCHEMA app;
CREATE SCHEMA secrets;
CREATE TABLE app.customers (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE app.orders (id serial PRIMARY KEY, customer_id int, total numeric(10,2), status text DEFAULT 'new');
CREATE TABLE payroll (id serial PRIMARY KEY, employee text, salary numeric(10,2));
CREATE TABLE secrets.api_keys (id serial PRIMARY KEY, service text, key text);
INSERT INTO app.customers (name) VALUES ('Ada'), ('Grace');
INSERT INTO app.orders (customer_id, total) VALUES (1, 42.00), (2, 99.50), (1, 7.25);
INSERT INTO payroll (employee, salary) VALUES ('alice', 100000);
";

impl PgPath {
    /// Starts both. `extra` is appended to the generated bastion.toml.
    pub fn start(extra: &str) -> anyhow::Result<PgPath> {
        let pg = PgServer::start()?;
        pg.create_role("bastion_up", UPSTREAM_PASSWORD, "CREATEDB")?;
        for db in ["shop", "shopdev"] {
            pg.create_database(db, "bastion_up")?;
            pg.psql(db, &format!("SET ROLE bastion_up; {SCHEMA}"))?;
        }
        let dir = tempfile::tempdir()?;
        let mut users = String::new();
        for (name, kind, groups) in [
            ("alice", "human", "\"engineers\""),
            ("dana", "human", "\"dba\", \"engineers\""),
            ("deploy-bot", "service", "\"deployers\""),
            ("agent-7", "agent", "\"agents\""),
        ] {
            let verifier = protocol::postgres::scram::make_verifier(&format!("{name}-pw"), 4096)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            std::fs::write(dir.path().join(format!("{name}.scram")), verifier)?;
            let totp = if kind == "human" {
                format!("totp = \"file:{name}.totp\"\n")
            } else {
                String::new()
            };
            std::fs::write(dir.path().join(format!("{name}.totp")), TOTP_SECRET)?;
            users.push_str(&format!(
                "[[users]]\nname = \"{name}\"\nkind = \"{kind}\"\ngroups = [{groups}]\nscram_verifier = \"file:{d}/{name}.scram\"\n{totp}\n",
                d = dir.path().display(),
                totp = totp.replace("file:", &format!("file:{}/", dir.path().display()))
            ));
        }
        std::fs::write(dir.path().join("upstream.password"), UPSTREAM_PASSWORD)?;
        let ca = pg.ca_path();
        let mut targets = String::new();
        for (name, db, env) in [("prod-db", "shop", "prod"), ("dev-db", "shopdev", "dev")] {
            targets.push_str(&format!(
                "[[targets]]\nname = \"{name}\"\nprotocol = \"postgres\"\naddress = \"127.0.0.1:{port}\"\ndatabase = \"{db}\"\n\
                 tags = {{ env = \"{env}\" }}\nupstream_user = \"bastion_up\"\ncredential = \"file:{d}/upstream.password\"\ntls_root = \"{ca}\"\n\n",
                port = pg.port(),
                d = dir.path().display(),
                ca = ca.display()
            ));
        }
        let config = format!(
            "[server]\npostgres_listen = \"127.0.0.1:{{PG_PORT}}\"\nstate_dir = \"{{DIR}}/state\"\naudit_dir = \"{{DIR}}/audit\"\n\
             shutdown_grace = \"3s\"\n\n{users}{targets}[policies]\npaths = [\"{policies}\"]\n\n[recorder]\nroll_max_age = \"1s\"\n{extra}\n",
            policies = repo_root().join("examples/policies").display()
        );
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(dir.path())? {
            std::fs::set_permissions(entry?.path(), std::fs::Permissions::from_mode(0o600))?;
        }
        let bastion = BastionProcess::start(&config)?;
        Ok(PgPath {
            pg,
            bastion,
            secrets: dir,
        })
    }

    /// Path of the bastion's generated certificate (clients' `sslrootcert`).
    pub fn bastion_cert(&self) -> PathBuf {
        self.bastion.dir.path().join("state/tls/bastion.crt")
    }

    /// libpq conninfo for `user` (e.g. `alice@prod-db`) through the bastion, verify-full.
    pub fn conninfo(&self, user: &str, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname={db} sslmode=verify-full sslrootcert={}",
            self.bastion.pg_port,
            self.bastion_cert().display()
        )
    }

    /// Runs psql through the bastion as `user` with `args`; password `<identity>-pw`.
    pub fn psql(&self, user: &str, db: &str, args: &[&str]) -> std::process::Output {
        let identity = user.split('@').next().unwrap_or(user);
        std::process::Command::new("psql")
            .arg(self.conninfo(user, db))
            .args(["-X", "-v", "ON_ERROR_STOP=1"])
            .args(args)
            .env("PGPASSWORD", format!("{identity}-pw"))
            .env("PGCONNECT_TIMEOUT", "20")
            .output()
            .unwrap_or_else(|e| panic!("running psql: {e}"))
    }

    /// A tokio-postgres client through the bastion as `user` (password `<identity>-pw`).
    pub async fn connect(&self, user: &str, db: &str) -> anyhow::Result<tokio_postgres::Client> {
        let identity = user.split('@').next().unwrap_or(user);
        self.connect_with(user, db, &format!("{identity}-pw")).await
    }

    /// A tokio-postgres client through the bastion with an explicit password; the connection
    /// is driven in a task.
    pub async fn connect_with(
        &self,
        user: &str,
        db: &str,
        password: &str,
    ) -> anyhow::Result<tokio_postgres::Client> {
        let ca = std::fs::read(self.bastion_cert())?;
        let tls = crate::pg::make_tls(&ca)?;
        let mut cfg = tokio_postgres::Config::new();
        cfg.host("127.0.0.1")
            .port(self.bastion.pg_port)
            .user(user)
            .password(password)
            .dbname(db)
            .ssl_mode(tokio_postgres::config::SslMode::Require);
        let (client, conn) = cfg.connect(tls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// `bastion audit query` on this bastion's trail, JSON rows.
    pub fn audit(&self, sql: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let out = self
            .bastion
            .cli(&["audit", "query", "--format", "json", sql])?;
        if !out.status.success() {
            anyhow::bail!(
                "audit query failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let trimmed = text.trim();
        if trimmed.starts_with('[') {
            return Ok(serde_json::from_str(trimmed)?);
        }
        Ok(trimmed
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?)
    }
}

/// Helpers for limit and fault tests: the bastion's process, the target's life cycle, the admin
/// API, and a tokio-postgres client whose connection result can be awaited.
impl PgPath {
    /// Pid of this `bastion serve` (found by its config path in `/proc/*/cmdline`).
    pub fn bastion_pid(&self) -> Option<u32> {
        let config = self.bastion.config.display().to_string();
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let serves = args.contains(&&b"serve"[..]);
            let ours = args.contains(&config.as_bytes());
            (serves && ours).then_some(pid)
        })
    }

    /// Stops the target PostgreSQL (`pg_ctl stop -m <mode>`: `fast` or `immediate`).
    pub fn stop_target(&self, mode: &str) -> anyhow::Result<()> {
        crate::os::run(
            crate::os::command_as(&pg_os_user(), &crate::pg::pg_bin("pg_ctl"))
                .arg("-D")
                .arg(self.pg.socket_dir().join("data"))
                .args(["-m", mode, "-w", "stop"]),
        )?;
        Ok(())
    }

    /// Starts the target again after [`PgPath::stop_target`] (same data, same port).
    pub fn start_target(&self) -> anyhow::Result<()> {
        crate::os::run(
            crate::os::command_as(&pg_os_user(), &crate::pg::pg_bin("pg_ctl"))
                .arg("-D")
                .arg(self.pg.socket_dir().join("data"))
                .arg("-l")
                .arg(self.pg.socket_dir().join("server.log"))
                .args(["-w", "-t", "60", "start"]),
        )?;
        if !crate::os::wait_for_port(self.pg.port(), std::time::Duration::from_secs(30)) {
            anyhow::bail!("postgres did not listen again: {}", self.pg.log());
        }
        Ok(())
    }

    /// Issues an admin-API token (`bastion token issue`) for `user` with `scope`, once the admin
    /// socket answers.
    pub fn issue_token(&self, user: &str, scope: &str) -> anyhow::Result<String> {
        let socket = self.bastion.dir.path().join("state/admin.sock");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if std::time::Instant::now() > deadline {
                anyhow::bail!("admin socket never answered: {}", self.bastion.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let out = self
            .bastion
            .cli(&["token", "issue", "--user", user, "--scope", scope])?;
        if !out.status.success() {
            anyhow::bail!("token issue: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Runs an admin-API CLI command (`sessions kill ID`, `lockouts clear`, …) with `token`.
    pub fn api(&self, token: &str, args: &[&str]) -> anyhow::Result<std::process::Output> {
        let mut all = args.to_vec();
        all.extend(["--token", token]);
        self.bastion.cli(&all)
    }

    /// Like [`PgPath::connect_with`], but the connection task's result is returned too: a FATAL
    /// the server sends while no query is running ends the connection with that error.
    pub async fn connect_watched(
        &self,
        user: &str,
        db: &str,
    ) -> anyhow::Result<(
        tokio_postgres::Client,
        tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    )> {
        let identity = user.split('@').next().unwrap_or(user);
        let ca = std::fs::read(self.bastion_cert())?;
        let tls = crate::pg::make_tls(&ca)?;
        let mut cfg = tokio_postgres::Config::new();
        cfg.host("127.0.0.1")
            .port(self.bastion.pg_port)
            .user(user)
            .password(format!("{identity}-pw"))
            .dbname(db)
            .ssl_mode(tokio_postgres::config::SslMode::Require);
        let (client, conn) = cfg.connect(tls).await?;
        Ok((client, tokio::spawn(conn)))
    }
}

/// `VmRSS`/`VmHWM`/… of `/proc/<pid>/status`, in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// The OS user the test clusters run as (see `PgServer`).
fn pg_os_user() -> String {
    if crate::os::is_root() {
        crate::os::PG_OS_USER.to_string()
    } else {
        crate::os::current_user()
    }
}

/// The current one-time code for a base32 secret (as an authenticator app shows it).
pub fn totp_code(base32: &str) -> String {
    let secret = bastion::totp::TotpSecret::from_base32(base32)
        .unwrap_or_else(|_| bastion::totp::TotpSecret::from_bytes(Vec::new()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    bastion::totp::code_at(&secret, now)
}
