//! `bastion`: parse the command line, run it, map the outcome to an exit code.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = bastion::cli::Cli::parse();
    bastion::exit::report(bastion::cli::run(cli))
}
