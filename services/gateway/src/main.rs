//! `gateway`: the reference system's entry point. Configuration comes from the environment
//! (see `--help`); the work is in the `faultline_gateway` library.

use std::process::ExitCode;

use clap::Parser;
use faultline_gateway::config::{GatewayConfig, VARIABLES};

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "The reference system's API gateway: JWT validation, rate limit per client, trace start, routing /api/orders to the order service.",
    after_help = faultline_kit::service::variables_help(VARIABLES)
)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    faultline_kit::service::run_main(
        faultline_gateway::SERVICE,
        GatewayConfig::from_env(),
        faultline_gateway::run,
    )
}
