//! The order service's SQL: the `orders` and `sagas` tables, and the transactions that change
//! an order's status together with the event announcing it (through the kit's outbox).
//!
//! Every write that other services or checkers can observe happens in one transaction with its
//! event: [`Store::create_order`] (order + saga + OrderCreated + idempotency record),
//! [`Store::confirm`] (CONFIRMED + OrderConfirmed) and [`Store::cancel`] (CANCELLED +
//! OrderCancelled). The saga's bookkeeping in between ([`Store::advance`],
//! [`Store::compensate`], [`Store::record_failure`]) is plain row updates.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool, order_id: uuid::Uuid) -> Result<(), sqlx::Error> {
//! use faultline_order::store::{SagaStep, Store};
//! let store = Store::new(pool);
//! store.advance(order_id, SagaStep::Charge).await?;
//! let saga = store.saga(order_id).await?.expect("the order exists");
//! assert_eq!(saga.step, SagaStep::Charge);
//! # Ok(()) }
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use faultline_kit::{idempotency, outbox};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

/// The topic order events are published to (key: the order id).
pub const ORDERS_TOPIC: &str = "orders";
/// Idempotency scope of order creation.
const CREATE_SCOPE: &str = "POST /orders";

/// What a client asks for in `POST /orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub customer_id: String,
    pub sku: String,
    pub quantity: i32,
    pub amount_cents: i64,
    pub card: String,
}

/// An order's status, as stored and served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

impl FromStr for OrderStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "PENDING" => Ok(Self::Pending),
            "CONFIRMED" => Ok(Self::Confirmed),
            "CANCELLED" => Ok(Self::Cancelled),
            other => Err(format!("unknown order status `{other}`")),
        }
    }
}

/// Why an order was cancelled; serialised as in the API (`out_of_stock`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    OutOfStock,
    CardDeclined,
    PaymentUnavailable,
    InventoryUnavailable,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfStock => "out_of_stock",
            Self::CardDeclined => "card_declined",
            Self::PaymentUnavailable => "payment_unavailable",
            Self::InventoryUnavailable => "inventory_unavailable",
        }
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CancelReason {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "out_of_stock" => Ok(Self::OutOfStock),
            "card_declined" => Ok(Self::CardDeclined),
            "payment_unavailable" => Ok(Self::PaymentUnavailable),
            "inventory_unavailable" => Ok(Self::InventoryUnavailable),
            other => Err(format!("unknown cancel reason `{other}`")),
        }
    }
}

/// The next thing a saga has to do (see [`crate::saga`] for the transitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SagaStep {
    Reserve,
    Charge,
    Commit,
    Refund,
    Release,
    Done,
}

impl SagaStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserve => "RESERVE",
            Self::Charge => "CHARGE",
            Self::Commit => "COMMIT",
            Self::Refund => "REFUND",
            Self::Release => "RELEASE",
            Self::Done => "DONE",
        }
    }
}

impl fmt::Display for SagaStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SagaStep {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "RESERVE" => Ok(Self::Reserve),
            "CHARGE" => Ok(Self::Charge),
            "COMMIT" => Ok(Self::Commit),
            "REFUND" => Ok(Self::Refund),
            "RELEASE" => Ok(Self::Release),
            "DONE" => Ok(Self::Done),
            other => Err(format!("unknown saga step `{other}`")),
        }
    }
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: Uuid,
    pub customer_id: String,
    pub sku: String,
    pub quantity: i32,
    pub amount_cents: i64,
    pub card: String,
    pub status: OrderStatus,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Order {
    /// The body of `GET /orders/{id}` (the card is never served).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "order_id": self.order_id,
            "status": self.status.as_str(),
            "reason": self.reason,
            "customer_id": self.customer_id,
            "sku": self.sku,
            "quantity": self.quantity,
            "amount_cents": self.amount_cents,
        })
    }

    /// The event announcing this order's current state; `kind` is `OrderCreated`, ...
    pub fn event(&self, kind: &str) -> serde_json::Value {
        json!({
            "type": kind,
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "sku": self.sku,
            "quantity": self.quantity,
            "amount_cents": self.amount_cents,
            "reason": self.reason,
            "occurred_at": Utc::now().to_rfc3339(),
        })
    }
}

/// A saga's persisted progress, with its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaRecord {
    pub order: Order,
    pub step: SagaStep,
    pub charge_attempted: bool,
    pub cancel_reason: Option<CancelReason>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// What [`Store::create_order`] did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// A new order (and saga) was created; `body` is the 202 answer.
    Created {
        order_id: Uuid,
        body: serde_json::Value,
    },
    /// The key was used before for the same request: its answer again.
    Replay {
        status: u16,
        body: serde_json::Value,
    },
    /// The first request with this key is still being handled.
    InProgress,
    /// The key was used before for a different request.
    KeyReused,
}

/// The order service's database access; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

/// The columns [`order_from_row`] reads, for `orders o`.
macro_rules! order_columns {
    () => {
        "o.order_id, o.customer_id, o.sku, o.quantity, o.amount_cents, o.card, o.status, o.reason, o.created_at"
    };
}

fn order_from_row(row: &sqlx::postgres::PgRow) -> Result<Order, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Order {
        order_id: row.try_get("order_id")?,
        customer_id: row.try_get("customer_id")?,
        sku: row.try_get("sku")?,
        quantity: row.try_get("quantity")?,
        amount_cents: row.try_get("amount_cents")?,
        card: row.try_get("card")?,
        status: status.parse().map_err(decode_error("status"))?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
    })
}

fn decode_error(column: &'static str) -> impl Fn(String) -> sqlx::Error {
    move |message| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: message.into(),
    }
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates an order unless `idempotency_key` was used before, all in one transaction:
    /// the key's claim, the PENDING order, its saga at RESERVE, the OrderCreated event and the
    /// stored 202 answer. `fingerprint` identifies the request (see
    /// [`faultline_kit::idempotency::fingerprint`]).
    pub async fn create_order(
        &self,
        idempotency_key: &str,
        fingerprint: &str,
        new_order: &NewOrder,
    ) -> Result<CreateOutcome, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        match idempotency::begin(&mut tx, CREATE_SCOPE, idempotency_key, fingerprint).await? {
            idempotency::Begin::Fresh => {}
            idempotency::Begin::Replay { status, body } => {
                return Ok(CreateOutcome::Replay { status, body })
            }
            idempotency::Begin::InProgress => return Ok(CreateOutcome::InProgress),
            idempotency::Begin::Conflict => return Ok(CreateOutcome::KeyReused),
        }
        let order = insert_order(&mut tx, new_order).await?;
        let order_id = order.order_id;
        sqlx::query("INSERT INTO sagas (order_id, step) VALUES ($1, 'RESERVE')")
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
        let body = json!({"order_id": order_id, "status": "PENDING"});
        idempotency::complete(&mut tx, CREATE_SCOPE, idempotency_key, 202, &body).await?;
        tx.commit().await?;
        Ok(CreateOutcome::Created { order_id, body })
    }

    /// Creates a PENDING order and its OrderCreated event, in one transaction, with no saga
    /// and no idempotency key: nothing will move it on. Test mode only (provider states); the
    /// order then ends by [`Store::confirm`] / [`Store::cancel`] like any other.
    pub async fn create_unsupervised(&self, new_order: &NewOrder) -> Result<Order, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let order = insert_order(&mut tx, new_order).await?;
        tx.commit().await?;
        Ok(order)
    }

    /// The order `order_id`, if it exists.
    pub async fn order(&self, order_id: Uuid) -> Result<Option<Order>, sqlx::Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders o WHERE o.order_id = $1"
        ))
        .bind(order_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// The saga of `order_id` with its order, if it exists.
    pub async fn saga(&self, order_id: Uuid) -> Result<Option<SagaRecord>, sqlx::Error> {
        let row = sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            ", s.step, s.charge_attempted, s.cancel_reason, s.attempts, s.last_error
             FROM sagas s JOIN orders o ON o.order_id = s.order_id WHERE s.order_id = $1"
        ))
        .bind(order_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let step: String = row.try_get("step")?;
        let cancel_reason: Option<String> = row.try_get("cancel_reason")?;
        Ok(Some(SagaRecord {
            order: order_from_row(&row)?,
            step: step.parse().map_err(decode_error("step"))?,
            charge_attempted: row.try_get("charge_attempted")?,
            cancel_reason: cancel_reason
                .map(|reason| reason.parse())
                .transpose()
                .map_err(decode_error("cancel_reason"))?,
            attempts: row.try_get("attempts")?,
            last_error: row.try_get("last_error")?,
        }))
    }

    /// Every saga not yet DONE, oldest first: what a starting process resumes.
    pub async fn unfinished_sagas(&self) -> Result<Vec<Uuid>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT s.order_id FROM sagas s JOIN orders o ON o.order_id = s.order_id
             WHERE s.step <> 'DONE' ORDER BY o.created_at",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Every saga not yet DONE whose row nothing wrote for `quiet` or longer, oldest first.
    pub async fn quiet_sagas(&self, quiet: std::time::Duration) -> Result<Vec<Uuid>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT s.order_id FROM sagas s JOIN orders o ON o.order_id = s.order_id
             WHERE s.step <> 'DONE' AND s.updated_at < now() - make_interval(secs => $1)
             ORDER BY o.created_at",
        )
        .bind(quiet.as_secs_f64())
        .fetch_all(&self.pool)
        .await
    }

    /// Moves the saga forward to `step`, clearing the previous step's failures.
    pub async fn advance(&self, order_id: Uuid, step: SagaStep) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE sagas SET step = $2, attempts = 0, last_error = NULL, updated_at = now()
             WHERE order_id = $1",
        )
        .bind(order_id)
        .bind(step.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves the saga forward to CHARGE and records, in the same write, that a charge request
    /// is about to leave: the next thing the saga does is send it, so one commit stands for
    /// [`Store::advance`] and [`Store::mark_charge_attempted`] (a crash in between compensates
    /// with a refund, which voids an order never charged).
    pub async fn advance_to_charge(&self, order_id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE sagas SET step = 'CHARGE', charge_attempted = true, attempts = 0,
             last_error = NULL, updated_at = now() WHERE order_id = $1",
        )
        .bind(order_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Starts compensating: the saga goes to `step` (REFUND or RELEASE) and will end with
    /// the order cancelled for `reason`.
    pub async fn compensate(
        &self,
        order_id: Uuid,
        step: SagaStep,
        reason: CancelReason,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE sagas SET step = $2, cancel_reason = $3, attempts = 0, last_error = NULL,
             updated_at = now() WHERE order_id = $1",
        )
        .bind(order_id)
        .bind(step.as_str())
        .bind(reason.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that a charge request is about to leave (so a crash from here on compensates
    /// with a refund).
    pub async fn mark_charge_attempted(&self, order_id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE sagas SET charge_attempted = true, updated_at = now() WHERE order_id = $1",
        )
        .bind(order_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records one failed attempt of the current step.
    pub async fn record_failure(&self, order_id: Uuid, error: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE sagas SET attempts = attempts + 1, last_error = $2, updated_at = now()
             WHERE order_id = $1",
        )
        .bind(order_id)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends the saga with the order CONFIRMED and OrderConfirmed in the outbox, in one
    /// transaction. Returns the order when this call made the change (`None`: it was final
    /// already, e.g. a re-run after a crash; then no second event is written).
    pub async fn confirm(&self, order_id: Uuid) -> Result<Option<Order>, sqlx::Error> {
        self.finish(order_id, OrderStatus::Confirmed, None).await
    }

    /// Ends the saga with the order CANCELLED for `reason` and OrderCancelled in the outbox,
    /// in one transaction; see [`Store::confirm`] for the answer.
    pub async fn cancel(
        &self,
        order_id: Uuid,
        reason: CancelReason,
    ) -> Result<Option<Order>, sqlx::Error> {
        self.finish(order_id, OrderStatus::Cancelled, Some(reason))
            .await
    }

    async fn finish(
        &self,
        order_id: Uuid,
        status: OrderStatus,
        reason: Option<CancelReason>,
    ) -> Result<Option<Order>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let order = finish_order(&mut tx, order_id, status, reason).await?;
        sqlx::query(
            "UPDATE sagas SET step = 'DONE', last_error = NULL, updated_at = now() WHERE order_id = $1",
        )
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        if let Some(order) = &order {
            let kind = match status {
                OrderStatus::Confirmed => "OrderConfirmed",
                _ => "OrderCancelled",
            };
            outbox::enqueue(
                &mut tx,
                ORDERS_TOPIC,
                &order_id.to_string(),
                &order.event(kind),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(order)
    }
}

/// PENDING → `status`; `None` when the order was not PENDING (its row stays untouched).
async fn finish_order(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: OrderStatus,
    reason: Option<CancelReason>,
) -> Result<Option<Order>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE orders AS o SET status = $2, reason = $3, updated_at = now()
         WHERE o.order_id = $1 AND o.status = 'PENDING' RETURNING ",
        order_columns!()
    ))
    .bind(order_id)
    .bind(status.as_str())
    .bind(reason.map(CancelReason::as_str))
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(order_from_row).transpose()
}

/// Inserts a PENDING order and enqueues its OrderCreated event, inside the caller's transaction.
async fn insert_order(conn: &mut PgConnection, new_order: &NewOrder) -> Result<Order, sqlx::Error> {
    let order_id = Uuid::new_v4();
    let row = sqlx::query(concat!(
        "INSERT INTO orders AS o (order_id, customer_id, sku, quantity, amount_cents, card, status)
         VALUES ($1, $2, $3, $4, $5, $6, 'PENDING') RETURNING ",
        order_columns!()
    ))
    .bind(order_id)
    .bind(&new_order.customer_id)
    .bind(&new_order.sku)
    .bind(new_order.quantity)
    .bind(new_order.amount_cents)
    .bind(&new_order.card)
    .fetch_one(&mut *conn)
    .await?;
    let order = order_from_row(&row)?;
    outbox::enqueue(
        conn,
        ORDERS_TOPIC,
        &order_id.to_string(),
        &order.event("OrderCreated"),
    )
    .await?;
    Ok(order)
}
