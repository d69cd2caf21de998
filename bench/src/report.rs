//! Writes a run's `summary.md` and plots from its `raw.jsonl`.
use crate::measurements::Measurements;
use crate::stats::cell;
use crate::{crate_suites, pg_suite, plot, ssh_suite};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// What [`write`] produced.
#[derive(Debug)]
pub struct Written {
    pub summary: PathBuf,
    pub plots: Vec<PathBuf>,
    /// Plots that could not be drawn, with why (the tables are still written).
    pub plot_errors: Vec<String>,
    pub rejected_lines: usize,
}

/// Reads `<dir>/raw.jsonl`, writes `<dir>/summary.md` and `<dir>/*.png`. `machine` is a one-line
/// description of where it ran (date, host, cores) for the summary's heading.
pub fn write(dir: &Path, machine: &str) -> anyhow::Result<Written> {
    let m = Measurements::read(&dir.join("raw.jsonl"))?;
    let mut md = format!("# bastion benchmarks\n\n{machine}\n\n");
    let mut plots = Vec::new();
    let mut plot_errors = Vec::new();
    let mut draw = |name: &str, bars: plot::BarGroups, md: &mut String| {
        let path = dir.join(name);
        match plot::grouped_bars(&path, &bars) {
            Ok(()) => {
                let _ = writeln!(md, "\n![{}]({name})\n", bars.title);
                plots.push(path);
            }
            Err(e) => plot_errors.push(format!("{name}: {e}")),
        }
    };

    md.push_str("## Headline\n\n");
    if !m.pg_runs.is_empty() {
        let (vs_direct, vs_bouncer) = pg_suite::headline(&m.pg_runs);
        let _ = writeln!(
            md,
            "- PostgreSQL (pgbench, geometric mean of median TPS ratios over every configuration): \
             bastion/PgBouncer **{}**, bastion/direct **{}**.",
            cell(vs_bouncer, 2),
            cell(vs_direct, 2)
        );
    }
    for (kind, r) in ssh_suite::headline(&m.ssh_runs) {
        if r.is_some() {
            let _ = writeln!(
                md,
                "- SSH {kind} throughput: bastion/ProxyJump **{}**.",
                cell(r, 2)
            );
        }
    }

    if !m.pg_runs.is_empty() {
        md.push_str("\n## PostgreSQL: pgbench, direct vs PgBouncer (session mode) vs bastion\n\n");
        md.push_str(&pg_suite::throughput_table(&m.pg_runs));
        draw("pg_tps.png", pg_suite::throughput_bars(&m.pg_runs), &mut md);
    }
    if !m.pg_connects.is_empty() {
        md.push_str("\n### Connection set-up\n\n");
        md.push_str(&pg_suite::connect_table(&m.pg_connects));
    }
    if !m.pg_idle.is_empty() {
        md.push_str("\n### Idle-session memory\n\n");
        md.push_str(&pg_suite::idle_table(&m.pg_idle));
    }
    if !m.ssh_runs.is_empty() {
        md.push_str("\n## SSH: direct vs OpenSSH ProxyJump vs bastion\n\n");
        md.push_str(&ssh_suite::table(&m.ssh_runs));
        draw(
            "ssh_relative.png",
            ssh_suite::relative_bars(&m.ssh_runs),
            &mut md,
        );
    }
    for (suite, title) in [
        (
            "policy",
            "Policy decisions (`cargo bench -p policies --bench decide`)",
        ),
        (
            "recorder",
            "Recorder (`cargo bench -p recorder --bench throughput`)",
        ),
        (
            "tracker",
            "Terminal line tracker (`cargo bench -p protocol --bench tracker`)",
        ),
    ] {
        if let Some(t) = crate_suites::table(&m.crate_figures, suite) {
            let _ = write!(md, "\n## {title}\n\n{t}");
        }
    }
    if !m.rejected.is_empty() {
        md.push_str("\n## Lines not understood\n\n");
        for (line, why) in &m.rejected {
            let _ = writeln!(md, "- raw.jsonl line {line}: {why}");
        }
    }
    let summary = dir.join("summary.md");
    std::fs::write(&summary, md)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", summary.display()))?;
    Ok(Written {
        summary,
        plots,
        plot_errors,
        rejected_lines: m.rejected.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_directory_gets_a_summary_with_every_suite() {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = String::new();
        for (target, tps) in [("direct", 1000.0), ("pgbouncer", 900.0), ("bastion", 850.0)] {
            raw += &format!(
                "{{\"suite\":\"pg\",\"kind\":\"pgbench\",\"round\":1,\"script\":\"select\",\"mode\":\"simple\",\"clients\":1,\"target\":\"{target}\",\"tps\":{tps},\"tx\":1000}}\n"
            );
        }
        raw += r#"{"suite":"ssh","kind":"sftp","round":1,"target":"bastion","seconds":2,"bytes":104857600}"#;
        raw += "\n";
        raw += r#"{"suite":"ssh","kind":"sftp","round":1,"target":"proxyjump","seconds":1,"bytes":104857600}"#;
        raw += "\n";
        raw += r#"{"suite":"recorder","bench":"rows_per_s_os","value":250000}"#;
        raw += "\nnot json\n";
        std::fs::write(dir.path().join("raw.jsonl"), raw).unwrap();
        let w = write(dir.path(), "2026-11-23, test machine").unwrap();
        let md = std::fs::read_to_string(&w.summary).unwrap();
        assert!(md.contains("bastion/PgBouncer **0.94**"), "{md}");
        assert!(
            md.contains("SSH sftp throughput: bastion/ProxyJump **0.50**"),
            "{md}"
        );
        assert!(md.contains("| rows_per_s_os | 250000 |"), "{md}");
        assert!(md.contains("raw.jsonl line 7: not JSON"), "{md}");
        assert_eq!(w.rejected_lines, 1);
    }
}
