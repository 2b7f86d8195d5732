//! `stock-and-money-conserved`: nothing is created or lost.
//!
//! Stock, per SKU: `initial on_hand − final on_hand` = units of COMMITTED reservations (stock
//! leaves only by commit); `reserved` = units of RESERVED reservations; neither is negative and
//! `reserved ≤ on_hand`. The first rule needs the SKU's initial stock
//! ([`Observed::initial_stock`], filled by the runner); SKUs without it are judged on the other
//! rules only, and the summary names them.
//!
//! Money: Σ net charges over every order payment knows = Σ amounts of CONFIRMED orders. When it
//! does not hold, the counterexample names the orders whose net charge differs from what their
//! status calls for.

use std::collections::{BTreeMap, BTreeSet};

use super::{truncate, Counterexample, Observed, Verdict};

pub const NAME: &str = "stock-and-money-conserved";

pub fn check(observed: &Observed) -> Verdict {
    let mut counterexamples = Vec::new();

    // Stock.
    let mut committed: BTreeMap<&str, (i64, Vec<String>)> = BTreeMap::new();
    let mut reserved: BTreeMap<&str, (i64, Vec<String>)> = BTreeMap::new();
    for r in observed.reservations.values() {
        let Some(sku) = r.sku.as_deref() else {
            continue;
        };
        let bucket = match r.status.as_str() {
            "COMMITTED" => &mut committed,
            "RESERVED" => &mut reserved,
            _ => continue,
        };
        let entry = bucket.entry(sku).or_default();
        entry.0 += r.quantity;
        entry.1.push(r.order_id.clone());
    }
    let skus: BTreeSet<&str> = observed
        .stock
        .keys()
        .chain(observed.initial_stock.keys())
        .map(String::as_str)
        .chain(committed.keys().copied())
        .chain(reserved.keys().copied())
        .collect();
    let mut without_initial = Vec::new();
    for sku in &skus {
        let (committed_units, committed_orders) = committed.get(sku).cloned().unwrap_or_default();
        let (reserved_units, reserved_orders) = reserved.get(sku).cloned().unwrap_or_default();
        let Some(stock) = observed.stock.get(*sku) else {
            if committed_units + reserved_units > 0 {
                counterexamples.push(Counterexample::new(
                    format!("SKU {sku}: reservations hold {reserved_units} reserved and {committed_units} committed units, but inventory has no stock row for it"),
                    [committed_orders, reserved_orders].concat(),
                    vec![],
                ));
            }
            continue;
        };
        if stock.on_hand < 0 || stock.reserved < 0 || stock.reserved > stock.on_hand {
            counterexamples.push(Counterexample::new(
                format!(
                    "SKU {sku}: on_hand {} and reserved {} (expected 0 ≤ reserved ≤ on_hand)",
                    stock.on_hand, stock.reserved
                ),
                vec![],
                vec![],
            ));
        }
        if stock.reserved != reserved_units {
            counterexamples.push(Counterexample::new(
                format!("SKU {sku}: reserved is {} but RESERVED reservations hold {reserved_units} units", stock.reserved),
                reserved_orders,
                vec![],
            ));
        }
        match observed.initial_stock.get(*sku) {
            Some(initial) => {
                if initial - stock.on_hand != committed_units {
                    counterexamples.push(Counterexample::new(
                        format!(
                            "SKU {sku}: on_hand went from {initial} to {} ({} units left) but COMMITTED reservations hold {committed_units}",
                            stock.on_hand,
                            initial - stock.on_hand
                        ),
                        committed_orders,
                        vec![],
                    ));
                }
            }
            None => without_initial.push(sku.to_string()),
        }
    }

    // Money.
    let total_net: i64 = observed.payments.values().map(|p| p.net_cents).sum();
    let total_confirmed: i64 = observed
        .orders
        .values()
        .filter(|o| o.status == "CONFIRMED")
        .map(|o| o.amount_cents)
        .sum();
    if total_net != total_confirmed {
        let mut off = Vec::new();
        let ids: BTreeSet<&String> = observed
            .orders
            .keys()
            .chain(observed.payments.keys())
            .collect();
        for id in ids {
            let net = observed.payments.get(id).map_or(0, |p| p.net_cents);
            let expected = observed
                .orders
                .get(id)
                .filter(|o| o.status == "CONFIRMED")
                .map_or(0, |o| o.amount_cents);
            if net != expected {
                off.push(id.clone());
            }
        }
        counterexamples.push(Counterexample::new(
            format!(
                "payment holds {total_net} cents net but CONFIRMED orders amount to {total_confirmed} cents; orders whose net charge is not their confirmed amount: {}",
                off.len()
            ),
            off,
            vec![],
        ));
    }

    let skipped = if without_initial.is_empty() {
        String::new()
    } else {
        format!(
            "; stock conservation not judged for SKUs without initial stock: {}",
            without_initial.join(", ")
        )
    };
    let summary = if counterexamples.is_empty() {
        format!(
            "stock of {} SKUs and {total_net} cents net agree with committed reservations and confirmed orders{skipped}",
            skus.len()
        )
    } else {
        format!(
            "{} conservation violations over {} SKUs and {} payment records{skipped}",
            counterexamples.len(),
            skus.len(),
            observed.payments.len()
        )
    };
    Verdict::new(NAME, summary, truncate(counterexamples))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::StockRow;
    use super::*;

    #[test]
    fn committed_units_and_confirmed_amounts_balance() {
        let observed = consistent(&["a", "b"], &["c"]);
        let verdict = check(&observed);
        assert!(verdict.ok, "{verdict:?}");
    }

    #[test]
    fn stock_that_left_without_a_committed_reservation_fails() {
        let mut observed = consistent(&["a", "b"], &[]);
        observed.stock.get_mut("sku-1").unwrap().on_hand = 97; // 3 left, 2 committed
        let verdict = check(&observed);
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples.len(), 1);
        assert!(verdict.counterexamples[0]
            .description
            .contains("from 100 to 97"));
        assert_eq!(verdict.counterexamples[0].subjects, ["a", "b"]);
    }

    #[test]
    fn reserved_units_must_match_held_reservations() {
        let mut observed = consistent(&["a"], &[]);
        observed
            .reservations
            .insert("p".into(), reservation("p", "RESERVED"));
        let verdict = check(&observed);
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples[0].subjects, ["p"]);
        assert!(verdict.counterexamples[0]
            .description
            .contains("reserved is 0"));
    }

    #[test]
    fn money_not_matching_confirmed_orders_names_the_orders() {
        let mut observed = consistent(&["a", "b"], &["c"]);
        observed.payments.get_mut("c").unwrap().net_cents = 1000; // refund lost
        let verdict = check(&observed);
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples[0].subjects, ["c"]);
        assert!(verdict.counterexamples[0]
            .description
            .contains("3000 cents net"));
    }

    #[test]
    fn skus_without_initial_stock_are_named_and_not_judged_on_on_hand() {
        let mut observed = consistent(&["a"], &[]);
        observed.stock.insert(
            "sku-2".into(),
            StockRow {
                sku: "sku-2".into(),
                on_hand: 5,
                reserved: 0,
            },
        );
        let verdict = check(&observed);
        assert!(verdict.ok, "{verdict:?}");
        assert!(
            verdict
                .summary
                .contains("not judged for SKUs without initial stock: sku-2"),
            "{}",
            verdict.summary
        );
    }
}
