//! The provider states order's consumers name in their pacts, served in test mode at
//! `POST /admin/provider-states` (see [`faultline_kit::provider_states`]).
//!
//! | state | params (defaults) | answers |
//! |---|---|---|
//! | `an order exists`, `an order was placed` | `customer_id` (`c-1`), `sku` (`sku-1`), `quantity` (1), `amount_cents` (1200) | `{"order_id"}` |
//! | `an order was confirmed` | the same | `{"order_id"}` |
//! | `an order was cancelled` | the same, and `reason` (`card_declined`) | `{"order_id"}` |
//!
//! Orders are made by the store's own transactions, so their events go through the outbox and
//! the relay to Kafka exactly as a saga's would (`OrderCreated`, then `OrderConfirmed` or
//! `OrderCancelled`), but no saga runs for them: they stay as the state left them.

use faultline_kit::provider_states::{param_i64, param_str, ProviderStates};
use serde_json::{json, Map, Value};

use crate::store::{CancelReason, NewOrder, Store};

/// How a state's order ends.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Pending,
    Confirmed,
    Cancelled,
}

fn new_order(params: &Map<String, Value>) -> Result<NewOrder, String> {
    let quantity = param_i64(params, "quantity", 1)?;
    let amount_cents = param_i64(params, "amount_cents", 1200)?;
    if quantity <= 0 || quantity > i64::from(i32::MAX) {
        return Err(format!(
            "parameter quantity: expected a whole number > 0, got {quantity}"
        ));
    }
    if amount_cents <= 0 {
        return Err(format!(
            "parameter amount_cents: expected > 0, got {amount_cents}"
        ));
    }
    Ok(NewOrder {
        customer_id: param_str(params, "customer_id", "c-1")?,
        sku: param_str(params, "sku", "sku-1")?,
        quantity: quantity as i32,
        amount_cents,
        card: "4242424242424242".into(),
    })
}

async fn make_order(
    store: Store,
    params: Map<String, Value>,
    ending: Ending,
) -> Result<Value, String> {
    let new_order = new_order(&params)?;
    let reason = match ending {
        Ending::Cancelled => Some(
            param_str(&params, "reason", "card_declined")?
                .parse::<CancelReason>()
                .map_err(|e| format!("parameter reason: {e}"))?,
        ),
        _ => None,
    };
    let order = store
        .create_unsupervised(&new_order)
        .await
        .map_err(|e| format!("creating the order: {e}"))?;
    let ended = match (ending, reason) {
        (Ending::Confirmed, _) => store.confirm(order.order_id).await,
        (Ending::Cancelled, Some(reason)) => store.cancel(order.order_id, reason).await,
        _ => Ok(Some(order.clone())),
    };
    ended.map_err(|e| format!("ending the order: {e}"))?;
    Ok(json!({"order_id": order.order_id}))
}

/// Order's provider states over `store`.
pub fn provider_states(store: Store) -> ProviderStates {
    let mut states = ProviderStates::new();
    for (name, ending) in [
        ("an order exists", Ending::Pending),
        ("an order was placed", Ending::Pending),
        ("an order was confirmed", Ending::Confirmed),
        ("an order was cancelled", Ending::Cancelled),
    ] {
        let store = store.clone();
        states = states.state(name, move |params| {
            make_order(store.clone(), params, ending)
        });
    }
    states
}
