//! Fault-space exploration (`faultline chaos explore`): instead of running a schedule written
//! by hand, find the faults that break a system.
//!
//! 1. **Discovery.** The base scenario's workload runs once with no fault. The request proxy on
//!    every link between two services records each remote call site it forwards (link,
//!    method, route — see [`route_of`](crate::intercept::route_of)), in the order first seen;
//!    Kafka lists the consumer groups with offsets on the described topics. A base that fails
//!    without faults stops here: exploring a system that is already broken finds nothing new.
//! 2. **Experiments.** Each is the base scenario with one or two faults (see [`Kind`]): every
//!    request-level fault at every call site, each kill at each observed point, a
//!    redelivery for every consumer group named like a service. The singles come first, in an
//!    order drawn from the seed; then combinations guided by what the singles revealed: a call
//!    site that appeared only under a fault (a refund called only when a charge failed) gets
//!    every request fault of its own on top of that fault. A single that failed gets no
//!    combinations — the failure is already its own.
//! 3. **Runs.** Every experiment runs on one stack, started once and [reset](Stack::reset)
//!    before each; its fault starts a quarter into the load and heals at three quarters (or,
//!    on calls whose caller the description says keeps trying longer, past that point: see
//!    [`Timing`]). It is
//!    judged by every checker its base names (or the workload's defaults) and by liveness: the
//!    steady-state probes after the heal — the base's, or, when it has no `success_rate` probe,
//!    [`LIVENESS`] — must hold (within their `within`), so good operations complete again
//!    once the faults are gone.
//!    The base's circuit and SLO expectations are left out: they are about the base's own
//!    fault.
//! 4. **State.** `explore.json` in the output folder is rewritten after every experiment: an
//!    interrupted or bounded exploration is resumed by running it again (`fresh` starts over).
//!    `explore.html` shows the space as a grid of call sites × kinds; `junit.xml` has one test
//!    case per experiment.
//!
//! Its files import one way: `space.rs` (the fault space and its timing, no I/O) ←
//! `state.rs` (`explore.json`: discovery, experiments tried, reproducers, the schema) ←
//! `render.rs` (`explore.html`, `junit.xml`) ← `run.rs` (the loop: discovery, runs,
//! confirming and shrinking, saving). [`shrink`] is the delta debugging alone, below them all.
//!
//! Layer 6 (tools) of the harness ([layers](crate#layers)): may import any layer below it.

mod render;
mod run;
pub mod shrink;
mod space;
mod state;
#[cfg(test)]
mod tests;

pub use render::{html, junit};
pub use run::{explore_until, ExploreError, Options, RUN_PHASES};
pub use space::{
    combinations, redeliver_fault, scenario_text, singles, site_fault, Consumer, Experiment, Kind, Place,
    PlannedFault, Timing, Window, LIVENESS,
};
pub use state::{
    schema_problems, with_footprints, BaselineFigures, Discovery, Exploration, Failure, Reproducer, Space,
    Stopped, Tried, EXPLORE_VERSION, RERUNS, SCHEMA,
};
