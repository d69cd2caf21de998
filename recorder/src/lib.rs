//! The audit trail of bastion: every entry attempt, session and action, recorded loss-free and
//! tamper-evident, stored as Parquet and queryable with SQL. It knows nothing of sockets or policy.
//!
//! Parts: [`Recorder`] / [`RecorderTask`] (`recorder.rs`) are the handle sessions call and the
//! task behind it; rows are the structs in `rows.rs`. The writer (`writer.rs`) appends rows to
//! the write-ahead journal (`journal.rs`, records encoded by `record.rs` and `canonical.rs`) —
//! from the caller's task under a lock, or with group commit on a thread in fsync mode —
//! chains each session's actions and outcomes with SHA-256 (`chain.rs`), and hands full segments to the roller, which writes Parquet files (`roll.rs`,
//! schemas in `schema.rs`) listed in per-day hash-chained, optionally signed manifests
//! (`manifest.rs`), and applies retention (`retention.rs`). `recovery.rs` publishes what a
//! crash left in the journal. Auditors use [`query`] (`query.rs`, reading a fixed file list
//! through `file_snapshot.rs`) and [`format_batches`] (`format.rs`), [`verify`] (`verify.rs`),
//! and for interactive terminals [`CastWriter`] / [`replay`] / [`recording_path`] (`cast.rs`)
//! and [`session_casts`] (`session_casts.rs`). Design notes: `docs/recorder.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), recorder::RecorderError> {
//! use recorder::{ActionRow, Recorder, RecorderOptions};
//! let (rec, task) = Recorder::open(RecorderOptions::new("/var/lib/bastion/audit", "node1")).await?;
//! rec.action(ActionRow { session_id: "s1".into(), seq: 1, text: "SELECT 1".into(), ..Default::default() }).await?;
//! task.shutdown().await?;
//! let rows = recorder::query("/var/lib/bastion/audit".as_ref(), "SELECT text, outcome FROM actions").await?;
//! println!("{}", recorder::format_batches(&rows, recorder::OutputFormat::Table)?);
//! # Ok(()) }
//! ```

mod canonical;
mod cast;
mod chain;
mod error;
mod file_snapshot;
mod format;
mod journal;
mod manifest;
mod options;
mod query;
mod record;
mod recorder;
mod recovery;
mod retention;
mod roll;
mod rows;
mod schema;
mod session_casts;
mod verify;
mod writer;

pub use arrow::array::RecordBatch;
pub use cast::{
    recording_path, recording_rel_path, replay, session_recordings, CastWriter, RECORDINGS_DIR,
};
/// The day type of [`recording_path`].
pub use chrono::NaiveDate;
pub use error::RecorderError;
pub use format::{format_batches, OutputFormat};
pub use options::{Durability, RecorderOptions};
pub use query::{audit_context, query};
pub use recorder::{Recorder, RecorderTask};
pub use rows::{now_micros, ActionOutcome, ActionRow, EntryRow, Micros, SessionEnd, SessionStart};
pub use schema::{StoredTable, SCHEMA_VERSION, SCHEMA_VERSION_KEY};
pub use session_casts::{session_casts, SessionCasts};
pub use verify::{verify, Problem, VerifyReport};
