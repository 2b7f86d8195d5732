//! The chaos runner: one scenario, start to finish. It wires the other roles together and owns
//! none of their logic — the [`workload`](crate::workload) drives the clients, the
//! [`nemesis`](crate::nemesis) injects faults, the [`history`](crate::history) records both, the
//! [`checkers`](crate::checkers) judge. It knows no particular system: what is specific to one
//! comes from its description and its [extension](crate::extension).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use faultline_chaos::scenario::Scenario;
//! use faultline_harness::extension::Registry;
//! use faultline_harness::system::System;
//! let system = System::load("examples/bank/faultline.toml".as_ref())?;
//! // The bank names no extension; a program that links some passes them here.
//! let registry = Registry::linked(&system, &[])?;
//! let scenario = Scenario::load(
//!     "examples/bank/scenarios/produce-answers-lost.toml".as_ref(),
//!     registry.vocabulary(&system),
//! )?;
//! let outcome =
//!     faultline_harness::runner::run(&system, &registry, &scenario, None, "reports".as_ref()).await?;
//! println!("{} → {}", if outcome.ok { "passed" } else { "FAILED" }, outcome.out_dir.display());
//! # Ok(()) }
//! ```
//!
//! # A run, in order
//!
//! 1. Start a fresh [`Stack`] of the described system (with the environment its extension
//!    asks for, [`stack_config`]).
//! 2. [Prepare](crate::workload::Workload::prepare) the workload: the scenario's declarative
//!    HTTP workload, or the system's own (the reference system's seeds stock and mints a
//!    token).
//! 3. Steady state before the faults: the scenario's probes (or the workload's default
//!    ones). If it does not hold, the run stops there and fails: faults on a system that is
//!    already broken prove nothing.
//! 4. Load phase: the workload and the nemesis run side by side from the same instant.
//! 5. Heal every fault still in effect, wait until every service is ready again (at most
//!    [`RECOVERY_BOUND`]: a breaker the fault opened closes on its own schedule), then let
//!    the workload
//!    [settle](crate::workload::Workload::settle) (bounded): work in flight finishes.
//! 6. Steady state after healing, the same probes again.
//! 7. Every checker the scenario asks for ([`Registry::checkers_for`]), on the history and
//!    the system's final state.
//!
//! Whatever happens — an error, a failed probe, an interrupt — faults are healed, the history,
//! verdicts and logs are written, and the stack is shut down.
//!
//! # What a run leaves in `<out>/<scenario>-<run id>/`
//!
//! `history.json` (every operation and fault), `verdicts.json`, `plan.json` (the planned orders
//! and fault timeline: what the seed produced), `outcome.json` (seed, timings, counts),
//! `logs/` (each service's log, the host Toxiproxy's, the containers' — on a reused stack what
//! was written since its last reset) and, when the run got
//! as far as its verdicts, the [report](crate::report) (`report.json`, `report.html`,
//! `junit.xml`, `summary.md`); `<out>/index.html` is then rewritten to list it.
//!
//! Layer 5 (runner) of the harness ([layers](crate#layers)): wires layers 1–4 together.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_chaos::scenario::{Probe, ProbeCheck, Scenario};
use serde::Serialize;
use serde_json::json;

use crate::checkers::{self, CheckContext, CheckError, Circuits, Facts, Verdict};
use crate::extension::Registry;
use crate::history::{History, Op, Process, Recorder};
use crate::nemesis::{self, Nemesis};
use crate::report::FinalState;
use crate::stack::{Stack, StackConfig, StackError};
use crate::system::System;
pub use crate::checkers::slo::p99_verdict;
use crate::workload::{http::HttpRun, LoadSummary, PrepareError, Settlement, Workload};

/// Why a run could not be carried out (as opposed to a run whose verdicts failed).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("stack: {0}")]
    Stack(#[from] StackError),

    #[error("{action}: {message}")]
    Setup { action: String, message: String },

    #[error(transparent)]
    Check(#[from] CheckError),

    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("report: {0}")]
    Report(#[from] crate::report::ReportError),

    #[error("interrupted: faults healed and the stack shut down; the history so far is in {}", out_dir.display())]
    Interrupted { out_dir: PathBuf },
}

impl From<PrepareError> for RunError {
    fn from(error: PrepareError) -> Self {
        match error {
            PrepareError::Stack(error) => RunError::Stack(error),
            PrepareError::Setup { action, message } => RunError::Setup { action, message },
        }
    }
}

/// Wall time of each phase of a run, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunTimings {
    pub stack_start_ms: u64,
    pub steady_state_before_ms: u64,
    pub load_ms: u64,
    pub heal_and_settle_ms: u64,
    pub steady_state_after_ms: u64,
    pub checking_ms: u64,
    /// Each operation sent alone to learn its footprint (0 when the run did not).
    pub footprints_ms: u64,
    pub shutdown_ms: u64,
    pub total_ms: u64,
}

/// What a finished run found.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub scenario: String,
    pub seed: u64,
    /// Every verdict (steady-state probes and checkers) passed.
    pub ok: bool,
    /// Steady-state verdicts first, then the checkers'.
    pub verdicts: Vec<Verdict>,
    /// Where the run's files are.
    pub out_dir: PathBuf,
    pub timings: RunTimings,
    pub load: LoadSummary,
    pub settlement: Settlement,
    /// Faults that could not be healed (each also a failed HealFault in the history).
    pub unhealed: Vec<String>,
    /// The operations' footprints, when the run measured them (see
    /// [`faultline_chaos::scenario::blast`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footprints: Option<faultline_chaos::scenario::blast::Footprints>,
    /// The operations' fault-free figures, in a run asked to measure footprints (exploration's
    /// discovery): what its experiments' blast radius is judged against.
    #[serde(skip)]
    pub baseline: Option<faultline_chaos::scenario::blast::Baselines>,
}

impl RunOutcome {
    /// The verdicts that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| !v.ok)
    }
}

/// Runs `scenario` on `system`, with the checkers and workload of its extension (`registry`,
/// [`Registry::linked`]), with `seed` (the scenario's own when `None`), writing into
/// `<reports_dir>/<scenario>-<run id>/`.
pub async fn run(
    system: &System,
    registry: &Registry,
    scenario: &Scenario,
    seed: Option<u64>,
    reports_dir: &Path,
) -> Result<RunOutcome, RunError> {
    run_until(
        system,
        registry,
        scenario,
        seed,
        reports_dir,
        std::future::pending(),
        &|_| {},
    )
    .await
}

/// [`run`], stopping early (healing, saving and shutting down all the same) when `interrupt`
/// completes, and telling `progress` what it is doing.
pub async fn run_until(
    system: &System,
    registry: &Registry,
    scenario: &Scenario,
    seed: Option<u64>,
    reports_dir: &Path,
    interrupt: impl Future<Output = ()>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RunOutcome, RunError> {
    let clock = Instant::now();
    let seed = seed.unwrap_or(scenario.seed);
    tokio::pin!(interrupt);

    progress(&format!(
        "{}: starting the stack (seed {seed}, {} planned)",
        scenario.name,
        workload_of(registry, scenario, seed)?.describe()
    ));
    let mut stack = tokio::select! {
        started = Stack::start(system, stack_config(system, registry)) => started?,
        // Dropping a half-started stack removes what it had started.
        () = &mut interrupt => return Err(RunError::Interrupted { out_dir: reports_dir.to_path_buf() }),
    };
    let timings = RunTimings {
        stack_start_ms: ms(clock.elapsed()),
        ..Default::default()
    };
    let result = run_on(
        &mut stack,
        registry,
        scenario,
        seed,
        reports_dir,
        &mut interrupt,
        progress,
        timings,
        clock,
    )
    .await;
    progress("shutting the stack down");
    let shutdown_clock = Instant::now();
    let shutdown = stack.shutdown().await;
    let mut outcome = result?;
    shutdown?;
    outcome.timings.shutdown_ms = ms(shutdown_clock.elapsed());
    outcome.timings.total_ms = ms(clock.elapsed());
    write_json(&outcome.out_dir.join("outcome.json"), &outcome)?;
    Ok(outcome)
}

/// Runs several scenarios on one stack, started once and [reset](Stack::reset) between runs
/// (services restarted on fresh databases and topics, every proxy cleared) instead of started
/// anew; each outcome's `stack_start_ms` is then the reset's time. Stops at an interrupt.
pub async fn run_all_until(
    system: &System,
    registry: &Registry,
    scenarios: &[Scenario],
    seed: Option<u64>,
    reports_dir: &Path,
    interrupt: impl Future<Output = ()>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<Result<RunOutcome, RunError>>, RunError> {
    tokio::pin!(interrupt);
    let clock = Instant::now();
    progress("starting the stack (shared by every scenario)");
    let mut stack = tokio::select! {
        started = Stack::start(system, stack_config(system, registry)) => started?,
        () = &mut interrupt => return Err(RunError::Interrupted { out_dir: reports_dir.to_path_buf() }),
    };
    let mut start_ms = ms(clock.elapsed());
    let mut outcomes = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        let run_clock = Instant::now();
        if i > 0 {
            progress(&format!("{}: resetting the stack", scenario.name));
            match stack.reset().await {
                Ok(took) => start_ms = ms(took),
                Err(error) => {
                    outcomes.push(Err(error.into()));
                    break;
                }
            }
        }
        let timings = RunTimings {
            stack_start_ms: start_ms,
            ..Default::default()
        };
        let seed = seed.unwrap_or(scenario.seed);
        let result = run_on(
            &mut stack,
            registry,
            scenario,
            seed,
            reports_dir,
            &mut interrupt,
            progress,
            timings,
            run_clock,
        )
        .await;
        let interrupted = matches!(result, Err(RunError::Interrupted { .. }));
        let result = result.and_then(|mut outcome| {
            outcome.timings.total_ms = ms(run_clock.elapsed());
            write_json(&outcome.out_dir.join("outcome.json"), &outcome)?;
            Ok(outcome)
        });
        outcomes.push(result);
        if interrupted {
            break;
        }
    }
    progress("shutting the stack down");
    stack.shutdown().await?;
    Ok(outcomes)
}

/// Runs `scenario` on a stack that is already up, started with [`stack_config`] (the caller
/// [resets](Stack::reset) it between runs): what the library's `RunningSystem::run` does.
pub async fn run_on_stack(
    stack: &mut Stack,
    registry: &Registry,
    scenario: &Scenario,
    seed: Option<u64>,
    reports_dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RunOutcome, RunError> {
    let mut interrupt = std::pin::pin!(std::future::pending::<()>());
    run_on_stack_until(stack, registry, scenario, seed, reports_dir, &mut interrupt, progress).await
}

/// [`run_on_stack`], stopping early (healing and saving all the same) when `interrupt`
/// completes; the stack stays up either way.
pub async fn run_on_stack_until<I: Future<Output = ()> + Unpin>(
    stack: &mut Stack,
    registry: &Registry,
    scenario: &Scenario,
    seed: Option<u64>,
    reports_dir: &Path,
    interrupt: &mut I,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RunOutcome, RunError> {
    let clock = Instant::now();
    let seed = seed.unwrap_or(scenario.seed);
    let mut outcome = run_on(
        stack,
        registry,
        scenario,
        seed,
        reports_dir,
        interrupt,
        progress,
        RunTimings::default(),
        clock,
    )
    .await?;
    outcome.timings.total_ms = ms(clock.elapsed());
    write_json(&outcome.out_dir.join("outcome.json"), &outcome)?;
    Ok(outcome)
}

/// How the runner starts a stack: the system's description, with the environment its
/// extension's workload needs (the reference system's lifts its gateway's rate limit: the
/// workload is not an attack).
pub fn stack_config(system: &System, registry: &Registry) -> StackConfig {
    let mut env = registry.stack_env();
    env.extend(system.service_env.iter().cloned());
    StackConfig {
        env,
        ..StackConfig::default()
    }
}

/// The workload of `scenario`: its declarative operations, or the workload of the system's
/// extension (`registry`).
pub fn workload_of(
    registry: &Registry,
    scenario: &Scenario,
    seed: u64,
) -> Result<Box<dyn Workload>, RunError> {
    if let Some(run) = HttpRun::new(scenario, seed) {
        return Ok(Box::new(run));
    }
    match registry.workload() {
        Some(kind) => Ok(kind.build(scenario, seed)),
        None => Err(RunError::Setup {
            action: format!("scenario {}", scenario.name),
            message: "it has no [[workload.operations]] and the system no workload of its own"
                .into(),
        }),
    }
}

/// One run on a started stack: everything but starting and stopping it. Heals and saves on
/// every way out.
#[allow(clippy::too_many_arguments)]
async fn run_on<I: Future<Output = ()> + Unpin>(
    stack: &mut Stack,
    registry: &Registry,
    scenario: &Scenario,
    seed: u64,
    reports_dir: &Path,
    interrupt: &mut I,
    progress: &(dyn Fn(&str) + Sync),
    mut timings: RunTimings,
    clock: Instant,
) -> Result<RunOutcome, RunError> {
    let mut workload = workload_of(registry, scenario, seed)?;
    let out_dir = reports_dir.join(format!("{}-{}", scenario.name, stack.infra().run_id()));
    std::fs::create_dir_all(&out_dir).map_err(|source| RunError::Write {
        path: out_dir.clone(),
        source,
    })?;

    let recorder = Recorder::new();
    let started_unix_ms = crate::history::unix_ms();
    let mut nemesis = Nemesis::new(scenario.faults.clone()).with_seed(seed);
    let mut state = RunState {
        started_unix_ms,
        ..Default::default()
    };

    let body = execute(
        scenario,
        registry,
        workload.as_mut(),
        stack,
        &mut nemesis,
        &recorder,
        &mut state,
        &mut timings,
        progress,
    );
    let result = tokio::select! {
        result = body => Some(result),
        () = &mut *interrupt => None,
    };

    // Every way out passes here.
    let unhealed = nemesis.heal_all(stack, &recorder).await;
    for line in &unhealed {
        progress(&format!("could not heal: {line}"));
    }
    let history = recorder.finish();
    let saved = save(
        &out_dir,
        scenario,
        seed,
        workload.as_ref(),
        &nemesis,
        &history,
        &state,
        stack,
    )
    .await;
    timings.total_ms = ms(clock.elapsed());

    match result {
        None => return Err(RunError::Interrupted { out_dir }),
        Some(Err(error)) => return Err(error),
        Some(Ok(())) => {}
    }
    saved?;
    let outcome = RunOutcome {
        scenario: scenario.name.clone(),
        seed,
        ok: unhealed.is_empty() && state.verdicts.iter().all(|v| v.ok),
        verdicts: state.verdicts,
        out_dir: out_dir.clone(),
        timings,
        load: state.load,
        settlement: state.settlement,
        unhealed,
        footprints: state.facts.get::<checkers::blast::MeasuredFootprints>().map(|m| m.0.clone()),
        baseline: state.baseline,
    };
    write_json(&out_dir.join("outcome.json"), &outcome)?;
    write_report(
        scenario,
        stack.system().topology(),
        &outcome,
        &history,
        (state.started_unix_ms, state.final_state.as_ref()),
        reports_dir,
    )?;
    Ok(outcome)
}

/// Writes the run's report into its folder and lists it in the reports folder's index.
fn write_report(
    scenario: &Scenario,
    stack_topology: &faultline_chaos::topology::Topology,
    outcome: &RunOutcome,
    history: &History,
    (started_unix_ms, final_state): (u64, Option<&FinalState>),
    reports_dir: &Path,
) -> Result<(), RunError> {
    let id = outcome
        .out_dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let report = crate::report::Report::build(&crate::report::RunFacts {
        scenario,
        id,
        seed: outcome.seed,
        started_unix_ms,
        duration_ms: outcome.timings.total_ms,
        history,
        verdicts: &outcome.verdicts,
        final_state,
        unhealed: &outcome.unhealed,
        versions: crate::report::Versions::of_this_run(),
        stack: crate::report::StackFacts::of(stack_topology),
    });
    crate::report::write(&outcome.out_dir, &report)?;
    crate::report::write_index(reports_dir)?;
    Ok(())
}

/// What the phases of a run hand to the end of it.
#[derive(Default)]
struct RunState {
    started_unix_ms: u64,
    load: LoadSummary,
    settlement: Settlement,
    verdicts: Vec<Verdict>,
    /// What the workload and the checkers gathered.
    facts: Facts,
    /// The system's final state for the report, once the checkers have run.
    final_state: Option<FinalState>,
    /// The operations' fault-free figures, when the scenario asked to measure footprints.
    baseline: Option<faultline_chaos::scenario::blast::Baselines>,
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    scenario: &Scenario,
    registry: &Registry,
    workload: &mut dyn Workload,
    stack: &mut Stack,
    nemesis: &mut Nemesis,
    recorder: &Recorder,
    state: &mut RunState,
    timings: &mut RunTimings,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), RunError> {
    // Calls in flight on each link are judged from here on (the verdict `in-flight`).
    let watched_from = std::time::Instant::now();
    workload.prepare(stack, &state.facts, recorder).await?;
    let probes = if scenario.steady_state.is_empty() {
        workload.default_probes()
    } else {
        scenario.steady_state.clone()
    };
    let blast = &scenario.expectations.blast_radius;
    if blast.judged && blast.footprints.is_none() && (!scenario.faults.is_empty() || blast.measure) {
        progress("footprints: each operation sent alone, to see which calls it makes");
        let phase_clock = Instant::now();
        if let Some(found) = workload.footprints(stack, recorder).await {
            state.facts.insert(checkers::blast::MeasuredFootprints(found));
        }
        timings.footprints_ms = ms(phase_clock.elapsed());
    }

    progress("steady state before the faults");
    let phase_clock = Instant::now();
    let before = steady_state(&probes, "before", stack, workload, recorder).await;
    timings.steady_state_before_ms = ms(phase_clock.elapsed());
    let holds = before.iter().all(|v| v.ok);
    state.verdicts.extend(before);
    if !holds {
        progress("the steady state does not hold before the faults: no faults injected");
        return Ok(());
    }

    progress(&format!(
        "load: {} over at most {:.0}s, {} clients; {} faults scheduled",
        workload.describe(),
        scenario.workload.duration.as_secs_f64(),
        scenario.workload.concurrency,
        scenario.faults.len()
    ));
    for step in nemesis.timeline() {
        let fault = &scenario.faults[step.fault];
        progress(&format!(
            "  at {:>5.1}s {:?} {}",
            step.at.as_secs_f64(),
            step.action,
            nemesis::describe(fault)
        ));
    }
    let phase_clock = Instant::now();
    // Breakers shown as a metric have no history of their own: sampled from here on.
    let sampler = checkers::circuits::CircuitSampler::start(stack);
    let load_start = tokio::time::Instant::now();
    let (load, ()) = tokio::join!(
        workload.drive(load_start, recorder),
        nemesis.run_reporting(stack, load_start, recorder, progress),
    );
    timings.load_ms = ms(phase_clock.elapsed());
    progress(&format!(
        "load done: {} of {} sent, {} ok",
        load.sent, load.planned, load.ok
    ));

    let phase_clock = Instant::now();
    nemesis.heal_all(stack, recorder).await;
    // A breaker opened by the fault closes on its own schedule: the steady state after is
    // judged once every service says it is ready again (or the bound passed, and the ready
    // probe says which is not).
    await_recovery(stack, RECOVERY_BOUND).await;
    let mut settlement = workload.settle(stack, recorder, progress).await;
    // What the system finishes by itself, as its description says: for every workload.
    let described = crate::workload::settle_described(stack, progress).await;
    timings.heal_and_settle_ms = ms(phase_clock.elapsed());
    let settled =
        (!stack.system().settle.is_empty()).then(|| settled_verdict(&described, stack.system()));
    settlement.took_ms += described.took_ms;
    settlement.settled += described.settled;
    settlement.unsettled.extend(described.unsettled);
    state.load = load;
    state.settlement = settlement;

    progress("steady state after healing");
    let phase_clock = Instant::now();
    let after = steady_state(&probes, "after", stack, workload, recorder).await;
    timings.steady_state_after_ms = ms(phase_clock.elapsed());
    state.verdicts.extend(after);
    state.verdicts.extend(settled);

    progress("checking");
    let phase_clock = Instant::now();
    let tracks = match sampler {
        Some(sampler) => sampler.finish().await,
        None => Default::default(),
    };
    let circuits = state.facts.insert(Circuits {
        circuits: checkers::circuits::read_sampled(stack, tracks).await?,
        run_started_unix_ms: Some(state.started_unix_ms),
    });
    let history = recorder.finish();
    if blast.measure {
        state.baseline = Some(checkers::blast::baselines(scenario, &history));
    }
    // What the links' request proxies saw, judged with the history that names the faults.
    state.verdicts.extend(in_flight_verdict(stack, watched_from, recorder, &history));
    state.verdicts.extend(replays_verdict(stack, watched_from, recorder, &history));
    let context = CheckContext {
        scenario,
        history: &history,
        stack,
        run_started_unix_ms: state.started_unix_ms,
        facts: &state.facts,
    };
    for checker in registry.checkers_for(scenario) {
        state.verdicts.push(checker.check(&context).await);
    }
    // The system's own view of how its work ended, when its extension has one; else what the
    // workload's clients were answered.
    let workload_state = match registry.final_state(&context).await {
        Some(state) => state,
        None => workload.final_state(stack, &state.facts).await,
    };
    state.final_state = Some(FinalState {
        circuits: circuits.circuits.clone(),
        workload: workload_state,
    });
    timings.checking_ms = ms(phase_clock.elapsed());
    Ok(())
}

/// The verdict `settled`: every `[[settle]]` condition of the description held within its
/// bound once the faults healed; each one that did not is a counterexample, with the rows its
/// query still returned.
fn settled_verdict(described: &Settlement, system: &System) -> Verdict {
    let conditions = system.settle.len();
    let counterexamples: Vec<checkers::Counterexample> = described
        .unsettled
        .iter()
        .map(|unsettled| checkers::Counterexample::new(format!("not settled: {unsettled}"), vec![], vec![]))
        .collect();
    let summary = format!(
        "{} of {conditions} [[settle]] condition(s) of {} held within their bounds after healing ({:.1}s)",
        described.settled,
        system.file.display(),
        described.took_ms as f64 / 1000.0
    );
    Verdict::new("settled", summary, counterexamples)
}

/// How long a link may carry more calls than its service's bound before the verdict
/// `in-flight` fails. A call its caller gave up on counts until the close of its connection
/// reaches the request proxy, a few milliseconds after the caller's bulkhead let the next
/// call go: an excess that short is that lag, not a bulkhead letting too many through.
pub const IN_FLIGHT_GRACE: Duration = Duration::from_millis(100);

/// The verdict `in-flight`, when a service of the description bounds its calls in flight
/// (`in_flight = { payment = 16 }`): each link that carried more than its bound for longer
/// than [`IN_FLIGHT_GRACE`] is a counterexample.
/// How many requests a fault hit a counterexample about a link's requests names at most.
const HITS_NAMED: usize = 12;

fn in_flight_verdict(
    stack: &Stack,
    since: std::time::Instant,
    recorder: &Recorder,
    history: &History,
) -> Option<Verdict> {
    let bounds: Vec<(String, u32)> = stack
        .system()
        .services
        .iter()
        .flat_map(|s| {
            s.in_flight
                .iter()
                .map(move |(callee, bound)| (format!("{}->{callee}", s.name), *bound))
        })
        .collect();
    if bounds.is_empty() {
        return None;
    }
    let mut seen = Vec::new();
    let mut counterexamples = Vec::new();
    for (link, bound) in &bounds {
        let Some(found) = stack.in_flight(link, *bound, since) else {
            counterexamples.push(checkers::Counterexample::new(
                format!("{link}: not measured: the stack has no request proxy on it"),
                vec![],
                vec![],
            ));
            continue;
        };
        seen.push(format!("{link} {} (bound {bound})", found.peak));
        if found.longest_above > IN_FLIGHT_GRACE {
            // Times from the start of the watch, as the description says; the history's own
            // clock started a moment earlier.
            let from = found.longest_from.unwrap_or_default();
            let start = recorder.time_of(since) + from;
            counterexamples.push(checkers::Counterexample::new(
                format!(
                    "{link}: {} calls in flight at most, bound {bound}; above it for {} ms at a stretch, from {:.1}s into the run",
                    found.peak,
                    found.longest_above.as_millis(),
                    from.as_secs_f64()
                ),
                vec![],
                history.fault_events_on(link, start, start + found.longest_above, HITS_NAMED),
            ));
        }
    }
    let summary = format!(
        "the most calls in flight at once: {}",
        if seen.is_empty() { "none measured".to_string() } else { seen.join(", ") }
    );
    Some(Verdict::new("in-flight", summary, counterexamples))
}

/// The verdict `idempotent-replays`, when a service of the description promises to replay
/// its answers to keyed requests (`idempotency_key = "Idempotency-Key"`): each request on a
/// link to it that repeated a key already answered with success, and got another status, is
/// a counterexample — also when a fault kept either answer from the caller.
fn replays_verdict(
    stack: &Stack,
    since: std::time::Instant,
    recorder: &Recorder,
    history: &History,
) -> Option<Verdict> {
    let system = stack.system();
    let links: Vec<String> = system
        .topology()
        .service_links()
        .into_iter()
        .filter(|l| system.service(&l.server).is_some_and(|s| s.idempotency_key.is_some()))
        .map(|l| l.name())
        .collect();
    if links.is_empty() {
        return None;
    }
    let mut counterexamples = Vec::new();
    for link in &links {
        let Some(broken) = stack.broken_replays(link, since) else {
            counterexamples.push(checkers::Counterexample::new(
                format!("{link}: not judged: the stack has no request proxy on it"),
                vec![],
                vec![],
            ));
            continue;
        };
        for replay in broken {
            let at = |instant: std::time::Instant| instant.saturating_duration_since(since).as_secs_f64();
            counterexamples.push(checkers::Counterexample::new(
                format!(
                    "{link}: key {}: {} {} was answered {} at {:.2}s, then the same key's {} {} sent at {:.2}s got {}",
                    replay.first.key,
                    replay.first.method,
                    replay.first.target,
                    replay.first.status,
                    at(replay.first.answered),
                    replay.later.method,
                    replay.later.target,
                    at(replay.later.sent),
                    replay.later.status
                ),
                vec![replay.first.key.clone()],
                // What the faults did on the link from the first request to the repeat.
                history.fault_events_on(
                    link,
                    recorder.time_of(replay.first.sent),
                    recorder.time_of(replay.later.sent),
                    HITS_NAMED,
                ),
            ));
        }
    }
    let summary = format!(
        "requests on {} that repeated a key already answered with success: {} got another answer",
        links.join(", "),
        counterexamples.len()
    );
    Some(Verdict::new("idempotent-replays", summary, counterexamples))
}

/// The pause between tries of a probe with `within`.
const PROBE_RETRY: Duration = Duration::from_millis(250);

/// Runs each probe in `phase` (once, or until it holds within its `within`); one verdict per
/// probe, named `steady-state <phase>: <name>`.
async fn steady_state(
    probes: &[Probe],
    phase: &str,
    stack: &Stack,
    workload: &dyn Workload,
    recorder: &Recorder,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for (index, probe) in probes.iter().enumerate() {
        let pending = recorder.invoke(
            Process::Probe,
            Op::Probe {
                name: probe.name.clone(),
                phase: phase.to_string(),
            },
        );
        let clock = Instant::now();
        let mut attempt = 1u32;
        let (ok, summary) = loop {
            // A later try is a new sample: new operations, new idempotency keys.
            let sample_phase = match attempt {
                1 => phase.to_string(),
                n => format!("{phase}-try{n}"),
            };
            let (ok, summary) = match probe.check {
                ProbeCheck::Ready => probe_ready(stack).await,
                _ => workload.probe(probe, index, &sample_phase, recorder).await,
            };
            match probe.within {
                Some(within) if !ok && clock.elapsed() < within => {
                    attempt += 1;
                    tokio::time::sleep(PROBE_RETRY).await;
                }
                Some(within) if attempt > 1 => {
                    break (
                        ok,
                        format!(
                            "{summary} (try {attempt}, {:.1}s after the first; within {:.0}s allowed)",
                            clock.elapsed().as_secs_f64(),
                            within.as_secs_f64()
                        ),
                    )
                }
                _ => break (ok, summary),
            }
        };
        verdicts.push(probe_verdict(pending, phase, probe, ok, summary));
    }
    verdicts
}

/// Records how a probe came out in the history and gives its verdict,
/// `steady-state <phase>: <name>`.
fn probe_verdict(
    pending: crate::history::Pending,
    phase: &str,
    probe: &Probe,
    ok: bool,
    summary: String,
) -> Verdict {
    let value = json!({"ok": ok, "summary": summary});
    if ok {
        pending.ok(value);
    } else {
        pending.fail(value);
    }
    Verdict {
        checker: format!("steady-state {phase}: {}", probe.name),
        ok,
        summary,
        counterexamples: Vec::new(),
    }
}

/// How long the runner waits, after healing, for every service to be ready again.
pub const RECOVERY_BOUND: Duration = Duration::from_secs(30);

/// Waits until every service passes its readiness check, at most `bound`.
async fn await_recovery(stack: &Stack, bound: Duration) {
    let _ = tokio::time::timeout(bound, async {
        let mut pauses = crate::workload::Pauses::default();
        while !probe_ready(stack).await.0 {
            pauses.wait().await;
        }
    })
    .await;
}

async fn probe_ready(stack: &Stack) -> (bool, String) {
    let services = stack.system().start_order();
    let mut not_ready = Vec::new();
    for service in &services {
        if let Err(why) = stack.check_ready(service).await {
            not_ready.push(format!("{service}: {why}"));
        }
    }
    if not_ready.is_empty() {
        (true, format!("all {} services ready", services.len()))
    } else {
        (false, format!("not ready: {}", not_ready.join("; ")))
    }
}

#[allow(clippy::too_many_arguments)]
async fn save(
    out_dir: &Path,
    scenario: &Scenario,
    seed: u64,
    workload: &dyn Workload,
    nemesis: &Nemesis,
    history: &History,
    state: &RunState,
    stack: &Stack,
) -> Result<(), RunError> {
    write_json(&out_dir.join("history.json"), history)?;
    write_json(&out_dir.join("verdicts.json"), &state.verdicts)?;
    let mut plan = json!({
        "scenario": scenario.name,
        "seed": seed,
        "run_started_unix_ms": state.started_unix_ms,
        "faults": nemesis.timeline(),
    });
    if let (Some(plan), serde_json::Value::Object(workload)) = (plan.as_object_mut(), workload.plan()) {
        plan.extend(workload);
    }
    write_json(&out_dir.join("plan.json"), &plan)?;
    let logs = out_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|source| RunError::Write {
        path: logs.clone(),
        source,
    })?;
    stack
        .save_logs(&logs)
        .await
        .map_err(|source| RunError::Write { path: logs, source })
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), RunError> {
    let text = serde_json::to_string_pretty(value).expect("run data serialises");
    std::fs::write(path, text).map_err(|source| RunError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settled_verdict_names_each_condition_that_did_not_hold() {
        let system = System::parse(
            "bank.toml",
            std::path::Path::new("."),
            r#"
            [postgres]
            databases = ["ledger"]
            [[settle]]
            database = "ledger"
            query = "SELECT seq FROM outbox WHERE published_at IS NULL"
            [services.ledger]
            command = ["./ledger"]
            env = { PORT = "{port}", DB = "{postgres.url:ledger}" }
            "#,
        )
        .unwrap();
        let held = Settlement {
            took_ms: 300,
            settled: 1,
            unsettled: vec![],
        };
        let verdict = settled_verdict(&held, &system);
        assert!(verdict.ok, "{verdict:?}");
        assert_eq!(verdict.checker, "settled");
        assert!(verdict.summary.starts_with("1 of 1 [[settle]] condition(s) of bank.toml held"));

        let stuck = Settlement {
            took_ms: 30_000,
            settled: 0,
            unsettled: vec!["3 row(s) after 30s: SELECT seq FROM outbox WHERE published_at IS NULL".into()],
        };
        let verdict = settled_verdict(&stuck, &system);
        assert!(!verdict.ok);
        assert_eq!(
            verdict.counterexamples[0].description,
            "not settled: 3 row(s) after 30s: SELECT seq FROM outbox WHERE published_at IS NULL"
        );
    }
}
