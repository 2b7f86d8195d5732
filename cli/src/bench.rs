//! `faultline bench saga | contracts | infra`: each prints a table and its JSON, and writes
//! the JSON to `--out` when asked.

use anyhow::Context;
use std::path::Path;

use faultline_harness::bench;

use crate::error::{CliError, Then, NOTHING_STARTED};
use crate::flags::BenchCommand;

pub async fn exec(command: BenchCommand, system: Option<&Path>) -> Result<(), CliError> {
    let system = crate::system(system)?;
    system
        .infra_config()
        .check_environment()
        .then(NOTHING_STARTED)?;
    match command {
        BenchCommand::Saga(args) => {
            let (concurrency, orders) = (args.concurrency, args.orders);
            eprintln!(
                "starting {} and placing {orders} orders at each of {concurrency:?}…",
                system.name
            );
            let result = faultline_reference::bench::saga(&system, &concurrency, orders).await?;
            show(&result, result.table(), args.out)
        }
        BenchCommand::Contracts(args) => {
            let iterations = args.iterations;
            let pacts = args
                .pacts
                .unwrap_or_else(|| crate::shipped("contracts/pacts"));
            // Read first, so a bad pact is refused before a stack starts.
            faultline_contracts::files::read_pacts(&pacts).then(NOTHING_STARTED)?;
            eprintln!(
                "starting {} and verifying the pacts {iterations} times with each verifier…",
                system.name
            );
            let binary = faultline_harness::contracts::pact_binary();
            let result = bench::contracts(&system, iterations, &pacts, &binary).await?;
            show(&result, result.table(), args.out)
        }
        BenchCommand::Infra(args) => {
            let iterations = args.iterations;
            eprintln!("starting and tearing down the stack {iterations} times…");
            let result = bench::infra(&system, iterations).await?;
            show(&result, result.table(), args.out)
        }
    }
}

fn show(
    result: &impl serde::Serialize,
    table: String,
    out: Option<std::path::PathBuf>,
) -> Result<(), CliError> {
    let json = serde_json::to_string_pretty(result)?;
    print!("{table}");
    println!("{json}");
    if let Some(path) = out {
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
