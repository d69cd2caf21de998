//! Rolling journal records into Parquet: group by table and day, write each group to a hidden
//! temporary file (zstd, page statistics, query-sized row groups, metadata with the schema
//! version, first/last chain hash and rows digest), fsync it, rename it into its Hive partition
//! `<table>/date=YYYY-MM-DD/<node>-<segment>.parquet`, fsync the directory, then list it in the
//! manifest. A segment's rows for one table and day are published once: when the manifest already
//! lists a file for that `(table, day, segment)` — whatever node name it carries — rolling the
//! segment again (crash between publishing and retiring it) skips them, so it never duplicates
//! rows. Files renamed into place whose manifest line never got written are removed by recovery
//! before the segment is rolled again (`recovery.rs`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use crate::error::RecorderError;
use crate::journal::sync_dir;
use crate::manifest::{ManifestChain, ManifestEntry};
use crate::record::Record;
use crate::schema::{self, StoredTable, SCHEMA_VERSION, SCHEMA_VERSION_KEY};

/// Rows per row group: large enough for good compression and pruning statistics, small enough
/// that a query touching one session reads little.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// zstd level 1: measured on the throughput bench, level 3 made the roller the bottleneck
/// (about a quarter of its time in compression) for files a few percent smaller.
const ZSTD_LEVEL: i32 = 1;

/// Metadata keys written to every Parquet file.
pub(crate) const KEY_TABLE: &str = "bastion.table";
pub(crate) const KEY_FIRST_HASH: &str = "bastion.first_hash";
pub(crate) const KEY_LAST_HASH: &str = "bastion.last_hash";
pub(crate) const KEY_ROWS_DIGEST: &str = "bastion.rows_digest";
pub(crate) const KEY_SEGMENT: &str = "bastion.segment";

/// The UTC day of a time in microseconds (times chrono cannot represent count as 1970-01-01).
fn date_of(micros: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .date_naive()
}

/// The UTC day (`YYYY-MM-DD`) of a time in microseconds.
pub(crate) fn day_of(micros: i64) -> String {
    date_of(micros).format("%Y-%m-%d").to_string()
}

/// The journal segment a published file name `<node>-<segment>.parquet` holds.
pub(crate) fn segment_of_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(".parquet")
        .and_then(|s| s.rsplit('-').next())
        .and_then(|s| s.parse().ok())
}

/// The stored table and time that partition a record; `None` for checkpoints.
pub(crate) fn placement(r: &Record) -> Option<(StoredTable, i64)> {
    match r {
        Record::Entry(e) => Some((StoredTable::Entries, e.time)),
        Record::SessionStart(s) => Some((StoredTable::Sessions, s.time)),
        Record::SessionEnd(s) => Some((StoredTable::SessionEnds, s.row.time)),
        Record::Action(a) => Some((StoredTable::Actions, a.row.time)),
        Record::Outcome(o) => Some((StoredTable::Outcomes, o.row.time)),
        Record::Checkpoint(_) => None,
    }
}

/// Groups records by table and day, keeping their journal order.
pub(crate) fn group<'a>(
    records: impl IntoIterator<Item = &'a Record>,
) -> BTreeMap<(StoredTable, String), Vec<&'a Record>> {
    // Keyed by the date itself: formatting a day string per record costs more than the rest.
    let mut groups: BTreeMap<(StoredTable, chrono::NaiveDate), Vec<&Record>> = BTreeMap::new();
    for r in records {
        if let Some((table, time)) = placement(r) {
            groups.entry((table, date_of(time))).or_default().push(r);
        }
    }
    groups
        .into_iter()
        .map(|((table, date), rs)| ((table, date.format("%Y-%m-%d").to_string()), rs))
        .collect()
}

/// Builds the record batch of one group (all records of the same table).
pub(crate) fn build_batch(
    table: StoredTable,
    records: &[&Record],
) -> Result<RecordBatch, RecorderError> {
    match table {
        StoredTable::Entries => schema::entries_batch(
            &records
                .iter()
                .filter_map(|r| match r {
                    Record::Entry(e) => Some(e),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        StoredTable::Sessions => schema::sessions_batch(
            &records
                .iter()
                .filter_map(|r| match r {
                    Record::SessionStart(e) => Some(e),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        StoredTable::SessionEnds => schema::session_ends_batch(
            &records
                .iter()
                .filter_map(|r| match r {
                    Record::SessionEnd(e) => Some(e),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        StoredTable::Actions => schema::actions_batch(
            &records
                .iter()
                .filter_map(|r| match r {
                    Record::Action(e) => Some(e),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        StoredTable::Outcomes => schema::outcomes_batch(
            &records
                .iter()
                .filter_map(|r| match r {
                    Record::Outcome(e) => Some(e),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
    }
}

/// SHA-256 over the canonical encodings of `records`, in order.
pub(crate) fn rows_digest<'a>(records: impl IntoIterator<Item = &'a Record>) -> String {
    let mut h = Sha256::new();
    let mut buf = Vec::with_capacity(512);
    for r in records {
        buf.clear();
        r.encode(&mut buf);
        h.update((buf.len() as u32).to_le_bytes());
        h.update(&buf);
    }
    hex::encode(h.finalize())
}

/// First and last chain hash of chained records.
pub(crate) fn chain_ends(records: &[&Record]) -> (Option<String>, Option<String>) {
    let hashes = records.iter().filter_map(|r| match r {
        Record::Action(a) => Some(a.hash),
        Record::Outcome(o) => Some(o.hash),
        _ => None,
    });
    let mut first = None;
    let mut last = None;
    for h in hashes {
        if first.is_none() {
            first = Some(hex::encode(h));
        }
        last = Some(h);
    }
    (first, last.map(hex::encode))
}

/// A `Write` that hashes everything passing through it.
struct HashingWriter {
    file: File,
    sha: Sha256,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Writes `batch` to `path` atomically; returns the SHA-256 of the file.
pub(crate) fn write_parquet_atomically(
    path: &Path,
    batch: &RecordBatch,
    metadata: Vec<KeyValue>,
) -> Result<String, RecorderError> {
    let parent = path.parent().ok_or_else(|| {
        RecorderError::Options(format!("no parent directory for {}", path.display()))
    })?;
    let created = !parent.exists();
    fs::create_dir_all(parent).map_err(RecorderError::io(parent))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = parent.join(format!(".{name}.tmp"));
    let file = File::create(&tmp).map_err(RecorderError::io(&tmp))?;
    let mut kv = vec![KeyValue::new(
        SCHEMA_VERSION_KEY.to_string(),
        SCHEMA_VERSION.to_string(),
    )];
    kv.extend(metadata);
    let zstd = ZstdLevel::try_new(ZSTD_LEVEL).map_err(RecorderError::parquet(&tmp))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(kv))
        // Every chain hash is unique: a dictionary would only be built to be thrown away.
        .set_column_dictionary_enabled(ColumnPath::from("prev_hash"), false)
        .set_column_dictionary_enabled(ColumnPath::from("hash"), false)
        .build();
    let sink = HashingWriter {
        file,
        sha: Sha256::new(),
    };
    let mut writer = ArrowWriter::try_new(sink, batch.schema(), Some(props))
        .map_err(RecorderError::parquet(&tmp))?;
    writer.write(batch).map_err(RecorderError::parquet(&tmp))?;
    let sink = writer.into_inner().map_err(RecorderError::parquet(&tmp))?;
    sink.file.sync_all().map_err(RecorderError::io(&tmp))?;
    let digest = hex::encode(sink.sha.finalize());
    fs::rename(&tmp, path).map_err(RecorderError::io(path))?;
    sync_dir(parent)?;
    if created {
        if let Some(table_dir) = parent.parent() {
            sync_dir(table_dir)?;
        }
    }
    Ok(digest)
}

/// Publishes journal records as Parquet files and lists them in the manifest chain.
pub(crate) struct Roller {
    pub(crate) dir: PathBuf,
    pub(crate) node: String,
    pub(crate) manifest: ManifestChain,
}

impl Roller {
    /// Rolls the records of segment `segment` into Parquet; returns the number of files written.
    pub(crate) fn roll(
        &mut self,
        segment: u64,
        records: &[Record],
    ) -> Result<usize, RecorderError> {
        let mut entries = Vec::new();
        for ((table, date), group) in group(records) {
            let rel = format!(
                "{}/date={date}/{}-{segment:010}.parquet",
                table.dir_name(),
                self.node
            );
            // Published before a crash (possibly under another node name): never twice.
            if self.manifest.is_published(table.dir_name(), &date, segment) {
                continue;
            }
            let batch = build_batch(table, &group)?;
            let digest = rows_digest(group.iter().copied());
            let (first, last) = chain_ends(&group);
            let mut kv = vec![
                KeyValue::new(KEY_TABLE.to_string(), table.dir_name().to_string()),
                KeyValue::new(KEY_ROWS_DIGEST.to_string(), digest.clone()),
                KeyValue::new(KEY_SEGMENT.to_string(), segment.to_string()),
            ];
            if let (Some(f), Some(l)) = (&first, &last) {
                kv.push(KeyValue::new(KEY_FIRST_HASH.to_string(), f.clone()));
                kv.push(KeyValue::new(KEY_LAST_HASH.to_string(), l.clone()));
            }
            let sha256 = write_parquet_atomically(&self.dir.join(&rel), &batch, kv)?;
            entries.push((
                date,
                ManifestEntry::File {
                    table: table.dir_name().to_string(),
                    path: rel,
                    rows: group.len() as u64,
                    sha256,
                    rows_digest: digest,
                    first_hash: first,
                    last_hash: last,
                    segment,
                },
            ));
        }
        let n = entries.len();
        if n > 0 {
            self.manifest.append(entries)?;
        }
        Ok(n)
    }
}
