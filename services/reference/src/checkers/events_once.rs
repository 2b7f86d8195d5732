//! `events-exactly-once`: each committed order event is published and takes effect in
//! notification exactly once.
//!
//! - Every CONFIRMED / CANCELLED order has exactly one `OrderCreated` and exactly one terminal
//!   event matching its status (`OrderConfirmed` / `OrderCancelled`, never the other) in order's
//!   outbox, and all of them are published.
//! - Every published event has exactly one notification (by event id), of the same order and
//!   type; no notification exists for an event the outbox does not hold.
//!
//! The outbox is the source of truth for what was committed; Kafka itself is not read — a
//! published event that never reached notification shows as a missing notification.

use std::collections::BTreeMap;

use super::{events_of_order, truncate, Counterexample, Observed, Verdict};
use faultline_harness::history::History;

pub const NAME: &str = "events-exactly-once";

pub fn check(history: &History, observed: &Observed) -> Verdict {
    let mut counterexamples = Vec::new();
    let mut outbox_by_order: BTreeMap<&str, Vec<&super::OutboxRow>> = BTreeMap::new();
    for row in &observed.outbox {
        outbox_by_order
            .entry(row.order_id.as_str())
            .or_default()
            .push(row);
    }
    let mut notifications_by_event: BTreeMap<&str, Vec<&super::NotificationRow>> = BTreeMap::new();
    for n in &observed.notifications {
        notifications_by_event
            .entry(n.event_id.as_str())
            .or_default()
            .push(n);
    }

    let mut finished = 0;
    for order in observed.orders.values() {
        let (terminal, other) = match order.status.as_str() {
            "CONFIRMED" => ("OrderConfirmed", "OrderCancelled"),
            "CANCELLED" => ("OrderCancelled", "OrderConfirmed"),
            _ => continue,
        };
        finished += 1;
        let rows = outbox_by_order
            .get(order.order_id.as_str())
            .cloned()
            .unwrap_or_default();
        let count = |t: &str| rows.iter().filter(|r| r.event_type == t).count();
        let mut problems = Vec::new();
        for (event_type, expected) in [("OrderCreated", 1), (terminal, 1), (other, 0)] {
            let found = count(event_type);
            if found != expected {
                problems.push(format!("{found} {event_type} events (expected {expected})"));
            }
        }
        let unpublished: Vec<String> = rows
            .iter()
            .filter(|r| !r.published)
            .map(|r| format!("{} {}", r.event_type, r.event_id))
            .collect();
        if !unpublished.is_empty() {
            problems.push(format!("unpublished: {}", unpublished.join(", ")));
        }
        if !problems.is_empty() {
            counterexamples.push(Counterexample::new(
                format!(
                    "order {} is {} but its outbox holds {}",
                    order.order_id,
                    order.status,
                    problems.join("; ")
                ),
                vec![order.order_id.clone()],
                events_of_order(history, &order.order_id),
            ));
        }
    }

    let mut published = 0;
    for row in observed.outbox.iter().filter(|r| r.published) {
        published += 1;
        let notified = notifications_by_event
            .get(row.event_id.as_str())
            .cloned()
            .unwrap_or_default();
        let problem = match notified.as_slice() {
            [] => Some("was never notified".to_string()),
            [one] if one.order_id != row.order_id || one.event_type != row.event_type => {
                Some(format!(
                    "was notified as {} of order {}",
                    one.event_type, one.order_id
                ))
            }
            [_] => None,
            many => Some(format!("was notified {} times", many.len())),
        };
        if let Some(problem) = problem {
            counterexamples.push(Counterexample::new(
                format!(
                    "published event {} ({} of order {}) {problem}",
                    row.event_id, row.event_type, row.order_id
                ),
                vec![row.order_id.clone()],
                events_of_order(history, &row.order_id),
            ));
        }
    }
    for n in &observed.notifications {
        if !observed.outbox.iter().any(|r| r.event_id == n.event_id) {
            counterexamples.push(Counterexample::new(
                format!(
                    "notification for event {} ({} of order {}) has no event in order's outbox",
                    n.event_id, n.event_type, n.order_id
                ),
                vec![n.order_id.clone()],
                events_of_order(history, &n.order_id),
            ));
        }
    }

    let summary = if counterexamples.is_empty() {
        format!("{finished} finished orders each have one created and one terminal event; all {published} published events notified exactly once")
    } else {
        format!("{} event delivery violations over {finished} finished orders and {published} published events", counterexamples.len())
    };
    Verdict::new(NAME, summary, truncate(counterexamples))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{NotificationRow, OutboxRow};
    use super::*;

    #[test]
    fn one_created_and_one_terminal_event_each_notified_once_pass() {
        let verdict = check(&History::default(), &consistent(&["a", "b"], &["c"]));
        assert!(verdict.ok, "{verdict:?}");
        assert!(
            verdict.summary.contains("all 6 published"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn a_missing_terminal_event_fails_with_the_order_and_its_events() {
        let mut history = HistoryBuilder::default();
        let (i, c) = history.placed("k", "a", 0);
        let mut observed = consistent(&["a"], &[]);
        observed.outbox.retain(|r| r.event_type != "OrderConfirmed");
        observed
            .notifications
            .retain(|n| n.event_type != "OrderConfirmed");
        let verdict = check(&history.build(), &observed);
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples.len(), 1);
        assert_eq!(verdict.counterexamples[0].subjects, ["a"]);
        assert_eq!(verdict.counterexamples[0].events, [i, c]);
        assert!(verdict.counterexamples[0]
            .description
            .contains("0 OrderConfirmed"));
    }

    #[test]
    fn an_unpublished_or_unnotified_event_fails() {
        let mut observed = consistent(&["a"], &["b"]);
        observed.outbox[1].published = false; // a's OrderConfirmed stuck in the outbox
        observed
            .notifications
            .retain(|n| n.event_id != observed.outbox[1].event_id);
        observed
            .notifications
            .retain(|n| n.event_id != observed.outbox[2].event_id); // b's created never notified
        let verdict = check(&History::default(), &observed);
        assert!(!verdict.ok);
        let descriptions: Vec<_> = verdict
            .counterexamples
            .iter()
            .map(|c| c.description.as_str())
            .collect();
        assert_eq!(verdict.counterexamples.len(), 2, "{descriptions:?}");
        assert!(
            descriptions[0].contains("unpublished") && verdict.counterexamples[0].subjects == ["a"]
        );
        assert!(
            descriptions[1].contains("never notified")
                && verdict.counterexamples[1].subjects == ["b"]
        );
    }

    #[test]
    fn a_duplicate_terminal_event_or_a_stray_notification_fails() {
        let mut observed = consistent(&["a"], &[]);
        observed.outbox.push(OutboxRow {
            id: 99,
            event_id: "ev-99".into(),
            order_id: "a".into(),
            event_type: "OrderConfirmed".into(),
            published: true,
        });
        observed.notifications.push(NotificationRow {
            event_id: "ev-99".into(),
            order_id: "a".into(),
            event_type: "OrderConfirmed".into(),
        });
        observed.notifications.push(NotificationRow {
            event_id: "ghost".into(),
            order_id: "z".into(),
            event_type: "OrderCreated".into(),
        });
        let verdict = check(&History::default(), &observed);
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples.len(), 2);
        assert!(verdict.counterexamples[0]
            .description
            .contains("2 OrderConfirmed"));
        assert_eq!(verdict.counterexamples[1].subjects, ["z"]);
        assert!(verdict.counterexamples[1]
            .description
            .contains("no event in order's outbox"));
    }
}
