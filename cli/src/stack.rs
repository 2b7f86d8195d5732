//! `faultline stack up | sweep`: the infrastructure alone.

use anyhow::Context;
use std::path::Path;

use faultline_harness::infra::{self, Infra};

use crate::error::{CliError, Then, NOTHING_STARTED};
use crate::flags::{StackCommand, StackUpArgs};

pub async fn exec(command: StackCommand, system: Option<&Path>) -> Result<(), CliError> {
    match command {
        StackCommand::Up(args) => up(args, system).await,
        StackCommand::Sweep => {
            let sweep = infra::sweep_leftovers().await?;
            println!(
                "removed {} containers and {} networks left by earlier runs",
                sweep.containers, sweep.networks
            );
            Ok(())
        }
    }
}

async fn up(args: StackUpArgs, system: Option<&Path>) -> Result<(), CliError> {
    let (system, _) = crate::system(system)?;
    let config = faultline_harness::infra::InfraConfig::for_system(&system);
    config.check_environment().then(NOTHING_STARTED)?;
    eprintln!("starting the infrastructure of {}…", system.name);
    let stack = Infra::start(config).await?;
    if args.json {
        let endpoints = serde_json::json!({
            "run": stack.run_id(),
            "mode": stack.mode(),
            "toxiproxy": stack.toxiproxy_url(),
            "postgres": stack.postgres().ok(),
            "links": stack.links().collect::<Vec<_>>(),
            "timings": stack.timings(),
        });
        println!("{}", serde_json::to_string_pretty(&endpoints)?);
    } else {
        println!("run        {}", stack.run_id());
        println!("toxiproxy  {}", stack.toxiproxy_url());
        if let Ok(pg) = stack.postgres() {
            println!(
                "postgres   {} (direct; user {}, database {})",
                pg.direct_address, pg.user, pg.database
            );
        }
        println!("\n{:<26} {:<24} client connects to", "link", "proxy");
        for link in stack.links() {
            println!(
                "{:<26} {:<24} {}",
                link.name,
                link.proxy.as_deref().unwrap_or("(direct)"),
                link.address
            );
        }
        println!("\nready in {:.1} s", stack.timings().total.as_secs_f64());
    }
    if args.hold {
        eprintln!("holding the stack; Ctrl-C tears it down");
        std::future::pending::<()>().await;
    }
    if let Some(dir) = args.logs {
        stack
            .save_logs(&dir, None)
            .await
            .with_context(|| format!("saving container logs to {}", dir.display()))?;
    }
    let took = stack.shutdown().await?;
    eprintln!("torn down in {:.1} s", took.as_secs_f64());
    Ok(())
}
