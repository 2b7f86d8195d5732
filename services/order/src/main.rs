//! `order`: the order service. Configured by `ORDER_*` environment variables (`order --help`).

use clap::Parser;

/// The order service: orders and the orchestrated saga (reserve → charge → commit, or compensate).
#[derive(Debug, Parser)]
#[command(name = "order", version, after_help = faultline_order::ENV_HELP)]
struct Cli {}

fn main() -> std::process::ExitCode {
    Cli::parse();
    faultline_kit::telemetry::init("order");
    faultline_kit::metrics::install();
    let config = match faultline_order::Config::from_env() {
        Ok(config) => config,
        Err(errors) => {
            eprintln!(
                "order: bad configuration:\n{errors}\n\nSee `order --help` for every variable."
            );
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("order: could not start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = faultline_kit::server::shutdown_on_signals();
        faultline_order::run(config, shutdown).await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "order stopped");
            eprintln!("order: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
