//! `payment`: the reference system's payment service. A thin shell over the library: parse the
//! command line (only `--help`/`--version`), read the configuration, run until SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use faultline_payment::{config_from_env, ENVIRONMENT_HELP, SERVICE};

/// Charges and refunds orders, each at most once (idempotent by the Idempotency-Key header).
///
/// Configured by environment variables only; see below. Serves the API of services/README.md
/// plus /health/live, /health/ready and /metrics. Stops gracefully on SIGTERM or SIGINT.
#[derive(Debug, Parser)]
#[command(name = "payment", version, after_help = ENVIRONMENT_HELP)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    faultline_kit::service::run_main(SERVICE, config_from_env(), faultline_payment::run)
}
