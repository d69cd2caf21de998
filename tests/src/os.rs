//! OS plumbing for the harness: free loopback ports, the unprivileged users servers run as, and
//! running a command as one of them. `scripts/test` creates the users (`bastion-pg` for
//! PostgreSQL, which refuses to run as root; `bastion-ssh` as sshd's login user); when the tests
//! do not run as root, everything runs as the current user instead.
use anyhow::{bail, Context};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// OS user PostgreSQL runs as when the tests run as root.
pub const PG_OS_USER: &str = "bastion-pg";
/// OS user sshd logs in when the tests run as root.
pub const SSH_OS_USER: &str = "bastion-ssh";

/// True when running as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The current user's login name.
pub fn current_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| {
        let out = Command::new("id").arg("-un").output().ok();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "root".into())
    })
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Builds a command that runs as `user` when we are root (via `runuser`), else as ourselves.
pub fn command_as(user: &str, program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", user, "--", program]);
        c
    } else {
        Command::new(program)
    }
}

/// Runs a command to completion; a failure includes its stderr.
pub fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(out)
}

/// Gives `user` ownership of `path` (when root) so a server running as it can use the files.
pub fn chown_to(user: &str, path: &Path) -> anyhow::Result<()> {
    if is_root() {
        run(Command::new("chown").args(["-R", user]).arg(path))?;
    }
    Ok(())
}

/// Makes a directory traversable by other users (temp dirs are created 0700).
pub fn open_dir(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// True when nothing accepts TCP connections on 127.0.0.1:`port` any more.
pub fn port_closed(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}
