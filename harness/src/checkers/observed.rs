//! The services' final state, as the checkers see it: read once, directly from each service's
//! database (not through Toxiproxy) and from the `/admin/circuits` endpoints, after the run.
//!
//! Every field is plain data, so checker tests build an [`Observed`] by hand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, Row};

use super::CheckError;
use crate::stack::Stack;

/// Everything the checkers read from the services after a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observed {
    /// Order service: every order with its saga, by order id.
    pub orders: BTreeMap<String, OrderRow>,
    /// Payment service: what each order was charged and refunded, by order id (only orders
    /// payment has heard of).
    pub payments: BTreeMap<String, PaymentRow>,
    /// Inventory service: each order's reservation, by order id.
    pub reservations: BTreeMap<String, ReservationRow>,
    /// Inventory service: stock per SKU.
    pub stock: BTreeMap<String, StockRow>,
    /// `on_hand` per SKU before the run. [`Observed::collect`] cannot know it (the run set the
    /// stock up); the runner fills it. SKUs missing here are left out of stock conservation.
    pub initial_stock: BTreeMap<String, i64>,
    /// Order service: its outbox rows on topic `orders`, in id order.
    pub outbox: Vec<OutboxRow>,
    /// Notification service: one row per notified event.
    pub notifications: Vec<NotificationRow>,
    /// Circuit breakers: order's (`payment`, `inventory`) and gateway's (`order`).
    pub circuits: Vec<CircuitRecord>,
    /// Wall-clock time (ms since the Unix epoch) at which the history's clock read zero, i.e.
    /// when the runner created its `history::Recorder`. Circuit transitions carry wall-clock
    /// times and the history monotonic ones; this relates the two. The runner sets it; without
    /// it the circuit checker judges only *whether* a breaker opened or closed, not *when*.
    pub run_started_unix_ms: Option<u64>,
}

/// A row of order's `orders`, with its `sagas` row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OrderRow {
    pub order_id: String,
    /// `PENDING`, `CONFIRMED` or `CANCELLED`.
    pub status: String,
    pub reason: Option<String>,
    pub sku: String,
    pub quantity: i64,
    pub amount_cents: i64,
    /// The saga's next step (`RESERVE` … `DONE`); `None` if the order has no saga row.
    pub saga_step: Option<String>,
    /// Failed attempts of the current step.
    pub saga_attempts: i64,
    pub saga_last_error: Option<String>,
    /// How long the saga took, from the order's creation to its final status (order's
    /// `updated_at - created_at`, one clock); `None` while PENDING.
    pub saga_duration_ms: Option<u64>,
}

/// Payment's view of one order, from `charges` and `order_voids`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PaymentRow {
    pub order_id: String,
    /// Charges that took money (status CHARGED or REFUNDED).
    pub successful_charges: i64,
    /// Declined charge attempts.
    pub declined_charges: i64,
    /// Money taken (CHARGED + REFUNDED charges).
    pub charged_cents: i64,
    /// Money given back (REFUNDED charges).
    pub refunded_cents: i64,
    /// `charged_cents - refunded_cents`.
    pub net_cents: i64,
    /// Voided by a refund (a row in `order_voids`).
    pub voided: bool,
}

/// A row of inventory's `reservations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReservationRow {
    pub order_id: String,
    /// `None` for a release tombstone.
    pub sku: Option<String>,
    pub quantity: i64,
    /// `RESERVED`, `RELEASED` or `COMMITTED`.
    pub status: String,
}

/// A row of inventory's `stock`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StockRow {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
}

/// A row of order's `outbox` (topic `orders`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutboxRow {
    /// The outbox's sequence number.
    pub id: i64,
    /// The `event-id` header consumers deduplicate on.
    pub event_id: String,
    /// The message key: the order id.
    pub order_id: String,
    /// `payload.type`: `OrderCreated`, `OrderConfirmed` or `OrderCancelled`.
    pub event_type: String,
    /// Whether the relay published it (`published_at` set).
    pub published: bool,
}

/// A row of notification's `notifications`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NotificationRow {
    pub event_id: String,
    pub order_id: String,
    pub event_type: String,
}

/// One circuit breaker, as `/admin/circuits` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CircuitRecord {
    /// The service holding the breaker (the link's client): `order` or `gateway`.
    #[serde(default)]
    pub service: String,
    /// The dependency it guards (the link's server).
    pub dependency: String,
    /// `CLOSED`, `OPEN` or `HALF_OPEN` when read.
    pub state: String,
    /// Calls the breaker refused since it was created: how often it failed fast (0 when the
    /// service does not report it).
    #[serde(default)]
    pub rejected_calls_total: u64,
    /// Its wait in OPEN before probing, in milliseconds (0 when the service does not say).
    #[serde(default)]
    pub wait_in_open_ms: u64,
    /// The most recent transitions, oldest first. The breaker keeps a bounded number, and a
    /// restarted process starts with none.
    pub transitions: Vec<CircuitTransitionRecord>,
}

/// One state change of a breaker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CircuitTransitionRecord {
    pub from: String,
    pub to: String,
    pub at_unix_ms: u64,
}

/// Services whose breakers the circuit checker may need, the link's client side.
const SERVICES_WITH_CIRCUITS: [&str; 2] = ["order", "gateway"];

impl Observed {
    /// Reads the final state of the stack's services: their databases directly (unproxied) and
    /// the `/admin/circuits` of order and gateway. `initial_stock` and `run_started_unix_ms`
    /// are left for the runner to fill.
    pub async fn collect(stack: &Stack) -> Result<Observed, CheckError> {
        let mut observed = Observed::default();

        let mut order = connect(stack, "order").await?;
        observed.orders = read_orders(&mut order).await?;
        observed.outbox = read_outbox(&mut order).await?;
        let _ = order.close().await;

        let mut payment = connect(stack, "payment").await?;
        observed.payments = read_payments(&mut payment).await?;
        let _ = payment.close().await;

        let mut inventory = connect(stack, "inventory").await?;
        observed.reservations = read_reservations(&mut inventory).await?;
        observed.stock = read_stock(&mut inventory).await?;
        let _ = inventory.close().await;

        let mut notification = connect(stack, "notification").await?;
        observed.notifications = read_notifications(&mut notification).await?;
        let _ = notification.close().await;

        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| CheckError::Http {
                url: "(client)".into(),
                message: e.to_string(),
            })?;
        for service in SERVICES_WITH_CIRCUITS {
            let url = format!("{}/admin/circuits", stack.service_url(service)?);
            observed
                .circuits
                .extend(read_circuits(&http, &url, service).await?);
        }
        Ok(observed)
    }
}

impl Observed {
    /// Waits, at most `within`, until the asynchronous part of the system has caught up:
    /// order's outbox has no unpublished row and notification has as many notifications as
    /// there are published order events. The checkers judge the state the system settles
    /// in; one that never settles is judged as it stands when the wait ends (a lost event
    /// then shows as a violation). Returns how long it waited.
    pub async fn await_quiescent(
        stack: &Stack,
        within: std::time::Duration,
    ) -> Result<std::time::Duration, CheckError> {
        let started = std::time::Instant::now();
        let mut order = connect(stack, "order").await?;
        let mut notification = connect(stack, "notification").await?;
        loop {
            let (unpublished, published): (i64, i64) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE published_at IS NULL),
                        count(*) FILTER (WHERE published_at IS NOT NULL)
                   FROM outbox WHERE topic = 'orders'",
            )
            .fetch_one(&mut order)
            .await
            .map_err(db_error("order", "outbox"))?;
            let (notified,): (i64,) = sqlx::query_as("SELECT count(*) FROM notifications")
                .fetch_one(&mut notification)
                .await
                .map_err(db_error("notification", "notifications"))?;
            if (unpublished == 0 && notified >= published) || started.elapsed() >= within {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let _ = order.close().await;
        let _ = notification.close().await;
        Ok(started.elapsed())
    }
}

async fn connect(stack: &Stack, service: &'static str) -> Result<PgConnection, CheckError> {
    let url = stack.database_url(service)?;
    PgConnection::connect(&url)
        .await
        .map_err(|source| CheckError::Database {
            service,
            what: "connect",
            source,
        })
}

fn db_error(service: &'static str, what: &'static str) -> impl Fn(sqlx::Error) -> CheckError {
    move |source| CheckError::Database {
        service,
        what,
        source,
    }
}

async fn read_orders(conn: &mut PgConnection) -> Result<BTreeMap<String, OrderRow>, CheckError> {
    let rows = sqlx::query(
        "SELECT o.order_id::text AS order_id, o.status, o.reason, o.sku, o.quantity, o.amount_cents,
                s.step, COALESCE(s.attempts, 0) AS attempts, s.last_error,
                CASE WHEN o.status <> 'PENDING'
                     THEN (EXTRACT(EPOCH FROM (o.updated_at - o.created_at)) * 1000)::bigint END AS saga_ms
           FROM orders o LEFT JOIN sagas s ON s.order_id = o.order_id
          ORDER BY o.created_at",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error("order", "orders and sagas"))?;
    let mut orders = BTreeMap::new();
    for row in rows {
        let order = OrderRow {
            order_id: row.get("order_id"),
            status: row.get("status"),
            reason: row.get("reason"),
            sku: row.get("sku"),
            quantity: i64::from(row.get::<i32, _>("quantity")),
            amount_cents: row.get("amount_cents"),
            saga_step: row.get("step"),
            saga_attempts: i64::from(row.get::<i32, _>("attempts")),
            saga_last_error: row.get("last_error"),
            saga_duration_ms: row
                .get::<Option<i64>, _>("saga_ms")
                .map(|ms| ms.max(0) as u64),
        };
        orders.insert(order.order_id.clone(), order);
    }
    Ok(orders)
}

async fn read_outbox(conn: &mut PgConnection) -> Result<Vec<OutboxRow>, CheckError> {
    let rows = sqlx::query(
        "SELECT id, event_id::text AS event_id, key, COALESCE(payload->>'type', '') AS event_type,
                published_at IS NOT NULL AS published
           FROM outbox WHERE topic = 'orders' ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error("order", "outbox"))?;
    Ok(rows
        .into_iter()
        .map(|row| OutboxRow {
            id: row.get("id"),
            event_id: row.get("event_id"),
            order_id: row.get("key"),
            event_type: row.get("event_type"),
            published: row.get("published"),
        })
        .collect())
}

async fn read_payments(
    conn: &mut PgConnection,
) -> Result<BTreeMap<String, PaymentRow>, CheckError> {
    let rows = sqlx::query(
        "SELECT c.order_id::text AS order_id,
                count(*) FILTER (WHERE c.status IN ('CHARGED', 'REFUNDED')) AS successful,
                count(*) FILTER (WHERE c.status = 'DECLINED') AS declined,
                COALESCE(sum(c.amount_cents) FILTER (WHERE c.status IN ('CHARGED', 'REFUNDED')), 0)::bigint AS charged,
                COALESCE(sum(c.amount_cents) FILTER (WHERE c.status = 'REFUNDED'), 0)::bigint AS refunded
           FROM charges c GROUP BY c.order_id",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error("payment", "charges"))?;
    let mut payments = BTreeMap::new();
    for row in rows {
        let charged: i64 = row.get("charged");
        let refunded: i64 = row.get("refunded");
        let payment = PaymentRow {
            order_id: row.get("order_id"),
            successful_charges: row.get("successful"),
            declined_charges: row.get("declined"),
            charged_cents: charged,
            refunded_cents: refunded,
            net_cents: charged - refunded,
            voided: false,
        };
        payments.insert(payment.order_id.clone(), payment);
    }
    let voids = sqlx::query("SELECT order_id::text AS order_id FROM order_voids")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error("payment", "order_voids"))?;
    for row in voids {
        let order_id: String = row.get("order_id");
        payments
            .entry(order_id.clone())
            .or_insert_with(|| PaymentRow {
                order_id,
                ..Default::default()
            })
            .voided = true;
    }
    Ok(payments)
}

async fn read_reservations(
    conn: &mut PgConnection,
) -> Result<BTreeMap<String, ReservationRow>, CheckError> {
    let rows =
        sqlx::query("SELECT order_id::text AS order_id, sku, quantity, status FROM reservations")
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error("inventory", "reservations"))?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let reservation = ReservationRow {
                order_id: row.get("order_id"),
                sku: row.get("sku"),
                quantity: i64::from(row.get::<i32, _>("quantity")),
                status: row.get("status"),
            };
            (reservation.order_id.clone(), reservation)
        })
        .collect())
}

async fn read_stock(conn: &mut PgConnection) -> Result<BTreeMap<String, StockRow>, CheckError> {
    let rows = sqlx::query("SELECT sku, on_hand, reserved FROM stock")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error("inventory", "stock"))?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let stock = StockRow {
                sku: row.get("sku"),
                on_hand: i64::from(row.get::<i32, _>("on_hand")),
                reserved: i64::from(row.get::<i32, _>("reserved")),
            };
            (stock.sku.clone(), stock)
        })
        .collect())
}

async fn read_notifications(conn: &mut PgConnection) -> Result<Vec<NotificationRow>, CheckError> {
    let rows = sqlx::query(
        "SELECT event_id, order_id::text AS order_id, type FROM notifications ORDER BY created_at",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error("notification", "notifications"))?;
    Ok(rows
        .into_iter()
        .map(|row| NotificationRow {
            event_id: row.get("event_id"),
            order_id: row.get("order_id"),
            event_type: row.get("type"),
        })
        .collect())
}

async fn read_circuits(
    http: &reqwest::Client,
    url: &str,
    service: &str,
) -> Result<Vec<CircuitRecord>, CheckError> {
    let failed = |message: String| CheckError::Http {
        url: url.to_string(),
        message,
    };
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(failed(format!("answered {status}: {body}")));
    }
    let mut circuits: Vec<CircuitRecord> = response
        .json()
        .await
        .map_err(|e| failed(format!("not a JSON array of circuit snapshots: {e}")))?;
    for circuit in &mut circuits {
        circuit.service = service.to_string();
    }
    Ok(circuits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuit_snapshots_of_the_admin_endpoint_decode() {
        // The shape of `faultline_kit::resilience::CircuitSnapshot` as `/admin/circuits` serves it.
        let body = r#"[{"dependency": "payment", "state": "HALF_OPEN", "failure_rate": 60.0,
            "slow_call_rate": null, "buffered_calls": 10, "failed_calls": 6, "slow_calls": 0,
            "not_permitted_calls": 4, "transitions": [
              {"from": "CLOSED", "to": "OPEN", "at_unix_ms": 1700000000000},
              {"from": "OPEN", "to": "HALF_OPEN", "at_unix_ms": 1700000005000}]}]"#;
        let circuits: Vec<CircuitRecord> = serde_json::from_str(body).unwrap();
        assert_eq!(circuits[0].dependency, "payment");
        assert_eq!(circuits[0].state, "HALF_OPEN");
        assert_eq!(circuits[0].transitions[1].at_unix_ms, 1_700_000_005_000);
        assert_eq!(circuits[0].service, "", "filled in by read_circuits");
    }

    /// Runs the readers' SQL against real, migrated databases and decodes every column.
    /// Needs a Postgres server holding the four service databases, migrated, with at least one
    /// order, charge, void, reservation, stock row, outbox row and notification:
    /// `FAULTLINE_CHECKERS_PG=postgres://postgres@%2Ftmp%2Fckpg:55432 cargo test -p
    /// faultline-harness --lib checkers -- --ignored`. The chaos end-to-end test covers the same
    /// through `Observed::collect`.
    #[tokio::test]
    #[ignore = "needs FAULTLINE_CHECKERS_PG: a Postgres server with the services' databases migrated and filled"]
    async fn the_readers_decode_every_column_of_the_migrated_tables() {
        let base = std::env::var("FAULTLINE_CHECKERS_PG").expect("FAULTLINE_CHECKERS_PG");
        let connect = |db: &str| {
            let url = format!("{base}/{db}");
            async move { PgConnection::connect(&url).await.unwrap() }
        };
        let mut order = connect("order").await;
        let orders = read_orders(&mut order).await.unwrap();
        let outbox = read_outbox(&mut order).await.unwrap();
        let mut payment = connect("payment").await;
        let payments = read_payments(&mut payment).await.unwrap();
        let mut inventory = connect("inventory").await;
        let reservations = read_reservations(&mut inventory).await.unwrap();
        let stock = read_stock(&mut inventory).await.unwrap();
        let mut notification = connect("notification").await;
        let notifications = read_notifications(&mut notification).await.unwrap();
        assert!(!orders.is_empty() && !outbox.is_empty() && !payments.is_empty());
        assert!(!reservations.is_empty() && !stock.is_empty() && !notifications.is_empty());
        assert!(orders
            .values()
            .all(|o| (o.status == "PENDING") == o.saga_duration_ms.is_none()));
        assert!(payments
            .values()
            .all(|p| p.net_cents == p.charged_cents - p.refunded_cents));
        assert!(payments.values().any(|p| p.voided), "order_voids read");
        eprintln!("{orders:#?}\n{outbox:#?}\n{payments:#?}\n{reservations:#?}\n{stock:#?}\n{notifications:#?}");
    }
}
