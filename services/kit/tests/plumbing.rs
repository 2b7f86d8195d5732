//! The kit's plumbing against real Postgres and Kafka (started by the harness, each link through
//! Toxiproxy). Run with the images of `.faultline/images.env`:
//! `source .faultline/images.env && cargo test -p faultline-kit --test plumbing`.
//!
//! Each test starts its own stack (they run in parallel). rdkafka clients are dropped before the
//! stack shuts down: their goodbye to a vanished broker would block.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use faultline_harness::infra::{Infra, InfraConfig};
use faultline_kit::config::EnvReader;
use faultline_kit::health::ReadyCheck;
use faultline_kit::idempotency::{self, Begin};
use faultline_kit::kafka::{
    self, ConsumerSettings, EventConsumer, EventProducer, HandlerError, ReceivedEvent,
};
use faultline_kit::outbox::{self, OutboxRelay};
use faultline_kit::server::Server;
use faultline_kit::trace::TraceContext;
use faultline_kit::{db, metrics};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::ClientConfig;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

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

/// Drops an rdkafka client off the async threads (its close blocks while it leaves the group).
async fn drop_blocking<T: Send + 'static>(client: T) {
    tokio::task::spawn_blocking(move || drop(client))
        .await
        .expect("dropping a Kafka client");
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A plain reader of `topic` from its beginning, outside the kit, to judge what the kit wrote.
fn reader(bootstrap: &str, topic: &str) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("judge"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

async fn next_message(consumer: &StreamConsumer) -> anyhow::Result<ReceivedLike> {
    // librdkafka reports passing conditions (a topic not yet in its metadata) as errors and
    // keeps consuming: skip them until the deadline.
    let deadline = tokio::time::Instant::now() + WAIT;
    let message = loop {
        match tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .context("no message within 30 s")?
        {
            Ok(message) => break message,
            Err(error) => eprintln!("consumer reported (transient): {error}"),
        }
    };
    let headers = message
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ReceivedLike {
        key: message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned()),
        payload: String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
        headers,
    })
}

struct ReceivedLike {
    key: Option<String>,
    payload: String,
    headers: HashMap<String, String>,
}

#[test]
fn config_errors_name_every_bad_variable_and_hide_secrets() {
    let mut env = EnvReader::from_pairs(
        "ORDER",
        [
            ("ORDER_HTTP_PORT", "abc"),
            ("ORDER_DATABASE_URL", "mysql://order:hunter2@db/order"),
            ("ORDER_JWT_SECRET", ""),
            ("ORDER_PAYMENT_TIMEOUT_MS", "soon"),
            ("ORDER_API_KEY", "not-a-number-key"),
            ("ORDER_WORKERS", "4"),
        ],
    );
    let _ = env.port_or("HTTP_PORT", 8080);
    let _ = env.postgres_url("DATABASE_URL");
    let _ = env.required("JWT_SECRET", "the HS256 signing secret");
    let _ = env.required("KAFKA_BOOTSTRAP", "a comma-separated host:port list");
    let _ = env.millis_or("PAYMENT_TIMEOUT_MS", Duration::from_secs(1));
    let _: u32 = env.parse_or("API_KEY", 0, "a number");
    let workers: u32 = env.parse_or("WORKERS", 1, "a number of workers");
    assert_eq!(workers, 4);
    let errors = env.finish().expect_err("five variables are bad");
    assert_eq!(
        errors.to_string(),
        "ORDER_HTTP_PORT=abc: expected a port number 1-65535\n\
         ORDER_DATABASE_URL=mysql://order:***@db/order: expected a postgres:// URL\n\
         ORDER_JWT_SECRET: required, the HS256 signing secret\n\
         ORDER_KAFKA_BOOTSTRAP: required, a comma-separated host:port list\n\
         ORDER_PAYMENT_TIMEOUT_MS=soon: expected a whole number of milliseconds\n\
         ORDER_API_KEY=<redacted>: expected a number"
    );
    assert!(!errors.to_string().contains("hunter2"));

    let mut good = EnvReader::from_pairs("ORDER", [("ORDER_DATABASE_URL", "postgres://o@db/o")]);
    assert_eq!(good.postgres_url("DATABASE_URL"), "postgres://o@db/o");
    assert_eq!(good.port_or("HTTP_PORT", 8080), 8080);
    good.finish().expect("all good");
}

/// A service migrator whose version 1 would collide with the kit's version 1 if they shared a
/// migrations table.
fn service_migrator() -> Migrator {
    use sqlx::SqlSafeStr;
    Migrator::with_migrations(vec![Migration::new(
        1,
        "widgets".into(),
        MigrationType::Simple,
        "CREATE TABLE widgets (id BIGINT PRIMARY KEY)".into_sql_str(),
        false,
    )])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_idempotency_and_readiness_against_real_postgres() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::with_clients(["kit"])).await?;
    let result = database_checks(&infra).await;
    infra.shutdown().await?;
    result
}

async fn database_checks(infra: &Infra) -> anyhow::Result<()> {
    let pool = db::connect(&infra.postgres_url("kit")?, 25).await?;

    // Migrations: kit and service, twice, with their own bookkeeping tables.
    let service = service_migrator();
    db::migrate(&pool, &service).await?;
    db::migrate(&pool, &service)
        .await
        .context("running the migrations a second time")?;
    let kit_versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _faultline_kit_migrations ORDER BY version")
            .fetch_all(&pool)
            .await?;
    assert_eq!(kit_versions, vec![1, 2, 3, 4]);
    let service_versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await?;
    assert_eq!(service_versions, vec![1]);
    for table in ["outbox", "idempotency_keys", "processed_events", "widgets"] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&pool)
            .await?;
        assert!(exists, "table {table} exists after migrating");
    }

    idempotency_checks(&pool).await?;
    readiness_checks(infra, pool.clone()).await?;
    pool.close().await;
    Ok(())
}

async fn idempotency_checks(pool: &PgPool) -> anyhow::Result<()> {
    const SCOPE: &str = "POST /orders";
    let request = br#"{"sku":"A-1","quantity":2}"#;
    let fingerprint = idempotency::fingerprint(request);
    let response = serde_json::json!({"order_id": "o-1"});

    // 20 identical requests at once, each in its own transaction: one does the work.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (pool, fingerprint, response) = (pool.clone(), fingerprint.clone(), response.clone());
        tasks.push(tokio::spawn(async move {
            let mut tx = pool.begin().await?;
            let outcome = idempotency::begin(&mut tx, SCOPE, "key-1", &fingerprint).await?;
            if outcome == Begin::Fresh {
                // The work takes a while, so the duplicates really do arrive during it.
                tokio::time::sleep(Duration::from_millis(200)).await;
                idempotency::complete(&mut tx, SCOPE, "key-1", 201, &response).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(outcome)
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await??);
    }
    let fresh = outcomes.iter().filter(|o| **o == Begin::Fresh).count();
    assert_eq!(
        fresh, 1,
        "exactly one of 20 concurrent duplicates is Fresh: {outcomes:?}"
    );
    let replay = Begin::Replay {
        status: 201,
        body: response.clone(),
    };
    assert!(
        outcomes.iter().all(|o| *o == Begin::Fresh || *o == replay),
        "{outcomes:?}"
    );

    // Replayed again later; a different request under the same key is a conflict.
    let mut conn = pool.acquire().await?;
    assert_eq!(
        idempotency::begin(&mut conn, SCOPE, "key-1", &fingerprint).await?,
        replay
    );
    let other = idempotency::fingerprint(br#"{"sku":"B-2","quantity":1}"#);
    assert_eq!(
        idempotency::begin(&mut conn, SCOPE, "key-1", &other).await?,
        Begin::Conflict
    );
    // The same key in another scope is another key.
    assert_eq!(
        idempotency::begin(&mut conn, "POST /charges", "key-1", &other).await?,
        Begin::Fresh
    );
    // Outside a transaction the claim is visible at once: InProgress until completed.
    assert_eq!(
        idempotency::begin(&mut conn, SCOPE, "key-2", &fingerprint).await?,
        Begin::Fresh
    );
    assert_eq!(
        idempotency::begin(&mut conn, SCOPE, "key-2", &fingerprint).await?,
        Begin::InProgress
    );
    // A request whose transaction rolled back leaves its key free.
    let mut tx = pool.begin().await?;
    assert_eq!(
        idempotency::begin(&mut tx, SCOPE, "key-3", &fingerprint).await?,
        Begin::Fresh
    );
    tx.rollback().await?;
    assert_eq!(
        idempotency::begin(&mut conn, SCOPE, "key-3", &fingerprint).await?,
        Begin::Fresh
    );

    // Processed events: the first delivery counts, a redelivery does not.
    assert!(idempotency::mark_processed(&mut conn, "notification", "event-1").await?);
    assert!(!idempotency::mark_processed(&mut conn, "notification", "event-1").await?);
    assert!(idempotency::mark_processed(&mut conn, "audit", "event-1").await?);
    Ok(())
}

async fn readiness_checks(infra: &Infra, pool: PgPool) -> anyhow::Result<()> {
    let producer = EventProducer::new(&infra.kafka_bootstrap("kit")?)?;
    let shutdown = CancellationToken::new();
    let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" }));
    let server = Server::new("kit-test", app)
        .ready_checks(vec![
            ReadyCheck::database(pool),
            ReadyCheck::kafka(producer.clone()),
        ])
        .bind("127.0.0.1:0".parse()?)
        .await?;
    let base = format!("http://{}", server.local_addr());
    let serving = tokio::spawn(server.run(shutdown.clone()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    let ready = |http: reqwest::Client, base: String| async move {
        let response = http.get(format!("{base}/health/ready")).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.json::<serde_json::Value>().await.ok()?))
    };
    assert_eq!(
        ready(http.clone(), base.clone()).await.map(|r| r.0),
        Some(200)
    );
    let live = http.get(format!("{base}/health/live")).send().await?;
    assert_eq!(live.status().as_u16(), 200);

    // The trace context of a request comes back on the response, as a child of the caller's.
    let caller = TraceContext::new_root();
    let hello = http
        .get(format!("{base}/hello"))
        .header("traceparent", caller.to_traceparent())
        .send()
        .await?;
    let echoed = hello
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse);
    assert_eq!(echoed.map(|c| c.trace_id()), Some(caller.trace_id()));
    let scraped = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        scraped.contains(r#"http_server_requests_total{method="GET",route="/hello",status="200"}"#),
        "{scraped}"
    );
    assert!(
        scraped.contains("http_server_request_duration_seconds_bucket"),
        "{scraped}"
    );

    // Cut the database link: not ready, naming the database; restore it: ready again.
    let toxiproxy = infra.toxiproxy_client();
    toxiproxy.disable("kit-postgres").await?;
    let last = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&last);
    eventually("readiness reports 503 naming the database", WAIT, || {
        let (http, base, seen) = (http.clone(), base.clone(), Arc::clone(&seen));
        async move {
            let answer = ready(http, base).await;
            let hit = matches!(&answer, Some((503, body)) if body["failed"] == serde_json::json!(["database"]));
            *seen.lock().unwrap() = answer;
            hit
        }
    })
    .await
    .with_context(|| format!("last answer: {:?}", last.lock().unwrap()))?;
    toxiproxy.enable("kit-postgres").await?;
    eventually("readiness is 200 again", WAIT, || {
        let (http, base) = (http.clone(), base.clone());
        async move { matches!(ready(http, base).await, Some((200, _))) }
    })
    .await?;

    shutdown.cancel();
    tokio::time::timeout(WAIT, serving)
        .await
        .context("server did not stop")???;
    drop_blocking(producer).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_publishes_committed_events_in_order_and_never_rolled_back_ones(
) -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::with_clients(["kit"])).await?;
    let result = outbox_checks(&infra).await;
    infra.shutdown().await?;
    result
}

async fn outbox_checks(infra: &Infra) -> anyhow::Result<()> {
    // The relay's gauges go to the process's recorder (installed once; another test of this
    // binary may have done it first).
    metrics::install();
    let bootstrap = infra.kafka_bootstrap("kit")?;
    let pool = db::connect(&infra.postgres_url("kit")?, 5).await?;
    db::migrate_kit(&pool).await?;
    let topic = unique("orders");
    kafka::ensure_topics(&bootstrap, &[&topic], 1).await?;
    kafka::ensure_topics(&bootstrap, &[&topic], 1)
        .await
        .context("ensuring an existing topic")?;

    let writer = TraceContext::new_root();
    let enqueue_batch = |range: std::ops::Range<i32>, commit: bool| {
        let (pool, topic) = (pool.clone(), topic.clone());
        writer.scope(async move {
            let mut tx = pool.begin().await?;
            for n in range {
                outbox::enqueue(
                    &mut tx,
                    &topic,
                    "order-1",
                    &serde_json::json!({"n": n, "committed": commit}),
                )
                .await?;
            }
            if commit {
                tx.commit().await
            } else {
                tx.rollback().await
            }
        })
    };
    enqueue_batch(0..10, true).await?;
    enqueue_batch(100..103, false).await?;
    enqueue_batch(10..15, true).await?;
    assert_eq!(outbox::backlog(&pool).await?, 15);

    let producer = EventProducer::new(&bootstrap)?;
    let relay = OutboxRelay::new(pool.clone(), producer.clone())
        .batch_size(4)
        .poll_interval(Duration::from_millis(50));
    drained_by(relay, &pool, "the outbox is drained", async { Ok(()) }).await?;
    let unmarked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&pool)
            .await?;
    assert_eq!(unmarked, 0);
    let rendered = metrics::render();
    assert!(rendered.contains("outbox_backlog 0"), "{rendered}");

    // A sentinel after the relay finished: everything before it is what the relay published.
    producer
        .send(&topic, "sentinel", b"{\"sentinel\":true}", &[])
        .await?;
    let event_ids: Vec<String> =
        sqlx::query_scalar("SELECT event_id::text FROM outbox ORDER BY id")
            .fetch_all(&pool)
            .await?;
    let judge = reader(&bootstrap, &topic)?;
    let mut seen = Vec::new();
    loop {
        let message = next_message(&judge).await?;
        if message.key.as_deref() == Some("sentinel") {
            break;
        }
        let payload: serde_json::Value = serde_json::from_str(&message.payload)?;
        ensure!(
            payload["committed"] == true,
            "a rolled-back event was published: {payload}"
        );
        let traceparent = message
            .headers
            .get("traceparent")
            .and_then(|t| TraceContext::parse(t));
        assert_eq!(
            traceparent.map(|t| t.trace_id()),
            Some(writer.trace_id()),
            "the writer's trace continues"
        );
        seen.push((
            payload["n"].as_i64().unwrap(),
            message.headers.get("event-id").cloned().unwrap_or_default(),
        ));
    }
    let numbers: Vec<i64> = seen.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        (0..15).collect::<Vec<_>>(),
        "published once each, in order"
    );
    let published_ids: Vec<String> = seen.into_iter().map(|(_, id)| id).collect();
    assert_eq!(
        published_ids, event_ids,
        "each message carries its row's event id"
    );

    // A relay that would look again only after an hour publishes a committed event at once:
    // the commit wakes it. A rolled-back transaction wakes nobody and publishes nothing.
    let relay = OutboxRelay::new(pool.clone(), producer.clone())
        .poll_interval(Duration::from_secs(3600));
    let writes = async {
        // Written once the relay listens, so only the commit can have woken it.
        eventually("the relay listens for commits", WAIT, || {
            let pool = pool.clone();
            async move {
                let listening: Result<i64, _> = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %faultline_outbox%'",
                )
                .fetch_one(&pool)
                .await;
                matches!(listening, Ok(1))
            }
        })
        .await?;
        enqueue_batch(200..201, false).await?;
        enqueue_batch(15..16, true).await?;
        Ok(())
    };
    drained_by(relay, &pool, "the committed event is published without a poll", writes).await?;
    let published: Vec<i64> = sqlx::query_scalar(
        "SELECT (payload->>'n')::bigint FROM outbox WHERE published_at IS NOT NULL ORDER BY id",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(published, (0..16).collect::<Vec<_>>());

    drop_blocking(judge).await;
    drop_blocking(producer).await;
    pool.close().await;
    Ok(())
}

/// Runs `relay` while `meanwhile` runs, until the outbox is drained (`what` names the wait);
/// then stops it.
async fn drained_by(
    relay: OutboxRelay,
    pool: &PgPool,
    what: &str,
    meanwhile: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let relaying = tokio::spawn(relay.run(shutdown.clone()));
    meanwhile.await?;
    eventually(what, WAIT, || {
        let pool = pool.clone();
        async move { matches!(outbox::backlog(&pool).await, Ok(0)) }
    })
    .await?;
    shutdown.cancel();
    tokio::time::timeout(WAIT, relaying)
        .await
        .context("relay did not stop")?
        .context("relay task")
}

/// What a test handler saw: payloads in order of attempts, with their trace ids.
/// Payload and the trace id current in the handler, per attempt.
type Attempts = Vec<(String, Option<String>)>;

#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Attempts>>);

impl Journal {
    fn record(&self, event: &ReceivedEvent) {
        let payload = String::from_utf8_lossy(&event.payload).into_owned();
        let trace = TraceContext::current().map(|c| c.trace_id());
        self.0.lock().unwrap().push((payload, trace));
    }
    fn attempts(&self, payload: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == payload)
            .count()
    }
    fn payloads(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
}

fn settings(bootstrap: &str, group: &str, topic: &str) -> ConsumerSettings {
    let mut settings = ConsumerSettings::new(bootstrap, group, [topic]);
    settings.retry_initial = Duration::from_millis(50);
    settings.retry_max = Duration::from_millis(200);
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_commits_only_after_success_and_dead_letters_poison() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::with_clients(["kit"])).await?;
    let result = consumer_checks(&infra).await;
    infra.shutdown().await?;
    result
}

async fn consumer_checks(infra: &Infra) -> anyhow::Result<()> {
    let bootstrap = infra.kafka_bootstrap("kit")?;
    let topic = unique("events");
    let dlt = kafka::dead_letter_topic(&topic);
    kafka::ensure_topics(&bootstrap, &[&topic, &dlt], 1).await?;
    let group = unique("notification");
    let producer = EventProducer::new(&bootstrap)?;

    // Phase 1: a flaky event, a poison event, a good one.
    let origin = TraceContext::new_root();
    origin
        .scope(async {
            for payload in ["flaky", "poison", "good"] {
                producer
                    .send(&topic, "k", payload.as_bytes(), &[("event-id", payload)])
                    .await?;
            }
            anyhow::Ok(())
        })
        .await?;
    let journal = Journal::default();
    let consumer = EventConsumer::new(settings(&bootstrap, &group, &topic))?;
    let shutdown = CancellationToken::new();
    {
        let recorder = journal.clone();
        let handler = move |event: ReceivedEvent| {
            let journal = recorder.clone();
            async move {
                journal.record(&event);
                match event.payload.as_slice() {
                    b"flaky" if journal.attempts("flaky") < 3 => {
                        Err(HandlerError::Retryable("database busy".into()))
                    }
                    b"poison" => Err(HandlerError::Poison("not an order event".into())),
                    _ => Ok(()),
                }
            }
        };
        let done = shutdown.clone();
        let watch = journal.clone();
        let stopper = async move {
            eventually("the good event is processed", WAIT, || {
                let watch = watch.clone();
                async move { watch.attempts("good") == 1 }
            })
            .await?;
            done.cancel();
            anyhow::Ok(())
        };
        let (stopped, ()) = tokio::join!(stopper, consumer.run(shutdown.clone(), handler));
        stopped?;
    }
    assert_eq!(
        journal.payloads(),
        ["flaky", "flaky", "flaky", "poison", "good"]
    );
    let traces: Vec<_> = journal
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    assert!(
        traces
            .iter()
            .all(|t| t.as_deref() == Some(origin.trace_id().as_str())),
        "handler ran in the event's trace: {traces:?}"
    );

    let judge = reader(&bootstrap, &dlt)?;
    let dead = next_message(&judge).await?;
    assert_eq!(dead.payload, "poison");
    assert_eq!(
        dead.headers.get("dlt-reason").map(String::as_str),
        Some("not an order event")
    );
    assert_eq!(dead.headers.get("dlt-original-topic"), Some(&topic));
    assert_eq!(
        dead.headers.get("dlt-original-offset").map(String::as_str),
        Some("1")
    );
    assert_eq!(dead.headers.get("dlt-consumer-group"), Some(&group));
    assert_eq!(
        dead.headers.get("event-id").map(String::as_str),
        Some("poison")
    );
    drop_blocking(judge).await;
    drop_blocking(consumer).await;

    // Phase 2: an event that keeps failing until the consumer stops is not committed, so the
    // next member of the group gets it again, and only it (the earlier ones were committed).
    producer.send(&topic, "k", b"stuck", &[]).await?;
    let stuck_journal = Journal::default();
    let consumer = EventConsumer::new(settings(&bootstrap, &group, &topic))?;
    let shutdown = CancellationToken::new();
    {
        let journal = stuck_journal.clone();
        let handler = move |event: ReceivedEvent| {
            let journal = journal.clone();
            async move {
                journal.record(&event);
                Err(HandlerError::Retryable(
                    "payment service unavailable".into(),
                ))
            }
        };
        let done = shutdown.clone();
        let watch = stuck_journal.clone();
        let stopper = async move {
            eventually("the stuck event was tried twice", WAIT, || {
                let watch = watch.clone();
                async move { watch.attempts("stuck") >= 2 }
            })
            .await?;
            done.cancel();
            anyhow::Ok(())
        };
        let (stopped, ()) = tokio::join!(stopper, consumer.run(shutdown.clone(), handler));
        stopped?;
    }
    assert!(
        stuck_journal.payloads().iter().all(|p| p == "stuck"),
        "{:?}",
        stuck_journal.payloads()
    );
    drop_blocking(consumer).await;

    // Phase 3: the restarted member. A shutdown asked *during* handling still lets the event
    // finish and be committed.
    producer.send(&topic, "k", b"last", &[]).await?;
    let restarted = Journal::default();
    let consumer = EventConsumer::new(settings(&bootstrap, &group, &topic))?;
    let shutdown = CancellationToken::new();
    {
        let (journal, stop) = (restarted.clone(), shutdown.clone());
        let handler = move |event: ReceivedEvent| {
            let (journal, stop) = (journal.clone(), stop.clone());
            async move {
                journal.record(&event);
                if event.payload == b"last" {
                    stop.cancel(); // shutdown arrives while this event is in flight
                }
                Ok(())
            }
        };
        tokio::time::timeout(WAIT, consumer.run(shutdown.clone(), handler))
            .await
            .context("consumer did not stop")?;
    }
    assert_eq!(
        restarted.payloads(),
        ["stuck", "last"],
        "the uncommitted event is redelivered, nothing else"
    );
    drop_blocking(consumer).await;

    // Phase 4: nothing is left uncommitted: a probe event is the first thing the group sees.
    producer.send(&topic, "k", b"probe", &[]).await?;
    let after = Journal::default();
    let consumer = EventConsumer::new(settings(&bootstrap, &group, &topic))?;
    let shutdown = CancellationToken::new();
    {
        let (journal, stop) = (after.clone(), shutdown.clone());
        let handler = move |event: ReceivedEvent| {
            let (journal, stop) = (journal.clone(), stop.clone());
            async move {
                journal.record(&event);
                stop.cancel();
                Ok(())
            }
        };
        tokio::time::timeout(WAIT, consumer.run(shutdown.clone(), handler))
            .await
            .context("consumer did not stop")?;
    }
    assert_eq!(
        after.payloads(),
        ["probe"],
        "the in-flight event of the shutdown was committed"
    );
    drop_blocking(consumer).await;
    drop_blocking(producer).await;
    Ok(())
}
