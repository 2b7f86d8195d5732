//! `bulkhead-isolation`: a saturated dependency does not slow calls that do not use it.
//!
//! What can be judged from outside: out-of-stock orders (workload kind `out_of_stock`) stop at
//! inventory — their saga reserves, is refused and releases — and never call payment. So while
//! payment is faulted (a fault window on the link `order->payment`, the `payment` process, or
//! payment's own links to Postgres or Kafka), they must not be slowed. Two measures, each judged
//! the same way — the p99 of the orders placed during such a window must be at most
//! `max(2 s, 3 × the p99 of those placed outside every such window)` (2 s alone when none were
//! placed outside):
//!
//! - **saga**: creation to final status in order's database ([`OrderRow::saga_duration_ms`]) —
//!   the part that runs through order's resilient client, where a full payment bulkhead would
//!   show;
//! - **placement**: `place_order` invocation to completion in the history (`POST /orders` answers
//!   202 before the saga runs, so this covers gateway and order's front door only).
//!
//! The approximation, said in every summary: the property is judged on out-of-stock orders only,
//! not on order's bulkhead metrics, and an out-of-stock saga still PENDING is left to
//! `sagas-terminate`. Without out-of-stock orders placed during a payment fault it cannot judge,
//! and fails saying so (give the scenario `[workload.weights]` with `out_of_stock`).
//!
//! [`OrderRow::saga_duration_ms`]: super::OrderRow::saga_duration_ms

use std::collections::BTreeMap;
use std::time::Duration;

use faultline_chaos::scenario::{Scenario, Target};

use super::{ms, order_id_of, percentile, windows_where, Counterexample, Observed, Verdict};
use faultline_harness::history::{EventType, History};

pub const NAME: &str = "bulkhead-isolation";

/// The floor of the bound: below this, no latency counts as "slowed".
pub const MIN_BOUND: Duration = Duration::from_secs(2);
/// How many times the calm p99 a faulted p99 may be.
pub const FACTOR: u32 = 3;

struct Sample {
    latency: Duration,
    order_id: Option<String>,
    events: Vec<usize>,
    during_fault: bool,
}

pub fn check(scenario: &Scenario, history: &History, observed: &Observed) -> Verdict {
    let windows = windows_where(scenario, history, |target| match target {
        Target::Link { client, server } => server == "payment" || client == "payment",
        Target::Process { service } => service == "payment",
        Target::Container { .. } => false,
    });
    let in_window = |at: Duration| {
        windows
            .iter()
            .any(|(_, start, stop)| at >= *start && at <= *stop)
    };

    let mut placements = Vec::new();
    // Order id → (first invocation time, its events), for the saga measure.
    let mut orders: BTreeMap<String, (Duration, Vec<usize>)> = BTreeMap::new();
    for (invoke, completion) in history.pairs() {
        let Some((_, kind)) = super::placement(&invoke.op) else {
            continue;
        };
        if kind != "out_of_stock" {
            continue;
        }
        let order_id = order_id_of(completion).map(str::to_string);
        let events = vec![invoke.index, completion.index];
        if let (Some(id), EventType::Ok) = (&order_id, completion.event_type) {
            let entry = orders
                .entry(id.clone())
                .or_insert((invoke.time, Vec::new()));
            entry.0 = entry.0.min(invoke.time);
            entry.1.extend(&events);
        }
        placements.push(Sample {
            latency: completion.time.saturating_sub(invoke.time),
            order_id,
            events,
            during_fault: in_window(invoke.time),
        });
    }
    let mut sagas = Vec::new();
    let mut unfinished = 0;
    for (order_id, (placed_at, events)) in orders {
        match observed
            .orders
            .get(&order_id)
            .and_then(|o| o.saga_duration_ms)
        {
            Some(saga_ms) => sagas.push(Sample {
                latency: Duration::from_millis(saga_ms),
                order_id: Some(order_id),
                events,
                during_fault: in_window(placed_at),
            }),
            None => unfinished += 1,
        }
    }

    let approximation = "judged on out-of-stock orders, which never call payment";
    let faulted_sagas = sagas.iter().filter(|s| s.during_fault).count();
    let faulted_placements = placements.iter().filter(|s| s.during_fault).count();
    if windows.is_empty() || faulted_sagas + faulted_placements == 0 {
        return Verdict::cannot_judge(
            NAME,
            format!(
                "cannot judge: no out-of-stock orders placed during a fault on payment ({} payment fault windows in the history, {} out-of-stock placements in all); \
                 give the scenario [workload.weights] with out_of_stock orders and a fault on order->payment",
                windows.len(),
                placements.len()
            ),
        );
    }
    let mut counterexamples = Vec::new();
    let saga = judge("saga", &sagas, &mut counterexamples);
    let placement = judge("placement", &placements, &mut counterexamples);
    let unfinished = if unfinished > 0 {
        format!(
            "; {unfinished} out-of-stock orders without a final status (left to sagas-terminate)"
        )
    } else {
        String::new()
    };
    Verdict::new(
        NAME,
        format!("{saga}; {placement}; {approximation}{unfinished}"),
        counterexamples,
    )
}

/// Judges one measure; returns its part of the summary.
fn judge(measure: &str, samples: &[Sample], counterexamples: &mut Vec<Counterexample>) -> String {
    let during: Vec<&Sample> = samples.iter().filter(|s| s.during_fault).collect();
    let outside: Vec<Duration> = samples
        .iter()
        .filter(|s| !s.during_fault)
        .map(|s| s.latency)
        .collect();
    let Some(faulted_p99) = percentile(&during.iter().map(|s| s.latency).collect::<Vec<_>>(), 0.99)
    else {
        return format!("{measure}: no samples during payment faults");
    };
    let calm_p99 = percentile(&outside, 0.99);
    let bound = calm_p99.map_or(MIN_BOUND, |p| MIN_BOUND.max(p * FACTOR));
    if faulted_p99 > bound {
        let mut slow: Vec<&&Sample> = during.iter().filter(|s| s.latency > bound).collect();
        slow.sort_by_key(|s| std::cmp::Reverse(s.latency));
        for sample in slow.into_iter().take(10) {
            counterexamples.push(Counterexample::new(
                format!(
                    "{measure} of out-of-stock order {} placed during a payment fault took {} (bound {})",
                    sample.order_id.as_deref().unwrap_or("(no order id)"),
                    ms(sample.latency),
                    ms(bound)
                ),
                sample.order_id.iter().cloned().collect(),
                sample.events.clone(),
            ));
        }
    }
    let calm = calm_p99.map_or("no calm samples".to_string(), |p| {
        format!("calm p99 {} over {}", ms(p), outside.len())
    });
    format!(
        "{measure} p99 during payment faults {} over {} (bound {}; {calm})",
        ms(faulted_p99),
        during.len(),
        ms(bound)
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    /// An out-of-stock order every second over 30 s, each placement taking 20 ms; payment
    /// faulted from 5 s to 15 s; sagas take `faulted_saga_ms` during the fault, 100 ms outside.
    fn run(faulted_saga_ms: u64) -> (History, Observed, (usize, usize)) {
        let mut history = HistoryBuilder::default();
        history.fault(0, "order->payment", 5_000, Some(15_000));
        let mut observed = Observed::default();
        let mut tenth = (0, 0);
        for second in 0..30u64 {
            let at = second * 1000;
            let id = format!("o{second}");
            let events = history.place(
                &format!("k{second}"),
                "out_of_stock",
                at,
                at + 20,
                EventType::Ok,
                Some(&id),
            );
            if second == 10 {
                tenth = events;
            }
            let mut row = order(&id, "CANCELLED");
            row.saga_duration_ms = Some(if (5..=15).contains(&second) {
                faulted_saga_ms
            } else {
                100
            });
            observed.orders.insert(id, row);
            // Good orders are slow during the fault: they are not judged.
            history.place(
                &format!("g{second}"),
                "good",
                at,
                at + 5_000,
                EventType::Info,
                None,
            );
        }
        (history.build(), observed, tenth)
    }

    #[test]
    fn inventory_only_sagas_staying_fast_during_payment_faults_pass() {
        let (history, observed, _) = run(300);
        let verdict = check(&scenario(""), &history, &observed);
        assert!(verdict.ok, "{verdict:?}");
        assert!(
            verdict
                .summary
                .contains("saga p99 during payment faults 300ms over 11"),
            "{}",
            verdict.summary
        );
        assert!(verdict.summary.contains("never call payment"));
    }

    #[test]
    fn inventory_only_sagas_slowed_by_payment_faults_fail_with_their_events() {
        let (history, observed, (invoke, done)) = run(4_000);
        let verdict = check(&scenario(""), &history, &observed);
        assert!(!verdict.ok);
        let example = verdict
            .counterexamples
            .iter()
            .find(|e| e.subjects == ["o10"])
            .expect("o10 is slow");
        assert_eq!(example.events, [invoke, done]);
        assert!(
            example
                .description
                .contains("saga of out-of-stock order o10")
                && example.description.contains("4000ms"),
            "{}",
            example.description
        );
    }

    #[test]
    fn slow_placements_during_payment_faults_fail_too() {
        let mut history = HistoryBuilder::default();
        history.fault(0, "order->payment", 5_000, Some(15_000));
        let calm = history.place("k1", "out_of_stock", 1_000, 1_050, EventType::Ok, Some("a"));
        let slow = history.place("k2", "out_of_stock", 6_000, 9_000, EventType::Info, None);
        let verdict = check(&scenario(""), &history.build(), &Observed::default());
        assert!(!verdict.ok, "{verdict:?}");
        assert_eq!(verdict.counterexamples.len(), 1);
        assert_eq!(verdict.counterexamples[0].events, [slow.0, slow.1]);
        assert!(verdict.counterexamples[0]
            .description
            .starts_with("placement"));
        assert_ne!(verdict.counterexamples[0].events, [calm.0, calm.1]);
    }

    #[test]
    fn without_out_of_stock_orders_during_faults_it_cannot_judge() {
        let mut builder = HistoryBuilder::default();
        builder.fault(0, "order->payment", 5_000, Some(15_000));
        builder.placed("k", "a", 6_000);
        let verdict = check(&scenario(""), &builder.build(), &consistent(&["a"], &[]));
        assert!(!verdict.ok);
        assert!(verdict.summary.starts_with("cannot judge"));
    }
}
