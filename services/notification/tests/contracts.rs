//! Notification's consumer contract with order: what it needs of the order events on topic
//! `orders`. Each message example goes through the real handler (`events::apply`) against a
//! real Postgres with the service's migrations, and must validate against the event catalogue
//! (`contracts/schemas/`); the pact is snapshot-checked (insta) and written to
//! `contracts/pacts/notification-order.json`. Run with `source .faultline/images.env` first.

use faultline_contracts::consumer::matchers::{from_state, integer, like, term, uuid};
use faultline_contracts::consumer::{pacts_dir, write_pact, PactBuilder};
use faultline_harness::infra::{Infra, InfraConfig};
use faultline_kit::db;
use faultline_kit::kafka::ReceivedEvent;
use faultline_notification::events::{apply, Applied};
use faultline_reference::catalogue::validate_event;
use serde_json::{json, Value};
use uuid::Uuid;

const ORDER_ID: &str = "6f1c8a43-4c4e-4b3c-9a55-0e7f8f2f0b11";
/// An RFC 3339 date-time, as order writes `occurred_at` (`to_rfc3339`).
const RFC3339: &str = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$";
const EVENT_ID: &str = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";

fn event(kind: &str) -> Value {
    let reason = match kind {
        "OrderCancelled" => like(json!("card_declined")),
        _ => Value::Null,
    };
    json!({
        "type": kind,
        "order_id": uuid(ORDER_ID),
        "customer_id": like(json!("c-1")),
        "sku": like(json!("sku-1")),
        "quantity": integer(1),
        "amount_cents": integer(1200),
        "reason": reason,
        // A regex rather than a format-less timestamp rule: faultline reads that as any
        // ISO-8601 date-time, pact_verifier_cli 1.4.0 as `yyyy-MM-dd'T'HH:mm:ssXXX` (no
        // fraction), and order writes RFC 3339 with a fraction. A regex means one thing to both.
        "occurred_at": term(RFC3339, "2026-01-01T12:00:00.000000+00:00"),
    })
}

#[tokio::test]
async fn notification_handles_the_order_events_the_pact_describes() -> anyhow::Result<()> {
    let mut pact = PactBuilder::new("notification", "order");
    for (kind, state, params) in [
        ("OrderCreated", "an order was placed", json!({})),
        ("OrderConfirmed", "an order was confirmed", json!({})),
        (
            "OrderCancelled",
            "an order was cancelled",
            json!({"reason": "card_declined"}),
        ),
    ] {
        pact.message(&format!("an {kind} event"), |m| {
            m.given_with(state, params)
                .json_contents(event(kind))
                .metadata("topic", "orders")
                .metadata("key", from_state("${order_id}", uuid(ORDER_ID)))
                .metadata("event-id", uuid(EVENT_ID))
        });
    }

    let infra = Infra::start(InfraConfig {
        kafka: false,
        ..InfraConfig::with_clients(["notification"])
    })
    .await?;
    let pool = db::connect(&infra.postgres_url("notification")?, 2).await?;
    db::migrate(&pool, &faultline_notification::MIGRATOR).await?;

    let handled = pact
        .consume_messages(|message| {
            let pool = pool.clone();
            async move {
                validate_event(&message.contents)?;
                let event_id = Uuid::new_v4().to_string();
                let received = ReceivedEvent {
                    topic: message.metadata["topic"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                    partition: 0,
                    offset: 0,
                    key: Some(ORDER_ID.as_bytes().to_vec()),
                    payload: message.bytes.clone(),
                    headers: vec![("event-id".into(), event_id.clone().into_bytes())],
                };
                match apply(&pool, &received, None).await {
                    Ok(Applied::Notified) => {}
                    other => return Err(format!("expected one notification, got {other:?}")),
                }
                let (kind,): (String,) =
                    sqlx::query_as("SELECT type FROM notifications WHERE event_id = $1")
                        .bind(&event_id)
                        .fetch_one(&pool)
                        .await
                        .map_err(|e| e.to_string())?;
                if Some(kind.as_str()) != message.contents["type"].as_str() {
                    return Err(format!("stored a notification of type {kind}"));
                }
                Ok(())
            }
        })
        .await;
    pool.close().await;
    infra.shutdown().await?;
    handled?;

    let pact = pact.finish()?;
    insta::assert_snapshot!("notification-order", pact.to_json_string());
    write_pact(&pact, &pacts_dir())?;
    Ok(())
}
