//! The crate's error type: every failure names the file or row it concerns.

use std::path::PathBuf;

/// Everything that can go wrong while recording, rolling, querying or verifying the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// A filesystem operation failed; `path` names the file or directory.
    #[error("audit i/o on {path}: {source}")]
    Io {
        /// The file or directory the operation touched.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The writer task is gone (shut down or crashed); the row was not recorded.
    #[error("recorder is not running; the row was not recorded")]
    Closed,
    /// The writer could not write the batch containing this row to the journal.
    #[error("journal write failed: {0}")]
    JournalWrite(String),
    /// A journal record could not be decoded.
    #[error("journal record in {path} at byte {offset}: {reason}")]
    JournalDecode {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// Building Arrow data failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Reading or writing a Parquet file failed.
    #[error("parquet file {path}: {source}")]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// The Parquet library's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A Parquet file's content does not have the columns this version understands.
    #[error("parquet file {path}: {reason}")]
    Schema {
        /// The Parquet file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The SQL query failed to plan or run.
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// A manifest line could not be read or written.
    #[error("manifest {path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The Ed25519 key file could not be loaded.
    #[error("ed25519 key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The options given to [`crate::Recorder::open`] are unusable.
    #[error("recorder options: {0}")]
    Options(String),
    /// An asciicast file could not be parsed.
    #[error("asciicast {path} line {line}: {reason}")]
    Cast {
        /// The cast file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
}

impl RecorderError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RecorderError {
        let path = path.into();
        move |source| RecorderError::Io { path, source }
    }

    /// Wraps a Parquet error with the file it concerns.
    pub(crate) fn parquet(
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(parquet::errors::ParquetError) -> RecorderError {
        let path = path.into();
        move |source| RecorderError::Parquet { path, source }
    }
}
