//! `bastion serve`: tracing, the runtime, signals; the server itself is `crate::serve`.
use super::ConfigArg;
use std::process::ExitCode;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Runs the bastion in the foreground until SIGINT or SIGTERM.
pub fn run(args: &ConfigArg) -> anyhow::Result<ExitCode> {
    let config = crate::config::load(&args.config)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BASTION_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .finish()
        .with(crate::entry::russh_refusals::CertWindowRefusals)
        .init();
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = crate::serve::Server::bind(config).await?;
        server.run(crate::serve::shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}
