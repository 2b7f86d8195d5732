//! What every service binary's `main` does once its command line is parsed, written once:
//! report a bad configuration (every variable, exit code 2), start JSON logs and metrics, run
//! the service on a multi-threaded runtime until SIGTERM or SIGINT, and turn the outcome into
//! an exit code (1 with the error's whole chain when it fails).
//!
//! ```no_run
//! # async fn run(_config: (), _shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> { Ok(()) }
//! fn main() -> std::process::ExitCode {
//!     // clap parses --help/--version first
//!     faultline_kit::service::run_main("payment", Ok(()), run)
//! }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::ConfigErrors;

/// Runs `run(config, shutdown)` as the process of service `service`; see the module docs.
pub fn run_main<C, E, F, Fut>(service: &str, config: Result<C, ConfigErrors>, run: F) -> ExitCode
where
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let config = match config {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{service}: bad configuration:\n{errors}\n\nSee `{service} --help` for every variable.");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(service);
    crate::metrics::install();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{service}: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome =
        runtime.block_on(async { run(config, crate::server::shutdown_on_signals()).await });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "{service} stopped");
            eprintln!("{service}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The `--help` text listing a service's environment variables (name, meaning), `RUST_LOG`
/// last.
pub fn variables_help(variables: &[(&str, &str)]) -> String {
    let mut text = String::from("Environment variables:\n");
    for (name, meaning) in variables {
        text.push_str(&format!("  {name:<32} {meaning}\n"));
    }
    text.push_str("  RUST_LOG                         log filter (default info)");
    text
}
