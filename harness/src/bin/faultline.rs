//! The `faultline` command: a thin shell over the harness library.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use faultline_chaos::scenario::{FaultKind, Scenario, Target};
use faultline_harness::bench;
use faultline_harness::infra::{self, Infra, InfraConfig};

#[derive(Parser)]
#[command(
    name = "faultline",
    version,
    about = "Contract testing and chaos engineering for microservices, on real Postgres, Kafka and Toxiproxy."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The run's infrastructure: Postgres, Kafka and Toxiproxy.
    Stack {
        #[command(subcommand)]
        command: StackCommand,
    },
    /// Chaos scenarios.
    Chaos {
        #[command(subcommand)]
        command: ChaosCommand,
    },
    /// Measurements of the harness itself.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum StackCommand {
    /// Start the stack, print where everything listens, then tear it down (or hold it until
    /// Ctrl-C with --hold).
    Up {
        /// Clients to create links for (one per service); `faultline` is always added.
        #[arg(long, value_delimiter = ',', default_values_t = bench::REFERENCE_CLIENTS.map(String::from))]
        clients: Vec<String>,
        /// Keep the stack running until interrupted.
        #[arg(long)]
        hold: bool,
        /// Print the endpoints as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Save the containers' logs to this folder before tearing down.
        #[arg(long)]
        logs: Option<PathBuf>,
    },
    /// Remove containers and networks that crashed runs on this host left behind.
    Sweep,
}

#[derive(Subcommand)]
enum ChaosCommand {
    /// List the scenarios in a folder (default: the shipped ones), validating each.
    List {
        /// Folder of scenario files.
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Orders per second and p50/p99 through the gateway at several concurrencies, beside
    /// pgbench on the same Postgres.
    Saga {
        /// Concurrency levels.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16])]
        concurrency: Vec<usize>,
        /// Orders placed at each level.
        #[arg(long, default_value_t = 200)]
        orders: usize,
        /// Also write the JSON result to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Cold start of each container to ready, whole stack to ready, and teardown.
    Infra {
        /// How many times to start and tear down the stack.
        #[arg(long, default_value_t = 3)]
        iterations: usize,
        /// Also write the JSON result to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = until_interrupted(run(cli)).await;
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
        None => {
            // The run's future was dropped, which removes what it had registered; whatever
            // was still being created belongs to this process and is removed by label here.
            eprintln!("interrupted: removing this run's containers and network");
            if let Err(error) = infra::remove_own_resources().await {
                eprintln!("error: cleanup after interrupt: {error:#} (the next run sweeps them)");
            }
            ExitCode::from(130)
        }
    }
}

/// Runs `work` until it finishes or the process gets SIGINT or SIGTERM (then `None`).
async fn until_interrupted<T>(work: impl Future<Output = T>) -> Option<T> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler succeeds on Unix");
    tokio::select! {
        value = work => Some(value),
        _ = tokio::signal::ctrl_c() => None,
        _ = terminate.recv() => None,
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Stack {
            command:
                StackCommand::Up {
                    clients,
                    hold,
                    json,
                    logs,
                },
        } => stack_up(clients, hold, json, logs).await,
        Command::Stack {
            command: StackCommand::Sweep,
        } => {
            let sweep = infra::sweep_leftovers().await?;
            println!(
                "removed {} containers and {} networks left by earlier runs",
                sweep.containers, sweep.networks
            );
            Ok(())
        }
        Command::Chaos {
            command: ChaosCommand::List { dir },
        } => {
            let dir = dir.unwrap_or_else(shipped_scenarios);
            let scenarios = Scenario::load_dir(&dir)?;
            for (path, scenario) in &scenarios {
                println!("{}  ({})", scenario.name, path.display());
                println!("    {}", scenario.description);
                for fault in &scenario.faults {
                    println!(
                        "    at {:>5.1}s for {:>5.1}s  {:<16} {}",
                        fault.start.as_secs_f64(),
                        fault.duration.as_secs_f64(),
                        fault_kind_name(&fault.kind),
                        target_name(&fault.target)
                    );
                }
            }
            println!("{} scenarios in {}", scenarios.len(), dir.display());
            Ok(())
        }
        Command::Bench {
            command:
                BenchCommand::Saga {
                    concurrency,
                    orders,
                    out,
                },
        } => {
            eprintln!("starting the reference system and placing {orders} orders at each of {concurrency:?}…");
            let result = bench::saga(&concurrency, orders).await?;
            let json = serde_json::to_string_pretty(&result)?;
            print!("{}", result.table());
            println!("{json}");
            if let Some(path) = out {
                std::fs::write(&path, json)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Infra { iterations, out },
        } => {
            eprintln!("starting and tearing down the stack {iterations} times…");
            let result = bench::infra(iterations).await?;
            let json = serde_json::to_string_pretty(&result)?;
            print!("{}", result.table());
            println!("{json}");
            if let Some(path) = out {
                std::fs::write(&path, json)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
    }
}

/// `chaos/scenarios` of the working directory, or of the source tree this binary was built from.
fn shipped_scenarios() -> PathBuf {
    let local = PathBuf::from("chaos/scenarios");
    if local.is_dir() {
        local
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../chaos/scenarios"))
    }
}

fn fault_kind_name(kind: &FaultKind) -> String {
    match kind {
        FaultKind::Toxic { toxic, .. } => toxic.type_name().to_string(),
        FaultKind::Partition => "partition".into(),
        FaultKind::Kill => "kill".into(),
        FaultKind::Pause => "pause".into(),
        FaultKind::ContainerPause => "container_pause".into(),
        FaultKind::ContainerStop => "container_stop".into(),
    }
}

fn target_name(target: &Target) -> String {
    match target {
        Target::Link { client, server } => format!("{client}->{server}"),
        Target::Process { service } => service.clone(),
        Target::Container { name } => format!("{name} (container)"),
    }
}

async fn stack_up(
    clients: Vec<String>,
    hold: bool,
    json: bool,
    logs: Option<PathBuf>,
) -> anyhow::Result<()> {
    eprintln!("starting Postgres, Kafka and Toxiproxy…");
    let stack = Infra::start(InfraConfig::with_clients(clients)).await?;
    if json {
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
    if hold {
        eprintln!("holding the stack; Ctrl-C tears it down");
        std::future::pending::<()>().await;
    }
    if let Some(dir) = logs {
        stack
            .save_logs(&dir)
            .await
            .with_context(|| format!("saving container logs to {}", dir.display()))?;
    }
    let took = stack.shutdown().await?;
    eprintln!("torn down in {:.1} s", took.as_secs_f64());
    Ok(())
}
