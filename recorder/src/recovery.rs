//! Recovery at open: every journal segment still present was not (fully) published, so each
//! is read up to its first torn or corrupt record (the tail is cut, with a warning giving the
//! byte count), rolled into Parquet, and retired. Rolling a segment again is idempotent:
//!
//! * rows the manifest already lists for that `(table, day, segment)` are skipped, whatever node
//!   name their file carries (crash after the manifest line, before the segment was deleted);
//! * a file renamed into place whose manifest line was never written (crash between the rename
//!   and the manifest append) is removed first, with a warning, and written again from the
//!   journal — possibly under another node name, so it must not stay beside the new one;
//! * hidden temporary files of an interrupted roll are removed.
//!
//! Sessions open at the crash — the first segment's checkpoint plus starts minus ends — get a
//! `SessionEnd` with end reason `bastion_restart`, journaled in a segment of their own before
//! anything is rolled.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};

use crate::error::RecorderError;
use crate::journal::{frame, list_segments, read_segment, sync_dir, ActiveSegment};
use crate::record::{Ended, Record};
use crate::retention::partition_days;
use crate::roll::{segment_of_file_name, Roller};
use crate::rows::{now_micros, SessionEnd};
use crate::schema::StoredTable;

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
                    open.remove(&s.row.session_id);
                }
                _ => {}
            }
        }
        contents.push((*id, path.clone(), c.records));
    }
    let in_journal: BTreeSet<u64> = segments.iter().map(|(id, _)| *id).collect();
    let max_in_files = clean_partitions(roller, &in_journal)?;
    let mut next_segment = segments
        .last()
        .map(|(id, _)| *id)
        .unwrap_or(0)
        .max(roller.manifest.max_segment)
        .max(max_in_files)
        + 1;
    if !open.is_empty() {
        tracing::warn!(
            sessions = open.len(),
            "closing sessions left open by a crash (end reason bastion_restart)"
        );
        let (path, records) = journal_session_ends(&journal_dir, next_segment, open)?;
        contents.push((next_segment, path, records));
        next_segment += 1;
    }
    for (id, path, records) in contents {
        let files = roller.roll(id, &records)?;
        tracing::info!(segment = %path.display(), rows = records.len(), files, "recovered journal segment");
        std::fs::remove_file(&path).map_err(RecorderError::io(&path))?;
        sync_dir(&journal_dir)?;
    }
    Ok(Recovered { next_segment })
}

/// Writes (and fsyncs) a journal segment of its own closing `open` with end reason
/// `bastion_restart`, before any leftover segment is rolled or deleted. Its own segment, not
/// appended to the last one: that one may be published already, and rolling it again skips
/// what it published. Should recovery itself crash, the next one finds these ends in the
/// journal and does not close the sessions twice.
fn journal_session_ends(
    journal_dir: &std::path::Path,
    id: u64,
    open: BTreeSet<String>,
) -> Result<(std::path::PathBuf, Vec<Record>), RecorderError> {
    let time = now_micros();
    let mut records = vec![Record::Checkpoint(open.iter().cloned().collect())];
    records.extend(open.into_iter().map(|session_id| {
        Record::SessionEnd(Ended {
            row: SessionEnd {
                session_id,
                time,
                end_reason: "bastion_restart".into(),
                bytes_in: 0,
                bytes_out: 0,
            },
            recording: None,
        })
    }));
    let mut bytes = Vec::new();
    for r in &records {
        frame(r, &mut bytes);
    }
    let mut seg = ActiveSegment::create(journal_dir, id)?;
    seg.append(&bytes, true)?;
    Ok((seg.seal()?, records))
}

/// Removes from the day partitions what an interrupted roll left: hidden temporary files, and
/// files the manifest does not list whose segment is still in the journal (they are rolled
/// again). An unlisted file of a segment no longer in the journal has no source to roll again
/// from: it is left for `verify` to report. Returns the highest segment id in any file name, so
/// new segments never reuse an id a file already carries.
fn clean_partitions(roller: &Roller, in_journal: &BTreeSet<u64>) -> Result<u64, RecorderError> {
    let mut max_segment = 0;
    for table in StoredTable::ALL {
        let table_dir = roller.dir.join(table.dir_name());
        for day in partition_days(&table_dir)? {
            let part = table_dir.join(format!("date={day}"));
            let rd = fs::read_dir(&part).map_err(RecorderError::io(&part))?;
            let mut removed = false;
            for ent in rd {
                let ent = ent.map_err(RecorderError::io(&part))?;
                let Some(name) = ent.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let path = part.join(&name);
                if name.starts_with('.') && name.ends_with(".tmp") {
                    tracing::warn!(file = %path.display(), "removing temporary file of an interrupted roll");
                    fs::remove_file(&path).map_err(RecorderError::io(&path))?;
                    removed = true;
                    continue;
                }
                if name.starts_with('.') {
                    continue;
                }
                let Some(segment) = segment_of_file_name(&name) else {
                    continue;
                };
                max_segment = max_segment.max(segment);
                let rel = format!("{}/date={day}/{name}", table.dir_name());
                if roller.manifest.files.contains(&rel) {
                    continue;
                }
                if in_journal.contains(&segment) {
                    tracing::warn!(file = %path.display(), segment,
                        "removing a file published without its manifest line; its journal segment is rolled again");
                    fs::remove_file(&path).map_err(RecorderError::io(&path))?;
                    removed = true;
                } else {
                    tracing::warn!(file = %path.display(),
                        "parquet file listed in no manifest and not in the journal; left in place (audit verify reports it)");
                }
            }
            if removed {
                sync_dir(&part)?;
            }
        }
    }
    Ok(max_segment)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::manifest::ManifestChain;
    use crate::rows::SessionStart;

    fn start(id: &str, time: i64) -> Record {
        Record::SessionStart(SessionStart {
            session_id: id.into(),
            time,
            ..Default::default()
        })
    }

    async fn ends(dir: &std::path::Path) -> String {
        let b = crate::query(
            dir,
            "SELECT session_id, end_reason FROM session_ends ORDER BY session_id",
        )
        .await
        .unwrap();
        crate::format_batches(&b, crate::OutputFormat::Csv).unwrap()
    }

    /// The last segment was published (manifest line written, including a session end of
    /// today) but not deleted when the bastion died, with a session still open. Rolling it
    /// again skips what it published, so the restart end must not ride along in it.
    #[tokio::test]
    async fn a_session_open_when_its_published_segment_was_not_yet_deleted_is_still_closed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let journal = dir.join("journal");
        std::fs::create_dir_all(&journal).unwrap();
        let now = now_micros();
        let records = vec![
            Record::Checkpoint(vec![]),
            start("s0", now),
            Record::SessionEnd(Ended {
                row: SessionEnd {
                    session_id: "s0".into(),
                    time: now,
                    end_reason: "client_closed".into(),
                    bytes_in: 0,
                    bytes_out: 0,
                },
                recording: None,
            }),
            start("s1", now),
        ];
        let mut bytes = Vec::new();
        for r in &records {
            frame(r, &mut bytes);
        }
        let mut seg = ActiveSegment::create(&journal, 1).unwrap();
        seg.append(&bytes, true).unwrap();
        seg.seal().unwrap();
        let mut roller = Roller {
            dir: dir.to_path_buf(),
            node: "n1".into(),
            manifest: ManifestChain::load(dir, None).unwrap(),
        };
        assert_eq!(roller.roll(1, &records).unwrap(), 2);
        // Killed here: segment 1 published, not deleted. Restart, possibly as another node.
        let mut roller = Roller {
            dir: dir.to_path_buf(),
            node: "n2".into(),
            manifest: ManifestChain::load(dir, None).unwrap(),
        };
        let recovered = recover(&mut roller).unwrap();
        assert_eq!(recovered.next_segment, 3, "segment 2 closed the sessions");
        assert!(list_segments(&journal).unwrap().is_empty());
        let expected = "session_id,end_reason\ns0,client_closed\ns1,bastion_restart\n";
        assert_eq!(ends(dir).await, expected);
        // Recovering again changes nothing.
        let mut roller = Roller {
            dir: dir.to_path_buf(),
            node: "n1".into(),
            manifest: ManifestChain::load(dir, None).unwrap(),
        };
        assert_eq!(recover(&mut roller).unwrap().next_segment, 3);
        assert_eq!(ends(dir).await, expected);
        let report = crate::verify(dir, None, None).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
    }

    /// Recovery died after journaling the restart ends: the next one finds them in the
    /// journal, closes nothing twice, and publishes them.
    #[tokio::test]
    async fn restart_ends_journaled_by_an_interrupted_recovery_are_published_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let journal = dir.join("journal");
        std::fs::create_dir_all(&journal).unwrap();
        let records = vec![Record::Checkpoint(vec![]), start("s1", now_micros())];
        let mut bytes = Vec::new();
        for r in &records {
            frame(r, &mut bytes);
        }
        let mut seg = ActiveSegment::create(&journal, 1).unwrap();
        seg.append(&bytes, true).unwrap();
        seg.seal().unwrap();
        let mut open = BTreeSet::new();
        open.insert("s1".to_string());
        journal_session_ends(&journal, 2, open).unwrap();
        let mut roller = Roller {
            dir: dir.to_path_buf(),
            node: "n1".into(),
            manifest: ManifestChain::load(dir, None).unwrap(),
        };
        assert_eq!(recover(&mut roller).unwrap().next_segment, 3);
        assert_eq!(
            ends(dir).await,
            "session_id,end_reason\ns1,bastion_restart\n"
        );
    }
}
