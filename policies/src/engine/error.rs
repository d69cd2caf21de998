//! Errors from loading a policy set.
use std::path::PathBuf;

/// Why a policy set could not be loaded. Parse and validation errors name `file:line:column`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy file or directory could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A policy file does not parse.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// Cedar's message.
        message: String,
    },
    /// A policy does not validate against the bastion schema.
    #[error("{path}:{line}:{column}: policy {policy} does not validate: {message}")]
    Validation {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// The policy's `@id` (or position).
        policy: String,
        /// Cedar's message.
        message: String,
    },
    /// Two policies carry the same `@id`.
    #[error("{path}:{line}:{column}: duplicate policy id {id} (first used in {first})")]
    DuplicateId {
        /// The file with the second use.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The id.
        id: String,
        /// Where it was first used (`file:line`).
        first: String,
    },
    /// An annotation has a value the engine does not understand.
    #[error("{path}:{line}:{column}: policy {policy}: {message}")]
    Annotation {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The policy's id.
        policy: String,
        /// What is wrong, with the valid choices.
        message: String,
    },
    /// The shipped schema failed to load (a build defect).
    #[error("bastion cedar schema does not load: {0}")]
    Schema(String),
    /// Principals or targets from the configuration cannot be turned into Cedar entities.
    #[error("invalid identities or targets: {0}")]
    Entities(String),
}
