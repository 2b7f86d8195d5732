//! A synthetic run of a scenario: its seeded plan and fault schedule played against an
//! idealised system, without a stack. What a report looks like for any scenario in a
//! millisecond, for the report's own tests and for checking every shipped scenario's report
//! against the schema.
//!
//! The history follows the plan exactly: each order is invoked at its planned time (after a
//! 2 s steady state), answered in 20–60 ms, slower (and every fifth one failing with a 503)
//! while a fault is in effect. Good orders end CONFIRMED, declining ones CANCELLED
//! `payment declined`, out-of-stock ones CANCELLED `out of stock`. Each expected circuit opens
//! shortly after the first fault and closes after the heal. Every expectation holds; a test
//! that needs a failure edits the verdicts.
//!
//! ```
//! use faultline_harness::report::Report;
//! use faultline_reference::synthetic::SyntheticRun;
//! # let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
//! # let path = format!("{root}/chaos/scenarios/saga-compensation-payment-down.toml");
//! let system = faultline_reference::system();
//! let scenario =
//!     faultline_chaos::scenario::Scenario::load(path.as_ref(), faultline_reference::registry().vocabulary(&system)).unwrap();
//! let run = SyntheticRun::of(&scenario, scenario.seed, system.topology());
//! let report = Report::build(&run.facts(&scenario));
//! assert!(report.run.passed);
//! ```

use std::time::Duration;

use faultline_chaos::scenario::{Probe, Scenario};
use serde_json::{json, Value};

use faultline_harness::checkers::{CircuitRecord, CircuitTransitionRecord, Verdict};
use faultline_harness::history::{Event, EventType, History, Op, Process};
use faultline_harness::nemesis::Nemesis;
use faultline_harness::report::{FinalState, RunFacts, StackFacts, Versions};

use crate::observed::{Observed, OrderRow};
use crate::workload;

/// The wall clock a synthetic run starts at (2023-11-14 22:13:20 UTC).
pub const STARTED_UNIX_MS: u64 = 1_700_000_000_000;

/// When the load phase starts on the history's clock.
const LOAD_START: Duration = Duration::from_secs(2);

/// A finished synthetic run: everything [`RunFacts`] needs.
pub struct SyntheticRun {
    pub seed: u64,
    pub history: History,
    /// The orders' final state.
    pub observed: Observed,
    /// The system's final state as the report shows it: the orders' outcomes, and each
    /// expected circuit opening after the first fault and closing after the heal.
    pub final_state: FinalState,
    pub verdicts: Vec<Verdict>,
    pub unhealed: Vec<String>,
    /// The system the run is on.
    pub stack: StackFacts,
}

struct Draft {
    time: Duration,
    process: Process,
    event_type: EventType,
    op: Op,
    value: Value,
    /// Position when drafted (before sorting by time).
    id: usize,
    /// The invocation's `id`, for completions.
    invoke: Option<usize>,
}

impl SyntheticRun {
    /// Plays `scenario`'s plan for `seed` on a system of `topology`.
    pub fn of(
        scenario: &Scenario,
        seed: u64,
        topology: &faultline_chaos::topology::Topology,
    ) -> Self {
        let plan = faultline_harness::workload::http::plan_of(scenario, seed).unwrap_or_default();
        let faults: Vec<(usize, Duration, Duration)> = scenario
            .faults
            .iter()
            .enumerate()
            .map(|(i, f)| (i, LOAD_START + f.start, LOAD_START + f.start + f.duration))
            .collect();
        let faulted = |t: Duration| faults.iter().any(|(_, s, e)| *s <= t && t < *e);
        let mut drafts: Vec<Draft> = Vec::new();
        let pair = |drafts: &mut Vec<Draft>,
                    at: Duration,
                    took: Duration,
                    process: Process,
                    op: Op,
                    outcome: EventType,
                    value: Value| {
            let invoke = drafts.len();
            drafts.push(Draft {
                time: at,
                process,
                event_type: EventType::Invoke,
                op: op.clone(),
                value: Value::Null,
                id: invoke,
                invoke: None,
            });
            drafts.push(Draft {
                id: invoke + 1,
                time: at + took,
                process,
                event_type: outcome,
                op,
                value,
                invoke: Some(invoke),
            });
        };
        let nemesis = Nemesis::new(scenario.faults.clone());
        for step in nemesis.timeline() {
            let op = nemesis.op(step.fault, step.action);
            pair(
                &mut drafts,
                LOAD_START + step.at,
                Duration::from_millis(3),
                Process::Nemesis,
                op,
                EventType::Ok,
                Value::Null,
            );
        }
        let mut observed = Observed::default();
        let concurrency = scenario.workload.concurrency.max(1);
        for order in &plan {
            let at = LOAD_START + order.send_at;
            let mut took = Duration::from_millis(20 + u64::from(order.number * 7 % 41));
            let order_id = format!("00000000-0000-4000-8000-{:012}", order.number);
            let failing = faulted(at) && order.number % 5 == 0;
            if faulted(at) {
                took += Duration::from_millis(250 + u64::from(order.number * 13 % 300));
            }
            let (outcome, value) = if failing {
                (
                    EventType::Fail,
                    json!({"status": 503, "error": "unavailable", "message": "payment is unavailable"}),
                )
            } else {
                (
                    EventType::Ok,
                    json!({"status": 201, "body": {"order_id": order_id, "status": "PENDING"}, "latency_ms": took.as_millis() as u64}),
                )
            };
            pair(
                &mut drafts,
                at,
                took,
                Process::Client(order.number % concurrency),
                Op::Request {
                    operation: order.operation.clone(),
                    method: order.method.clone(),
                    path: order.path.clone(),
                    key: order.key.clone(),
                    kind: order.kind.clone(),
                },
                outcome,
                value,
            );
            if !failing && order.operation == workload::PLACE_ORDER {
                let (status, reason) = match order.kind.as_deref() {
                    Some("declining") => ("CANCELLED", Some("payment declined")),
                    Some("out_of_stock") => ("CANCELLED", Some("out of stock")),
                    _ => ("CONFIRMED", None),
                };
                let body = order.body.clone().unwrap_or_default();
                observed.orders.insert(
                    order_id.clone(),
                    OrderRow {
                        order_id,
                        status: status.into(),
                        reason: reason.map(str::to_string),
                        sku: body["sku"].as_str().unwrap_or_default().into(),
                        quantity: body["quantity"].as_i64().unwrap_or(1),
                        amount_cents: body["amount_cents"].as_i64().unwrap_or(100),
                        saga_duration_ms: Some(40 + u64::from(order.number * 11 % 90)),
                        ..OrderRow::default()
                    },
                );
            }
        }
        drafts.sort_by_key(|d| d.time);
        let history = number(drafts);

        let first_fault = faults.iter().map(|f| f.1).min().unwrap_or(LOAD_START);
        let healed = faults.iter().map(|f| f.2).max().unwrap_or(LOAD_START);
        let at = |t: Duration| STARTED_UNIX_MS + t.as_millis() as u64;
        let circuits = scenario
            .expectations
            .circuits
            .iter()
            .map(|c| {
                let (service, dependency) = c.link.split_once("->").unwrap_or(("order", &c.link));
                let opened = first_fault + Duration::from_millis(800);
                let transitions = if c.opens {
                    vec![
                        transition("CLOSED", "OPEN", at(opened)),
                        transition("OPEN", "HALF_OPEN", at(opened + Duration::from_secs(2))),
                        transition(
                            "HALF_OPEN",
                            "OPEN",
                            at(opened + Duration::from_millis(2100)),
                        ),
                        transition("OPEN", "HALF_OPEN", at(healed + Duration::from_millis(500))),
                        transition(
                            "HALF_OPEN",
                            "CLOSED",
                            at(healed + Duration::from_millis(900)),
                        ),
                    ]
                } else {
                    Vec::new()
                };
                CircuitRecord {
                    service: service.into(),
                    dependency: dependency.into(),
                    state: "CLOSED".into(),
                    rejected_calls_total: Some(0),
                    wait_in_open_ms: 2000,
                    transitions,
                }
            })
            .collect();

        Self {
            seed,
            verdicts: passing_verdicts(scenario),
            history,
            final_state: FinalState {
                circuits,
                workload: workload::state_of(&observed),
            },
            observed,
            unhealed: Vec::new(),
            stack: StackFacts::of(topology),
        }
    }

    /// The facts a report is built from; the run's id is `<scenario>-synthetic`.
    pub fn facts<'a>(&'a self, scenario: &'a Scenario) -> RunFacts<'a> {
        RunFacts {
            scenario,
            id: format!("{}-synthetic", scenario.name),
            seed: self.seed,
            started_unix_ms: STARTED_UNIX_MS,
            duration_ms: self
                .history
                .events()
                .last()
                .map_or(0, |e| e.time.as_millis() as u64)
                + 1500,
            history: &self.history,
            verdicts: &self.verdicts,
            final_state: Some(&self.final_state),
            unhealed: &self.unhealed,
            versions: Versions {
                faultline: env!("CARGO_PKG_VERSION").into(),
                images: [
                    ("kafka", "faultline/kafka:synthetic"),
                    ("postgres", "faultline/postgres:synthetic"),
                    ("toxiproxy", "faultline/toxiproxy:synthetic"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            },
            stack: self.stack.clone(),
        }
    }
}

fn transition(from: &str, to: &str, at_unix_ms: u64) -> CircuitTransitionRecord {
    CircuitTransitionRecord {
        from: from.into(),
        to: to.into(),
        at_unix_ms,
    }
}

/// Gives the drafts (sorted by time) their history indexes, completions pointing at their
/// invocations.
fn number(drafts: Vec<Draft>) -> History {
    let mut position = vec![0; drafts.len()];
    for (index, draft) in drafts.iter().enumerate() {
        position[draft.id] = index;
    }
    History::from_events(
        drafts
            .into_iter()
            .enumerate()
            .map(|(index, d)| Event {
                index,
                time: d.time,
                process: d.process,
                event_type: d.event_type,
                op: d.op,
                value: d.value,
                invoke_index: d.invoke.map(|id| position[id]),
            })
            .collect(),
    )
}

/// One passing verdict per expectation the runner would judge: the steady-state probes before
/// and after, the invariants, the circuits and the SLO.
fn passing_verdicts(scenario: &Scenario) -> Vec<Verdict> {
    let probes: Vec<String> = if scenario.steady_state.is_empty() {
        vec!["ready".into()]
    } else {
        scenario
            .steady_state
            .iter()
            .map(|p: &Probe| p.name.clone())
            .collect()
    };
    let mut verdicts = Vec::new();
    for phase in ["before", "after"] {
        for probe in &probes {
            verdicts.push(passed(
                &format!("steady-state {phase}: {probe}"),
                "synthetic: the probe held",
            ));
        }
    }
    for invariant in &scenario.expectations.invariants {
        verdicts.push(passed(invariant, "synthetic: held on every order"));
    }
    for circuit in &scenario.expectations.circuits {
        verdicts.push(passed(
            &format!("circuit {}", circuit.link),
            "synthetic: opened and closed within its bounds",
        ));
    }
    if scenario.expectations.slo.is_some() {
        verdicts.push(passed("slo", "synthetic: within the objectives"));
    }
    verdicts
}

fn passed(checker: &str, summary: &str) -> Verdict {
    Verdict {
        checker: checker.into(),
        ok: true,
        summary: summary.into(),
        counterexamples: Vec::new(),
    }
}
