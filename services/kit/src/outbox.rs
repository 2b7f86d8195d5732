//! The transactional outbox: an event is written in the same database transaction as the state
//! change it announces, and published to Kafka afterwards by the [`OutboxRelay`]. So an event
//! leaves if and only if its transaction committed; a request handler never talks to Kafka.
//!
//! ```no_run
//! use faultline_kit::outbox::{self, OutboxRelay};
//! # async fn demo(pool: sqlx::PgPool, producer: faultline_kit::kafka::EventProducer,
//! #               shutdown: tokio_util::sync::CancellationToken) -> Result<(), sqlx::Error> {
//! let mut tx = pool.begin().await?;
//! // ... UPDATE orders SET status = 'CONFIRMED' WHERE id = $1 ...
//! outbox::enqueue(&mut tx, "orders", "order-42", &serde_json::json!({"type": "OrderConfirmed"})).await?;
//! tx.commit().await?;
//!
//! // once per process, beside the HTTP server:
//! tokio::spawn(OutboxRelay::new(pool, producer).run(shutdown));
//! # Ok(()) }
//! ```
//!
//! Delivery is at least once: the relay marks rows published only after Kafka acknowledged
//! them, so a relay killed in between publishes those rows again. Each message carries the
//! row's `event-id` header ([`crate::kafka::EVENT_ID`]) for consumers to deduplicate on, and the
//! `traceparent` of the transaction that wrote it.
//!
//! Order: rows are published in id order, one relay at a time per database (a transaction
//! advisory lock; further relays stand by), with the producer keeping per-partition order. Ids
//! follow insertion, not commit, so two *concurrent* transactions' events may leave in either
//! order; events of one key stay ordered as long as their writers serialise on that key's row,
//! as an aggregate's writers do.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::kafka::{EventProducer, EVENT_ID};
use crate::trace::{TraceContext, TRACEPARENT};

/// The channel the outbox's insert trigger notifies when a transaction that wrote events
/// commits (kit migration 0004); the relay listens on it.
pub const WAKE_CHANNEL: &str = "faultline_outbox";

/// Advisory lock key held by the active relay (`hashtext('faultline.outbox')` would do as well;
/// a constant keeps it visible in `pg_locks`).
const RELAY_LOCK: i64 = 0x0fa1_7113_0b0c;

/// Writes an event to the outbox inside the caller's transaction (pass `&mut tx`); returns its
/// `event_id`. It carries the current trace context, so consumers continue the caller's trace.
pub async fn enqueue(
    conn: &mut PgConnection,
    topic: &str,
    key: &str,
    payload: &serde_json::Value,
) -> Result<Uuid, sqlx::Error> {
    let event_id = Uuid::new_v4();
    let traceparent = TraceContext::current().map(|context| context.child().to_traceparent());
    sqlx::query(
        "INSERT INTO outbox (event_id, topic, key, payload, traceparent) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event_id)
    .bind(topic)
    .bind(key)
    .bind(payload)
    .bind(traceparent)
    .execute(conn)
    .await?;
    Ok(event_id)
}

/// How many events wait to be published.
pub async fn backlog(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Publish(#[from] crate::kafka::PublishError),
}

/// Publishes committed outbox rows to Kafka and marks them published.
pub struct OutboxRelay {
    pool: PgPool,
    producer: EventProducer,
    batch_size: i64,
    poll_interval: Duration,
}

impl OutboxRelay {
    /// A relay publishing up to 100 rows per round. Idle, it waits for a transaction that wrote
    /// events to commit (a `NOTIFY` on [`WAKE_CHANNEL`]), and looks anyway every 100 ms, for
    /// wakes lost while its listening connection was down.
    pub fn new(pool: PgPool, producer: EventProducer) -> Self {
        Self {
            pool,
            producer,
            batch_size: 100,
            poll_interval: Duration::from_millis(100),
        }
    }

    pub fn batch_size(mut self, rows: i64) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Relays until `shutdown` is cancelled; a round in progress is finished first. Database
    /// and Kafka failures are logged and retried after a pause (commits do not cut it short):
    /// the rows stay in the outbox.
    pub async fn run(self, shutdown: CancellationToken) {
        let wake = Arc::new(Notify::new());
        let listening = tokio::spawn(listen(self.pool.clone(), wake.clone(), shutdown.clone()));
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            let pause = match self.relay_once().await {
                Ok(published) => {
                    failures = 0;
                    if published as i64 >= self.batch_size {
                        continue; // more may be waiting
                    }
                    self.poll_interval
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = (self.poll_interval * 2u32.saturating_pow(failures.min(5)))
                        .min(Duration::from_secs(5));
                    tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "outbox relay round failed");
                    pause
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
                () = wake.notified(), if failures == 0 => {}
            }
        }
        let _ = listening.await;
        tracing::info!("outbox relay stopped");
    }

    /// One round: publishes the oldest unpublished rows (up to the batch size) and marks them;
    /// returns how many were published. Another relay holding the lock means 0.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        let active: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !active {
            return Ok(0);
        }
        let rows = sqlx::query(
            "SELECT id, event_id, topic, key, payload, traceparent FROM outbox
             WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *tx)
        .await?;

        // Hand every row to the producer first, in id order, then await the acknowledgements:
        // one round trip per batch, and the producer keeps the order within each partition.
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.get("id");
            let event_id: Uuid = row.get("event_id");
            let topic: String = row.get("topic");
            let key: String = row.get("key");
            let payload: serde_json::Value = row.get("payload");
            let traceparent: Option<String> = row.get("traceparent");
            let payload = serde_json::to_vec(&payload).expect("a JSON value serialises");
            let event_id = event_id.to_string();
            let mut headers = vec![(EVENT_ID, event_id.as_str())];
            if let Some(traceparent) = &traceparent {
                headers.push((TRACEPARENT, traceparent.as_str()));
            }
            match self.producer.enqueue(&topic, &key, &payload, &headers) {
                Ok(delivery) => pending.push((id, delivery)),
                Err(error) => {
                    tracing::warn!(%error, "outbox relay could not enqueue; the rest waits for the next round");
                    break;
                }
            }
        }
        // Only the acknowledged prefix is marked, so a failure in the middle never lets a later
        // event count as published before an earlier one.
        let mut published = Vec::with_capacity(pending.len());
        let mut failure = None;
        for (id, delivery) in pending {
            match delivery.delivered().await {
                Ok(_) if failure.is_none() => published.push(id),
                Ok(_) => {}
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        if !published.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
                .bind(&published)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if let Ok(waiting) = backlog(&self.pool).await {
            metrics::gauge!("outbox_backlog").set(waiting as f64);
        }
        metrics::counter!("outbox_published_total").increment(published.len() as u64);
        match failure {
            Some(error) => Err(error.into()),
            None => Ok(published.len()),
        }
    }
}

/// Wakes the relay on each `NOTIFY` on [`WAKE_CHANNEL`] until `shutdown`, from a connection of
/// `pool` of its own; a lost connection is opened again after a second. A wake that arrives
/// while the relay is busy is kept for its next wait, so none is lost; those sent while the
/// connection was down are, which the relay's polling covers.
async fn listen(pool: PgPool, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = wake_on_commits(&pool, &wake) => {
                let Err(error) = outcome;
                tracing::debug!(%error, "outbox relay: listening for commits failed; polling meanwhile");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Listens on [`WAKE_CHANNEL`] and wakes the relay on each notification, until the connection
/// fails.
async fn wake_on_commits(pool: &PgPool, wake: &Notify) -> Result<std::convert::Infallible, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(WAKE_CHANNEL).await?;
    // Events may have committed before the listening began.
    wake.notify_one();
    loop {
        listener.recv().await?;
        wake.notify_one();
    }
}
