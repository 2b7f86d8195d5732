//! `sagas-terminate`: every accepted order — one a `place_order` request answered ok with its `order_id`,
//! or one found in order's database — has ended CONFIRMED or CANCELLED once the faults healed.
//!
//! Counterexamples: each order still PENDING, with its saga's step, attempts and last error;
//! each order the history saw accepted that order's database does not hold at all (lost).

use super::{accepted_orders, events_of_order, truncate, Counterexample, Observed, Verdict};
use faultline_harness::history::History;

pub const NAME: &str = "sagas-terminate";

pub fn check(history: &History, observed: &Observed) -> Verdict {
    let accepted = accepted_orders(history);
    let mut counterexamples = Vec::new();
    for (order_id, events) in &accepted {
        if !observed.orders.contains_key(order_id) {
            counterexamples.push(Counterexample::new(
                format!("order {order_id} was accepted (place_order ok) but order's database does not hold it"),
                vec![order_id.clone()],
                events.clone(),
            ));
        }
    }
    let mut terminal = 0;
    for order in observed.orders.values() {
        if order.status == "CONFIRMED" || order.status == "CANCELLED" {
            terminal += 1;
            continue;
        }
        let step = order.saga_step.as_deref().unwrap_or("(no saga row)");
        let last_error = order
            .saga_last_error
            .as_deref()
            .map(|e| format!(", last error: {e}"))
            .unwrap_or_default();
        counterexamples.push(Counterexample::new(
            format!(
                "order {} is still {} at saga step {step} after {} failed attempts{last_error}",
                order.order_id, order.status, order.saga_attempts
            ),
            vec![order.order_id.clone()],
            events_of_order(history, &order.order_id),
        ));
    }
    let total = accepted
        .keys()
        .chain(observed.orders.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let summary = if counterexamples.is_empty() {
        format!("all {total} accepted orders ended CONFIRMED or CANCELLED")
    } else {
        format!(
            "{} of {total} accepted orders did not end CONFIRMED or CANCELLED ({terminal} did)",
            counterexamples.len()
        )
    };
    Verdict::new(NAME, summary, truncate(counterexamples))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn orders_that_all_ended_pass() {
        let mut history = HistoryBuilder::default();
        history.placed("k1", "o1", 0);
        history.placed("k2", "o2", 5);
        let observed = consistent(&["o1"], &["o2"]);
        let verdict = check(&history.build(), &observed);
        assert!(verdict.ok, "{verdict:?}");
        assert!(verdict.summary.contains("all 2"));
    }

    #[test]
    fn a_pending_order_fails_with_its_saga_step_and_events() {
        let mut history = HistoryBuilder::default();
        history.placed("k1", "o1", 0);
        let (invoke, done) = history.placed("k2", "o2", 5);
        let read = history.read("o2", 20, 25, "PENDING");
        let mut observed = consistent(&["o1"], &[]);
        let mut stuck = order("o2", "PENDING");
        stuck.saga_step = Some("REFUND".into());
        stuck.saga_attempts = 7;
        stuck.saga_last_error = Some("payment: circuit open".into());
        observed.orders.insert("o2".into(), stuck);

        let verdict = check(&history.build(), &observed);
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples.len(), 1);
        let example = &verdict.counterexamples[0];
        assert_eq!(example.subjects, ["o2"]);
        assert_eq!(example.events, [invoke, done, read.0, read.1]);
        assert!(
            example.description.contains("REFUND") && example.description.contains("circuit open"),
            "{}",
            example.description
        );
    }

    #[test]
    fn an_accepted_order_missing_from_the_database_fails_as_lost() {
        let mut history = HistoryBuilder::default();
        let (invoke, done) = history.placed("k1", "lost", 0);
        let verdict = check(&history.build(), &consistent(&[], &[]));
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples[0].subjects, ["lost"]);
        assert_eq!(verdict.counterexamples[0].events, [invoke, done]);
        assert!(verdict.counterexamples[0]
            .description
            .contains("does not hold it"));
    }
}
