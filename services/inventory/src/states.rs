//! The provider states inventory's consumers name in their pacts, served in test mode at
//! `POST /admin/provider-states` (see [`faultline_kit::provider_states`]). Each state makes
//! fresh data through the service's own store and decision code, and answers the values the
//! pact's `ProviderState` generators use.
//!
//! | state | params (defaults) | answers |
//! |---|---|---|
//! | `a SKU has units available` | `sku` (`sku-1`), `available` (10) | `{"sku"}` |
//! | `a SKU is out of stock` | `sku` (`sku-empty`) | `{"sku"}` |
//! | `an order has a reservation` | `sku` (`sku-1`), `quantity` (1) | `{"order_id", "sku"}` |
//!
//! Stock is set relative to what is already reserved, so a state holds however many
//! verifications ran before on the same database.

use faultline_kit::provider_states::{param_i64, param_str, ProviderStates};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::api::{reserve_for_order, MAX_SKU_LEN};
use crate::store;

/// The inventory's provider states over `pool`.
pub fn provider_states(pool: PgPool) -> ProviderStates {
    let available_pool = pool.clone();
    let empty_pool = pool.clone();
    ProviderStates::new()
        .state("a SKU has units available", move |params| {
            let pool = available_pool.clone();
            async move {
                let sku = sku_param(&params, "sku-1")?;
                let available = count_param(&params, "available", 10)?;
                set_available(&pool, &sku, available).await?;
                Ok(json!({"sku": sku}))
            }
        })
        .state("a SKU is out of stock", move |params| {
            let pool = empty_pool.clone();
            async move {
                let sku = sku_param(&params, "sku-empty")?;
                set_available(&pool, &sku, 0).await?;
                Ok(json!({"sku": sku}))
            }
        })
        .state("an order has a reservation", move |params| {
            let pool = pool.clone();
            async move {
                let sku = sku_param(&params, "sku-1")?;
                let quantity = count_param(&params, "quantity", 1)?.max(1);
                set_available(&pool, &sku, quantity).await?;
                let order_id = Uuid::new_v4();
                let reply = reserve_for_order(&pool, order_id, &sku, quantity)
                    .await
                    .map_err(|reply| format!("reserving: {}", reply.body))?;
                if reply.status_code() != 201 {
                    return Err(format!(
                        "reserving answered {}: {}",
                        reply.status_code(),
                        reply.body
                    ));
                }
                Ok(json!({"order_id": order_id, "sku": sku}))
            }
        })
}

fn sku_param(
    params: &serde_json::Map<String, serde_json::Value>,
    default: &str,
) -> Result<String, String> {
    let sku = param_str(params, "sku", default)?;
    if sku.is_empty() || sku.len() > MAX_SKU_LEN {
        return Err(format!(
            "parameter sku: expected 1 to {MAX_SKU_LEN} characters"
        ));
    }
    Ok(sku)
}

fn count_param(
    params: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    default: i64,
) -> Result<i32, String> {
    let value = param_i64(params, name, default)?;
    i32::try_from(value)
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| format!("parameter {name}: expected a whole number >= 0, got {value}"))
}

/// Sets on-hand units so that exactly `available` are free, whatever is reserved.
async fn set_available(pool: &PgPool, sku: &str, available: i32) -> Result<(), String> {
    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
    let reserved = store::stock(&mut conn, sku)
        .await
        .map_err(|e| e.to_string())?
        .map_or(0, |stock| stock.reserved);
    store::set_on_hand(&mut conn, sku, reserved + available)
        .await
        .map_err(|e| format!("setting the stock of {sku}: {e}"))?;
    Ok(())
}
