#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Write → read back → compare; queries over Parquet and journal rows; faults.

mod common;

use std::fs::File;

use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};
use recorder::{query, Recorder};

#[tokio::test]
async fn rows_written_read_back_with_the_parquet_reader_are_the_rows_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, task) = Recorder::open(opts(dir.path())).await.unwrap();
    rec.entry(entry("ok")).await.unwrap();
    rec.session_start(start("s1")).await.unwrap();
    let mut a = action("s1", 1);
    a.risk_tags = vec!["no_where".into(), "bulk".into()];
    a.step_up = Some("approval".into());
    a.approver = Some("bob".into());
    a.approved_at = Some(T0 + 5);
    rec.action(a.clone()).await.unwrap();
    rec.outcome(outcome("s1", 1)).await.unwrap();
    rec.session_end(end("s1")).await.unwrap();
    task.shutdown().await.unwrap();

    let files = parquet_files(dir.path(), "actions");
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].to_string_lossy().to_string();
    assert!(name.contains("actions/date=2026-09-21/node1-"), "{name}");
    let reader = SerializedFileReader::new(File::open(&files[0]).unwrap()).unwrap();
    let meta = reader.metadata();
    let kv = meta.file_metadata().key_value_metadata().unwrap();
    assert!(kv
        .iter()
        .any(|k| k.key == "bastion.schema_version" && k.value.as_deref() == Some("2")));
    assert!(kv.iter().any(|k| k.key == "bastion.first_hash"));
    let col = meta.row_group(0).column(0);
    assert!(
        col.compression().to_string().starts_with("ZSTD"),
        "{}",
        col.compression()
    );
    assert!(col.statistics().is_some(), "statistics must be written");

    let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    let text = csv(&batches);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "time,session_id,seq,node,identity,identity_kind,target,protocol,kind,text,fingerprint,statement_class,objects,risk_tags,decision,policy_ids,shadow_decision,step_up,approver,approved_at,prev_hash,hash"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("2026-09-21T14:13:20.001Z,s1,1,node1,alice,human,prod-db,postgres,sql,SELECT * FROM orders WHERE id = 1,SELECT * FROM orders WHERE id = ?,select,[public.orders],\"[no_where, bulk]\",allow,\"[p1, p2]\",,approval,bob,2026-09-21T14:13:20.000005Z,"),
        "{row}"
    );
    assert_eq!(lines.next(), None);
    for table in ["entries", "sessions", "session_ends", "outcomes"] {
        assert_eq!(parquet_files(dir.path(), table).len(), 1, "{table}");
    }
    assert!(
        std::fs::read_dir(dir.path().join("journal"))
            .unwrap()
            .next()
            .is_none(),
        "shutdown retires every journal segment"
    );
}

#[tokio::test]
async fn query_shows_one_row_per_action_with_its_outcome_including_unrolled_journal_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, task) = Recorder::open(opts(dir.path())).await.unwrap();
    rec.session_start(start("s1")).await.unwrap();
    for seq in 1..=3 {
        rec.action(action("s1", seq)).await.unwrap();
    }
    rec.outcome(outcome("s1", 1)).await.unwrap();
    let mut failed = outcome("s1", 2);
    failed.outcome = "error".into();
    failed.sqlstate = Some("42P01".into());
    rec.outcome(failed).await.unwrap();

    // Nothing rolled yet: every row is still in the journal.
    assert!(parquet_files(dir.path(), "actions").is_empty());
    let sql =
        "SELECT seq, outcome, sqlstate, rows FROM actions WHERE session_id = 's1' ORDER BY seq";
    let live = csv(&query(dir.path(), sql).await.unwrap());
    assert_eq!(
        live,
        "seq,outcome,sqlstate,rows\n1,ok,,1\n2,error,42P01,2\n3,unknown,,\n"
    );

    rec.outcome(outcome("s1", 3)).await.unwrap();
    rec.session_end(end("s1")).await.unwrap();
    task.shutdown().await.unwrap();
    assert_eq!(parquet_files(dir.path(), "actions").len(), 1);
    let rolled = csv(&query(dir.path(), sql).await.unwrap());
    assert_eq!(
        rolled,
        "seq,outcome,sqlstate,rows\n1,ok,,1\n2,error,42P01,2\n3,ok,,3\n"
    );

    let sessions = csv(&query(
        dir.path(),
        "SELECT session_id, identity, target, end_reason, bytes_out, date FROM sessions",
    )
    .await
    .unwrap());
    assert_eq!(sessions, "session_id,identity,target,end_reason,bytes_out,date\ns1,alice,prod-db,client_closed,1000,2026-09-21\n");
    let pruned = query(
        dir.path(),
        "SELECT count(*) AS n FROM actions WHERE date = '2020-01-01'",
    )
    .await
    .unwrap();
    assert_eq!(csv(&pruned), "n\n0\n");
}

#[tokio::test]
async fn output_formats_render_lists_and_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, task) = Recorder::open(opts(dir.path())).await.unwrap();
    rec.action(action("s1", 1)).await.unwrap();
    task.shutdown().await.unwrap();
    let b = query(dir.path(), "SELECT seq, objects, step_up FROM actions")
        .await
        .unwrap();
    let table = recorder::format_batches(&b, recorder::OutputFormat::Table).unwrap();
    assert!(
        table.contains("| seq | objects         | step_up |"),
        "{table}"
    );
    assert!(
        table.contains("| 1   | [public.orders] |         |"),
        "{table}"
    );
    let json = recorder::format_batches(&b, recorder::OutputFormat::Json).unwrap();
    assert_eq!(json, r#"[{"seq":1,"objects":["public.orders"]}]"#);
    let empty = query(dir.path(), "SELECT seq FROM actions WHERE seq > 5")
        .await
        .unwrap();
    assert_eq!(
        recorder::format_batches(&empty, recorder::OutputFormat::Json).unwrap(),
        "[]"
    );
}

#[tokio::test]
async fn queries_cannot_write_files_or_change_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, task) = Recorder::open(opts(dir.path())).await.unwrap();
    rec.action(action("s1", 1)).await.unwrap();
    task.shutdown().await.unwrap();
    let target = dir.path().join("stolen.csv");
    for sql in [
        format!("COPY (SELECT * FROM actions) TO '{}'", target.display()),
        "CREATE TABLE x AS SELECT 1".to_string(),
        "DROP VIEW actions".to_string(),
        "INSERT INTO action_rows SELECT * FROM action_rows".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
    ] {
        assert!(
            query(dir.path(), &sql).await.is_err(),
            "{sql} must be refused"
        );
    }
    assert!(!target.exists());
}

#[tokio::test]
async fn a_corrupt_parquet_file_is_skipped_by_query_and_named_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.roll_max_rows = 2;
    let (rec, task) = Recorder::open(o).await.unwrap();
    for seq in 1..=6 {
        rec.action(action("s1", seq)).await.unwrap();
    }
    task.shutdown().await.unwrap();
    let files = parquet_files(dir.path(), "actions");
    assert!(files.len() >= 2, "{files:?}");
    std::fs::write(&files[0], b"not parquet at all").unwrap();
    let n = query(dir.path(), "SELECT count(*) AS n FROM actions")
        .await
        .unwrap();
    let n: usize = csv(&n).lines().nth(1).unwrap().parse().unwrap();
    assert!((1..6).contains(&n), "the good files still answer: {n}");
    let report = recorder::verify(dir.path(), None, None).unwrap();
    let first = report.first_problem().unwrap();
    assert_eq!(first.file, files[0]);
    assert!(first.reason.contains("sha256"), "{first}");
}

#[tokio::test]
async fn unwritable_audit_dir_fails_open_and_a_failed_journal_write_refuses_the_action() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let err = Recorder::open(opts(&blocker.join("audit")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("audit i/o on"), "{err}");

    let mut o = opts(&dir.path().join("audit"));
    o.roll_max_rows = 1;
    let (rec, task) = Recorder::open(o).await.unwrap();
    rec.action(action("s1", 1)).await.unwrap();
    // The journal directory disappears (disk gone, operator mistake): the next segment cannot
    // be created, so the action must be refused rather than silently dropped.
    let journal = dir.path().join("audit/journal");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    std::fs::remove_dir_all(&journal).unwrap();
    std::fs::write(&journal, b"not a directory").unwrap();
    let err = rec.action(action("s1", 2)).await.unwrap_err();
    assert!(err.to_string().starts_with("journal write failed"), "{err}");
    std::fs::remove_file(&journal).unwrap();
    std::fs::create_dir(&journal).unwrap();
    rec.action(action("s1", 2)).await.unwrap();
    task.shutdown().await.unwrap();
    let rows = csv(&query(
        &dir.path().join("audit"),
        "SELECT seq FROM actions ORDER BY seq",
    )
    .await
    .unwrap());
    assert_eq!(rows, "seq\n1\n2\n");
    assert!(recorder::verify(&dir.path().join("audit"), None, None)
        .unwrap()
        .is_ok());
}

#[tokio::test]
async fn a_full_queue_makes_callers_wait_and_never_drops_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.queue_capacity = 1;
    o.durability = recorder::Durability::Fsync;
    let (rec, task) = Recorder::open(o).await.unwrap();
    let mut handles = Vec::new();
    for s in 0..20 {
        let rec = rec.clone();
        handles.push(tokio::spawn(async move {
            for seq in 1..=25 {
                rec.action(action(&format!("s{s}"), seq)).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    task.shutdown().await.unwrap();
    let n = csv(&query(dir.path(), "SELECT count(DISTINCT session_id || '/' || CAST(seq AS VARCHAR)) AS n, count(*) AS total FROM actions").await.unwrap());
    assert_eq!(n, "n,total\n500,500\n");
    assert!(
        rec.action(action("late", 1)).await.is_err(),
        "after shutdown the recorder refuses rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_segments_rolled_while_sessions_append_lose_and_duplicate_nothing() {
    // `os` durability appends from the callers' tasks; with one row per segment the roller is
    // always behind, so callers keep waiting for it (the bounded path) and rolls interleave
    // with appends from both worker threads.
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.roll_max_rows = 1;
    let (rec, task) = Recorder::open(o).await.unwrap();
    let mut handles = Vec::new();
    for s in 0..8 {
        let rec = rec.clone();
        handles.push(tokio::spawn(async move {
            for seq in 1..=15 {
                rec.action(action(&format!("s{s}"), seq)).await.unwrap();
                rec.outcome(outcome(&format!("s{s}"), seq)).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    task.shutdown().await.unwrap();
    let n = csv(&query(dir.path(), "SELECT count(DISTINCT session_id || '/' || CAST(seq AS VARCHAR)) AS n, count(*) AS total, count(outcome) AS done FROM actions").await.unwrap());
    assert_eq!(n, "n,total,done\n120,120,120\n");
    let report = recorder::verify(dir.path(), None, None).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let journal: Vec<_> = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .collect();
    assert!(
        journal.is_empty(),
        "every segment is rolled and retired: {journal:?}"
    );
}

#[tokio::test]
async fn a_schema_1_session_ends_file_without_the_recording_column_is_still_read() {
    use parquet::arrow::ArrowWriter;
    let dir = tempfile::tempdir().unwrap();
    let (rec, task) = Recorder::open(opts(dir.path())).await.unwrap();
    rec.session_start(start("s1")).await.unwrap();
    rec.session_end(end("s1")).await.unwrap();
    task.shutdown().await.unwrap();
    // Rewrite the file as schema 1 wrote it: no `recording` column, version 1.
    let files = parquet_files(dir.path(), "session_ends");
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap()).unwrap();
    let batch = reader.build().unwrap().next().unwrap().unwrap();
    let idx = batch.schema().index_of("recording").unwrap();
    let mut v1 = batch.clone();
    v1.remove_column(idx);
    let kv = vec![parquet::file::metadata::KeyValue::new(
        "bastion.schema_version".to_string(),
        "1".to_string(),
    )];
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(kv))
        .build();
    let mut w =
        ArrowWriter::try_new(File::create(&files[0]).unwrap(), v1.schema(), Some(props)).unwrap();
    w.write(&v1).unwrap();
    w.close().unwrap();
    let rows = csv(&query(
        dir.path(),
        "SELECT session_id, end_reason, recording FROM sessions",
    )
    .await
    .unwrap());
    assert_eq!(rows, "session_id,end_reason,recording\ns1,client_closed,\n");
    let rows = csv(
        &query(dir.path(), "SELECT session_id, recording FROM session_ends")
            .await
            .unwrap(),
    );
    assert_eq!(rows, "session_id,recording\ns1,\n");
    // Beside a schema 2 file of the same table.
    let (rec, task) = Recorder::open(opts(dir.path())).await.unwrap();
    rec.session_start(start("s2")).await.unwrap();
    rec.session_end_with_recording(
        end("s2"),
        Some("recordings/date=2026-09-21/s2-0.cast".into()),
    )
    .await
    .unwrap();
    task.shutdown().await.unwrap();
    assert_eq!(parquet_files(dir.path(), "session_ends").len(), 2);
    let rows = csv(&query(
        dir.path(),
        "SELECT session_id, recording FROM sessions ORDER BY session_id",
    )
    .await
    .unwrap());
    assert_eq!(
        rows,
        "session_id,recording\ns1,\ns2,recordings/date=2026-09-21/s2-0.cast\n"
    );
}
