//! The SSH suite's table: file transfer throughput (scp, sftp), `ssh host true` round trips and
//! keystroke echo latency, direct vs OpenSSH ProxyJump vs the bastion, medians over the
//! interleaved rounds of one run.
use crate::measurements::SshRun;
use crate::plot::BarGroups;
use crate::stats::{cell, median, percentile, ratio};
use std::fmt::Write;

/// The three targets, in table order.
pub const TARGETS: [(&str, &str); 3] = [
    ("direct", "direct"),
    ("proxyjump", "ProxyJump"),
    ("bastion", "bastion"),
];

/// The measured kinds, in table order: (kind, label, whether bigger is better).
const KINDS: [(&str, &str); 4] = [
    ("scp", "scp upload, MiB/s"),
    ("sftp", "sftp upload, MiB/s"),
    ("true", "`ssh host true`, ms"),
    ("echo", "keystroke echo, ms"),
];

fn of<'a>(runs: &'a [SshRun], kind: &'a str, target: &'a str) -> impl Iterator<Item = &'a SshRun> {
    runs.iter()
        .filter(move |r| r.kind == kind && r.target == target)
}

/// The figure of one kind for one target: MiB/s for transfers, milliseconds otherwise.
fn value(r: &SshRun) -> f64 {
    if r.bytes > 0 && r.seconds > 0.0 {
        r.bytes as f64 / (1024.0 * 1024.0) / r.seconds
    } else {
        r.seconds * 1000.0
    }
}

fn median_of(runs: &[SshRun], kind: &str, target: &str) -> Option<f64> {
    median(of(runs, kind, target).map(value))
}

/// Headline: bastion throughput relative to ProxyJump for scp and sftp.
pub fn headline(runs: &[SshRun]) -> Vec<(String, Option<f64>)> {
    ["scp", "sftp"]
        .iter()
        .map(|k| {
            (
                k.to_string(),
                ratio(
                    median_of(runs, k, "bastion"),
                    median_of(runs, k, "proxyjump"),
                ),
            )
        })
        .collect()
}

/// Markdown for the SSH table.
pub fn table(runs: &[SshRun]) -> String {
    let mut out = String::from(
        "Medians over interleaved rounds. Ratios are bastion ÷ other: above 1 is better for \
         MiB/s, below 1 is better for ms. Echo rows give median (p99).\n\n\
         | measure | direct | ProxyJump | bastion | bastion/direct | bastion/ProxyJump |\n\
         |---|---|---|---|---|---|\n",
    );
    for (kind, label) in KINDS {
        if !runs.iter().any(|r| r.kind == kind) {
            continue;
        }
        let m: Vec<Option<f64>> = TARGETS.iter().map(|t| median_of(runs, kind, t.0)).collect();
        let shown: Vec<String> = TARGETS
            .iter()
            .zip(&m)
            .map(|(t, v)| {
                if kind == "echo" {
                    let p99 = percentile(of(runs, kind, t.0).map(value), 99.0);
                    format!("{} ({})", cell(*v, 2), cell(p99, 2))
                } else {
                    cell(*v, if kind == "true" { 1 } else { 0 })
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {} |",
            shown[0],
            shown[1],
            shown[2],
            cell(ratio(m[2], m[0]), 2),
            cell(ratio(m[2], m[1]), 2)
        );
    }
    out
}

/// Bars of each measure relative to direct (direct = 1.0).
pub fn relative_bars(runs: &[SshRun]) -> BarGroups {
    let kinds: Vec<(&str, &str)> = KINDS
        .iter()
        .copied()
        .filter(|(k, _)| runs.iter().any(|r| r.kind == *k))
        .collect();
    BarGroups {
        title: "SSH, relative to direct (MiB/s or ms ÷ direct's)".into(),
        y_label: "ratio to direct".into(),
        groups: kinds.iter().map(|k| k.0.to_string()).collect(),
        series: TARGETS
            .iter()
            .map(|t| {
                (
                    t.1.to_string(),
                    kinds
                        .iter()
                        .map(|k| {
                            ratio(median_of(runs, k.0, t.0), median_of(runs, k.0, "direct"))
                                .unwrap_or(0.0)
                        })
                        .collect(),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: &str, target: &str, seconds: f64, bytes: u64) -> SshRun {
        SshRun {
            round: 1,
            kind: kind.into(),
            target: target.into(),
            seconds,
            bytes,
        }
    }

    #[test]
    fn transfers_are_mib_per_second_and_round_trips_are_ms() {
        let mib = 1 << 20;
        let runs = vec![
            run("scp", "direct", 1.0, 100 * mib),
            run("scp", "proxyjump", 2.0, 100 * mib),
            run("scp", "bastion", 1.25, 100 * mib),
            run("true", "direct", 0.010, 0),
            run("true", "proxyjump", 0.020, 0),
            run("true", "bastion", 0.015, 0),
        ];
        let t = table(&runs);
        assert!(
            t.contains("| scp upload, MiB/s | 100 | 50 | 80 | 0.80 | 1.60 |"),
            "{t}"
        );
        assert!(
            t.contains("| `ssh host true`, ms | 10.0 | 20.0 | 15.0 | 1.50 | 0.75 |"),
            "{t}"
        );
        assert!(!t.contains("sftp"));
        let h = headline(&runs);
        assert!((h[0].1.unwrap() - 1.6).abs() < 1e-9);
        assert_eq!(h[1].1, None);
        let bars = relative_bars(&runs);
        assert_eq!(bars.groups, vec!["scp", "true"]);
        assert!((bars.series[2].1[0] - 0.8).abs() < 1e-9);
    }
}
