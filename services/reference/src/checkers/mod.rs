//! The reference system's domain checkers: invariants of its sagas, money, stock and events
//! that the generic checkers cannot state (they join the history's orders with four services'
//! databases). Each is a [`Checker`] registered by the [extension](crate::Reference) under
//! its name, which is what scenarios list in `expectations.invariants`; all of them judge one
//! [`Observed`] the first of them reads.
//!
//! | checker | invariant | file |
//! |---|---|---|
//! | `sagas-terminate` | every accepted order ends CONFIRMED or CANCELLED | [`sagas_terminate`] |
//! | `saga-outcomes-consistent` | CONFIRMED ⇔ one net charge + committed reservation; CANCELLED ⇒ nothing held | [`saga_outcomes`] |
//! | `stock-and-money-conserved` | stock moves only by committed reservations; money only by confirmed orders | [`conservation`] |
//! | `charged-at-most-once` | no order is charged twice or more than its amount; a key is one order | [`charged_once`] |
//! | `events-exactly-once` | each terminal order's events are published once and notified once | [`events_once`] |
//! | `bulkhead-isolation` | a faulted payment does not slow orders that never call it | [`bulkhead`] |

pub mod bulkhead;
pub mod charged_once;
pub mod conservation;
pub mod events_once;
pub mod saga_outcomes;
pub mod sagas_terminate;

#[cfg(test)]
mod fixtures;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use faultline_chaos::scenario::Scenario;
use faultline_harness::checkers::{BoxFuture, CheckContext, Checker};
pub(crate) use faultline_harness::checkers::{
    ms, percentile, truncate, windows_where, Counterexample, Verdict,
};
use faultline_harness::history::{Event, EventType, History, Op};

pub use crate::observed::*;

/// A judge of the run's history and [`Observed`].
type Judge = fn(&Scenario, &History, &Observed) -> Verdict;

/// A domain invariant as a [`Checker`]: its name and its judge.
pub struct Invariant {
    name: &'static str,
    judge: Judge,
}

impl Checker for Invariant {
    fn name(&self) -> String {
        self.name.into()
    }

    fn check<'a>(&'a self, run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            match Observed::of(run).await {
                Ok(observed) => (self.judge)(run.scenario, run.history, &observed),
                Err(e) => Verdict::cannot_judge(self.name, e.to_string()),
            }
        })
    }
}

/// Every domain checker, in the order scenarios list them by default.
pub fn all() -> Vec<Arc<dyn Checker>> {
    let invariants: [(&'static str, Judge); 6] = [
        (sagas_terminate::NAME, |_, h, o| sagas_terminate::check(h, o)),
        (saga_outcomes::NAME, |_, _, o| saga_outcomes::check(o)),
        (conservation::NAME, |_, _, o| conservation::check(o)),
        (charged_once::NAME, |_, h, o| charged_once::check(h, o)),
        (events_once::NAME, |_, h, o| events_once::check(h, o)),
        (bulkhead::NAME, bulkhead::check),
    ];
    invariants
        .into_iter()
        .map(|(name, judge)| Arc::new(Invariant { name, judge }) as Arc<dyn Checker>)
        .collect()
}

/// The order id a completion reports, if any: `value.body.order_id` as a declarative workload
/// records the answer, or `value.order_id` (a workload that records the id alone).
fn order_id_of(event: &Event) -> Option<&str> {
    event
        .value
        .get("order_id")
        .or_else(|| event.value.pointer("/body/order_id"))
        .and_then(|v| v.as_str())
}

/// An order placement of the history: its idempotency key and the workload's intent
/// (`good`, `declining`, `out_of_stock`).
fn placement(op: &Op) -> Option<(&str, &str)> {
    match op {
        Op::Request {
            operation,
            key,
            kind,
            ..
        } if operation == crate::workload::PLACE_ORDER => {
            Some((key.as_str(), kind.as_deref().unwrap_or_default()))
        }
        _ => None,
    }
}

/// The order an order read of the history read.
fn read_of(op: &Op) -> Option<&str> {
    match op {
        Op::Request { operation, key, .. } if operation == crate::workload::READ_ORDER => {
            Some(key.as_str())
        }
        _ => None,
    }
}

/// Orders the history saw accepted: order id → indexes of the placement events (invocation
/// and ok completion) that returned it.
fn accepted_orders(history: &History) -> BTreeMap<String, Vec<usize>> {
    let mut accepted: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (invoke, completion) in history.pairs() {
        if completion.event_type != EventType::Ok || placement(&invoke.op).is_none() {
            continue;
        }
        if let Some(order_id) = order_id_of(completion) {
            let events = accepted.entry(order_id.to_string()).or_default();
            events.extend([invoke.index, completion.index]);
        }
    }
    accepted
}

/// History events (placements and reads) that mention an order, for counterexamples.
fn events_of_order(history: &History, order_id: &str) -> Vec<usize> {
    let mut events = BTreeSet::new();
    for (invoke, completion) in history.pairs() {
        let mentions = read_of(&invoke.op) == Some(order_id)
            || (placement(&invoke.op).is_some() && order_id_of(completion) == Some(order_id));
        if mentions {
            events.extend([invoke.index, completion.index]);
        }
    }
    events.into_iter().collect()
}
