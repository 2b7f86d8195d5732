//! `charged-at-most-once`: duplicates and retries never charge twice.
//!
//! - No order has more than one charge that took money, and no order's net charge exceeds its
//!   amount (or is above 0 for an order that order's database does not hold).
//! - Every idempotency key the history placed more than once (duplicates, client retries) that
//!   was answered ok names one order id: two order ids for one key are two orders, one of them
//!   charged for a request the client meant once.

use std::collections::{BTreeMap, BTreeSet};

use super::{events_of_order, order_id_of, truncate, Counterexample, Observed, Verdict};
use faultline_harness::history::{EventType, History};

pub const NAME: &str = "charged-at-most-once";

pub fn check(history: &History, observed: &Observed) -> Verdict {
    let mut counterexamples = Vec::new();
    for payment in observed.payments.values() {
        let amount = observed
            .orders
            .get(&payment.order_id)
            .map(|o| o.amount_cents);
        let mut problems = Vec::new();
        if payment.successful_charges > 1 {
            problems.push(format!("{} charges took money", payment.successful_charges));
        }
        match amount {
            Some(amount) if payment.net_cents > amount => problems.push(format!(
                "net charge {} cents exceeds the amount {amount}",
                payment.net_cents
            )),
            None if payment.net_cents > 0 => problems.push(format!(
                "net charge {} cents for an order order's database does not hold",
                payment.net_cents
            )),
            _ => {}
        }
        if !problems.is_empty() {
            counterexamples.push(Counterexample::new(
                format!("order {}: {}", payment.order_id, problems.join("; ")),
                vec![payment.order_id.clone()],
                events_of_order(history, &payment.order_id),
            ));
        }
    }

    let mut by_key: BTreeMap<&str, (BTreeSet<String>, Vec<usize>, usize)> = BTreeMap::new();
    for (invoke, completion) in history.pairs() {
        let Some((key, _)) = super::placement(&invoke.op) else {
            continue;
        };
        let entry = by_key.entry(key).or_default();
        entry.2 += 1;
        if completion.event_type == EventType::Ok {
            if let Some(order_id) = order_id_of(completion) {
                entry.0.insert(order_id.to_string());
                entry.1.extend([invoke.index, completion.index]);
            }
        }
    }
    let repeated = by_key.values().filter(|(_, _, placed)| *placed > 1).count();
    for (key, (order_ids, events, _)) in &by_key {
        if order_ids.len() > 1 {
            counterexamples.push(Counterexample::new(
                format!(
                    "idempotency key {key} was answered with {} different order ids",
                    order_ids.len()
                ),
                order_ids.iter().cloned().collect(),
                events.clone(),
            ));
        }
    }

    let summary = if counterexamples.is_empty() {
        format!(
            "{} orders with payments, none charged twice or above its amount; {repeated} keys placed more than once each map to one order",
            observed.payments.len()
        )
    } else {
        format!("{} double charges or split idempotency keys ({repeated} keys were placed more than once)", counterexamples.len())
    };
    Verdict::new(NAME, summary, truncate(counterexamples))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn duplicates_answered_with_the_same_order_and_one_charge_pass() {
        let mut history = HistoryBuilder::default();
        history.placed("k1", "a", 0);
        history.placed("k1", "a", 5);
        history.place("k1", "good", 6, 2000, EventType::Info, None);
        let verdict = check(&history.build(), &consistent(&["a"], &[]));
        assert!(verdict.ok, "{verdict:?}");
        assert!(
            verdict.summary.contains("1 keys placed more than once"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn two_charges_for_one_order_fail_with_its_events() {
        let mut history = HistoryBuilder::default();
        let (i, c) = history.placed("k1", "a", 0);
        let mut observed = consistent(&["a"], &[]);
        observed
            .payments
            .insert("a".into(), payment("a", 2, 2000, 0));
        let verdict = check(&history.build(), &observed);
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples.len(), 1);
        assert_eq!(verdict.counterexamples[0].subjects, ["a"]);
        assert_eq!(verdict.counterexamples[0].events, [i, c]);
        assert!(verdict.counterexamples[0].description.contains("2 charges"));
    }

    #[test]
    fn one_key_answered_with_two_order_ids_fails() {
        let mut history = HistoryBuilder::default();
        let first = history.placed("k1", "a", 0);
        let second = history.placed("k1", "b", 5);
        let verdict = check(&history.build(), &consistent(&["a", "b"], &[]));
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples[0].subjects, ["a", "b"]);
        assert_eq!(
            verdict.counterexamples[0].events,
            [first.0, first.1, second.0, second.1]
        );
    }
}
