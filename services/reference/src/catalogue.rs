//! The event catalogue: a JSON Schema (draft 2020-12) for every event the reference system
//! publishes, kept as files under `contracts/schemas/` (beside the reference system's pacts)
//! and compiled into this crate, not into the contracts library: the schemas are the reference
//! system's, the checks ([`faultline_contracts::compat`]) are faultline's.
//!
//! The schemas describe what the order service really writes (`Order::event` in
//! `services/order/src/store.rs`): every field is always present — `reason` too, `null`
//! unless the order was cancelled — and `additionalProperties` is `true`, because consumers
//! (notification's `OrderEvent`) ignore fields they do not know, which is what lets a producer
//! add an optional field without a coordinated release. Whether a change to a schema is safe
//! is [`faultline_contracts::compat`]'s question.
//!
//! ```
//! use faultline_reference::catalogue;
//! use serde_json::json;
//!
//! let schema = catalogue::schema_for("OrderCreated").unwrap();
//! assert!(schema.is_valid(&json!({
//!     "type": "OrderCreated", "order_id": "6f1c1c9e-8a52-4f3e-9b1e-2d3c4b5a6978",
//!     "customer_id": "c-1", "sku": "sku-1", "quantity": 2, "amount_cents": 1200,
//!     "reason": null, "occurred_at": "2025-01-01T00:00:00Z"})));
//! ```

use faultline_contracts::compat::Schema;

/// One catalogued event: its `type` value, topic, file and schema text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// The payload's `type` field.
    pub event_type: &'static str,
    /// The Kafka topic it is published on.
    pub topic: &'static str,
    /// The file, relative to the repository's `contracts/` directory.
    pub file: &'static str,
    /// The schema, as JSON text.
    pub schema: &'static str,
}

/// Every event the reference system publishes.
pub const EVENTS: &[CatalogueEntry] = &[
    CatalogueEntry {
        event_type: "OrderCreated",
        topic: "orders",
        file: "schemas/order-created.json",
        schema: include_str!("../../../contracts/schemas/order-created.json"),
    },
    CatalogueEntry {
        event_type: "OrderConfirmed",
        topic: "orders",
        file: "schemas/order-confirmed.json",
        schema: include_str!("../../../contracts/schemas/order-confirmed.json"),
    },
    CatalogueEntry {
        event_type: "OrderCancelled",
        topic: "orders",
        file: "schemas/order-cancelled.json",
        schema: include_str!("../../../contracts/schemas/order-cancelled.json"),
    },
];

/// The compiled schema of the event whose `type` is `event_type`.
pub fn schema_for(event_type: &str) -> Option<Schema> {
    let entry = EVENTS.iter().find(|entry| entry.event_type == event_type)?;
    Some(
        Schema::from_json_str(entry.file, entry.schema).unwrap_or_else(|error| {
            panic!("the catalogued schema {} is broken: {error}", entry.file)
        }),
    )
}

/// Validates an event payload against the schema its `type` names.
pub fn validate_event(payload: &serde_json::Value) -> Result<(), String> {
    let kind = payload
        .get("type")
        .and_then(|kind| kind.as_str())
        .ok_or_else(|| "at $.type: expected the event type as a string".to_string())?;
    let schema = schema_for(kind).ok_or_else(|| {
        let known: Vec<&str> = EVENTS.iter().map(|entry| entry.event_type).collect();
        format!(
            "at $.type: unknown event type {kind:?}; catalogued: {}",
            known.join(", ")
        )
    })?;
    schema.validate(payload)
}
