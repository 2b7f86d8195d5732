//! The broker proxy on a link to a real Kafka (in front of the link's Toxiproxy proxy, as the
//! infrastructure places it, and advertised by the broker): each broker-request fault does
//! what it says to librdkafka's produces, offset commits and fetches. Needs the engine and
//! images `ci/setup` provides.

use std::time::{Duration, Instant};

use faultline_chaos::scenario::intercept::Which;
use faultline_chaos::scenario::kafka::{KafkaAction, KafkaError, KafkaFault, KafkaRequest};
use faultline_harness::history::{EventType, Op, Recorder};
use faultline_harness::infra::{Infra, InfraConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError as ClientError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

fn client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "500")
        .set("log_level", "3");
    config
}

fn fault(request: KafkaRequest, action: KafkaAction) -> KafkaFault {
    KafkaFault {
        request,
        topic: Some("t".into()),
        group: None,
        which: Which::Nth(1),
        action,
    }
}

/// The requests the history says were hit, as `(request, action)`.
fn hits(recorder: &Recorder) -> Vec<(String, String)> {
    recorder
        .finish()
        .events()
        .iter()
        .filter(|e| e.event_type == EventType::Invoke)
        .filter_map(|e| match &e.op {
            Op::RequestFault { method, path, action, .. } if method == "KAFKA" => {
                Some((path.clone(), action.clone()))
            }
            _ => None,
        })
        .collect()
}

async fn send(producer: &FutureProducer, payload: &str) -> Result<(), ClientError> {
    send_to(producer, "t", payload).await
}

async fn send_to(producer: &FutureProducer, topic: &str, payload: &str) -> Result<(), ClientError> {
    producer
        .send(FutureRecord::<str, str>::to(topic).payload(payload), Duration::ZERO)
        .await
        .map(|_| ())
        .map_err(|(error, _)| error)
}

/// Every payload in topic `t`, read from the start by a consumer of its own group.
async fn topic(bootstrap: &str, group: &str, at_least: usize) -> Vec<String> {
    let consumer: StreamConsumer = client(bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&["t"]).expect("subscribe");
    let mut found = Vec::new();
    while found.len() < at_least {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("a record within 60 s")
            .expect("a record");
        found.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
    }
    found
}

/// The offset `group` has committed on partition 0 of `t`, asked of the broker.
fn committed(consumer: &StreamConsumer) -> Offset {
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("t", 0);
    let found = consumer
        .committed_offsets(wanted, Duration::from_secs(30))
        .expect("committed offsets");
    found.find_partition("t", 0).expect("partition 0").offset()
}

// One thread: librdkafka's commits and offset lookups block it, and the broker proxy (on a
// runtime of its own) goes on meanwhile.
#[tokio::test]
async fn broker_request_faults_fail_lose_and_hold_real_produces_commits_and_fetches() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig {
        postgres: false,
        ..InfraConfig::with_clients(["svc"])
    })
    .await?;
    let proxy = infra.broker_proxy("svc->kafka").expect("a broker proxy on the link");
    let bootstrap = infra.kafka_bootstrap("svc")?;
    assert_eq!(bootstrap, proxy.address().to_string(), "the client connects to the broker proxy");
    let admin: AdminClient<DefaultClientContext> = client(&bootstrap).create()?;
    let new = ["t", "u"].map(|name| NewTopic::new(name, 1, TopicReplication::Fixed(1)));
    for result in admin.create_topics(&new, &AdminOptions::new()).await? {
        result.map_err(|(topic, code)| anyhow::anyhow!("creating {topic}: {code}"))?;
    }
    let recorder = Recorder::new();
    let (stops, _asked) = tokio::sync::mpsc::unbounded_channel();
    // No retries: what the broker (or the proxy in its place) answers is what the producer
    // reports.
    let producer: FutureProducer = client(&bootstrap)
        .set("enable.idempotence", "false")
        .set("message.send.max.retries", "0")
        .set("message.timeout.ms", "30000")
        .create()?;
    send(&producer, "first").await?;

    // An error in the broker's place is not forwarded: a retriable one is retried by the
    // producer (appended once), a fatal one fails the produce (appended never; librdkafka
    // then fails that topic's produces for a while, so it is another topic's).
    let error = |name| KafkaAction::Error(KafkaError::named(name).expect("known"));
    proxy.install(0, fault(KafkaRequest::Produce, error("NOT_LEADER_OR_FOLLOWER")), 1, recorder.clone(), stops.clone());
    send(&producer, "retried").await?;
    proxy.remove(0);
    let mut fatal = fault(KafkaRequest::Produce, error("TOPIC_AUTHORIZATION_FAILED"));
    fatal.topic = Some("u".into());
    proxy.install(1, fatal, 1, recorder.clone(), stops.clone());
    let refused = send_to(&producer, "u", "refused").await;
    assert_eq!(
        refused.as_ref().err().and_then(ClientError::rdkafka_error_code),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{refused:?}"
    );
    proxy.remove(1);

    // The answer lost: the producer hears of no success, and the record is in the topic.
    proxy.install(2, fault(KafkaRequest::Produce, KafkaAction::DropAnswer), 1, recorder.clone(), stops.clone());
    let lost = send(&producer, "appended").await;
    assert!(lost.is_err(), "the producer heard nothing, so no success: {lost:?}");
    proxy.remove(2);
    send(&producer, "last").await?;
    assert_eq!(topic(&bootstrap, "reader-1", 4).await, ["first", "retried", "appended", "last"]);

    // An offset commit answered with an error: the commit fails and nothing is stored; the
    // next commit is not hit (nth = 1) and is stored.
    let consumer: StreamConsumer = client(&bootstrap)
        .set("group.id", "g")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&["t"])?;
    let first = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await??;
    let offsets = |offset: i64| {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("t", 0, Offset::Offset(offset)).expect("an offset");
        list
    };
    let mut commit_fault = fault(KafkaRequest::OffsetCommit, error("REBALANCE_IN_PROGRESS"));
    commit_fault.topic = None;
    commit_fault.group = Some("g".into());
    proxy.install(3, commit_fault, 1, recorder.clone(), stops.clone());
    let failed = consumer.commit(&offsets(first.offset() + 1), CommitMode::Sync);
    assert_eq!(
        failed.as_ref().err().and_then(ClientError::rdkafka_error_code),
        Some(RDKafkaErrorCode::RebalanceInProgress),
        "{failed:?}"
    );
    assert_eq!(committed(&consumer), Offset::Invalid, "a failed commit stores nothing");
    proxy.remove(3);

    // An offset commit whose answer is lost: the offset is stored all the same (librdkafka
    // retries a commit whose connection broke, and the retry, not hit, is answered).
    let mut lost_commit = fault(KafkaRequest::OffsetCommit, KafkaAction::DropAnswer);
    lost_commit.topic = None;
    proxy.install(4, lost_commit, 1, recorder.clone(), stops.clone());
    let _heard = consumer.commit(&offsets(2), CommitMode::Sync);
    proxy.remove(4);
    assert_eq!(committed(&consumer), Offset::Offset(2), "the commit was stored");

    // A held fetch: a record produced meanwhile reaches the consumer only once it heals.
    let reader: StreamConsumer = client(&bootstrap)
        .set("group.id", "h")
        .set("auto.offset.reset", "latest")
        .set("enable.auto.commit", "false")
        .create()?;
    reader.subscribe(&["t"])?;
    let mut hold = fault(KafkaRequest::Fetch, KafkaAction::Hold);
    hold.which = Which::Every;
    // The reader has joined its group and fetches before the hold starts.
    let mut assigned = false;
    for _ in 0..600 {
        assigned = reader.assignment().is_ok_and(|a| a.count() == 1)
            && proxy.sites().iter().any(|s| s.route == "fetch t");
        if assigned {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), reader.recv()).await;
    }
    assert!(assigned, "the reader never fetched t");
    proxy.install(5, hold, 1, recorder.clone(), stops.clone());
    let receive = tokio::spawn(async move {
        let message = tokio::time::timeout(Duration::from_secs(60), reader.recv()).await;
        let payload = message.ok().and_then(Result::ok).map(|m| {
            String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()
        });
        (payload, Instant::now())
    });
    // A fetch is held (the one in flight before, answered): only then the record comes.
    let mut held = false;
    for _ in 0..600 {
        held = hits(&recorder).iter().any(|(_, action)| action == "hold");
        if held {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held, "no fetch was held");
    send(&producer, "held").await?;
    let healed = Instant::now();
    proxy.remove(5);
    let (payload, received) = receive.await?;
    assert_eq!(payload.as_deref(), Some("held"));
    assert!(received >= healed, "the record came before the hold healed");

    let hits = hits(&recorder);
    assert_eq!(
        hits[..5],
        [
            ("produce t".to_string(), "error".to_string()),
            ("produce u".to_string(), "error".to_string()),
            ("produce t".to_string(), "drop_answer".to_string()),
            ("offset_commit g".to_string(), "error".to_string()),
            ("offset_commit g".to_string(), "drop_answer".to_string()),
        ],
    );
    assert!(hits[5..].iter().all(|hit| hit == &("fetch t".to_string(), "hold".to_string())), "{hits:?}");
    let sites: Vec<String> = proxy.sites().into_iter().map(|s| s.route).collect();
    for site in ["produce t", "produce u", "fetch t", "offset_commit g"] {
        assert!(sites.iter().any(|s| s == site), "{site} not among the call sites {sites:?}");
    }
    Ok(())
}
