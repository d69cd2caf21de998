//! Operational metrics for `GET /v1/metrics`: plain atomics, rendered in the Prometheus text
//! exposition format (version 0.0.4). One [`Metrics`] is shared by every part of the binary through
//! an `Arc`; writers only touch atomics, so counting never blocks a session. Label sets are fixed
//! (protocol, decision, outcome), which keeps cardinality bounded no matter what users send.
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the policy evaluation latency buckets.
const POLICY_EVAL_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

/// Upper bounds (seconds) of the step-up wait buckets.
const STEP_UP_WAIT_BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A cumulative histogram over fixed buckets, in microseconds internally.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let total = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
    }
}

/// What a policy decided for one action (the `decision` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionLabel {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
    /// Held for step-up.
    StepUp,
}

/// How a step-up request ended (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUpLabel {
    /// Approved.
    Approved,
    /// Denied by a person or by shutdown.
    Denied,
    /// Nobody decided in time.
    TimedOut,
    /// The session went away first.
    Cancelled,
}

/// Every metric the bastion exposes.
#[derive(Debug)]
pub struct Metrics {
    sessions_active: [AtomicI64; 2],
    sessions_total: [AtomicU64; 2],
    actions: [AtomicU64; 3],
    entry_failures: AtomicU64,
    lockouts: AtomicU64,
    policy_eval: Histogram,
    step_up_pending: AtomicI64,
    step_up_outcomes: [AtomicU64; 4],
    step_up_wait: Histogram,
    recorder_queue_depth: AtomicI64,
    recorder_journal_lag_micros: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Index of a protocol label: `postgres` 0, anything else (`ssh`) 1.
fn protocol_index(protocol: &str) -> usize {
    usize::from(protocol != "postgres")
}

const PROTOCOLS: [&str; 2] = ["postgres", "ssh"];
const DECISIONS: [&str; 3] = ["allow", "deny", "step_up"];
const OUTCOMES: [&str; 4] = ["approved", "denied", "timed_out", "cancelled"];

impl Metrics {
    /// All zero.
    pub fn new() -> Metrics {
        Metrics {
            sessions_active: Default::default(),
            sessions_total: Default::default(),
            actions: Default::default(),
            entry_failures: AtomicU64::new(0),
            lockouts: AtomicU64::new(0),
            policy_eval: Histogram::new(&POLICY_EVAL_BUCKETS),
            step_up_pending: AtomicI64::new(0),
            step_up_outcomes: Default::default(),
            step_up_wait: Histogram::new(&STEP_UP_WAIT_BUCKETS),
            recorder_queue_depth: AtomicI64::new(0),
            recorder_journal_lag_micros: AtomicU64::new(0),
        }
    }

    /// A session of `protocol` (`postgres` or `ssh`) started; call [`Metrics::session_ended`] when
    /// it ends.
    pub fn session_started(&self, protocol: &str) {
        let i = protocol_index(protocol);
        if let (Some(active), Some(total)) =
            (self.sessions_active.get(i), self.sessions_total.get(i))
        {
            active.fetch_add(1, Ordering::Relaxed);
            total.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A session of `protocol` ended.
    pub fn session_ended(&self, protocol: &str) {
        if let Some(active) = self.sessions_active.get(protocol_index(protocol)) {
            active.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Counts one decided action.
    pub fn action_decided(&self, decision: DecisionLabel) {
        let i = match decision {
            DecisionLabel::Allow => 0,
            DecisionLabel::Deny => 1,
            DecisionLabel::StepUp => 2,
        };
        if let Some(c) = self.actions.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one failed account entry (bad password, key, code, token).
    pub fn entry_failed(&self) {
        self.entry_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one lockout imposed.
    pub fn locked_out(&self) {
        self.lockouts.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how long one policy evaluation took.
    pub fn policy_evaluated(&self, took: Duration) {
        self.policy_eval.observe(took);
    }

    /// The policy evaluation histogram (for tests and the readiness view).
    pub fn policy_eval(&self) -> &Histogram {
        &self.policy_eval
    }

    /// A step-up request was submitted (pending + 1).
    pub fn step_up_submitted(&self) {
        self.step_up_pending.fetch_add(1, Ordering::Relaxed);
    }

    /// A step-up request ended after waiting `waited` (pending − 1).
    pub fn step_up_resolved(&self, outcome: StepUpLabel, waited: Duration) {
        self.step_up_pending.fetch_sub(1, Ordering::Relaxed);
        let i = match outcome {
            StepUpLabel::Approved => 0,
            StepUpLabel::Denied => 1,
            StepUpLabel::TimedOut => 2,
            StepUpLabel::Cancelled => 3,
        };
        if let Some(c) = self.step_up_outcomes.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.step_up_wait.observe(waited);
    }

    /// Step-up requests waiting now.
    pub fn step_up_pending(&self) -> i64 {
        self.step_up_pending.load(Ordering::Relaxed)
    }

    /// Sets the recorder's queue depth (rows accepted, not yet in the journal).
    pub fn set_recorder_queue_depth(&self, depth: usize) {
        self.recorder_queue_depth
            .store(i64::try_from(depth).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Sets how far the Parquet files lag behind the journal.
    pub fn set_recorder_journal_lag(&self, lag: Duration) {
        let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        self.recorder_journal_lag_micros
            .store(micros, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "bastion_sessions_active",
            "Live sessions by protocol.",
            "gauge",
        );
        for (p, v) in PROTOCOLS.iter().zip(&self.sessions_active) {
            let _ = writeln!(
                out,
                "bastion_sessions_active{{protocol=\"{p}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "bastion_sessions_total",
            "Sessions started by protocol.",
            "counter",
        );
        for (p, v) in PROTOCOLS.iter().zip(&self.sessions_total) {
            let _ = writeln!(
                out,
                "bastion_sessions_total{{protocol=\"{p}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "bastion_actions_total",
            "Actions decided, by decision.",
            "counter",
        );
        for (d, v) in DECISIONS.iter().zip(&self.actions) {
            let _ = writeln!(
                out,
                "bastion_actions_total{{decision=\"{d}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "bastion_entry_failures_total",
            "Failed account entries.",
            "counter",
        );
        let _ = writeln!(
            out,
            "bastion_entry_failures_total {}",
            self.entry_failures.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "bastion_lockouts_total",
            "Lockouts imposed.",
            "counter",
        );
        let _ = writeln!(
            out,
            "bastion_lockouts_total {}",
            self.lockouts.load(Ordering::Relaxed)
        );
        self.policy_eval.render(
            &mut out,
            "bastion_policy_eval_seconds",
            "Policy evaluation latency.",
        );
        header(
            &mut out,
            "bastion_step_up_pending",
            "Step-up requests waiting for a decision.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "bastion_step_up_pending {}",
            self.step_up_pending.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "bastion_step_up_requests_total",
            "Step-up requests ended, by outcome.",
            "counter",
        );
        for (o, v) in OUTCOMES.iter().zip(&self.step_up_outcomes) {
            let _ = writeln!(
                out,
                "bastion_step_up_requests_total{{outcome=\"{o}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        self.step_up_wait.render(
            &mut out,
            "bastion_step_up_wait_seconds",
            "How long step-up requests waited.",
        );
        header(
            &mut out,
            "bastion_recorder_queue_depth",
            "Audit rows queued for the journal.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "bastion_recorder_queue_depth {}",
            self.recorder_queue_depth.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "bastion_recorder_journal_lag_seconds",
            "Parquet files behind the journal.",
            "gauge",
        );
        let lag = self.recorder_journal_lag_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "bastion_recorder_journal_lag_seconds {lag}");
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Parses Prometheus text into `(series, value)` pairs, where a series is the metric name with its
/// label set as written (`bastion_actions_total{decision="deny"}`). Comments are skipped; a line
/// that is neither a comment nor `series value` is an error naming the line.
pub fn parse_text(text: &str) -> Result<Vec<(String, f64)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("line {}: no value: {line}", n + 1))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .map_err(|_| format!("line {}: bad value {v:?}", n + 1))?,
        };
        out.push((series.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> f64 {
        parse_text(text)
            .unwrap()
            .into_iter()
            .find(|(s, _)| s == series)
            .map(|(_, v)| v)
            .unwrap()
    }

    #[test]
    fn counters_move_and_render_parses() {
        let m = Metrics::new();
        let before = m.render();
        assert_eq!(
            value(&before, "bastion_actions_total{decision=\"deny\"}"),
            0.0
        );
        m.session_started("postgres");
        m.session_started("ssh");
        m.session_ended("ssh");
        m.action_decided(DecisionLabel::Deny);
        m.action_decided(DecisionLabel::Deny);
        m.entry_failed();
        m.locked_out();
        m.policy_evaluated(Duration::from_micros(300));
        m.step_up_submitted();
        m.step_up_submitted();
        m.step_up_resolved(StepUpLabel::Approved, Duration::from_secs(3));
        m.set_recorder_queue_depth(7);
        let after = m.render();
        assert_eq!(
            value(&after, "bastion_sessions_active{protocol=\"postgres\"}"),
            1.0
        );
        assert_eq!(
            value(&after, "bastion_sessions_active{protocol=\"ssh\"}"),
            0.0
        );
        assert_eq!(
            value(&after, "bastion_sessions_total{protocol=\"ssh\"}"),
            1.0
        );
        assert_eq!(
            value(&after, "bastion_actions_total{decision=\"deny\"}"),
            2.0
        );
        assert_eq!(value(&after, "bastion_entry_failures_total"), 1.0);
        assert_eq!(value(&after, "bastion_lockouts_total"), 1.0);
        assert_eq!(
            value(&after, "bastion_policy_eval_seconds_bucket{le=\"0.00025\"}"),
            0.0
        );
        assert_eq!(
            value(&after, "bastion_policy_eval_seconds_bucket{le=\"0.0005\"}"),
            1.0
        );
        assert_eq!(
            value(&after, "bastion_policy_eval_seconds_bucket{le=\"+Inf\"}"),
            1.0
        );
        assert_eq!(value(&after, "bastion_policy_eval_seconds_count"), 1.0);
        assert_eq!(value(&after, "bastion_step_up_pending"), 1.0);
        assert_eq!(
            value(
                &after,
                "bastion_step_up_requests_total{outcome=\"approved\"}"
            ),
            1.0
        );
        assert_eq!(
            value(&after, "bastion_step_up_wait_seconds_bucket{le=\"1\"}"),
            0.0
        );
        assert_eq!(
            value(&after, "bastion_step_up_wait_seconds_bucket{le=\"5\"}"),
            1.0
        );
        assert_eq!(value(&after, "bastion_step_up_wait_seconds_sum"), 3.0);
        assert_eq!(value(&after, "bastion_recorder_queue_depth"), 7.0);
    }

    #[test]
    fn every_series_has_help_and_type() {
        let text = Metrics::new().render();
        for (series, _) in parse_text(&text).unwrap() {
            let name = series.split('{').next().unwrap();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|b| text.contains(&format!("# TYPE {b} histogram")))
                })
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "no TYPE for {base}"
            );
            assert!(
                text.contains(&format!("# HELP {base} ")),
                "no HELP for {base}"
            );
        }
    }
}
