//! What a scenario may say about the system it runs on beyond its [`Topology`]: the named
//! invariants the checkers registered for that system answer (`expectations.invariants`),
//! and the system's own workload when it has one written in Rust (the fields of `[workload]`
//! it reads). The harness builds a [`Vocabulary`] from its checker registry and the system
//! description, so a name a scenario may use is written once, where its checker is.
//!
//! ```
//! use faultline_chaos::scenario::{Scenario, Vocabulary};
//! use faultline_chaos::topology::Topology;
//! let topology = Topology::new(["teller"], ["postgres"], [("teller", "postgres")]);
//! let invariants = vec!["balances-conserved".to_string()];
//! let vocabulary = Vocabulary { topology: &topology, invariants: &invariants, workload: None, described: None, steady_state: &[] };
//! let scenario = Scenario::parse("s.toml", vocabulary, r#"
//!     name = "s"
//!     description = "d"
//!     [workload]
//!     requests = 5
//!     duration = "5s"
//!     [[workload.operations]]
//!     name = "ping"
//!     service = "teller"
//!     method = "GET"
//!     path = "/health"
//!     [expectations]
//!     invariants = ["balances-conserved"]
//! "#).unwrap();
//! assert_eq!(scenario.expectations.invariants, ["balances-conserved"]);
//! ```

use super::fields::Fields;
use super::ScenarioError;
use crate::topology::Topology;

/// The names and readers a scenario is validated against.
#[derive(Clone, Copy)]
pub struct Vocabulary<'a> {
    /// The system's services, servers and links.
    pub topology: &'a Topology,
    /// Named invariants the system's registered checkers answer.
    pub invariants: &'a [String],
    /// The system's own workload, when it has one written in Rust.
    pub workload: Option<&'a dyn WorkloadReader>,
    /// The declarative workload the system description writes once (`[workload]` with
    /// operations): a scenario that gives no operations of its own sends these. It takes
    /// precedence over a Rust workload.
    pub described: Option<&'a super::request::DescribedWorkload>,
    /// The steady-state probes of scenarios that give none (the description's
    /// `[steady_state]`); empty: the workload's own default.
    pub steady_state: &'a [super::Probe],
}

impl std::fmt::Debug for Vocabulary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocabulary")
            .field("topology", self.topology)
            .field("invariants", &self.invariants)
            .field("workload", &self.workload.map(|w| w.name()))
            .field("described", &self.described.map(|d| d.operations.len()))
            .finish()
    }
}

impl<'a> From<&'a Topology> for Vocabulary<'a> {
    /// A system with no checkers or workload of its own: HTTP workloads and the generic
    /// expectations only.
    fn from(topology: &'a Topology) -> Self {
        Self {
            topology,
            invariants: &[],
            workload: None,
            described: None,
            steady_state: &[],
        }
    }
}

/// Reads the fields a system's own workload adds to a scenario's `[workload]`, with the
/// same strictness as the rest of the file: every key it knows is read (an error names the
/// field and what was expected); keys left over are reported as unknown afterwards.
pub trait WorkloadReader: Send + Sync {
    /// The workload's name, as the system description names it.
    fn name(&self) -> &str;
    /// Reads and checks the workload's own keys of `fields` (the shared ones — `concurrency`,
    /// `duration`, `duplicate_rate`, `retry_rate` — are already read).
    fn read(&self, fields: &mut Fields<'_>) -> Result<(), ScenarioError>;
    /// The invariants judged when a scenario of this workload names none.
    fn default_invariants(&self) -> Vec<String>;
}
