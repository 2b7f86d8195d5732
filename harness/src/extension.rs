//! Extensions: what a system adds to the engine in Rust, for what its description and
//! scenarios cannot say — named invariant [checkers](crate::checkers::Checker), a
//! [workload](crate::workload::Workload) of its own, and [benchmarks](Benchmark) of its own
//! (`faultline bench saga` is the reference system's).
//!
//! A crate implements [`Extension`]; the program that runs the system links it (the
//! `faultline` command links the reference system's; a user's `cargo test` passes its own to
//! the library), and the system description names it (`extension = "reference"`). The
//! [`Registry`] a system gets from it is the one place its invariant names come from:
//! scenario validation reads them ([`Registry::vocabulary`]) and the runner takes its
//! checkers from it, so a name a scenario may list always has a checker.
//!
//! ```
//! use std::sync::Arc;
//! use faultline_harness::checkers::{BoxFuture, CheckContext, Checker, Verdict};
//! use faultline_harness::extension::{Extension, Registry};
//!
//! struct NoLostWrites;
//! impl Checker for NoLostWrites {
//!     fn name(&self) -> String { "no-lost-writes".into() }
//!     fn check<'a>(&'a self, run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
//!         Box::pin(async move {
//!             Verdict::new("no-lost-writes", format!("{} events read", run.history.events().len()), vec![])
//!         })
//!     }
//! }
//!
//! struct Shop;
//! impl Extension for Shop {
//!     fn name(&self) -> &str { "shop" }
//!     fn checkers(&self) -> Vec<Arc<dyn Checker>> { vec![Arc::new(NoLostWrites)] }
//! }
//!
//! let registry = Registry::of(Arc::new(Shop));
//! assert_eq!(registry.invariants(), ["no-lost-writes"]);
//! ```
//!
//! Layer 3 (run roles) of the harness ([layers](crate#layers)), above the checkers and the
//! workload whose traits it gathers; imports the description to find the extension a system
//! names.

use std::sync::Arc;

use faultline_chaos::scenario::{Scenario, Vocabulary, WorkloadReader};
use faultline_chaos::topology::Topology;

use crate::checkers::{self, BoxFuture, CheckContext, Checker, Verdict};
use crate::stack::StackError;
use crate::system::{DescriptionError, System};
use crate::workload::{Workload, WorkloadState};

/// Checkers and a workload a crate adds for the systems that name it.
pub trait Extension: Send + Sync {
    /// The name descriptions give it (`extension = "…"`).
    fn name(&self) -> &str;
    /// Named invariants scenarios may list in `expectations.invariants`.
    fn checkers(&self) -> Vec<Arc<dyn Checker>>;
    /// The system's own workload, for scenarios without `[[workload.operations]]`.
    fn workload(&self) -> Option<Arc<dyn WorkloadKind>> {
        None
    }
    /// Environment the workload needs beyond the description's, as `(service, variable,
    /// value)`; it overrides the description's.
    fn stack_env(&self) -> Vec<(String, String, String)> {
        Vec::new()
    }
    /// What the report shows of the system's final state (how its units of work ended, and
    /// how long they took), read after the checkers, whose facts `run` carries. `None` (the
    /// default) leaves it to the workload, which knows only what its clients were answered;
    /// a system that can read its own state says more: units whose answer was lost, why one
    /// was cancelled, durations the system measured.
    fn final_state<'a>(&'a self, _run: &'a CheckContext<'a>) -> BoxFuture<'a, Option<WorkloadState>> {
        Box::pin(async { None })
    }
    /// Benchmarks of the system's own (`faultline bench NAME` runs the one named so).
    fn benchmarks(&self) -> Vec<Arc<dyn Benchmark>> {
        Vec::new()
    }
}

/// A benchmark an extension offers: it starts the system itself, measures, stops it, and
/// says what it measured as a table and as JSON. It measures; nothing asserts a duration.
pub trait Benchmark: Send + Sync {
    /// Its name on the command line (`faultline bench NAME`).
    fn name(&self) -> &str;
    /// Runs it on `system` with `settings`.
    fn run<'a>(&'a self, system: &'a System, settings: &'a BenchSettings) -> BenchFuture<'a>;
}

/// What [`Benchmark::run`] returns: a future the command awaits in place (it need not be
/// `Send`: a benchmark is not spawned).
pub type BenchFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<BenchOutput, StackError>> + 'a>>;

/// What the command line hands an extension's benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchSettings {
    /// Concurrency levels, each measured in turn.
    pub concurrency: Vec<usize>,
    /// Units of work (orders, transfers, …) at each level.
    pub units: usize,
    /// How the services reach Postgres and each other.
    pub links: Links,
}

/// How a benchmarked system's services reach Postgres and each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Links {
    /// Straight, as pgbench reaches Postgres: the system without faultline's instruments.
    /// Kafka stays behind its per-client proxies (faultline's broker proxy, then Toxiproxy),
    /// which its broker advertises.
    Direct,
    /// Through Toxiproxy, as in a chaos run (with no fault on them).
    Toxiproxy,
}

/// What a benchmark measured: the table a person reads and the JSON a file keeps.
#[derive(Debug, Clone)]
pub struct BenchOutput {
    /// Plain text, one line per level.
    pub table: String,
    /// The whole result.
    pub json: serde_json::Value,
}

/// A workload written in Rust: reads its fields of a scenario's `[workload]`, then builds the
/// [`Workload`] of one run.
pub trait WorkloadKind: WorkloadReader {
    /// The run's workload for `scenario` (validated by [`WorkloadReader::read`]) and `seed`.
    fn build(&self, scenario: &Scenario, seed: u64) -> Box<dyn Workload>;
}

/// The checkers and workload one system uses: those of its extension, or none.
#[derive(Clone, Default)]
pub struct Registry {
    name: Option<String>,
    checkers: Vec<Arc<dyn Checker>>,
    invariants: Vec<String>,
    workload: Option<Arc<dyn WorkloadKind>>,
    stack_env: Vec<(String, String, String)>,
    benchmarks: Vec<Arc<dyn Benchmark>>,
    extension: Option<Arc<dyn Extension>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("extension", &self.name)
            .field("invariants", &self.invariants)
            .field("workload", &self.workload.as_ref().map(|w| w.name().to_string()))
            .finish()
    }
}

impl Registry {
    /// The registry of the extension `system`'s description names (`extension = "…"`), which
    /// must be among the `extensions` this program links; the empty registry when it names
    /// none.
    pub fn linked(system: &System, extensions: &[Arc<dyn Extension>]) -> Result<Self, DescriptionError> {
        let Some(name) = &system.extension else {
            return Ok(Self::default());
        };
        match extensions.iter().find(|e| e.name() == name) {
            Some(extension) => Ok(Self::of(extension.clone())),
            None => {
                let known: Vec<&str> = extensions.iter().map(|e| e.name()).collect();
                Err(DescriptionError {
                    file: system.file.display().to_string(),
                    field: "extension".into(),
                    reason: format!(
                        "no extension {name:?} is linked into this program; linked: {}",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ),
                })
            }
        }
    }

    /// The registry of `extension`.
    pub fn of(extension: Arc<dyn Extension>) -> Self {
        let checkers = extension.checkers();
        let invariants = checkers.iter().map(|c| c.name()).collect();
        Self {
            name: Some(extension.name().to_string()),
            checkers,
            invariants,
            workload: extension.workload(),
            stack_env: extension.stack_env(),
            benchmarks: extension.benchmarks(),
            extension: Some(extension),
        }
    }

    /// The environment the extension asks the stack for.
    pub fn stack_env(&self) -> Vec<(String, String, String)> {
        self.stack_env.clone()
    }

    /// The extension's name, if the system has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The invariant names its checkers answer, in registration order.
    pub fn invariants(&self) -> Vec<String> {
        self.invariants.clone()
    }

    /// The benchmark named `name`, or the names of those there are.
    pub fn benchmark(&self, name: &str) -> Result<Arc<dyn Benchmark>, Vec<String>> {
        match self.benchmarks.iter().find(|b| b.name() == name) {
            Some(benchmark) => Ok(benchmark.clone()),
            None => Err(self.benchmarks.iter().map(|b| b.name().to_string()).collect()),
        }
    }

    /// The checker answering `name`.
    pub fn checker(&self, name: &str) -> Option<Arc<dyn Checker>> {
        self.checkers.iter().find(|c| c.name() == name).cloned()
    }

    /// The extension's view of the system's final state after a run, if it has one (see
    /// [`Extension::final_state`]).
    pub async fn final_state(&self, run: &CheckContext<'_>) -> Option<WorkloadState> {
        match &self.extension {
            Some(extension) => extension.final_state(run).await,
            None => None,
        }
    }

    /// Every checker `scenario` asks for, in the order its verdicts appear: its named invariants
    /// (from this registry), then one per expected circuit behaviour, one per SQL, Kafka and HTTP
    /// invariant, the SLO, the operations' promised [`answers`](checkers::answers) (unless it says
    /// `answers = false`) and, in a run with faults, their [`blast`](checkers::blast) radius.
    pub fn checkers_for(&self, scenario: &Scenario) -> Vec<Arc<dyn Checker>> {
        let mut checkers: Vec<Arc<dyn Checker>> = Vec::new();
        for name in &scenario.expectations.invariants {
            checkers.push(match self.checker(name) {
                Some(checker) => checker,
                None => Arc::new(Unknown(name.clone(), self.invariants())),
            });
        }
        for expectation in &scenario.expectations.circuits {
            checkers.push(Arc::new(checkers::circuits::CircuitChecker(expectation.clone())));
        }
        for check in &scenario.expectations.sql {
            checkers.push(Arc::new(checkers::sql::SqlChecker(check.clone())));
        }
        for check in &scenario.expectations.kafka {
            checkers.push(Arc::new(checkers::kafka::KafkaChecker(check.clone())));
        }
        for check in &scenario.expectations.http {
            checkers.push(Arc::new(checkers::http::HttpChecker(check.clone())));
        }
        if let Some(slo) = &scenario.expectations.slo {
            checkers.push(Arc::new(checkers::slo::SloChecker(slo.clone())));
        }
        if !scenario.expectations.unjudged_answers {
            checkers.push(Arc::new(checkers::answers::AnswersChecker));
        }
        if checkers::blast::applies(scenario) {
            checkers.push(Arc::new(checkers::blast::BlastChecker));
        }
        checkers
    }

    /// The system's own workload.
    pub fn workload(&self) -> Option<&Arc<dyn WorkloadKind>> {
        self.workload.as_ref()
    }

    /// What a scenario for `system` may say: its topology, the invariants these checkers
    /// answer, the fields of its described workload and of this registry's workload.
    pub fn vocabulary<'a>(&'a self, system: &'a System) -> Vocabulary<'a> {
        Vocabulary {
            described: system.workload.as_ref(),
            steady_state: &system.steady_state,
            ..self.vocabulary_on(system.topology())
        }
    }

    /// What a scenario on `topology` may say with this registry (no described workload).
    pub fn vocabulary_on<'a>(&'a self, topology: &'a Topology) -> Vocabulary<'a> {
        Vocabulary {
            topology,
            invariants: &self.invariants,
            workload: self
                .workload
                .as_deref()
                .map(|w| w as &dyn WorkloadReader),
            described: None,
            steady_state: &[],
        }
    }
}

/// A named invariant no checker answers (a scenario validated against another registry).
struct Unknown(String, Vec<String>);

impl Checker for Unknown {
    fn name(&self) -> String {
        self.0.clone()
    }
    fn check<'a>(&'a self, _run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            Verdict::cannot_judge(
                &self.0,
                format!("no checker is called {:?}; known: {}", self.0, self.1.join(", ")),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::fixtures::*;

    #[test]
    fn checkers_for_takes_named_invariants_from_the_registry_then_circuits_sql_and_slo() {
        let expecting = scenario(
            r#"
            invariants = ["no-lost-writes"]
            [[expectations.circuits]]
            link = "order->payment"
            opens = false
            [[expectations.sql]]
            name = "none"
            database = "order"
            query = "SELECT 1 WHERE false"
            [expectations.slo]
            error_rate = 0.5
            "#,
        );
        let names: Vec<String> = registry().checkers_for(&expecting)
            .iter()
            .map(|c| c.name())
            .collect();
        assert_eq!(
            names,
            ["no-lost-writes", "circuit order->payment", "sql none", "slo", "answers", "blast-radius"]
        );
        let unjudged = scenario("answers = false");
        let names: Vec<String> = registry().checkers_for(&unjudged).iter().map(|c| c.name()).collect();
        assert!(!names.contains(&"answers".to_string()), "{names:?}");
    }
}
