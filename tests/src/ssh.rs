//! `SshServer`: a real OpenSSH `sshd` for one test, with its own config, host key and authorized
//! keys in a temp dir, on a free 127.0.0.1 port. When the tests run as root it logs in the
//! unprivileged `bastion-ssh` user; otherwise the current user (sshd not running as root can
//! only log in the user it runs as). Also generates client keys and runs the OpenSSH client with
//! the server's host key pinned. Dropping it kills sshd and removes the directory.
use crate::os;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// A running sshd.
pub struct SshServer {
    dir: TempDir,
    port: u16,
    user: String,
    child: Child,
}

/// A client key pair on disk.
pub struct KeyPair {
    /// Private key file (mode 0600).
    pub private: PathBuf,
    /// Public key line (`ssh-ed25519 AAAA... comment`).
    pub public: String,
}

/// Generates an Ed25519 key pair with `ssh-keygen` in `dir`.
pub fn generate_key(dir: &Path, name: &str) -> anyhow::Result<KeyPair> {
    let private = dir.join(name);
    os::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private),
    )?;
    let public = std::fs::read_to_string(dir.join(format!("{name}.pub")))?
        .trim()
        .to_string();
    Ok(KeyPair { private, public })
}

/// Path of sshd.
pub fn sshd_bin() -> &'static str {
    if Path::new("/usr/sbin/sshd").exists() {
        "/usr/sbin/sshd"
    } else {
        "sshd"
    }
}

impl SshServer {
    /// Starts sshd; retries on another port if the chosen one was taken meanwhile.
    pub fn start() -> anyhow::Result<SshServer> {
        Self::start_accepting_env(&[])
    }

    /// Starts sshd accepting these environment variables from clients as well as the default
    /// `LANG LC_* GIT_PROTOCOL` (e.g. `PROMPT_COMMAND`, which the bastion sends on pty shells).
    pub fn start_accepting_env(names: &[&str]) -> anyhow::Result<SshServer> {
        let mut last = None;
        for _ in 0..3 {
            match Self::start_once(names) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("sshd did not start")))
    }

    fn start_once(accept_env: &[&str]) -> anyhow::Result<SshServer> {
        let user = if os::is_root() {
            os::SSH_OS_USER.to_string()
        } else {
            os::current_user()
        };
        let dir = tempfile::Builder::new().prefix("bastion-sshd-").tempdir()?;
        os::open_dir(dir.path())?;
        if os::is_root() {
            std::fs::create_dir_all("/run/sshd")?;
        }
        os::run(
            Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "test sshd host key",
                    "-f",
                ])
                .arg(dir.path().join("host_key")),
        )?;
        std::fs::write(dir.path().join("authorized_keys"), "")?;
        let port = os::free_port();
        let sftp = [
            "/usr/lib/openssh/sftp-server",
            "/usr/libexec/openssh/sftp-server",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("internal-sftp");
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             AllowUsers {user}\nAllowTcpForwarding yes\nGatewayPorts no\nX11Forwarding no\n\
             PermitUserEnvironment no\nAcceptEnv LANG LC_* GIT_PROTOCOL {extra_env}\nLogLevel VERBOSE\n\
             TrustedUserCAKeys {d}/trusted_user_ca_keys\nSubsystem sftp {sftp}\n",
            d = dir.path().display(),
            extra_env = accept_env.join(" ")
        );
        std::fs::write(dir.path().join("trusted_user_ca_keys"), "")?;
        std::fs::write(dir.path().join("sshd_config"), config)?;
        let log = std::fs::File::create(dir.path().join("sshd.log"))?;
        let child = Command::new(sshd_bin())
            .args(["-D", "-e", "-f"])
            .arg(dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting sshd (is openssh-server installed? run ./scripts/test)")?;
        let mut server = SshServer {
            dir,
            port,
            user,
            child,
        };
        if !os::wait_for_port(port, Duration::from_secs(20)) || server.child.try_wait()?.is_some() {
            bail!("sshd did not listen on {port}: {}", server.log());
        }
        Ok(server)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The OS user sshd logs in.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The temp directory (host key, config, known_hosts).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The host public key line (`ssh-ed25519 AAAA...`), to pin.
    pub fn host_key(&self) -> anyhow::Result<String> {
        let line = std::fs::read_to_string(self.dir.path().join("host_key.pub"))?;
        Ok(line
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Adds a public key line to the login user's authorized keys.
    pub fn authorize(&self, public_key_line: &str) -> anyhow::Result<()> {
        let path = self.dir.path().join("authorized_keys");
        let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
        std::io::Write::write_all(&mut f, format!("{public_key_line}\n").as_bytes())?;
        Ok(())
    }

    /// Trusts a user CA public key line (`TrustedUserCAKeys`).
    pub fn trust_user_ca(&self, public_key_line: &str) -> anyhow::Result<()> {
        std::fs::write(
            self.dir.path().join("trusted_user_ca_keys"),
            format!("{public_key_line}\n"),
        )?;
        Ok(())
    }

    /// A known_hosts file pinning this server's host key.
    pub fn known_hosts(&self) -> anyhow::Result<PathBuf> {
        let path = self.dir.path().join("known_hosts");
        std::fs::write(
            &path,
            format!("[127.0.0.1]:{} {}\n", self.port, self.host_key()?),
        )?;
        Ok(path)
    }

    /// An OpenSSH client command for this server with `key`, host key pinned, batch mode.
    pub fn ssh_command(&self, key: &Path) -> anyhow::Result<Command> {
        let mut c = Command::new("ssh");
        c.args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
        ])
        .arg(format!(
            "UserKnownHostsFile={}",
            self.known_hosts()?.display()
        ))
        .args(["-o", "IdentitiesOnly=yes", "-i"])
        .arg(key)
        .args(["-p", &self.port.to_string(), "-l", &self.user, "127.0.0.1"]);
        Ok(c)
    }
}

impl SshServer {
    /// Like [`SshServer::ssh_command`], logging in with `key` and its OpenSSH certificate
    /// `certificate` (`-o CertificateFile=`), nothing else.
    pub fn ssh_command_with_certificate(
        &self,
        key: &Path,
        certificate: &Path,
    ) -> anyhow::Result<Command> {
        let mut c = Command::new("ssh");
        c.args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
        ])
        .arg(format!(
            "UserKnownHostsFile={}",
            self.known_hosts()?.display()
        ))
        .args(["-o", "IdentitiesOnly=yes", "-o"])
        .arg(format!("CertificateFile={}", certificate.display()))
        .arg("-i")
        .arg(key)
        .args(["-p", &self.port.to_string(), "-l", &self.user, "127.0.0.1"]);
        Ok(c)
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A terminal for interactive tests: a private tmux server (its own socket in a temp dir) with
/// one window running a command, driven with `send-keys` and read with `capture-pane`. Dropping
/// it kills the tmux server and the command.
pub struct TmuxTerminal {
    dir: TempDir,
}

impl TmuxTerminal {
    /// Starts `program` with `args` in a detached `cols`×`rows` window.
    pub fn start(program: &str, args: &[String], cols: u16, rows: u16) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("bastion-tmux-").tempdir()?;
        Self::start_in(dir, program, args, cols, rows)
    }

    fn start_in(
        dir: TempDir,
        program: &str,
        args: &[String],
        cols: u16,
        rows: u16,
    ) -> anyhow::Result<Self> {
        let terminal = TmuxTerminal { dir };
        let mut command = terminal.tmux();
        command
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "t", "-x"])
            .arg(cols.to_string())
            .arg("-y")
            .arg(rows.to_string())
            .arg(program)
            .args(args);
        os::run(&mut command).context("starting tmux (is tmux installed? run ./scripts/test)")?;
        // Keep the window after the command exits, so its last screen can still be read.
        os::run(
            terminal
                .tmux()
                .args(["set-option", "-t", "t", "remain-on-exit", "on"]),
        )?;
        Ok(terminal)
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(self.dir.path().join("socket"));
        c
    }

    /// Sends tmux key names (`Enter`, `Up`, `C-c`, `BSpace`, `Escape`, ...).
    pub fn keys(&self, keys: &[&str]) -> anyhow::Result<()> {
        os::run(self.tmux().args(["send-keys", "-t", "t"]).args(keys))?;
        Ok(())
    }

    /// Types `text` literally (no key names).
    pub fn type_text(&self, text: &str) -> anyhow::Result<()> {
        os::run(self.tmux().args(["send-keys", "-t", "t", "-l", "--", text]))?;
        Ok(())
    }

    /// Pastes `text` as the terminal would: bracketed when the application asked for it.
    pub fn paste(&self, text: &str) -> anyhow::Result<()> {
        os::run(self.tmux().args(["set-buffer", "--", text]))?;
        os::run(self.tmux().args(["paste-buffer", "-p", "-t", "t"]))?;
        Ok(())
    }

    /// The visible screen, one line per row.
    pub fn screen(&self) -> anyhow::Result<String> {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The screen and what scrolled off it (up to 2000 rows).
    pub fn history(&self) -> anyhow::Result<String> {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-S", "-2000", "-t", "t"])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Polls the screen and its history until `ready` holds, at most `timeout`; returns the
    /// last capture, or an error carrying it.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let text = self.history()?;
            if ready(&text) {
                return Ok(text);
            }
            if std::time::Instant::now() > deadline {
                bail!("timed out waiting for {what}; the terminal shows:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the screen and its history contain `needle` `times` times or more.
    pub fn wait_for_text(&self, needle: &str, times: usize) -> anyhow::Result<String> {
        self.wait_for(
            &format!("{needle:?} x{times}"),
            Duration::from_secs(30),
            |text| text.matches(needle).count() >= times,
        )
    }
}

impl TmuxTerminal {
    /// Like [`TmuxTerminal::start`], but the command's pid and exit status are written to files
    /// (tmux itself does not always reap a command that exits), for [`Self::command_pid`] and
    /// [`Self::exit_status`]. A command killed by a signal exits with 128 + the signal number.
    pub fn start_watched(
        program: &str,
        args: &[String],
        cols: u16,
        rows: u16,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("bastion-tmux-").tempdir()?;
        let pid = dir.path().join("pid");
        let status = dir.path().join("status");
        // The inner shell writes its pid and becomes the command; the outer one waits for it.
        let script = format!(
            "sh -c 'echo $$ > {pid}.tmp; mv {pid}.tmp {pid}; exec \"$0\" \"$@\"' \"$@\"; \
             echo $? > {status}.tmp; mv {status}.tmp {status}",
            pid = pid.display(),
            status = status.display()
        );
        let mut wrapped = vec![
            "-c".to_string(),
            script,
            "sh".to_string(),
            program.to_string(),
        ];
        wrapped.extend(args.iter().cloned());
        let terminal = Self::start_in(dir, "sh", &wrapped, cols, rows)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while terminal.watched_file("pid")?.is_none() {
            if std::time::Instant::now() > deadline {
                bail!("{program} did not start in tmux");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(terminal)
    }

    fn watched_file(&self, name: &str) -> anyhow::Result<Option<String>> {
        match std::fs::read_to_string(self.dir.path().join(name)) {
            Ok(text) => Ok(Some(text.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The pid of a command started with [`Self::start_watched`].
    pub fn command_pid(&self) -> anyhow::Result<u32> {
        let text = self
            .watched_file("pid")?
            .context("not started with start_watched")?;
        text.parse()
            .with_context(|| format!("pid file holds {text:?}"))
    }

    /// The exit status of a command started with [`Self::start_watched`] once it has exited,
    /// `None` while it runs.
    pub fn exit_status(&self) -> anyhow::Result<Option<i32>> {
        match self.watched_file("status")? {
            Some(text) => Ok(Some(
                text.parse()
                    .with_context(|| format!("status file holds {text:?}"))?,
            )),
            None => Ok(None),
        }
    }

    /// Waits until a command started with [`Self::start_watched`] has exited, at most
    /// `timeout` (a deadlock guard); returns its exit status, or an error carrying the screen.
    pub fn wait_for_exit(&self, timeout: Duration) -> anyhow::Result<i32> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "the command did not exit within {timeout:?}; the terminal shows:\n{}",
                    self.history()?
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether a process whose full command line contains `pattern` runs on this machine (`pgrep
/// -f`), e.g. a uniquely numbered `sleep` started on a test target.
pub fn process_running(pattern: &str) -> anyhow::Result<bool> {
    let status = Command::new("pgrep")
        .args(["-f", "--", pattern])
        .stdout(Stdio::null())
        .status()
        .context("running pgrep")?;
    Ok(status.success())
}

impl Drop for TmuxTerminal {
    fn drop(&mut self) {
        let _ = self
            .tmux()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
