//! The loop: discovery, the experiments on one stack, confirming and shrinking each failure,
//! saving the state after every step.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_chaos::scenario::Scenario;

use crate::intercept::CallSite;
use crate::runner::{self, RunError};
use crate::stack::Stack;
use crate::extension::Registry;
use crate::system::System;

use super::render::{html, junit};
use super::shrink::{Candidate, Shrinker};
use super::space::*;
use super::state::*;

/// The bounds and choices of an exploration.
#[derive(Debug, Clone)]
pub struct Options {
    /// At most this many experiments in this session.
    pub budget: Option<usize>,
    /// No new experiment starts after this long (this session).
    pub time: Option<Duration>,
    /// The workload's seed and the experiments' order (default: the base scenario's seed).
    pub seed: Option<u64>,
    /// How long a `delay` experiment holds each request, at every call site (default: past the
    /// stated timeouts, at least [`Timing::DELAY`]).
    pub delay: Option<Duration>,
    /// Start over even if the folder holds an exploration of the same base and seed.
    pub fresh: bool,
    /// Confirm and shrink each failure to a reproducer.
    pub shrink: bool,
    /// At most this many runs for confirming and shrinking one failure.
    pub shrink_runs: usize,
    /// Run only the experiments whose id contains one of these (all when empty); the others
    /// stay pending.
    pub only: Vec<String>,
    /// Stop once a failure has been found (and shrunk).
    pub until_failure: bool,
    /// How the stack is reset between experiments, over the description's `reset`.
    pub reset: Option<crate::system::ResetMode>,
    /// Also explore the statements of each service's conversation with Postgres, as
    /// discovery saw them (`sql-error`, `sql-drop-answer`, `sql-delay` at each).
    pub statements: bool,
    /// Also explore the produces, fetches and offset commits of each service's conversation
    /// with Kafka, as discovery saw them (`kafka-error`, `kafka-drop-answer`,
    /// `kafka-kill-sent`, `kafka-kill-answered` at each produce and commit; `kafka-hold` at
    /// each fetch).
    pub broker_requests: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            budget: None,
            time: None,
            seed: None,
            delay: None,
            fresh: false,
            shrink: true,
            shrink_runs: 30,
            only: Vec::new(),
            until_failure: false,
            reset: None,
            statements: false,
            broker_requests: false,
        }
    }
}

/// Why an exploration could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// The folder holds another exploration (another base or seed): resuming it would mix two.
    #[error("{}: holds an exploration of {scenario} with seed {seed}; pass --fresh to start over, or choose another --out", path.display())]
    Mismatch {
        path: PathBuf,
        scenario: String,
        seed: u64,
    },
    #[error("{}: {message}", path.display())]
    State { path: PathBuf, message: String },
    /// The base scenario failed with no fault at all.
    #[error("the fault-free run of {scenario} did not hold ({failures}); see {}: exploring a system that already fails finds nothing new", report.display())]
    BaseFails {
        scenario: String,
        failures: String,
        report: PathBuf,
    },
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Explores around `base` (a scenario file of `system`), writing into `out`; stops early at
/// `interrupt`, healing and saving the state first (then the error is
/// [`RunError::Interrupted`]).
pub async fn explore_until(
    system: &System,
    registry: &Registry,
    base_file: &Path,
    options: &Options,
    out: &Path,
    interrupt: impl Future<Output = ()>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Exploration, ExploreError> {
    let file = base_file.display().to_string();
    let bad_base = |message: String| ExploreError::State {
        path: base_file.to_path_buf(),
        message,
    };
    let base = Scenario::load(base_file, registry.vocabulary(system)).map_err(|e| bad_base(e.to_string()))?;
    // Read again as a table: each experiment's scenario is the base's text with its faults.
    let table: toml::Table = std::fs::read_to_string(base_file)
        .map_err(|e| e.to_string())
        .and_then(|text| toml::from_str(&text).map_err(|e| e.to_string()))
        .map_err(bad_base)?;
    let seed = options.seed.unwrap_or(base.seed);
    let state_path = out.join("explore.json");
    let earlier = if options.fresh { None } else { load(&state_path)? };
    if let Some(earlier) = &earlier {
        if earlier.scenario != base.name || earlier.seed != seed || earlier.system != system.name {
            return Err(ExploreError::Mismatch {
                path: state_path,
                scenario: earlier.scenario.clone(),
                seed: earlier.seed,
            });
        }
    }
    std::fs::create_dir_all(out).map_err(|source| RunError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let timing = Timing::of(system, base.workload.duration, options.delay);
    tokio::pin!(interrupt);

    let system = &match options.reset {
        Some(reset) => {
            let mut system = system.clone();
            system.reset = reset;
            system
        }
        None => system.clone(),
    };
    let config = runner::stack_config(system, registry);
    progress("starting the stack (shared by every experiment)");
    let mut stack = tokio::select! {
        started = Stack::start(system, config) => started.map_err(RunError::from)?,
        () = &mut interrupt => return Err(RunError::Interrupted { out_dir: out.to_path_buf() }.into()),
    };
    let result = explore_on(
        &mut stack, system, registry, &base, &file, &table, seed, options, out, earlier, &timing,
        &mut interrupt, progress,
    )
    .await;
    progress("shutting the stack down");
    let shutdown = stack.shutdown().await;
    let exploration = result?;
    shutdown.map_err(RunError::from)?;
    Ok(exploration)
}

#[allow(clippy::too_many_arguments)]
async fn explore_on<I: Future<Output = ()> + Unpin>(
    stack: &mut Stack,
    system: &System,
    registry: &Registry,
    base: &Scenario,
    file: &str,
    table: &toml::Table,
    seed: u64,
    options: &Options,
    out: &Path,
    earlier: Option<Exploration>,
    timing: &Timing,
    interrupt: &mut I,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Exploration, ExploreError> {
    let session = Instant::now();
    let mut exploration = match earlier {
        Some(earlier) => {
            progress(&format!(
                "resuming: {} experiment(s) done, {} pending",
                earlier.experiments.len(),
                earlier.pending.len()
            ));
            earlier
        }
        None => {
            let discovery =
                discover(stack, system, registry, base, seed, options, out, interrupt, progress).await?;
            // A base that fails without a fault is not explored; the folder says why.
            let base_failed = !discovery.base_failures.is_empty();
            let pending = if base_failed {
                Vec::new()
            } else {
                let sites: Vec<CallSite> =
                    discovery.call_sites.iter().chain(&discovery.statements).chain(&discovery.broker_requests).cloned().collect();
                singles(&sites, &discovery.consumers, timing, seed)
            };
            progress(&format!(
                "discovery: {} call site(s), {} statement(s), {} broker request(s), {} consumer(s): {} single-fault experiment(s)",
                discovery.call_sites.len(),
                discovery.statements.len(),
                discovery.broker_requests.len(),
                discovery.consumers.len(),
                pending.len()
            ));
            let exploration = Exploration {
                version: EXPLORE_VERSION,
                system: system.name.clone(),
                scenario: base.name.clone(),
                file: PathBuf::from(file),
                seed,
                delay_ms: options.delay.unwrap_or(Timing::DELAY).as_millis() as u64,
                space: Space {
                    singles: pending.len(),
                    ..Space::default()
                },
                discovery,
                experiments: Vec::new(),
                pending,
                stopped: base_failed.then_some(Stopped::BaseFailed),
                experiment_seconds: 0.0,
                shrink_seconds: 0.0,
                per_minute: 0.0,
                first_failure_seconds: None,
                first_reproducer_seconds: None,
            };
            save(&exploration, out)?;
            if base_failed {
                let discovery = &exploration.discovery;
                return Err(ExploreError::BaseFails {
                    scenario: base.name.clone(),
                    failures: discovery
                        .base_failures
                        .iter()
                        .map(|f| format!("{}: {}", f.checker, f.summary))
                        .collect::<Vec<_>>()
                        .join("; "),
                    report: discovery.report.clone().unwrap_or_default(),
                });
            }
            exploration
        }
    };
    exploration.stopped = None;
    // Every experiment (and reproducer) judges its blast radius by discovery's footprints.
    let table = &with_footprints(table, &exploration.discovery);
    let known: BTreeSet<(String, String, String)> = exploration
        .discovery
        .call_sites
        .iter()
        .map(|s| (s.link.clone(), s.method.clone(), s.route.clone()))
        .collect();
    let mut ran = 0usize;
    let runs_dir = out.join("runs");
    loop {
        if options.until_failure && exploration.failed().next().is_some() {
            exploration.stopped = Some(Stopped::Failure);
            break;
        }
        let chosen = exploration.pending.iter().position(|e| {
            options.only.is_empty() || options.only.iter().any(|o| e.id.contains(o.as_str()))
        });
        let Some(chosen) = chosen else {
            exploration.stopped = Some(Stopped::Exhausted);
            break;
        };
        if options.budget.is_some_and(|b| ran >= b) {
            exploration.stopped = Some(Stopped::Budget);
            break;
        }
        if options.time.is_some_and(|t| session.elapsed() >= t) {
            exploration.stopped = Some(Stopped::Time);
            break;
        }
        let experiment = exploration.pending.remove(chosen);
        let number = exploration.experiments.len() + 1;
        let name = format!("{}-x{number:03}", base.name);
        let clock = Instant::now();
        progress(&format!(
            "[{number}/{}] {}",
            number + exploration.pending.len(),
            experiment.id
        ));
        let candidate = experiment.candidate(table, base.workload.duration);
        let description = format!("Explored: {}", experiment.id);
        let after_failure = exploration.experiments.last().is_some_and(|t| !t.ok);
        let outcome = run_candidate(
            stack, system, registry, table, &name, &description, &candidate, seed, &runs_dir, after_failure,
            interrupt,
        )
        .await;
        let seconds = clock.elapsed().as_secs_f64();
        let (ok, failures, error, report, reset, run_phases) = match outcome {
            Ok((reset, outcome)) => {
                let failures = failures_of(&outcome);
                let phases = run_phases_of(&outcome.timings);
                (failures.is_empty(), failures, None, Some(outcome.out_dir), reset, phases)
            }
            Err(RunError::Interrupted { .. }) => {
                exploration.pending.insert(chosen, experiment);
                exploration.stopped = Some(Stopped::Interrupted);
                exploration.experiment_seconds += seconds;
                save(&exploration, out)?;
                return Err(RunError::Interrupted {
                    out_dir: out.to_path_buf(),
                }
                .into());
            }
            Err(error @ RunError::Stack(_)) => {
                // The stack itself broke (its reset failed): no later experiment could run.
                exploration.pending.insert(chosen, experiment);
                save(&exploration, out)?;
                return Err(error.into());
            }
            Err(error) => (
                false,
                Vec::new(),
                Some(error.to_string()),
                None,
                Duration::ZERO,
                BTreeMap::new(),
            ),
        };
        let revealed: Vec<CallSite> = stack
            .call_sites()
            .into_iter()
            .filter(|s| !known.contains(&(s.link.clone(), s.method.clone(), s.route.clone())))
            .collect();
        if experiment.faults.len() == 1 && !revealed.is_empty() {
            let combos = combinations(&experiment, &revealed, timing);
            if ok {
                let queued: BTreeSet<String> = exploration
                    .pending
                    .iter()
                    .chain(exploration.experiments.iter().map(|t| &t.experiment))
                    .map(|e| e.id.clone())
                    .collect();
                let fresh: Vec<Experiment> =
                    combos.into_iter().filter(|c| !queued.contains(&c.id)).collect();
                exploration.space.combinations += fresh.len();
                exploration.pending.extend(fresh);
            } else {
                exploration.space.skipped_covered += combos.len();
            }
        }
        exploration.experiment_seconds += seconds;
        if !ok && error.is_none() && exploration.first_failure_seconds.is_none() {
            exploration.first_failure_seconds = Some(exploration.experiment_seconds);
        }
        let reset_phases: BTreeMap<String, f64> = stack
            .last_reset()
            .iter()
            .map(|(phase, took)| (phase.to_string(), took.as_secs_f64()))
            .collect();
        let phases: String = stack
            .last_reset()
            .iter()
            .map(|(phase, took)| format!(", {phase} {:.2}", took.as_secs_f64()))
            .collect();
        let ran_phases: String = RUN_PHASES
            .iter()
            .filter_map(|phase| run_phases.get(*phase).map(|took| format!(", {phase} {took:.1}")))
            .collect();
        progress(&format!(
            "[{number}] {} in {seconds:.1}s (reset {:.1}s{phases}; run{ran_phases}){}",
            match (&error, ok) {
                (Some(_), _) => "ERROR",
                (None, true) => "held",
                (None, false) => "FAILED",
            },
            reset.as_secs_f64(),
            failures
                .iter()
                .map(|f| format!("\n      {}: {}", f.checker, f.summary))
                .chain(error.iter().map(|e| format!("\n      {e}")))
                .collect::<String>()
        ));
        let reproducer = if !ok && error.is_none() && options.shrink {
            let shrinking = ShrinkRun {
                system,
                registry,
                table,
                name: &name,
                id: &experiment.id,
                seed,
                dir: &out.join("shrink"),
                checkers: failures.iter().map(|f| f.checker.clone()).collect(),
                progress,
                last_failed: std::cell::Cell::new(true),
            };
            let reproducer = shrinking
                .run(stack, candidate, options.shrink_runs, out, interrupt)
                .await?;
            exploration.shrink_seconds += reproducer.seconds;
            if reproducer.file.is_some() && exploration.first_reproducer_seconds.is_none() {
                exploration.first_reproducer_seconds =
                    Some(exploration.experiment_seconds + exploration.shrink_seconds);
            }
            Some(reproducer)
        } else {
            None
        };
        exploration.experiments.push(Tried {
            number,
            experiment,
            ok,
            failures,
            error,
            report,
            reset_seconds: reset.as_secs_f64(),
            reset_phases,
            run_phases,
            seconds,
            revealed,
            reproducer,
        });
        exploration.space.run = exploration.experiments.len();
        exploration.per_minute =
            exploration.experiments.len() as f64 / (exploration.experiment_seconds / 60.0).max(1e-9);
        save(&exploration, out)?;
        ran += 1;
    }
    save(&exploration, out)?;
    Ok(exploration)
}

/// A run's phases, in order: the steady state before the faults, the load (faults inside),
/// healing and settling, the steady state after, the checkers.
pub const RUN_PHASES: [&str; 5] = ["before", "load", "settle", "after", "checking"];

/// A run's phases as an experiment records them: seconds by name.
fn run_phases_of(timings: &runner::RunTimings) -> BTreeMap<String, f64> {
    [
        timings.steady_state_before_ms,
        timings.load_ms,
        timings.heal_and_settle_ms,
        timings.steady_state_after_ms,
        timings.checking_ms,
    ]
    .into_iter()
    .zip(RUN_PHASES)
    .map(|(ms, phase)| (phase.to_string(), ms as f64 / 1000.0))
    .collect()
}

/// The verdicts that failed in `outcome`, as the exploration keeps them (an unhealed fault
/// is one).
fn failures_of(outcome: &runner::RunOutcome) -> Vec<Failure> {
    let mut failures: Vec<Failure> = outcome
        .failures()
        .map(|v| Failure {
            checker: v.checker.clone(),
            summary: v.summary.clone(),
            counterexamples: v
                .counterexamples
                .iter()
                .take(5)
                .map(|c| c.description.clone())
                .collect(),
        })
        .collect();
    failures.extend(outcome.unhealed.iter().map(|u| Failure {
        checker: "fault healed".into(),
        summary: u.clone(),
        counterexamples: Vec::new(),
    }));
    failures
}

/// Resets the stack and runs `candidate` as scenario `name`; the reset's time and the outcome.
#[allow(clippy::too_many_arguments)]
async fn run_candidate<I: Future<Output = ()> + Unpin>(
    stack: &mut Stack,
    system: &System,
    registry: &Registry,
    table: &toml::Table,
    name: &str,
    description: &str,
    candidate: &Candidate,
    seed: u64,
    runs_dir: &Path,
    after_failure: bool,
    interrupt: &mut I,
) -> Result<(Duration, runner::RunOutcome), RunError> {
    let scenario = scenario_text(table, name, description, candidate)
        .and_then(|text| Scenario::parse(name, registry.vocabulary(system), &text).map_err(|e| e.to_string()))
        .map_err(|message| RunError::Setup {
            action: format!("writing the scenario {name}"),
            message,
        })?;
    // A run that failed may have left a process stuck in a way its readiness does not show:
    // the next run starts from restarted services, however the description resets.
    let reset = if after_failure {
        stack.fresh_reset().await?
    } else {
        stack.reset().await?
    };
    let quiet = |_: &str| {};
    let outcome =
        runner::run_on_stack_until(stack, registry, &scenario, Some(seed), runs_dir, interrupt, &quiet).await?;
    Ok((reset, outcome))
}

/// What shrinking one failure needs besides the stack.
struct ShrinkRun<'a> {
    system: &'a System,
    registry: &'a Registry,
    table: &'a toml::Table,
    /// The experiment's scenario name.
    name: &'a str,
    id: &'a str,
    seed: u64,
    dir: &'a Path,
    /// Its failing checkers: a run "fails the same way" when one of them fails again.
    checkers: Vec<String>,
    progress: &'a (dyn Fn(&str) + Sync),
    /// Whether the last run on the stack failed (the experiment's own did).
    last_failed: std::cell::Cell<bool>,
}

impl ShrinkRun<'_> {
    /// Whether `candidate` failed the same way, and its report folder.
    async fn fails<I: Future<Output = ()> + Unpin>(
        &self,
        stack: &mut Stack,
        candidate: &Candidate,
        run: usize,
        interrupt: &mut I,
    ) -> Result<(bool, Option<PathBuf>), ExploreError> {
        let name = format!("{}-s{run:02}", self.name);
        let description = format!("Shrinking: {}", self.id);
        let result = run_candidate(
            stack,
            self.system,
            self.registry,
            self.table,
            &name,
            &description,
            candidate,
            self.seed,
            self.dir,
            self.last_failed.get(),
            interrupt,
        )
        .await;
        match result {
            Ok((_, outcome)) => {
                let failures = failures_of(&outcome);
                self.last_failed.set(!failures.is_empty());
                let same = failures.iter().any(|f| self.checkers.contains(&f.checker));
                Ok((same, Some(outcome.out_dir)))
            }
            Err(error @ (RunError::Interrupted { .. } | RunError::Stack(_))) => Err(error.into()),
            Err(_) => {
                self.last_failed.set(true);
                Ok((false, None))
            }
        }
    }

    /// Confirms the failure with [`RERUNS`] reruns, shrinks it within `max_runs` runs, and
    /// writes the reproducer into `out/reproducers/`.
    async fn run<I: Future<Output = ()> + Unpin>(
        &self,
        stack: &mut Stack,
        start: Candidate,
        max_runs: usize,
        out: &Path,
        interrupt: &mut I,
    ) -> Result<Reproducer, ExploreError> {
        let clock = Instant::now();
        let mut runs = 0;
        let mut confirmed = 0;
        let mut report = None;
        for _ in 0..RERUNS {
            runs += 1;
            let (failed, folder) = self.fails(stack, &start, runs, interrupt).await?;
            if !failed {
                break;
            }
            confirmed += 1;
            report = folder;
        }
        (self.progress)(&format!("    confirmed: failed {confirmed} of {RERUNS} reruns"));
        if confirmed < RERUNS {
            return Ok(Reproducer {
                confirmed,
                file: None,
                report,
                steps: Vec::new(),
                candidate: start,
                runs,
                exhausted_budget: false,
                seconds: clock.elapsed().as_secs_f64(),
            });
        }
        let mut shrinker = Shrinker::new(start, RERUNS, max_runs);
        while let Some(candidate) = shrinker.next() {
            runs += 1;
            let (failed, folder) = self.fails(stack, &candidate, runs, interrupt).await?;
            if failed {
                report = folder;
            }
            let kept = shrinker.steps_taken();
            shrinker.record(failed);
            if shrinker.steps_taken() > kept {
                (self.progress)(&format!(
                    "    shrunk: {} ({} run(s) so far)",
                    shrinker.last_step().unwrap_or_default(),
                    shrinker.runs()
                ));
            }
        }
        let shrunk = shrinker.finish();
        let stem = format!("{}-min", self.name);
        let dir = out.join("reproducers");
        let description = format!(
            "Reproducer of {} (shrunk by faultline chaos explore: {}); fails {}.",
            self.id,
            if shrunk.steps.is_empty() {
                "nothing smaller failed".to_string()
            } else {
                shrunk.steps.join("; ")
            },
            self.checkers.join(", ")
        );
        let text = scenario_text(self.table, &stem, &description, &shrunk.candidate).map_err(|message| {
            RunError::Setup {
                action: format!("writing the reproducer {stem}"),
                message,
            }
        })?;
        std::fs::create_dir_all(&dir).map_err(|source| RunError::Write {
            path: dir.clone(),
            source,
        })?;
        let file = dir.join(format!("{stem}.toml"));
        std::fs::write(&file, text).map_err(|source| RunError::Write {
            path: file.clone(),
            source,
        })?;
        (self.progress)(&format!("    reproducer: {}", file.display()));
        Ok(Reproducer {
            confirmed,
            file: Some(file),
            report,
            steps: shrunk.steps,
            candidate: shrunk.candidate,
            runs,
            exhausted_budget: shrunk.exhausted_budget,
            seconds: clock.elapsed().as_secs_f64(),
        })
    }
}

/// The fault-free run: which call sites and consumers the workload exercises.
async fn discover<I: Future<Output = ()> + Unpin>(
    stack: &mut Stack,
    system: &System,
    registry: &Registry,
    base: &Scenario,
    seed: u64,
    options: &Options,
    out: &Path,
    interrupt: &mut I,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Discovery, ExploreError> {
    let clock = Instant::now();
    let mut plain = base.clone();
    plain.faults.clear();
    plain.expectations.circuits.clear();
    plain.expectations.slo = None;
    plain.name = format!("{}-discovery", base.name);
    plain.expectations.blast_radius.measure = true;
    progress(&format!("discovery: {} with no fault", base.name));
    stack.forget_call_sites();
    let outcome =
        runner::run_on_stack_until(stack, registry, &plain, Some(seed), &out.join("runs"), interrupt, progress)
            .await?;
    let call_sites = stack.call_sites();
    let statements = if options.statements { stack.statement_sites() } else { Vec::new() };
    // A service's own requests only: the harness's link to Kafka is no service's.
    let services: BTreeSet<&str> = system.start_order().into_iter().collect();
    let broker_requests: Vec<CallSite> = if options.broker_requests {
        stack
            .broker_sites()
            .into_iter()
            .filter(|site| site.link.split_once("->").is_some_and(|(client, _)| services.contains(client)))
            .collect()
    } else {
        Vec::new()
    };
    let base_failures = failures_of(&outcome);
    if !base_failures.is_empty() {
        return Ok(Discovery {
            report: Some(outcome.out_dir),
            seconds: clock.elapsed().as_secs_f64(),
            call_sites,
            footprints: outcome.footprints,
            base_failures,
            ..Discovery::default()
        });
    }
    let mut consumers = Vec::new();
    let mut unmatched_groups = Vec::new();
    for (group, topics) in stack.consumer_groups().await.map_err(RunError::from)? {
        if services.contains(group.as_str()) {
            consumers.push(Consumer {
                service: group.clone(),
                group,
                topics,
            });
        } else {
            unmatched_groups.push(group);
        }
    }
    Ok(Discovery {
        report: Some(outcome.out_dir),
        seconds: clock.elapsed().as_secs_f64(),
        call_sites,
        statements,
        broker_requests,
        footprints: outcome.footprints,
        baseline: outcome
            .baseline
            .map(|b| b.into_iter().map(|(op, figures)| (op, figures.into())).collect()),
        consumers,
        unmatched_groups,
        base_failures,
    })
}

/// The exploration saved in `path`, if there is one.
fn load(path: &Path) -> Result<Option<Exploration>, ExploreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ExploreError::State {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        }
    };
    let state: Exploration = serde_json::from_str(&text).map_err(|e| ExploreError::State {
        path: path.to_path_buf(),
        message: format!("not an exploration this faultline can resume ({e}); pass --fresh"),
    })?;
    if state.version != EXPLORE_VERSION {
        return Err(ExploreError::State {
            path: path.to_path_buf(),
            message: format!(
                "version {} where {EXPLORE_VERSION} was expected; pass --fresh",
                state.version
            ),
        });
    }
    Ok(Some(state))
}

/// Writes `explore.json` (whole, through a temporary file), `explore.html` and `junit.xml`.
fn save(exploration: &Exploration, out: &Path) -> Result<(), ExploreError> {
    let write = |name: &str, text: String| -> Result<(), ExploreError> {
        let path = out.join(name);
        let partial = out.join(format!(".{name}.partial"));
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|source| RunError::Write { path, source }.into())
    };
    let json = serde_json::to_string_pretty(exploration).expect("an exploration serializes");
    write("explore.json", json)?;
    write("explore.html", html(exploration))?;
    write("junit.xml", junit(exploration))
}
