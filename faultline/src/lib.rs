//! faultline from a `cargo test`: start a described system on real Postgres, Kafka and
//! Toxiproxy, run chaos scenarios on it, and fail the test when a promise broke.
//!
//! ```no_run
//! #[tokio::test]
//! async fn payment_outage_compensates() -> Result<(), faultline::Error> {
//!     let mut system = faultline::System::load("faultline.toml")?.start().await?;
//!     let run = system.run(&faultline::Scenario::load("chaos/payment-down.toml")?).await?;
//!     run.assert_held(); // panics listing each violated expectation with counterexamples
//!     system.stop().await
//! }
//! ```
//!
//! The system description (`faultline.toml`) and the scenario files are the same ones
//! `faultline chaos run` reads; see the repository's `docs/system-description.md` and
//! `docs/scenarios.md`. A scenario is validated against the system it runs on, so
//! [`RunningSystem::run`] is where a scenario that targets a link the system lacks is refused.
//! Several runs on one [`RunningSystem`] share its containers: the stack is reset between
//! runs (fresh databases and topics, proxies cleared, services restarted). Each run writes its
//! report folder under `reports/` (see [`RunningSystem::reports_in`]). Dropping a
//! `RunningSystem` kills its processes and removes its containers; [`RunningSystem::stop`]
//! stops the services gracefully first.

use std::path::{Path, PathBuf};
use std::time::Instant;

use faultline_harness::runner::{self, RunError, RunOutcome};
use faultline_harness::stack::{Stack, StackError};
use faultline_harness::system::DescriptionError;

pub use faultline_chaos::scenario::ScenarioError;
/// What a system adds in Rust: named checkers and a workload of its own (see
/// [`System::with_extension`]).
pub use faultline_harness::extension::{Extension, Registry, WorkloadKind};
/// The checker trait, what a checker is given, and what it answers.
pub use faultline_harness::checkers::{BoxFuture, CheckContext, Checker, Counterexample, Verdict};
/// The workload trait a system's own workload implements.
pub use faultline_harness::workload::Workload;

/// Everything an [`Extension`]'s checkers, workload and benchmarks name, so that a repository
/// depending on `faultline` alone can write them: the running stack, the history and its
/// recorder, the facts a run gathers, a scenario's fields, the phases' results, the report's
/// view of the final state, and what a benchmark is handed and answers. `examples/bank-cargo-test/tests/payday.rs` is a worked example.
pub mod extend {
    pub use faultline_chaos::scenario::fields::Fields;
    pub use faultline_chaos::scenario::{
        Probe, ProbeCheck, Scenario as ParsedScenario, ScenarioError, WorkloadReader,
    };
    pub use faultline_harness::checkers::{
        BoxFuture, CheckContext, Checker, Counterexample, Facts, Verdict,
    };
    pub use faultline_harness::extension::{
        BenchFuture, BenchOutput, BenchSettings, Benchmark, Extension, Links, WorkloadKind,
    };
    pub use faultline_harness::history::{Event, EventType, History, Op, Pending, Process, Recorder};
    pub use faultline_harness::report::{Durations, Outcomes, WorkloadState};
    pub use faultline_harness::runner::{p99_verdict, RunError};
    pub use faultline_harness::stack::Stack;
    pub use faultline_harness::workload::{
        drive_plan, Driven, LoadSummary, Planned, PrepareError, Settlement, Workload,
    };
}

/// Why a system could not be loaded, started or run. A failed expectation is not an error:
/// it is a [`Run`] that did not hold.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The system description is malformed.
    #[error(transparent)]
    Description(#[from] DescriptionError),
    /// A scenario is malformed, or does not fit the system.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The system could not be started or driven.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// A run could not be carried out.
    #[error(transparent)]
    Run(#[from] RunError),
    /// An exploration could not go on (its folder holds another one, or a run broke).
    #[error(transparent)]
    Explore(#[from] faultline_harness::explore::ExploreError),
}

/// Fault-space exploration's options and results, for [`System::explore`].
pub mod explore {
    pub use faultline_harness::explore::{
        Exploration, ExploreError, Failure, Options, Reproducer, Stopped, Tried,
    };
    pub use faultline_harness::system::ResetMode;
}

/// A system description, read and validated.
#[derive(Debug, Clone)]
pub struct System {
    description: faultline_harness::system::System,
    /// The checkers and workload of the extension it runs with (empty without one).
    registry: Registry,
}

impl System {
    /// Reads the description at `path` (relative paths in it start at its folder).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::load_with(path, &[])
    }

    /// Reads the description at `path`, which may name one of `extensions`
    /// (`extension = "…"`): its checkers and workload come with it. A description naming
    /// one that is not among them is an error naming the field.
    pub fn load_with(
        path: impl AsRef<Path>,
        extensions: &[std::sync::Arc<dyn Extension>],
    ) -> Result<Self, Error> {
        let description = faultline_harness::system::System::load(path.as_ref())?;
        let registry = Registry::linked(&description, extensions)?;
        Ok(Self { description, registry })
    }

    /// This system with `extension`'s named checkers (and workload, if it has one), whatever
    /// its description names: what a repository registers for the invariants its scenarios
    /// list that SQL cannot state.
    pub fn with_extension(mut self, extension: std::sync::Arc<dyn Extension>) -> Self {
        self.description.extension = Some(extension.name().to_string());
        self.registry = Registry::of(extension);
        self
    }

    /// The description as the engine reads it.
    pub fn description(&self) -> &faultline_harness::system::System {
        &self.description
    }

    /// Checks that `scenario` is valid for this system (its targets, services, databases
    /// exist) without starting anything.
    pub fn validate(&self, scenario: &Scenario) -> Result<(), Error> {
        scenario.parse(&self.description, &self.registry)?;
        Ok(())
    }

    /// Explores the fault space around the scenario file `base` (what `faultline chaos
    /// explore` does; the repository's `docs/exploring.md`): a fault-free discovery run,
    /// then one experiment per fault on a stack of its own, reset between them, each failure
    /// shrunk to a reproducer in `out/reproducers/`. The state is `out/explore.json`; a
    /// second call into the same `out` resumes it. A failed experiment is not an error: look
    /// at [`explore::Exploration::failed`].
    pub async fn explore(
        &self,
        base: impl AsRef<Path>,
        options: &explore::Options,
        out: impl AsRef<Path>,
    ) -> Result<explore::Exploration, Error> {
        Ok(faultline_harness::explore::explore_until(
            &self.description,
            &self.registry,
            base.as_ref(),
            options,
            out.as_ref(),
            std::future::pending(),
            &|line| eprintln!("{line}"),
        )
        .await?)
    }

    /// Starts the system: its infrastructure, then its services in dependency order, each
    /// awaited until ready.
    pub async fn start(&self) -> Result<RunningSystem, Error> {
        let config = runner::stack_config(&self.description, &self.registry);
        let stack = Stack::start(&self.description, config).await?;
        Ok(RunningSystem {
            description: self.description.clone(),
            registry: self.registry.clone(),
            stack,
            runs: 0,
            reports: PathBuf::from("reports"),
        })
    }
}

/// A scenario file; it is read and validated (strictly, as `faultline chaos run` does: its
/// name must be its file's) against the system it runs on.
#[derive(Debug, Clone)]
pub struct Scenario {
    path: PathBuf,
}

impl Scenario {
    /// The scenario at `path`; a file that is not there is an error now, anything else when
    /// it is validated or run.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        if let Err(e) = std::fs::metadata(&path) {
            return Err(ScenarioError {
                file: path.display().to_string(),
                field: "(file)".into(),
                reason: format!("cannot read: {e}"),
            }
            .into());
        }
        Ok(Self { path })
    }

    fn parse(
        &self,
        system: &faultline_harness::system::System,
        registry: &Registry,
    ) -> Result<faultline_chaos::scenario::Scenario, ScenarioError> {
        faultline_chaos::scenario::Scenario::load(&self.path, registry.vocabulary(system))
    }
}

/// A started system.
pub struct RunningSystem {
    description: faultline_harness::system::System,
    registry: Registry,
    stack: Stack,
    runs: usize,
    reports: PathBuf,
}

impl RunningSystem {
    /// Writes each run's report folder under `dir` (default: `reports`).
    pub fn reports_in(mut self, dir: impl Into<PathBuf>) -> Self {
        self.reports = dir.into();
        self
    }

    /// Runs `scenario` with its own seed; the stack is reset first unless this is its first
    /// run. Progress goes to standard error (a test shows it when it fails).
    pub async fn run(&mut self, scenario: &Scenario) -> Result<Run, Error> {
        self.run_with_seed(scenario, None).await
    }

    /// [`run`](Self::run) with another seed.
    pub async fn run_with_seed(
        &mut self,
        scenario: &Scenario,
        seed: Option<u64>,
    ) -> Result<Run, Error> {
        let parsed = scenario.parse(&self.description, &self.registry)?;
        if self.runs > 0 {
            self.stack.reset().await?;
        }
        self.runs += 1;
        let clock = Instant::now();
        let progress =
            |line: &str| eprintln!("[faultline {:>6.1}s] {line}", clock.elapsed().as_secs_f64());
        let outcome =
            runner::run_on_stack(&mut self.stack, &self.registry, &parsed, seed, &self.reports, &progress).await?;
        Ok(Run { outcome })
    }

    /// The running stack: service addresses, links, processes (for what a scenario cannot say).
    pub fn stack(&mut self) -> &mut Stack {
        &mut self.stack
    }

    /// Stops the services gracefully and removes the containers.
    pub async fn stop(self) -> Result<(), Error> {
        self.stack.shutdown().await?;
        Ok(())
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Run {
    outcome: RunOutcome,
}

impl Run {
    /// Whether every expectation held.
    pub fn held(&self) -> bool {
        self.outcome.ok
    }

    /// Panics unless every expectation held, listing each violated one with its
    /// counterexamples and where the run's report is.
    #[track_caller]
    pub fn assert_held(&self) {
        if self.held() {
            return;
        }
        let mut text = format!(
            "scenario {} (seed {}) broke a promise; report: {}\n",
            self.outcome.scenario,
            self.outcome.seed,
            self.outcome.out_dir.join("report.html").display()
        );
        for verdict in self.outcome.failures() {
            text.push_str(&format!(
                "  FAILED {}: {}\n",
                verdict.checker, verdict.summary
            ));
            for example in verdict.counterexamples.iter().take(10) {
                text.push_str(&format!("    - {}\n", example.description));
            }
        }
        for line in &self.outcome.unhealed {
            text.push_str(&format!("  could not heal: {line}\n"));
        }
        panic!("{text}");
    }

    /// Everything the run found.
    pub fn outcome(&self) -> &RunOutcome {
        &self.outcome
    }

    /// The run's report folder.
    pub fn report_dir(&self) -> &Path {
        &self.outcome.out_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_description() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/faultline.toml")
    }

    #[test]
    fn a_description_naming_an_extension_loads_with_it_and_is_refused_without() {
        match System::load(reference_description()) {
            Err(Error::Description(e)) => assert_eq!(e.field, "extension"),
            other => panic!("expected a description error, got {:?}", other.map(|_| ())),
        }
        let system =
            System::load_with(reference_description(), &[faultline_reference::extension()])
                .unwrap();
        let scenario = Scenario::load(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../chaos/scenarios/saga-compensation-payment-down.toml"),
        )
        .unwrap();
        system.validate(&scenario).unwrap();
    }
}
