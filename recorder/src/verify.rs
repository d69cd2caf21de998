//! `verify`: recomputes the whole trail and names the first break. It checks, in order: each
//! manifest line's hash, signature (with a verifying key) and link to the previous line; each
//! listed file's presence, SHA-256, schema version and rows digest; files no manifest lists;
//! then every session's hash chain across Parquet files and unrolled journal segments (each
//! row's hash recomputed, each row linked to an existing predecessor, no forks).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use parquet::file::reader::{FileReader, SerializedFileReader};
use sha2::{Digest, Sha256};

use crate::chain::{genesis, row_hash};
use crate::error::RecorderError;
use crate::manifest::{
    load_verifying_key, manifest_days, manifest_path, read_manifest, ManifestEntry, ManifestLine,
    GENESIS,
};
use crate::query::{read_journal, read_parquet, stored_files};
use crate::record::Record;
use crate::roll::{day_of, placement, rows_digest, KEY_ROWS_DIGEST};
use crate::schema::{self, Columns, StoredTable, SCHEMA_VERSION, SCHEMA_VERSION_KEY};

/// One break in the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file that is broken (Parquet file, manifest or journal segment).
    pub file: PathBuf,
    /// The row (0-based within the file) or manifest line (1-based), when known.
    pub row: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row {
            Some(r) => write!(f, "{} row {r}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

/// What [`verify`] checked and found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Manifest lines checked.
    pub manifest_lines: usize,
    /// Parquet files checked.
    pub files: usize,
    /// Rows read from Parquet files and the journal.
    pub rows: u64,
    /// Sessions whose chains were checked.
    pub sessions: usize,
    /// Hash of the newest manifest line: keep it elsewhere to detect truncation of the chain.
    pub head: Option<String>,
    /// Every break found, the first break first.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing is broken.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The first break, which `bastion audit verify` names.
    pub fn first_problem(&self) -> Option<&Problem> {
        self.problems.first()
    }
}

/// One chained row seen anywhere in the trail.
struct ChainItem {
    file: usize,
    row: usize,
    session: String,
    seq: i64,
    prev: [u8; 32],
    hash: [u8; 32],
}

struct Checker {
    report: VerifyReport,
    files: Vec<PathBuf>,
    items: Vec<ChainItem>,
    scratch: Vec<u8>,
}

impl Checker {
    fn problem(&mut self, file: &Path, row: Option<usize>, reason: impl Into<String>) {
        self.report.problems.push(Problem {
            file: file.to_path_buf(),
            row,
            reason: reason.into(),
        });
    }

    fn file_id(&mut self, path: &Path) -> usize {
        self.files.push(path.to_path_buf());
        self.files.len() - 1
    }

    /// Recomputes row hashes and remembers chained rows for the link check.
    fn chained_rows(&mut self, path: &Path, records: &[Record]) {
        let id = self.file_id(path);
        for (row, r) in records.iter().enumerate() {
            let (session, seq, prev, hash, computed) = match r {
                Record::Action(a) => (
                    &a.row.session_id,
                    a.row.seq,
                    a.prev_hash,
                    a.hash,
                    row_hash(&a.row, &a.prev_hash, &mut self.scratch),
                ),
                Record::Outcome(o) => (
                    &o.row.session_id,
                    o.row.seq,
                    o.prev_hash,
                    o.hash,
                    row_hash(&o.row, &o.prev_hash, &mut self.scratch),
                ),
                _ => continue,
            };
            if computed != hash {
                let reason = format!(
                    "row altered: hash of session {session} seq {seq} does not match its contents"
                );
                self.problem(path, Some(row), reason);
            }
            self.items.push(ChainItem {
                file: id,
                row,
                session: session.clone(),
                seq,
                prev,
                hash,
            });
        }
    }

    fn check_chains(&mut self, lenient_roots: bool) {
        let mut by_session: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, it) in self.items.iter().enumerate() {
            by_session.entry(it.session.as_str()).or_default().push(i);
        }
        self.report.sessions = by_session.len();
        let mut problems = Vec::new();
        for (session, idx) in by_session {
            let hashes: HashSet<[u8; 32]> = idx.iter().map(|&i| self.items[i].hash).collect();
            let gen = genesis(session);
            let mut prevs_seen: HashSet<[u8; 32]> = HashSet::new();
            let mut roots = 0usize;
            for &i in &idx {
                let it = &self.items[i];
                let file = &self.files[it.file];
                if !prevs_seen.insert(it.prev) {
                    problems.push(Problem {
                        file: file.clone(),
                        row: Some(it.row),
                        reason: format!(
                            "session {session} seq {}: chain forks (two rows follow the same row)",
                            it.seq
                        ),
                    });
                }
                if hashes.contains(&it.prev) {
                    continue;
                }
                roots += 1;
                let ok_root = roots == 1 && (it.prev == gen || lenient_roots);
                if !ok_root {
                    problems.push(Problem { file: file.clone(), row: Some(it.row), reason: format!("session {session} seq {}: the row it chains to is missing (row deleted?)", it.seq) });
                }
            }
        }
        self.report.problems.extend(problems);
    }
}

/// Decodes a Parquet file of a stored table back into journal records.
fn file_records(table: StoredTable, path: &Path) -> Result<Vec<Record>, RecorderError> {
    let mut out = Vec::new();
    for batch in read_parquet(path)? {
        let c = Columns::new(&batch, path);
        match table {
            StoredTable::Entries => {
                out.extend(schema::entries_rows(&c)?.into_iter().map(Record::Entry))
            }
            StoredTable::Sessions => out.extend(
                schema::sessions_rows(&c)?
                    .into_iter()
                    .map(Record::SessionStart),
            ),
            StoredTable::SessionEnds => out.extend(
                schema::session_ends_rows(&c)?
                    .into_iter()
                    .map(Record::SessionEnd),
            ),
            StoredTable::Actions => {
                out.extend(schema::actions_rows(&c)?.into_iter().map(Record::Action))
            }
            StoredTable::Outcomes => {
                out.extend(schema::outcomes_rows(&c)?.into_iter().map(Record::Outcome))
            }
        }
    }
    Ok(out)
}

fn file_metadata(path: &Path) -> Result<HashMap<String, String>, String> {
    let file = fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(file).map_err(|e| e.to_string())?;
    Ok(reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default())
}

/// Recomputes manifests, file digests and hash chains from `since` (inclusive) on.
pub fn verify(
    dir: &Path,
    since: Option<NaiveDate>,
    verify_key: Option<&Path>,
) -> Result<VerifyReport, RecorderError> {
    let key: Option<VerifyingKey> = verify_key.map(load_verifying_key).transpose()?;
    let since_s = since.map(|d| d.format("%Y-%m-%d").to_string());
    let in_range = |day: &str| since_s.as_deref().is_none_or(|s| day >= s);
    let mut ck = Checker {
        report: VerifyReport::default(),
        files: Vec::new(),
        items: Vec::new(),
        scratch: Vec::new(),
    };

    // 1. Manifest lines.
    let mut lines: Vec<(PathBuf, usize, ManifestLine)> = Vec::new();
    for day in manifest_days(dir)?.into_iter().filter(|d| in_range(d)) {
        let path = manifest_path(dir, &day);
        let parsed = read_manifest(&path)?;
        if let Some((line, _, reason)) = parsed.bad {
            ck.problem(
                &path,
                Some(line),
                format!("unreadable manifest line: {reason}"),
            );
        }
        lines.extend(parsed.lines.into_iter().map(|(n, l)| (path.clone(), n, l)));
    }
    lines.sort_by_key(|(_, _, l)| l.index);
    ck.report.manifest_lines = lines.len();
    let mut known: HashMap<u64, String> = HashMap::new();
    let mut removed_days = HashSet::new();
    for (_, _, l) in &lines {
        known.insert(l.index, l.hash.clone());
        if let ManifestEntry::Retention {
            removed_date,
            removed_lines,
            ..
        } = &l.entry
        {
            removed_days.insert(removed_date.clone());
            known.extend(removed_lines.iter().map(|(i, h)| (*i, h.clone())));
        }
    }
    let mut seen_index = HashSet::new();
    for (path, n, l) in &lines {
        if !seen_index.insert(l.index) {
            ck.problem(
                path,
                Some(*n),
                format!("manifest index {} appears twice", l.index),
            );
        }
        if ManifestLine::compute_hash(l.index, &l.prev, &l.entry) != l.hash {
            ck.problem(
                path,
                Some(*n),
                "manifest line altered: its hash does not match its contents",
            );
        }
        if let Some(k) = &key {
            let valid = l
                .sig
                .as_ref()
                .and_then(|s| hex::decode(s).ok())
                .and_then(|s| Signature::from_slice(&s).ok())
                .zip(hex::decode(&l.hash).ok())
                .is_some_and(|(sig, msg)| k.verify(&msg, &sig).is_ok());
            if !valid {
                ck.problem(
                    path,
                    Some(*n),
                    "manifest line signature is missing or invalid",
                );
            }
        }
        if l.index == 0 {
            if l.prev != GENESIS {
                ck.problem(
                    path,
                    Some(*n),
                    "first manifest line does not start the chain",
                );
            }
        } else {
            match known.get(&(l.index - 1)) {
                Some(prev) if *prev == l.prev => {}
                Some(_) => ck.problem(
                    path,
                    Some(*n),
                    format!(
                        "manifest line {} does not chain to line {}",
                        l.index,
                        l.index - 1
                    ),
                ),
                None if since.is_none() => ck.problem(
                    path,
                    Some(*n),
                    format!(
                        "manifest line {} is missing (file or day removed?)",
                        l.index - 1
                    ),
                ),
                None => {}
            }
        }
    }
    ck.report.head = lines.last().map(|(_, _, l)| l.hash.clone());

    // 2. Listed files.
    let mut listed = HashSet::new();
    for (mpath, n, l) in &lines {
        let ManifestEntry::File {
            table,
            path,
            rows,
            sha256,
            rows_digest: digest,
            ..
        } = &l.entry
        else {
            continue;
        };
        listed.insert(path.clone());
        let file = dir.join(path);
        ck.report.files += 1;
        let Some(table) = StoredTable::from_dir_name(table) else {
            ck.problem(mpath, Some(*n), format!("unknown table {table}"));
            continue;
        };
        let bytes = match fs::read(&file) {
            Ok(b) => b,
            Err(_) => {
                ck.problem(
                    &file,
                    None,
                    format!("listed in {} line {n} but missing", mpath.display()),
                );
                continue;
            }
        };
        if hex::encode(Sha256::digest(&bytes)) != *sha256 {
            ck.problem(&file, None, "file content does not match the manifest (sha256 differs: altered, replaced or swapped)");
        }
        match file_metadata(&file) {
            Err(e) => {
                ck.problem(&file, None, format!("not a readable parquet file: {e}"));
                continue;
            }
            Ok(meta) => {
                match meta
                    .get(SCHEMA_VERSION_KEY)
                    .and_then(|v| v.parse::<u32>().ok())
                {
                    Some(v) if v <= SCHEMA_VERSION => {}
                    other => ck.problem(
                        &file,
                        None,
                        format!("unsupported or missing schema version {other:?}"),
                    ),
                }
                if meta.get(KEY_ROWS_DIGEST) != Some(digest) {
                    ck.problem(
                        &file,
                        None,
                        "rows digest in file metadata differs from the manifest",
                    );
                }
            }
        }
        let records = match file_records(table, &file) {
            Ok(r) => r,
            Err(e) => {
                ck.problem(&file, None, format!("rows unreadable: {e}"));
                continue;
            }
        };
        ck.report.rows += records.len() as u64;
        if records.len() as u64 != *rows {
            ck.problem(
                &file,
                None,
                format!(
                    "holds {} rows, manifest says {rows} (row deleted or added)",
                    records.len()
                ),
            );
        }
        if rows_digest(&records) != *digest {
            ck.problem(
                &file,
                None,
                "rows do not match the rows digest (row altered, deleted or added)",
            );
        }
        ck.chained_rows(&file, &records);
    }

    // 3. Files nobody listed.
    let mut published = HashSet::new();
    for t in StoredTable::ALL {
        for f in stored_files(dir, t)? {
            if let Some(seg) = f.segment {
                published.insert((t, f.date.clone(), seg));
            }
            if !in_range(&f.date) || removed_days.contains(&f.date) {
                continue;
            }
            let rel = f
                .path
                .strip_prefix(dir)
                .unwrap_or(&f.path)
                .to_string_lossy()
                .replace('\\', "/");
            if !listed.contains(&rel) {
                ck.problem(&f.path, None, "file is not listed in any manifest");
            }
        }
    }

    // 4. Rows still in the journal, then every chain.
    for (id, records) in read_journal(dir)? {
        // Rows of a segment already published (crash before it was retired) are checked in Parquet.
        let records: Vec<Record> = records
            .into_iter()
            .filter(|r| {
                placement(r).is_some_and(|(t, time)| !published.contains(&(t, day_of(time), id)))
            })
            .collect();
        ck.report.rows += records.len() as u64;
        let path = crate::journal::segment_path(&dir.join("journal"), id);
        ck.chained_rows(&path, &records);
    }
    ck.check_chains(since.is_some() || !removed_days.is_empty());
    Ok(ck.report)
}
