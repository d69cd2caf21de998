//! Exit codes (DESIGN.md): 0 success, 1 runtime failure, 2 usage or config error.
use std::process::ExitCode;

/// An error that is the operator's to fix (config, usage, an address in use): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Prints the error (one line per cause) and picks the exit code.
pub fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            let usage = err.chain().any(|c| {
                c.downcast_ref::<crate::config::ConfigError>().is_some()
                    || c.downcast_ref::<UsageError>().is_some()
            });
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
