//! The event catalogue matches what the order service publishes.

use faultline_reference::catalogue::{self, EVENTS};
use serde_json::{json, Value};

fn event(kind: &str, reason: Value) -> Value {
    json!({
        "type": kind,
        "order_id": "6f1c1c9e-8a52-4f3e-9b1e-2d3c4b5a6978",
        "customer_id": "c-1",
        "sku": "sku-1",
        "quantity": 2,
        "amount_cents": 1200,
        "reason": reason,
        "occurred_at": "2025-01-01T00:00:00+00:00"
    })
}

#[test]
fn every_schema_is_draft_2020_12_and_in_the_checkers_subset() {
    assert_eq!(EVENTS.len(), 3);
    for entry in EVENTS {
        let value: Value = serde_json::from_str(entry.schema).unwrap();
        assert_eq!(
            value["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert!(
            jsonschema::draft202012::meta::is_valid(&value),
            "{}",
            entry.file
        );
        catalogue::schema_for(entry.event_type).unwrap();
    }
}

#[test]
fn the_payloads_the_order_service_writes_validate() {
    catalogue::validate_event(&event("OrderCreated", Value::Null)).unwrap();
    catalogue::validate_event(&event("OrderConfirmed", Value::Null)).unwrap();
    for reason in [
        "out_of_stock",
        "card_declined",
        "payment_unavailable",
        "inventory_unavailable",
    ] {
        catalogue::validate_event(&event("OrderCancelled", json!(reason))).unwrap();
    }
    // chrono's to_rfc3339 with fractional seconds, as Utc::now() gives.
    let mut now = event("OrderCreated", Value::Null);
    now["occurred_at"] = json!("2026-11-26T12:49:11.123456789+00:00");
    catalogue::validate_event(&now).unwrap();
    // Producers may add fields: readers ignore them.
    let mut extended = event("OrderConfirmed", Value::Null);
    extended["currency"] = json!("EUR");
    catalogue::validate_event(&extended).unwrap();
}

#[test]
fn invalid_payloads_are_rejected_naming_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut e = event("OrderCreated", Value::Null);
                e["order_id"] = json!("not-a-uuid");
                e
            },
            "$.order_id",
        ),
        (
            {
                let mut e = event("OrderCreated", Value::Null);
                e["quantity"] = json!(0);
                e
            },
            "$.quantity",
        ),
        (
            {
                let mut e = event("OrderConfirmed", Value::Null);
                e["amount_cents"] = json!("1200");
                e
            },
            "$.amount_cents",
        ),
        (event("OrderCancelled", json!("bored")), "$.reason"),
        (event("OrderCancelled", Value::Null), "$.reason"),
        (event("OrderCreated", json!("card_declined")), "$.reason"),
        (
            {
                let mut e = event("OrderCreated", Value::Null);
                e["occurred_at"] = json!("yesterday");
                e
            },
            "$.occurred_at",
        ),
        (
            {
                let mut e = event("OrderCreated", Value::Null);
                e.as_object_mut().unwrap().remove("sku");
                e
            },
            "sku",
        ),
        (event("OrderShipped", Value::Null), "$.type"),
    ];
    for (payload, field) in cases {
        let error = catalogue::validate_event(&payload).unwrap_err();
        assert!(error.contains(field), "{payload}: {error}");
    }
}

/// Every message interaction of the committed pacts carries an example that is a valid event
/// of the catalogue: a consumer cannot expect a payload the producer's schema rules out.
#[test]
fn every_committed_message_example_validates_against_the_catalogue() {
    use faultline_contracts::model::Interaction;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/pacts");
    let pacts = faultline_contracts::files::read_pacts(&dir).unwrap();
    let mut checked = 0;
    for (path, pact) in &pacts {
        for interaction in &pact.interactions {
            if let Interaction::Message(message) = interaction {
                catalogue::validate_event(&message.contents.content).unwrap_or_else(|e| {
                    panic!("{}: {:?}: {e}", path.display(), message.info.description)
                });
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked, 3,
        "the three order events of notification-order.json"
    );
    // And a payload that breaks the schema is refused, so the check above can fail.
    let mut bad = match &pacts
        .iter()
        .find(|(p, _)| p.ends_with("notification-order.json"))
        .unwrap()
        .1
        .interactions[0]
    {
        Interaction::Message(m) => m.contents.content.clone(),
        Interaction::Http(_) => unreachable!(),
    };
    bad["quantity"] = serde_json::json!("two");
    assert!(catalogue::validate_event(&bad).is_err());
}
