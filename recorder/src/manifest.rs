//! Per-day manifests `manifests/date=YYYY-MM-DD/manifest.jsonl`: one JSON line per published
//! Parquet file (its SHA-256, row count, first/last chain hash) or per retention removal.
//! All lines of all days form one chain: line `n` carries `prev` = hash of line `n-1`, and
//! `hash = SHA-256("bastion-manifest-v1\0" ‖ JSON of (index, prev, entry))`. With a signing
//! key each line also carries an Ed25519 signature over its hash.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::RecorderError;
use crate::journal::sync_dir;

/// `prev` of the very first manifest line.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a manifest line records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum ManifestEntry {
    /// A Parquet file was published.
    File {
        /// Stored table directory name.
        table: String,
        /// Path relative to the audit directory.
        path: String,
        /// Rows in the file.
        rows: u64,
        /// SHA-256 of the whole file.
        sha256: String,
        /// SHA-256 over the canonical encoding of the rows (also in the file's metadata).
        rows_digest: String,
        /// Chain hash of the first chained row, if the table is chained.
        first_hash: Option<String>,
        /// Chain hash of the last chained row.
        last_hash: Option<String>,
        /// Journal segment the file was rolled from.
        segment: u64,
    },
    /// A day partition was removed by retention.
    Retention {
        /// The removed day.
        removed_date: String,
        /// Files removed, relative to the audit directory.
        removed_files: Vec<String>,
        /// `(index, hash)` of each manifest line that went with the removed day.
        removed_lines: Vec<(u64, String)>,
    },
}

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ManifestLine {
    pub(crate) index: u64,
    pub(crate) prev: String,
    pub(crate) entry: ManifestEntry,
    pub(crate) hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sig: Option<String>,
}

impl ManifestLine {
    /// The hash a line with these contents must carry.
    pub(crate) fn compute_hash(index: u64, prev: &str, entry: &ManifestEntry) -> String {
        let mut h = Sha256::new();
        h.update(b"bastion-manifest-v1\0");
        // Serialising a tuple of plain values cannot fail; fall back to Debug just in case.
        match serde_json::to_vec(&(index, prev, entry)) {
            Ok(bytes) => h.update(bytes),
            Err(_) => h.update(format!("{index}|{prev}|{entry:?}").as_bytes()),
        }
        hex::encode(h.finalize())
    }
}

/// Path of a day's manifest.
pub(crate) fn manifest_path(dir: &Path, date: &str) -> PathBuf {
    dir.join("manifests")
        .join(format!("date={date}"))
        .join("manifest.jsonl")
}

/// Days that have a manifest, oldest first.
pub(crate) fn manifest_days(dir: &Path) -> Result<Vec<String>, RecorderError> {
    let root = dir.join("manifests");
    let mut days = Vec::new();
    let rd = match fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(days),
        Err(e) => return Err(RecorderError::io(&root)(e)),
    };
    for ent in rd {
        let ent = ent.map_err(RecorderError::io(&root))?;
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

/// A parsed manifest file: its good lines, and the problem with the first bad one, if any.
pub(crate) struct ManifestFile {
    pub(crate) lines: Vec<(usize, ManifestLine)>,
    /// `(1-based line number, byte offset, reason)` of the first unreadable line.
    pub(crate) bad: Option<(usize, u64, String)>,
}

/// Reads one day's manifest.
pub(crate) fn read_manifest(path: &Path) -> Result<ManifestFile, RecorderError> {
    let data = fs::read(path).map_err(RecorderError::io(path))?;
    let mut lines = Vec::new();
    let mut offset = 0u64;
    for (i, raw) in data.split_inclusive(|b| *b == b'\n').enumerate() {
        let complete = raw.last() == Some(&b'\n');
        let parsed = if complete {
            serde_json::from_slice::<ManifestLine>(raw).map_err(|e| e.to_string())
        } else {
            Err("line is not terminated (torn write)".to_string())
        };
        match parsed {
            Ok(l) => lines.push((i + 1, l)),
            Err(reason) => {
                return Ok(ManifestFile {
                    lines,
                    bad: Some((i + 1, offset, reason)),
                })
            }
        }
        offset += raw.len() as u64;
    }
    Ok(ManifestFile { lines, bad: None })
}

/// Loads an Ed25519 signing key from a PKCS#8 PEM file.
pub(crate) fn load_signing_key(path: &Path) -> Result<SigningKey, RecorderError> {
    let pem = fs::read_to_string(path).map_err(RecorderError::io(path))?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| RecorderError::Key {
        path: path.to_path_buf(),
        reason: format!("not a PKCS#8 PEM Ed25519 private key: {e}"),
    })
}

/// Loads an Ed25519 verifying key from a public-key PEM file (or derives it from a private key).
pub(crate) fn load_verifying_key(path: &Path) -> Result<VerifyingKey, RecorderError> {
    let pem = fs::read_to_string(path).map_err(RecorderError::io(path))?;
    if let Ok(k) = VerifyingKey::from_public_key_pem(&pem) {
        return Ok(k);
    }
    SigningKey::from_pkcs8_pem(&pem)
        .map(|k| k.verifying_key())
        .map_err(|e| RecorderError::Key {
            path: path.to_path_buf(),
            reason: format!("not a PEM Ed25519 public or private key: {e}"),
        })
}

/// The writer's view of the manifest chain: where it ends and which files it lists.
pub(crate) struct ManifestChain {
    dir: PathBuf,
    next_index: u64,
    head: String,
    key: Option<SigningKey>,
    /// Relative paths of every file the manifests list.
    pub(crate) files: HashSet<String>,
    /// `(table, day, segment)` of every file the manifests list: what was published, whatever
    /// node name the file carries. A segment's rows for one table and day are published once.
    published: HashSet<(String, String, u64)>,
    /// Highest journal segment any listed file came from.
    pub(crate) max_segment: u64,
}

impl ManifestChain {
    /// Reads every manifest, cutting a torn last line (crash mid-append) with a warning.
    pub(crate) fn load(
        dir: &Path,
        key: Option<SigningKey>,
    ) -> Result<ManifestChain, RecorderError> {
        let mut chain = ManifestChain {
            dir: dir.to_path_buf(),
            next_index: 0,
            head: GENESIS.to_string(),
            key,
            files: HashSet::new(),
            published: HashSet::new(),
            max_segment: 0,
        };
        for day in manifest_days(dir)? {
            let path = manifest_path(dir, &day);
            let parsed = read_manifest(&path)?;
            if let Some((line, offset, reason)) = parsed.bad {
                tracing::warn!(manifest = %path.display(), line, reason = %reason,
                    "cutting unreadable manifest tail ({} bytes kept)", offset);
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(RecorderError::io(&path))?;
                f.set_len(offset).map_err(RecorderError::io(&path))?;
                f.sync_all().map_err(RecorderError::io(&path))?;
            }
            for (_, l) in parsed.lines {
                if l.index + 1 > chain.next_index {
                    chain.next_index = l.index + 1;
                    chain.head = l.hash.clone();
                }
                if let ManifestEntry::File {
                    table,
                    path,
                    segment,
                    ..
                } = &l.entry
                {
                    chain.note_published(table, path, *segment);
                    chain.max_segment = chain.max_segment.max(*segment);
                }
            }
        }
        Ok(chain)
    }

    fn note_published(&mut self, table: &str, path: &str, segment: u64) {
        if let Some(day) = day_of_path(path) {
            self.published
                .insert((table.to_string(), day.to_string(), segment));
        }
        self.files.insert(path.to_string());
    }

    /// Whether the rows of `segment` for `table` and `day` are already in a listed file (under
    /// any node name): rolling a segment again after a crash must skip them.
    pub(crate) fn is_published(&self, table: &str, day: &str, segment: u64) -> bool {
        self.published
            .contains(&(table.to_string(), day.to_string(), segment))
    }

    /// Appends entries (grouped by the day manifest they belong to) and fsyncs each manifest.
    pub(crate) fn append(
        &mut self,
        entries: Vec<(String, ManifestEntry)>,
    ) -> Result<(), RecorderError> {
        let mut by_day: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
        let mut next_index = self.next_index;
        let mut head = self.head.clone();
        let mut new_files = Vec::new();
        for (date, entry) in entries {
            let hash = ManifestLine::compute_hash(next_index, &head, &entry);
            let sig = self.key.as_ref().map(|k| {
                let bytes = hex::decode(&hash).unwrap_or_default();
                hex::encode(k.sign(&bytes).to_bytes())
            });
            if let ManifestEntry::File {
                table,
                path,
                segment,
                ..
            } = &entry
            {
                new_files.push((table.clone(), path.clone(), *segment));
            }
            let line = ManifestLine {
                index: next_index,
                prev: head,
                entry,
                hash: hash.clone(),
                sig,
            };
            let buf = by_day.entry(date).or_default();
            serde_json::to_writer(&mut *buf, &line).map_err(|e| RecorderError::Manifest {
                path: self.dir.join("manifests"),
                reason: e.to_string(),
            })?;
            buf.push(b'\n');
            head = hash;
            next_index += 1;
        }
        for (date, bytes) in by_day {
            let path = manifest_path(&self.dir, &date);
            let parent = path.parent().unwrap_or(&self.dir).to_path_buf();
            let created = !parent.exists();
            fs::create_dir_all(&parent).map_err(RecorderError::io(&parent))?;
            if created {
                sync_dir(&self.dir.join("manifests"))?;
            }
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(RecorderError::io(&path))?;
            f.write_all(&bytes).map_err(RecorderError::io(&path))?;
            f.sync_data().map_err(RecorderError::io(&path))?;
            if created {
                sync_dir(&parent)?;
            }
        }
        self.next_index = next_index;
        self.head = head;
        for (table, path, segment) in new_files {
            self.note_published(&table, &path, segment);
            self.max_segment = self.max_segment.max(segment);
        }
        Ok(())
    }
}

/// The day of a published file's relative path `<table>/date=YYYY-MM-DD/<name>`.
pub(crate) fn day_of_path(rel: &str) -> Option<&str> {
    rel.split('/').find_map(|part| part.strip_prefix("date="))
}
