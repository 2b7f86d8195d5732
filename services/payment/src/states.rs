//! The provider states payment's consumers name in their pacts, served in test mode at
//! `POST /admin/provider-states` (see [`faultline_kit::provider_states`]). Each state makes a
//! fresh order id, so verifications never meet each other's charges.
//!
//! | state | params (defaults) | answers |
//! |---|---|---|
//! | `no charge exists for an order` | — | `{"order_id"}` |
//! | `an order has been charged` | `amount_cents` (1200) | `{"order_id", "amount_cents"}` |
//!
//! The charge is made by the same decision as `POST /payments/charges`.

use faultline_kit::provider_states::{param_i64, ProviderStates};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::api::charge_for_order;

/// Payment's provider states over `pool`.
pub fn provider_states(pool: PgPool) -> ProviderStates {
    ProviderStates::new()
        .state("no charge exists for an order", |_| async move {
            Ok(json!({"order_id": Uuid::new_v4()}))
        })
        .state("an order has been charged", move |params| {
            let pool = pool.clone();
            async move {
                let amount_cents = param_i64(&params, "amount_cents", 1200)?;
                if amount_cents <= 0 {
                    return Err(format!(
                        "parameter amount_cents: expected > 0, got {amount_cents}"
                    ));
                }
                let order_id = Uuid::new_v4();
                let reply = charge_for_order(&pool, order_id, amount_cents, "4242424242424242")
                    .await
                    .map_err(|reply| format!("charging: {}", reply.body))?;
                if reply.status_code() != 201 {
                    return Err(format!(
                        "charging answered {}: {}",
                        reply.status_code(),
                        reply.body
                    ));
                }
                Ok(json!({"order_id": order_id, "amount_cents": amount_cents}))
            }
        })
}
