//! `notification`: records one notification per order event. Configuration comes from the environment
//! (see `--help`); the work is in the `faultline_notification` library.

use std::process::ExitCode;

use clap::Parser;
use faultline_notification::config::{NotificationConfig, VARIABLES};

#[derive(Parser)]
#[command(
    name = "notification",
    version,
    about = "The reference system's notification service: consumes order events from Kafka topic `orders` (group `notification`) and records one notification per event; GET /notifications?order_id=... lists them.",
    after_help = faultline_kit::service::variables_help(VARIABLES)
)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    faultline_kit::service::run_main(
        faultline_notification::SERVICE,
        NotificationConfig::from_env(),
        faultline_notification::run,
    )
}
