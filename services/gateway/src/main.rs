//! `gateway`: the reference system's entry point. Configuration comes from the environment
//! (see `--help`); the work is in the `faultline_gateway` library. `gateway mint-token` prints
//! a token the gateway accepts, for test clients and workloads (a `{command:…}` header).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use faultline_gateway::config::{GatewayConfig, VARIABLES};

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "The reference system's API gateway: JWT validation, rate limit per client, trace start, routing /api/orders to the order service.",
    after_help = faultline_kit::service::variables_help(VARIABLES)
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a signed token (HS256) that a gateway with the same secret accepts, and exit.
    MintToken {
        /// The signing secret: the gateway's GATEWAY_JWT_SECRET.
        #[arg(long, env = "GATEWAY_JWT_SECRET", hide_env_values = true)]
        secret: String,
        /// The client the token names (its `sub`; rate limits count per subject).
        #[arg(long, default_value = "faultline-client")]
        subject: String,
        /// A role the token grants; repeat for several.
        #[arg(long = "role", default_values_t = ["orders:write".to_string(), "orders:read".to_string()])]
        roles: Vec<String>,
        /// The audience the gateway expects: its GATEWAY_JWT_AUDIENCE.
        #[arg(long, env = "GATEWAY_JWT_AUDIENCE", default_value = "faultline")]
        audience: String,
        /// How long the token is valid, in seconds.
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
        ttl_secs: u64,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Some(Command::MintToken {
            secret,
            subject,
            roles,
            audience,
            ttl_secs,
        }) => {
            if secret.is_empty() {
                eprintln!("gateway mint-token: --secret: expected a non-empty secret");
                return ExitCode::from(2);
            }
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            println!(
                "{}",
                faultline_gateway::mint_token(
                    &secret,
                    &subject,
                    &roles,
                    &audience,
                    Duration::from_secs(ttl_secs),
                )
            );
            ExitCode::SUCCESS
        }
        None => faultline_kit::service::run_main(
            faultline_gateway::SERVICE,
            GatewayConfig::from_env(),
            faultline_gateway::run,
        ),
    }
}
