//! Finding a session's terminal recordings for replay: the `recording` column of its row in
//! the `sessions` view, then every cast of the session in the recordings directory (a session
//! with several shell channels has one cast per channel; a crash can leave a cast whose session
//! end row never got its path).

use std::path::{Path, PathBuf};

use arrow::array::{Array, StringArray};

use crate::cast::session_recordings;
use crate::error::RecorderError;
use crate::query::query;

/// What the trail knows about a session's recordings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCasts {
    /// Whether the `sessions` view has a row for the session.
    pub known_session: bool,
    /// The path its row names (relative to the audit directory), if any.
    pub recorded: Option<String>,
    /// Every cast found, in play order (day, then channel number).
    pub casts: Vec<PathBuf>,
}

/// Finds the recordings of `session_id` under `audit_dir`.
pub async fn session_casts(
    audit_dir: &Path,
    session_id: &str,
) -> Result<SessionCasts, RecorderError> {
    let sql = format!(
        "SELECT recording FROM sessions WHERE session_id = '{}'",
        session_id.replace('\'', "''")
    );
    let batches = query(audit_dir, &sql).await?;
    let mut known_session = false;
    let mut recorded = None;
    for b in &batches {
        known_session |= b.num_rows() > 0;
        let Some(col) = b.column(0).as_any().downcast_ref::<StringArray>() else {
            continue;
        };
        if let Some(i) = (0..col.len()).find(|&i| col.is_valid(i)) {
            recorded = Some(col.value(i).to_string());
        }
    }
    let casts = session_recordings(audit_dir, session_id, recorded.as_deref())?;
    Ok(SessionCasts {
        known_session,
        recorded,
        casts,
    })
}
