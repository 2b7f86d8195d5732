//! The infrastructure module against real containers: Postgres, Apache Kafka and Toxiproxy
//! started on a network of the run's own, every client link through its own proxy.
//!
//! Needs a Docker engine and the images named by `FAULTLINE_*_IMAGE` (`ci/test` runs
//! `ci/setup`, which provides both).

use std::time::{Duration, Instant};

use faultline_chaos::toxiproxy::{Toxic, ToxicKind};
use faultline_harness::infra::docker::{
    ContainerSpec, Engine, LABEL_HOST, LABEL_MANAGED, LABEL_PID, LABEL_RUN,
};
use faultline_harness::infra::{Image, Infra, InfraConfig, InfraError};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use sqlx::{Connection, PgConnection};
use testcontainers::bollard::query_parameters::InspectContainerOptions;
use testcontainers::bollard::Docker;

fn postgres_only(clients: &[&str]) -> InfraConfig {
    InfraConfig {
        kafka: false,
        ..InfraConfig::with_clients(clients.iter().copied())
    }
}

async fn timed_select(connection: &mut PgConnection) -> Duration {
    let clock = Instant::now();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut *connection)
        .await
        .expect("SELECT 1");
    assert_eq!(one, 1);
    clock.elapsed()
}

async fn median_select(connection: &mut PgConnection) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..5 {
        samples.push(timed_select(connection).await);
    }
    samples.sort();
    samples[2]
}

#[tokio::test]
async fn latency_toxic_on_the_postgres_link_delays_queries_until_removed() -> anyhow::Result<()> {
    let infra = Infra::start(postgres_only(&["a"])).await?;
    let mut connection = PgConnection::connect(&infra.postgres_url("a")?).await?;

    // Round trip: a table written and read back through the proxy.
    sqlx::query("CREATE TABLE greetings (id int PRIMARY KEY, text text NOT NULL)")
        .execute(&mut connection)
        .await?;
    sqlx::query("INSERT INTO greetings VALUES (1, 'through the proxy')")
        .execute(&mut connection)
        .await?;
    let text: String = sqlx::query_scalar("SELECT text FROM greetings WHERE id = 1")
        .fetch_one(&mut connection)
        .await?;
    assert_eq!(text, "through the proxy");

    let baseline = median_select(&mut connection).await;
    let toxiproxy = infra.toxiproxy_client();
    let latency = ToxicKind::Latency {
        latency_ms: 300,
        jitter_ms: 0,
    };
    toxiproxy
        .add_toxic("a-postgres", &Toxic::new("slow", latency))
        .await?;
    let slowed = timed_select(&mut connection).await;
    assert!(
        slowed >= baseline + Duration::from_millis(300),
        "with a 300 ms latency toxic the query took {slowed:?}, baseline {baseline:?}"
    );

    toxiproxy.remove_toxic("a-postgres", "slow").await?;
    let restored = median_select(&mut connection).await;
    assert!(
        restored < Duration::from_millis(300),
        "after removing the toxic the query still took {restored:?} (baseline {baseline:?})"
    );
    connection.close().await?;
    infra.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn reset_peer_is_a_connection_error_and_timeout_is_a_timeout() -> anyhow::Result<()> {
    let infra = Infra::start(postgres_only(&["a", "b"])).await?;
    let toxiproxy = infra.toxiproxy_client();

    let mut reset_victim = PgConnection::connect(&infra.postgres_url("a")?).await?;
    timed_select(&mut reset_victim).await;
    toxiproxy
        .add_toxic(
            "a-postgres",
            &Toxic::new("reset", ToxicKind::ResetPeer { timeout_ms: 0 }),
        )
        .await?;
    let error = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&mut reset_victim)
        .await
        .expect_err("a query over a reset connection must fail");
    assert!(
        matches!(error, sqlx::Error::Io(_)),
        "expected a connection (I/O) error, got {error:?}"
    );

    let mut stalled = PgConnection::connect(&infra.postgres_url("b")?).await?;
    timed_select(&mut stalled).await;
    toxiproxy
        .add_toxic(
            "b-postgres",
            &Toxic::new("stall", ToxicKind::Timeout { timeout_ms: 0 }),
        )
        .await?;
    let outcome = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut stalled),
    )
    .await;
    assert!(
        outcome.is_err(),
        "a query through a timeout toxic must time out, got {outcome:?}"
    );

    // The server itself was never touched: the direct address still answers.
    let mut admin = PgConnection::connect(&infra.postgres_admin_url()?).await?;
    timed_select(&mut admin).await;
    infra.shutdown().await?;
    Ok(())
}

fn kafka_client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "500")
        .set("log_level", "3");
    config
}

fn producer(bootstrap: &str, delivery_timeout: Duration) -> FutureProducer {
    kafka_client(bootstrap)
        .set(
            "message.timeout.ms",
            delivery_timeout.as_millis().to_string(),
        )
        .set("enable.idempotence", "true")
        .create()
        .expect("producer")
}

fn consumer(bootstrap: &str, group: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = kafka_client(bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

async fn produce(producer: &FutureProducer, topic: &str, payload: &str) -> Result<(), KafkaError> {
    producer
        .send(
            FutureRecord::<str, str>::to(topic)
                .payload(payload)
                .key(payload),
            Duration::ZERO,
        )
        .await
        .map(|_| ())
        .map_err(|(error, _)| error)
}

/// Waits (bounded) for the next message and returns its payload. Errors the consumer reports
/// on the way (`AllBrokersDown` while its link is cut) are transient in librdkafka: it keeps
/// reconnecting, so they are skipped, not returned.
async fn next_payload(consumer: &StreamConsumer) -> String {
    let receive = async {
        loop {
            match consumer.recv().await {
                Ok(message) => {
                    let payload = message.payload().expect("payload").to_vec();
                    break String::from_utf8(payload).expect("utf-8");
                }
                Err(error) => eprintln!("consumer reported (transient): {error}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), receive)
        .await
        .expect("a message within 60 s")
}

/// The payloads of `found`, as text.
fn payloads(found: &[faultline_contracts::verify::ActualMessage]) -> Vec<String> {
    found
        .iter()
        .map(|m| m.contents.as_str().map_or_else(|| m.contents.to_string(), str::to_string))
        .collect()
}

/// The reader contract verification takes messages with: a look sees only what was appended
/// after its mark (on every partition, filtered by key), a waiting look answers when the
/// message comes rather than at the end of its wait, and a look at an older mark reads from
/// that mark again.
#[tokio::test]
async fn the_contract_message_reader_sees_what_follows_its_mark_as_soon_as_it_comes() -> anyhow::Result<()> {
    use faultline_contracts::verify::MessageSource;
    use faultline_harness::contracts::KafkaMessages;

    let infra = Infra::start(InfraConfig {
        postgres: false,
        ..InfraConfig::with_clients(Vec::<String>::new())
    })
    .await?;
    let bootstrap = infra.kafka_bootstrap("faultline")?;
    let admin: AdminClient<DefaultClientContext> = kafka_client(&bootstrap).create()?;
    let topic = [NewTopic::new("events", 3, TopicReplication::Fixed(1))];
    for result in admin.create_topics(&topic, &AdminOptions::new()).await? {
        result.map_err(|(topic, code)| anyhow::anyhow!("creating {topic}: {code}"))?;
    }
    let producer = producer(&bootstrap, Duration::from_secs(30));
    produce(&producer, "events", "before").await?;

    let reader = KafkaMessages::new(bootstrap.clone());
    let first = reader.mark("events").await.map_err(anyhow::Error::msg)?;
    let ends = first.as_object().expect("a mark is partition → offset");
    assert_eq!(ends.len(), 3, "{first}");
    assert_eq!(ends.values().filter_map(serde_json::Value::as_i64).sum::<i64>(), 1, "{first}");
    let nothing = reader.since("events", &first, None, Duration::ZERO).await;
    assert_eq!(payloads(&nothing.map_err(anyhow::Error::msg)?), Vec::<String>::new());

    // A look that may wait 60 s, and the message produced while it waits.
    let began = Instant::now();
    let (found, sent) = tokio::join!(
        reader.since("events", &first, Some("after"), Duration::from_secs(60)),
        produce(&producer, "events", "after")
    );
    sent?;
    let waited = began.elapsed();
    assert_eq!(payloads(&found.map_err(anyhow::Error::msg)?), ["after"]);
    assert!(waited < Duration::from_secs(30), "the look answered only after {waited:?}");

    produce(&producer, "events", "other").await?;
    let keyed = reader.since("events", &first, Some("before"), Duration::from_millis(100));
    let keyed = payloads(&keyed.await.map_err(anyhow::Error::msg)?);
    assert_eq!(keyed, Vec::<String>::new(), "a record from before the mark");
    let mut all = Vec::new();
    for _ in 0..600 {
        all = payloads(&reader.since("events", &first, None, Duration::from_millis(100)).await.map_err(anyhow::Error::msg)?);
        if all.len() >= 2 {
            break;
        }
    }
    all.sort();
    assert_eq!(all, ["after", "other"]);

    // A newer mark moves the reader on; the first one is then read from the topic afresh.
    let second = reader.mark("events").await.map_err(anyhow::Error::msg)?;
    let newer = reader.since("events", &second, None, Duration::ZERO).await;
    assert_eq!(payloads(&newer.map_err(anyhow::Error::msg)?), Vec::<String>::new());
    let mut again = payloads(&reader.since("events", &first, None, Duration::ZERO).await.map_err(anyhow::Error::msg)?);
    again.sort();
    assert_eq!(again, ["after", "other"]);
    Ok(())
}

#[tokio::test]
async fn cutting_one_clients_kafka_link_leaves_the_others_running() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::with_clients(["a", "b"])).await?;
    let admin: AdminClient<DefaultClientContext> =
        kafka_client(&infra.kafka_bootstrap("faultline")?).create()?;
    let topics = [
        NewTopic::new("from-a", 1, TopicReplication::Fixed(1)),
        NewTopic::new("from-b", 1, TopicReplication::Fixed(1)),
    ];
    for result in admin.create_topics(&topics, &AdminOptions::new()).await? {
        result.map_err(|(topic, code)| anyhow::anyhow!("creating {topic}: {code}"))?;
    }

    let a_bootstrap = infra.kafka_bootstrap("a")?;
    let b_bootstrap = infra.kafka_bootstrap("b")?;
    assert_ne!(
        a_bootstrap, b_bootstrap,
        "each client has a proxy of its own"
    );
    let producer_a = producer(&a_bootstrap, Duration::from_secs(3));
    let producer_b = producer(&b_bootstrap, Duration::from_secs(30));
    let consumer_a = consumer(&a_bootstrap, "group-a", "from-a");
    let consumer_b = consumer(&b_bootstrap, "group-b", "from-b");

    produce(&producer_a, "from-a", "a-1").await?;
    produce(&producer_b, "from-b", "b-1").await?;
    assert_eq!(next_payload(&consumer_a).await, "a-1");
    assert_eq!(next_payload(&consumer_b).await, "b-1");

    let toxiproxy = infra.toxiproxy_client();
    toxiproxy.disable("a-kafka").await?;
    let cut = produce(&producer_a, "from-a", "a-lost").await;
    assert!(
        cut.is_err(),
        "with its link down, A's delivery must fail, got {cut:?}"
    );
    produce(&producer_b, "from-b", "b-2").await?;
    assert_eq!(
        next_payload(&consumer_b).await,
        "b-2",
        "B keeps consuming while A is cut off"
    );

    toxiproxy.enable("a-kafka").await?;
    // A's producer reconnects by itself; its delivery timeout is short, so allow a few tries.
    let mut resumed = Err(KafkaError::Canceled);
    for _ in 0..10 {
        resumed = produce(&producer_a, "from-a", "a-2").await;
        if resumed.is_ok() {
            break;
        }
    }
    resumed?;
    let mut seen = next_payload(&consumer_a).await;
    if seen == "a-lost" {
        // librdkafka may have written the timed-out message before the cut; either way it is
        // not what we wait for.
        seen = next_payload(&consumer_a).await;
    }
    assert_eq!(seen, "a-2", "A resumes after its link is restored");

    let logs = infra.container_logs().await;
    let names: Vec<_> = logs.iter().map(|l| l.container.as_str()).collect();
    assert_eq!(names, ["toxiproxy", "postgres", "kafka"]);
    assert!(
        logs.iter().all(|l| !l.text.is_empty()),
        "every container log is captured"
    );

    // Clients leave their group while the broker is still there; closing them after the
    // broker is gone would block in librdkafka's close.
    // Closed on a blocking thread: librdkafka's close waits for its own threads.
    tokio::task::spawn_blocking(move || {
        drop((consumer_a, consumer_b, producer_a, producer_b, admin))
    })
    .await?;
    let run_id = infra.run_id().to_string();
    infra.shutdown().await?;
    let (containers, networks) = Engine::connect()
        .await?
        .labelled(LABEL_RUN, &run_id)
        .await?;
    assert!(
        containers.is_empty() && networks.is_empty(),
        "left behind: {containers:?} {networks:?}"
    );
    Ok(())
}

#[tokio::test]
async fn dropping_the_stack_removes_every_labelled_container_and_network() -> anyhow::Result<()> {
    let engine = Engine::connect().await?;
    let infra = Infra::start(postgres_only(&["a"])).await?;
    let run_id = infra.run_id().to_string();
    let (containers, networks) = engine.labelled(LABEL_RUN, &run_id).await?;
    assert_eq!(
        (containers.len(), networks.len()),
        (2, 1),
        "toxiproxy and postgres on one network"
    );

    drop(infra);
    let (containers, networks) = engine.labelled(LABEL_RUN, &run_id).await?;
    assert!(
        containers.is_empty(),
        "containers left after drop: {containers:?}"
    );
    assert!(
        networks.is_empty(),
        "networks left after drop: {networks:?}"
    );
    Ok(())
}

/// Two runs starting at once both sweep the same leftovers of a crashed run: the one that comes
/// second finds removals already in progress, which is not an error for either.
#[tokio::test]
async fn two_sweeps_at_once_both_remove_a_crashed_runs_leftovers() -> anyhow::Result<()> {
    let engine = Engine::connect().await?;
    let mut finished = std::process::Command::new("true").spawn()?;
    finished.wait()?;
    let run_id = format!("crashed-{}", std::process::id());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    let labels: std::collections::HashMap<String, String> = [
        (LABEL_MANAGED, "true".to_string()),
        (LABEL_RUN, run_id.clone()),
        (LABEL_PID, finished.id().to_string()),
        (LABEL_HOST, hostname.trim().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let network = format!("faultline-{run_id}");
    engine.create_network(&network, &labels).await?;
    let image = InfraConfig::toxiproxy_only().images.toxiproxy.name;
    let mut started = Vec::new();
    for n in 0..4 {
        let spec = ContainerSpec {
            name: format!("left{n}"),
            image: image.clone(),
            env: Vec::new(),
            cmd: None,
            ports: Vec::new(),
            host_network: false,
            mounts: Vec::new(),
        };
        started.push(engine.run(&spec, &network, &labels).await?);
    }
    assert_eq!(engine.labelled(LABEL_RUN, &run_id).await?.0.len(), 4);

    let other = Engine::connect().await?;
    let (first, second) = tokio::join!(engine.sweep_leftovers(), other.sweep_leftovers());
    first?;
    second?;
    // A network a sweep could not take yet (the other sweep still removing its containers) is
    // taken by the next one.
    engine.sweep_leftovers().await?;
    let (containers, networks) = engine.labelled(LABEL_RUN, &run_id).await?;
    assert!(
        containers.is_empty() && networks.is_empty(),
        "left behind: {containers:?} {networks:?}"
    );
    drop(started);
    Ok(())
}

#[tokio::test]
async fn an_image_neither_present_nor_pullable_names_its_variable() {
    let mut config = InfraConfig::toxiproxy_only();
    config.images.toxiproxy = Image {
        // A registry on a closed loopback port: the pull is attempted and refused locally.
        name: "127.0.0.1:9/faultline/no-such-image:0".into(),
        variable: "FAULTLINE_TOXIPROXY_IMAGE",
    };
    let error = Infra::start(config)
        .await
        .err()
        .expect("starting with a missing image fails");
    assert!(
        matches!(error, InfraError::ImageUnavailable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("FAULTLINE_TOXIPROXY_IMAGE"), "{message}");
    assert!(
        message.contains("127.0.0.1:9/faultline/no-such-image:0"),
        "{message}"
    );
    assert!(message.contains("ci/setup"), "{message}");
}

#[tokio::test]
async fn every_container_publishes_its_ports_on_loopback_only() -> anyhow::Result<()> {
    let infra = Infra::start(postgres_only(&["a"])).await?;
    let (containers, _) = Engine::connect()
        .await?
        .labelled(LABEL_RUN, infra.run_id())
        .await?;
    assert_eq!(containers.len(), 2, "toxiproxy and postgres");
    let docker = Docker::connect_with_defaults()?;
    for id in containers {
        let inspect = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await?;
        let name = inspect.name.unwrap_or_default();
        let publish_all = inspect.host_config.and_then(|h| h.publish_all_ports);
        assert_ne!(publish_all, Some(true), "{name} publishes every port");
        let published: Vec<_> = inspect
            .network_settings
            .and_then(|settings| settings.ports)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(port, bindings)| {
                bindings
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |b| (port.clone(), b.host_ip))
            })
            .collect();
        assert!(!published.is_empty(), "{name} publishes no port");
        for (port, host_ip) in published {
            assert_eq!(
                host_ip.as_deref(),
                Some("127.0.0.1"),
                "{name} publishes {port} beyond loopback"
            );
        }
    }
    Ok(())
}

/// A fresh connection and a round trip on it (sqlx's ping), given at most `within`.
async fn answers_within(url: &str, within: Duration) -> Result<(), String> {
    let attempt = async { PgConnection::connect(url).await?.ping().await };
    match tokio::time::timeout(within, attempt).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {within:?}")),
    }
}

/// Retries [`answers_within`] until Postgres answers, for at most `timeout`.
async fn await_answer(url: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match answers_within(url, Duration::from_secs(2)).await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test]
async fn pausing_and_stopping_the_postgres_container_silence_it_until_healed() -> anyhow::Result<()>
{
    let infra = Infra::start(postgres_only(&["a"])).await?;
    // Through the client's proxy, which reaches the container by its name on the run network:
    // a restarted container gets a new host port from the engine, so the direct address would
    // not survive the stop.
    let url = infra.postgres_url("a")?;
    answers_within(&url, Duration::from_secs(5))
        .await
        .map_err(anyhow::Error::msg)?;

    infra.pause_container("postgres").await?;
    let paused = answers_within(&url, Duration::from_secs(2)).await;
    assert!(paused.is_err(), "a paused Postgres answered");
    infra.unpause_container("postgres").await?;
    answers_within(&url, Duration::from_secs(5))
        .await
        .map_err(|e| anyhow::anyhow!("after unpause: {e}"))?;

    infra.stop_container("postgres").await?;
    let stopped = answers_within(&url, Duration::from_secs(2)).await;
    assert!(stopped.is_err(), "a stopped Postgres answered");
    infra.start_container("postgres").await?;
    await_answer(&url, Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("after start: {e}"))?;

    let error = infra.pause_container("no-such").await.unwrap_err();
    assert!(error.to_string().contains("postgres"), "{error}");
    Ok(())
}

#[tokio::test]
async fn the_toxiproxy_binary_is_copied_out_of_its_image_and_runs() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::toxiproxy_only()).await?;
    let dir = std::env::temp_dir().join(format!("faultline-extract-{}", infra.run_id()));
    let images = faultline_harness::infra::Images::from_env();
    let binary = infra.toxiproxy_binary(&images, &dir).await?;
    let again = infra.toxiproxy_binary(&images, &dir).await?;
    assert_eq!(binary, again, "a second call reuses the copy");
    let output = std::process::Command::new(&binary)
        .arg("-version")
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{} -version: {text}",
        binary.display()
    );
    assert!(text.contains("2."), "a Toxiproxy version: {text}");
    let (containers, _) = Engine::connect()
        .await?
        .labelled(LABEL_RUN, "extract")
        .await?;
    assert!(
        containers.is_empty(),
        "extraction containers left: {containers:?}"
    );
    Ok(())
}

#[test]
fn a_stack_dropped_outside_any_runtime_still_removes_everything() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let infra = runtime.block_on(Infra::start(InfraConfig::toxiproxy_only()))?;
    let run_id = infra.run_id().to_string();
    drop(runtime);
    drop(infra);

    let check = tokio::runtime::Runtime::new()?;
    let (containers, networks) =
        check.block_on(async { Engine::connect().await?.labelled(LABEL_RUN, &run_id).await })?;
    assert!(
        containers.is_empty() && networks.is_empty(),
        "left behind: {containers:?} {networks:?}"
    );
    Ok(())
}

/// Every benchmark names the builds it timed: `bench infra` times no service, so it builds
/// none and says so, beside faultline's own build.
#[tokio::test]
async fn a_benchmark_names_the_builds_it_timed() -> anyhow::Result<()> {
    let out = std::env::temp_dir().join(format!("faultline-bench-{}.json", std::process::id()));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new(
        faultline_harness::stack::service_bin_dir().join("faultline"),
    )
    .current_dir(root)
    .args(["--system", "services/faultline.toml", "bench", "infra", "--iterations", "1", "--out"])
    .arg(&out)
    .output()
    .await?;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let expected_faultline = if cfg!(debug_assertions) { "debug" } else { "release" };
    assert!(
        stdout.starts_with(&format!("builds: faultline {expected_faultline}, services not timed")),
        "{stdout}"
    );
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out)?)?;
    assert_eq!(json["builds"]["faultline"], expected_faultline);
    assert_eq!(json["builds"]["services"], "not timed");
    assert!(json["phases"].as_array().is_some_and(|p| !p.is_empty()), "{json}");
    let _ = std::fs::remove_file(&out);
    Ok(())
}

/// `bench saga` at concurrency 1 lays out its slowest orders with what the services logged
/// while each was in flight, read from the running services' own logs: the order's creation,
/// the gateway serving its POST, the saga's end, each line inside the order's time. (Debug
/// services, three orders: it shows the profile is drawn, not how fast anything is.)
#[tokio::test]
async fn the_saga_benchmark_lays_out_its_slowest_orders_from_the_services_logs() {
    let system = faultline_reference::system();
    let bench = faultline_reference::bench::saga(&system, &[1], 3, faultline_reference::bench::Links::Direct)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let level = &bench.levels[0];
    assert_eq!((level.warmup, level.orders, level.confirmed), (faultline_reference::bench::WARMUP, 3, 3));
    assert_eq!(level.slowest.len(), 3);
    for slow in &level.slowest {
        let said = |service: &str, message: &str| {
            slow.lines.iter().any(|l| l.service == service && l.message == message)
        };
        assert!(said("order", "order created") && said("order", "saga ended"), "{slow:?}");
        assert!(
            slow.lines
                .iter()
                .any(|l| l.request.as_deref() == Some("POST /api/orders") && l.latency_ms.is_some()),
            "{slow:?}"
        );
        // The order's own lines, in the order the saga wrote them.
        let at = |message: &str| slow.lines.iter().position(|l| l.service == "order" && l.message == message);
        assert!(at("order created") < at("saga ended"), "{slow:?}");
    }
    // Slowest first: with three orders, the first is the level's p99 (nearest rank).
    let totals: Vec<f64> = level.slowest.iter().map(|s| s.total_ms).collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");
    assert_eq!(totals[0], level.p99_ms);
    let p99 = |part: &str| level.profile.parts.iter().find(|p| p.part == part).and_then(|p| p.p99_ms);
    assert!(p99("client: order placed to CONFIRMED seen").is_some_and(|ms| ms > 0.0));
}
