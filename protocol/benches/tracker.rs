//! Throughput of the terminal line tracker on `cat` of a large file: 100 MiB of text lines as a
//! pty delivers them (`\r\n` endings) in 32 KiB chunks, against vt100 alone for comparison.
//! Run with `cargo bench -p protocol --bench tracker`; prints MiB/s, then one JSON line
//! `{"bench":"tracker","mib_per_s":...}` for scripts.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Instant;

use protocol::terminal::TerminalLineTracker;

const TOTAL_BYTES: usize = 100 << 20;
const CHUNK_BYTES: usize = 32 << 10;

/// Text lines of varying length (some wider than the screen), like a log file or source code.
fn cat_output() -> Vec<u8> {
    let words = [
        "the",
        "bastion",
        "reads",
        "every",
        "command",
        "line",
        "from",
        "screen",
        "2024-05-01T12:00:00Z",
        "INFO",
        "request",
        "id=42",
        "status=200",
        "latency_ms=3",
        "{\"key\":",
        "\"value\"}",
    ];
    let mut out = Vec::with_capacity(TOTAL_BYTES + 256);
    let mut state: u32 = 12345;
    while out.len() < TOTAL_BYTES {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let words_in_line = 2 + (state >> 16) % 24;
        for i in 0..words_in_line {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(words[(state >> 16) as usize % words.len()].as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    out.truncate(TOTAL_BYTES);
    out
}

fn mib_per_second(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / seconds
}

fn main() {
    let data = cat_output();

    let mut parser = vt100::Parser::new(24, 80, 0);
    let started = Instant::now();
    for chunk in data.chunks(CHUNK_BYTES) {
        parser.process(chunk);
    }
    let vt100_alone = mib_per_second(data.len(), started.elapsed().as_secs_f64());
    std::hint::black_box(parser.screen().cursor_position());

    let mut tracker = TerminalLineTracker::new(24, 80);
    tracker.feed_output(b"$ ");
    tracker.on_input(b"c");
    let started = Instant::now();
    for chunk in data.chunks(CHUNK_BYTES) {
        tracker.feed_output(chunk);
    }
    let with_tracker = mib_per_second(data.len(), started.elapsed().as_secs_f64());
    std::hint::black_box(tracker.screen().cursor_position());

    println!(
        "cat of {} MiB in {} KiB chunks:",
        TOTAL_BYTES >> 20,
        CHUNK_BYTES >> 10
    );
    println!("  vt100::Parser alone       {vt100_alone:8.1} MiB/s");
    println!("  TerminalLineTracker       {with_tracker:8.1} MiB/s (target >= 200)");
    println!(
        "{{\"bench\":\"tracker\",\"mib_per_s\":{with_tracker:.1},\"vt100_alone_mib_per_s\":{vt100_alone:.1},\"total_mib\":{},\"chunk_kib\":{}}}",
        TOTAL_BYTES >> 20,
        CHUNK_BYTES >> 10
    );
}
