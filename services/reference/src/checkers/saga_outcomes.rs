//! `saga-outcomes-consistent`: an order's final status agrees with what payment and inventory
//! hold for it.
//!
//! - CONFIRMED ⇔ exactly one charge took money, the net charge equals the order's amount, and
//!   its reservation is COMMITTED (for the order's SKU and quantity). The "⇐" half: an order
//!   that is not CONFIRMED holds no net charge and no committed reservation.
//! - CANCELLED ⇒ net charge 0 and no RESERVED or COMMITTED reservation.
//!
//! PENDING orders are left to `sagas-terminate`, except that they count in the summary.

use super::{truncate, Counterexample, Observed, Verdict};

pub const NAME: &str = "saga-outcomes-consistent";

pub fn check(observed: &Observed) -> Verdict {
    let mut counterexamples = Vec::new();
    let mut judged = 0;
    let mut pending = 0;
    for order in observed.orders.values() {
        let payment = observed.payments.get(&order.order_id);
        let (charges, net) = payment.map_or((0, 0), |p| (p.successful_charges, p.net_cents));
        let reservation = observed.reservations.get(&order.order_id);
        let held = reservation.map_or("none", |r| r.status.as_str());
        let mut problems = Vec::new();
        match order.status.as_str() {
            "CONFIRMED" => {
                judged += 1;
                if charges != 1 {
                    problems.push(format!("{charges} charges took money (expected exactly 1)"));
                }
                if net != order.amount_cents {
                    problems.push(format!(
                        "net charge {net} cents (expected the amount, {})",
                        order.amount_cents
                    ));
                }
                match reservation {
                    Some(r) if r.status == "COMMITTED" => {
                        if r.sku.as_deref() != Some(order.sku.as_str())
                            || r.quantity != order.quantity
                        {
                            problems.push(format!(
                                "committed reservation is {} × {} (the order is {} × {})",
                                r.quantity,
                                r.sku.as_deref().unwrap_or("-"),
                                order.quantity,
                                order.sku
                            ));
                        }
                    }
                    _ => problems.push(format!("reservation is {held} (expected COMMITTED)")),
                }
            }
            "CANCELLED" => {
                judged += 1;
                if net != 0 {
                    problems.push(format!(
                        "net charge {net} cents (expected 0: refunded or never taken)"
                    ));
                }
                if held == "RESERVED" || held == "COMMITTED" {
                    problems.push(format!("reservation is {held} (expected released or none)"));
                }
            }
            _ => pending += 1,
        }
        if !problems.is_empty() {
            counterexamples.push(Counterexample::new(
                format!(
                    "order {} is {}, but {}",
                    order.order_id,
                    order.status,
                    problems.join("; ")
                ),
                vec![order.order_id.clone()],
                vec![],
            ));
        }
    }
    // The "⇐" half for money taken or stock committed for orders order does not know at all.
    for payment in observed.payments.values() {
        if payment.net_cents != 0 && !observed.orders.contains_key(&payment.order_id) {
            counterexamples.push(Counterexample::new(
                format!("payment holds a net charge of {} cents for order {}, which order's database does not hold", payment.net_cents, payment.order_id),
                vec![payment.order_id.clone()],
                vec![],
            ));
        }
    }
    for reservation in observed.reservations.values() {
        if reservation.status == "COMMITTED" && !observed.orders.contains_key(&reservation.order_id)
        {
            counterexamples.push(Counterexample::new(
                format!("inventory committed a reservation for order {}, which order's database does not hold", reservation.order_id),
                vec![reservation.order_id.clone()],
                vec![],
            ));
        }
    }
    let pending_note = if pending > 0 {
        format!(" ({pending} PENDING orders left to sagas-terminate)")
    } else {
        String::new()
    };
    let summary = if counterexamples.is_empty() {
        format!("payment and inventory agree with all {judged} CONFIRMED/CANCELLED orders{pending_note}")
    } else {
        format!("{} inconsistencies between order status, charges and reservations over {judged} finished orders{pending_note}", counterexamples.len())
    };
    Verdict::new(NAME, summary, truncate(counterexamples))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn confirmed_charged_committed_and_cancelled_refunded_released_pass() {
        let mut observed = consistent(&["a", "b"], &["c"]);
        // A cancelled order that never reached payment or inventory is fine too.
        observed.orders.insert("d".into(), order("d", "CANCELLED"));
        let verdict = check(&observed);
        assert!(verdict.ok, "{verdict:?}");
    }

    #[test]
    fn a_confirmed_order_without_a_committed_reservation_fails() {
        let mut observed = consistent(&["a", "b"], &[]);
        observed
            .reservations
            .insert("b".into(), reservation("b", "RELEASED"));
        let verdict = check(&observed);
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples.len(), 1);
        assert_eq!(verdict.counterexamples[0].subjects, ["b"]);
        assert!(verdict.counterexamples[0].description.contains("RELEASED"));
    }

    #[test]
    fn a_confirmed_order_refunded_fails() {
        let mut observed = consistent(&["a"], &[]);
        observed
            .payments
            .insert("a".into(), payment("a", 1, 1000, 1000));
        let verdict = check(&observed);
        assert!(!verdict.ok);
        assert!(
            verdict.counterexamples[0]
                .description
                .contains("net charge 0"),
            "{:?}",
            verdict.counterexamples
        );
    }

    #[test]
    fn a_cancelled_order_still_charged_or_holding_stock_fails() {
        let mut observed = consistent(&[], &["c", "d"]);
        observed
            .payments
            .insert("c".into(), payment("c", 1, 1000, 0));
        observed
            .reservations
            .insert("d".into(), reservation("d", "RESERVED"));
        let verdict = check(&observed);
        assert!(!verdict.ok);
        let orders: Vec<_> = verdict
            .counterexamples
            .iter()
            .flat_map(|c| c.subjects.clone())
            .collect();
        assert_eq!(orders, ["c", "d"]);
    }

    #[test]
    fn money_taken_for_an_unknown_order_fails() {
        let mut observed = consistent(&["a"], &[]);
        observed
            .payments
            .insert("ghost".into(), payment("ghost", 1, 500, 0));
        let verdict = check(&observed);
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples[0].subjects, ["ghost"]);
    }
}
