#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Files the recorder writes are plain Parquet: pyarrow reads the Hive-partitioned tables.
//! Skipped (with a note) when pyarrow is not importable, unless `BASTION_REQUIRE_PYARROW=1`
//! (set by `scripts/test` once it installed pyarrow), where a missing pyarrow fails.

mod common;

use std::process::Command;

use common::*;
use recorder::Recorder;

const READER: &str = r#"
import glob, json, sys
import pyarrow.parquet as pq
root = sys.argv[1]
out = {}
for table in ["actions", "outcomes", "sessions", "session_ends"]:
    t = pq.read_table(root + "/" + table, partitioning="hive")
    rows = t.to_pylist()
    for r in rows:
        for k, v in list(r.items()):
            if not isinstance(v, (str, int, float, list, type(None))):
                r[k] = str(v)
    out[table] = {
        "num_rows": t.num_rows,
        "columns": t.column_names,
        "rows": rows,
        "version": pq.read_metadata(sorted(glob.glob(root + "/" + table + "/date=*/*.parquet"))[0])
            .metadata[b"bastion.schema_version"].decode(),
    }
print(json.dumps(out))
"#;

fn pyarrow_available() -> bool {
    Command::new("python3")
        .args(["-c", "import pyarrow.parquet"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn pyarrow_reads_the_hive_partitioned_tables_the_recorder_writes() {
    if !pyarrow_available() {
        assert_ne!(
            std::env::var("BASTION_REQUIRE_PYARROW").as_deref(),
            Ok("1"),
            "BASTION_REQUIRE_PYARROW=1 but `python3 -c 'import pyarrow'` fails"
        );
        eprintln!("skipped: pyarrow is not importable (pip install pyarrow to run this test)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.roll_max_rows = 3; // several files per table
    let (rec, task) = Recorder::open(o).await.unwrap();
    rec.session_start(start("s1")).await.unwrap();
    for seq in 1..=7 {
        let mut a = action("s1", seq);
        if seq == 2 {
            a.risk_tags = vec!["no_where".into(), "bulk".into()];
            a.text = "DELETE FROM orders -- naïve ✓".into();
        }
        if seq == 7 {
            // The next day: a second partition.
            a.time += 86_400_000_000;
        }
        rec.action(a).await.unwrap();
        rec.outcome(outcome("s1", seq)).await.unwrap();
    }
    rec.session_end_with_recording(
        end("s1"),
        Some("recordings/date=2026-09-21/s1-0.cast".into()),
    )
    .await
    .unwrap();
    task.shutdown().await.unwrap();
    assert!(parquet_files(dir.path(), "actions").len() > 2);

    let out = Command::new("python3")
        .args(["-c", READER, dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyarrow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions = &v["actions"];
    assert_eq!(actions["num_rows"], 7);
    assert_eq!(actions["version"], recorder::SCHEMA_VERSION.to_string());
    let mut rows: Vec<&serde_json::Value> = actions["rows"].as_array().unwrap().iter().collect();
    rows.sort_by_key(|r| r["seq"].as_i64());
    let seqs: Vec<i64> = rows.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(rows[1]["text"], "DELETE FROM orders -- naïve ✓");
    assert_eq!(
        rows[1]["risk_tags"],
        serde_json::json!(["no_where", "bulk"])
    );
    assert_eq!(rows[0]["objects"], serde_json::json!(["public.orders"]));
    assert_eq!(rows[0]["policy_ids"], serde_json::json!(["p1", "p2"]));
    assert_eq!(rows[0]["date"], "2026-09-21");
    assert_eq!(rows[6]["date"], "2026-09-22");
    assert_eq!(rows[0]["hash"].as_str().unwrap().len(), 64);
    // One chain per session through actions and outcomes: action 1, outcome 1, action 2, ...
    assert_eq!(v["outcomes"]["num_rows"], 7);
    let outcome1 = v["outcomes"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["seq"] == 1)
        .unwrap();
    assert_eq!(outcome1["prev_hash"], rows[0]["hash"]);
    assert_eq!(rows[1]["prev_hash"], outcome1["hash"]);
    assert_eq!(v["sessions"]["rows"][0]["identity"], "alice");
    let end = &v["session_ends"]["rows"][0];
    assert_eq!(end["end_reason"], "client_closed");
    assert_eq!(end["recording"], "recordings/date=2026-09-21/s1-0.cast");
}
