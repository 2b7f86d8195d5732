//! Checkers: after a chaos run, judge whether the reference system kept its promises.
//!
//! A checker is a small pure function over the scenario, the run's [`History`] and the
//! services' final state ([`Observed`], read from their own databases and order's
//! `/admin/circuits`). It gives a [`Verdict`] with [`Counterexample`]s that name the orders and
//! the history events (by index) a person needs to see the failure. Checkers never inject
//! faults and never talk to the services themselves: [`Observed::collect`] reads everything
//! once, after the faults healed and the system settled, so a checker can be tested on crafted
//! data.
//!
//! ```no_run
//! # async fn run(stack: &faultline_harness::stack::Stack,
//! #              scenario: &faultline_chaos::scenario::Scenario,
//! #              history: &faultline_harness::history::History,
//! #              started_unix_ms: u64) -> Result<(), faultline_harness::checkers::CheckError> {
//! use faultline_harness::checkers::{check, Observed};
//! let mut observed = Observed::collect(stack).await?;
//! observed.run_started_unix_ms = Some(started_unix_ms); // wall clock when the history began
//! for verdict in check(scenario, history, &observed) {
//!     println!("{} {}: {}", if verdict.ok { "ok" } else { "FAIL" }, verdict.checker, verdict.summary);
//! }
//! # Ok(()) }
//! ```
//!
//! | checker | invariant | file |
//! |---|---|---|
//! | `sagas-terminate` | every accepted order ends CONFIRMED or CANCELLED | [`sagas_terminate`] |
//! | `saga-outcomes-consistent` | CONFIRMED ⇔ one net charge + committed reservation; CANCELLED ⇒ nothing held | [`saga_outcomes`] |
//! | `stock-and-money-conserved` | stock moves only by committed reservations; money only by confirmed orders | [`conservation`] |
//! | `charged-at-most-once` | no order is charged twice or more than its amount; a key is one order | [`charged_once`] |
//! | `events-exactly-once` | each terminal order's events are published once and notified once | [`events_once`] |
//! | `bulkhead-isolation` | a faulted payment does not slow orders that never call it | [`bulkhead`] |
//! | `circuit <link>` | the link's breaker opens / closes as the scenario expects | [`circuits`] |
//! | `slo` | p99 latency and error rate of order placement | [`slo`] |

pub mod bulkhead;
pub mod charged_once;
pub mod circuits;
pub mod conservation;
pub mod events_once;
mod observed;
pub mod saga_outcomes;
pub mod sagas_terminate;
pub mod slo;
pub mod sql;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use faultline_chaos::scenario::{Scenario, Target};
use serde::Serialize;

use crate::history::{Event, EventType, History, Op};

pub use observed::{
    CircuitRecord, CircuitTransitionRecord, NotificationRow, Observed, OrderRow, OutboxRow,
    PaymentRow, ReservationRow, StockRow,
};

/// Why the final state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("checkers: {0}")]
    Stack(#[from] crate::stack::StackError),

    #[error("checkers: reading {service}'s database ({what}): {source}\nhint: is the {service} database up and migrated? Observed::collect reads it directly, not through Toxiproxy")]
    Database {
        service: &'static str,
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error("checkers: GET {url}: {message}\nhint: the service must be running (and healed) when the checkers read its circuits")]
    Http { url: String, message: String },
}

/// One checker's judgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The checker's name: an invariant of `faultline_chaos::scenario::INVARIANTS`,
    /// `circuit order->payment` or `slo`.
    pub checker: String,
    pub ok: bool,
    /// One or two sentences: what was judged, on how much, and how it came out.
    pub summary: String,
    /// Why it failed (empty when `ok`).
    pub counterexamples: Vec<Counterexample>,
}

/// One concrete violation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counterexample {
    pub description: String,
    /// Order ids involved.
    pub orders: Vec<String>,
    /// Indexes of the history events involved (see [`crate::history::Event::index`]).
    pub events: Vec<usize>,
}

impl Verdict {
    fn new(checker: &str, summary: String, counterexamples: Vec<Counterexample>) -> Self {
        Self {
            checker: checker.to_string(),
            ok: counterexamples.is_empty(),
            summary,
            counterexamples,
        }
    }

    /// A verdict that fails without a counterexample: the run does not let the checker judge.
    fn cannot_judge(checker: &str, summary: String) -> Self {
        Self {
            checker: checker.to_string(),
            ok: false,
            summary,
            counterexamples: Vec::new(),
        }
    }
}

impl Counterexample {
    fn new(description: impl Into<String>, orders: Vec<String>, events: Vec<usize>) -> Self {
        Self {
            description: description.into(),
            orders,
            events,
        }
    }
}

/// Runs the checkers the scenario names (`expectations.invariants`), one verdict per expected
/// circuit behaviour, and the SLO verdict when the scenario sets one.
pub fn check(scenario: &Scenario, history: &History, observed: &Observed) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for name in &scenario.expectations.invariants {
        let verdict = match name.as_str() {
            sagas_terminate::NAME => sagas_terminate::check(history, observed),
            saga_outcomes::NAME => saga_outcomes::check(observed),
            conservation::NAME => conservation::check(observed),
            charged_once::NAME => charged_once::check(history, observed),
            events_once::NAME => events_once::check(history, observed),
            bulkhead::NAME => bulkhead::check(scenario, history, observed),
            other => Verdict::cannot_judge(
                other,
                format!(
                    "no checker is called {other:?}; known: {}",
                    faultline_chaos::scenario::INVARIANTS.join(", ")
                ),
            ),
        };
        verdicts.push(verdict);
    }
    for expectation in &scenario.expectations.circuits {
        verdicts.push(circuits::check(expectation, scenario, history, observed));
    }
    if let Some(slo) = &scenario.expectations.slo {
        verdicts.push(slo::check(slo, history));
    }
    verdicts
}

// ---- helpers shared by the checkers ------------------------------------------------------------

/// The order id a completion reports (`value.order_id`), if any.
fn order_id_of(event: &Event) -> Option<&str> {
    event.value.get("order_id").and_then(|v| v.as_str())
}

/// Orders the history saw accepted: order id → indexes of the PlaceOrder events (invocation and
/// ok completion) that returned it.
fn accepted_orders(history: &History) -> BTreeMap<String, Vec<usize>> {
    let mut accepted: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (invoke, completion) in history.pairs() {
        if completion.event_type != EventType::Ok || !matches!(invoke.op, Op::PlaceOrder { .. }) {
            continue;
        }
        if let Some(order_id) = order_id_of(completion) {
            let events = accepted.entry(order_id.to_string()).or_default();
            events.extend([invoke.index, completion.index]);
        }
    }
    accepted
}

/// History events (PlaceOrder and ReadOrder) that mention an order, for counterexamples.
fn events_of_order(history: &History, order_id: &str) -> Vec<usize> {
    let mut events = BTreeSet::new();
    for (invoke, completion) in history.pairs() {
        let mentions = match &invoke.op {
            Op::ReadOrder { order_id: id } => id == order_id,
            Op::PlaceOrder { .. } => order_id_of(completion) == Some(order_id),
            _ => false,
        };
        if mentions {
            events.extend([invoke.index, completion.index]);
        }
    }
    events.into_iter().collect()
}

/// Fault windows `(schedule index, start, end)` whose fault matches `hits`, from the history.
fn windows_where(
    scenario: &Scenario,
    history: &History,
    hits: impl Fn(&Target) -> bool,
) -> Vec<(usize, Duration, Duration)> {
    history
        .fault_windows()
        .into_iter()
        .filter(|(index, _, _)| scenario.faults.get(*index).is_some_and(|f| hits(&f.target)))
        .collect()
}

/// History events of faults (start and heal, invocations and completions) with these indexes.
fn fault_events(history: &History, indexes: &BTreeSet<usize>) -> Vec<usize> {
    history
        .events()
        .iter()
        .filter(|e| match &e.op {
            Op::StartFault { index, .. } | Op::HealFault { index, .. } => indexes.contains(index),
            _ => false,
        })
        .map(|e| e.index)
        .collect()
}

/// Nearest-rank percentile (`q` in 0..=1) of sorted-or-not samples; `None` when empty.
pub(crate) fn percentile(samples: &[Duration], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Counterexamples beyond this many are summarised, not listed: a report stays readable.
const MAX_COUNTEREXAMPLES: usize = 50;

fn truncate(mut counterexamples: Vec<Counterexample>) -> Vec<Counterexample> {
    if counterexamples.len() > MAX_COUNTEREXAMPLES {
        let more = counterexamples.len() - MAX_COUNTEREXAMPLES;
        counterexamples.truncate(MAX_COUNTEREXAMPLES);
        counterexamples.push(Counterexample::new(
            format!("… and {more} more like these"),
            vec![],
            vec![],
        ));
    }
    counterexamples
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn check_runs_the_named_invariants_circuits_and_slo() {
        let scenario = scenario(
            r#"
            invariants = ["sagas-terminate", "charged-at-most-once"]
            [[expectations.circuits]]
            link = "order->payment"
            opens = false
            [expectations.slo]
            error_rate = 0.5
            "#,
        );
        let verdicts = check(
            &scenario,
            &HistoryBuilder::default().build(),
            &Observed::default(),
        );
        let names: Vec<&str> = verdicts.iter().map(|v| v.checker.as_str()).collect();
        assert_eq!(
            names,
            [
                "sagas-terminate",
                "charged-at-most-once",
                "circuit order->payment",
                "slo"
            ]
        );
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(
            percentile(&samples[..1], 0.99),
            Some(Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 0.99), None);
    }
}
