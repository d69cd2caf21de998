//! The measurement lines `scripts/bench` writes, one JSON object per line, told apart by
//! `suite` (and `kind` within a suite). Lines of a suite this report does not know, or that do
//! not parse, are kept as errors to print, never silently dropped.
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// One pgbench run against one target.
#[derive(Debug, Clone, Deserialize)]
pub struct PgRun {
    pub round: u32,
    pub script: String,
    pub mode: String,
    pub clients: u32,
    pub target: String,
    pub tps: f64,
    #[serde(default)]
    pub lat_p50_ms: Option<f64>,
    #[serde(default)]
    pub lat_p99_ms: Option<f64>,
    #[serde(default)]
    pub tx: u64,
    /// CPU seconds the proxy process (bastion or PgBouncer) used during the run.
    #[serde(default)]
    pub proxy_cpu_s: Option<f64>,
}

/// A `pgbench -C` run: a new connection per transaction.
#[derive(Debug, Clone, Deserialize)]
pub struct PgConnect {
    pub round: u32,
    pub target: String,
    pub conn_ms: f64,
    pub tps: f64,
}

/// Idle sessions held open against the bastion, and its resident memory before and after.
#[derive(Debug, Clone, Deserialize)]
pub struct PgIdle {
    pub sessions: u32,
    pub rss_before_kb: u64,
    pub rss_after_kb: u64,
}

/// One SSH transfer or round trip against one target.
#[derive(Debug, Clone, Deserialize)]
pub struct SshRun {
    pub round: u32,
    /// `scp`, `sftp` (a transfer of `bytes`) or `true` (`ssh host true`, `bytes` = 0), or `echo`
    /// (keystroke echo latency; `seconds` per keystroke).
    pub kind: String,
    pub target: String,
    pub seconds: f64,
    #[serde(default)]
    pub bytes: u64,
}

/// A crate benchmark's figure (policy or recorder): a name and its numeric fields.
#[derive(Debug, Clone)]
pub struct CrateFigure {
    pub suite: String,
    pub bench: String,
    pub fields: Vec<(String, f64)>,
}

/// Everything read from a run.
#[derive(Debug, Default)]
pub struct Measurements {
    pub pg_runs: Vec<PgRun>,
    pub pg_connects: Vec<PgConnect>,
    pub pg_idle: Vec<PgIdle>,
    pub ssh_runs: Vec<SshRun>,
    pub crate_figures: Vec<CrateFigure>,
    /// Lines that could not be understood: `(line number, why)`.
    pub rejected: Vec<(usize, String)>,
}

impl Measurements {
    /// Reads a `raw.jsonl` file.
    pub fn read(path: &Path) -> anyhow::Result<Measurements> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Ok(Self::parse(&text))
    }

    /// Parses JSON lines; blank lines are skipped.
    pub fn parse(text: &str) -> Measurements {
        let mut m = Measurements::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Err(why) = m.add(line) {
                m.rejected.push((i + 1, why));
            }
        }
        m
    }

    fn add(&mut self, line: &str) -> Result<(), String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let suite = v.get("suite").and_then(Value::as_str).unwrap_or_default();
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        match (suite, kind) {
            ("pg", "pgbench") => self.pg_runs.push(from(v)?),
            ("pg", "connect") => self.pg_connects.push(from(v)?),
            ("pg", "idle") => self.pg_idle.push(from(v)?),
            ("ssh", _) => self.ssh_runs.push(from(v)?),
            ("policy" | "recorder" | "tracker", _) => self.crate_figures.push(crate_figure(&v)?),
            _ => return Err(format!("unknown suite/kind {suite:?}/{kind:?}")),
        }
        Ok(())
    }
}

fn from<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| e.to_string())
}

fn crate_figure(v: &Value) -> Result<CrateFigure, String> {
    let obj = v.as_object().ok_or("not an object")?;
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let bench = text("bench")
        .or_else(|| text("name"))
        .ok_or("a crate figure needs a `bench` name")?;
    let fields = obj
        .iter()
        .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
        .collect();
    Ok(CrateFigure {
        suite: text("suite").unwrap_or_default(),
        bench,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_sorted_by_suite_and_bad_ones_are_kept_as_rejections() {
        let m = Measurements::parse(concat!(
            r#"{"suite":"pg","kind":"pgbench","round":1,"script":"select","mode":"simple","clients":8,"target":"bastion","tps":1000.5,"lat_p99_ms":2.5,"tx":5000,"proxy_cpu_s":0.4}"#,
            "\n",
            r#"{"suite":"pg","kind":"connect","round":1,"target":"direct","conn_ms":3.1,"tps":300}"#,
            "\n\n",
            r#"{"suite":"ssh","kind":"scp","round":2,"target":"proxyjump","seconds":1.5,"bytes":1048576}"#,
            "\n",
            r#"{"suite":"policy","bench":"decide_sql_cached","median_us":8.5,"p99_us":12}"#,
            "\n",
            r#"{"suite":"pg","kind":"pgbench","round":1}"#,
            "\n",
            "garbage\n",
            r#"{"suite":"nope"}"#,
        ));
        assert_eq!(m.pg_runs.len(), 1);
        assert_eq!(m.pg_runs[0].lat_p99_ms, Some(2.5));
        assert_eq!(m.pg_connects.len(), 1);
        assert_eq!(m.ssh_runs[0].bytes, 1 << 20);
        assert_eq!(m.crate_figures[0].bench, "decide_sql_cached");
        assert!(m.crate_figures[0]
            .fields
            .contains(&("p99_us".to_string(), 12.0)));
        let lines: Vec<usize> = m.rejected.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![6, 7, 8]);
    }
}
