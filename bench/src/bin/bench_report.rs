//! `bench-report DIR [MACHINE-LINE]`: turns `DIR/raw.jsonl` into `DIR/summary.md` and PNG plots.
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: bench-report DIR [MACHINE-DESCRIPTION]");
        return ExitCode::from(2);
    };
    let machine = args.next().unwrap_or_default();
    match bench::report::write(&dir, &machine) {
        Ok(w) => {
            println!("wrote {}", w.summary.display());
            for p in &w.plots {
                println!("wrote {}", p.display());
            }
            for e in &w.plot_errors {
                eprintln!("warning: plot not drawn: {e}");
            }
            if w.rejected_lines > 0 {
                eprintln!(
                    "warning: {} measurement line(s) not understood (listed in the summary)",
                    w.rejected_lines
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-report: {e:#}");
            ExitCode::FAILURE
        }
    }
}
