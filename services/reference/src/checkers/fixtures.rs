//! Crafted histories, observations and scenarios for the checkers' tests.

use faultline_chaos::scenario::Scenario;

pub use faultline_harness::fixtures::HistoryBuilder;
use faultline_harness::fixtures::{scenario_text, PAYMENT_LATENCY};

use super::*;

/// A scenario of the reference system with the given `[expectations]` body (empty: every
/// invariant) and one fault, `order->payment` latency from 5 s to 15 s (schedule index 0).
pub fn scenario(expectations: &str) -> Scenario {
    scenario_with_faults(PAYMENT_LATENCY, expectations)
}

pub fn scenario_with_faults(faults: &str, expectations: &str) -> Scenario {
    let text = scenario_text("requests = 10\nduration = \"60s\"", faults, expectations);
    let system = crate::system();
    Scenario::parse("test.toml", crate::registry().vocabulary(&system), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
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
