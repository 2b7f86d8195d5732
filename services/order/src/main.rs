//! `order`: the order service. Configured by `ORDER_*` environment variables (`order --help`).

use clap::Parser;

/// The order service: orders and the orchestrated saga (reserve → charge → commit, or compensate).
#[derive(Debug, Parser)]
#[command(name = "order", version, after_help = faultline_order::ENV_HELP)]
struct Cli {}

fn main() -> std::process::ExitCode {
    Cli::parse();
    faultline_kit::service::run_main(
        "order",
        faultline_order::Config::from_env(),
        faultline_order::run,
    )
}
