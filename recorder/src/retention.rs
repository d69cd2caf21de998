//! Retention: day partitions older than `retain_days` are removed whole — every table's
//! `date=` directory and that day's manifest — after a `retention` line naming the removed files
//! and manifest lines has been appended to today's manifest, so the chain shows the gap.

use std::fs;
use std::path::Path;

use crate::error::RecorderError;
use crate::journal::sync_dir;
use crate::manifest::{manifest_days, manifest_path, read_manifest, ManifestEntry};
use crate::roll::Roller;
use crate::schema::StoredTable;

/// Day partitions (`date=` values) of a directory, oldest first.
pub(crate) fn partition_days(table_dir: &Path) -> Result<Vec<String>, RecorderError> {
    let mut days = Vec::new();
    let rd = match fs::read_dir(table_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(days),
        Err(e) => return Err(RecorderError::io(table_dir)(e)),
    };
    for ent in rd {
        let ent = ent.map_err(RecorderError::io(table_dir))?;
        if let Some(d) = ent
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix("date="))
        {
            days.push(d.to_string());
        }
    }
    days.sort();
    Ok(days)
}

/// Removes every day before `today - retain_days`.
pub(crate) fn apply(
    roller: &mut Roller,
    retain_days: u32,
    today: &str,
) -> Result<(), RecorderError> {
    let Ok(today_date) = chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d") else {
        return Err(RecorderError::Options(format!("bad date {today}")));
    };
    let cutoff = (today_date - chrono::Days::new(u64::from(retain_days)))
        .format("%Y-%m-%d")
        .to_string();
    let dir = roller.dir.clone();
    let mut days: Vec<String> = manifest_days(&dir)?;
    for t in StoredTable::ALL {
        days.extend(partition_days(&dir.join(t.dir_name()))?);
    }
    days.sort();
    days.dedup();
    for day in days.into_iter().filter(|d| d.as_str() < cutoff.as_str()) {
        let mut removed_files = Vec::new();
        for t in StoredTable::ALL {
            let part = dir.join(t.dir_name()).join(format!("date={day}"));
            if let Ok(rd) = fs::read_dir(&part) {
                for ent in rd.flatten() {
                    if let Some(name) = ent.file_name().to_str() {
                        if name.ends_with(".parquet") && !name.starts_with('.') {
                            removed_files.push(format!("{}/date={day}/{name}", t.dir_name()));
                        }
                    }
                }
            }
        }
        removed_files.sort();
        let mpath = manifest_path(&dir, &day);
        let removed_lines = if mpath.exists() {
            read_manifest(&mpath)?
                .lines
                .into_iter()
                .map(|(_, l)| (l.index, l.hash))
                .collect()
        } else {
            Vec::new()
        };
        roller.manifest.append(vec![(
            today.to_string(),
            ManifestEntry::Retention {
                removed_date: day.clone(),
                removed_files,
                removed_lines,
            },
        )])?;
        for t in StoredTable::ALL {
            let table_dir = dir.join(t.dir_name());
            let part = table_dir.join(format!("date={day}"));
            if part.exists() {
                fs::remove_dir_all(&part).map_err(RecorderError::io(&part))?;
                sync_dir(&table_dir)?;
            }
        }
        if let Some(mdir) = mpath.parent() {
            if mdir.exists() {
                fs::remove_dir_all(mdir).map_err(RecorderError::io(mdir))?;
                sync_dir(&dir.join("manifests"))?;
            }
        }
        tracing::info!(day = %day, "retention removed day partition");
    }
    Ok(())
}
