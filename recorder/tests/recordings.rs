#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Terminal recordings: where casts live, the `recording` column of the `sessions` view, and
//! finding every cast of a session for replay.

mod common;

use std::path::Path;

use chrono::NaiveDate;
use common::*;
use recorder::{
    query, recording_path, recording_rel_path, replay, session_casts, CastWriter, Recorder,
};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn write_cast(path: &Path, text: &str) {
    let mut w = CastWriter::new(path, 80, 24, &[]).unwrap();
    w.output(text.as_bytes()).unwrap();
    w.finish().unwrap();
}

fn played(path: &Path) -> String {
    let mut out = Vec::new();
    replay(path, 0.0, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn recording_paths_follow_the_layout_and_odd_session_ids_stay_inside() {
    let audit = Path::new("/var/lib/bastion/audit");
    assert_eq!(
        recording_path(audit, "s-42", 3, day("2026-09-21")),
        Path::new("/var/lib/bastion/audit/recordings/date=2026-09-21/s-42-3.cast")
    );
    assert_eq!(
        recording_rel_path("s-42", 0, day("2026-09-21")),
        Path::new("recordings/date=2026-09-21/s-42-0.cast")
    );
    for hostile in ["../../etc/passwd", "/abs", "..", ".", "", "a/b\\c\0d"] {
        let rel = recording_rel_path(hostile, 1, day("2026-09-21"));
        let parts: Vec<_> = rel.components().collect();
        assert_eq!(parts.len(), 3, "{hostile:?} -> {rel:?}");
        assert!(
            parts
                .iter()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{hostile:?} -> {rel:?}"
        );
        assert!(rel.starts_with("recordings/date=2026-09-21"), "{rel:?}");
    }
}

#[tokio::test]
async fn the_sessions_view_shows_the_end_rows_recording_and_replay_finds_every_channel_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (rec, task) = Recorder::open(opts(dir)).await.unwrap();
    rec.session_start(start("s1")).await.unwrap();
    // Two channels the first day, one after midnight, and a session whose id starts with
    // `s1-` that must not be taken for a channel of s1.
    write_cast(&recording_path(dir, "s1", 0, day("2026-09-21")), "zero\r\n");
    write_cast(
        &recording_path(dir, "s1", 7, day("2026-09-21")),
        "seven\r\n",
    );
    write_cast(
        &recording_path(dir, "s1", 1, day("2026-09-22")),
        "next day\r\n",
    );
    write_cast(
        &recording_path(dir, "s1-2", 0, day("2026-09-21")),
        "other\r\n",
    );
    let rel = recording_rel_path("s1", 0, day("2026-09-21"));
    let rel = rel.to_str().unwrap().to_string();
    rec.session_end_with_recording(end("s1"), Some(rel.clone()))
        .await
        .unwrap();
    rec.session_start(start("s2")).await.unwrap();
    rec.session_end(end("s2")).await.unwrap();
    let sql = "SELECT session_id, recording, end_reason FROM sessions ORDER BY session_id";
    let expected =
        format!("session_id,recording,end_reason\ns1,{rel},client_closed\ns2,,client_closed\n");
    // From the journal first, then from Parquet.
    assert_eq!(csv(&query(dir, sql).await.unwrap()), expected);
    task.shutdown().await.unwrap();
    assert_eq!(csv(&query(dir, sql).await.unwrap()), expected);
    let report = recorder::verify(dir, None, None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);

    let found = session_casts(dir, "s1").await.unwrap();
    assert!(found.known_session);
    assert_eq!(found.recorded.as_deref(), Some(rel.as_str()));
    let texts: Vec<String> = found.casts.iter().map(|p| played(p)).collect();
    assert_eq!(texts, ["zero\r\n", "seven\r\n", "next day\r\n"]);

    let none = session_casts(dir, "s2").await.unwrap();
    assert!(none.known_session && none.casts.is_empty(), "{none:?}");
    let unknown = session_casts(dir, "nope").await.unwrap();
    assert!(!unknown.known_session && unknown.casts.is_empty());
}

#[tokio::test]
async fn a_start_rows_recording_shows_when_the_end_has_none_and_casts_are_found_without_a_row() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (rec, task) = Recorder::open(opts(dir)).await.unwrap();
    let mut s = start("s1");
    s.recording = Some("recordings/date=2026-09-21/s1-0.cast".into());
    rec.session_start(s).await.unwrap();
    rec.session_end(end("s1")).await.unwrap();
    // A session the bastion crashed in: its end row never named the cast.
    rec.session_start(start("s3")).await.unwrap();
    task.shutdown().await.unwrap();
    write_cast(
        &recording_path(dir, "s3", 0, day("2026-09-21")),
        "crashed\r\n",
    );
    let rows = csv(&query(
        dir,
        "SELECT session_id, recording FROM sessions ORDER BY session_id",
    )
    .await
    .unwrap());
    assert_eq!(
        rows,
        "session_id,recording\ns1,recordings/date=2026-09-21/s1-0.cast\ns3,\n"
    );
    let found = session_casts(dir, "s3").await.unwrap();
    assert_eq!(found.casts.len(), 1);
    assert_eq!(played(&found.casts[0]), "crashed\r\n");
}

#[tokio::test]
async fn a_recording_path_outside_the_recordings_directory_is_never_played() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    let secret = tmp.path().join("secret.cast");
    write_cast(&secret, "secret\r\n");
    let (rec, task) = Recorder::open(opts(&dir)).await.unwrap();
    for (i, path) in [
        "../secret.cast".to_string(),
        secret.to_str().unwrap().to_string(),
        "recordings/date=2026-09-21/../../../secret.cast".to_string(),
        // Another session's cast.
        "recordings/date=2026-09-21/s9-0.cast".to_string(),
    ]
    .into_iter()
    .enumerate()
    {
        let sid = format!("s{i}");
        rec.session_start(start(&sid)).await.unwrap();
        rec.session_end_with_recording(end(&sid), Some(path))
            .await
            .unwrap();
    }
    write_cast(&recording_path(&dir, "s9", 0, day("2026-09-21")), "s9\r\n");
    // A symlink dressed as a cast of s0.
    let link = recording_path(&dir, "s0", 1, day("2026-09-21"));
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    task.shutdown().await.unwrap();
    for i in 0..4 {
        let found = session_casts(&dir, &format!("s{i}")).await.unwrap();
        assert!(found.recorded.is_some());
        assert!(found.casts.is_empty(), "s{i}: {:?}", found.casts);
    }
}
