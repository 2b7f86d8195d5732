//! The chaos runner: one scenario, start to finish. It wires the other roles together and owns
//! none of their logic — the [`workload`](crate::workload) places orders, the
//! [`nemesis`](crate::nemesis) injects faults, the [`history`](crate::history) records both, the
//! [`checkers`](crate::checkers) judge.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use faultline_chaos::scenario::Scenario;
//! use faultline_harness::system::System;
//! let system = System::load("services/faultline.toml".as_ref())?;
//! let scenario = Scenario::load(
//!     "chaos/scenarios/saga-compensation-payment-down.toml".as_ref(),
//!     system.topology(),
//! )?;
//! let outcome = faultline_harness::runner::run(&system, &scenario, None, "reports".as_ref()).await?;
//! println!("{} → {}", if outcome.ok { "passed" } else { "FAILED" }, outcome.out_dir.display());
//! # Ok(()) }
//! ```
//!
//! # A run, in order
//!
//! 1. Start a fresh [`Stack`] of the described system (gateway rate limiting lifted: the
//!    workload is not an attack).
//! 2. Seed stock: [`workload::STOCKED_SKU`] with enough for every planned order and probe,
//!    [`workload::EMPTY_SKU`] with 0.
//! 3. Steady state before the faults: the scenario's probes (or, when it names none, `ready`
//!    and a 3-order `success_rate` of 1.0). If it does not hold, the run stops there and fails:
//!    faults on a system that is already broken prove nothing.
//! 4. Load phase: the workload and the nemesis run side by side from the same instant.
//! 5. Heal every fault still in effect, then wait (at most [`SETTLE_BOUND`]) until every
//!    accepted order — and every order order's database holds as PENDING, which includes
//!    placements whose answer was lost — has left PENDING.
//! 6. Steady state after healing, the same probes again.
//! 7. Checkers on the history and the services' final state.
//!
//! Whatever happens — an error, a failed probe, an interrupt — faults are healed, the history,
//! verdicts and logs are written, and the stack is shut down.
//!
//! # What a run leaves in `<out>/<scenario>-<run id>/`
//!
//! `history.json` (every operation and fault), `verdicts.json`, `plan.json` (the planned orders
//! and fault timeline: what the seed produced), `outcome.json` (seed, timings, counts),
//! `logs/` (each service's log, the host Toxiproxy's, the containers') and, when the run got
//! as far as its verdicts, the [report](crate::report) (`report.json`, `report.html`,
//! `junit.xml`, `summary.md`); `<out>/index.html` is then rewritten to list it.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faultline_chaos::scenario::{Probe, ProbeCheck, Scenario};
use serde::Serialize;
use serde_json::json;

use crate::checkers::{self, CheckError, Observed, Verdict};
use crate::history::{History, Op, Process, Recorder};
use crate::http_workload::{self, HttpClient};
use crate::nemesis::{self, Nemesis};
use crate::stack::{Stack, StackConfig, StackError, JWT_SECRET};
use crate::system::System;
use crate::workload::{
    self, GatewayClient, LoadSummary, OrderKind, Outcome, PlannedOrder, Settlement,
};

/// How long the runner waits for accepted orders to leave PENDING after healing.
pub const SETTLE_BOUND: Duration = Duration::from_secs(60);

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

/// Wall time of each phase of a run, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunTimings {
    pub stack_start_ms: u64,
    pub steady_state_before_ms: u64,
    pub load_ms: u64,
    pub heal_and_settle_ms: u64,
    pub steady_state_after_ms: u64,
    pub checking_ms: u64,
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
}

impl RunOutcome {
    /// The verdicts that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| !v.ok)
    }
}

/// Runs `scenario` with `seed` (the scenario's own when `None`), writing into
/// `<reports_dir>/<scenario>-<run id>/`.
pub async fn run(
    system: &System,
    scenario: &Scenario,
    seed: Option<u64>,
    reports_dir: &Path,
) -> Result<RunOutcome, RunError> {
    run_until(
        system,
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
    scenario: &Scenario,
    seed: Option<u64>,
    reports_dir: &Path,
    interrupt: impl Future<Output = ()>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RunOutcome, RunError> {
    let clock = Instant::now();
    let seed = seed.unwrap_or(scenario.seed);
    let plan = workload::plan(scenario, seed);
    tokio::pin!(interrupt);

    progress(&format!(
        "{}: starting the stack (seed {seed}, {} orders planned)",
        scenario.name,
        plan.len()
    ));
    let mut stack = tokio::select! {
        started = Stack::start(system, stack_config()) => started?,
        // Dropping a half-started stack removes what it had started.
        () = &mut interrupt => return Err(RunError::Interrupted { out_dir: reports_dir.to_path_buf() }),
    };
    let timings = RunTimings {
        stack_start_ms: ms(clock.elapsed()),
        ..Default::default()
    };
    let result = run_on(
        &mut stack,
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
        started = Stack::start(system, stack_config()) => started?,
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
    scenario: &Scenario,
    seed: Option<u64>,
    reports_dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RunOutcome, RunError> {
    let clock = Instant::now();
    let seed = seed.unwrap_or(scenario.seed);
    let mut interrupt = std::pin::pin!(std::future::pending::<()>());
    let mut outcome = run_on(
        stack,
        scenario,
        seed,
        reports_dir,
        &mut interrupt,
        progress,
        RunTimings::default(),
        clock,
    )
    .await?;
    outcome.timings.total_ms = ms(clock.elapsed());
    write_json(&outcome.out_dir.join("outcome.json"), &outcome)?;
    Ok(outcome)
}

/// How the runner starts a stack: the system's description, with the reference gateway's
/// rate limit lifted (the workload is not an attack; other systems have no such service).
pub fn stack_config() -> StackConfig {
    StackConfig {
        env: vec![(
            "gateway".into(),
            "GATEWAY_RATE_LIMIT_PER_SECOND".into(),
            "1000000".into(),
        )],
    }
}

/// One run on a started stack: everything but starting and stopping it. Heals and saves on
/// every way out.
#[allow(clippy::too_many_arguments)]
async fn run_on<I: Future<Output = ()> + Unpin>(
    stack: &mut Stack,
    scenario: &Scenario,
    seed: u64,
    reports_dir: &Path,
    interrupt: &mut I,
    progress: &(dyn Fn(&str) + Sync),
    mut timings: RunTimings,
    clock: Instant,
) -> Result<RunOutcome, RunError> {
    let plan = workload::plan(scenario, seed);
    let out_dir = reports_dir.join(format!("{}-{}", scenario.name, stack.infra().run_id()));
    std::fs::create_dir_all(&out_dir).map_err(|source| RunError::Write {
        path: out_dir.clone(),
        source,
    })?;

    let recorder = Recorder::new();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut nemesis = Nemesis::new(scenario.faults.clone());
    let mut state = RunState {
        started_unix_ms,
        ..Default::default()
    };

    let body = execute(
        scenario,
        seed,
        &plan,
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
        &out_dir, scenario, seed, &plan, &nemesis, &history, &state, stack,
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
    };
    write_json(&out_dir.join("outcome.json"), &outcome)?;
    write_report(
        scenario,
        stack.system().topology(),
        &outcome,
        &history,
        (state.started_unix_ms, state.observed.as_ref()),
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
    (started_unix_ms, observed): (u64, Option<&Observed>),
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
        observed,
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
    initial_stock: BTreeMap<String, i64>,
    load: LoadSummary,
    settlement: Settlement,
    verdicts: Vec<Verdict>,
    /// The services' final state, once the checkers have read it.
    observed: Option<Observed>,
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    scenario: &Scenario,
    seed: u64,
    plan: &[PlannedOrder],
    stack: &mut Stack,
    nemesis: &mut Nemesis,
    recorder: &Recorder,
    state: &mut RunState,
    timings: &mut RunTimings,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), RunError> {
    if let Some(http) = &scenario.workload.http {
        let run = HttpRun {
            scenario,
            http,
            seed,
        };
        return run
            .execute(stack, nemesis, recorder, state, timings, progress)
            .await;
    }
    let probes = probes_of(scenario);
    let probe_orders: u32 = probes
        .iter()
        .map(|p| match p.check {
            ProbeCheck::Ready => 0,
            ProbeCheck::SuccessRate { sample, .. } | ProbeCheck::P99Latency { sample, .. } => {
                sample
            }
        })
        .sum();
    // Probes run twice, each order up to its quantity (1).
    state.initial_stock = seed_stock(
        stack,
        workload::stock_needed(plan, 2 * i64::from(probe_orders) + 10),
    )
    .await?;

    let token = faultline_gateway::mint_token(
        JWT_SECRET,
        "faultline-chaos",
        &["orders:write", "orders:read"],
        "faultline",
        Duration::from_secs(3600),
    );
    let client =
        GatewayClient::new(stack.service_url("gateway")?, token).map_err(|e| RunError::Setup {
            action: "building the workload's client".into(),
            message: e.to_string(),
        })?;

    progress("steady state before the faults");
    let phase_clock = Instant::now();
    let before = steady_state(&probes, "before", stack, &client, recorder).await;
    timings.steady_state_before_ms = ms(phase_clock.elapsed());
    let holds = before.iter().all(|v| v.ok);
    state.verdicts.extend(before);
    if !holds {
        progress("the steady state does not hold before the faults: no faults injected");
        return Ok(());
    }

    progress(&format!(
        "load: {} orders over at most {:.0}s, {} clients; {} faults scheduled",
        plan.len(),
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
    let load_start = tokio::time::Instant::now();
    let (load, ()) = tokio::join!(
        workload::drive(
            plan,
            &client,
            scenario.workload.concurrency,
            load_start,
            scenario.workload.duration,
            recorder
        ),
        nemesis.run_reporting(stack, load_start, recorder, progress),
    );
    timings.load_ms = ms(phase_clock.elapsed());
    progress(&format!(
        "load done: {} of {} orders sent, {} accepted",
        load.sent,
        load.planned,
        load.accepted.len()
    ));

    let phase_clock = Instant::now();
    nemesis.heal_all(stack, recorder).await;
    // Accepted orders, and orders whose placement had an unknown outcome but that exist:
    // order's database knows them as PENDING.
    let mut to_settle = load.accepted.clone();
    match pending_orders(stack).await {
        Ok(pending) => to_settle.extend(pending),
        Err(error) => progress(&format!(
            "could not list PENDING orders ({error}); waiting for the accepted ones only"
        )),
    }
    progress(&format!(
        "healed; waiting up to {}s for {} orders to settle",
        SETTLE_BOUND.as_secs(),
        to_settle.len()
    ));
    let settlement = workload::await_settled(&client, to_settle, SETTLE_BOUND, recorder).await;
    timings.heal_and_settle_ms = ms(phase_clock.elapsed());
    progress(&format!(
        "settled: {} ({} still pending) in {:.1}s",
        settlement.settled.len(),
        settlement.unsettled.len(),
        settlement.took_ms as f64 / 1000.0
    ));
    state.load = load;
    state.settlement = settlement;

    progress("steady state after healing");
    let phase_clock = Instant::now();
    let after = steady_state(&probes, "after", stack, &client, recorder).await;
    timings.steady_state_after_ms = ms(phase_clock.elapsed());
    state.verdicts.extend(after);

    progress("checking");
    let phase_clock = Instant::now();
    // Events still in the outbox, or on their way to notification, are not lost: wait (bounded)
    // for the system to catch up before judging it.
    Observed::await_quiescent(stack, Duration::from_secs(30)).await?;
    let mut observed = Observed::collect(stack).await?;
    observed.initial_stock = state.initial_stock.clone();
    observed.run_started_unix_ms = Some(state.started_unix_ms);
    let history = recorder.finish();
    state
        .verdicts
        .extend(checkers::check(scenario, &history, &observed));
    state.observed = Some(observed);
    timings.checking_ms = ms(phase_clock.elapsed());
    Ok(())
}

/// A run of a declarative HTTP workload on any described system: no system-specific set-up,
/// the workload's own requests as probes, and the scenario's SQL invariants and SLOs as the
/// checkers.
struct HttpRun<'a> {
    scenario: &'a Scenario,
    http: &'a faultline_chaos::scenario::request::HttpWorkload,
    seed: u64,
}

impl HttpRun<'_> {
    async fn execute(
        &self,
        stack: &mut Stack,
        nemesis: &mut Nemesis,
        recorder: &Recorder,
        state: &mut RunState,
        timings: &mut RunTimings,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<(), RunError> {
        let scenario = self.scenario;
        let externals =
            http_workload::Externals::read(self.http).map_err(|message| RunError::Setup {
                action: "reading the workload's headers".into(),
                message,
            })?;
        let mut services = BTreeMap::new();
        for operation in &self.http.operations {
            services.insert(
                operation.service.clone(),
                stack.service_url(&operation.service)?,
            );
        }
        let client = HttpClient::new(services, externals).map_err(|e| RunError::Setup {
            action: "building the workload's client".into(),
            message: e.to_string(),
        })?;
        let workload = &scenario.workload;
        let plan = http_workload::plan(
            self.http,
            workload.duration,
            workload.duplicate_rate,
            workload.retry_rate,
            self.seed,
        );
        let probes = if scenario.steady_state.is_empty() {
            vec![Probe {
                name: "ready".into(),
                check: ProbeCheck::Ready,
            }]
        } else {
            scenario.steady_state.clone()
        };

        progress("steady state before the faults");
        let phase_clock = Instant::now();
        let before = self
            .steady_state(&probes, "before", stack, &client, recorder)
            .await;
        timings.steady_state_before_ms = ms(phase_clock.elapsed());
        let holds = before.iter().all(|v| v.ok);
        state.verdicts.extend(before);
        if !holds {
            progress("the steady state does not hold before the faults: no faults injected");
            return Ok(());
        }

        progress(&format!(
            "load: {} requests over at most {:.0}s, {} clients; {} faults scheduled",
            plan.len(),
            workload.duration.as_secs_f64(),
            workload.concurrency,
            scenario.faults.len()
        ));
        let phase_clock = Instant::now();
        let load_start = tokio::time::Instant::now();
        let (load, ()) = tokio::join!(
            http_workload::drive(
                &plan,
                &client,
                workload.concurrency,
                load_start,
                workload.duration,
                recorder
            ),
            nemesis.run_reporting(stack, load_start, recorder, progress),
        );
        timings.load_ms = ms(phase_clock.elapsed());
        progress(&format!(
            "load done: {} of {} requests sent, {} ok",
            load.sent, load.planned, load.ok
        ));
        state.load.planned = load.planned;
        state.load.sent = load.sent;

        let phase_clock = Instant::now();
        nemesis.heal_all(stack, recorder).await;
        timings.heal_and_settle_ms = ms(phase_clock.elapsed());

        progress("steady state after healing");
        let phase_clock = Instant::now();
        let after = self
            .steady_state(&probes, "after", stack, &client, recorder)
            .await;
        timings.steady_state_after_ms = ms(phase_clock.elapsed());
        state.verdicts.extend(after);

        progress("checking");
        let phase_clock = Instant::now();
        let history = recorder.finish();
        for check in &scenario.expectations.sql {
            state
                .verdicts
                .push(checkers::sql::check(check, stack, &history).await);
        }
        if let Some(slo) = &scenario.expectations.slo {
            state.verdicts.push(checkers::slo::check(slo, &history));
        }
        timings.checking_ms = ms(phase_clock.elapsed());
        Ok(())
    }

    /// Each probe once in `phase`. `success_rate` and `p99_latency` send `sample` requests of
    /// the workload (planned from the seed and the phase, so they differ from the load's).
    async fn steady_state(
        &self,
        probes: &[Probe],
        phase: &str,
        stack: &Stack,
        client: &HttpClient,
        recorder: &Recorder,
    ) -> Vec<Verdict> {
        use futures_util::StreamExt;
        let mut verdicts = Vec::new();
        for (index, probe) in probes.iter().enumerate() {
            let pending = recorder.invoke(
                Process::Probe,
                Op::Probe {
                    name: probe.name.clone(),
                    phase: phase.to_string(),
                },
            );
            let sample_of = |sample: u32| {
                let salt = if phase == "before" { 1 } else { 2 } + 10 * index as u64;
                let requests = faultline_chaos::scenario::request::HttpWorkload {
                    requests: sample,
                    operations: self.http.operations.clone(),
                };
                http_workload::plan(
                    &requests,
                    Duration::ZERO,
                    0.0,
                    0.0,
                    self.seed.wrapping_mul(31).wrapping_add(salt),
                )
            };
            let send = |requests: Vec<http_workload::PlannedRequest>| async move {
                futures_util::stream::iter(requests)
                    .map(|request| async move {
                        let clock = Instant::now();
                        let outcome = client.send(Process::Probe, &request, recorder).await;
                        (outcome, clock.elapsed())
                    })
                    .buffer_unordered(4)
                    .collect::<Vec<_>>()
                    .await
            };
            let (ok, summary) = match probe.check {
                ProbeCheck::Ready => probe_ready(stack).await,
                ProbeCheck::SuccessRate { sample, min } => {
                    let outcomes = send(sample_of(sample)).await;
                    let good = outcomes
                        .iter()
                        .filter(|(o, _)| *o == http_workload::Outcome::Ok)
                        .count();
                    let rate = good as f64 / f64::from(sample.max(1));
                    (
                        rate >= min,
                        format!(
                            "{good} of {sample} requests ok ({:.0}%, at least {:.0}% expected)",
                            rate * 100.0,
                            min * 100.0
                        ),
                    )
                }
                ProbeCheck::P99Latency { sample, max } => {
                    let outcomes = send(sample_of(sample)).await;
                    let latencies: Vec<Duration> = outcomes
                        .iter()
                        .filter(|(o, _)| *o == http_workload::Outcome::Ok)
                        .map(|(_, d)| *d)
                        .collect();
                    p99_verdict(&latencies, sample, max, "requests")
                }
            };
            verdicts.push(probe_verdict(pending, phase, probe, ok, summary));
        }
        verdicts
    }
}

/// Ids of the orders order's database holds as PENDING (read directly, not through a proxy).
async fn pending_orders(stack: &Stack) -> Result<Vec<String>, String> {
    use sqlx::Connection;
    let url = stack.database_url("order").map_err(|e| e.to_string())?;
    let mut connection = sqlx::PgConnection::connect(&url)
        .await
        .map_err(|e| e.to_string())?;
    let ids = sqlx::query_scalar::<_, String>(
        "SELECT order_id::text FROM orders WHERE status = 'PENDING'",
    )
    .fetch_all(&mut connection)
    .await
    .map_err(|e| e.to_string());
    let _ = connection.close().await;
    ids
}

/// The scenario's probes, or the default steady state when it names none.
fn probes_of(scenario: &Scenario) -> Vec<Probe> {
    if !scenario.steady_state.is_empty() {
        return scenario.steady_state.clone();
    }
    vec![
        Probe {
            name: "ready".into(),
            check: ProbeCheck::Ready,
        },
        Probe {
            name: "orders confirm".into(),
            check: ProbeCheck::SuccessRate {
                sample: 3,
                min: 1.0,
            },
        },
    ]
}

/// Sets the workload's stock; what it set, for the conservation checker.
async fn seed_stock(stack: &Stack, stocked: i64) -> Result<BTreeMap<String, i64>, RunError> {
    let inventory = stack.service_url("inventory")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| RunError::Setup {
            action: "building an HTTP client".into(),
            message: e.to_string(),
        })?;
    let stock = BTreeMap::from([
        (workload::STOCKED_SKU.to_string(), stocked),
        (workload::EMPTY_SKU.to_string(), 0),
    ]);
    for (sku, on_hand) in &stock {
        let url = format!("{inventory}/admin/stock/{sku}");
        http.put(&url)
            .json(&json!({"on_hand": on_hand}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| RunError::Setup {
                action: format!("seeding stock: PUT {url}"),
                message: format!("{e}; inventory's test mode must be on"),
            })?;
    }
    Ok(stock)
}

/// Runs each probe once in `phase`; one verdict per probe, named `steady-state <phase>: <name>`.
async fn steady_state(
    probes: &[Probe],
    phase: &str,
    stack: &Stack,
    client: &GatewayClient,
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
        let (ok, summary) = match probe.check {
            ProbeCheck::Ready => probe_ready(stack).await,
            ProbeCheck::SuccessRate { sample, min } => {
                let placed = place_probe_orders(client, recorder, phase, index, sample).await;
                let settlement = workload::await_settled(
                    client,
                    placed.iter().filter_map(|(id, _)| id.clone()),
                    Duration::from_secs(30),
                    recorder,
                )
                .await;
                let confirmed = settlement
                    .settled
                    .values()
                    .filter(|s| *s == "CONFIRMED")
                    .count();
                let rate = confirmed as f64 / f64::from(sample.max(1));
                (rate >= min, format!("{confirmed} of {sample} good orders confirmed ({:.0}%, at least {:.0}% expected)", rate * 100.0, min * 100.0))
            }
            ProbeCheck::P99Latency { sample, max } => {
                let placed = place_probe_orders(client, recorder, phase, index, sample).await;
                let latencies: Vec<Duration> = placed
                    .iter()
                    .filter(|(id, _)| id.is_some())
                    .map(|(_, d)| *d)
                    .collect();
                p99_verdict(&latencies, sample, max, "orders")
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

/// A p99 probe's verdict on the latencies of the `sample` calls that succeeded: every one must
/// have, and the nearest-rank 99th percentile must be within `max`.
fn p99_verdict(latencies: &[Duration], sample: u32, max: Duration, what: &str) -> (bool, String) {
    match checkers::percentile(latencies, 0.99) {
        Some(p99) if latencies.len() == sample as usize => (
            p99 <= max,
            format!(
                "p99 latency {:.0} ms over {sample} {what} (at most {:.0} ms expected)",
                p99.as_secs_f64() * 1000.0,
                max.as_secs_f64() * 1000.0
            ),
        ),
        _ => (
            false,
            format!(
                "only {} of {sample} probe {what} succeeded",
                latencies.len()
            ),
        ),
    }
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

/// Places `sample` good probe orders, 4 at a time: each one's id when accepted, and its
/// placement latency.
async fn place_probe_orders(
    client: &GatewayClient,
    recorder: &Recorder,
    phase: &str,
    probe: usize,
    sample: u32,
) -> Vec<(Option<String>, Duration)> {
    use futures_util::StreamExt;
    let orders = (0..sample).map(|i| PlannedOrder {
        number: i,
        send_at: Duration::ZERO,
        kind: OrderKind::Good,
        idempotency_key: format!("probe-{phase}-{probe}-{i}"),
        customer_id: "probe".into(),
        sku: workload::STOCKED_SKU.into(),
        quantity: 1,
        amount_cents: 100,
        card: workload::ACCEPTED_CARD.into(),
        duplicated: false,
        retries: false,
    });
    futures_util::stream::iter(orders)
        .map(|order| async move {
            let clock = Instant::now();
            let id = match client.place(Process::Probe, &order, recorder).await {
                Outcome::Ok(id) => Some(id),
                _ => None,
            };
            (id, clock.elapsed())
        })
        .buffer_unordered(4)
        .collect()
        .await
}

#[allow(clippy::too_many_arguments)]
async fn save(
    out_dir: &Path,
    scenario: &Scenario,
    seed: u64,
    plan: &[PlannedOrder],
    nemesis: &Nemesis,
    history: &History,
    state: &RunState,
    stack: &Stack,
) -> Result<(), RunError> {
    write_json(&out_dir.join("history.json"), history)?;
    write_json(&out_dir.join("verdicts.json"), &state.verdicts)?;
    write_json(
        &out_dir.join("plan.json"),
        &json!({
            "scenario": scenario.name,
            "seed": seed,
            "initial_stock": state.initial_stock,
            "run_started_unix_ms": state.started_unix_ms,
            "faults": nemesis.timeline(),
            "orders": plan,
            "requests": scenario.workload.http.as_ref().map(|http| http_workload::plan(
                http,
                scenario.workload.duration,
                scenario.workload.duplicate_rate,
                scenario.workload.retry_rate,
                seed,
            )),
        }),
    )?;
    let logs = out_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|source| RunError::Write {
        path: logs.clone(),
        source,
    })?;
    if let Ok(entries) = std::fs::read_dir(stack.run_dir()) {
        for entry in entries.flatten() {
            let target = logs.join(entry.file_name());
            std::fs::copy(entry.path(), &target).map_err(|source| RunError::Write {
                path: target,
                source,
            })?;
        }
    }
    stack
        .infra()
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
