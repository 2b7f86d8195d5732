//! The reference system end to end: five service processes on real Postgres and Kafka, every
//! link through Toxiproxy, driven through the gateway.
//!
//! Needs the service binaries (`cargo build --workspace --bins`; `ci/test` builds them) and the
//! images of `ci/setup`.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use faultline_chaos::toxiproxy::{Toxic, ToxicKind};
use faultline_harness::stack::{Stack, StackConfig};
use faultline_reference::JWT_SECRET;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};

const DECLINING_CARD: &str = "4000000000000002";
const GOOD_CARD: &str = "4242424242424242";

fn token(roles: &[&str]) -> String {
    faultline_gateway::mint_token(
        JWT_SECRET,
        "client-1",
        roles,
        "faultline",
        Duration::from_secs(300),
    )
}

/// A correctly signed token whose `exp` lies an hour in the past.
fn expired_token() -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let claims = json!({"sub": "c", "aud": "faultline", "exp": exp, "roles": ["orders:write"]});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

struct Client {
    http: reqwest::Client,
    gateway: String,
    token: String,
}

impl Client {
    fn new(stack: &Stack) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            gateway: stack.service_url("gateway").unwrap(),
            token: token(&["orders:write", "orders:read"]),
        }
    }

    async fn place(&self, key: &str, sku: &str, quantity: i32, card: &str) -> (u16, Value) {
        self.place_for("c-1", key, sku, quantity, card).await
    }

    async fn place_for(
        &self,
        customer: &str,
        key: &str,
        sku: &str,
        quantity: i32,
        card: &str,
    ) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/orders", self.gateway))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key)
            .json(&json!({"customer_id": customer, "sku": sku, "quantity": quantity, "amount_cents": 1250, "card": card}))
            .send()
            .await
            .expect("the gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn order(&self, order_id: &str) -> Value {
        self.http
            .get(format!("{}/api/orders/{order_id}", self.gateway))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("the gateway answers")
            .json()
            .await
            .expect("an order as JSON")
    }

    /// Polls the order until it leaves PENDING (bounded).
    async fn settled(&self, order_id: &str, within: Duration) -> Value {
        let clock = Instant::now();
        loop {
            let order = self.order(order_id).await;
            if order["status"] != "PENDING" {
                return order;
            }
            assert!(
                clock.elapsed() < within,
                "order {order_id} still PENDING after {within:?}: {order}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Drops Kafka clients on a blocking thread: librdkafka's close waits for its own threads,
/// which can need the runtime thread a plain drop would block.
async fn close_off_runtime<T: Send + 'static>(clients: T) {
    tokio::task::spawn_blocking(move || drop(clients))
        .await
        .expect("closing Kafka clients");
}

async fn get_json(url: String) -> (u16, Value) {
    let response = reqwest::get(&url).await.expect("service answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn seed_stock(stack: &Stack, sku: &str, on_hand: i32) {
    let url = format!(
        "{}/admin/stock/{sku}",
        stack.service_url("inventory").unwrap()
    );
    let response = reqwest::Client::new()
        .put(url)
        .json(&json!({"on_hand": on_hand}))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "seeding stock: {}",
        response.status()
    );
}

async fn payments_of(stack: &Stack, order_id: &str) -> Value {
    get_json(format!(
        "{}/payments/orders/{order_id}",
        stack.service_url("payment").unwrap()
    ))
    .await
    .1
}

async fn stock_of(stack: &Stack, sku: &str) -> Value {
    get_json(format!(
        "{}/inventory/stock/{sku}",
        stack.service_url("inventory").unwrap()
    ))
    .await
    .1
}

/// Reads `topic` from its beginning until `done` accepts what was read (bounded by `within`).
/// No consumer group: partitions are assigned directly, so closing the client needs no group
/// coordination (librdkafka's close of a group member can block for long).
async fn read_topic(
    stack: &Stack,
    topic: &str,
    within: Duration,
    done: impl Fn(&[OwnedMessage]) -> bool + Send + 'static,
) -> Vec<OwnedMessage> {
    let bootstrap = stack.infra().kafka_bootstrap("faultline").unwrap();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "faultline-test-reader")
            .set("enable.auto.commit", "false")
            .set("log_level", "3")
            .create()
            .unwrap();
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            assignment
                .add_partition_offset(&topic, partition.id(), Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let clock = Instant::now();
        let mut read = Vec::new();
        while !done(&read) {
            assert!(
                clock.elapsed() < within,
                "{topic}: condition not met within {within:?}; read {} messages",
                read.len()
            );
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                read.push(message.detach());
            }
        }
        read
    })
    .await
    .expect("reading the topic")
}

/// Order events by order id, in the order they were read.
fn events_by_order(messages: &[OwnedMessage]) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for message in messages {
        let event: Value =
            serde_json::from_slice(message.payload().unwrap_or_default()).unwrap_or(Value::Null);
        if let (Some(order), Some(kind)) = (event["order_id"].as_str(), event["type"].as_str()) {
            seen.entry(order.to_string())
                .or_default()
                .push(kind.to_string());
        }
    }
    seen
}

/// A stack started with direct links (a benchmark's) confirms an order with every Postgres
/// proxy disabled and no proxy on the links between services: the services reach Postgres
/// and each other straight. A fault on such a link is refused, not silently missed.
#[tokio::test]
async fn a_stack_with_direct_links_confirms_orders_past_disabled_postgres_proxies(
) -> anyhow::Result<()> {
    let config = StackConfig {
        direct_links: true,
        ..StackConfig::default()
    };
    let stack = Stack::start(&common::reference(), config).await?;
    let toxiproxy = stack.infra().toxiproxy_client();
    let proxies: Vec<String> = stack
        .infra()
        .links()
        .filter(|l| l.server == "postgres")
        .filter_map(|l| l.proxy.clone())
        .collect();
    assert!(proxies.len() >= 4, "{proxies:?}");
    for proxy in &proxies {
        toxiproxy.disable(proxy).await?;
    }
    let client = Client::new(&stack);
    seed_stock(&stack, "sku-direct", 5).await;
    let (status, created) = client.place("key-direct", "sku-direct", 1, GOOD_CARD).await;
    assert_eq!(status, 202, "{created}");
    let order_id = created["order_id"].as_str().expect("an order id");
    let order = client.settled(order_id, Duration::from_secs(30)).await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    for link in ["order->postgres", "order->payment"] {
        let refused = stack.link_proxies(link).map(|_| ()).expect_err(link).to_string();
        assert!(refused.contains("direct links"), "{refused}");
    }
    stack.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn orders_confirm_cancel_and_deduplicate_through_the_gateway() -> anyhow::Result<()> {
    // The gateway's own rate limit (its default, 50/s), not the description's lifted one
    // for workloads.
    let config = StackConfig {
        env: vec![(
            "gateway".into(),
            "GATEWAY_RATE_LIMIT_PER_SECOND".into(),
            "50".into(),
        )],
        ..StackConfig::default()
    };
    let stack = Stack::start(&common::reference(), config).await?;
    let client = Client::new(&stack);
    seed_stock(&stack, "sku-book", 10).await;
    seed_stock(&stack, "sku-rare", 1).await;

    // Happy path.
    let (status, created) = client.place("key-happy", "sku-book", 2, GOOD_CARD).await;
    assert_eq!(status, 202, "{created}");
    let happy = created["order_id"].as_str().unwrap().to_string();
    let order = client.settled(&happy, Duration::from_secs(30)).await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(payments_of(&stack, &happy).await["net_cents"], 1250);

    // Declined payment: cancelled, reservation released, no net charge.
    let (_, created) = client
        .place("key-decline", "sku-book", 3, DECLINING_CARD)
        .await;
    let declined = created["order_id"].as_str().unwrap().to_string();
    let order = client.settled(&declined, Duration::from_secs(30)).await;
    assert_eq!(
        (order["status"].as_str(), order["reason"].as_str()),
        (Some("CANCELLED"), Some("card_declined")),
        "{order}"
    );
    assert_eq!(payments_of(&stack, &declined).await["net_cents"], 0);
    let (_, reservation) = get_json(format!(
        "{}/inventory/reservations/{declined}",
        stack.service_url("inventory")?
    ))
    .await;
    assert_eq!(reservation["status"], "RELEASED", "{reservation}");

    // Out of stock: cancelled without any charge.
    let (_, created) = client.place("key-rare", "sku-rare", 5, GOOD_CARD).await;
    let rare = created["order_id"].as_str().unwrap().to_string();
    let order = client.settled(&rare, Duration::from_secs(30)).await;
    assert_eq!(order["reason"], "out_of_stock", "{order}");
    assert_eq!(payments_of(&stack, &rare).await["charges"], 0);

    // 20 concurrent duplicates: one order, one charge.
    let duplicates = (0..20).map(|_| client.place("key-dup", "sku-book", 1, GOOD_CARD));
    let answers = futures_util::future::join_all(duplicates).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(_, body)| body["order_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1, "one order for 20 duplicates: {answers:?}");
    let dup = answers[0].1["order_id"]
        .as_str()
        .expect("an order id")
        .to_string();
    assert_eq!(
        client.settled(&dup, Duration::from_secs(30)).await["status"],
        "CONFIRMED"
    );
    let payments = payments_of(&stack, &dup).await;
    assert_eq!(
        (payments["charges"].as_i64(), payments["net_cents"].as_i64()),
        (Some(1), Some(1250)),
        "{payments}"
    );

    // Stock: 10 - 2 (happy) - 1 (duplicates) committed; nothing held.
    let stock = stock_of(&stack, "sku-book").await;
    assert_eq!(
        (stock["on_hand"].as_i64(), stock["reserved"].as_i64()),
        (Some(7), Some(0)),
        "{stock}"
    );

    // The events, from the outbox, on Kafka.
    let orders = [happy.clone(), declined.clone(), rare.clone(), dup.clone()];
    let messages = read_topic(&stack, "orders", Duration::from_secs(30), move |read| {
        let seen = events_by_order(read);
        orders
            .iter()
            .all(|id| seen.get(id).is_some_and(|kinds| kinds.len() >= 2))
    })
    .await;
    let seen = events_by_order(&messages);
    assert_eq!(seen[&happy], ["OrderCreated", "OrderConfirmed"]);
    assert_eq!(seen[&declined], ["OrderCreated", "OrderCancelled"]);
    assert_eq!(seen[&rare], ["OrderCreated", "OrderCancelled"]);
    assert_eq!(seen[&dup], ["OrderCreated", "OrderConfirmed"]);

    // Gateway security.
    let post = |token: Option<String>| {
        let mut request = client
            .http
            .post(format!("{}/api/orders", client.gateway))
            .header("Idempotency-Key", "k-sec");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            request
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(None).await, 401, "missing token");
    assert_eq!(post(Some("not-a-jwt".into())).await, 401, "malformed token");
    let expired = expired_token();
    let bad_signature = faultline_gateway::mint_token(
        "another-secret",
        "c",
        &["orders:write"],
        "faultline",
        Duration::from_secs(60),
    );
    let wrong_audience = faultline_gateway::mint_token(
        JWT_SECRET,
        "c",
        &["orders:write"],
        "elsewhere",
        Duration::from_secs(60),
    );
    assert_eq!(post(Some(bad_signature)).await, 401, "bad signature");
    assert_eq!(post(Some(wrong_audience)).await, 401, "wrong audience");
    assert_eq!(
        post(Some(token(&["orders:read"]))).await,
        403,
        "missing role"
    );
    assert_eq!(post(Some(expired)).await, 401, "expired token");

    // Rate limit per client: one greedy client is refused with Retry-After, another is not.
    let greedy = faultline_gateway::mint_token(
        JWT_SECRET,
        "greedy",
        &["orders:read"],
        "faultline",
        Duration::from_secs(60),
    );
    let url = format!("{}/api/orders/{happy}", client.gateway);
    let burst = (0..150).map(|_| client.http.get(&url).bearer_auth(&greedy).send());
    let answers = futures_util::future::join_all(burst).await;
    let limited: Vec<_> = answers
        .iter()
        .flatten()
        .filter(|r| r.status() == 429)
        .collect();
    assert!(
        !limited.is_empty(),
        "150 requests at once exceed 50/s with a burst of 50"
    );
    assert!(
        limited
            .iter()
            .all(|r| r.headers().contains_key("retry-after")),
        "429 carries Retry-After"
    );
    assert_eq!(
        client.order(&happy).await["status"],
        "CONFIRMED",
        "another client is not limited"
    );

    let logs = stack.run_dir().to_path_buf();
    assert!(logs.join("gateway.log").is_file(), "{}", logs.display());
    stack.shutdown().await?;
    assert!(!logs.exists(), "the stack's folder of logs is gone: {}", logs.display());
    Ok(())
}

#[tokio::test]
async fn an_order_process_killed_mid_saga_finishes_it_after_restart() -> anyhow::Result<()> {
    let mut stack = Stack::start(&common::reference(), StackConfig::default()).await?;
    let client = Client::new(&stack);
    seed_stock(&stack, "sku-crash", 5).await;

    // Hold the saga in its charge step: payment's answers are delayed well beyond a call's timeout.
    let (toxiproxy, proxy) = stack.link("order->payment")?;
    toxiproxy
        .add_toxic(
            &proxy,
            &Toxic::new(
                "hold",
                ToxicKind::Latency {
                    latency_ms: 60_000,
                    jitter_ms: 0,
                },
            ),
        )
        .await?;
    let (status, created) = client.place("key-crash", "sku-crash", 1, GOOD_CARD).await;
    assert_eq!(status, 202, "{created}");
    let order_id = created["order_id"].as_str().unwrap().to_string();

    // Wait until the reservation exists, then crash the orchestrator.
    let inventory = stack.service_url("inventory")?;
    let clock = Instant::now();
    loop {
        let (status, reservation) =
            get_json(format!("{inventory}/inventory/reservations/{order_id}")).await;
        if status == 200 && reservation["status"] == "RESERVED" {
            break;
        }
        assert!(
            clock.elapsed() < Duration::from_secs(30),
            "no reservation for {order_id}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.kill("order").await?;
    toxiproxy.remove_toxic(&proxy, "hold").await?;
    stack.restart("order").await?;

    let order = client.settled(&order_id, Duration::from_secs(60)).await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    let payments = payments_of(&stack, &order_id).await;
    assert_eq!(
        (payments["charges"].as_i64(), payments["net_cents"].as_i64()),
        (Some(1), Some(1250)),
        "{payments}"
    );
    let stock = stock_of(&stack, "sku-crash").await;
    assert_eq!(
        (stock["on_hand"].as_i64(), stock["reserved"].as_i64()),
        (Some(4), Some(0)),
        "{stock}"
    );
    stack.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn notification_takes_each_event_once_across_a_crash_and_dead_letters_poison(
) -> anyhow::Result<()> {
    // The failpoint aborts notification right after it committed the effect of this customer's
    // OrderCreated and before the offset commit: the event comes again after the restart.
    let config = StackConfig {
        env: vec![(
            "notification".into(),
            "NOTIFICATION_TEST_CRASH_AFTER_EFFECT_FOR_CUSTOMER".into(),
            "crash-me".into(),
        )],
        ..StackConfig::default()
    };
    let mut stack = Stack::start(&common::reference(), config).await?;
    let client = Client::new(&stack);
    seed_stock(&stack, "sku-note", 100).await;

    // A poison message first: it must not block what follows.
    let producer: FutureProducer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            stack.infra().kafka_bootstrap("faultline")?,
        )
        .set("log_level", "3")
        .create()?;
    producer
        .send(
            FutureRecord::<str, str>::to("orders")
                .key("poison")
                .payload("{not json"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;

    let mut ids = Vec::new();
    for i in 0..10 {
        let customer = if i == 4 { "crash-me" } else { "c-1" };
        let (_, created) = client
            .place_for(customer, &format!("key-note-{i}"), "sku-note", 1, GOOD_CARD)
            .await;
        ids.push(created["order_id"].as_str().unwrap().to_string());
        if i == 4 {
            let ended = stack
                .await_exit("notification", Duration::from_secs(30))
                .await?;
            assert!(
                ended.contains("signal"),
                "notification crashed at the failpoint: {ended}"
            );
            stack.restart("notification").await?;
        }
    }
    for id in &ids {
        client.settled(id, Duration::from_secs(30)).await;
    }

    // After the restart the event whose offset was never committed is delivered again, and
    // recognised (bounded wait: the restarted consumer first rejoins its group).
    let clock = Instant::now();
    loop {
        let log = stack.service_log("notification")?;
        assert!(log.contains("test failpoint"), "the failpoint fired");
        if log.contains("event seen before") {
            break;
        }
        assert!(
            clock.elapsed() < Duration::from_secs(60),
            "the event whose offset was not committed never came again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let notifications = stack.service_url("notification")?;
    for id in &ids {
        let clock = Instant::now();
        loop {
            let (_, list) = get_json(format!("{notifications}/notifications?order_id={id}")).await;
            let kinds: Vec<&str> = list
                .as_array()
                .map(|l| l.iter().filter_map(|n| n["type"].as_str()).collect())
                .unwrap_or_default();
            if kinds.len() >= 2 {
                assert_eq!(
                    kinds,
                    ["OrderCreated", "OrderConfirmed"],
                    "exactly one notification per event for {id}"
                );
                break;
            }
            assert!(
                clock.elapsed() < Duration::from_secs(30),
                "notifications for {id}: {list}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let poison = |m: &OwnedMessage| m.payload() == Some(&b"{not json"[..]);
    let dead = read_topic(&stack, "orders.dlt", Duration::from_secs(30), move |read| {
        read.iter().any(poison)
    })
    .await;
    let message = dead.iter().find(|m| poison(m)).expect("found above");
    let has_reason = message
        .headers()
        .is_some_and(|h| h.iter().any(|header| header.key == "dlt-reason"));
    assert!(has_reason, "the dead letter says why");

    close_off_runtime(producer).await;
    stack.shutdown().await?;
    Ok(())
}
