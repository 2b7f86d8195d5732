//! Extensions: what a system adds to the engine in Rust, for what its description and
//! scenarios cannot say — named invariant [checkers](crate::checkers::Checker) and a
//! [workload](crate::workload::Workload) of its own.
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

use std::sync::Arc;

use faultline_chaos::scenario::{Scenario, Vocabulary, WorkloadReader};
use faultline_chaos::topology::Topology;

use crate::checkers::{BoxFuture, CheckContext, Checker};
use crate::report::WorkloadState;
use crate::workload::Workload;

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

    /// The system's own workload.
    pub fn workload(&self) -> Option<&Arc<dyn WorkloadKind>> {
        self.workload.as_ref()
    }

    /// What a scenario on `topology` may say with this registry.
    pub fn vocabulary<'a>(&'a self, topology: &'a Topology) -> Vocabulary<'a> {
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
