//! The notification service against real Postgres and Kafka (started by the harness, each link
//! through Toxiproxy): exactly one notification per event, dead letters, and a restart that
//! loses and repeats nothing. Run with `source .faultline/images.env` first.
//!
//! Each test starts its own stack (topic `orders` and group `notification` are fixed names).
//! rdkafka clients are dropped before the stack shuts down: their goodbye to a vanished broker
//! would block.

use std::future::Future;
use std::time::Duration;

use anyhow::{bail, Context};
use faultline_harness::infra::{Infra, InfraConfig};
use faultline_kit::kafka::{self, EventProducer};
use faultline_notification::{NotificationConfig, NotificationService};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

/// Polls `condition` every 50 ms until it holds, failing after `within`.
async fn eventually<F, Fut>(what: &str, within: Duration, mut condition: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {within:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn drop_blocking<T: Send + 'static>(client: T) {
    tokio::task::spawn_blocking(move || drop(client))
        .await
        .expect("dropping a Kafka client");
}

fn order_event(kind: &str, order_id: Uuid) -> Vec<u8> {
    json!({
        "type": kind, "order_id": order_id, "customer_id": "c-1", "sku": "sku-1",
        "quantity": 1, "amount_cents": 1200, "reason": null,
        "occurred_at": "2025-01-01T00:00:00Z",
    })
    .to_string()
    .into_bytes()
}

/// A running service and how to stop it.
struct Running {
    base: String,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), faultline_notification::NotificationError>>,
}

impl Running {
    async fn start(infra: &Infra) -> anyhow::Result<Self> {
        let config = NotificationConfig::from_pairs([
            (
                "NOTIFICATION_DATABASE_URL",
                infra.postgres_url("notification")?,
            ),
            (
                "NOTIFICATION_KAFKA_BOOTSTRAP",
                infra.kafka_bootstrap("notification")?,
            ),
        ])?;
        let service = NotificationService::start(&config).await?;
        let base = format!("http://{}", service.local_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(service.run(shutdown.clone()));
        Ok(Self {
            base,
            shutdown,
            task,
        })
    }

    /// Asks for shutdown and waits (bounded) until the service has stopped.
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .context("the service did not stop within 30 s")???;
        Ok(())
    }

    async fn notifications(&self, order_id: Uuid) -> anyhow::Result<Vec<Value>> {
        let response =
            reqwest::get(format!("{}/notifications?order_id={order_id}", self.base)).await?;
        anyhow::ensure!(
            response.status() == 200,
            "GET /notifications answered {}",
            response.status()
        );
        Ok(response.json().await?)
    }
}

async fn count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

/// Starts the stack, runs `checks` against it, and always shuts the stack down.
macro_rules! with_infra {
    ($checks:ident) => {{
        let infra = Infra::start(InfraConfig::with_clients(["notification"])).await?;
        let result = $checks(&infra).await;
        infra.shutdown().await?;
        result
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_event_gives_one_notification_even_when_delivered_twice() -> anyhow::Result<()> {
    with_infra!(each_event_gives_one_notification_even_when_delivered_twice_checks)
}

async fn each_event_gives_one_notification_even_when_delivered_twice_checks(
    infra: &Infra,
) -> anyhow::Result<()> {
    let service = Running::start(infra).await?;
    let producer = EventProducer::new(&infra.kafka_bootstrap("faultline")?)?;
    let order_id = Uuid::new_v4();
    let created = Uuid::new_v4().to_string();
    let confirmed = Uuid::new_v4().to_string();
    let key = order_id.to_string();
    for (kind, event_id) in [
        ("OrderCreated", &created),
        ("OrderConfirmed", &confirmed),
        ("OrderConfirmed", &confirmed), // a redelivery: same event id
    ] {
        producer
            .send(
                "orders",
                &key,
                &order_event(kind, order_id),
                &[("event-id", event_id)],
            )
            .await?;
    }
    // A last event on the same key (same partition) tells us when the redelivery was read.
    let marker = Uuid::new_v4().to_string();
    producer
        .send(
            "orders",
            &key,
            &order_event("OrderCancelled", order_id),
            &[("event-id", &marker)],
        )
        .await?;
    eventually("the last event is notified", WAIT, || async {
        let seen = service.notifications(order_id).await.unwrap_or_default();
        seen.iter().any(|n| n["event_id"] == marker.as_str())
    })
    .await?;
    let seen = service.notifications(order_id).await?;
    let ids: Vec<&str> = seen
        .iter()
        .map(|n| n["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        3,
        "one notification per distinct event: {seen:?}"
    );
    for id in [&created, &confirmed, &marker] {
        assert_eq!(
            ids.iter().filter(|seen| **seen == id.as_str()).count(),
            1,
            "{seen:?}"
        );
    }
    let created_row = seen
        .iter()
        .find(|n| n["event_id"] == created.as_str())
        .unwrap();
    assert_eq!(created_row["type"], "OrderCreated");
    assert_eq!(created_row["order_id"], order_id.to_string());
    assert!(created_row["created_at"]
        .as_str()
        .is_some_and(|at| at.contains('T')));

    let bad = reqwest::get(format!("{}/notifications", service.base)).await?;
    assert_eq!(bad.status(), 400, "order_id is required");

    drop_blocking(producer).await;
    service.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malformed_event_is_dead_lettered_and_later_events_still_flow() -> anyhow::Result<()> {
    with_infra!(a_malformed_event_is_dead_lettered_and_later_events_still_flow_checks)
}

async fn a_malformed_event_is_dead_lettered_and_later_events_still_flow_checks(
    infra: &Infra,
) -> anyhow::Result<()> {
    let service = Running::start(infra).await?;
    let bootstrap = infra.kafka_bootstrap("faultline")?;
    let producer = EventProducer::new(&bootstrap)?;
    let order_id = Uuid::new_v4();
    let key = order_id.to_string();
    producer
        .send("orders", &key, b"{not json", &[("event-id", "poison-1")])
        .await?;
    producer
        .send("orders", &key, &order_event("OrderCreated", order_id), &[]) // no event-id
        .await?;
    let good = Uuid::new_v4().to_string();
    producer
        .send(
            "orders",
            &key,
            &order_event("OrderCreated", order_id),
            &[("event-id", &good)],
        )
        .await?;

    eventually(
        "the good event after the poison ones is notified",
        WAIT,
        || async {
            service
                .notifications(order_id)
                .await
                .is_ok_and(|seen| seen.len() == 1 && seen[0]["event_id"] == good.as_str())
        },
    )
    .await?;

    let dlt: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", format!("judge-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()?;
    dlt.subscribe(&[&kafka::dead_letter_topic("orders")])?;
    let mut dead = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while dead.len() < 2 {
        // librdkafka reports passing conditions (a topic not yet in its metadata) as errors
        // and keeps consuming: skip them until the deadline.
        let message = match tokio::time::timeout_at(deadline, dlt.recv())
            .await
            .context("waiting for dead letters")?
        {
            Ok(message) => message,
            Err(error) => {
                eprintln!("consumer reported (transient): {error}");
                continue;
            }
        };
        let header = |name: &str| {
            message.headers().and_then(|headers| {
                headers
                    .iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
        };
        dead.push((
            String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
            header("dlt-reason"),
            header("dlt-consumer-group"),
        ));
    }
    drop_blocking(dlt).await;
    assert_eq!(dead[0].0, "{not json");
    assert!(
        dead[0].1.as_deref().is_some_and(|r| r.contains("JSON")),
        "{dead:?}"
    );
    assert!(
        dead[1].1.as_deref().is_some_and(|r| r.contains("event-id")),
        "{dead:?}"
    );
    assert!(dead.iter().all(|d| d.2.as_deref() == Some("notification")));

    drop_blocking(producer).await;
    service.stop().await
}

/// The offsets group `notification` has committed on `orders`, summed over partitions.
async fn committed_total(bootstrap: &str) -> anyhow::Result<i64> {
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "notification")
            .create()?;
        let metadata = consumer.fetch_metadata(Some("orders"), Duration::from_secs(10))?;
        let mut partitions = TopicPartitionList::new();
        for partition in metadata.topics()[0].partitions() {
            partitions.add_partition("orders", partition.id());
        }
        let committed = consumer.committed_offsets(partitions, Duration::from_secs(10))?;
        Ok(committed
            .elements()
            .iter()
            .map(|element| match element.offset() {
                Offset::Offset(offset) => offset,
                _ => 0,
            })
            .sum())
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_stopped_mid_stream_resumes_without_loss_or_duplicates() -> anyhow::Result<()> {
    with_infra!(a_consumer_stopped_mid_stream_resumes_without_loss_or_duplicates_checks)
}

async fn a_consumer_stopped_mid_stream_resumes_without_loss_or_duplicates_checks(
    infra: &Infra,
) -> anyhow::Result<()> {
    let bootstrap = infra.kafka_bootstrap("faultline")?;
    let producer = EventProducer::new(&bootstrap)?;
    let pool = PgPool::connect(&infra.postgres_url("faultline")?).await?;
    let first = Running::start(infra).await?;
    const EVENTS: usize = 60;
    let mut event_ids = Vec::new();
    for i in 0..EVENTS {
        let order_id = Uuid::new_v4();
        let event_id = Uuid::new_v4().to_string();
        producer
            .send(
                "orders",
                &order_id.to_string(),
                &order_event("OrderCreated", order_id),
                &[("event-id", &event_id)],
            )
            .await?;
        event_ids.push(event_id);
        if i == EVENTS / 3 {
            // Stop while events are still arriving and being handled.
            eventually("some events are notified", WAIT, || async {
                count(&pool).await > 0
            })
            .await?;
            break;
        }
    }
    first.stop().await?;
    let notified_at_stop = count(&pool).await;
    let committed = committed_total(&bootstrap).await?;
    assert_eq!(
        committed, notified_at_stop,
        "stopping commits exactly what was processed, the event in hand included"
    );

    // Events produced while the service is down wait for it.
    for _ in event_ids.len()..EVENTS {
        let order_id = Uuid::new_v4();
        let event_id = Uuid::new_v4().to_string();
        producer
            .send(
                "orders",
                &order_id.to_string(),
                &order_event("OrderCreated", order_id),
                &[("event-id", &event_id)],
            )
            .await?;
        event_ids.push(event_id);
    }
    let second = Running::start(infra).await?;
    eventually("every event is notified", WAIT, || async {
        count(&pool).await >= EVENTS as i64
    })
    .await?;
    second.stop().await?;

    let stored: Vec<String> = sqlx::query_scalar("SELECT event_id FROM notifications")
        .fetch_all(&pool)
        .await?;
    let mut expected = event_ids.clone();
    expected.sort();
    let mut stored_sorted = stored.clone();
    stored_sorted.sort();
    assert_eq!(stored_sorted, expected, "each event exactly once");
    let processed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE consumer = 'notification'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(processed, EVENTS as i64);
    assert_eq!(
        committed_total(&bootstrap).await?,
        EVENTS as i64,
        "everything committed"
    );

    pool.close().await;
    drop_blocking(producer).await;
    Ok(())
}
