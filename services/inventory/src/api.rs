//! The inventory HTTP API (see `services/README.md`, section *inventory*).
//!
//! - `POST /inventory/reservations` holds units for an order, at most once per order. The
//!   request and its answer are recorded under the `Idempotency-Key` in the same transaction,
//!   so a retry replays the answer. Another key for an order that already has a reservation
//!   gets `409 already_reserved` with it; an order released before it was reserved gets
//!   `409 order_released`; too few units (or an unknown SKU) give `409 out_of_stock`.
//! - `POST /inventory/reservations/{order_id}/release` and `.../commit` are idempotent by their
//!   path: repeating them changes nothing and answers the same.
//! - `GET /inventory/stock/{sku}`, `GET /inventory/reservations/{order_id}` for checkers.
//! - *test mode* `PUT /admin/stock/{sku}` sets the units on hand.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::Router;
use faultline_kit::idempotency::{self, Begin};
use serde_json::json;
use uuid::Uuid;

use crate::reply::{idempotency_key, Fields, Reply};
use crate::store::{self, Reservation, ReservationStatus, Stock};
use crate::AppState;

const RESERVE_SCOPE: &str = "POST /inventory/reservations";

/// The longest SKU accepted.
pub const MAX_SKU_LEN: usize = 64;

/// The inventory routes; `PUT /admin/stock/{sku}` only with `test_mode` (the provider states
/// are added beside them by [`crate::router`]).
pub fn routes(state: AppState, test_mode: bool) -> Router {
    let mut router = Router::new()
        .route("/inventory/reservations", post(reserve))
        .route(
            "/inventory/reservations/{order_id}",
            get(reservation_status),
        )
        .route("/inventory/reservations/{order_id}/release", post(release))
        .route("/inventory/reservations/{order_id}/commit", post(commit))
        .route("/inventory/stock/{sku}", get(stock_level));
    if test_mode {
        router = router.route("/admin/stock/{sku}", put(set_stock));
    }
    router.with_state(state)
}

/// A validated reservation request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReserveRequest {
    order_id: Uuid,
    sku: String,
    quantity: i32,
}

impl ReserveRequest {
    fn parse(body: &[u8]) -> Result<Self, Reply> {
        let fields = Fields::parse(body)?;
        Ok(Self {
            order_id: fields.uuid("order_id")?,
            sku: fields.string("sku", MAX_SKU_LEN)?,
            quantity: fields.i32_at_least("quantity", 1)?,
        })
    }

    /// Equal requests have equal fingerprints whatever their JSON spacing or field order.
    fn fingerprint(&self) -> String {
        let canonical = json!([self.order_id, self.sku, self.quantity]).to_string();
        idempotency::fingerprint(canonical.as_bytes())
    }
}

fn order_id_from_path(text: &str) -> Result<Uuid, Reply> {
    Uuid::parse_str(text).map_err(|_| Reply::invalid_field("order_id", "a UUID in the path"))
}

fn sku_from_path(text: &str) -> Result<String, Reply> {
    let sku = text.trim();
    if sku.is_empty() || sku.len() > MAX_SKU_LEN {
        return Err(Reply::invalid_field(
            "sku",
            &format!("a non-empty SKU of at most {MAX_SKU_LEN} characters in the path"),
        ));
    }
    Ok(sku.to_string())
}

fn reserved_reply(reservation: &Reservation) -> Reply {
    Reply::new(
        StatusCode::CREATED,
        json!({
            "reservation_id": reservation.reservation_id,
            "order_id": reservation.order_id,
            "sku": reservation.sku,
            "quantity": reservation.quantity,
            "status": reservation.status.as_str(),
        }),
    )
}

fn stock_reply(stock: &Stock) -> Reply {
    Reply::new(
        StatusCode::OK,
        json!({
            "sku": stock.sku,
            "on_hand": stock.on_hand,
            "reserved": stock.reserved,
            "available": stock.available(),
        }),
    )
}

fn order_released(order_id: Uuid) -> Reply {
    Reply::error(
        StatusCode::CONFLICT,
        "order_released",
        "the order was released; it cannot be reserved or committed",
    )
    .with("order_id", order_id.to_string())
}

fn outcome_of(reply: &Reply) -> String {
    reply.body["status"]
        .as_str()
        .or(reply.body["error"].as_str())
        .unwrap_or("unknown")
        .to_ascii_lowercase()
}

async fn reserve(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    // With the seeded bug below, the reservation runs to its end even when order stops
    // waiting (the server would otherwise drop it midway): only a failed statement, not a
    // caller's timeout, leaves its units held by no reservation.
    if faultline_kit::seeded::active(faultline_kit::seeded::INVENTORY_HOLDS_UNITS_OUTSIDE_TRANSACTION) {
        let work = tokio::spawn(async move {
            reserve_idempotently(&state, &headers, &body)
                .await
                .unwrap_or_else(|reply| reply)
        });
        return work.await.unwrap_or_else(|_| {
            Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the reservation stopped")
        });
    }
    reserve_idempotently(&state, &headers, &body)
        .await
        .unwrap_or_else(|reply| reply)
}

async fn reserve_idempotently(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, Reply> {
    let key = idempotency_key(headers)?;
    let request = ReserveRequest::parse(body)?;
    let mut tx = state.pool.begin().await?;
    match idempotency::begin(&mut tx, RESERVE_SCOPE, &key, &request.fingerprint()).await? {
        Begin::Fresh => {}
        Begin::Replay { status, body } => {
            // Seeded bug: the replay of a reservation that succeeded "makes sure" its units are
            // still held, but holding adds them again: the order's units are reserved twice.
            if faultline_kit::seeded::active(
                faultline_kit::seeded::INVENTORY_RESERVATION_NOT_IDEMPOTENT,
            ) && status == StatusCode::CREATED.as_u16()
            {
                store::hold_units(&mut tx, &request.sku, request.quantity).await?;
                tx.commit().await?;
            }
            return Ok(Reply::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
            ));
        }
        Begin::InProgress => {
            return Err(Reply::error(
                StatusCode::CONFLICT,
                "request_in_progress",
                "a request with this Idempotency-Key is still being handled; retry later",
            ))
        }
        Begin::Conflict => {
            return Err(Reply::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            ))
        }
    }
    // Seeded bug: the units are held outside the reservation's transaction, committed at
    // once; when that transaction then fails, the units stay held by no reservation.
    let outside = faultline_kit::seeded::active(
        faultline_kit::seeded::INVENTORY_HOLDS_UNITS_OUTSIDE_TRANSACTION,
    )
    .then_some(&state.pool);
    let reply = decide_reservation(&mut tx, &request, outside).await?;
    idempotency::complete(
        &mut tx,
        RESERVE_SCOPE,
        &key,
        reply.status_code(),
        &reply.body,
    )
    .await?;
    tx.commit().await?;
    let outcome = outcome_of(&reply);
    metrics::counter!("inventory_reservations_total", "outcome" => outcome.clone()).increment(1);
    tracing::info!(order_id = %request.order_id, sku = %request.sku, quantity = request.quantity, %outcome, "reservation decided");
    Ok(reply)
}

/// Reserves or refuses, inside the caller's transaction (the units held through `outside`
/// instead, when the seeded bug gives a pool).
async fn decide_reservation(
    conn: &mut sqlx::PgConnection,
    request: &ReserveRequest,
    outside: Option<&sqlx::PgPool>,
) -> Result<Reply, Reply> {
    let claim = store::claim_order(conn, request.order_id, &request.sku, request.quantity).await?;
    let Some(reservation) = claim else {
        let existing = store::reservation(conn, request.order_id, false)
            .await?
            .ok_or_else(|| {
                // The row that stopped the claim is gone: only a committed delete could do that,
                // and nothing deletes a committed reservation.
                Reply::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the order's reservation vanished; retry",
                )
            })?;
        if existing.status == ReservationStatus::Released {
            return Ok(order_released(request.order_id));
        }
        return Ok(Reply::error(
            StatusCode::CONFLICT,
            "already_reserved",
            "the order already has a reservation, made under another Idempotency-Key",
        )
        .with("reservation_id", existing.reservation_id.to_string())
        .with("order_id", existing.order_id.to_string())
        .with("sku", existing.sku.clone())
        .with("quantity", existing.quantity)
        .with("status", existing.status.as_str()));
    };
    let held = match outside {
        Some(pool) => store::hold_units(&mut *pool.acquire().await?, &request.sku, request.quantity).await?,
        None => store::hold_units(conn, &request.sku, request.quantity).await?,
    };
    if held {
        return Ok(reserved_reply(&reservation));
    }
    store::unclaim_order(conn, reservation.reservation_id).await?;
    let available = store::stock(conn, &request.sku)
        .await?
        .map_or(0, |stock| stock.available());
    Ok(Reply::error(
        StatusCode::CONFLICT,
        "out_of_stock",
        format!(
            "{} unit(s) of {} requested, {available} available",
            request.quantity, request.sku
        ),
    )
    .with("sku", request.sku.clone())
    .with("available", available))
}

/// Reserves `quantity` of `sku` for `order_id` through the same decision as `POST
/// /inventory/reservations` (without an idempotency key): what provider states use.
pub(crate) async fn reserve_for_order(
    pool: &sqlx::PgPool,
    order_id: Uuid,
    sku: &str,
    quantity: i32,
) -> Result<Reply, Reply> {
    let request = ReserveRequest {
        order_id,
        sku: sku.to_string(),
        quantity,
    };
    let mut tx = pool.begin().await?;
    let reply = decide_reservation(&mut tx, &request, None).await?;
    tx.commit().await?;
    Ok(reply)
}

async fn release(State(state): State<AppState>, Path(order_id): Path<String>) -> Reply {
    release_order(&state, &order_id)
        .await
        .unwrap_or_else(|reply| reply)
}

async fn release_order(state: &AppState, order_id: &str) -> Result<Reply, Reply> {
    let order_id = order_id_from_path(order_id)?;
    let mut tx = state.pool.begin().await?;
    let released = json!({"order_id": order_id, "status": "RELEASED"});
    if store::insert_release_tombstone(&mut tx, order_id).await? {
        tx.commit().await?;
        tracing::info!(%order_id, "order released before any reservation");
        metrics::counter!("inventory_releases_total", "outcome" => "tombstone").increment(1);
        return Ok(Reply::new(StatusCode::OK, released));
    }
    let reservation = store::reservation(&mut tx, order_id, true)
        .await?
        .ok_or_else(|| {
            Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the order's reservation vanished; retry",
            )
        })?;
    match (reservation.status, reservation.sku.as_deref()) {
        (ReservationStatus::Released, _) => Ok(Reply::new(StatusCode::OK, released)),
        (ReservationStatus::Committed, _) => Ok(Reply::error(
            StatusCode::CONFLICT,
            "already_committed",
            "the order's reservation was committed; its units have left stock",
        )
        .with("order_id", order_id.to_string())),
        (ReservationStatus::Reserved, Some(sku)) => {
            store::release_units(&mut tx, sku, reservation.quantity).await?;
            store::set_status(&mut tx, order_id, ReservationStatus::Released).await?;
            tx.commit().await?;
            tracing::info!(%order_id, sku, quantity = reservation.quantity, "reservation released");
            metrics::counter!("inventory_releases_total", "outcome" => "released").increment(1);
            Ok(Reply::new(StatusCode::OK, released))
        }
        (ReservationStatus::Reserved, None) => Err(Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "a reservation without a SKU",
        )),
    }
}

async fn commit(State(state): State<AppState>, Path(order_id): Path<String>) -> Reply {
    commit_order(&state, &order_id)
        .await
        .unwrap_or_else(|reply| reply)
}

async fn commit_order(state: &AppState, order_id: &str) -> Result<Reply, Reply> {
    let order_id = order_id_from_path(order_id)?;
    let mut tx = state.pool.begin().await?;
    let committed = json!({"order_id": order_id, "status": "COMMITTED"});
    let Some(reservation) = store::reservation(&mut tx, order_id, true).await? else {
        return Ok(Reply::error(
            StatusCode::NOT_FOUND,
            "no_reservation",
            "the order has no reservation to commit",
        )
        .with("order_id", order_id.to_string()));
    };
    match (reservation.status, reservation.sku.as_deref()) {
        (ReservationStatus::Committed, _) => Ok(Reply::new(StatusCode::OK, committed)),
        (ReservationStatus::Released, _) => Ok(order_released(order_id)),
        (ReservationStatus::Reserved, Some(sku)) => {
            store::remove_units(&mut tx, sku, reservation.quantity).await?;
            store::set_status(&mut tx, order_id, ReservationStatus::Committed).await?;
            tx.commit().await?;
            tracing::info!(%order_id, sku, quantity = reservation.quantity, "reservation committed");
            metrics::counter!("inventory_commits_total").increment(1);
            Ok(Reply::new(StatusCode::OK, committed))
        }
        (ReservationStatus::Reserved, None) => Err(Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "a reservation without a SKU",
        )),
    }
}

async fn reservation_status(State(state): State<AppState>, Path(order_id): Path<String>) -> Reply {
    let order_id = match order_id_from_path(&order_id) {
        Ok(order_id) => order_id,
        Err(reply) => return reply,
    };
    let found = async {
        let mut conn = state.pool.acquire().await?;
        store::reservation(&mut conn, order_id, false).await
    }
    .await;
    match found {
        Ok(Some(reservation)) => Reply::new(
            StatusCode::OK,
            json!({
                "order_id": order_id,
                "status": reservation.status.as_str(),
                "quantity": reservation.quantity,
                "sku": reservation.sku,
                "reservation_id": reservation.reservation_id,
            }),
        ),
        Ok(None) => Reply::error(
            StatusCode::NOT_FOUND,
            "no_reservation",
            "the order has no reservation",
        )
        .with("order_id", order_id.to_string()),
        Err(error) => Reply::database(&error),
    }
}

async fn stock_level(State(state): State<AppState>, Path(sku): Path<String>) -> Reply {
    let sku = match sku_from_path(&sku) {
        Ok(sku) => sku,
        Err(reply) => return reply,
    };
    let found = async {
        let mut conn = state.pool.acquire().await?;
        store::stock(&mut conn, &sku).await
    }
    .await;
    match found {
        Ok(Some(stock)) => stock_reply(&stock),
        Ok(None) => Reply::error(
            StatusCode::NOT_FOUND,
            "unknown_sku",
            "no stock for this SKU",
        )
        .with("sku", sku),
        Err(error) => Reply::database(&error),
    }
}

async fn set_stock(State(state): State<AppState>, Path(sku): Path<String>, body: Bytes) -> Reply {
    set_stock_level(&state, &sku, &body)
        .await
        .unwrap_or_else(|reply| reply)
}

async fn set_stock_level(state: &AppState, sku: &str, body: &[u8]) -> Result<Reply, Reply> {
    let sku = sku_from_path(sku)?;
    let on_hand = Fields::parse(body)?.i32_at_least("on_hand", 0)?;
    let mut conn = state.pool.acquire().await?;
    match store::set_on_hand(&mut conn, &sku, on_hand).await {
        Ok(stock) => {
            tracing::info!(%sku, on_hand, "stock set (test mode)");
            Ok(stock_reply(&stock))
        }
        Err(sqlx::Error::Database(error))
            if error.constraint() == Some("stock_reserved_within_on_hand") =>
        {
            Ok(Reply::error(
                StatusCode::CONFLICT,
                "on_hand_below_reserved",
                format!("on_hand {on_hand} is below the units reserved for orders"),
            )
            .with("sku", sku))
        }
        Err(error) => Err(Reply::database(&error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_requests_share_a_fingerprint_whatever_their_spelling() {
        let a = ReserveRequest::parse(
            br#"{"order_id":"6f1c8a43-4c4e-4b3c-9a55-0e7f8f2f0b11","sku":"A-1","quantity":2}"#,
        )
        .unwrap();
        let b = ReserveRequest::parse(
            br#"{ "quantity": 2, "sku": "A-1", "order_id": "6f1c8a43-4c4e-4b3c-9a55-0e7f8f2f0b11" }"#,
        )
        .unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = ReserveRequest { quantity: 3, ..b };
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn quantities_must_be_positive_and_fit_an_i32() {
        for body in [
            r#"{"order_id":"6f1c8a43-4c4e-4b3c-9a55-0e7f8f2f0b11","sku":"A","quantity":0}"#,
            r#"{"order_id":"6f1c8a43-4c4e-4b3c-9a55-0e7f8f2f0b11","sku":"A","quantity":3000000000}"#,
        ] {
            let reply = ReserveRequest::parse(body.as_bytes()).unwrap_err();
            assert_eq!(reply.body["field"], "quantity", "{body}");
        }
    }
}
