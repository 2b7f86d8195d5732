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
    after_help = help_variables()
)]
struct Cli {}

fn help_variables() -> String {
    let mut text = String::from("Environment variables:\n");
    for (name, meaning) in VARIABLES {
        text.push_str(&format!("  {name:<32} {meaning}\n"));
    }
    text.push_str("  RUST_LOG                         log filter (default info)");
    text
}

#[tokio::main]
async fn main() -> ExitCode {
    Cli::parse();
    faultline_kit::telemetry::init(faultline_gateway::SERVICE);
    let config = match GatewayConfig::from_env() {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("gateway: invalid configuration:\n{errors}");
            return ExitCode::from(2);
        }
    };
    let shutdown = faultline_kit::server::shutdown_on_signals();
    match faultline_gateway::run(config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "gateway failed");
            eprintln!("gateway: {error}");
            ExitCode::FAILURE
        }
    }
}
