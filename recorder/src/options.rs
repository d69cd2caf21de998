//! Options the binary passes to [`crate::Recorder::open`].

use std::path::PathBuf;
use std::time::Duration;

/// When `action()` and friends return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After `write(2)`: the row survives a crash of the bastion, not of the machine.
    #[default]
    Os,
    /// After `write(2)` and `fdatasync(2)`: the row survives a power cut too.
    Fsync,
}

/// How the recorder stores the audit trail.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    /// The audit directory (`journal/`, `actions/`, `outcomes/`, `sessions/`, `entries/`, `manifests/`).
    pub dir: PathBuf,
    /// This node's name; Parquet files are named `<node>-<seq>.parquet`.
    pub node: String,
    /// When a recorded row counts as written.
    pub durability: Durability,
    /// A journal segment is rolled into Parquet once it holds this many rows.
    pub roll_max_rows: usize,
    /// A journal segment is rolled into Parquet once its first row is this old.
    pub roll_max_age: Duration,
    /// With [`Durability::Fsync`], rows that may wait for the group-commit writer; when full,
    /// callers wait (rows are never dropped). Unused in `os` mode, where callers write.
    pub queue_capacity: usize,
    /// Day partitions older than this many days are removed (the removal is noted in the manifest chain).
    pub retain_days: Option<u32>,
    /// PKCS#8 PEM Ed25519 private key; when set, every manifest line is signed.
    pub signing_key: Option<PathBuf>,
}

impl RecorderOptions {
    /// Options with defaults for everything but the directory and node name.
    pub fn new(dir: impl Into<PathBuf>, node: impl Into<String>) -> Self {
        RecorderOptions {
            dir: dir.into(),
            node: node.into(),
            durability: Durability::Os,
            roll_max_rows: 100_000,
            roll_max_age: Duration::from_secs(300),
            queue_capacity: 65_536,
            retain_days: None,
            signing_key: None,
        }
    }
}
