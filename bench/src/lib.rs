//! Benchmark report for `scripts/bench`: the scripts write one JSON object per measurement
//! (`raw.jsonl`, each with a `suite` field); [`report::write`] turns them into `summary.md` (a
//! markdown table per suite with ratios to direct and to the peer, taken from the same
//! interleaved run) and PNG plots next to it. The load generators the scripts need beyond stock
//! tools (`pg-idle-sessions`) live here as binaries too.
pub mod crate_suites;
pub mod measurements;
pub mod pg_suite;
pub mod plot;
pub mod report;
pub mod ssh_suite;
pub mod stats;
