//! Recovery at open: every journal segment still present was not (fully) published, so each
//! is read up to its first torn or corrupt record (the tail is cut, with a warning giving the
//! byte count), rolled into Parquet (files the manifest already lists are skipped), and
//! retired. Sessions open at the crash — the first segment's checkpoint plus starts minus ends —
//! get a `SessionEnd` with end reason `bastion_restart`.

use std::collections::BTreeSet;
use std::fs::OpenOptions;

use crate::error::RecorderError;
use crate::journal::{list_segments, read_segment, sync_dir};
use crate::record::Record;
use crate::roll::Roller;
use crate::rows::{now_micros, SessionEnd};

/// What recovery found.
pub(crate) struct Recovered {
    /// The id the next journal segment gets.
    pub(crate) next_segment: u64,
}

/// Publishes and retires every leftover segment.
pub(crate) fn recover(roller: &mut Roller) -> Result<Recovered, RecorderError> {
    let journal_dir = roller.dir.join("journal");
    let segments = list_segments(&journal_dir)?;
    let mut open: BTreeSet<String> = BTreeSet::new();
    let mut contents = Vec::with_capacity(segments.len());
    for (i, (id, path)) in segments.iter().enumerate() {
        let c = read_segment(path)?;
        if c.valid_len < c.file_len {
            tracing::warn!(segment = %path.display(), cut_bytes = c.file_len - c.valid_len,
                "journal segment has a torn tail; cutting {} bytes", c.file_len - c.valid_len);
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(RecorderError::io(path))?;
            f.set_len(c.valid_len).map_err(RecorderError::io(path))?;
            f.sync_all().map_err(RecorderError::io(path))?;
        }
        for r in &c.records {
            match r {
                Record::Checkpoint(ids) if i == 0 => open.extend(ids.iter().cloned()),
                Record::SessionStart(s) => {
                    open.insert(s.session_id.clone());
                }
                Record::SessionEnd(s) => {
                    open.remove(&s.session_id);
                }
                _ => {}
            }
        }
        contents.push((*id, path.clone(), c.records));
    }
    let last = contents.len().saturating_sub(1);
    let time = now_micros();
    for (i, (id, path, mut records)) in contents.into_iter().enumerate() {
        if i == last && !open.is_empty() {
            tracing::warn!(
                sessions = open.len(),
                "closing sessions left open by a crash (end reason bastion_restart)"
            );
            for session_id in std::mem::take(&mut open) {
                records.push(Record::SessionEnd(SessionEnd {
                    session_id,
                    time,
                    end_reason: "bastion_restart".into(),
                    bytes_in: 0,
                    bytes_out: 0,
                }));
            }
        }
        let files = roller.roll(id, &records)?;
        tracing::info!(segment = %path.display(), rows = records.len(), files, "recovered journal segment");
        std::fs::remove_file(&path).map_err(RecorderError::io(&path))?;
        sync_dir(&journal_dir)?;
    }
    let max_seen = segments
        .last()
        .map(|(id, _)| *id)
        .unwrap_or(0)
        .max(roller.manifest.max_segment);
    Ok(Recovered {
        next_segment: max_seen + 1,
    })
}
