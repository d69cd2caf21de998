//! Running the real `bastion` binary: find it next to the test executable, run CLI commands,
//! and `BastionProcess` for `bastion serve` with a config written into a temp dir (SIGTERM and
//! reaped on drop).
use crate::os;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// Path of the `bastion` binary built in the same target directory as the tests.
pub fn bastion_bin() -> PathBuf {
    if let Ok(p) = std::env::var("BASTION_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test-binary> -> target/<profile>/bastion
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    profile_dir.join("bastion")
}

/// A `bastion` command with the given arguments.
pub fn bastion(args: &[&str]) -> Command {
    let mut c = Command::new(bastion_bin());
    c.args(args);
    c
}

/// Runs `bastion` with arguments, returning the output whatever the status.
pub fn run_bastion(args: &[&str]) -> anyhow::Result<Output> {
    let bin = bastion_bin();
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build -p bastion` first",
            bin.display()
        );
    }
    Ok(bastion(args).output()?)
}

/// A running `bastion serve`.
pub struct BastionProcess {
    /// Temp dir holding the config, state and audit directories.
    pub dir: TempDir,
    /// The config file.
    pub config: PathBuf,
    /// PostgreSQL listener port (0 if none).
    pub pg_port: u16,
    /// SSH listener port (0 if none).
    pub ssh_port: u16,
    child: Option<Child>,
}

impl BastionProcess {
    /// Writes `config_body` (with `{PG_PORT}`, `{SSH_PORT}` and `{DIR}` substituted) and starts
    /// `bastion serve`, waiting until the configured listeners accept.
    pub fn start(config_body: &str) -> anyhow::Result<BastionProcess> {
        let dir = tempfile::Builder::new().prefix("bastion-").tempdir()?;
        let pg_port = if config_body.contains("{PG_PORT}") {
            os::free_port()
        } else {
            0
        };
        let ssh_port = if config_body.contains("{SSH_PORT}") {
            os::free_port()
        } else {
            0
        };
        let body = config_body
            .replace("{PG_PORT}", &pg_port.to_string())
            .replace("{SSH_PORT}", &ssh_port.to_string())
            .replace("{DIR}", &dir.path().display().to_string());
        let config = dir.path().join("bastion.toml");
        std::fs::write(&config, body)?;
        let mut p = BastionProcess {
            dir,
            config,
            pg_port,
            ssh_port,
            child: None,
        };
        p.spawn()?;
        Ok(p)
    }

    /// Starts (or restarts) the process with the same config.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = bastion(&["serve", "--config"])
            .arg(&self.config)
            .env("BASTION_LOG", "info,bastion=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bastion_bin().display()))?;
        self.child = Some(child);
        for port in [self.pg_port, self.ssh_port]
            .into_iter()
            .filter(|p| *p != 0)
        {
            if !os::wait_for_port(port, Duration::from_secs(30)) {
                bail!("bastion did not listen on {port}: {}", self.log());
            }
        }
        Ok(())
    }

    /// Path of the combined stdout/stderr log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("bastion.log")
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs a `bastion` CLI command against this instance's config.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut all: Vec<&str> = args.to_vec();
        let cfg = self.config.display().to_string();
        all.extend(["--config", &cfg]);
        run_bastion(&all)
    }

    /// `bastion audit query --format json SQL`, polled until `done` accepts the rows, or 30 s
    /// have passed (a deadlock guard, not a timing assertion): the rows last read.
    pub fn audit_until(
        &self,
        sql: &str,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let start = std::time::Instant::now();
        loop {
            let out = self
                .cli(&["audit", "query", "--format", "json", sql])
                .expect("run bastion audit query");
            let rows = parse_json_rows(&String::from_utf8_lossy(&out.stdout));
            if done(&rows) || start.elapsed() > Duration::from_secs(30) {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("not running")
        };
        signal(&child, libc::SIGTERM);
        Ok(child.wait()?)
    }

    /// Kills the process with SIGKILL (crash simulation).
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

fn signal(child: &Child, sig: i32) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

impl Drop for BastionProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGTERM);
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Rows printed by `audit query --format json`: one JSON array, or one object per line.
fn parse_json_rows(out: &str) -> Vec<serde_json::Value> {
    let out = out.trim();
    if out.starts_with('[') {
        serde_json::from_str(out).unwrap_or_default()
    } else {
        out.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
