//! `payment`: the reference system's payment service. A thin shell over the library: parse the
//! command line (only `--help`/`--version`), read the configuration, run until SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use faultline_payment::{PaymentConfig, ENVIRONMENT_HELP, SERVICE};

/// Charges and refunds orders, each at most once (idempotent by the Idempotency-Key header).
///
/// Configured by environment variables only; see below. Serves the API of services/README.md
/// plus /health/live, /health/ready and /metrics. Stops gracefully on SIGTERM or SIGINT.
#[derive(Debug, Parser)]
#[command(name = "payment", version, after_help = ENVIRONMENT_HELP)]
struct Cli {}

#[tokio::main]
async fn main() -> ExitCode {
    Cli::parse();
    let config = match PaymentConfig::from_env() {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{SERVICE}: bad configuration:\n{errors}\n\nSee `{SERVICE} --help`.");
            return ExitCode::from(2);
        }
    };
    faultline_kit::telemetry::init(SERVICE);
    let shutdown = faultline_kit::server::shutdown_on_signals();
    match faultline_payment::run(config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "payment failed");
            eprintln!("{SERVICE}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
