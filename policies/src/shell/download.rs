//! Downloaders (SH-3): commands whose output is data fetched from elsewhere (`curl`, `wget`,
//! `nc`, ...), and redirections that read from the network (`< /dev/tcp/host/port`).
//! Anything downstream of a downloader in a pipeline or substitution carries its taint.

/// Commands whose standard output is fetched from the network.
const DOWNLOADERS: &[&str] = &[
    "curl",
    "wget",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "fetch",
    "aria2c",
    "http",
    "https",
    "xh",
    "lwp-request",
    "lwp-download",
    "GET",
    "tftp",
    "ftp",
    "telnet",
    "ssh",
    "openssl",
    "wget2",
    "curlie",
    "scp",
    "sftp",
    "rsync",
];

/// Whether a command with this normalised name downloads.
pub(super) fn is_downloader(name: &str) -> bool {
    DOWNLOADERS.contains(&name)
}

/// Whether a (normalised) redirection target reads from the network (bash's `/dev/tcp`).
pub(super) fn is_network_path(path: &str) -> bool {
    path.starts_with("/dev/tcp/") || path.starts_with("/dev/udp/")
}
