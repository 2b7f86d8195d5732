//! `inventory`: the reference system's inventory service. A thin shell over the library: parse the
//! command line (only `--help`/`--version`), read the configuration, run until SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use faultline_inventory::{InventoryConfig, ENVIRONMENT_HELP, SERVICE};

/// Keeps stock per SKU and reserves it for orders, never below zero (reservations are
/// idempotent by the Idempotency-Key header; release and commit by their path).
///
/// Configured by environment variables only; see below. Serves the API of services/README.md
/// plus /health/live, /health/ready and /metrics. Stops gracefully on SIGTERM or SIGINT.
#[derive(Debug, Parser)]
#[command(name = "inventory", version, after_help = ENVIRONMENT_HELP)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    faultline_kit::service::run_main(
        SERVICE,
        InventoryConfig::from_env(),
        faultline_inventory::run,
    )
}
