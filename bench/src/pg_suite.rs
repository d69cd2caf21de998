//! The PostgreSQL suite's tables: pgbench throughput and latency per configuration (direct,
//! PgBouncer session mode, bastion), connection set-up cost, and idle-session memory. Ratios
//! compare medians over the interleaved rounds of one run.
use crate::measurements::{PgConnect, PgIdle, PgRun};
use crate::plot::BarGroups;
use crate::stats::{cell, geometric_mean, median, ratio};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The three targets, in table order.
pub const TARGETS: [(&str, &str); 3] = [
    ("direct", "direct"),
    ("pgbouncer", "PgBouncer"),
    ("bastion", "bastion"),
];

type Config = (String, String, u32);

fn configs(runs: &[PgRun]) -> Vec<Config> {
    let set: BTreeSet<Config> = runs
        .iter()
        .map(|r| (r.script.clone(), r.mode.clone(), r.clients))
        .collect();
    set.into_iter().collect()
}

fn of<'a>(runs: &'a [PgRun], c: &'a Config, target: &'a str) -> impl Iterator<Item = &'a PgRun> {
    runs.iter()
        .filter(move |r| r.target == target && r.script == c.0 && r.mode == c.1 && r.clients == c.2)
}

fn median_tps(runs: &[PgRun], c: &Config, target: &str) -> Option<f64> {
    median(of(runs, c, target).map(|r| r.tps))
}

/// CPU seconds per 10,000 transactions of a proxy over all its runs of `c`.
fn cpu_per_10k(runs: &[PgRun], c: &Config, target: &str) -> Option<f64> {
    let (cpu, tx) = of(runs, c, target)
        .filter_map(|r| r.proxy_cpu_s.map(|cpu| (cpu, r.tx)))
        .fold((None, 0u64), |(sum, tx), (cpu, n)| {
            (Some(sum.unwrap_or(0.0) + cpu), tx + n)
        });
    cpu.filter(|_| tx > 0).map(|cpu| cpu / tx as f64 * 10_000.0)
}

/// The headline: geometric means over all configurations of bastion/direct and bastion/PgBouncer TPS.
pub fn headline(runs: &[PgRun]) -> (Option<f64>, Option<f64>) {
    let cs = configs(runs);
    let against = |peer: &str| {
        geometric_mean(
            cs.iter()
                .filter_map(|c| ratio(median_tps(runs, c, "bastion"), median_tps(runs, c, peer))),
        )
    };
    (against("direct"), against("pgbouncer"))
}

/// Markdown for the throughput table.
pub fn throughput_table(runs: &[PgRun]) -> String {
    let mut out = String::new();
    let rounds = runs.iter().map(|r| r.round).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "Median over {rounds} interleaved rounds. Latency is per transaction as pgbench reports it \
         (p50 / p99, ms). CPU is the proxy process's user+system seconds per 10k transactions.\n"
    );
    out.push_str(
        "| script | mode | clients | direct TPS | PgBouncer TPS | bastion TPS | bastion/direct | \
         bastion/PgBouncer | p50 ms direct / PgB / bastion | p99 ms direct / PgB / bastion | \
         CPU s/10k tx PgB / bastion |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in configs(runs) {
        let tps: Vec<Option<f64>> = TARGETS.iter().map(|t| median_tps(runs, &c, t.0)).collect();
        let lat = |pick: fn(&PgRun) -> Option<f64>| {
            TARGETS
                .iter()
                .map(|t| cell(median(of(runs, &c, t.0).filter_map(pick)), 2))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
            c.0,
            c.1,
            c.2,
            cell(tps[0], 0),
            cell(tps[1], 0),
            cell(tps[2], 0),
            cell(ratio(tps[2], tps[0]), 2),
            cell(ratio(tps[2], tps[1]), 2),
            lat(|r| r.lat_p50_ms),
            lat(|r| r.lat_p99_ms),
            cell(cpu_per_10k(runs, &c, "pgbouncer"), 2),
            cell(cpu_per_10k(runs, &c, "bastion"), 2),
        );
    }
    out
}

/// Bars of median TPS per configuration, one bar per target.
pub fn throughput_bars(runs: &[PgRun]) -> BarGroups {
    let cs = configs(runs);
    BarGroups {
        title: "pgbench TPS (median of interleaved rounds)".into(),
        y_label: "transactions per second".into(),
        groups: cs
            .iter()
            .map(|c| format!("{} {} c{}", c.0, c.1, c.2))
            .collect(),
        series: TARGETS
            .iter()
            .map(|t| {
                (
                    t.1.to_string(),
                    cs.iter()
                        .map(|c| median_tps(runs, c, t.0).unwrap_or(0.0))
                        .collect(),
                )
            })
            .collect(),
    }
}

/// Markdown for connection set-up (`pgbench -C`).
pub fn connect_table(connects: &[PgConnect]) -> String {
    let conn = |t: &str| median(connects.iter().filter(|c| c.target == t).map(|c| c.conn_ms));
    let tps = |t: &str| median(connects.iter().filter(|c| c.target == t).map(|c| c.tps));
    let mut out = String::from(
        "New connection per transaction (`pgbench -C -S`); the bastion's connection includes \
         TLS-free SCRAM to the bastion and its own SCRAM to PostgreSQL.\n\n\
         | target | median connection time ms | TPS | connection time vs direct |\n|---|---|---|---|\n",
    );
    for (t, name) in TARGETS {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            cell(conn(t), 2),
            cell(tps(t), 0),
            cell(ratio(conn(t), conn("direct")), 2)
        );
    }
    out
}

/// Markdown for idle-session memory.
pub fn idle_table(idle: &[PgIdle]) -> String {
    let mut out = String::from(
        "| idle sessions | bastion RSS before (MiB) | after (MiB) | per session (KiB) |\n|---|---|---|---|\n",
    );
    for i in idle {
        let per =
            (i.rss_after_kb.saturating_sub(i.rss_before_kb)) as f64 / f64::from(i.sessions.max(1));
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {per:.1} |",
            i.sessions,
            i.rss_before_kb as f64 / 1024.0,
            i.rss_after_kb as f64 / 1024.0
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(round: u32, target: &str, tps: f64) -> PgRun {
        PgRun {
            round,
            script: "select".into(),
            mode: "simple".into(),
            clients: 8,
            target: target.into(),
            tps,
            lat_p50_ms: Some(1.0),
            lat_p99_ms: Some(2.0),
            tx: 10_000,
            proxy_cpu_s: Some(1.0),
        }
    }

    #[test]
    fn ratios_are_of_medians_over_rounds() {
        let runs = vec![
            run(1, "direct", 1000.0),
            run(2, "direct", 1200.0),
            run(3, "direct", 1100.0),
            run(1, "pgbouncer", 800.0),
            run(2, "pgbouncer", 800.0),
            run(3, "pgbouncer", 800.0),
            run(1, "bastion", 550.0),
            run(2, "bastion", 10.0),
            run(3, "bastion", 550.0),
        ];
        let (vs_direct, vs_bouncer) = headline(&runs);
        assert!((vs_direct.unwrap() - 0.5).abs() < 1e-9);
        assert!((vs_bouncer.unwrap() - 550.0 / 800.0).abs() < 1e-9);
        let table = throughput_table(&runs);
        assert!(
            table.contains("| select | simple | 8 | 1100 | 800 | 550 | 0.50 | 0.69 |"),
            "{table}"
        );
        // 3 CPU s over 30k transactions.
        assert!(table.contains("| 1.00 / 1.00 |"), "{table}");
        let bars = throughput_bars(&runs);
        assert_eq!(bars.series[2].1, vec![550.0]);
    }

    #[test]
    fn idle_memory_is_per_session() {
        let t = idle_table(&[PgIdle {
            sessions: 1000,
            rss_before_kb: 10_240,
            rss_after_kb: 10_240 + 50_000,
        }]);
        assert!(t.contains("| 1000 | 10.0 | 58.8 | 50.0 |"), "{t}");
    }
}
