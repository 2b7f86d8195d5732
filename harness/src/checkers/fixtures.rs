//! Crafted histories, observations and scenarios for the checkers' tests.

use std::time::Duration;

use faultline_chaos::scenario::Scenario;
use serde_json::{json, Value};

use super::observed::*;
use crate::history::{Event, EventType, History, Op, Process};

/// A scenario with the given `[expectations]` body (empty: every invariant) and one fault,
/// `order->payment` latency from 5 s to 15 s (schedule index 0).
pub fn scenario(expectations: &str) -> Scenario {
    scenario_with_faults(
        r#"
        [[faults]]
        start = "5s"
        duration = "10s"
        target = "order->payment"
        kind = "latency"
        latency = "2s"
        "#,
        expectations,
    )
}

pub fn scenario_with_faults(faults: &str, expectations: &str) -> Scenario {
    let expectations = if expectations.trim().is_empty() {
        String::new()
    } else {
        format!("[expectations]\n{expectations}")
    };
    let text = format!(
        "name = \"t\"\ndescription = \"d\"\n[workload]\norders = 10\nduration = \"60s\"\n{faults}\n{expectations}"
    );
    Scenario::parse("test.toml", crate::system::reference().topology(), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Builds a history event by event; each method returns the indexes it appended.
#[derive(Default)]
pub struct HistoryBuilder {
    events: Vec<Event>,
}

impl HistoryBuilder {
    fn push(
        &mut self,
        time_ms: u64,
        process: Process,
        event_type: EventType,
        op: Op,
        value: Value,
        invoke_index: Option<usize>,
    ) -> usize {
        let index = self.events.len();
        self.events.push(Event {
            index,
            time: Duration::from_millis(time_ms),
            process,
            event_type,
            op,
            value,
            invoke_index,
        });
        index
    }

    /// A PlaceOrder invoked at `at_ms` and completed at `done_ms` with `outcome`; an ok
    /// completion carries `order_id`. Returns `(invoke, completion)`.
    pub fn place(
        &mut self,
        key: &str,
        kind: &str,
        at_ms: u64,
        done_ms: u64,
        outcome: EventType,
        order_id: Option<&str>,
    ) -> (usize, usize) {
        let op = Op::PlaceOrder {
            key: key.into(),
            sku: "sku-1".into(),
            quantity: 1,
            card: "4242424242424242".into(),
            kind: kind.into(),
        };
        let invoke = self.push(
            at_ms,
            Process::Client(0),
            EventType::Invoke,
            op.clone(),
            Value::Null,
            None,
        );
        let value = match (outcome, order_id) {
            (EventType::Ok, Some(id)) => json!({"order_id": id, "status": "PENDING"}),
            (_, _) => json!({"error": "timeout"}),
        };
        let done = self.push(
            done_ms,
            Process::Client(0),
            outcome,
            op,
            value,
            Some(invoke),
        );
        (invoke, done)
    }

    /// An ok PlaceOrder of a good order.
    pub fn placed(&mut self, key: &str, order_id: &str, at_ms: u64) -> (usize, usize) {
        self.place(
            key,
            "good",
            at_ms,
            at_ms + 10,
            EventType::Ok,
            Some(order_id),
        )
    }

    /// A PlaceOrder never completed.
    pub fn pending_place(&mut self, key: &str, at_ms: u64) -> usize {
        let op = Op::PlaceOrder {
            key: key.into(),
            sku: "sku-1".into(),
            quantity: 1,
            card: "c".into(),
            kind: "good".into(),
        };
        self.push(
            at_ms,
            Process::Client(0),
            EventType::Invoke,
            op,
            Value::Null,
            None,
        )
    }

    /// An ok ReadOrder showing `status`.
    pub fn read(
        &mut self,
        order_id: &str,
        at_ms: u64,
        done_ms: u64,
        status: &str,
    ) -> (usize, usize) {
        let op = Op::ReadOrder {
            order_id: order_id.into(),
        };
        let invoke = self.push(
            at_ms,
            Process::Client(0),
            EventType::Invoke,
            op.clone(),
            Value::Null,
            None,
        );
        let done = self.push(
            done_ms,
            Process::Client(0),
            EventType::Ok,
            op,
            json!({"order_id": order_id, "status": status}),
            Some(invoke),
        );
        (invoke, done)
    }

    /// Fault `index` on `target` applied at `start_ms` and healed at `heal_ms` (if any).
    pub fn fault(
        &mut self,
        index: usize,
        target: &str,
        start_ms: u64,
        heal_ms: Option<u64>,
    ) -> Vec<usize> {
        let start = Op::StartFault {
            index,
            target: target.into(),
            kind: "latency".into(),
        };
        let i = self.push(
            start_ms,
            Process::Nemesis,
            EventType::Invoke,
            start.clone(),
            Value::Null,
            None,
        );
        let j = self.push(
            start_ms,
            Process::Nemesis,
            EventType::Ok,
            start,
            Value::Null,
            Some(i),
        );
        let mut events = vec![i, j];
        if let Some(heal_ms) = heal_ms {
            let heal = Op::HealFault {
                index,
                target: target.into(),
                kind: "latency".into(),
            };
            let k = self.push(
                heal_ms,
                Process::Nemesis,
                EventType::Invoke,
                heal.clone(),
                Value::Null,
                None,
            );
            let l = self.push(
                heal_ms,
                Process::Nemesis,
                EventType::Ok,
                heal,
                Value::Null,
                Some(k),
            );
            events.extend([k, l]);
        }
        events
    }

    pub fn build(self) -> History {
        History::from_events(self.events)
    }
}

/// An order in the order DB: `sku-1`, quantity 1, 1000 cents.
pub fn order(id: &str, status: &str) -> OrderRow {
    OrderRow {
        order_id: id.into(),
        status: status.into(),
        reason: (status == "CANCELLED").then(|| "card_declined".to_string()),
        sku: "sku-1".into(),
        quantity: 1,
        amount_cents: 1000,
        saga_step: Some(
            if status == "PENDING" {
                "CHARGE"
            } else {
                "DONE"
            }
            .into(),
        ),
        saga_attempts: 0,
        saga_last_error: None,
        saga_duration_ms: (status != "PENDING").then_some(50),
    }
}

pub fn payment(
    id: &str,
    successful_charges: i64,
    charged_cents: i64,
    refunded_cents: i64,
) -> PaymentRow {
    PaymentRow {
        order_id: id.into(),
        successful_charges,
        declined_charges: 0,
        charged_cents,
        refunded_cents,
        net_cents: charged_cents - refunded_cents,
        voided: refunded_cents > 0,
    }
}

pub fn reservation(id: &str, status: &str) -> ReservationRow {
    ReservationRow {
        order_id: id.into(),
        sku: Some("sku-1".into()),
        quantity: 1,
        status: status.into(),
    }
}

/// A consistent final state: `confirmed` orders CONFIRMED (charged, committed), `cancelled`
/// ones CANCELLED (refunded, released), stock `sku-1` started at 100, every event published
/// and notified once.
pub fn consistent(confirmed: &[&str], cancelled: &[&str]) -> Observed {
    let mut observed = Observed::default();
    let mut next_event = 0;
    let mut event = |observed: &mut Observed, order_id: &str, event_type: &str| {
        next_event += 1;
        let event_id = format!("ev-{next_event}");
        observed.outbox.push(OutboxRow {
            id: next_event,
            event_id: event_id.clone(),
            order_id: order_id.into(),
            event_type: event_type.into(),
            published: true,
        });
        observed.notifications.push(NotificationRow {
            event_id,
            order_id: order_id.into(),
            event_type: event_type.into(),
        });
    };
    for id in confirmed {
        observed
            .orders
            .insert(id.to_string(), order(id, "CONFIRMED"));
        observed
            .payments
            .insert(id.to_string(), payment(id, 1, 1000, 0));
        observed
            .reservations
            .insert(id.to_string(), reservation(id, "COMMITTED"));
        event(&mut observed, id, "OrderCreated");
        event(&mut observed, id, "OrderConfirmed");
    }
    for id in cancelled {
        observed
            .orders
            .insert(id.to_string(), order(id, "CANCELLED"));
        observed
            .payments
            .insert(id.to_string(), payment(id, 1, 1000, 1000));
        observed
            .reservations
            .insert(id.to_string(), reservation(id, "RELEASED"));
        event(&mut observed, id, "OrderCreated");
        event(&mut observed, id, "OrderCancelled");
    }
    observed.initial_stock.insert("sku-1".into(), 100);
    observed.stock.insert(
        "sku-1".into(),
        StockRow {
            sku: "sku-1".into(),
            on_hand: 100 - confirmed.len() as i64,
            reserved: 0,
        },
    );
    observed
}
