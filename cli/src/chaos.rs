//! `faultline chaos list | run`: scenarios validated and listed, or run with their verdicts.

use std::path::Path;

use faultline_chaos::scenario::{Scenario, ScenarioError, Vocabulary};
use faultline_harness::{nemesis, runner};

use crate::error::{CliError, Then, NOTHING_STARTED};
use crate::flags::{ChaosCommand, ChaosExploreArgs, ChaosListArgs, ChaosRunArgs};
use crate::interrupt::{remove_own_resources, Interrupt};
use faultline_harness::extension::Registry;
use faultline_harness::system::System;

pub async fn exec(
    command: ChaosCommand,
    system: Option<&Path>,
    interrupt: &Interrupt,
) -> Result<(), CliError> {
    let (system, registry) = crate::system(system)?;
    match command {
        ChaosCommand::List(args) => list(args, registry.vocabulary(&system)),
        ChaosCommand::Run(args) => run(args, &system, &registry, interrupt).await,
        ChaosCommand::Explore(args) => explore(args, &system, &registry, interrupt).await,
    }
}

fn list(args: ChaosListArgs, topology: Vocabulary<'_>) -> Result<(), CliError> {
    let dir = args
        .dir
        .unwrap_or_else(|| crate::shipped("chaos/scenarios"));
    let scenarios = Scenario::load_dir(&dir, topology)?;
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

/// The scenario file, or every one in the folder.
fn load(path: &Path, topology: Vocabulary<'_>) -> Result<Vec<(std::path::PathBuf, Scenario)>, CliError> {
    let scenarios = if path.is_dir() {
        Scenario::load_dir(path, topology)?
    } else {
        vec![(path.to_path_buf(), Scenario::load(path, topology)?)]
    };
    if scenarios.is_empty() {
        return Err(CliError::input(ScenarioError {
            file: path.display().to_string(),
            field: "(directory)".into(),
            reason: "no *.toml scenarios".into(),
        }));
    }
    Ok(scenarios)
}

/// A single scenario gets a stack of its own; several share one, reset between runs. An
/// interrupt heals the faults and saves the history before the run stops.
async fn run(
    args: ChaosRunArgs,
    system: &System,
    registry: &Registry,
    interrupt: &Interrupt,
) -> Result<(), CliError> {
    let system = &with_service_env(system, args.service_env)?;
    let scenarios = load(&args.path, registry.vocabulary(system)).then(NOTHING_STARTED)?;
    faultline_harness::infra::InfraConfig::for_system(system)
        .check_environment()
        .then(NOTHING_STARTED)?;
    let (seed, out) = (args.seed, args.out.as_path());
    let clock = std::time::Instant::now();
    let progress = |line: &str| eprintln!("[{:>7.1}s] {line}", clock.elapsed().as_secs_f64());
    let stop = interrupt.handled_by_command();
    let results: Vec<Result<runner::RunOutcome, runner::RunError>> = if scenarios.len() == 1 {
        let (file, scenario) = &scenarios[0];
        progress(&format!("── {} ({})", scenario.name, file.display()));
        vec![runner::run_until(system, registry, scenario, seed, out, stop, &progress).await]
    } else {
        let all: Vec<Scenario> = scenarios.iter().map(|(_, s)| s.clone()).collect();
        match runner::run_all_until(system, registry, &all, seed, out, stop, &progress).await {
            Ok(results) => results,
            Err(error @ runner::RunError::Interrupted { .. }) => vec![Err(error)],
            // The shared stack did not start: no scenario ran.
            Err(error) => {
                eprintln!("error: the stack the scenarios share did not start: {error}");
                Vec::new()
            }
        }
    };
    let mut summary = Vec::new();
    let (mut passed, mut failed, mut not_run) = (0, 0, 0);
    let mut results = results.into_iter();
    for (_, scenario) in &scenarios {
        match results.next() {
            Some(Ok(outcome)) => {
                print_verdicts(&outcome);
                if outcome.ok {
                    passed += 1;
                } else {
                    failed += 1;
                }
                summary.push(format!(
                    "{} {:<40} seed {:<6} {:>6.1}s  {}",
                    if outcome.ok { "passed " } else { "FAILED " },
                    scenario.name,
                    outcome.seed,
                    outcome.timings.total_ms as f64 / 1000.0,
                    outcome.out_dir.display()
                ));
            }
            Some(Err(error @ runner::RunError::Interrupted { .. })) => {
                eprintln!("{error}");
                // Interrupted while the stack was starting: what it had created is this
                // process's, removed by label.
                remove_own_resources().await;
                return Err(error.into());
            }
            Some(Err(error)) => {
                eprintln!("error: {}: {error}", scenario.name);
                not_run += 1;
                summary.push(format!("NOT RUN {:<40} {error}", scenario.name));
            }
            // The stack did not start, or an earlier scenario's error left none to run it on.
            None => {
                not_run += 1;
                summary.push(format!("NOT RUN {:<40} no stack to run it on (see the error above)", scenario.name));
            }
        }
    }
    println!();
    for line in &summary {
        println!("{line}");
    }
    let index = out.join("index.html");
    println!(
        "{} scenarios in {:.1}s: {passed} passed, {failed} failed, {not_run} could not run{}",
        scenarios.len(),
        clock.elapsed().as_secs_f64(),
        if passed + failed > 0 && index.is_file() {
            format!("; reports listed in {}", index.display())
        } else {
            String::new()
        }
    );
    // A broken promise is known whatever else happened; runs that never happened are not
    // reported as either.
    if failed > 0 {
        Err(CliError::CheckFailed)
    } else if not_run > 0 {
        Err(CliError::CouldNotRun(anyhow::anyhow!(
            "{not_run} of {} scenario(s) could not run",
            scenarios.len()
        )))
    } else {
        Ok(())
    }
}

/// `system` with `--service-env` set, each naming a described service.
fn with_service_env(system: &System, env: Vec<(String, String, String)>) -> Result<System, CliError> {
    let mut system = system.clone();
    system
        .set_service_env(env)
        .map_err(|message| CliError::input(anyhow::anyhow!(message)))
        .then(NOTHING_STARTED)?;
    Ok(system)
}

fn print_verdicts(outcome: &runner::RunOutcome) {
    for verdict in &outcome.verdicts {
        eprintln!(
            "  {} {}: {}",
            if verdict.ok { "ok  " } else { "FAIL" },
            verdict.checker,
            verdict.summary
        );
        for example in &verdict.counterexamples {
            let mut about = Vec::new();
            if !example.subjects.is_empty() {
                about.push(format!("about: {}", example.subjects.join(", ")));
            }
            if !example.events.is_empty() {
                about.push(format!("history events: {:?}", example.events));
            }
            eprintln!(
                "       - {}{}",
                example.description,
                if about.is_empty() { String::new() } else { format!(" ({})", about.join("; ")) }
            );
        }
    }
    for line in &outcome.unhealed {
        eprintln!("  FAIL could not heal: {line}");
    }
}

/// Explores the fault space around a scenario; exit 1 when an experiment failed.
async fn explore(
    args: ChaosExploreArgs,
    system: &System,
    registry: &Registry,
    interrupt: &Interrupt,
) -> Result<(), CliError> {
    use faultline_harness::explore::{self, ExploreError};
    let system = &with_service_env(system, args.service_env)?;
    let base = Scenario::load(&args.scenario, registry.vocabulary(system)).then(NOTHING_STARTED)?;
    faultline_harness::infra::InfraConfig::for_system(system)
        .check_environment()
        .then(NOTHING_STARTED)?;
    let out = args
        .out
        .unwrap_or_else(|| Path::new("reports").join(format!("explore-{}", base.name)));
    let options = explore::Options {
        budget: args.budget,
        time: args.time,
        seed: args.seed,
        delay: args.delay,
        fresh: args.fresh,
        shrink: !args.no_shrink,
        shrink_runs: args.shrink_runs,
        only: args.only,
        until_failure: args.until_failure,
        reset: args.reset.as_deref().map(|r| match r {
            "warm" => faultline_harness::system::ResetMode::Warm,
            _ => faultline_harness::system::ResetMode::Fresh,
        }),
        statements: args.statements,
        broker_requests: args.broker_requests,
    };
    let clock = std::time::Instant::now();
    let progress = |line: &str| eprintln!("[{:>7.1}s] {line}", clock.elapsed().as_secs_f64());
    let stop = interrupt.handled_by_command();
    let exploration =
        match explore::explore_until(system, registry, &args.scenario, &options, &out, stop, &progress).await {
            Ok(exploration) => exploration,
            Err(error @ (ExploreError::Mismatch { .. } | ExploreError::State { .. })) => {
                return Err(CliError::input(error)).then(NOTHING_STARTED);
            }
            Err(error @ ExploreError::BaseFails { .. }) => {
                eprintln!("error: {error}");
                return Err(CliError::CheckFailed);
            }
            Err(ExploreError::Run(error @ runner::RunError::Interrupted { .. })) => {
                eprintln!("{error}; run the same command again to resume");
                remove_own_resources().await;
                return Err(error.into());
            }
            Err(ExploreError::Run(error)) => return Err(error.into()),
        };
    println!();
    for tried in exploration.failed() {
        println!("FAILED #{} {}", tried.number, tried.experiment.id);
        for failure in &tried.failures {
            println!("    {}: {}", failure.checker, failure.summary);
        }
        if let Some(report) = &tried.report {
            println!("    report: {}", report.display());
        }
        match tried.reproducer.as_ref().map(|r| (&r.file, r.confirmed)) {
            Some((Some(file), _)) => println!("    reproducer: faultline chaos run {}", file.display()),
            Some((None, confirmed)) => println!(
                "    not confirmed: failed {confirmed} of {} reruns (flaky), not shrunk",
                explore::RERUNS
            ),
            None => {}
        }
    }
    println!(
        "{} experiment(s) run, {} failed, {} pending ({:?}); {:.1} per minute; {}",
        exploration.experiments.len(),
        exploration.failed().count(),
        exploration.pending.len(),
        exploration.stopped.expect("a finished exploration says why it stopped"),
        exploration.per_minute,
        out.join("explore.html").display()
    );
    if exploration.failed().next().is_some() {
        Err(CliError::CheckFailed)
    } else {
        Ok(())
    }
}
