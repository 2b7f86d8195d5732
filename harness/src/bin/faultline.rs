//! The `faultline` command: a thin shell over the harness library.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use faultline_chaos::scenario::Scenario;
use faultline_harness::infra::{self, Infra, InfraConfig};
use faultline_harness::{bench, nemesis, runner};

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
    /// Resilience reports of chaos runs (the folders `chaos run` writes).
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Contracts: provider verification of pact files, schema and pact compatibility.
    Contracts {
        #[command(subcommand)]
        command: ContractsCommand,
    },
}

#[derive(Subcommand)]
enum ContractsCommand {
    /// Verify pact files against the real providers: starts the reference system (real
    /// Postgres, Kafka, Toxiproxy; services in test mode), sets each interaction's provider
    /// states, replays it, reads message interactions from Kafka. Writes verification.json,
    /// verification.junit.xml and verification.html. Exit 0 when every interaction holds, 1 when one fails, 2 for
    /// unreadable pacts (nothing is started), 130 when interrupted.
    Verify {
        /// Only the pacts whose provider is P.
        #[arg(long)]
        provider: Option<String>,
        /// A folder of *.json pact files, or one file [default: contracts/pacts].
        #[arg(long)]
        pacts: Option<PathBuf>,
        /// Verify against this already running provider instead of starting the reference
        /// system (needs --provider; states go to URL/admin/provider-states).
        #[arg(long, requires = "provider")]
        provider_url: Option<String>,
        /// With --provider-url: Kafka bootstrap servers to read the provider's messages from.
        #[arg(long, requires = "provider_url")]
        kafka_bootstrap: Option<String>,
        /// Where the results go [default: reports/contracts-<unix time>].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare two versions of an event's JSON Schema, or of a pact file. Schemas: exit 0 when
    /// compatible, 1 when a change breaks (each shown with a counterexample payload). Pacts:
    /// exit 0 when the new one asks nothing new of the provider, 1 when it does (each changed
    /// interaction with a counterexample where the matching rules show one). 2 for unreadable
    /// input.
    Diff {
        /// The earlier schema.
        old: PathBuf,
        /// The later schema.
        new: PathBuf,
        /// backward: new readers read old data; forward: old readers read new data; full: both.
        #[arg(long, default_value = "backward")]
        mode: faultline_contracts::compat::Mode,
        /// Earlier versions (files, or folders of *.json taken in name order), oldest first:
        /// then every version in HISTORY.., OLD, NEW is checked against all earlier ones.
        #[arg(long, num_args = 1..)]
        history: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
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
    /// Run a scenario file, or every scenario in a folder, each on a fresh stack.
    Run {
        /// A scenario file or a folder of them.
        path: PathBuf,
        /// The workload's seed (default: each scenario's own).
        #[arg(long)]
        seed: Option<u64>,
        /// Where each run's folder is written.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// The runs in the reports folder, newest first, with their verdicts.
    List {
        /// The reports folder.
        #[arg(long, default_value = "reports")]
        dir: PathBuf,
    },
    /// Print the path of a run's report.html (and open it in a browser with --browser).
    Open {
        /// A run folder, its name in the reports folder, or the start of one (a scenario's
        /// name gives its newest run).
        run: String,
        #[arg(long, default_value = "reports")]
        dir: PathBuf,
        /// Open the page with $BROWSER, or xdg-open.
        #[arg(long)]
        browser: bool,
    },
    /// What changed from run A to run B: verdicts, order-placement latency and error rate.
    Diff {
        a: String,
        b: String,
        #[arg(long, default_value = "reports")]
        dir: PathBuf,
    },
    /// Rewrite the reports folder's index.html from the runs there.
    Index {
        #[arg(long, default_value = "reports")]
        dir: PathBuf,
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
    /// Contract verification throughput and wall time on one reference stack: faultline's
    /// verifier beside the official pact_verifier_cli on the same pacts and providers.
    Contracts {
        /// Verification rounds (each: every verifier once).
        #[arg(long, default_value_t = 3)]
        iterations: usize,
        /// A folder of pact files [default: contracts/pacts].
        #[arg(long)]
        pacts: Option<PathBuf>,
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
    if let Command::Contracts {
        command:
            ContractsCommand::Diff {
                old,
                new,
                mode,
                history,
                json,
            },
    } = cli.command
    {
        return contracts_diff(&old, &new, mode, &history, json);
    }
    if let Command::Contracts {
        command:
            ContractsCommand::Verify {
                provider,
                pacts,
                provider_url,
                kafka_bootstrap,
                out,
            },
    } = cli.command
    {
        return contracts_verify(provider, pacts, provider_url, kafka_bootstrap, out).await;
    }
    if let Command::Report { command } = cli.command {
        return report_command(command);
    }
    if let Command::Chaos {
        command: ChaosCommand::Run { path, seed, out },
    } = cli.command
    {
        // A chaos run handles interrupts itself: it heals and saves before it stops.
        return chaos_run(&path, seed, &out).await;
    }
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
            command: ChaosCommand::Run { .. },
        } => unreachable!("main runs chaos scenarios itself"),
        Command::Contracts { .. } => unreachable!("main runs contract commands itself"),
        Command::Report { .. } => unreachable!("main runs report commands itself"),
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
                        nemesis::kind_name(&fault.kind),
                        nemesis::target_name(&fault.target)
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
            command:
                BenchCommand::Contracts {
                    iterations,
                    pacts,
                    out,
                },
        } => {
            eprintln!("starting the reference system and verifying the pacts {iterations} times with each verifier…");
            let pacts = pacts.unwrap_or_else(shipped_pacts);
            let binary = faultline_harness::contracts::pact_verifier_binary();
            let result = bench::contracts(iterations, &pacts, &binary).await?;
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

/// `faultline report …`: exit 0 on success, 2 when a report cannot be found or read (the
/// message names the file and what is wrong), 1 when a browser cannot be started.
fn report_command(command: ReportCommand) -> ExitCode {
    use faultline_harness::report::{self, diff::ReportDiff, index::utc};
    let bad_input = |error: report::ReportError| {
        eprintln!("error: {error}");
        ExitCode::from(2)
    };
    match command {
        ReportCommand::List { dir } => {
            let runs = match report::list_runs(&dir) {
                Ok(runs) => runs,
                Err(error) => return bad_input(error),
            };
            for run in &runs {
                match &run.report {
                    Ok(r) => {
                        let failed: Vec<&str> = r.failures().map(|v| v.checker.as_str()).collect();
                        println!(
                            "{}  {:<6}  {}{}",
                            utc(r.run.started_unix_ms),
                            if r.run.passed { "passed" } else { "FAILED" },
                            run.name(),
                            if failed.is_empty() {
                                String::new()
                            } else {
                                format!("  ({})", failed.join(", "))
                            }
                        );
                    }
                    Err(error) => println!("unreadable  {}: {error}", run.name()),
                }
            }
            let plural = if runs.len() == 1 { "" } else { "s" };
            println!("{} run{plural} in {}", runs.len(), dir.display());
            ExitCode::SUCCESS
        }
        ReportCommand::Open { run, dir, browser } => {
            let found = match report::find_run(&dir, &run) {
                Ok(found) => found,
                Err(error) => return bad_input(error),
            };
            let page = found.join("report.html");
            if !page.is_file() {
                eprintln!(
                    "error: {} is missing although report.json is there\nhint: re-run the scenario (`faultline chaos run`) to write its report again",
                    page.display()
                );
                return ExitCode::from(2);
            }
            let page = page.canonicalize().unwrap_or(page);
            println!("{}", page.display());
            if browser {
                let program = std::env::var("BROWSER").unwrap_or_else(|_| "xdg-open".into());
                if let Err(error) = std::process::Command::new(&program).arg(&page).spawn() {
                    eprintln!("error: starting {program} {}: {error}\nhint: set BROWSER to your browser's command", page.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        ReportCommand::Diff { a, b, dir } => {
            let load = |run: &str| report::find_run(&dir, run).and_then(|d| report::load(&d));
            let (a, b) = match (load(&a), load(&b)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(error), _) | (_, Err(error)) => return bad_input(error),
            };
            print!("{}", ReportDiff::between(&a, &b).render(&a, &b));
            ExitCode::SUCCESS
        }
        ReportCommand::Index { dir } => match report::write_index(&dir) {
            Ok(()) => {
                println!("{}", dir.join("index.html").display());
                ExitCode::SUCCESS
            }
            Err(error) => bad_input(error),
        },
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

/// `faultline chaos run`: exit 0 when every run passed, 1 when a verdict failed or a run could
/// not be carried out, 2 for a scenario that does not load (nothing is started), 130 when
/// interrupted.
async fn chaos_run(path: &std::path::Path, seed: Option<u64>, out: &std::path::Path) -> ExitCode {
    let scenarios = if path.is_dir() {
        Scenario::load_dir(path)
    } else {
        Scenario::load(path).map(|s| vec![(path.to_path_buf(), s)])
    };
    let scenarios = match scenarios {
        Ok(scenarios) if scenarios.is_empty() => {
            eprintln!("error: no *.toml scenarios in {}", path.display());
            return ExitCode::from(2);
        }
        Ok(scenarios) => scenarios,
        Err(error) => {
            eprintln!("error: {error}\nnothing was started");
            return ExitCode::from(2);
        }
    };
    let clock = std::time::Instant::now();
    let progress = |line: &str| eprintln!("[{:>7.1}s] {line}", clock.elapsed().as_secs_f64());
    let (interrupt_tx, interrupt_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler succeeds on Unix");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        let _ = interrupt_tx.send(true);
    });
    let interrupt = {
        let mut interrupted = interrupt_rx.clone();
        async move {
            let _ = interrupted.wait_for(|&stop| stop).await;
        }
    };
    // One scenario gets a stack of its own; several share one, reset between runs.
    let results: Vec<Result<runner::RunOutcome, runner::RunError>> = if scenarios.len() == 1 {
        let (file, scenario) = &scenarios[0];
        progress(&format!("── {} ({})", scenario.name, file.display()));
        vec![runner::run_until(scenario, seed, out, interrupt, &progress).await]
    } else {
        let all: Vec<Scenario> = scenarios.iter().map(|(_, s)| s.clone()).collect();
        match runner::run_all_until(&all, seed, out, interrupt, &progress).await {
            Ok(results) => results,
            Err(error) => vec![Err(error)],
        }
    };
    let mut summary = Vec::new();
    let mut failed = false;
    for ((_, scenario), result) in scenarios.iter().zip(results) {
        match result {
            Ok(outcome) => {
                for verdict in &outcome.verdicts {
                    eprintln!(
                        "  {} {}: {}",
                        if verdict.ok { "ok  " } else { "FAIL" },
                        verdict.checker,
                        verdict.summary
                    );
                    for example in &verdict.counterexamples {
                        eprintln!(
                            "       - {} (orders: {}; history events: {:?})",
                            example.description,
                            example.orders.join(", "),
                            example.events
                        );
                    }
                }
                for line in &outcome.unhealed {
                    eprintln!("  FAIL could not heal: {line}");
                }
                failed |= !outcome.ok;
                summary.push(format!(
                    "{} {:<40} seed {:<6} {:>6.1}s  {}",
                    if outcome.ok { "passed" } else { "FAILED" },
                    scenario.name,
                    outcome.seed,
                    outcome.timings.total_ms as f64 / 1000.0,
                    outcome.out_dir.display()
                ));
            }
            Err(error @ runner::RunError::Interrupted { .. }) => {
                eprintln!("{error}");
                // Interrupted while the stack was starting: what it had created is this
                // process's, removed by label.
                if let Err(error) = infra::remove_own_resources().await {
                    eprintln!(
                        "error: cleanup after interrupt: {error:#} (the next run sweeps them)"
                    );
                }
                return ExitCode::from(130);
            }
            Err(error) => {
                eprintln!("error: {}: {error}", scenario.name);
                failed = true;
                summary.push(format!("ERROR  {:<40} {error}", scenario.name));
            }
        }
    }
    println!();
    for line in &summary {
        println!("{line}");
    }
    println!(
        "{} scenarios in {:.1}s; reports listed in {}",
        scenarios.len(),
        clock.elapsed().as_secs_f64(),
        out.join("index.html").display()
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
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

/// `contracts/pacts` of the working directory, or of the source tree this binary was built from.
fn shipped_pacts() -> PathBuf {
    let local = PathBuf::from("contracts/pacts");
    if local.is_dir() {
        local
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/pacts"))
    }
}

/// `faultline contracts verify`; see its help for the exit codes.
async fn contracts_verify(
    provider: Option<String>,
    pacts: Option<PathBuf>,
    provider_url: Option<String>,
    kafka_bootstrap: Option<String>,
    out: Option<PathBuf>,
) -> ExitCode {
    use faultline_contracts::verify::ProviderTarget;
    use faultline_harness::contracts::{self, KafkaMessages};
    use faultline_harness::stack::{Stack, StackConfig};

    let dir = pacts.unwrap_or_else(shipped_pacts);
    let mut pacts = match faultline_contracts::files::read_pacts(&dir) {
        Ok(pacts) => pacts,
        Err(error) => {
            eprintln!("error: {error}\nnothing was started");
            return ExitCode::from(2);
        }
    };
    if let Some(provider) = &provider {
        pacts.retain(|(_, pact)| &pact.provider.name == provider);
        if pacts.is_empty() {
            eprintln!(
                "error: no pact in {} has provider {provider:?}\nnothing was started",
                dir.display()
            );
            return ExitCode::from(2);
        }
    }
    let out = out.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("reports/contracts-{now}"))
    });
    let work = async {
        let mut overrides = std::collections::BTreeMap::new();
        if let (Some(url), Some(provider)) = (&provider_url, &provider) {
            let mut target = ProviderTarget::http(provider, url);
            if let Some(bootstrap) = &kafka_bootstrap {
                target = target.with_messages(std::sync::Arc::new(KafkaMessages::new(bootstrap)));
            }
            overrides.insert(provider.clone(), target);
            return Ok::<_, anyhow::Error>(contracts::verify_pacts(None, &pacts, &overrides).await);
        }
        eprintln!("starting the reference system (Postgres, Kafka, Toxiproxy, five services)…");
        let stack = Stack::start(StackConfig::default()).await?;
        let report = contracts::verify_pacts(Some(&stack), &pacts, &overrides).await;
        stack.shutdown().await?;
        Ok(report)
    };
    let report = match until_interrupted(work).await {
        Some(Ok(report)) => report,
        Some(Err(error)) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
        None => {
            eprintln!("interrupted: removing this run's containers and network");
            if let Err(error) = infra::remove_own_resources().await {
                eprintln!("error: cleanup after interrupt: {error:#} (the next run sweeps them)");
            }
            return ExitCode::from(130);
        }
    };
    print!("{}", report.to_text());
    if let Err(error) = contracts::write_report(&report, &out) {
        eprintln!("error: writing the results to {}: {error}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!(
        "wrote {0}/verification.json, {0}/verification.junit.xml and {0}/verification.html",
        out.display()
    );
    if report.holds() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A JSON document with `interactions` (or Pact's `metadata.pactSpecification`): a pact.
fn is_pact_file(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|doc| {
            doc.get("interactions").is_some() || doc["metadata"].get("pactSpecification").is_some()
        })
}

/// `faultline contracts diff OLD.json NEW.json` for pacts: exit 0 when the new pact asks
/// nothing new of the provider, 1 when it does, 2 when a pact cannot be read.
fn pact_diff(old: &std::path::Path, new: &std::path::Path, json: bool) -> ExitCode {
    use faultline_contracts::compat::pact::diff_pacts;
    use faultline_contracts::files::read_pact;
    let (before, after) = match (read_pact(old), read_pact(new)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("error: {error}\nnothing was compared");
            return ExitCode::from(2);
        }
    };
    let diff = diff_pacts(&before, &after);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&diff).expect("a diff serialises")
        );
    } else {
        if let Some(renamed) = &diff.renamed {
            println!("RENAMED {renamed}");
        }
        for change in &diff.changes {
            let kind = change.kind.to_string().to_uppercase();
            println!(
                "{kind} {:?} ({})",
                change.interaction,
                change.parts.join(", ")
            );
            for c in &change.counterexamples {
                println!("    counterexample ({}): {}", c.side, c.example);
                for m in &c.mismatches {
                    println!("        {m}");
                }
            }
        }
    }
    if diff.needs_verification() {
        eprintln!(
            "{} -> {}: {} change(s); the new pact asks something the provider was not verified for",
            diff.consumer,
            diff.provider,
            diff.changes.len()
        );
        ExitCode::FAILURE
    } else {
        eprintln!(
            "{} -> {}: {} change(s); nothing new is asked of the provider",
            diff.consumer,
            diff.provider,
            diff.changes.len()
        );
        ExitCode::SUCCESS
    }
}

/// `faultline contracts diff`: exit 0 when compatible, 1 when something breaks (or a
/// suspected break could not be shown), 2 when a schema cannot be read or is unsupported.
fn contracts_diff(
    old: &std::path::Path,
    new: &std::path::Path,
    mode: faultline_contracts::compat::Mode,
    history: &[PathBuf],
    json: bool,
) -> ExitCode {
    use faultline_contracts::compat::{self, Schema};
    if is_pact_file(old) || is_pact_file(new) {
        if !history.is_empty() {
            eprintln!("error: --history applies to JSON Schemas, not to pact files");
            return ExitCode::from(2);
        }
        return pact_diff(old, new, json);
    }
    let mut files = Vec::new();
    for entry in history {
        if entry.is_dir() {
            let listed = std::fs::read_dir(entry).and_then(|dir| {
                dir.map(|item| item.map(|item| item.path()))
                    .collect::<Result<Vec<_>, _>>()
            });
            let mut found: Vec<PathBuf> = match listed {
                Ok(found) => found,
                Err(error) => {
                    eprintln!("error: reading the folder {}: {error}", entry.display());
                    return ExitCode::from(2);
                }
            };
            found.retain(|path| path.extension().is_some_and(|ext| ext == "json"));
            found.sort();
            files.extend(found);
        } else {
            files.push(entry.clone());
        }
    }
    let same = |a: &PathBuf, b: &std::path::Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    files.retain(|file| !same(file, old) && !same(file, new));
    files.push(old.to_path_buf());
    files.push(new.to_path_buf());
    let mut schemas = Vec::new();
    for file in &files {
        let name = file.display().to_string();
        let loaded = std::fs::read_to_string(file)
            .map_err(|error| format!("{name}: cannot read the file: {error}"))
            .and_then(|text| {
                Schema::from_json_str(&name, &text).map_err(|error| error.to_string())
            });
        match loaded {
            Ok(schema) => schemas.push(schema),
            Err(error) => {
                eprintln!("error: {error}\nnothing was compared");
                return ExitCode::from(2);
            }
        }
    }
    let report = compat::check_transitive(&schemas, mode);
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("error: writing the report as JSON: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        for change in &report.breaking {
            println!(
                "BREAKING {} {}: {} ({} -> {}); counterexample: {}; rejected: {}",
                change.direction,
                change.path,
                change.change,
                change.writer,
                change.reader,
                change.counterexample,
                change.rejected_because
            );
        }
        for doubt in &report.unverified {
            println!(
                "UNVERIFIED {} {}: {} ({} -> {}); {}",
                doubt.direction,
                doubt.path,
                doubt.change,
                doubt.writer,
                doubt.reader,
                doubt.problem
            );
        }
    }
    let versions = schemas.len();
    if report.is_compatible() {
        eprintln!("compatible ({mode}, {versions} versions)");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "incompatible ({mode}, {versions} versions): {} breaking changes, {} unverified",
            report.breaking.len(),
            report.unverified.len()
        );
        ExitCode::FAILURE
    }
}
