//! The reference services' final state, as its checkers see it: read once per run, directly
//! from each service's database (not through Toxiproxy), after the run settled, and shared by
//! every checker through the run's [`Facts`].
//!
//! Every field is plain data, so checker tests build an [`Observed`] by hand.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{Connection, PgConnection, Row};

use faultline_harness::checkers::{CheckContext, CheckError, Facts};
use faultline_harness::history::{EventType, History, Op};
use faultline_harness::stack::Stack;

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
    /// `on_hand` per SKU before the run. [`Observed::collect`] cannot know it: the workload set
    /// the stock up ([`InitialStock`], by default what its set-up requests' answers say,
    /// [`initial_stock_set_by`]). SKUs missing here are left out of stock conservation.
    pub initial_stock: BTreeMap<String, i64>,
    /// Order service: its outbox rows on topic `orders`, in id order.
    pub outbox: Vec<OutboxRow>,
    /// Notification service: one row per notified event.
    pub notifications: Vec<NotificationRow>,
}

/// `on_hand` per SKU as the workload seeded it, kept in the run's facts for
/// [`Observed::initial_stock`]: a Rust workload may insert it; otherwise the first checker
/// fills it from the history's set-up answers.
#[derive(Debug, Clone, Default)]
pub struct InitialStock(pub BTreeMap<String, i64>);

/// `on_hand` per SKU as the history's answered `PUT /admin/stock/{sku}` requests set it
/// (inventory answers with the stock row it wrote); the last answer for a SKU counts.
pub fn initial_stock_set_by(history: &History) -> BTreeMap<String, i64> {
    let mut stock = BTreeMap::new();
    for (invoke, done) in history.pairs() {
        let Op::Request { method, path, .. } = &invoke.op else {
            continue;
        };
        if done.event_type != EventType::Ok
            || method != "PUT"
            || !path.starts_with("/admin/stock/")
        {
            continue;
        }
        let body = &done.value["body"];
        if let (Some(sku), Some(on_hand)) = (body["sku"].as_str(), body["on_hand"].as_i64()) {
            stock.insert(sku.to_string(), on_hand);
        }
    }
    stock
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

/// How long the checkers wait for order's outbox and notification to catch up.
pub const QUIESCENCE_BOUND: std::time::Duration = std::time::Duration::from_secs(30);

impl Observed {
    /// The run's observation: read once (and kept in its facts), with the initial stock the
    /// workload seeded.
    pub async fn of(run: &CheckContext<'_>) -> Result<std::sync::Arc<Observed>, CheckError> {
        if run.facts.get::<InitialStock>().is_none() {
            // A declarative workload sets stock with set-up requests: their answers say what
            // each SKU held when the load began.
            run.facts.insert(InitialStock(initial_stock_set_by(run.history)));
        }
        Self::of_stack(run.stack, run.facts).await
    }

    /// [`Observed::of`], from the stack and facts of a run.
    pub async fn of_stack(
        stack: &Stack,
        facts: &Facts,
    ) -> Result<std::sync::Arc<Observed>, CheckError> {
        if let Some(observed) = facts.get::<Observed>() {
            return Ok(observed);
        }
        // Events still on their way to notification are not lost ones: judged once it has
        // caught up (or the bound passed, and what is missing is a violation).
        Self::await_quiescent(stack, QUIESCENCE_BOUND).await?;
        let mut observed = Self::collect(stack).await?;
        if let Some(stock) = facts.get::<InitialStock>() {
            observed.initial_stock = stock.0.clone();
        }
        Ok(facts.insert(observed))
    }

    /// Reads the final state of the stack's services, their databases directly (unproxied).
    /// `initial_stock` is left empty.
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
        let mut pauses = faultline_harness::workload::Pauses::default();
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
            pauses.wait().await;
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
            service: service.into(),
            what: "connect".into(),
            source,
        })
}

fn db_error(service: &'static str, what: &'static str) -> impl Fn(sqlx::Error) -> CheckError {
    move |source| CheckError::Database {
        service: service.into(),
        what: what.into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_stock_is_what_answered_stock_set_ups_wrote_the_last_one_counting() {
        use faultline_harness::history::{Process, Recorder};
        use serde_json::json;
        let recorder = Recorder::new();
        let set = |sku: &str, on_hand: i64, answered: bool| {
            let pending = recorder.invoke(
                Process::Probe,
                Op::Request {
                    operation: "stock".into(),
                    method: "PUT".into(),
                    path: format!("/admin/stock/{sku}"),
                    key: sku.into(),
                    kind: None,
                },
            );
            let body = json!({"status": 200, "body": {"sku": sku, "on_hand": on_hand, "reserved": 0}});
            if answered {
                pending.ok(body);
            } else {
                pending.fail(json!({"status": 409}));
            }
        };
        set("a", 10, true);
        set("a", 25, true);
        set("b", 7, false);
        set("c", 0, true);
        // A read of the same path is not a set-up.
        recorder
            .invoke(
                Process::Client(0),
                Op::Request {
                    operation: "read".into(),
                    method: "GET".into(),
                    path: "/admin/stock/c".into(),
                    key: "c".into(),
                    kind: None,
                },
            )
            .ok(json!({"body": {"sku": "c", "on_hand": 99}}));
        let stock = initial_stock_set_by(&recorder.finish());
        assert_eq!(stock, BTreeMap::from([("a".into(), 25), ("c".into(), 0)]));
    }

    /// Runs the readers' SQL against real, migrated databases and decodes every column.
    /// Needs a Postgres server holding the four service databases, migrated, with at least one
    /// order, charge, void, reservation, stock row, outbox row and notification:
    /// `FAULTLINE_CHECKERS_PG=postgres://postgres@%2Ftmp%2Fckpg:55432 cargo test -p
    /// faultline-reference --lib observed -- --ignored`. The chaos end-to-end test covers the same
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
