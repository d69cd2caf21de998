//! Decision latency of the starter pack (run: `cargo bench -p policies --bench decide`):
//! a typical 200-character statement decided from scratch and from the cache, a shell line,
//! and raw sqlparser parse time for comparison. Prints median and p99 in microseconds.
//! Targets (release): scratch <= 50 us, cached <= 5 us, shell <= 30 us.
//! With `BENCH_JSON=<file>` each figure is also appended there as a JSON line for
//! `scripts/bench` (`{"suite":"policy","bench":..,"median_us":..,"p99_us":..,"target_us":..}`).
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use policies::engine::*;
use policies::sql::SqlSession;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

const STATEMENT: &str = "SELECT o.id, o.state, c.name, c.email FROM app.orders AS o JOIN app.customers AS c ON c.id = o.customer_id WHERE o.state = 'open' AND o.created_at > now() - interval '1 day' ORDER BY o.id LIMIT 50";
const SHELL_LINE: &str =
    "sudo -u app tail -n 200 /var/log/app/app.log | grep -i error | sort | uniq -c";
const ITERATIONS: usize = 3000;

fn engine(cache_capacity: usize) -> Engine {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policies");
    let principal = Principal {
        name: "alice".into(),
        kind: PrincipalKind::Human,
        groups: vec!["engineers".into()],
    };
    let env = |e: &str| BTreeMap::from([("env".to_string(), e.to_string())]);
    let targets = vec![
        TargetInfo {
            name: "prod-db".into(),
            protocol: TargetProtocol::Postgres,
            tags: env("prod"),
        },
        TargetInfo {
            name: "web1".into(),
            protocol: TargetProtocol::Ssh,
            tags: env("prod"),
        },
    ];
    let opts = EngineOptions {
        policy_paths: vec![examples],
        cache_capacity,
        ..Default::default()
    };
    match Engine::load(opts, vec![principal], targets) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot load the starter pack: {e}");
            std::process::exit(1);
        }
    }
}

/// Median and p99 in microseconds of `ITERATIONS` runs of `f` (after a warm-up).
fn measure(mut f: impl FnMut(usize)) -> (f64, f64) {
    for i in 0..200 {
        f(i);
    }
    let mut samples: Vec<f64> = (0..ITERATIONS)
        .map(|i| {
            let start = Instant::now();
            f(i);
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    (at(0.5), at(0.99))
}

fn main() {
    let ctx = RequestContext::default();
    println!("statement ({} chars): {STATEMENT}", STATEMENT.len());
    let (parse, parse99) = measure(|_| {
        black_box(Parser::parse_sql(&PostgreSqlDialect {}, black_box(STATEMENT)).ok());
    });
    let (extract, extract99) = measure(|_| {
        let mut session = SqlSession::default();
        black_box(policies::sql::extract(
            black_box(STATEMENT),
            &mut session,
            &policies::sql::SqlLimits::default(),
        ));
    });
    let (redact, redact99) = measure(|_| {
        black_box(policies::redact::redact_sql(black_box(STATEMENT)));
        black_box(policies::fingerprint::fingerprint_sql(black_box(STATEMENT)));
    });
    let (shell_extract, shell_extract99) = measure(|_| {
        black_box(policies::shell::extract(
            black_box(SHELL_LINE),
            &policies::shell::ShellLimits::default(),
        ));
    });
    let scratch_engine = engine(0);
    let (scratch, scratch99) = measure(|_| {
        let mut session = SqlSession::default();
        black_box(scratch_engine.decide_sql(
            "alice",
            "prod-db",
            black_box(STATEMENT),
            &mut session,
            &ctx,
        ));
    });
    let cached_engine = engine(10_000);
    let (cached, cached99) = measure(|_| {
        let mut session = SqlSession::default();
        black_box(cached_engine.decide_sql(
            "alice",
            "prod-db",
            black_box(STATEMENT),
            &mut session,
            &ctx,
        ));
    });
    // Same shape, different literal each time: a template hit (redaction runs again).
    let variants: Vec<String> = (0..ITERATIONS + 200)
        .map(|i| STATEMENT.replace("LIMIT 50", &format!("LIMIT {}", i + 1)))
        .collect();
    let (template, template99) = measure(|i| {
        let mut session = SqlSession::default();
        let text = variants.get(i).map_or(STATEMENT, String::as_str);
        black_box(cached_engine.decide_sql("alice", "prod-db", text, &mut session, &ctx));
    });
    let (shell, shell99) = measure(|_| {
        black_box(scratch_engine.decide_shell("alice", "web1", black_box(SHELL_LINE), &ctx));
    });
    println!("{:<40} {:>10} {:>10}", "measure", "median us", "p99 us");
    let figures = [
        ("sqlparser parse only", parse, parse99, None),
        ("sql facts only (extractor)", extract, extract99, None),
        ("sql redaction + fingerprint only", redact, redact99, None),
        ("sql decision from scratch", scratch, scratch99, Some(50.0)),
        (
            "sql decision from cache (same text)",
            cached,
            cached99,
            Some(5.0),
        ),
        (
            "sql decision from cache (new literal)",
            template,
            template99,
            None,
        ),
        (
            "shell facts only (extractor)",
            shell_extract,
            shell_extract99,
            None,
        ),
        ("shell line from scratch", shell, shell99, Some(30.0)),
    ];
    let mut json = String::new();
    for (name, median, p99, target) in figures {
        println!("{name:<40} {median:>10.1} {p99:>10.1}");
        let target = target.map_or(String::new(), |t: f64| format!(",\"target_us\":{t}"));
        json += &format!(
            "{{\"suite\":\"policy\",\"bench\":\"{name}\",\"median_us\":{median:.2},\"p99_us\":{p99:.2}{target}}}\n"
        );
    }
    if let Some(path) = std::env::var_os("BENCH_JSON") {
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(json.as_bytes()));
        if let Err(e) = written {
            eprintln!("cannot append to {}: {e}", path.to_string_lossy());
            std::process::exit(1);
        }
    }
    println!(
        "ratio scratch / parse = {:.1}; cached / parse = {:.2}",
        scratch / parse.max(f64::EPSILON),
        cached / parse.max(f64::EPSILON)
    );
}
