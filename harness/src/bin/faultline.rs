//! The `faultline` command: a thin shell over the harness library.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use faultline_chaos::scenario::Scenario;
use faultline_harness::infra::{self, Infra};
use faultline_harness::{bench, nemesis, runner};

#[derive(Parser)]
#[command(
    name = "faultline",
    version,
    about = "Contract testing and chaos engineering for microservices, on real Postgres, Kafka and Toxiproxy."
)]
struct Cli {
    /// The system description, for the commands that start or validate against a system
    /// [default: ./faultline.toml]. The reference system: services/faultline.toml.
    #[arg(long, global = true, env = "FAULTLINE_SYSTEM", value_name = "FILE")]
    system: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Reads the system description named by `--system` (or `./faultline.toml`); a description
/// that cannot be read is exit 2 with nothing started.
fn load_system(
    flag: Option<&std::path::Path>,
) -> Result<faultline_harness::system::System, ExitCode> {
    use faultline_harness::system::{System, DEFAULT_FILE};
    let path = flag.map_or_else(|| PathBuf::from(DEFAULT_FILE), std::path::Path::to_path_buf);
    if flag.is_none() && !path.is_file() {
        eprintln!(
            "error: no system description: {DEFAULT_FILE} is not in the current folder; pass --system FILE \
             (`faultline init` writes a starter; the reference system is services/faultline.toml)\nnothing was started"
        );
        return Err(ExitCode::from(2));
    }
    System::load(&path).map_err(|error| {
        eprintln!("error: {error}\nnothing was started");
        ExitCode::from(2)
    })
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
    /// The contract broker (published pacts, verification results, deployments).
    Broker {
        #[command(subcommand)]
        command: BrokerCommand,
    },
}

#[derive(Subcommand)]
enum BrokerCommand {
    /// Serve the broker until interrupted. Configuration from the environment:
    /// FAULTLINE_BROKER_DATABASE_URL (its own Postgres database; migrated at start),
    /// FAULTLINE_BROKER_WRITE_TOKEN (bearer token for writes), FAULTLINE_BROKER_READ_TOKEN
    /// (optional: then reads need a token too).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9292")]
        addr: std::net::SocketAddr,
    },
}

/// Where the broker is and how to authenticate.
#[derive(clap::Args, Clone)]
struct BrokerArgs {
    /// The broker's base URL.
    #[arg(long, env = "FAULTLINE_BROKER_URL")]
    broker_url: String,
    /// Bearer token (the write token for publishing and recording).
    #[arg(long, env = "FAULTLINE_BROKER_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl BrokerArgs {
    fn client(&self) -> faultline_harness::broker::BrokerClient {
        faultline_harness::broker::BrokerClient::new(&self.broker_url, self.token.clone())
    }
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
        /// Fetch the pacts for verification from this broker instead of files (needs
        /// --provider and --provider-version; pending pacts do not fail the run).
        #[arg(long, requires_all = ["provider", "provider_version"], conflicts_with = "pacts")]
        broker_url: Option<String>,
        /// Bearer token for the broker.
        #[arg(long, env = "FAULTLINE_BROKER_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The provider version being verified (recorded with published results).
        #[arg(long)]
        provider_version: Option<String>,
        /// The provider's branch (pending pacts are judged per branch).
        #[arg(long)]
        provider_branch: Option<String>,
        /// Consumer version selectors as JSON objects (repeatable) [default: {"mainBranch":
        /// true} and {"deployedOrReleased": true}].
        #[arg(long)]
        consumer_version_selectors: Vec<String>,
        /// Publish the results to the broker.
        #[arg(long, requires = "broker_url")]
        publish: bool,
        /// The CI build's URL, recorded with published results.
        #[arg(long)]
        build_url: Option<String>,
    },
    /// Publish pact files to the broker for a consumer version and branch (one request per
    /// consumer, each all or nothing). Exit 0 published (or already published identically),
    /// 1 refused (a different pact for the same version: 409; a malformed pact: 400), 2 for
    /// unreadable files (nothing sent).
    Publish {
        /// The consumer version (e.g. the git commit).
        #[arg(long)]
        version: String,
        /// The consumer's branch.
        #[arg(long)]
        branch: Option<String>,
        /// A folder of *.json pact files, or one file [default: contracts/pacts].
        dir: Option<PathBuf>,
        #[command(flatten)]
        broker: BrokerArgs,
    },
    /// Can this version of a pacticipant be deployed to an environment? Exit 0 yes, 1 no
    /// (printing what is missing or failed), 2 when the broker cannot answer.
    CanIDeploy {
        #[arg(long)]
        pacticipant: String,
        #[arg(long)]
        version: String,
        #[arg(long)]
        to_environment: String,
        #[command(flatten)]
        broker: BrokerArgs,
    },
    /// Record that a version is now deployed to (or, with --release, released in) an
    /// environment.
    RecordDeployment {
        #[arg(long)]
        pacticipant: String,
        #[arg(long)]
        version: String,
        #[arg(long)]
        environment: String,
        /// A release (stays supported beside other releases) rather than a deployment
        /// (replaces the version deployed there before).
        #[arg(long)]
        release: bool,
        /// Create the environment when the broker does not know it.
        #[arg(long)]
        create_environment: bool,
        #[command(flatten)]
        broker: BrokerArgs,
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
    /// Start the infrastructure the system description asks for (Postgres, Kafka, Toxiproxy,
    /// a proxy per link), print where everything listens, then tear it down (or hold it
    /// until Ctrl-C with --hold).
    Up {
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
    /// verifier beside the official `pact verifier` on the same pacts and providers.
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
    let system_flag = cli.system.clone();
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
                broker_url,
                token,
                provider_version,
                provider_branch,
                consumer_version_selectors,
                publish,
                build_url,
            },
    } = cli.command
    {
        let broker = match broker_url {
            None => None,
            Some(url) => {
                let mut selectors = Vec::new();
                for text in &consumer_version_selectors {
                    match serde_json::from_str(text) {
                        Ok(selector) => selectors.push(selector),
                        Err(error) => {
                            eprintln!("error: --consumer-version-selectors {text}: {error}\nnothing was started");
                            return ExitCode::from(2);
                        }
                    }
                }
                Some(BrokerVerify {
                    client: faultline_harness::broker::BrokerClient::new(&url, token),
                    provider_version: provider_version.unwrap_or_default(),
                    provider_branch,
                    selectors,
                    publish,
                    build_url,
                })
            }
        };
        return contracts_verify(
            system_flag.as_deref(),
            provider,
            pacts,
            provider_url,
            kafka_bootstrap,
            out,
            broker,
        )
        .await;
    }
    if let Command::Contracts { command } = cli.command {
        return contracts_broker_command(command).await;
    }
    if let Command::Broker {
        command: BrokerCommand::Serve { addr },
    } = cli.command
    {
        return broker_serve(addr).await;
    }
    if let Command::Report { command } = cli.command {
        return report_command(command);
    }
    if let Command::Chaos {
        command: ChaosCommand::Run { path, seed, out },
    } = cli.command
    {
        // A chaos run handles interrupts itself: it heals and saves before it stops.
        return match load_system(system_flag.as_deref()) {
            Ok(system) => chaos_run(&system, &path, seed, &out).await,
            Err(code) => code,
        };
    }
    let needs_system = matches!(
        cli.command,
        Command::Stack {
            command: StackCommand::Up { .. }
        } | Command::Chaos { .. }
            | Command::Bench { .. }
    );
    let system = if needs_system {
        match load_system(system_flag.as_deref()) {
            Ok(system) => Some(system),
            Err(code) => return code,
        }
    } else {
        None
    };
    match interruptible(run(cli, system)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// Runs `work` until it finishes or the process is interrupted. An error is printed and is
/// exit 1; an interrupt removes what the run started and is exit 130.
async fn interruptible<T>(work: impl Future<Output = anyhow::Result<T>>) -> Result<T, ExitCode> {
    match until_interrupted(work).await {
        Some(Ok(value)) => Ok(value),
        Some(Err(error)) => {
            eprintln!("error: {error:#}");
            Err(ExitCode::FAILURE)
        }
        None => {
            // The run's future was dropped, which removes what it had registered; whatever
            // was still being created belongs to this process and is removed by label here.
            eprintln!("interrupted: removing this run's containers and network");
            if let Err(error) = infra::remove_own_resources().await {
                eprintln!("error: cleanup after interrupt: {error:#} (the next run sweeps them)");
            }
            Err(ExitCode::from(130))
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

async fn run(cli: Cli, system: Option<faultline_harness::system::System>) -> anyhow::Result<()> {
    let system = || system.as_ref().expect("loaded by main for this command");
    match cli.command {
        Command::Stack {
            command: StackCommand::Up { hold, json, logs },
        } => stack_up(system(), hold, json, logs).await,
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
        Command::Broker { .. } => unreachable!("main runs the broker itself"),
        Command::Report { .. } => unreachable!("main runs report commands itself"),
        Command::Chaos {
            command: ChaosCommand::List { dir },
        } => {
            let dir = dir.unwrap_or_else(shipped_scenarios);
            let scenarios = Scenario::load_dir(&dir, system().topology())?;
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
            eprintln!(
                "starting {} and placing {orders} orders at each of {concurrency:?}…",
                system().name
            );
            let result = bench::saga(system(), &concurrency, orders).await?;
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
            eprintln!(
                "starting {} and verifying the pacts {iterations} times with each verifier…",
                system().name
            );
            let pacts = pacts.unwrap_or_else(shipped_pacts);
            let binary = faultline_harness::contracts::pact_binary();
            let result = bench::contracts(system(), iterations, &pacts, &binary).await?;
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
            let result = bench::infra(system(), iterations).await?;
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
async fn chaos_run(
    system: &faultline_harness::system::System,
    path: &std::path::Path,
    seed: Option<u64>,
    out: &std::path::Path,
) -> ExitCode {
    let scenarios = if path.is_dir() {
        Scenario::load_dir(path, system.topology())
    } else {
        Scenario::load(path, system.topology()).map(|s| vec![(path.to_path_buf(), s)])
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
        vec![runner::run_until(system, scenario, seed, out, interrupt, &progress).await]
    } else {
        let all: Vec<Scenario> = scenarios.iter().map(|(_, s)| s.clone()).collect();
        match runner::run_all_until(system, &all, seed, out, interrupt, &progress).await {
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
    system: &faultline_harness::system::System,
    hold: bool,
    json: bool,
    logs: Option<PathBuf>,
) -> anyhow::Result<()> {
    eprintln!("starting the infrastructure of {}…", system.name);
    let stack = Infra::start(system.infra_config()).await?;
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
    system_flag: Option<&std::path::Path>,
    provider: Option<String>,
    pacts: Option<PathBuf>,
    provider_url: Option<String>,
    kafka_bootstrap: Option<String>,
    out: Option<PathBuf>,
    broker: Option<BrokerVerify>,
) -> ExitCode {
    use faultline_contracts::verify::ProviderTarget;
    use faultline_harness::contracts::{self, KafkaMessages};
    use faultline_harness::stack::{Stack, StackConfig};

    if let Some(broker) = broker {
        let provider = provider.unwrap_or_default();
        return contracts_verify_from_broker(
            system_flag,
            &provider,
            provider_url,
            kafka_bootstrap,
            out,
            broker,
        )
        .await;
    }
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
    let system = match provider_url {
        Some(_) => None,
        None => match load_system(system_flag) {
            Ok(system) => Some(system),
            Err(code) => return code,
        },
    };
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
        let system = system
            .as_ref()
            .expect("loaded when no --provider-url is given");
        eprintln!("starting {} from {}…", system.name, system.file.display());
        let stack = Stack::start(system, StackConfig::default()).await?;
        let report = contracts::verify_pacts(Some(&stack), &pacts, &overrides).await;
        stack.shutdown().await?;
        Ok(report)
    };
    let report = match interruptible(work).await {
        Ok(value) => value,
        Err(code) => return code,
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

/// `contracts verify --broker-url`: what to fetch and where to publish.
struct BrokerVerify {
    client: faultline_harness::broker::BrokerClient,
    provider_version: String,
    provider_branch: Option<String>,
    selectors: Vec<faultline_harness::broker::store::Selector>,
    publish: bool,
    build_url: Option<String>,
}

/// `faultline contracts verify --broker-url`: the broker's pacts for verification of
/// `provider`, verified like files, the results published with `--publish`.
async fn contracts_verify_from_broker(
    system_flag: Option<&std::path::Path>,
    provider: &str,
    provider_url: Option<String>,
    kafka_bootstrap: Option<String>,
    out: Option<PathBuf>,
    broker: BrokerVerify,
) -> ExitCode {
    use faultline_contracts::verify::ProviderTarget;
    use faultline_harness::broker::verification::{verify_from_broker, BrokerSource};
    use faultline_harness::contracts::KafkaMessages;
    use faultline_harness::stack::{Stack, StackConfig};

    let source = BrokerSource {
        client: &broker.client,
        provider,
        selectors: broker.selectors.clone(),
        provider_version: &broker.provider_version,
        provider_branch: broker.provider_branch.as_deref(),
        publish: broker.publish,
        build_url: broker.build_url.as_deref(),
    };
    let out = out.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("reports/contracts-{now}"))
    });
    let system = match provider_url {
        Some(_) => None,
        None => match load_system(system_flag) {
            Ok(system) => Some(system),
            Err(code) => return code,
        },
    };
    let work = async {
        let mut overrides = std::collections::BTreeMap::new();
        if let Some(url) = &provider_url {
            let mut target = ProviderTarget::http(provider, url);
            if let Some(bootstrap) = &kafka_bootstrap {
                target = target.with_messages(std::sync::Arc::new(KafkaMessages::new(bootstrap)));
            }
            overrides.insert(provider.to_string(), target);
            return Ok::<_, anyhow::Error>(verify_from_broker(&source, None, &overrides).await?);
        }
        let system = system
            .as_ref()
            .expect("loaded when no --provider-url is given");
        eprintln!("starting {} from {}…", system.name, system.file.display());
        let stack = Stack::start(system, StackConfig::default()).await?;
        let verification = verify_from_broker(&source, Some(&stack), &overrides).await;
        stack.shutdown().await?;
        Ok(verification?)
    };
    let verification = match interruptible(work).await {
        Ok(value) => value,
        Err(code) => return code,
    };
    for pact in &verification.pacts {
        eprintln!(
            "{} -> {} ({}){}",
            pact.pact.consumer.name,
            pact.pact.provider.name,
            pact.url,
            if pact.pending { ": pending" } else { "" }
        );
        for notice in &pact.notices {
            eprintln!("  {notice}");
        }
    }
    let report = &verification.report;
    print!("{}", report.to_text());
    if broker.publish {
        eprintln!(
            "published the results of {} pact(s) as {provider} {}",
            verification.published, broker.provider_version
        );
    }
    if let Err(error) = faultline_harness::contracts::write_report(report, &out) {
        eprintln!("error: writing the results to {}: {error}", out.display());
        return ExitCode::FAILURE;
    }
    if report.holds() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `faultline broker serve`.
async fn broker_serve(addr: std::net::SocketAddr) -> ExitCode {
    use faultline_harness::broker::{Broker, BrokerConfig};
    let config = match BrokerConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let broker = match Broker::start(config, addr).await {
        Ok(broker) => broker,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("faultline broker listening on {}", broker.url());
    if until_interrupted(std::future::pending::<()>())
        .await
        .is_none()
    {
        eprintln!("stopping the broker");
    }
    broker.stop().await;
    ExitCode::SUCCESS
}

/// `contracts publish | can-i-deploy | record-deployment`.
async fn contracts_broker_command(command: ContractsCommand) -> ExitCode {
    match command {
        ContractsCommand::Publish {
            version,
            branch,
            dir,
            broker,
        } => {
            let dir = dir.unwrap_or_else(shipped_pacts);
            let pacts = match faultline_contracts::files::read_pacts(&dir) {
                Ok(pacts) => pacts,
                Err(error) => {
                    eprintln!("error: {error}\nnothing was published");
                    return ExitCode::from(2);
                }
            };
            let mut by_consumer: std::collections::BTreeMap<String, Vec<_>> = Default::default();
            for (_, pact) in pacts {
                by_consumer
                    .entry(pact.consumer.name.clone())
                    .or_default()
                    .push(pact);
            }
            let client = broker.client();
            for (consumer, pacts) in &by_consumer {
                match client
                    .publish(consumer, &version, branch.as_deref(), pacts)
                    .await
                {
                    Ok(answer) => {
                        for notice in answer["notices"].as_array().into_iter().flatten() {
                            println!("{}", notice["text"].as_str().unwrap_or_default());
                        }
                    }
                    Err(error) => {
                        eprintln!("error: publishing {consumer} {version}: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        ContractsCommand::CanIDeploy {
            pacticipant,
            version,
            to_environment,
            broker,
        } => match broker
            .client()
            .can_i_deploy(&pacticipant, &version, &to_environment)
            .await
        {
            Ok(answer) => {
                println!(
                    "{}: {}",
                    if answer.deployable { "yes" } else { "no" },
                    answer.reason
                );
                for failure in &answer.failures {
                    println!("  missing or failed: {failure}");
                }
                for notice in &answer.notices {
                    println!("  note: {notice}");
                }
                if answer.deployable {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
        },
        ContractsCommand::RecordDeployment {
            pacticipant,
            version,
            environment,
            release,
            create_environment,
            broker,
        } => {
            let client = broker.client();
            if create_environment {
                if let Err(error) = client.ensure_environment(&environment, false).await {
                    eprintln!("error: {error}");
                    return ExitCode::FAILURE;
                }
            }
            match client
                .record_deployment(&pacticipant, &version, &environment, release)
                .await
            {
                Ok(_) => {
                    println!(
                        "recorded {pacticipant} {version} as {} in {environment}",
                        if release { "released" } else { "deployed" }
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        ContractsCommand::Verify { .. } | ContractsCommand::Diff { .. } => {
            unreachable!("main runs verify and diff itself")
        }
    }
}
