#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! kill -9 at random points, torn tails, and tampering that `verify` must name.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rand::Rng;
use recorder::{query, verify, Recorder};

fn acked_rows(dir: &std::path::Path, prefix: &str, kill_after: Duration) -> Vec<(String, i64)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recorder-crash-helper"))
        .arg(dir)
        .arg(prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut p = line.split(' ');
            if p.next() == Some("ack") {
                let _ = tx.send((
                    p.next().unwrap().to_string(),
                    p.next().unwrap().parse::<i64>().unwrap(),
                ));
            }
        }
    });
    // Recovery of the previous run comes first: kill at a random point after writing started.
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the helper acknowledged nothing");
    std::thread::sleep(kill_after);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    let mut rows = vec![first];
    rows.extend(rx.try_iter());
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_acknowledged_before_kill_9_is_present_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    let mut acked = Vec::new();
    for round in 0..4 {
        let wait = Duration::from_millis(rng.gen_range(20..700));
        let rows = acked_rows(dir.path(), &format!("r{round}"), wait);
        assert!(
            !rows.is_empty(),
            "round {round}: the helper acknowledged nothing"
        );
        acked.extend(rows);
    }
    // Reopen: recovery publishes the journal and closes the sessions the kills left open.
    let (_rec, task) = Recorder::open(opts(dir.path())).await.unwrap();
    task.shutdown().await.unwrap();
    let batches = query(dir.path(), "SELECT session_id, seq FROM action_rows")
        .await
        .unwrap();
    let mut count: HashMap<(String, i64), usize> = HashMap::new();
    for line in csv(&batches).lines().skip(1) {
        let (s, q) = line.split_once(',').unwrap();
        *count
            .entry((s.to_string(), q.parse().unwrap()))
            .or_default() += 1;
    }
    for key in &acked {
        assert_eq!(
            count.get(key),
            Some(&1),
            "acknowledged row {key:?} must be present exactly once"
        );
    }
    assert!(count.values().all(|&n| n == 1), "no row is duplicated");
    let ends = csv(&query(
        dir.path(),
        "SELECT count(*) AS n FROM sessions WHERE end_reason = 'bastion_restart'",
    )
    .await
    .unwrap());
    assert_eq!(
        ends, "n\n16\n",
        "4 sessions per killed run are closed at restart"
    );
    let report = verify(dir.path(), None, None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.rows as usize >= acked.len());
}

/// Which step of publishing a segment the simulated crash interrupts.
#[derive(Clone, Copy, Debug)]
enum CrashAfter {
    /// Files renamed into place, manifest line not written, segment not retired.
    Rename,
    /// Manifest line written, segment not retired.
    Manifest,
}

/// Leaves `dir` as a kill -9 at `crash` while publishing its only segment would, written by
/// node `writer`; returns the segment's file name.
async fn crash_while_publishing(dir: &std::path::Path, writer: &str, crash: CrashAfter) -> String {
    let mut o = opts(dir);
    o.node = writer.into();
    let (rec, task) = Recorder::open(o).await.unwrap();
    rec.session_start(start("s1")).await.unwrap();
    for seq in 1..=5 {
        rec.action(action("s1", seq)).await.unwrap();
        rec.outcome(outcome("s1", seq)).await.unwrap();
    }
    rec.session_end(end("s1")).await.unwrap();
    // The segment as the crash leaves it: every row written, nothing retired.
    let journal = dir.join("journal");
    let seg = std::fs::read_dir(&journal)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let name = seg.file_name().unwrap().to_string_lossy().to_string();
    let bytes = std::fs::read(&seg).unwrap();
    task.shutdown().await.unwrap();
    assert!(!seg.exists(), "shutdown publishes and retires the segment");
    std::fs::write(&seg, bytes).unwrap();
    if let CrashAfter::Rename = crash {
        // The only segment wrote every manifest line there is.
        std::fs::remove_dir_all(dir.join("manifests")).unwrap();
        // And an interrupted roll of another table left its temporary file.
        std::fs::write(
            dir.join(format!(
                "outcomes/date=2026-09-21/.{writer}-0000000009.parquet.tmp"
            )),
            b"PAR1 half",
        )
        .unwrap();
    }
    name
}

#[tokio::test]
async fn rolling_a_segment_again_after_a_crash_while_publishing_never_duplicates_rows() {
    // The kill -9 test found it: recovery under another node name (the helper writes as
    // `crash`, the test reopens as `node1`) published an already published segment again as
    // `node1-<segment>.parquet` beside `crash-<segment>.parquet`.
    for crash in [CrashAfter::Rename, CrashAfter::Manifest] {
        for recovering_node in ["w1", "other"] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            let seg = crash_while_publishing(dir, "w1", crash).await;
            let mut o = opts(dir);
            o.node = recovering_node.into();
            let (_rec, task) = Recorder::open(o).await.unwrap();
            task.shutdown().await.unwrap();
            let case = format!("{crash:?} recovered by {recovering_node}");
            assert!(
                !dir.join("journal").join(&seg).exists(),
                "{case}: segment retired"
            );
            let rows = csv(&query(
                dir,
                "SELECT seq, outcome, count(*) OVER (PARTITION BY seq) AS n FROM actions ORDER BY seq",
            )
            .await
            .unwrap());
            assert_eq!(
                rows, "seq,outcome,n\n1,ok,1\n2,ok,1\n3,ok,1\n4,ok,1\n5,ok,1\n",
                "{case}"
            );
            let sessions = csv(&query(dir, "SELECT session_id, end_reason FROM sessions")
                .await
                .unwrap());
            assert_eq!(
                sessions, "session_id,end_reason\ns1,client_closed\n",
                "{case}"
            );
            // One file per table, under one node name: nothing left beside it.
            for table in ["actions", "outcomes", "sessions", "session_ends"] {
                assert_eq!(parquet_files(dir, table).len(), 1, "{case}: {table}");
            }
            let leftovers: Vec<_> = std::fs::read_dir(dir.join("outcomes/date=2026-09-21"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with('.'))
                .collect();
            assert!(leftovers.is_empty(), "{case}: {leftovers:?}");
            let report = verify(dir, None, None).unwrap();
            assert!(report.is_ok(), "{case}: {:?}", report.problems);
            assert_eq!(
                report.rows, 12,
                "{case}: start, 5 actions, 5 outcomes, end: once"
            );
            // The next segment gets a fresh id, never the recovered one.
            let mut o = opts(dir);
            o.node = recovering_node.into();
            let (rec, task) = Recorder::open(o).await.unwrap();
            rec.action(action("s2", 1)).await.unwrap();
            task.shutdown().await.unwrap();
            assert_eq!(parquet_files(dir, "actions").len(), 2, "{case}");
            assert!(verify(dir, None, None).unwrap().is_ok(), "{case}");
        }
    }
}

#[tokio::test]
async fn a_torn_journal_tail_is_cut_and_everything_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let (rec, task) = Recorder::open(opts(&live)).await.unwrap();
    rec.session_start(start("s1")).await.unwrap();
    for seq in 1..=5 {
        rec.action(action("s1", seq)).await.unwrap();
    }
    // A copy of the audit dir now is what a crash would leave: rows written, nothing rolled.
    let crashed = dir.path().join("crashed");
    std::fs::create_dir_all(crashed.join("journal")).unwrap();
    let seg = std::fs::read_dir(live.join("journal"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let copy = crashed.join("journal").join(seg.file_name().unwrap());
    std::fs::copy(&seg, &copy).unwrap();
    task.shutdown().await.unwrap();
    // Half of a record: length and checksum promise bytes that never arrived.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&copy)
        .unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 4, 9, 9]).unwrap();
    drop(f);

    let (_rec, task) = Recorder::open(opts(&crashed)).await.unwrap();
    task.shutdown().await.unwrap();
    let rows = csv(&query(&crashed, "SELECT seq FROM actions ORDER BY seq")
        .await
        .unwrap());
    assert_eq!(rows, "seq\n1\n2\n3\n4\n5\n");
    let ends = csv(
        &query(&crashed, "SELECT session_id, end_reason FROM sessions")
            .await
            .unwrap(),
    );
    assert_eq!(ends, "session_id,end_reason\ns1,bastion_restart\n");
    assert!(verify(&crashed, None, None).unwrap().is_ok());
}

async fn trail(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut o = opts(dir);
    o.roll_max_rows = 4;
    let (rec, task) = Recorder::open(o).await.unwrap();
    rec.session_start(start("s1")).await.unwrap();
    for seq in 1..=12 {
        rec.action(action("s1", seq)).await.unwrap();
        rec.outcome(outcome("s1", seq)).await.unwrap();
    }
    rec.session_end(end("s1")).await.unwrap();
    task.shutdown().await.unwrap();
    let report = verify(dir, None, None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.files >= 4);
    parquet_files(dir, "actions")
}

#[tokio::test]
async fn verify_names_a_file_with_one_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let files = trail(dir.path()).await;
    let mut bytes = std::fs::read(&files[1]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&files[1], bytes).unwrap();
    let report = verify(dir.path(), None, None).unwrap();
    let p = report
        .first_problem()
        .expect("a flipped byte must be found");
    assert_eq!(p.file, files[1]);
    assert!(p.reason.contains("sha256 differs"), "{p}");
}

#[tokio::test]
async fn verify_names_a_file_rewritten_without_one_row() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowWriter;
    let dir = tempfile::tempdir().unwrap();
    let files = trail(dir.path()).await;
    let target = &files[1];
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(target).unwrap()).unwrap();
    let kv = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned();
    let batch = reader.build().unwrap().next().unwrap().unwrap();
    let keep = arrow::compute::concat_batches(
        &batch.schema(),
        &[batch.slice(0, 1), batch.slice(2, batch.num_rows() - 2)],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(kv)
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(target).unwrap(),
        keep.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&keep).unwrap();
    w.close().unwrap();
    let report = verify(dir.path(), None, None).unwrap();
    let p = report.first_problem().expect("a deleted row must be found");
    assert_eq!(&p.file, target);
    let all: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    assert!(all.iter().any(|p| p.contains("manifest says")), "{all:?}");
    assert!(
        all.iter()
            .any(|p| p.contains("the row it chains to is missing")),
        "the chain names the row after the gap: {all:?}"
    );
}

#[tokio::test]
async fn verify_names_swapped_and_removed_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = trail(dir.path()).await;
    let a = std::fs::read(&files[0]).unwrap();
    let b = std::fs::read(&files[1]).unwrap();
    std::fs::write(&files[0], &b).unwrap();
    std::fs::write(&files[1], &a).unwrap();
    let report = verify(dir.path(), None, None).unwrap();
    assert_eq!(report.first_problem().unwrap().file, files[0]);
    assert!(report.problems.iter().any(|p| p.file == files[1]));

    std::fs::write(&files[0], &a).unwrap();
    std::fs::write(&files[1], &b).unwrap();
    assert!(
        verify(dir.path(), None, None).unwrap().is_ok(),
        "swapping back restores the trail"
    );
    std::fs::remove_file(&files[2]).unwrap();
    let report = verify(dir.path(), None, None).unwrap();
    let p = report.first_problem().unwrap();
    assert_eq!(p.file, files[2]);
    assert!(p.reason.contains("missing"), "{p}");
}

#[tokio::test]
async fn verify_names_an_edited_manifest_line() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path()).await;
    let manifest = dir.path().join("manifests/date=2026-09-21/manifest.jsonl");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let edited = text.replacen("\"rows\":1,", "\"rows\":7,", 1);
    assert_ne!(text, edited);
    std::fs::write(&manifest, edited).unwrap();
    let report = verify(dir.path(), None, None).unwrap();
    let p = report.first_problem().unwrap();
    assert_eq!(p.file, manifest);
    assert!(p.reason.contains("manifest line altered"), "{p}");
}

#[tokio::test]
async fn signed_manifests_verify_with_the_key_and_fail_when_a_signature_is_forged() {
    use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey, EncodePublicKey};
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let key_path = dir.path().join("sign.pem");
    std::fs::write(
        &key_path,
        key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let pub_path = dir.path().join("verify.pem");
    std::fs::write(
        &pub_path,
        key.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    let audit = dir.path().join("audit");
    let mut o = opts(&audit);
    o.signing_key = Some(key_path);
    let (rec, task) = Recorder::open(o).await.unwrap();
    rec.action(action("s1", 1)).await.unwrap();
    task.shutdown().await.unwrap();
    assert!(verify(&audit, None, Some(&pub_path)).unwrap().is_ok());

    let other = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let other_path = dir.path().join("other.pem");
    std::fs::write(
        &other_path,
        other
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    let report = verify(&audit, None, Some(&other_path)).unwrap();
    assert!(
        report.first_problem().unwrap().reason.contains("signature"),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn retention_removes_old_days_and_notes_it_in_the_manifest_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.retain_days = Some(30);
    o.roll_max_rows = 2;
    let (rec, task) = Recorder::open(o).await.unwrap();
    let now = recorder::now_micros();
    let mut old = action("old", 1);
    old.time = now - 40 * 86_400_000_000;
    rec.action(old.clone()).await.unwrap();
    old.seq = 2;
    rec.action(old).await.unwrap();
    let mut fresh = action("new", 1);
    fresh.time = now;
    rec.action(fresh.clone()).await.unwrap();
    fresh.seq = 2;
    rec.action(fresh).await.unwrap();
    task.shutdown().await.unwrap();
    let rows = csv(&query(
        dir.path(),
        "SELECT session_id, seq FROM actions ORDER BY session_id, seq",
    )
    .await
    .unwrap());
    assert_eq!(rows, "session_id,seq\nnew,1\nnew,2\n");
    let report = verify(dir.path(), None, None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let manifest = std::fs::read_to_string(
        dir.path()
            .join(format!("manifests/date={today}/manifest.jsonl")),
    )
    .unwrap();
    assert!(manifest.contains("\"kind\":\"retention\""), "{manifest}");
}
