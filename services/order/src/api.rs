//! The order service's HTTP API (see `services/README.md`):
//!
//! - `POST /orders` (header `Idempotency-Key`): creates a PENDING order and starts its saga →
//!   `202 {"order_id", "status": "PENDING"}`; the same key and request answer the same again,
//!   the same key with another request → `422 idempotency_key_reused`.
//! - `GET /orders/{order_id}` → the order, or `404 order_not_found`. With `?wait_ms=N`
//!   (0–10000) a PENDING order's read waits until its saga ends, at most N ms, then answers
//!   the order as it stands — one read instead of polling; `400 invalid_wait` for another
//!   value.
//!
//! Errors are `{"error": "<code>", "message": "..."}`. A database that cannot be reached is a
//! `503 unavailable`, never a half-made order: creation is one transaction.
//!
//! ```no_run
//! # fn demo(state: faultline_order::api::ApiState) {
//! let app: axum::Router = faultline_order::api::router(state);
//! # }
//! ```

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use faultline_kit::idempotency;
use faultline_kit::wait::wait_of;
use serde_json::json;
use uuid::Uuid;

use crate::saga::SagaWorker;
use crate::store::{CreateOutcome, NewOrder, Order, OrderStatus, Store};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub store: Store,
    pub sagas: SagaWorker,
}

/// `POST /orders` and `GET /orders/{order_id}`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/orders", post(create_order))
        .route("/orders/{order_id}", get(get_order))
        .with_state(state)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

fn database_error(failure: sqlx::Error) -> Response {
    tracing::warn!(error = %failure, "database unavailable");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("the order database did not answer: {failure}"),
    )
}

/// Checks a parsed request; the message names the offending field.
fn validate(order: &NewOrder) -> Result<(), String> {
    let blank = [
        ("customer_id", &order.customer_id),
        ("sku", &order.sku),
        ("card", &order.card),
    ]
    .into_iter()
    .find(|(_, value)| value.trim().is_empty());
    if let Some((field, _)) = blank {
        return Err(format!("`{field}` must not be empty"));
    }
    if order.quantity <= 0 {
        return Err(format!("`quantity` must be > 0, got {}", order.quantity));
    }
    if order.amount_cents <= 0 {
        return Err(format!(
            "`amount_cents` must be > 0, got {}",
            order.amount_cents
        ));
    }
    Ok(())
}

async fn create_order(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing_idempotency_key",
            "POST /orders needs an Idempotency-Key header",
        );
    };
    let new_order: NewOrder = match serde_json::from_slice(&body) {
        Ok(order) => order,
        Err(parse_error) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("expected {{\"customer_id\", \"sku\", \"quantity\", \"amount_cents\", \"card\"}}: {parse_error}"),
            )
        }
    };
    if let Err(message) = validate(&new_order) {
        return error(StatusCode::BAD_REQUEST, "invalid_request", message);
    }
    // The parsed request, re-serialised, so formatting differences are the same request.
    let canonical = serde_json::to_vec(&new_order).expect("a request serialises");
    let fingerprint = idempotency::fingerprint(&canonical);
    match state
        .store
        .create_order(key, &fingerprint, &new_order)
        .await
    {
        Ok(CreateOutcome::Created { order_id, body }) => {
            tracing::info!(%order_id, sku = %new_order.sku, "order created");
            state.sagas.submit(order_id);
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Ok(CreateOutcome::Replay { status, body }) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED),
            Json(body),
        )
            .into_response(),
        Ok(CreateOutcome::InProgress) => error(
            StatusCode::CONFLICT,
            "request_in_progress",
            "a request with this Idempotency-Key is still being handled; retry shortly",
        ),
        Ok(CreateOutcome::KeyReused) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        ),
        Err(db_error) => database_error(db_error),
    }
}

async fn get_order(
    State(state): State<ApiState>,
    Path(order_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Ok(order_id) = order_id.parse::<Uuid>() else {
        return error(
            StatusCode::NOT_FOUND,
            "order_not_found",
            format!("`{order_id}` is not an order id (a UUID)"),
        );
    };
    let wait = match wait_of(query.as_deref()) {
        Ok(ms) => std::time::Duration::from_millis(ms),
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_wait", message),
    };
    if wait.is_zero() {
        // A plain read: nothing to wait for, nothing to watch.
        return answer(order_id, state.store.order(order_id).await);
    }
    let deadline = tokio::time::Instant::now() + wait;
    let mut at_bound = false;
    loop {
        let watch = state.sagas.watch(order_id);
        let mut ended = Box::pin(Arc::clone(&watch).notified_owned());
        ended.as_mut().enable();
        let read = state.store.order(order_id).await;
        let pending = matches!(&read, Ok(Some(order)) if order.status == OrderStatus::Pending);
        if !pending || at_bound || tokio::time::Instant::now() >= deadline {
            drop(ended);
            state.sagas.unwatch(order_id, watch);
            return answer(order_id, read);
        }
        // Woken by the saga's end, or at the bound: read once more either way.
        at_bound = tokio::time::timeout_at(deadline, ended).await.is_err();
        state.sagas.unwatch(order_id, watch);
    }
}

/// The answer to a read of `order_id`.
fn answer(order_id: Uuid, read: Result<Option<Order>, sqlx::Error>) -> Response {
    match read {
        Ok(Some(order)) => Json(order.to_json()).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "order_not_found",
            format!("no order {order_id}"),
        ),
        Err(db_error) => database_error(db_error),
    }
}
