//! The policy and recorder suites: the crates' own benchmarks print one JSON object per figure
//! (`{"suite":"policy","bench":"decide_sql_scratch","median_us":..,"p99_us":..,"target_us":..}`);
//! this renders them as one table per suite with every numeric field as a column.
use crate::measurements::CrateFigure;
use std::collections::BTreeSet;
use std::fmt::Write;

/// Markdown table of the figures of `suite`, `None` when the run has none.
pub fn table(figures: &[CrateFigure], suite: &str) -> Option<String> {
    let rows: Vec<&CrateFigure> = figures.iter().filter(|f| f.suite == suite).collect();
    if rows.is_empty() {
        return None;
    }
    let columns: BTreeSet<&str> = rows
        .iter()
        .flat_map(|f| f.fields.iter().map(|(k, _)| k.as_str()))
        .collect();
    let mut out = format!(
        "| bench | {} |\n|---|{}\n",
        columns.iter().copied().collect::<Vec<_>>().join(" | "),
        "---|".repeat(columns.len())
    );
    for f in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| {
                f.fields
                    .iter()
                    .find(|(k, _)| k == c)
                    .map(|(_, v)| format_number(*v))
                    .unwrap_or_else(|| "-".into())
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", f.bench, cells.join(" | "));
    }
    Some(out)
}

fn format_number(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e15) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_numeric_field_becomes_a_column() {
        let figs = vec![
            CrateFigure {
                suite: "policy".into(),
                bench: "cached".into(),
                fields: vec![("median_us".into(), 8.5), ("p99_us".into(), 12.0)],
            },
            CrateFigure {
                suite: "policy".into(),
                bench: "shell".into(),
                fields: vec![("median_us".into(), 244.123)],
            },
        ];
        let t = table(&figs, "policy").unwrap();
        assert!(
            t.starts_with("| bench | median_us | p99_us |\n|---|---|---|\n"),
            "{t}"
        );
        assert!(t.contains("| cached | 8.50 | 12 |"), "{t}");
        assert!(t.contains("| shell | 244 | - |"), "{t}");
        assert!(table(&figs, "recorder").is_none());
    }
}
