//! SQL over the audit directory with DataFusion. Each stored table is the union of its Parquet
//! files (Hive `date` partitions, so `WHERE date >= '…'` prunes files) and the journal's rows not
//! yet rolled, so a query sees what happened a second ago. Views `actions` and `sessions` join
//! outcomes and session ends onto their rows. Only queries run: DDL, DML and `SET` are refused.
//!
//! | name | what |
//! |---|---|
//! | `actions` | `action_rows` LEFT JOIN `outcomes` ON `(session_id, seq)` — one row per action |
//! | `sessions` | `session_starts` LEFT JOIN `session_ends` ON `session_id` — one row per session |
//! | `entries` | account-entry attempts |
//! | `action_rows`, `outcomes`, `session_starts`, `session_ends` | the stored facts as written |

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::object_store::path::Path as StorePath;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::error::RecorderError;
use crate::file_snapshot::SnapshotStore;
use crate::journal::{list_segments, read_segment};
use crate::record::Record;
use crate::retention::partition_days;
use crate::roll::{build_batch, group, segment_of_file_name};
use crate::schema::StoredTable;

/// Query-visible name of each stored table.
fn raw_name(t: StoredTable) -> &'static str {
    match t {
        StoredTable::Entries => "entries",
        StoredTable::Sessions => "session_starts",
        StoredTable::SessionEnds => "session_ends",
        StoredTable::Actions => "action_rows",
        StoredTable::Outcomes => "outcomes",
    }
}

const ACTIONS_VIEW: &str = "CREATE VIEW actions AS SELECT a.time, a.session_id, a.seq, a.node, \
 a.identity, a.identity_kind, a.target, a.protocol, a.kind, a.text, a.fingerprint, a.statement_class, \
 a.objects, a.risk_tags, a.decision, a.policy_ids, a.shadow_decision, a.step_up, \
 COALESCE(a.approver, o.approver) AS approver, COALESCE(a.approved_at, o.approved_at) AS approved_at, \
 COALESCE(o.outcome, 'unknown') AS outcome, o.rows, o.sqlstate, o.exit_status, o.duration_us, \
 o.bytes_in, o.bytes_out, o.message, o.outcome_time, a.prev_hash, a.hash, a.date \
 FROM action_rows a LEFT JOIN outcomes o ON a.session_id = o.session_id AND a.seq = o.seq";

const SESSIONS_VIEW: &str =
    "CREATE VIEW sessions AS SELECT s.session_id, s.identity, s.identity_kind, \
 s.target, s.protocol, s.source, s.client, COALESCE(e.recording, s.recording) AS recording, \
 s.start_time, e.end_time, e.end_reason, e.bytes_in, e.bytes_out, s.date \
 FROM session_starts s LEFT JOIN session_ends e ON s.session_id = e.session_id";

/// A published Parquet file found on disk.
pub(crate) struct StoredFile {
    pub(crate) date: String,
    pub(crate) path: PathBuf,
    /// The journal segment in the file name (`<node>-<segment>.parquet`).
    pub(crate) segment: Option<u64>,
}

/// Every published (non-hidden) Parquet file of `table`.
pub(crate) fn stored_files(
    dir: &Path,
    table: StoredTable,
) -> Result<Vec<StoredFile>, RecorderError> {
    let table_dir = dir.join(table.dir_name());
    let mut out = Vec::new();
    for date in partition_days(&table_dir)? {
        let part = table_dir.join(format!("date={date}"));
        let rd = fs::read_dir(&part).map_err(RecorderError::io(&part))?;
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.ends_with(".parquet") && !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            let segment = segment_of_file_name(&name);
            out.push(StoredFile {
                date: date.clone(),
                path: part.join(&name),
                segment,
            });
        }
    }
    Ok(out)
}

/// Reads every row of a Parquet file.
pub(crate) fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>, RecorderError> {
    let file = File::open(path).map_err(RecorderError::io(path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(RecorderError::parquet(path))?
        .build()
        .map_err(RecorderError::parquet(path))?;
    reader
        .map(|b| b.map_err(|e| RecorderError::parquet(path)(e.into())))
        .collect()
}

fn footer_ok(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(file).map_err(|e| e.to_string())?;
    let _ = reader.metadata().file_metadata().num_rows();
    Ok(())
}

fn with_date(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("date", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

fn add_date(batch: &RecordBatch, date: &str) -> Result<RecordBatch, RecorderError> {
    let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
    cols.push(Arc::new(StringArray::from(vec![date; batch.num_rows()])));
    Ok(RecordBatch::try_new(with_date(&batch.schema()), cols)?)
}

/// The intact records of every journal segment present now.
pub(crate) fn read_journal(dir: &Path) -> Result<Vec<(u64, Vec<Record>)>, RecorderError> {
    let mut out = Vec::new();
    for (id, path) in list_segments(&dir.join("journal"))? {
        match read_segment(&path) {
            Ok(c) => out.push((id, c.records)),
            // A segment retired between listing and reading is in Parquet now.
            Err(RecorderError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(segment = %path.display(), error = %e, "skipping unreadable journal segment")
            }
        }
    }
    Ok(out)
}

/// Journal rows not yet published, by table, each with its `date` column.
fn journal_batches(
    segments: Vec<(u64, Vec<Record>)>,
    published: &HashSet<(StoredTable, String, u64)>,
) -> Result<BTreeMap<StoredTable, Vec<RecordBatch>>, RecorderError> {
    let mut out: BTreeMap<StoredTable, Vec<RecordBatch>> = BTreeMap::new();
    for (id, records) in segments {
        for ((table, date), records) in group(&records) {
            if published.contains(&(table, date.clone(), id)) {
                continue;
            }
            let batch = build_batch(table, &records)?;
            out.entry(table).or_default().push(add_date(&batch, &date)?);
        }
    }
    Ok(out)
}

/// The listing URL of a stored table's directory.
fn table_url(dir: &Path, table: StoredTable) -> Result<ListingTableUrl, RecorderError> {
    let table_dir = dir.join(table.dir_name());
    Ok(ListingTableUrl::parse(format!("{}/", table_dir.display()))?)
}

/// Registers one stored table (Parquet files ∪ journal rows) under its query name. The listing
/// table reads through the context's [`SnapshotStore`], which lists only `snapshot`.
async fn register_table(
    ctx: &SessionContext,
    dir: &Path,
    table: StoredTable,
    files: &[StoredFile],
    journal: Vec<RecordBatch>,
    snapshot: &mut HashSet<StorePath>,
) -> Result<(), RecorderError> {
    let schema = table.schema();
    let full = with_date(&schema);
    let name = raw_name(table);
    let mut bad = Vec::new();
    for f in files {
        if let Err(reason) = footer_ok(&f.path) {
            tracing::warn!(file = %f.path.display(), reason = %reason, "skipping corrupt parquet file in query");
            bad.push(f.path.clone());
        }
    }
    let files_name = format!("{name}__files");
    let journal_name = format!("{name}__journal");
    if files.is_empty() {
        ctx.register_table(
            &files_name,
            Arc::new(MemTable::try_new(Arc::clone(&full), vec![vec![]])?),
        )?;
    } else if bad.is_empty() {
        let url = table_url(dir, table)?;
        for f in files {
            if let Some(name) = f.path.file_name().and_then(|n| n.to_str()) {
                snapshot.insert(
                    url.prefix()
                        .clone()
                        .join(format!("date={}", f.date))
                        .join(name),
                );
            }
        }
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![("date".to_string(), DataType::Utf8)]);
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        ctx.register_table(&files_name, Arc::new(ListingTable::try_new(config)?))?;
    } else {
        // Some file is corrupt: read the good ones directly so the query still answers.
        let mut batches = Vec::new();
        for f in files.iter().filter(|f| !bad.contains(&f.path)) {
            match read_parquet(&f.path) {
                Ok(bs) => {
                    for b in bs {
                        batches.push(conform(&add_date(&b, &f.date)?, &full, &f.path)?);
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %f.path.display(), error = %e, "skipping unreadable parquet file in query")
                }
            }
        }
        ctx.register_table(
            &files_name,
            Arc::new(MemTable::try_new(nullable(&full), vec![batches])?),
        )?;
    }
    ctx.register_table(
        &journal_name,
        Arc::new(MemTable::try_new(full, vec![journal])?),
    )?;
    ctx.sql(&format!(
        "CREATE VIEW {name} AS SELECT * FROM {files_name} UNION ALL SELECT * FROM {journal_name}"
    ))
    .await?;
    Ok(())
}

/// Brings a batch read from a file of any schema version to the current schema (all columns
/// nullable): columns it lacks become nulls.
fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
    path: &Path,
) -> Result<RecordBatch, RecorderError> {
    let mut cols = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let col = match batch.column_by_name(field.name()) {
            Some(c) if c.data_type() == field.data_type() => Arc::clone(c),
            Some(c) => {
                arrow::compute::cast(c, field.data_type()).map_err(|e| RecorderError::Schema {
                    path: path.to_path_buf(),
                    reason: format!("column {}: {e}", field.name()),
                })?
            }
            None => arrow::array::new_null_array(field.data_type(), batch.num_rows()),
        };
        cols.push(col);
    }
    Ok(RecordBatch::try_new(nullable(schema), cols)?)
}

fn nullable(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

/// What one query reads: the journal's records, then the Parquet files present just after.
struct TrailListing {
    segments: Vec<(u64, Vec<Record>)>,
    files: BTreeMap<StoredTable, Vec<StoredFile>>,
}

/// Journal first, files second: a segment rolled in between shows up once, as files.
fn list_trail(dir: &Path) -> Result<TrailListing, RecorderError> {
    let segments = read_journal(dir)?;
    let mut files = BTreeMap::new();
    for t in StoredTable::ALL {
        files.insert(t, stored_files(dir, t)?);
    }
    Ok(TrailListing { segments, files })
}

/// Registers the tables and views of a listing. The files listed are all the query reads (see
/// `file_snapshot.rs`): journal rows of a `(table, day, segment)` that has a file are left out.
async fn context_for(dir: &Path, listing: TrailListing) -> Result<SessionContext, RecorderError> {
    let ctx = SessionContext::new();
    let TrailListing {
        segments,
        mut files,
    } = listing;
    let mut published = HashSet::new();
    for (t, table_files) in &files {
        for f in table_files {
            if let Some(seg) = f.segment {
                published.insert((*t, f.date.clone(), seg));
            }
        }
    }
    let mut journal = journal_batches(segments, &published)?;
    let mut snapshot = HashSet::new();
    for t in StoredTable::ALL {
        let table_files = files.remove(&t).unwrap_or_default();
        register_table(
            &ctx,
            dir,
            t,
            &table_files,
            journal.remove(&t).unwrap_or_default(),
            &mut snapshot,
        )
        .await?;
    }
    // Files published after the listing are not read: their rows came from the journal.
    ctx.register_object_store(
        ObjectStoreUrl::local_filesystem().as_ref(),
        Arc::new(SnapshotStore::new(snapshot)),
    );
    ctx.sql(ACTIONS_VIEW).await?;
    ctx.sql(SESSIONS_VIEW).await?;
    Ok(ctx)
}

/// A DataFusion session with every audit table and view registered (read-only).
pub async fn audit_context(dir: &Path) -> Result<SessionContext, RecorderError> {
    let listing = list_trail(dir)?;
    context_for(dir, listing).await
}

/// Runs one read-only SQL query over the audit directory and returns its rows.
pub async fn query(dir: &Path, sql: &str) -> Result<Vec<RecordBatch>, RecorderError> {
    let ctx = audit_context(dir).await?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx.sql_with_options(sql, options).await?;
    Ok(df.collect().await?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{ActionRow, Recorder, RecorderOptions};

    async fn count(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        crate::format_batches(&batches, crate::OutputFormat::Csv).unwrap()
    }

    async fn record(
        opts: &RecorderOptions,
        seqs: std::ops::RangeInclusive<i64>,
    ) -> crate::RecorderTask {
        let (rec, task) = Recorder::open(opts.clone()).await.unwrap();
        for seq in seqs {
            rec.action(ActionRow {
                time: 1_790_000_000_000_000 + seq,
                session_id: "s1".into(),
                seq,
                text: format!("SELECT {seq}"),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        task
    }

    /// The window between reading the journal and DataFusion listing the files: a segment
    /// published in it must not be read twice (journal rows + its new file).
    #[tokio::test]
    async fn a_file_published_after_the_listing_is_not_read_beside_its_journal_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = RecorderOptions::new(dir.path(), "n1");
        opts.roll_max_rows = 1_000;
        record(&opts, 1..=3).await.shutdown().await.unwrap();
        let task = record(&opts, 4..=6).await;
        // One file published, one segment in the journal, unrolled.
        let listing = list_trail(dir.path()).unwrap();
        assert_eq!(listing.segments.len(), 1);
        assert_eq!(listing.files[&StoredTable::Actions].len(), 1);
        // Now the roller publishes the segment (shutdown rolls it and retires it).
        task.shutdown().await.unwrap();
        assert_eq!(
            stored_files(dir.path(), StoredTable::Actions)
                .unwrap()
                .len(),
            2
        );
        let ctx = context_for(dir.path(), listing).await.unwrap();
        assert_eq!(
            count(
                &ctx,
                "SELECT count(*) AS n, count(DISTINCT seq) AS d FROM action_rows"
            )
            .await,
            "n,d\n6,6\n",
            "each row once: seq 1-3 from the listed file, 4-6 from the journal read"
        );
        // A fresh listing reads both files instead, still once.
        let ctx = audit_context(dir.path()).await.unwrap();
        assert_eq!(
            count(
                &ctx,
                "SELECT count(*) AS n, count(DISTINCT seq) AS d FROM action_rows"
            )
            .await,
            "n,d\n6,6\n"
        );
    }
}
