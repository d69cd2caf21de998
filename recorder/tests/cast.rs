#![allow(clippy::unwrap_used, clippy::expect_used)]
//! asciicast v2 recording and replay.

use recorder::{replay, CastWriter};

#[test]
fn a_cast_records_output_split_mid_utf8_and_replays_it_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("casts/s1.cast");
    let mut w =
        CastWriter::new(&path, 80, 24, &[("TERM".into(), "xterm-256color".into())]).unwrap();
    w.output(b"$ echo h\xc3").unwrap();
    w.output(b"\xa9llo\r\n").unwrap();
    w.input(b"ls\r").unwrap();
    w.resize(100, 30).unwrap();
    w.output("héllo\r\n$ ".as_bytes()).unwrap();
    w.finish().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(header["width"], 80);
    assert_eq!(header["env"]["TERM"], "xterm-256color");
    let events: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e[1].as_str().unwrap()).collect();
    assert_eq!(kinds, ["o", "o", "i", "r", "o"]);
    assert_eq!(events[3][2], "100x30");
    let mut out = Vec::new();
    replay(&path, 0.0, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "$ echo héllo\r\nhéllo\r\n$ "
    );
}

#[test]
fn replay_names_the_line_of_a_damaged_cast() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.cast");
    std::fs::write(
        &path,
        "{\"version\":2,\"width\":80,\"height\":24}\n[0.1,\"o\",\"ok\"]\nnot json\n",
    )
    .unwrap();
    let err = replay(&path, 0.0, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
}
