//! The order service as a whole — HTTP API, idempotency, events on Kafka, circuits, and a saga
//! resumed by a restarted service — against real Postgres and Kafka, with payment and inventory
//! played by an in-process stub that follows `services/README.md`.
//! Run with `source .faultline/images.env && cargo test -p faultline-order --test service`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use axum::extract::{Json, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use faultline_harness::infra::{Infra, InfraConfig};
use faultline_order::{Config, Service};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// Polls `condition` every 50 ms until it holds, failing after [`WAIT`].
async fn eventually<F, Fut>(what: &str, mut condition: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await? {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {WAIT:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Payment and inventory in one stub: `sold-out` is out of stock, the README's declining card
/// declines, and payment answers 503 while `payment_down` is set.
#[derive(Default)]
struct Stub {
    payment_down: AtomicBool,
}

async fn start_stub(stub: Arc<Stub>) -> anyhow::Result<SocketAddr> {
    let app = Router::new()
        .route(
            "/payments/charges",
            post(
                |State(stub): State<Arc<Stub>>, Json(body): Json<Value>| async move {
                    if stub.payment_down.load(Ordering::SeqCst) {
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Json(json!({"error": "down"})),
                        );
                    }
                    if body["card"] == "4000000000000002" {
                        return (
                            StatusCode::PAYMENT_REQUIRED,
                            Json(json!({"error": "card_declined", "status": "DECLINED"})),
                        );
                    }
                    (StatusCode::CREATED, Json(json!({"status": "CHARGED"})))
                },
            ),
        )
        .route(
            "/payments/refunds",
            post(|| async { (StatusCode::CREATED, Json(json!({"status": "VOIDED"}))) }),
        )
        .route(
            "/inventory/reservations",
            post(|Json(body): Json<Value>| async move {
                if body["sku"] == "sold-out" {
                    return (
                        StatusCode::CONFLICT,
                        Json(json!({"error": "out_of_stock", "available": 0})),
                    );
                }
                (StatusCode::CREATED, Json(json!({"status": "RESERVED"})))
            }),
        )
        .route(
            "/inventory/reservations/{order_id}/commit",
            post(|| async { Json(json!({"status": "COMMITTED"})) }),
        )
        .route(
            "/inventory/reservations/{order_id}/release",
            post(|| async { Json(json!({"status": "RELEASED"})) }),
        )
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}

/// A started service and how to stop it.
struct Running {
    base: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(config: Config) -> anyhow::Result<Self> {
        let service = Service::start(config).await?;
        let base = format!("http://{}", service.local_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(service.run(shutdown.clone()));
        Ok(Self {
            base,
            shutdown,
            task,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .context("the service did not stop within 30 s")??
    }
}

fn order_body(sku: &str, card: &str) -> Value {
    json!({"customer_id": "c-7", "sku": sku, "quantity": 1, "amount_cents": 500, "card": card})
}

async fn post_order(
    http: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let mut request = http.post(format!("{base}/orders")).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await?;
    Ok((response.status().as_u16(), response.json().await?))
}

async fn get_json(http: &reqwest::Client, url: String) -> anyhow::Result<(u16, Value)> {
    let response = http.get(url).send().await?;
    Ok((response.status().as_u16(), response.json().await?))
}

async fn await_status(
    http: &reqwest::Client,
    base: &str,
    order_id: &str,
    status: &str,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, order) = get_json(http, format!("{base}/orders/{order_id}")).await?;
        if order["status"] == status {
            return Ok(order);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "order {order_id} not {status} within {WAIT:?}; last seen {order}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn order_service_serves_orders_publishes_events_and_resumes_sagas_after_restart(
) -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::with_clients(["order"])).await?;
    let stub = Arc::new(Stub::default());
    let stub_address = start_stub(Arc::clone(&stub)).await?;
    let database_url = infra.postgres_url("order")?;
    let bootstrap = infra.kafka_bootstrap("order")?;
    let config = Config::from_pairs([
        ("ORDER_DATABASE_URL", database_url.clone()),
        ("ORDER_KAFKA_BOOTSTRAP", bootstrap.clone()),
        ("ORDER_PAYMENT_URL", format!("http://{stub_address}")),
        ("ORDER_INVENTORY_URL", format!("http://{stub_address}/")),
        ("ORDER_STEP_DEADLINE_MS", "60000".into()),
        ("ORDER_STEP_BACKOFF_MS", "20".into()),
        ("ORDER_STEP_BACKOFF_MAX_MS", "100".into()),
    ])?;
    let reader: StreamConsumer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            infra.kafka_bootstrap(faultline_harness::infra::HARNESS_CLIENT)?,
        )
        .set("group.id", format!("judge-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;

    let result = scenario(&stub, config, &database_url, &reader).await;
    tokio::task::spawn_blocking(move || drop(reader)).await?;
    infra.shutdown().await?;
    result
}

async fn scenario(
    stub: &Stub,
    config: Config,
    database_url: &str,
    reader: &StreamConsumer,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let service = Running::start(config.clone()).await?;
    let base = service.base.clone();

    // Plumbing: ready (database and Kafka), both circuits registered.
    let (status, ready) = get_json(&http, format!("{base}/health/ready")).await?;
    ensure!(status == 200, "ready: {status} {ready}");
    let (_, circuits) = get_json(&http, format!("{base}/admin/circuits")).await?;
    let names: Vec<&str> = circuits
        .as_array()
        .context("circuits")?
        .iter()
        .filter_map(|c| c["dependency"].as_str())
        .collect();
    ensure!(names == ["inventory", "payment"], "circuits: {circuits}");

    // Creation and idempotency.
    let body = order_body("sku-9", "4242424242424242");
    let (status, error) = post_order(&http, &base, None, &body).await?;
    ensure!(
        status == 400 && error["error"] == "missing_idempotency_key",
        "without a key: {status} {error}"
    );
    let (status, created) = post_order(&http, &base, Some("key-1"), &body).await?;
    ensure!(
        status == 202 && created["status"] == "PENDING",
        "created: {status} {created}"
    );
    let (status, replay) = post_order(&http, &base, Some("key-1"), &body).await?;
    ensure!(
        status == 202 && replay == created,
        "replay: {status} {replay}, first {created}"
    );
    let (status, reused) = post_order(
        &http,
        &base,
        Some("key-1"),
        &order_body("sku-other", "4242424242424242"),
    )
    .await?;
    ensure!(
        status == 422 && reused["error"] == "idempotency_key_reused",
        "reused key: {status} {reused}"
    );
    let (status, invalid) = post_order(&http, &base, Some("key-bad"), &json!({"sku": "x"})).await?;
    ensure!(
        status == 400 && invalid["error"] == "invalid_request",
        "invalid: {status} {invalid}"
    );
    let (status, missing) =
        get_json(&http, format!("{base}/orders/{}", uuid::Uuid::new_v4())).await?;
    ensure!(status == 404, "unknown order: {status} {missing}");

    // The three ends, through the real HTTP clients.
    let confirmed_id = created["order_id"]
        .as_str()
        .context("order_id")?
        .to_string();
    let confirmed = await_status(&http, &base, &confirmed_id, "CONFIRMED").await?;
    ensure!(
        confirmed
            == json!({"order_id": confirmed_id, "status": "CONFIRMED", "reason": null, "customer_id": "c-7", "sku": "sku-9", "quantity": 1, "amount_cents": 500}),
        "confirmed order: {confirmed}"
    );
    let (_, declined) = post_order(
        &http,
        &base,
        Some("key-2"),
        &order_body("sku-9", "4000000000000002"),
    )
    .await?;
    let declined = await_status(
        &http,
        &base,
        declined["order_id"].as_str().context("order_id")?,
        "CANCELLED",
    )
    .await?;
    ensure!(
        declined["reason"] == "card_declined",
        "declined: {declined}"
    );
    let (_, sold_out) = post_order(
        &http,
        &base,
        Some("key-3"),
        &order_body("sold-out", "4242424242424242"),
    )
    .await?;
    let sold_out = await_status(
        &http,
        &base,
        sold_out["order_id"].as_str().context("order_id")?,
        "CANCELLED",
    )
    .await?;
    ensure!(sold_out["reason"] == "out_of_stock", "sold out: {sold_out}");

    // Events: OrderCreated then OrderConfirmed for the first order, keyed by it, with event ids.
    reader.subscribe(&["orders"])?;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.len() < 2 {
        let received = tokio::time::timeout_at(deadline, reader.recv())
            .await
            .context("no event within 30 s")?;
        // librdkafka reports passing conditions (a topic not yet in the metadata it holds, a
        // broker connection going down) as errors and keeps consuming: skip them.
        let message = match received {
            Ok(message) => message,
            Err(error) => {
                eprintln!("consumer reported (transient): {error}");
                continue;
            }
        };
        if message.key() != Some(confirmed_id.as_bytes()) {
            continue;
        }
        let event: Value = serde_json::from_slice(message.payload().unwrap_or_default())?;
        let has_event_id = message.headers().is_some_and(|headers| {
            headers
                .iter()
                .any(|h| h.key == "event-id" && h.value.is_some())
        });
        ensure!(has_event_id, "event without an event-id header: {event}");
        ensure!(
            event["order_id"] == confirmed_id.as_str()
                && event["amount_cents"] == 500
                && event["occurred_at"].is_string(),
            "event: {event}"
        );
        seen.push(event["type"].as_str().unwrap_or_default().to_string());
    }
    ensure!(
        seen == ["OrderCreated", "OrderConfirmed"],
        "events: {seen:?}"
    );

    // A read may wait for the saga: with payment down the order stays PENDING, so a read
    // with `wait_ms` answers PENDING at its bound; one waiting longer answers as soon as the
    // saga ends, once payment is back.
    let (status, bad) = get_json(&http, format!("{base}/orders/{confirmed_id}?wait_ms=soon")).await?;
    ensure!(
        status == 400 && bad["error"] == "invalid_wait",
        "a bad wait: {status} {bad}"
    );
    stub.payment_down.store(true, Ordering::SeqCst);
    let (_, held) = post_order(
        &http,
        &base,
        Some("key-5"),
        &order_body("sku-9", "4242424242424242"),
    )
    .await?;
    let held = held["order_id"].as_str().context("order_id")?.to_string();
    let asked = std::time::Instant::now();
    let (status, still) = get_json(&http, format!("{base}/orders/{held}?wait_ms=300")).await?;
    ensure!(
        status == 200 && still["status"] == "PENDING" && asked.elapsed() >= Duration::from_millis(300),
        "a read at its bound: {status} {still} after {:?}",
        asked.elapsed()
    );
    let waiting = {
        let (http, url) = (http.clone(), format!("{base}/orders/{held}?wait_ms=10000"));
        tokio::spawn(async move { get_json(&http, url).await })
    };
    let back = std::time::Instant::now();
    stub.payment_down.store(false, Ordering::SeqCst);
    let (status, done) = waiting.await??;
    // Woken by the saga's end, not answered at its 10 s bound (the saga retries payment
    // every 100 ms at most).
    ensure!(
        status == 200 && done["status"] == "CONFIRMED" && back.elapsed() < Duration::from_secs(8),
        "a read that waited for the saga: {status} {done} after {:?}",
        back.elapsed()
    );

    // Restart mid-saga: payment is down, the saga waits at CHARGE; a new process finishes it.
    stub.payment_down.store(true, Ordering::SeqCst);
    let (_, waiting) = post_order(
        &http,
        &base,
        Some("key-4"),
        &order_body("sku-9", "4242424242424242"),
    )
    .await?;
    let waiting_id: uuid::Uuid = waiting["order_id"].as_str().context("order_id")?.parse()?;
    let pool = sqlx::PgPool::connect(database_url).await?;
    eventually("the saga has failed at CHARGE", || async {
        let attempts: Option<i32> = sqlx::query_scalar(
            "SELECT attempts FROM sagas WHERE order_id = $1 AND step = 'CHARGE'",
        )
        .bind(waiting_id)
        .fetch_optional(&pool)
        .await?;
        Ok(attempts.unwrap_or(0) >= 1)
    })
    .await?;
    service.stop().await?;
    pool.close().await;
    stub.payment_down.store(false, Ordering::SeqCst);

    let restarted = Running::start(config).await?;
    await_status(&http, &restarted.base, &waiting_id.to_string(), "CONFIRMED").await?;
    restarted.stop().await
}
