//! The order events this service consumes (topic `orders`, see `services/README.md`), and how
//! one is applied: exactly once in effect.
//!
//! [`apply`] checks the event (payload per the contract, an `event-id` header) and, in one
//! transaction, records the event id with the kit's
//! [`mark_processed`](faultline_kit::idempotency::mark_processed) and — only when the id is
//! new — inserts the notification. A redelivered event therefore commits nothing new, and a
//! crash between the two writes is impossible. A bad event is
//! [`HandlerError::Poison`] (the kit dead-letters it to `orders.dlt`); a database failure is
//! [`HandlerError::Retryable`] (the kit tries the same event again, committing nothing).

use chrono::{DateTime, Utc};
use faultline_kit::idempotency::mark_processed;
use faultline_kit::kafka::{HandlerError, ReceivedEvent};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

/// The topic consumed.
pub const TOPIC: &str = "orders";
/// The consumer group, and the consumer's name in `processed_events`.
pub const CONSUMER: &str = "notification";

/// The event types of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum OrderEventType {
    OrderCreated,
    OrderConfirmed,
    OrderCancelled,
}

impl OrderEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderCreated => "OrderCreated",
            Self::OrderConfirmed => "OrderConfirmed",
            Self::OrderCancelled => "OrderCancelled",
        }
    }
}

/// An order event as published by the order service.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderEvent {
    #[serde(rename = "type")]
    pub kind: OrderEventType,
    pub order_id: Uuid,
    pub customer_id: String,
    pub sku: String,
    pub quantity: i32,
    pub amount_cents: i64,
    #[serde(default)]
    pub reason: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// Whether [`apply`] had an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new event: one notification written.
    Notified,
    /// The event had been processed before: nothing written.
    Duplicate,
}

fn retryable(what: &str) -> impl FnOnce(sqlx::Error) -> HandlerError + '_ {
    move |error| HandlerError::Retryable(format!("{what}: {error}"))
}

/// Applies one received event; see the module docs. `crash_for_customer` is the test-mode
/// failpoint: the process aborts right after the effect of that customer's first
/// `OrderCreated` is committed, before the consumer can commit the offset — the crash window
/// the dedupe exists for. After a restart the redelivered event is a duplicate, so it fires once.
pub async fn apply(
    pool: &PgPool,
    event: &ReceivedEvent,
    crash_for_customer: Option<&str>,
) -> Result<Applied, HandlerError> {
    let event_id = event
        .event_id()
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| HandlerError::Poison("the `event-id` header is missing".into()))?
        .to_string();
    let order: OrderEvent = event.json()?;
    let mut tx = pool
        .begin()
        .await
        .map_err(retryable("starting a transaction"))?;
    let fresh = mark_processed(&mut tx, CONSUMER, &event_id)
        .await
        .map_err(retryable("recording the processed event"))?;
    // Seeded bug: a redelivered event is taken for a failure and handed back for a retry,
    // which finds it processed again, and again: its offset is never committed.
    if !fresh
        && faultline_kit::seeded::active(
            faultline_kit::seeded::NOTIFICATION_STALLS_ON_DUPLICATE_EVENT,
        )
    {
        return Err(HandlerError::Retryable(format!(
            "event {event_id} was already processed"
        )));
    }
    if fresh {
        sqlx::query("INSERT INTO notifications (event_id, order_id, type) VALUES ($1, $2, $3)")
            .bind(&event_id)
            .bind(order.order_id)
            .bind(order.kind.as_str())
            .execute(&mut *tx)
            .await
            .map_err(retryable("inserting the notification"))?;
    }
    tx.commit().await.map_err(retryable("committing"))?;
    if fresh
        && order.kind == OrderEventType::OrderCreated
        && crash_for_customer == Some(order.customer_id.as_str())
    {
        tracing::warn!(%event_id, "test failpoint: aborting after the effect, before the offset commit");
        std::process::abort();
    }
    if fresh {
        metrics::counter!("notifications_created_total", "type" => order.kind.as_str())
            .increment(1);
        tracing::info!(%event_id, order_id = %order.order_id, kind = order.kind.as_str(), "notified");
        Ok(Applied::Notified)
    } else {
        metrics::counter!("notifications_duplicates_total").increment(1);
        tracing::info!(%event_id, "event seen before; no second notification");
        Ok(Applied::Duplicate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_payload_parses_and_unknown_types_do_not() {
        let good = r#"{"type":"OrderCancelled","order_id":"6f1c1c9e-8a52-4f3e-9b1e-2d3c4b5a6978",
            "customer_id":"c-1","sku":"sku-1","quantity":2,"amount_cents":1200,
            "reason":"card_declined","occurred_at":"2025-01-01T00:00:00Z"}"#;
        let event: OrderEvent = serde_json::from_str(good).unwrap();
        assert_eq!(event.kind, OrderEventType::OrderCancelled);
        assert_eq!(event.reason.as_deref(), Some("card_declined"));
        let unknown = good.replace("OrderCancelled", "OrderShipped");
        assert!(serde_json::from_str::<OrderEvent>(&unknown).is_err());
    }
}
